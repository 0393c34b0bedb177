"""Read cost of the shard checksums (Fletcher-32 per chunk, HDF5 1.10 metadata checksums).

Writes the same frames and flow fields twice, in the layout the stages write (one frame or
field per chunk, lzf): once as before the checksums (no Fletcher-32, HDF5's earliest file
format) and once as now (``store.atomic_h5`` + ``store.create_dataset``), then times the
readers the pipeline uses (``FrameShard`` / ``FlowShard``) on both:

* ``sequential``: every video's frames in one read each (the flow stage);
* ``random``: single frames at random places (the training loader's snippets).

A round reads every file once in alternating order; each ratio (checksummed / plain time)
is the median over the rounds, so slow phases of a shared machine hit both sides.

    python bench/checksum.py [--frames 600] [--height 240] [--width 320] [--repeats 7]

Last line: ``checksum read-cost ratio: <ratio>`` (the highest of the four).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import h5py
import numpy as np
import pandas as pd

from twostream.store import (
    FlowShard,
    FrameShard,
    atomic_h5,
    create_dataset,
    video_table_to_array,
    write_provenance,
    write_video_table,
)

N_VIDEOS = 6


def content(n: int, h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Textured RGB frames with drift (compress like video frames) and smooth quantized flow."""
    rng = np.random.default_rng(seed)
    tex = cv2.GaussianBlur(rng.integers(0, 256, (h * 2, w * 2, 3), dtype=np.uint8), (0, 0), 2)
    frames = np.stack([tex[(t * 2) % h : (t * 2) % h + h, (t * 3) % w : (t * 3) % w + w] for t in range(n)])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    flow = np.stack([np.stack([np.sin(xx / 17 + t / 5), np.cos(yy / 13 - t / 7)], -1) for t in range(n)])
    return frames, np.clip(np.rint(flow * 40 + 128), 1, 255).astype(np.uint8)


def table(n: int) -> pd.DataFrame:
    per = n // N_VIDEOS
    return pd.DataFrame({
        "video_id": [f"c/v{i}" for i in range(N_VIDEOS)], "label": 0, "class_name": "c", "split": "train",
        "n_frames": per, "fps": 25.0, "height": 0, "width": 0, "offset": np.arange(N_VIDEOS) * per,
    })  # fmt: skip


def write(path: Path, kind: str, data: np.ndarray, checksum: bool) -> None:
    videos = table(len(data)).assign(height=data.shape[1], width=data.shape[2])
    kw = dict(chunks=(1,) + data.shape[1:], compression="lzf")
    extra = {"codec": "raw"} if kind == "frames" else {"bound": 20.0, "storage": "uint8"}
    if checksum:  # as the stages write now
        with atomic_h5(path) as f:
            write_video_table(f, videos)
            create_dataset(f, kind, data=data, **kw)
            write_provenance(f, kind, {}, **extra)
    else:  # as before: default file format, no Fletcher-32
        with h5py.File(path, "w") as f:
            f.create_dataset("videos", data=video_table_to_array(videos))
            f.create_dataset(kind, data=data, **kw)
            write_provenance(f, kind, {}, **extra)


def read_sequential(shard) -> None:
    for v in shard.videos.itertuples():
        shard.read(v.video_id, np.arange(v.n_frames))


def read_random(shard, picks) -> None:
    for vid, t in picks:
        shard.read(vid, [t])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--height", type=int, default=240)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    frames, flow = content(args.frames, args.height, args.width)
    rng = np.random.default_rng(1)
    per = args.frames // N_VIDEOS
    picks = [(f"c/v{rng.integers(N_VIDEOS)}", int(rng.integers(per))) for _ in range(args.frames)]
    ratios: dict[str, list[float]] = {}
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for kind, data, cls in (("frames", frames, FrameShard), ("flow", flow, FlowShard)):
            for checksum in (False, True):
                p = Path(tmp) / f"{kind}-{int(checksum)}.h5"
                write(p, kind, data, checksum)
                files[kind, checksum] = (p, cls)
            print(f"{kind}: {args.frames} x {data.shape[1:]} uint8, file {files[kind, False][0].stat().st_size / 1e6:.1f} MB "
                  f"plain, {files[kind, True][0].stat().st_size / 1e6:.1f} MB checksummed", file=sys.stderr)
        for r in range(args.repeats):
            for kind in ("frames", "flow"):
                for how in ("sequential", "random"):
                    t = {}
                    order = (False, True) if r % 2 == 0 else (True, False)
                    for checksum in order:
                        p, cls = files[kind, checksum]
                        shard = cls(p)  # a fresh reader: opening is part of the cost
                        t0 = time.perf_counter()
                        read_sequential(shard) if how == "sequential" else read_random(shard, picks)
                        t[checksum] = time.perf_counter() - t0
                        shard.close()
                        key = f"{kind} {how} {'fletcher32' if checksum else 'plain'}"
                        best[key] = min(best.get(key, np.inf), t[checksum])
                    ratios.setdefault(f"{kind} {how}", []).append(t[True] / t[False])
    print(f"{'read':<18} {'plain f/s':>10} {'checked f/s':>12} {'ratio (median of ' + str(args.repeats) + ')':>22}")
    worst = 0.0
    for name, rs in ratios.items():
        med = float(np.median(rs))
        worst = max(worst, med)
        plain, checked = best[f"{name} plain"], best[f"{name} fletcher32"]
        print(f"{name:<18} {args.frames / plain:>10.0f} {args.frames / checked:>12.0f} {med:>22.3f}")
    print(f"checksum read-cost ratio: {worst:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
