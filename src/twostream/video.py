"""Reading and writing encoded videos, resizing frames, and the JPEG frame codec.

Decoding goes through OpenCV's FFmpeg backend. A file that cannot give a
complete video (missing, empty, unreadable, not a video, truncated, corrupt,
fewer than two frames) raises :class:`twostream.errors.InputError` with a
one-line message naming the file and the problem.

Frames travel as OpenCV gives them (BGR, uint8) until they are stored; the
stores convert to RGB (raw codec) or encode BGR to JPEG (which decodes to BGR,
and readers flip it to RGB).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

from .errors import InputError

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v", ".wmv", ".flv", ".ogv")

# The least number of frames a usable video has (optical flow needs a pair).
MIN_FRAMES = 2


def is_video_name(name: str | os.PathLike) -> bool:
    return Path(name).suffix.lower() in VIDEO_EXTENSIONS


def target_size(width: int, height: int, short_side: int, size: Sequence[int] | None = None) -> tuple[int, int]:
    """(width, height) after scaling so the shorter side is ``short_side`` (0 keeps the size);
    ``size`` = (width, height), when given, is the output size whatever the input's."""
    if size:
        return int(size[0]), int(size[1])
    if short_side <= 0 or min(width, height) == short_side:
        return width, height
    scale = short_side / min(width, height)
    if width <= height:
        return short_side, max(1, int(round(height * scale)))
    return max(1, int(round(width * scale))), short_side


def resize_short_side(
    frame: np.ndarray, short_side: int, dst: np.ndarray | None = None, size: Sequence[int] | None = None
) -> np.ndarray:
    """Scale ``frame`` (H, W, C) so its shorter side is ``short_side``, or to ``size`` =
    (width, height) when given (into ``dst`` if given).

    Area interpolation when shrinking (no aliasing), bilinear when enlarging.
    """
    h, w = frame.shape[:2]
    size = target_size(w, h, short_side, size)
    if size == (w, h):
        if dst is None:
            return frame
        np.copyto(dst, frame)
        return dst
    interp = cv2.INTER_AREA if size[0] < w else cv2.INTER_LINEAR
    return cv2.resize(frame, size, dst=dst, interpolation=interp)


class FramePool:
    """Recycles frame buffers between a decoding and a writing thread.

    Fresh memory is slow to fault in (here about 0.6 GB/s, against >10 GB/s to fill
    memory already mapped), so the decode stage decodes into buffers that the writer
    hands back once their video is stored. Thread-safe.
    """

    def __init__(self) -> None:
        self._free: dict[tuple, list[np.ndarray]] = {}
        self._lock = threading.Lock()

    def get(self, shape: tuple[int, ...]) -> np.ndarray:
        with self._lock:
            free = self._free.get(tuple(shape))
            if free:
                return free.pop()
        return np.empty(shape, np.uint8)

    def put(self, frames: Iterable[np.ndarray]) -> None:
        with self._lock:
            for f in frames:
                self._free.setdefault(f.shape, []).append(f)


def check_readable(path: str | os.PathLike) -> Path:
    """Fail with a one-line error unless ``path`` is a non-empty, readable file."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: unreadable: is a directory, not a video file")
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as e:
        raise InputError(f"{path}: unreadable ({e.strerror or e})") from None
    if size == 0:
        raise InputError(f"{path}: empty file (0 bytes), not a video")
    return path


@dataclass
class Decoded:
    """A decoded video: its frames (uint8 BGR, (H, W, 3) each, after resizing).

    ``frames`` is a list from :func:`decode_video` (no large copy: the decode stage
    streams the frames into its writer) and one (n, H, W, 3) array from :func:`read_video`.
    """

    frames: list[np.ndarray] | np.ndarray
    fps: float
    source_size: tuple[int, int]  # (width, height) as encoded
    declared: int = 0  # frames the container declares (0: unknown)

    @property
    def truncated(self) -> bool:
        """Fewer frames decode than the container declares."""
        return 0 < self.declared and self.n_frames < self.declared

    @property
    def n_frames(self) -> int:
        return len(self.frames)


def decode_video(
    path: str | os.PathLike,
    short_side: int = 0,
    max_missing_frames: int = -1,
    pool: FramePool | None = None,
    size: Sequence[int] | None = None,
) -> Decoded:
    """Decode every frame of ``path`` and resize it (shorter side ``short_side``; 0 keeps;
    or to ``size`` = (width, height) when given).

    With a ``pool`` the frames are buffers taken from it (give them back with
    ``pool.put(decoded.frames)`` when done).

    The container's frame count is not trusted: a video is what decodes. It is rejected
    (InputError) when FFmpeg cannot open it, when it gives fewer than ``MIN_FRAMES``
    frames, when its frame size changes mid-stream, or, with ``max_missing_frames >= 0``
    (strict), when it gives more than that many fewer frames than its container
    declares. ``-1`` keeps such a video with what decodes (``Decoded.truncated``).
    """
    path = check_readable(path)
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened():
            short = _riff_shortfall(path)
            if short:
                raise InputError(f"{path}: truncated: {short}; FFmpeg cannot open it")
            raise InputError(f"{path}: not a decodable video (FFmpeg cannot open it: corrupt or not a video file)")
        declared = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        frames: list[np.ndarray] = []
        src = out_shape = None
        scratch = None  # decode buffer, reused for every frame when a pool is given
        while True:
            ok, frame = cap.read(scratch) if scratch is not None else cap.read()
            if not ok:
                break
            if src is None:
                src = frame.shape
                w, h = target_size(src[1], src[0], short_side, size)
                out_shape = (h, w, 3)
                if pool is not None:
                    scratch = frame
            elif frame.shape != src:
                raise InputError(
                    f"{path}: frame size changes mid-video ({src[1]}x{src[0]} -> {frame.shape[1]}x{frame.shape[0]} "
                    f"at frame {len(frames)})"
                )
            if pool is None:
                frames.append(resize_short_side(frame, short_side, size=size))
            else:
                frames.append(resize_short_side(frame, short_side, dst=pool.get(out_shape), size=size))
    finally:
        cap.release()
    n = len(frames)
    if n == 0:
        raise InputError(f"{path}: no decodable frames (corrupt or not a video file)")
    if n < MIN_FRAMES:
        raise InputError(
            f"{path}: only {n} frame decodes (a still image, or a corrupt video); need at least {MIN_FRAMES}"
        )
    # Containers that know their length (AVI, MP4) declare it; FFmpeg reports
    # junk (negative or huge) for streams that do not.
    declared_n = int(round(declared)) if 0 < declared < 1e7 else 0
    if max_missing_frames >= 0 and declared_n and n < declared_n - max_missing_frames:
        raise InputError(f"{path}: truncated or corrupt: decoded {n} of the {declared_n} frames its container declares")
    return Decoded(frames, fps, (int(src[1]), int(src[0])), declared_n)


def read_video(path: str | os.PathLike, short_side: int = 0, max_missing_frames: int = -1) -> Decoded:
    """:func:`decode_video` with the frames stacked into one (n, H, W, 3) BGR array."""
    d = decode_video(path, short_side, max_missing_frames)
    return Decoded(np.stack(d.frames), d.fps, d.source_size, d.declared)


def _riff_shortfall(path: Path) -> str:
    """For a RIFF (AVI) file shorter than its header says: a description, else ''."""
    with open(path, "rb") as fh:
        head = fh.read(12)
    if len(head) < 12 or head[:4] != b"RIFF":
        return ""
    declared = int.from_bytes(head[4:8], "little") + 8
    size = path.stat().st_size
    return f"file has {size} of the {declared} bytes its AVI header declares" if size < declared else ""


def video_frame_count(path: str | os.PathLike) -> int:
    """Frames that decode from ``path`` (a full decode; no resizing)."""
    return decode_video(path).n_frames


def encode_jpeg(frame_bgr: np.ndarray, quality: int) -> np.ndarray:
    """One BGR frame to JPEG bytes (uint8 1-D array)."""
    ok, buf = cv2.imencode(".jpg", frame_bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV fails only on invalid arrays
        raise InputError(f"cannot JPEG-encode a frame of shape {frame_bgr.shape}")
    return buf.reshape(-1)


def decode_jpeg(buf: np.ndarray) -> np.ndarray:
    """JPEG bytes to a BGR frame."""
    img = cv2.imdecode(np.asarray(buf, dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError("bytes are not a decodable JPEG")
    return img


def write_video(
    path: str | os.PathLike,
    frames_rgb: Iterable[np.ndarray] | np.ndarray,
    fps: float = 25.0,
    fourcc: str = "XVID",
    params: Sequence[int] = (),
) -> Path:
    """Encode RGB uint8 frames (H, W, 3) into ``path`` with OpenCV's VideoWriter (FFmpeg).

    ``fourcc``: ``XVID`` (MPEG-4 Part 2 in .avi, as UCF101), ``MJPG``, ``FFV1``
    (lossless), ``mp4v``... ``params``: extra VideoWriter properties
    (``[cv2.VIDEOWRITER_PROP_QUALITY, 95, ...]``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    try:
        for frame in frames_rgb:
            frame = np.asarray(frame, dtype=np.uint8)
            if writer is None:
                h, w = frame.shape[:2]
                writer = cv2.VideoWriter(
                    str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*fourcc), float(fps), (w, h), list(params)
                )
                if not writer.isOpened():
                    raise InputError(f"{path}: OpenCV cannot open a {fourcc} video writer for this file")
            writer.write(np.ascontiguousarray(frame[..., ::-1]))
    finally:
        if writer is not None:
            writer.release()
    if writer is None:
        raise InputError(f"{path}: no frames to write")
    return path
