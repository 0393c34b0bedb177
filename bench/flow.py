"""Benchmark: our batched PyTorch TV-L1 against OpenCV's TV-L1, same frames, same run.

    python bench/flow.py                       # 64 pairs of 340x256, 2 threads, OpenCV defaults
    python bench/flow.py --size 64x64 --pairs 256 --batch-size 64
    python bench/flow.py --device cuda --batch-size 64   # on a GPU machine

1. Encodes a video of a moving, slowly rotating and zooming photograph (scikit-image's
   astronaut) with cv2.VideoWriter (MJPG), decodes it again and times both backends on
   the same ``--pairs`` consecutive frame pairs (grayscale, as the flow stage does).
2. Measures the end-point error (EPE) of both on pairs with known flow: four photographs
   moved by a translation, a rotation, a zoom and a smooth non-rigid field.

Both backends use the same TV-L1 parameters (OpenCV's defaults unless changed) and the
same number of threads. The last line reads
``torch/opencv speedup: <ratio> (EPE torch <a>, opencv <b>)``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from twostream.flow.opencv import OpenCVTVL1  # noqa: E402
from twostream.flow.params import TVL1Params  # noqa: E402
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=64, help="frame pairs timed (from the encoded video)")
    p.add_argument("--size", default="340x256", help="WxH of the frames")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="torch backend device: cpu | cuda | auto")
    p.add_argument("--batch-size", type=int, default=8)  # 181 ms/pair at batch 4 (quiet), 145 ms/pair at batch 8 (loaded)
    p.add_argument("--stopping", default="opencv", choices=["opencv", "fixed"])
    p.add_argument("--no-compile", dest="compile", action="store_false", help="eager torch (no torch.compile)")
    p.add_argument("--skip-opencv", action="store_true", help="time the torch backend only (e.g. on a GPU machine)")
    p.add_argument("--tvl1", default="{}", help="JSON overrides of the TV-L1 parameters, e.g. '{\"warps\": 3}'")
    args = p.parse_args(argv)

    import json

    w, h = (int(x) for x in args.size.lower().split("x"))
    params = TVL1Params(**json.loads(args.tvl1)).validate("tvl1")
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        frames = encoded_video_frames(args.pairs + 1, w, h, tmp)
    prev, nxt = frames[:-1], frames[1:]
    gprev, gnxt, gt = ground_truth_pairs(w, h)
    margin = max(4, min(w, h) // 16)

    t0 = time.perf_counter()
    ours = TorchTVL1(
        params, device=args.device, stopping=args.stopping, compile=args.compile, batch_size=args.batch_size
    )
    warm = time.perf_counter() - t0
    dev = ours.device
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU, {args.threads} threads"
    print(f"frames {w}x{h}, {args.pairs} pairs from an encoded MJPG video; device {dev} ({name})")
    print(f"TV-L1 parameters: {params}")
    print(
        f"torch backend: batch {args.batch_size}, stopping {args.stopping}, compile {ours.compile} "
        f"(warm-up {warm:.1f} s, not timed)"
    )
    if dev.type == "cuda":  # first call allocates and loads kernels
        ours(prev[: args.batch_size], nxt[: args.batch_size])

    ours.iterations = 0
    t0 = time.perf_counter()
    f_torch = ours(prev, nxt)
    t_torch = time.perf_counter() - t0
    it_torch = ours.iterations / len(prev)
    e_torch = mean_epe(ours(gprev, gnxt), gt, margin)
    rate_torch = len(prev) / t_torch
    print(
        f"torch : {rate_torch:8.2f} pairs/s  {1e3 / rate_torch:8.1f} ms/pair  "
        f"({it_torch:.0f} inner iterations/pair)  EPE {e_torch:.4f}"
    )
    if args.skip_opencv:
        print(f"torch pairs/s: {rate_torch:.2f} on {name}")
        return 0

    ref = OpenCVTVL1(params)
    t0 = time.perf_counter()
    f_cv = ref(prev, nxt)
    t_cv = time.perf_counter() - t0
    e_cv = mean_epe(ref(gprev, gnxt), gt, margin)
    rate_cv = len(prev) / t_cv
    print(f"opencv: {rate_cv:8.2f} pairs/s  {1e3 / rate_cv:8.1f} ms/pair  EPE {e_cv:.4f}")
    agree = np.sqrt(((f_torch - f_cv) ** 2).sum(-1))[:, margin:-margin, margin:-margin]
    print(
        f"torch vs opencv on the video: mean end-point difference {agree.mean():.4f} px, "
        f"95th percentile {np.percentile(agree, 95):.4f} px; EPE ratio torch/opencv {e_torch / e_cv:.3f}"
    )
    print(f"torch/opencv speedup: {rate_torch / rate_cv:.2f} (EPE torch {e_torch:.4f}, opencv {e_cv:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
