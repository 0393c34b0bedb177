"""Decode-stage throughput against its two parts, measured on the same files in one run.

For each frame codec (raw, jpeg) it times, in frames per second:

* ``read``:  a bare ``cv2.VideoCapture`` read loop over the videos (decode only);
* ``write``: writing the same, already decoded (and resized) frames into a frames
  shard with the codec (JPEG encoding + HDF5 write, or lzf + HDF5 write);
* ``stage``: the decode stage end to end (``decode_shard``: decode, resize, encode,
  HDF5 write, with its reader thread overlapping decoding and writing).

The stage is bounded by the slower part; ``ratio = stage / min(read, write)``.
Each figure is the best of ``--repeats`` rounds; a round runs every measurement once, so
slow phases of a shared machine hit all of them. CPU seconds are printed too: on a loaded
machine (no free core) overlap cannot help and the stage costs read + write. The videos are generated: 320x240
XVID .avi at 25 fps (UCF101's format) with textured, moving content.

    python bench/decode.py [--videos 8] [--frames 100] [--short-side 256] [--repeats 3]

Last line: ``decode/bound ratio: <ratio>`` (the lower of the two codecs).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import h5py
import numpy as np
import pandas as pd

from twostream.decode import DecodeConfig, FrameWriter, decode_shard
from twostream.video import decode_video, write_video


def make_videos(folder: Path, n_videos: int, n_frames: int, seed: int = 0) -> pd.DataFrame:
    """320x240 XVID videos of a drifting noise texture with a moving square."""
    rng = np.random.default_rng(seed)
    rows = []
    for v in range(n_videos):
        tex = cv2.GaussianBlur(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8), (0, 0), 3)
        tex = cv2.normalize(tex, None, 0, 255, cv2.NORM_MINMAX)
        frames = []
        for t in range(n_frames):
            x, y = (3 * t + 7 * v) % 320, (2 * t) % 240
            f = tex[y : y + 240, x : x + 320].copy()
            f[60:120, (5 * t) % 260 : (5 * t) % 260 + 60] = (250, 200, 40)
            frames.append(f)
        path = folder / f"c{v % 2}" / f"v{v:03d}.avi"
        write_video(path, frames, fps=25.0, fourcc="XVID")
        rows.append({"video_id": f"c{v % 2}/v{v:03d}", "path": str(path), "label": v % 2,
                     "class_name": f"c{v % 2}", "split": "train"})  # fmt: skip
    return pd.DataFrame(rows)


def bare_read(paths: list[str]) -> int:
    n = 0
    for p in paths:
        cap = cv2.VideoCapture(p, cv2.CAP_FFMPEG)
        while True:
            ok, _ = cap.read()
            if not ok:
                break
            n += 1
        cap.release()
    return n


def write_frames(index: pd.DataFrame, decoded: list[list[np.ndarray]], out: Path, codec: str, quality: int) -> int:
    with h5py.File(out, "w") as f:
        w = FrameWriter(f, codec, quality)
        for row, frames in zip(index.to_dict("records"), decoded):
            w.add(row, frames, 25.0)
        w.finish()
    return sum(len(x) for x in decoded)


def timed(fn) -> tuple[float, float, int]:
    """(wall s, process CPU s, frames) of one call of ``fn() -> n_frames``."""
    t, c = time.perf_counter(), time.process_time()
    n = fn()
    return time.perf_counter() - t, time.process_time() - c, n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=8)
    p.add_argument("--frames", type=int, default=100, help="frames per video")
    p.add_argument("--short-side", type=int, default=256, help="decode.short_side (the paper: 256)")
    p.add_argument("--jpeg-quality", type=int, default=90)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-decode-") as tmp:
        tmp = Path(tmp)
        index = make_videos(tmp / "videos", args.videos, args.frames)
        paths = list(index["path"])
        decoded = [decode_video(p, args.short_side).frames for p in paths]  # also warms the page cache
        n_frames = sum(len(x) for x in decoded)
        h, w = decoded[0][0].shape[:2]
        print(f"{args.videos} videos x {args.frames} frames, 320x240 XVID -> {w}x{h} ({n_frames} frames); "
              f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; best of {args.repeats} rounds")  # fmt: skip

        def stage_fn(codec):
            cfg = DecodeConfig(shards=1, short_side=args.short_side, codec=codec, jpeg_quality=args.jpeg_quality)

            def run() -> int:
                videos, _ = decode_shard(index, tmp / f"stage-{codec}.h5", cfg, progress=False)
                return int(videos["n_frames"].sum())

            return run

        # rounds interleave the three measurements, so a change in machine load hits all of them
        best: dict[tuple[str, str], tuple[float, float, int]] = {}
        for _ in range(args.repeats):
            runs = {("-", "read"): lambda: bare_read(paths)}
            for codec in ("raw", "jpeg"):
                runs[(codec, "write")] = lambda c=codec: write_frames(
                    index, decoded, tmp / f"{c}.h5", c, args.jpeg_quality
                )
                runs[(codec, "stage")] = stage_fn(codec)
            for key, fn in runs.items():
                r = timed(fn)
                if key not in best or r[0] < best[key][0]:
                    best[key] = r

        fps = {k: v[2] / v[0] for k, v in best.items()}
        cpu = {k: v[1] for k, v in best.items()}
        print(f"{'codec':6} {'read f/s':>9} {'write f/s':>10} {'stage f/s':>10} {'bound':>6} {'ratio':>6}"
              "   CPU s: read + write -> stage")  # fmt: skip
        ratios = {}
        for codec in ("raw", "jpeg"):
            r, wr, st = fps[("-", "read")], fps[(codec, "write")], fps[(codec, "stage")]
            ratios[codec] = st / min(r, wr)
            size = (tmp / f"stage-{codec}.h5").stat().st_size / n_frames / 1024
            print(f"{codec:6} {r:9.0f} {wr:10.0f} {st:10.0f} {'read' if r <= wr else 'write':>6} {ratios[codec]:6.2f}"
                  f"   {cpu[('-', 'read')]:.2f} + {cpu[(codec, 'write')]:.2f} -> {cpu[(codec, 'stage')]:.2f}"
                  f"   ({size:.1f} KiB/frame)")  # fmt: skip
    print(f"decode/bound ratio: {min(ratios.values()):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
