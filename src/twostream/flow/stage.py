"""``twostream flow``: optical flow of every video of a frames shard.

Reads ``results/frames/{shard}.h5`` (see ``twostream.store``), computes the flow
between consecutive grayscale frames with the configured backend and writes
``results/flow/{shard}.h5``: a video of n frames gets n - 1 fields, field t being
the motion from frame t to frame t + 1. Values are clipped to +-bound and stored
quantized to uint8 with rounding (128 = zero; ``store.quantize_flow``) or as
float16, one pair per chunk, lzf-compressed.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict

import numpy as np

from ..config import add_params_arguments, section_from_args
from ..errors import InputError
from ..store import (
    FrameShard,
    StoreError,
    atomic_h5,
    check_output,
    checked_read,
    create_dataset,
    quantize_flow,
    write_provenance,
    write_video_table,
)
from . import flow_config, make_backend

QUANTIZATION = "clip to +-bound, round(x * 127 / bound) + 128 -> uint8 (1..255, 128 = zero)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_params_arguments(p)
    p.add_argument("--frames", required=True, help="frames shard (HDF5) to read")
    p.add_argument("--out", required=True, help="flow shard (HDF5) to write")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch and OpenCV (0: library default)")


def check_frames(shard: FrameShard) -> tuple[int, int]:
    """Validate a frames shard before any work; returns the frame size (H, W).

    Errors name the file and, where it is one video's fault, the video.
    """
    f = shard.file
    key = "jpeg" if shard.codec == "jpeg" else "frames"
    if key not in f:
        raise StoreError(f"{shard.path}: missing dataset /{key} (codec {shard.codec!r})")
    ds = f[key]
    if key == "frames":
        if ds.dtype != np.uint8:
            raise InputError(f"{shard.path}: /frames has dtype {ds.dtype}, expected uint8 RGB")
        if ds.ndim != 4 or ds.shape[-1] != 3:
            raise InputError(f"{shard.path}: /frames has shape {ds.shape}, expected (N, H, W, 3)")
        H, W = int(ds.shape[1]), int(ds.shape[2])
    else:
        H, W = (
            (int(shard.videos["height"].iloc[0]), int(shard.videos["width"].iloc[0])) if len(shard.videos) else (0, 0)
        )
    n_rows = len(ds)
    for v in shard.videos.itertuples():
        if v.n_frames < 2:
            raise InputError(
                f"{shard.path}: video {v.video_id!r} has {v.n_frames} frame(s); optical flow needs at least 2"
            )
        if v.offset < 0 or v.offset + v.n_frames > n_rows:
            raise InputError(
                f"{shard.path}: video {v.video_id!r} rows {v.offset}..{v.offset + v.n_frames - 1} "
                f"lie outside /{key} ({n_rows} rows)"
            )
        if (v.height, v.width) != (H, W):
            raise InputError(
                f"{shard.path}: video {v.video_id!r} is {v.height}x{v.width} but the shard's first video is "
                f"{H}x{W}; the flow layout holds one frame size per shard (set decode.short_side so all match)"
            )
    if len(shard.videos) and (H < 3 or W < 3):
        raise InputError(f"{shard.path}: frames of {H}x{W} px are too small for optical flow")
    return H, W


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """(k, H, W, 3) uint8 RGB -> (k, H, W) uint8 luma (cv2's RGB2GRAY weights)."""
    import cv2

    return np.stack([cv2.cvtColor(np.ascontiguousarray(x), cv2.COLOR_RGB2GRAY) for x in rgb])


def _pair_batches(shard: FrameShard, target: int):
    """Yield (prev, next) uint8 grayscale stacks of consecutive pairs, video after video,
    in output order, each with at least ``target`` pairs (except the last)."""
    prevs, nexts, n = [], [], 0
    for v in shard.videos.itertuples():
        try:
            gray = to_gray(shard.read(v.video_id, np.arange(v.n_frames)))
        except StoreError:
            raise
        except Exception as e:  # undecodable frame, ...
            raise InputError(f"{shard.path}: video {v.video_id!r}: cannot read frames ({e})") from None
        prevs.append(gray[:-1])
        nexts.append(gray[1:])
        n += len(gray) - 1
        if n >= target:
            yield np.concatenate(prevs), np.concatenate(nexts)
            prevs, nexts, n = [], [], 0
    if n:
        yield np.concatenate(prevs), np.concatenate(nexts)


def compute_shard(frames_path: str, out_path: str, cfg_dict: dict, progress: bool = True) -> dict:
    """Flow of every video of ``frames_path`` into ``out_path`` (atomic); returns a summary."""
    from tqdm import tqdm

    cfg = flow_config(cfg_dict)
    check_output(out_path)  # fail before any work
    shard = FrameShard(frames_path)
    with checked_read(frames_path):
        H, W = check_frames(shard)
    videos = shard.videos.copy()
    n_flow = (videos["n_frames"] - 1).astype(np.int64)
    videos["n_frames"] = n_flow.astype(np.int32)
    videos["offset"] = np.concatenate([[0], np.cumsum(n_flow.to_numpy())[:-1]]).astype(np.int64) if len(videos) else []
    total = int(n_flow.sum())

    t_setup = time.perf_counter()
    backend = make_backend(cfg)  # torch.compile warms up here
    setup = time.perf_counter() - t_setup
    device = str(getattr(backend, "device", "cpu"))
    dtype = np.uint8 if cfg.storage == "uint8" else np.float16
    t0 = time.perf_counter()
    with atomic_h5(out_path) as f:
        write_video_table(f, videos)
        ds = create_dataset(
            f,
            "flow",
            shape=(total, H, W, 2),
            maxshape=(None, H, W, 2),
            dtype=dtype,
            chunks=(1, max(H, 1), max(W, 1), 2),
            compression="lzf",
        )
        row = 0
        target = max(cfg.batch_size, 32)
        with tqdm(total=total, desc=f"flow {cfg.backend}", unit="pair", file=sys.stderr, disable=not progress) as bar:
            for prev, nxt in _pair_batches(shard, target):
                flow = backend(prev, nxt)
                flow = np.clip(flow, -cfg.bound, cfg.bound)
                ds[row : row + len(flow)] = (
                    quantize_flow(flow, cfg.bound) if dtype == np.uint8 else flow.astype(np.float16)
                )
                row += len(flow)
                bar.update(len(flow))
        assert row == total, (row, total)
        write_provenance(
            f,
            "flow",
            asdict(cfg),
            backend=cfg.backend,
            storage=cfg.storage,
            bound=float(cfg.bound),
            quantization=QUANTIZATION if dtype == np.uint8 else "float16, clipped to +-bound",
            device=device,
            source=str(frames_path),
            convention="flow[t] = motion from frame t to frame t+1, (x, y) in pixels/frame; n frames -> n-1 fields",
        )
    shard.close()
    seconds = time.perf_counter() - t0
    return {"pairs": total, "seconds": seconds, "setup_seconds": setup, "device": device, "backend": cfg.backend}


def run(args: argparse.Namespace) -> int:
    cfg = section_from_args(args, "flow")
    if args.threads and args.threads > 0:
        import cv2
        import torch

        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    s = compute_shard(args.frames, args.out, cfg)
    rate = s["pairs"] / s["seconds"] if s["seconds"] > 0 else float("nan")
    print(
        f"flow: {s['pairs']} pairs with {s['backend']} on {s['device']} in {s['seconds']:.1f} s "
        f"({rate:.1f} pairs/s; set-up {s['setup_seconds']:.1f} s)",
        file=sys.stderr,
    )
    return 0
