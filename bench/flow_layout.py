"""Benchmark: the flow shard layouts, bytes on disk and random-access read speed.

    python bench/flow_layout.py                  # 8 videos x 41 frames of 340x256, DIS flow, L = 10
    python bench/flow_layout.py --size 64x64 --videos 16 --backend torch

1. Encodes ``--videos`` clips of a moving, rotating photograph (scikit-image's astronaut,
   MJPG), decodes them into one frames shard with the decode stage's writer, and runs the
   flow stage on it once per layout and storage: ``fixed`` (one (M, H, W, 2) dataset, one
   field per chunk, lzf: today's layout) and ``png`` (one lossless PNG per field, any frame
   size), each with ``uint8`` and ``float16`` storage. The stored values of the two
   layouts are the same (checked).
2. Reads ``--stacks`` random flow stacks of ``L`` consecutive fields as the data loader
   does (``FlowShard.read_raw`` of one video's fields, then de-quantization), ``--repeats``
   times on a freshly opened shard each (the files are in the page cache after writing).

Prints one line per layout: bytes on disk, bytes per field, stacks/s (median of the
repeats) and both as ratios to the baseline ``fixed uint8`` measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import cv2  # noqa: E402
import h5py  # noqa: E402
import numpy as np  # noqa: E402

from twostream.decode import FrameWriter  # noqa: E402
from twostream.flow.stage import compute_shard  # noqa: E402
from twostream.store import FlowShard, dequantize_flow, write_provenance  # noqa: E402

LAYOUTS = [("fixed", "uint8"), ("png", "uint8"), ("fixed", "float16"), ("png", "float16")]


def clip(n: int, w: int, h: int, seed: int) -> np.ndarray:
    """n BGR frames of a photograph panning, rotating and zooming (after an MJPG round trip)."""
    import skimage.data

    src = skimage.data.astronaut()[..., ::-1]
    src = cv2.resize(src, (int(w * 1.6), int(h * 1.6)), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(seed)
    vx, vy, va = rng.uniform(-3, 3), rng.uniform(-2, 2), rng.uniform(-0.5, 0.5)
    cx, cy = src.shape[1] / 2, src.shape[0] / 2
    out = []
    for t in range(n):
        m = cv2.getRotationMatrix2D((cx, cy), va * t, 1.0 + 0.004 * t)
        m[0, 2] += (w - src.shape[1]) / 2 + vx * t
        m[1, 2] += (h - src.shape[0]) / 2 + vy * t
        f = cv2.warpAffine(src, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        ok, buf = cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 90])
        out.append(cv2.imdecode(buf, cv2.IMREAD_COLOR))
    return np.stack(out)


def read_stacks(path: str, picks: list[tuple[str, np.ndarray]]) -> float:
    """Seconds to read every (video, fields) stack as the loader does."""
    shard = FlowShard(path)
    t0 = time.perf_counter()
    for vid, fields in picks:
        raw = shard.read_raw(vid, fields)
        flow = dequantize_flow(raw, shard.bound) if raw.dtype == np.uint8 else raw.astype(np.float32)
        assert flow.shape[0] == len(fields)
    seconds = time.perf_counter() - t0
    shard.close()
    return seconds


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="340x256", help="frame size WxH")
    p.add_argument("--videos", type=int, default=8)
    p.add_argument("--frames", type=int, default=41, help="frames per video")
    p.add_argument("--length", type=int, default=10, help="L, flow fields per stack")
    p.add_argument("--stacks", type=int, default=200, help="random stacks read per repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--backend", default="dis", choices=["dis", "torch", "opencv"])
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    w, h = (int(x) for x in args.size.lower().split("x"))
    cv2.setNumThreads(args.threads)
    flow_cfg = {"backend": args.backend, "device": "cpu", "compile": False}
    with tempfile.TemporaryDirectory() as tmp:
        frames = os.path.join(tmp, "frames.h5")
        with h5py.File(frames, "w") as f:
            writer = FrameWriter(f, "raw")
            for v in range(args.videos):
                row = {"video_id": f"v{v}", "label": 0, "class_name": "c", "split": "train"}
                writer.add(row, clip(args.frames, w, h, v), 25.0)
            writer.finish()
            write_provenance(f, "frames", {}, codec="raw")
        paths, t_flow = {}, {}
        for layout, storage in LAYOUTS:
            out = os.path.join(tmp, f"flow-{layout}-{storage}.h5")
            t0 = time.perf_counter()
            compute_shard(frames, out, {**flow_cfg, "layout": layout, "storage": storage}, progress=False)
            t_flow[(layout, storage)] = time.perf_counter() - t0
            paths[(layout, storage)] = out
        for storage in ("uint8", "float16"):  # same values in both layouts
            a, b = FlowShard(paths[("fixed", storage)]), FlowShard(paths[("png", storage)])
            m = args.frames - 1
            for v in range(args.videos):
                if not np.array_equal(a.read_raw(f"v{v}", np.arange(m)), b.read_raw(f"v{v}", np.arange(m))):
                    print(f"note: layouts differ for v{v} ({storage}): the backend is not deterministic")
                    break
        rng = np.random.default_rng(0)
        n_fields = args.frames - 1
        picks = []
        for _ in range(args.stacks):
            v = int(rng.integers(args.videos))
            t = int(rng.integers(max(n_fields - args.length + 1, 1)))
            picks.append((f"v{v}", np.arange(t, t + args.length)))
        fields = args.videos * n_fields
        print(f"{args.videos} videos x {n_fields} fields of {w}x{h} ({args.backend} flow), stacks of L={args.length}, "
              f"{args.stacks} random stacks x {args.repeats} repeats")  # fmt: skip
        base_bytes = base_rate = None
        for layout, storage in LAYOUTS:
            path = paths[(layout, storage)]
            size = os.path.getsize(path)
            times = [read_stacks(path, picks) for _ in range(args.repeats)]
            rate = args.stacks / statistics.median(times)
            if base_bytes is None:
                base_bytes, base_rate = size, rate
            spread = f"{args.stacks / max(times):.0f}-{args.stacks / min(times):.0f}"
            print(f"{layout:5s} {storage:7s}: {size / 1e6:8.2f} MB ({size / fields / 1e3:6.1f} kB/field, "
                  f"x{size / base_bytes:.2f}), read {rate:7.1f} stacks/s (range {spread}, x{rate / base_rate:.2f}), "
                  f"write {t_flow[(layout, storage)]:.1f} s incl. flow")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
