"""Decode-stage throughput against its two parts, measured on the same files in one run.

For each frame codec (raw, jpeg) it times, in frames per second:

* ``read``:  decoding and resizing the videos (``video.decode_video``, what the stage's
  readers call) in ``--readers`` threads, as the stage;
* ``write``: writing the same, already decoded and resized frames into a frames shard
  with the codec: JPEG encoding in ``--readers`` threads (where the stage encodes) + HDF5
  write, or lzf + HDF5 write in one thread (as the stage's writer);
* ``stage``: the decode stage end to end (``decode_shard``: decode, resize, encode,
  HDF5 write, with ``--readers`` reader threads overlapping decoding and writing).

Both parts run with the stage's threads and resize, so the stage is bounded by the slower
part: ``ratio = stage / min(read, write)``. The CPU seconds per frame of each part
(process time, all threads) are printed too, with ``cpu ratio = (read + write) / stage``:
1.0 means the stage costs no CPU beyond its parts; it does not depend on the machine's load.
A round runs every measurement once, so slow phases of a shared machine hit all of them;
the ratio is the median of the rounds' ratios, the f/s columns the best round of each. CPU seconds are printed too: on a loaded
machine (no free core) overlap cannot help and the stage costs read + write. The videos are generated: 320x240
XVID .avi at 25 fps (UCF101's format) with textured, moving content.

    python bench/decode.py [--videos 8] [--frames 100] [--short-side 256] [--repeats 3]

Last line: ``decode/bound ratio: <ratio> (CPU: parts/stage <cpu ratio>)`` (the lower of the two codecs).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import h5py
import numpy as np
import pandas as pd

from twostream.decode import DecodeConfig, FrameWriter, decode_shard, encode_frames
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


def read_videos(paths: list[str], short_side: int, readers: int) -> int:
    """Decode and resize every video in ``readers`` threads (the stage's readers' work)."""
    with ThreadPoolExecutor(max_workers=readers) as ex:
        return sum(len(d.frames) for d in ex.map(lambda p: decode_video(p, short_side), paths))


def write_frames(index: pd.DataFrame, decoded: list[list[np.ndarray]], out: Path, codec: str, quality: int,
                 readers: int) -> int:
    """The writer's work; for jpeg the encoding runs in ``readers`` threads as in the stage."""
    with h5py.File(out, "w") as f, ThreadPoolExecutor(max_workers=readers) as ex:
        w = FrameWriter(f, codec, quality)
        items = ex.map(lambda fr: encode_frames(fr, quality), decoded) if codec == "jpeg" else decoded
        for row, frames in zip(index.to_dict("records"), items):
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
    p.add_argument("--repeats", type=int, default=5, help="rounds")
    p.add_argument("--readers", type=int, default=DecodeConfig.readers, help="decode.readers (stage and parts)")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-decode-") as tmp:
        tmp = Path(tmp)
        index = make_videos(tmp / "videos", args.videos, args.frames)
        paths = list(index["path"])
        decoded = [decode_video(p, args.short_side).frames for p in paths]  # also warms the page cache
        n_frames = sum(len(x) for x in decoded)
        h, w = decoded[0][0].shape[:2]
        print(f"{args.videos} videos x {args.frames} frames, 320x240 XVID -> {w}x{h} ({n_frames} frames); "
              f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; {args.repeats} rounds")  # fmt: skip

        def stage_fn(codec):
            cfg = DecodeConfig(shards=1, short_side=args.short_side, codec=codec, jpeg_quality=args.jpeg_quality,
                               readers=args.readers)

            def run() -> int:
                videos, _ = decode_shard(index, tmp / f"stage-{codec}.h5", cfg, progress=False)
                return int(videos["n_frames"].sum())

            return run

        # Rounds interleave the measurements, so a change in machine load hits all of them;
        # each round gives a ratio, and the median round is reported (f/s: best round).
        rounds: list[dict[tuple[str, str], tuple[float, float, int]]] = []
        for _ in range(args.repeats):
            runs = {("-", "read"): lambda: read_videos(paths, args.short_side, args.readers)}
            for codec in ("raw", "jpeg"):
                runs[(codec, "write")] = lambda c=codec: write_frames(
                    index, decoded, tmp / f"{c}.h5", c, args.jpeg_quality, args.readers
                )
                runs[(codec, "stage")] = stage_fn(codec)
            rounds.append({key: timed(fn) for key, fn in runs.items()})

        def fps(r, key):
            return r[key][2] / r[key][0]

        print(
            f"{'codec':6} {'read f/s':>9} {'write f/s':>10} {'stage f/s':>10} {'bound':>6} {'ratio':>6}"
            "   CPU ms/frame (median round): read + write -> stage, cpu ratio"
        )
        ratios, cpu_ratios = {}, {}
        for codec in ("raw", "jpeg"):
            per_round = [
                fps(r, (codec, "stage")) / min(fps(r, ("-", "read")), fps(r, (codec, "write"))) for r in rounds
            ]
            ratios[codec] = float(np.median(per_round))
            keys = (("-", "read"), (codec, "write"), (codec, "stage"))
            best = {k: max(rounds, key=lambda r: fps(r, k))[k] for k in keys}
            rd, wr, st = (best[k][2] / best[k][0] for k in keys)
            cpu = [float(np.median([1e3 * r[k][1] / r[k][2] for r in rounds])) for k in keys]
            cpu_ratios[codec] = (cpu[0] + cpu[1]) / cpu[2]
            size = (tmp / f"stage-{codec}.h5").stat().st_size / n_frames / 1024
            print(
                f"{codec:6} {rd:9.0f} {wr:10.0f} {st:10.0f} {'read' if rd <= wr else 'write':>6} {ratios[codec]:6.2f}"
                f"   {cpu[0]:.2f} + {cpu[1]:.2f} -> {cpu[2]:.2f}, {(cpu[0] + cpu[1]) / cpu[2]:.2f}"
                f"   ({size:.1f} KiB/frame; round ratios {' '.join(f'{x:.2f}' for x in per_round)})"
            )
    print(f"decode/bound ratio: {min(ratios.values()):.2f} (CPU: parts/stage {min(cpu_ratios.values()):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
