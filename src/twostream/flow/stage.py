"""``twostream flow``: optical flow of every video of a frames shard.

Reads ``results/frames/{shard}.h5`` (see ``twostream.store``), computes the flow
between consecutive grayscale frames with the configured backend and writes
``results/flow/{shard}.h5``: a video of n frames gets n - 1 fields, field t being
the motion from frame t to frame t + 1. Values are clipped to +-bound and stored
quantized to uint8 with rounding (128 = zero; ``store.quantize_flow``) or as
float16: in one (M, H, W, 2) dataset, one pair per chunk, lzf-compressed, when the
shard holds one frame size (layout ``fixed``), or one lossless PNG per field when
its videos differ in size (layout ``png``; ``flow.layout: auto`` chooses).
Videos are solved in batches of one frame size.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict

import h5py
import numpy as np

from ..config import add_params_arguments, section_from_args
from ..errors import InputError
from ..progress import progress as progress_bar
from ..store import (
    FrameShard,
    StoreError,
    atomic_h5,
    encode_flow_png,
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


def check_frames(shard: FrameShard) -> list[tuple[int, int]]:
    """Validate a frames shard before any work; returns its frame sizes (H, W), in order of
    first appearance (empty for a shard without videos).

    Errors name the file and, where it is one video's fault, the video.
    """
    f = shard.file
    key = "jpeg" if shard.codec == "jpeg" else "frames"
    if key not in f:
        raise StoreError(f"{shard.path}: missing dataset /{key} (codec {shard.codec!r})")
    ds = f[key]
    if key == "frames" and len(shard.videos):
        if ds.dtype != np.uint8:
            raise InputError(f"{shard.path}: /frames has dtype {ds.dtype}, expected uint8 RGB")
        if ds.ndim != 4 or ds.shape[-1] != 3:
            raise InputError(f"{shard.path}: /frames has shape {ds.shape}, expected (N, H, W, 3)")
    n_rows = len(ds)
    sizes: dict[tuple[int, int], None] = {}
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
        if key == "frames" and (v.height, v.width) != tuple(ds.shape[1:3]):
            raise InputError(
                f"{shard.path}: video {v.video_id!r} is {v.height}x{v.width} but /frames holds "
                f"{ds.shape[1]}x{ds.shape[2]} frames"
            )
        if v.height < 3 or v.width < 3:
            raise InputError(
                f"{shard.path}: video {v.video_id!r}: frames of {v.height}x{v.width} px are too small for optical flow"
            )
        sizes[(int(v.height), int(v.width))] = None
    return list(sizes)


def choose_layout(requested: str, sizes: list[tuple[int, int]], path: str) -> str:
    """``fixed`` or ``png`` for a shard of these frame sizes (``flow.layout``)."""
    if requested == "auto":
        return "fixed" if len(sizes) <= 1 else "png"
    if requested == "fixed" and len(sizes) > 1:
        shown = ", ".join(f"{h}x{w}" for h, w in sizes[:4])
        raise InputError(
            f"{path}: videos of {len(sizes)} frame sizes ({shown}); flow.layout fixed holds one size per "
            "shard (use flow.layout: auto or png, or decode.size for one size)"
        )
    return requested


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """(k, H, W, 3) uint8 RGB -> (k, H, W) uint8 luma (cv2's RGB2GRAY weights)."""
    import cv2  # deferred: OpenCV is slow to import; only this step needs it

    return np.stack([cv2.cvtColor(np.ascontiguousarray(x), cv2.COLOR_RGB2GRAY) for x in rgb])


def _pair_batches(shard: FrameShard, target: int):
    """Yield (prev, next) uint8 grayscale stacks of consecutive pairs, video after video,
    in output order, each of one frame size and with at least ``target`` pairs (except
    before a change of size and at the end)."""
    prevs, nexts, n = [], [], 0
    for v in shard.videos.itertuples():
        if n and prevs[0].shape[1:] != (v.height, v.width):
            yield np.concatenate(prevs), np.concatenate(nexts)
            prevs, nexts, n = [], [], 0
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
    cfg = flow_config(cfg_dict)
    check_output(out_path)  # fail before any work
    shard = FrameShard(frames_path)
    with checked_read(frames_path):
        sizes = check_frames(shard)
    layout = choose_layout(cfg.layout, sizes, str(frames_path))
    if not sizes:
        print(f"{frames_path}: no videos (every video of the shard was bad?); writing an empty flow shard",
              file=sys.stderr)  # fmt: skip
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
        if layout == "png":  # each field a PNG: its own CRC-32 per chunk and zlib's Adler-32
            ds = create_dataset(f, "flow_png", shape=(total,), chunks=(1,), dtype=h5py.vlen_dtype(np.uint8))
        elif total:
            H, W = sizes[0]
            ds = create_dataset(
                f, "flow", shape=(total, H, W, 2), dtype=dtype, chunks=(1, H, W, 2), compression="lzf"
            )  # fmt: skip
        else:  # no videos: no chunks (HDF5 chunks cannot exceed an empty shape)
            ds = create_dataset(f, "flow", shape=(0, 0, 0, 2), dtype=dtype)
        row = 0
        target = max(cfg.batch_size, 32)
        with progress_bar(total=total, desc=f"flow {cfg.backend}", unit="pair", file=sys.stderr,
                          disable=not progress) as bar:  # fmt: skip
            for prev, nxt in _pair_batches(shard, target):
                flow = backend(prev, nxt)
                flow = np.clip(flow, -cfg.bound, cfg.bound)
                stored = quantize_flow(flow, cfg.bound) if dtype == np.uint8 else flow.astype(np.float16)
                if layout == "png":
                    data = np.empty(len(stored), dtype=object)
                    data[:] = [encode_flow_png(x) for x in stored]
                    stored = data
                ds[row : row + len(flow)] = stored
                row += len(flow)
                bar.update(len(flow))
        assert row == total, (row, total)
        write_provenance(
            f,
            "flow",
            asdict(cfg),
            layout=layout,
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
    return {"pairs": total, "seconds": seconds, "setup_seconds": setup, "device": device, "backend": cfg.backend,
            "layout": layout}


def run(args: argparse.Namespace) -> int:
    cfg = section_from_args(args, "flow")
    if args.threads and args.threads > 0:
        import cv2  # deferred: OpenCV is slow to import; only this step needs it
        import torch  # deferred: torch takes seconds to import; only the torch backend needs it

        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    s = compute_shard(args.frames, args.out, cfg)
    rate = s["pairs"] / s["seconds"] if s["seconds"] > 0 else float("nan")
    print(
        f"flow: {s['pairs']} pairs with {s['backend']} on {s['device']} in {s['seconds']:.1f} s, layout {s['layout']} "
        f"({rate:.1f} pairs/s; set-up {s['setup_seconds']:.1f} s)",
        file=sys.stderr,
    )
    return 0
