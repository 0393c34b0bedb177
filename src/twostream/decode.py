"""The decode stage: the videos of one shard -> one HDF5 frames shard.

``twostream decode --params JSON --index results/index.csv --shard shard-000
--out results/frames/shard-000.h5 --bad-list results/frames/shard-000.bad.csv``

The shard's videos are those ``index.assign_shards(index, decode.shards)`` gives
it, in index order. ``decode.readers`` threads decode and resize whole videos
(OpenCV releases the GIL) into recycled frame buffers, and for the jpeg codec also
encode them, while the calling thread writes the previous ones (lzf compression of
the raw codec happens inside the HDF5 write), so the stage runs at about the speed
of the slower of the two parts. Layout: see ``twostream.store``.

Bad videos (missing, empty, unreadable, not a video, fewer than 2 decodable
frames): with ``on_bad_video: fail`` the first one stops the stage with a one-line
error; with ``skip`` they are listed in the ``--bad-list`` CSV (status
``skipped``) and left out of the shard, so every later stage, which reads the
shard's /videos table, never sees them. A video that decodes fewer frames than its
container declares is kept with what decodes (``max_missing_frames: -1``, the
default) and listed with status ``truncated`` and both counts; with
``max_missing_frames >= 0`` a larger shortfall makes it bad. ``twostream decode --gather OUT LIST...`` concatenates the
per-shard lists into one (``results/frames/bad_videos.csv``).

A raw shard holds one frame size (a dense (N, H, W, 3) dataset); a video of
another size after resizing stops the stage with an error that suggests
``codec: jpeg``, whose per-frame bytes allow any size (or ``decode.size``, which
resizes every frame to one size).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import h5py
import numpy as np
import pandas as pd

from .config import ConfigError, add_params_arguments, from_dict, section_from_args, settings, to_dict
from .errors import InputError
from .index import assign_shards, read_index, shard_names
from .progress import progress as progress_bar
from .store import atomic_h5, atomic_path, check_output, create_dataset, write_provenance, write_video_table
from .video import Decoded, FramePool, decode_video, encode_jpeg

CODECS = ("raw", "jpeg")
BAD_COLUMNS = ["video_id", "path", "status", "declared_frames", "decoded_frames", "error"]


@settings("decode")
class DecodeConfig:
    """The ``decode:`` config section."""

    shards: int
    short_side: int
    size: list
    codec: str
    jpeg_quality: int
    on_bad_video: str
    max_missing_frames: int
    prefetch: int
    readers: int



# --------------------------------------------------------------------------- writing


@dataclass
class EncodedFrames:
    """One video's frames already JPEG-encoded (by a reader thread), with their size."""

    data: list[np.ndarray]
    height: int
    width: int

    def __len__(self) -> int:
        return len(self.data)


def encode_frames(frames_bgr, quality: int) -> EncodedFrames:
    h, w = frames_bgr[0].shape[:2]
    return EncodedFrames([encode_jpeg(f, quality) for f in frames_bgr], h, w)


class FrameWriter:
    """Appends whole videos to an open HDF5 file in the frames-shard layout.

    Frames go through a reused batch buffer (raw) or are encoded one by one (jpeg),
    so writing allocates no per-video arrays: fresh memory is slow to fault in.
    """

    BATCH = 16  # frames per HDF5 write call (raw)

    def __init__(self, f: h5py.File, codec: str, jpeg_quality: int = 90):
        if codec not in CODECS:
            raise ConfigError(f"decode.codec: {codec!r} is not one of {', '.join(CODECS)}")
        self.f = f
        self.codec = codec
        self.quality = int(jpeg_quality)
        self.n = 0
        self.ds: h5py.Dataset | None = None
        self.buf: np.ndarray | None = None
        self.rows: list[dict] = []

    def add(self, row: dict, frames_bgr, fps: float = 0.0) -> None:
        """Append one video's frames and its /videos row.

        ``frames_bgr``: uint8 BGR (H, W, 3) frames (a list or a (k, H, W, 3) array),
        or, for the jpeg codec, :class:`EncodedFrames`.
        """
        k = len(frames_bgr)
        if isinstance(frames_bgr, EncodedFrames):
            if self.codec != "jpeg":
                raise ValueError("EncodedFrames can only be added to a jpeg shard")
            h, w = frames_bgr.height, frames_bgr.width
            self._add_jpeg(frames_bgr.data)
        else:
            h, w = frames_bgr[0].shape[:2]
            if self.codec == "raw":
                self._add_raw(row, frames_bgr)
            else:
                self._add_jpeg([encode_jpeg(f, self.quality) for f in frames_bgr])
        self.rows.append(
            {
                "video_id": row["video_id"],
                "label": int(row["label"]),
                "class_name": row["class_name"],
                "split": row["split"],
                "n_frames": k,
                "fps": float(fps),
                "height": h,
                "width": w,
                "offset": self.n,
            }
        )
        self.n += k

    def _add_raw(self, row: dict, frames_bgr) -> None:
        h, w = frames_bgr[0].shape[:2]
        if self.ds is None:
            self.ds = create_dataset(
                self.f, "frames", shape=(0, h, w, 3), maxshape=(None, h, w, 3), chunks=(1, h, w, 3),
                dtype=np.uint8, compression="lzf",
            )  # fmt: skip
            self.buf = np.empty((self.BATCH, h, w, 3), np.uint8)
        H, W = self.ds.shape[1:3]
        if (h, w) != (H, W):
            raise InputError(
                f"{row.get('path', row['video_id'])}: frames are {w}x{h} but this raw shard holds {W}x{H} "
                "(a raw shard stores one frame size; use decode.codec: jpeg for mixed sizes, or decode.size: [W, H])"
            )
        k = len(frames_bgr)
        self.ds.resize(self.n + k, axis=0)
        for start in range(0, k, self.BATCH):
            part = frames_bgr[start : start + self.BATCH]
            for i, frame in enumerate(part):
                cv2.cvtColor(frame, cv2.COLOR_BGR2RGB, dst=self.buf[i])
            self.ds[self.n + start : self.n + start + len(part)] = self.buf[: len(part)]

    def _create_jpeg(self) -> None:
        """/jpeg (variable-length, which HDF5 cannot checksum) and /jpeg_crc32, one CRC-32 per frame."""
        self.ds = create_dataset(
            self.f, "jpeg", shape=(0,), maxshape=(None,), chunks=(1,), dtype=h5py.vlen_dtype(np.uint8)
        )
        self.crc = create_dataset(self.f, "jpeg_crc32", shape=(0,), maxshape=(None,), chunks=(4096,), dtype=np.uint32)

    def _add_jpeg(self, encoded: list[np.ndarray]) -> None:
        if self.ds is None:
            self._create_jpeg()
        k = len(encoded)
        data = np.empty(k, dtype=object)
        data[:] = encoded
        self.ds.resize(self.n + k, axis=0)
        self.ds[self.n : self.n + k] = data
        self.crc.resize(self.n + k, axis=0)
        self.crc[self.n : self.n + k] = [zlib.crc32(np.ascontiguousarray(e).tobytes()) for e in encoded]

    def finish(self) -> pd.DataFrame:
        """Write /videos (and an empty frames dataset for a shard without videos)."""
        if self.ds is None:
            if self.codec == "raw":
                create_dataset(self.f, "frames", shape=(0, 0, 0, 3), dtype=np.uint8)
            else:
                self._create_jpeg()
        videos = pd.DataFrame(self.rows, columns=list(_VIDEO_COLUMNS))
        write_video_table(self.f, videos)
        return videos


_VIDEO_COLUMNS = ("video_id", "label", "class_name", "split", "n_frames", "fps", "height", "width", "offset")


# --------------------------------------------------------------------------- reading


@dataclass
class _Item:
    row: dict
    decoded: Decoded | None = None
    error: InputError | None = None


def prefetch_videos(
    rows: list[dict],
    short_side: int,
    max_missing_frames: int,
    depth: int = 2,
    pool: FramePool | None = None,
    readers: int = 1,
    jpeg_quality: int | None = None,
    size: list | None = None,
) -> Iterator[_Item]:
    """Decode videos in ``readers`` background threads, up to ``depth`` videos ahead.

    Items come back in the order of ``rows``. Bad videos come back as items with
    ``error`` set; any other exception in a reader is re-raised in the consumer.
    OpenCV decodes, resizes and encodes without the GIL, so readers run beside the
    consumer. With ``jpeg_quality`` the readers also JPEG-encode the frames
    (``decoded.frames`` is then :class:`EncodedFrames`; the pixel buffers go back to
    ``pool`` at once), which spreads the codec's work over the reader threads.
    """

    def load(row: dict) -> _Item:
        try:
            decoded = decode_video(row["path"], short_side, max_missing_frames, pool, size)
        except InputError as e:
            return _Item(row, error=e)
        if jpeg_quality is not None:
            frames = decoded.frames
            decoded.frames = encode_frames(frames, jpeg_quality)
            if pool is not None:
                pool.put(frames)
        return _Item(row, decoded=decoded)

    ahead = max(int(depth), int(readers))
    with ThreadPoolExecutor(max_workers=max(1, int(readers)), thread_name_prefix="decode-reader") as ex:
        pending: deque[Future] = deque()
        todo = iter(rows)
        try:
            for row in itertools.islice(todo, ahead):
                pending.append(ex.submit(load, row))
            while pending:
                item = pending.popleft().result()
                for row in itertools.islice(todo, 1):
                    pending.append(ex.submit(load, row))
                yield item
        finally:
            for f in pending:
                f.cancel()


# --------------------------------------------------------------------------- stage


def shard_rows(index: pd.DataFrame, shard: str, n_shards: int) -> pd.DataFrame:
    """Rows of the index that belong to ``shard``, in index order."""
    if index.empty:
        return index
    return index[assign_shards(index, n_shards) == shard]


def shard_video_paths(index_path: str | Path, n_shards: int, shard: str) -> list[str]:
    """Paths of the videos of ``shard`` (the decode rule's inputs)."""
    index = read_index(index_path)
    if index.empty:
        return []
    return sorted(shard_rows(index, shard, int(n_shards))["path"])


def decode_shard(
    rows: pd.DataFrame,
    out: str | Path,
    cfg: DecodeConfig,
    provenance: dict | None = None,
    progress: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Decode ``rows`` (index rows) into the frames shard ``out``.

    Returns (the /videos table written, the bad videos skipped and the truncated
    videos kept, see ``BAD_COLUMNS``). With
    ``on_bad_video == "fail"`` the first bad video raises InputError and nothing
    is written.
    """
    records = rows.to_dict("records")
    bad: list[dict] = []
    with atomic_h5(out) as f:
        writer = FrameWriter(f, cfg.codec, cfg.jpeg_quality)
        pool = FramePool()
        items = prefetch_videos(
            records, cfg.short_side, cfg.max_missing_frames, cfg.prefetch, pool, cfg.readers,
            jpeg_quality=cfg.jpeg_quality if cfg.codec == "jpeg" else None, size=cfg.size or None,
        )  # fmt: skip
        bar = progress_bar(items, total=len(records), desc=f"decode {Path(out).stem}", unit="video",
                           file=sys.stderr, disable=not progress)  # fmt: skip
        for item in bar:
            if item.error is not None:
                if cfg.on_bad_video == "fail":
                    raise item.error
                print(f"skipping bad video: {item.error}", file=sys.stderr)
                bad.append({"video_id": item.row["video_id"], "path": item.row["path"], "status": "skipped",
                            "declared_frames": "", "decoded_frames": "", "error": str(item.error)})  # fmt: skip
                continue
            d = item.decoded
            if d.truncated:
                msg = (f"{item.row['path']}: truncated: decoded {d.n_frames} of the {d.declared} frames "
                       "its container declares")  # fmt: skip
                print(f"keeping truncated video: {msg}", file=sys.stderr)
                bad.append({"video_id": item.row["video_id"], "path": item.row["path"], "status": "truncated",
                            "declared_frames": d.declared, "decoded_frames": d.n_frames, "error": msg})  # fmt: skip
            writer.add(item.row, item.decoded.frames, item.decoded.fps)
            if not isinstance(item.decoded.frames, EncodedFrames):
                pool.put(item.decoded.frames)
        videos = writer.finish()
        n_skipped = sum(b["status"] == "skipped" for b in bad)
        write_provenance(f, "frames", to_dict(cfg), codec=cfg.codec, n_skipped=n_skipped,
                         n_truncated=len(bad) - n_skipped, **(provenance or {}))  # fmt: skip
    return videos, pd.DataFrame(bad, columns=BAD_COLUMNS)


def write_bad_list(bad: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        bad.to_csv(tmp, index=False)


def gather_bad_lists(paths: list[str | Path], out: str | Path) -> pd.DataFrame:
    """Concatenate per-shard bad-video lists into one CSV (with a shard column): the
    videos skipped as bad and the truncated ones kept (``status``)."""
    frames = []
    for p in paths:
        try:
            df = pd.read_csv(p, dtype=str, keep_default_na=False)
        except FileNotFoundError:
            raise InputError(f"{p}: no such bad-video list") from None
        except pd.errors.EmptyDataError:
            raise InputError(f"{p}: empty file, not a bad-video list") from None
        if list(df.columns) != BAD_COLUMNS:
            raise InputError(f"{p}: not a bad-video list (columns {', '.join(BAD_COLUMNS)})")
        df.insert(0, "shard", Path(p).name.split(".")[0])
        frames.append(df)
    all_bad = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["shard", *BAD_COLUMNS])
    write_bad_list(all_bad, out)
    return all_bad


def _dataset_meta(index_path: Path) -> str:
    meta = index_path.with_suffix(".json")
    if meta.is_file():
        try:
            return json.dumps(json.loads(meta.read_text()).get("dataset", {}), sort_keys=True)
        except json.JSONDecodeError:
            raise InputError(f"{meta}: not valid JSON") from None
    return "{}"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_params_arguments(p)
    p.add_argument("--index", help="video index CSV (results/index.csv)")
    p.add_argument("--shard", help="shard name, e.g. shard-000 (one of decode.shards)")
    p.add_argument("--out", help="frames shard to write (results/frames/<shard>.h5)")
    p.add_argument("--bad-list", help="CSV listing the videos skipped as bad (on_bad_video: skip)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--gather", metavar="OUT",
        help="instead of decoding: concatenate the bad-video lists given as arguments into OUT",
    )  # fmt: skip
    p.add_argument("lists", nargs="*", help="per-shard bad-video lists (with --gather)")


def run(args: argparse.Namespace) -> int:
    if args.gather:
        bad = gather_bad_lists(args.lists, args.gather)
        n_trunc = int((bad["status"] == "truncated").sum())
        print(f"{len(bad) - n_trunc} bad video(s) skipped, {n_trunc} truncated kept -> {args.gather}")
        return 0
    missing = [o for o in ("index", "shard", "out") if not getattr(args, o)]
    if missing:
        raise ConfigError(f"decode: missing argument(s) {', '.join('--' + m for m in missing)}")
    cfg = from_dict(DecodeConfig, section_from_args(args, "decode"), "decode")
    names = shard_names(cfg.shards)
    if args.shard not in names:
        raise ConfigError(f"decode: --shard {args.shard!r} is not one of {names[0]}..{names[-1]}")
    index_path = Path(args.index)
    if not index_path.is_file():
        raise InputError(f"{index_path}: no such index file")
    index = read_index(index_path)
    for out in (args.out, args.bad_list):  # fail before decoding anything
        if out:
            check_output(out)
    rows = shard_rows(index, args.shard, cfg.shards)
    videos, bad = decode_shard(
        rows,
        args.out,
        cfg,
        provenance={"shard": args.shard, "index": str(index_path), "dataset": _dataset_meta(index_path)},
        progress=not args.no_progress,
    )
    if args.bad_list:
        write_bad_list(bad, args.bad_list)
    n_skipped = int((bad["status"] == "skipped").sum())
    print(
        f"{args.shard}: {len(videos)} videos, {int(videos['n_frames'].sum()) if len(videos) else 0} frames"
        f" ({cfg.codec}), {n_skipped} skipped, {len(bad) - n_skipped} truncated (kept) -> {args.out}"
    )
    return 0
