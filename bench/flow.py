"""Benchmark: our batched PyTorch TV-L1 against OpenCV's TV-L1, same frames, same run.

    python bench/flow.py                       # 16 pairs of 340x256, 2 cores, OpenCV defaults, 3 rounds
    python bench/flow.py --size 64x64 --pairs 64 --rounds 5
    python bench/flow.py --device cuda --skip-opencv   # on a GPU machine (see also bench/gpu.py)

1. Encodes a video of a moving, slowly rotating and zooming photograph (scikit-image's
   astronaut) with cv2.VideoWriter (MJPG), decodes it again and times every backend
   setting on the same ``--pairs`` consecutive frame pairs (grayscale, as the flow stage).
2. Measures the end-point error (EPE) of both backends on pairs with known flow: four
   photographs moved by a translation, a rotation, a zoom and a smooth non-rigid field.

Both backends use the same TV-L1 parameters (OpenCV's defaults unless changed) and the
same ``--cores``. Each backend is tried in both ways of using the cores: one process with
``--cores`` threads, and ``--cores`` processes of 1 thread, each solving its share of the
pairs (what a flow job or a cluster does with many videos); ``--single`` adds 1 x 1. Every setting runs in its
own worker processes, started and warmed up (the C kernel built, or torch.compile on a GPU) before the clock starts: the
warm-up is reported apart. The rounds interleave all settings (in rotating order), so a
change in machine load hits all of them; each setting's rate is the median over rounds,
with the spread (min-max). Each backend is then represented by its best setting.
The last line reads
``torch/opencv speedup: <ratio> at equal EPE (EPE torch <a>, opencv <b>, ratio <a/b>)``.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
import os
import sys
import tempfile
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from twostream.flow.opencv import OpenCVTVL1  # noqa: E402
from twostream.flow.params import TVL1Params, opencv_defaults  # noqa: E402
from twostream.flow.tvl1_torch import TorchTVL1  # noqa: E402


def photo(name: str) -> np.ndarray:
    import skimage.data

    img = getattr(skimage.data, name)()
    return img if img.ndim == 3 else np.repeat(img[..., None], 3, -1)


def encoded_video_frames(n: int, w: int, h: int, folder: str) -> np.ndarray:
    """Write n frames of a moving photograph to an MJPG .avi and decode them: (n, h, w) uint8 gray."""
    src = cv2.resize(photo("astronaut"), (int(w * 1.6), int(h * 1.6)), interpolation=cv2.INTER_AREA)
    path = os.path.join(folder, "moving.avi")
    vw = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (w, h))
    if not vw.isOpened():
        raise SystemExit("cv2.VideoWriter cannot write MJPG here")
    cx, cy = src.shape[1] / 2, src.shape[0] / 2
    for t in range(n):
        ang, zoom = 0.4 * np.sin(t / 9.0), 1.0 + 0.01 * t / max(n, 1)
        m = cv2.getRotationMatrix2D((cx, cy), ang, zoom)
        m[0, 2] += (w - src.shape[1]) / 2 - 3.0 * np.sin(t / 7.0) * 4
        m[1, 2] += (h - src.shape[0]) / 2 - 1.5 * np.cos(t / 5.0) * 4
        frame = cv2.warpAffine(src, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        vw.write(frame[..., ::-1])
    vw.release()
    cap = cv2.VideoCapture(path)
    out = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    cap.release()
    if len(out) < n:
        raise SystemExit(f"decoded {len(out)} of {n} frames")
    return np.stack(out)


def ground_truth_pairs(w: int, h: int):
    """Photographs moved by known flows (exact: I0(x) = I1(x + flow(x)))."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = w / 2, h / 2
    s = min(w, h) / 128.0  # scale the motions with the image: a few pixels at 340x256
    flows = {
        "translation": np.dstack([np.full((h, w), 2.3 * s), np.full((h, w), -1.4 * s)]),
        "rotation": np.dstack([-(ys - cy) * 0.02, (xs - cx) * 0.02]),
        "zoom": np.dstack([(xs - cx) * 0.025, (ys - cy) * 0.025]),
        "nonrigid": np.dstack(
            [1.5 * s * np.sin(xs / (15 * s)) * np.cos(ys / (20 * s)), 1.2 * s * np.cos(xs / (18 * s))]
        ),
    }
    prev, nxt, gt = [], [], []
    for name in ("camera", "astronaut", "coffee", "chelsea"):
        img = cv2.cvtColor(cv2.resize(photo(name), (w, h), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
        for f in flows.values():
            f = f.astype(np.float32)
            i0 = cv2.remap(
                img.astype(np.float32), xs + f[..., 0], ys + f[..., 1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT
            )
            prev.append(np.clip(np.rint(i0), 0, 255).astype(np.uint8))
            nxt.append(img)
            gt.append(f)
    return np.stack(prev), np.stack(nxt), np.stack(gt)


def mean_epe(flow: np.ndarray, gt: np.ndarray, margin: int) -> float:
    d = np.sqrt(((flow - gt) ** 2).sum(-1))[:, margin:-margin, margin:-margin]
    return float(d.mean())


def stored_kib_per_pair(flow: np.ndarray, bound: float = 20.0) -> float:
    """Size of the fields in a flow shard's /flow dataset (uint8, one pair per chunk, lzf)."""
    import h5py

    from twostream.store import quantize_flow

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "flow.h5")
        with h5py.File(path, "w") as f:
            f.create_dataset("flow", data=quantize_flow(np.clip(flow, -bound, bound), bound),
                             chunks=(1,) + flow.shape[1:], compression="lzf")
        return os.path.getsize(path) / len(flow) / 1024


# --------------------------------------------------------------------------- worker processes

_BACKEND = None


def _init(kind: str, threads: int, params: dict, torch_kw: dict) -> None:
    """Worker set-up: thread count, then the backend (the C kernel is built, or torch.compile warms up, here)."""
    global _BACKEND
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    p = TVL1Params(**params)
    _BACKEND = OpenCVTVL1(p) if kind == "opencv" else TorchTVL1(p, **torch_kw)


def _solve(prev: np.ndarray, nxt: np.ndarray, keep: bool):
    t0 = time.perf_counter()
    f = _BACKEND(prev, nxt)
    its = getattr(_BACKEND, "iterations", 0)
    if hasattr(_BACKEND, "iterations"):
        _BACKEND.iterations = 0
    return time.perf_counter() - t0, (f if keep else None), its


class Setting:
    """One backend run by ``procs`` worker processes of ``threads`` threads each."""

    def __init__(self, kind: str, threads: int, procs: int, params: TVL1Params, torch_kw: dict, warm_pair):
        import concurrent.futures as cf
        import multiprocessing as mp
        from dataclasses import asdict

        self.kind, self.threads, self.procs = kind, threads, procs
        self.name = f"{kind} {procs}x{threads}"
        t0 = time.perf_counter()
        ctx = mp.get_context("spawn")
        self.pools = [
            cf.ProcessPoolExecutor(1, ctx, initializer=_init, initargs=(kind, threads, asdict(params), torch_kw))
            for _ in range(procs)
        ]
        for f in [pool.submit(_solve, *warm_pair, False) for pool in self.pools]:
            f.result()
        self.warm_up = time.perf_counter() - t0
        self.rates: list[float] = []
        self.iterations = 0.0

    def run(self, prev: np.ndarray, nxt: np.ndarray, keep: bool = False):
        """Solve all pairs (split in ``procs`` contiguous shares); returns the flow if ``keep``."""
        shares = np.array_split(np.arange(len(prev)), self.procs)
        t0 = time.perf_counter()
        futs = [pool.submit(_solve, prev[s], nxt[s], keep) for pool, s in zip(self.pools, shares)]
        res = [f.result() for f in futs]
        wall = time.perf_counter() - t0
        self.iterations = sum(r[2] for r in res) / len(prev)
        return wall, (np.concatenate([r[1] for r in res]) if keep else None)

    def close(self) -> None:
        for pool in self.pools:
            pool.shutdown()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=16, help="frame pairs timed (from the encoded video)")
    p.add_argument("--size", default="340x256", help="WxH of the frames")
    p.add_argument("--cores", type=int, default=2, help="cores each backend may use (threads x processes)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--single", action="store_true", help="also time 1 process x 1 thread (never the best of n cores)")
    p.add_argument("--device", default="cpu", help="torch backend device: cpu | cuda | auto")
    p.add_argument("--batch-size", type=int, default=8, help="torch backend: pairs solved together")
    p.add_argument("--stopping", default="opencv", choices=["opencv", "fixed"])
    p.add_argument("--no-compile", dest="compile", action="store_false", help="eager torch (no torch.compile)")
    p.add_argument("--kernel", default="auto", choices=["auto", "c", "torch"],
                   help="torch backend on CPU: inner iterations in the C kernel (auto, c) or in torch")
    p.add_argument("--skip-opencv", action="store_true", help="time the torch backend only (e.g. on a GPU machine)")
    p.add_argument("--tvl1", default="{}", help="JSON overrides of the TV-L1 parameters, e.g. '{\"warps\": 3}'")
    args = p.parse_args(argv)

    import json

    w, h = (int(x) for x in args.size.lower().split("x"))
    params = replace(opencv_defaults(), **json.loads(args.tvl1))  # OpenCV's defaults, then the overrides
    torch_kw = dict(
        device=args.device, stopping=args.stopping, compile=args.compile, batch_size=args.batch_size, kernel=args.kernel
    )

    with tempfile.TemporaryDirectory() as tmp:
        frames = encoded_video_frames(args.pairs + 1, w, h, tmp)
    prev, nxt = frames[:-1], frames[1:]
    gprev, gnxt, gt = ground_truth_pairs(w, h)
    margin = max(4, min(w, h) // 16)
    print(f"frames {w}x{h}, {args.pairs} pairs from an encoded MJPG video; {args.cores} cores of "
          f"{os.cpu_count()}, load {os.getloadavg()[0]:.1f}; {args.rounds} rounds")
    print(f"TV-L1 parameters: {params}")
    print(f"torch backend: {torch_kw}")

    # every way of using the cores: 1 process x 1 or n threads, n processes x 1 thread
    n = args.cores
    ways = sorted({(n, 1), (1, n)} | ({(1, 1)} if args.single else set()))
    kinds = ["torch"] + ([] if args.skip_opencv else ["opencv"])
    if args.device != "cpu":
        ways = [(n, 1)]
    settings = []
    for kind in kinds:
        for threads, procs in ways:
            s = Setting(kind, threads, procs, params, torch_kw, (prev[:1], nxt[:1]))  # warm up at the real size
            print(f"  {s.name:>13}: started, warm-up {s.warm_up:.1f} s (not timed)", flush=True)
            settings.append(s)

    flows = {}
    for r in range(args.rounds):
        order = settings[r % len(settings):] + settings[: r % len(settings)]
        for s in order:
            keep = s.kind not in flows
            wall, f = s.run(prev, nxt, keep=keep)
            if keep:
                flows[s.kind] = f
            s.rates.append(len(prev) / wall)
        print(f"  round {r + 1}: " + ", ".join(f"{s.name} {s.rates[-1]:.2f}" for s in settings) + " pairs/s",
              flush=True)

    print(f"{'setting':>13} {'pairs/s':>8} {'ms/pair':>8}  spread (pairs/s)   iterations/pair   (setting: processes x threads)")
    best = {}
    for s in settings:
        med = float(np.median(s.rates))
        print(f"{s.name:>13} {med:8.2f} {1e3 / med:8.1f}  {min(s.rates):.2f}-{max(s.rates):.2f}"
              f"{'':>8}{s.iterations:.0f}")
        if s.kind not in best or med > best[s.kind][1]:
            best[s.kind] = (s, med)
    epe = {}
    for kind, (s, _) in best.items():
        _, f = s.run(gprev, gnxt, keep=True)
        epe[kind] = mean_epe(f, gt, margin)
    for s in settings:
        s.close()
    t_s, t_rate = best["torch"]
    print(f"best torch : {t_s.name} {t_rate:.2f} pairs/s  EPE {epe['torch']:.4f}")
    if args.skip_opencv:
        print(f"torch pairs/s: {t_rate:.2f}")
        return 0
    c_s, c_rate = best["opencv"]
    print(f"best opencv: {c_s.name} {c_rate:.2f} pairs/s  EPE {epe['opencv']:.4f}")
    agree = np.sqrt(((flows["torch"] - flows["opencv"]) ** 2).sum(-1))[:, margin:-margin, margin:-margin]
    print(f"torch vs opencv on the video: mean end-point difference {agree.mean():.4f} px, "
          f"95th percentile {np.percentile(agree, 95):.4f} px")
    print(f"storage: {stored_kib_per_pair(flows['torch']):.1f} KiB/pair (uint8, lzf, the flow stage's layout)")
    ratio = epe["torch"] / epe["opencv"]
    print(f"torch/opencv speedup: {t_rate / c_rate:.2f} at {'equal' if abs(ratio - 1) <= 0.05 else 'UNEQUAL'} EPE "
          f"(EPE torch {epe['torch']:.4f}, opencv {epe['opencv']:.4f}, ratio {ratio:.3f}; best settings "
          f"{t_s.name} vs {c_s.name}, medians of {args.rounds} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
