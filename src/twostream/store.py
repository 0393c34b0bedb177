"""HDF5 layouts shared by every stage: atomic writers, provenance, readers.

Frames shard (``results/frames/{shard}.h5``), ``layout_version`` 1::

    /videos   compound table, one row per video (see VIDEO_DTYPE):
              video_id, label, class_name, split, n_frames, fps, height, width, offset
    /frames   (N, H, W, 3) uint8 RGB, one frame per chunk, lzf     (codec "raw")
    /jpeg     (N,) variable-length uint8, one JPEG per frame       (codec "jpeg")
    /jpeg_crc32 (N,) uint32, CRC-32 of each JPEG                   (codec "jpeg")
    attrs:    layout_version, kind="frames", codec, params (JSON), versions (JSON)

Frames of video ``v`` are rows ``offset[v] : offset[v] + n_frames[v]``.

Flow shard (``results/flow/{shard}.h5``)::

    /videos   same table; n_frames holds the number of flow fields (n - 1),
              offset indexes /flow
    /flow     (M, H, W, 2) uint8 (x, y) quantized, 128 = zero motion,
              or float16 in pixels/frame; one pair per chunk, lzf   (layout "fixed")
    /flow_png (M,) variable-length uint8, one lossless PNG per field: the x map
              above the y map, (2H, W) grey, 8-bit (uint8) or 16-bit holding the
              float16 bits (float16); any frame size per video          (layout "png")
    attrs:    layout_version, kind="flow", layout, backend, storage, bound,
              quantization, params (JSON), versions (JSON)

Flow field ``t`` of a video is the motion from frame ``t`` to frame ``t + 1``.

Checks: files use the HDF5 1.10 format (checksummed metadata), every chunked dataset a
Fletcher-32 checksum per chunk (``create_dataset``), /videos a ``crc32`` attribute.
Readers turn any failure into one StoreError naming the file and video (``checked_read``).
"""

from __future__ import annotations

import contextlib
import errno
import importlib.metadata as md
import json
import os
import re
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np
import pandas as pd

LAYOUT_VERSION = 1

VIDEO_DTYPE = np.dtype(
    [
        ("video_id", h5py.string_dtype()),
        ("label", np.int32),
        ("class_name", h5py.string_dtype()),
        ("split", h5py.string_dtype()),
        ("n_frames", np.int32),
        ("fps", np.float32),
        ("height", np.int32),
        ("width", np.int32),
        ("offset", np.int64),
    ]
)


from .errors import InputError, OutputError


class StoreError(InputError):
    """A shard is missing, malformed or inconsistent; the message names the file."""


def versions() -> dict[str, str]:
    """Versions of the packages that shape the stored numbers."""
    out = {}
    for name in ("twostream", "numpy", "h5py", "opencv-contrib-python-headless", "torch"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def write_provenance(f: h5py.File, kind: str, params: dict[str, Any], **extra: Any) -> None:
    """Attach the provenance attributes every file of this project carries."""
    f.attrs["layout_version"] = LAYOUT_VERSION
    f.attrs["kind"] = kind
    f.attrs["params"] = json.dumps(params, sort_keys=True, default=str)
    f.attrs["versions"] = json.dumps(versions(), sort_keys=True)
    for k, v in extra.items():
        f.attrs[k] = v
    # string attributes live in HDF5's global heap, which has no checksum
    f.attrs["attrs_crc32"] = attrs_crc(f.attrs)


def attrs_crc(attrs) -> int:
    """CRC-32 of a file's attributes (all but ``attrs_crc32`` itself), as read back."""
    items = sorted((k, v.decode() if isinstance(v, bytes) else str(v)) for k, v in attrs.items() if k != "attrs_crc32")
    return zlib.crc32(repr(items).encode())


def read_params(f: h5py.File) -> dict[str, Any]:
    return json.loads(f.attrs.get("params", "{}"))


# --------------------------------------------------------------------------- writing
#
# Every output is written under a temporary name beside it, ``.<name>.tmp`` in the same
# folder (``temp_path``), and renamed onto its final name only when complete. The name is
# the same for every run, so a rerun of a job killed by SIGKILL (which no process can
# catch) finds and removes its predecessor's temporary file; SIGTERM and SIGINT are turned
# into an exception by the CLI (``cli.main``), so the context managers below remove it.
# One writer per output path (Snakemake never runs two jobs with the same output).

# errno values that mean "this output cannot be written here"
_WRITE_ERRNOS = {
    errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO,
    errno.EFBIG, errno.EISDIR, errno.ENOTDIR, errno.EEXIST, errno.ENAMETOOLONG,
}  # fmt: skip

# HDF5 files whose write failed. HDF5 2.0 crashes (SIGSEGV) when such a file is closed or
# flushed again, including at interpreter exit, so they are never closed: the CLI ends
# the process with os._exit after printing the error (``abandoned_h5``).
_ABANDONED: list = []


def temp_path(path: str | os.PathLike) -> Path:
    """Where ``path`` is written until it is complete: ``.<name>.tmp`` in the same folder."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp")


def _errno(e: BaseException) -> int | None:
    n = getattr(e, "errno", None)
    if n:
        return int(n)
    m = re.search(r"errno = (\d+)", str(e))  # HDF5 puts the errno in its message
    return int(m.group(1)) if m else None


def cause(e: BaseException, where: str | os.PathLike | None = None) -> str:
    """A short cause of an OS or HDF5 error: the errno's text where there is one."""
    n = _errno(e)
    if n:
        return os.strerror(n)
    if where is not None:  # errors without an errno (torch.save): is the disk full?
        with contextlib.suppress(OSError):
            st = os.statvfs(Path(where).parent)
            if st.f_bavail == 0:
                return os.strerror(errno.ENOSPC)
    text = " ".join(str(e).split())
    return (text[:200] + "...") if len(text) > 200 else (text or type(e).__name__)


def _is_write_failure(e: BaseException, tmp: Path) -> bool:
    if isinstance(e, OSError) and _errno(e) in _WRITE_ERRNOS:
        return True
    text = str(e)
    return isinstance(e, (OSError, RuntimeError)) and (str(tmp) in text or "write failed" in text)


def check_output(path: str | os.PathLike) -> Path:
    """Fail at once, before any work, when ``path`` cannot be written; returns its temp path.

    Catches: ``path`` is a folder, a parent is a file, the folder is read-only or not
    writable, the disk has no room for a file. Removes a temporary file left by an
    earlier run of the same job.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: cannot write: it is a folder")
    for parent in path.parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise OutputError(f"{path}: cannot write: {parent} is a file, not a folder")
            break
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{path}: cannot write: cannot create folder {path.parent} ({cause(e)})") from None
    tmp = temp_path(path)
    try:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp)
        with open(tmp, "wb"):  # also truncates a predecessor's temporary file
            pass
    except OSError as e:
        raise OutputError(f"{path}: cannot write ({cause(e)})") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return tmp


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield the temporary path of ``path``; rename it onto ``path`` only on success.

    A crash or exception never leaves a half-written output under the final name, and
    the temporary file is removed on every exit path. Failing writes (no space left,
    read-only, ...) become one :class:`OutputError` naming the final path.
    """
    path = Path(path)
    tmp = check_output(path)
    try:
        try:
            yield tmp
            os.replace(tmp, path)
        except (OSError, RuntimeError) as e:
            if _is_write_failure(e, tmp):
                raise OutputError(f"{path}: cannot write ({cause(e, tmp)})") from None
            raise
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


@contextlib.contextmanager
def atomic_h5(path: str | os.PathLike) -> Iterator[h5py.File]:
    """Open a new HDF5 file for writing under a temporary name, rename on success.

    Files use the HDF5 1.10 format (``libver``), whose metadata (superblock, object
    headers, chunk indexes) carries checksums; datasets made with :func:`create_dataset`
    add a checksum per chunk. A write that fails leaves the file abandoned (see
    ``_ABANDONED``) and raises one :class:`OutputError` naming ``path``.
    """
    with atomic_path(path) as tmp:
        try:
            f = h5py.File(tmp, "w", libver=("v110", "v110"))
        except OSError as e:
            raise OutputError(f"{path}: cannot write ({cause(e, tmp)})") from None
        try:
            yield f
            f.flush()  # HDF5 caches chunks: a full disk may show only here
        except BaseException as e:
            if isinstance(e, (OSError, RuntimeError)) and _is_write_failure(e, tmp):
                _ABANDONED.append(f)
                raise OutputError(f"{path}: cannot write ({cause(e, tmp)})") from None
            try:
                f.close()
            except (OSError, RuntimeError):
                _ABANDONED.append(f)
            raise
        try:
            f.close()
        except (OSError, RuntimeError) as e:
            _ABANDONED.append(f)
            raise OutputError(f"{path}: cannot write ({cause(e, tmp)})") from None


def abandoned_h5() -> bool:
    """Whether an HDF5 write failed in this process (it must then end with ``os._exit``)."""
    return bool(_ABANDONED)


def create_dataset(f: h5py.Group, name: str, **kw: Any) -> h5py.Dataset:
    """``f.create_dataset`` with HDF5's Fletcher-32 checksum on every chunk.

    Every dataset this project writes goes through here. Scalars and empty datasets
    without a chunk shape hold no chunks and get none; variable-length data cannot be
    filtered and needs its own check (the frames shard's ``/jpeg_crc32``).
    """
    data = kw.get("data")
    shape = kw.get("shape", np.shape(data) if data is not None else None)
    dtype = np.dtype(kw["dtype"]) if kw.get("dtype") is not None else np.asarray(data).dtype
    chunked = kw.get("chunks") not in (None, False) or (shape is not None and len(shape) > 0 and all(shape))
    if chunked and not dtype.hasobject:
        kw.setdefault("fletcher32", True)
    return f.create_dataset(name, **kw)


# --------------------------------------------------------------------------- reading


_READ_ERRORS = (OSError, KeyError, ValueError, RuntimeError, TypeError, IndexError, AttributeError)


@contextlib.contextmanager
def checked_read(path: str | os.PathLike, video: str | None = None) -> Iterator[None]:
    """Turn any failure while reading HDF5 ``path`` into one StoreError naming the file
    (and the video, where the data is one video's): a failed checksum, a corrupt chunk,
    chunk index, object header or heap."""
    try:
        yield
    except InputError:
        raise
    except _READ_ERRORS as e:
        where = f"{path}: video {video!r}" if video is not None else str(path)
        raise StoreError(f"{where}: corrupt or unreadable data ({cause(e)})") from None


def table_crc(videos: pd.DataFrame) -> int:
    """CRC-32 of a /videos table's values (the table holds variable-length strings,
    which HDF5 cannot checksum)."""
    return zlib.crc32(videos.to_csv(index=False, lineterminator="\n").encode())


def write_video_table(f: h5py.Group, videos: pd.DataFrame) -> h5py.Dataset:
    """Write /videos with its ``crc32`` attribute (checked by every shard reader)."""
    arr = video_table_to_array(videos)
    ds = create_dataset(f, "videos", data=arr)
    ds.attrs["crc32"] = table_crc(array_to_video_table(arr))
    return ds


def video_table_to_array(videos: pd.DataFrame) -> np.ndarray:
    arr = np.zeros(len(videos), dtype=VIDEO_DTYPE)
    for name in VIDEO_DTYPE.names:
        if name not in videos:
            raise StoreError(f"video table lacks column {name!r}")
        col = videos[name].to_numpy()
        arr[name] = col.astype(object) if VIDEO_DTYPE[name].kind == "O" else col
    return arr


def array_to_video_table(arr: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame({name: arr[name] for name in arr.dtype.names})
    for name in arr.dtype.names:
        if df[name].dtype == object:
            df[name] = [v.decode() if isinstance(v, bytes) else v for v in df[name]]
    return df


def _open(path: str | os.PathLike, kind: str) -> h5py.File:
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such {kind} shard")
    if path.is_dir():
        raise StoreError(f"{path}: is a folder, not a {kind} shard")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise StoreError(f"{path}: not a readable HDF5 file ({cause(e)})") from None
    try:
        with checked_read(path):
            if "videos" not in f:
                raise StoreError(f"{path}: missing dataset /videos (not a {kind} shard)")
            got = f.attrs.get("kind", kind)
            got = got.decode() if isinstance(got, bytes) else got
            if got != kind:
                raise StoreError(f"{path}: is a {got!r} shard, expected {kind!r}")
    except BaseException:
        f.close()
        raise
    return f


@dataclass
class _Shard:
    """Lazy reader: the HDF5 file is opened on first use in each process.

    Safe to pickle into DataLoader workers (the handle is not pickled).
    """

    path: str
    kind: str = "frames"

    def __post_init__(self) -> None:
        self.path = str(self.path)
        self._f: h5py.File | None = None
        self._pid: int | None = None
        with _open(self.path, self.kind) as f, checked_read(self.path):
            ds = f["videos"]
            self.videos = array_to_video_table(ds[()])
            crc = ds.attrs.get("crc32")
            if crc is not None and int(crc) != table_crc(self.videos):
                raise StoreError(f"{self.path}: corrupt /videos table (its CRC-32 does not match)")
            self.attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
            crc = self.attrs.pop("attrs_crc32", None)
            if crc is not None and int(crc) != attrs_crc(self.attrs):
                raise StoreError(f"{self.path}: corrupt attributes (their CRC-32 does not match)")
        self._row = {vid: i for i, vid in enumerate(self.videos["video_id"])}

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_f"] = None
        state["_pid"] = None
        return state

    @property
    def file(self) -> h5py.File:
        if self._f is None or self._pid != os.getpid():
            self._f = _open(self.path, self.kind)
            self._pid = os.getpid()
        return self._f

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def video(self, video_id: str) -> pd.Series:
        try:
            return self.videos.iloc[self._row[video_id]]
        except KeyError:
            raise StoreError(f"{self.path}: no video {video_id!r}") from None

    def _rows(self, video_id: str, indices) -> np.ndarray:
        v = self.video(video_id)
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= v.n_frames):
            raise StoreError(
                f"{self.path}: {self.kind} index out of range for {video_id!r} "
                f"(has {v.n_frames}, asked {idx.min()}..{idx.max()})"
            )
        return idx + int(v.offset)

    def read_videos(self, video_ids) -> dict[str, np.ndarray]:
        """Every stored row of each video (raw frames or stored flow values, no conversion),
        read in as few slices as the videos' runs of consecutive rows allow: one HDF5 read per
        run, not per video. Only for the per-row layouts (raw frames, fixed flow)."""
        name = "frames" if self.kind == "frames" else "flow"
        try:
            rows = [self._row[v] for v in video_ids]
        except KeyError as e:
            raise StoreError(f"{self.path}: no video {e.args[0]!r}") from None
        tab = self.videos.iloc[rows]
        offs = tab["offset"].to_numpy(np.int64)
        lens = tab["n_frames"].to_numpy(np.int64).clip(min=0)
        order = np.argsort(offs, kind="stable")
        with checked_read(self.path):
            ds = self.file[name]
        out: dict[str, np.ndarray] = {}
        i = 0
        while i < len(order):  # a run: videos whose rows follow each other in the file
            j, end = i + 1, offs[order[i]] + lens[order[i]]
            while j < len(order) and offs[order[j]] == end:
                end += lens[order[j]]
                j += 1
            start, run = offs[order[i]], order[i:j]
            try:
                with checked_read(self.path):
                    block = ds[int(start) : int(end)] if end > start else np.zeros((0,) + ds.shape[1:], ds.dtype)
            except StoreError:  # name the video: read the run's videos one by one
                for k in run:
                    with checked_read(self.path, video_ids[k]):
                        ds[int(offs[k]) : int(offs[k] + lens[k])]
                raise
            for k in run:
                out[video_ids[k]] = block[offs[k] - start : offs[k] - start + lens[k]]
            i = j
        return out


class FrameShard(_Shard):
    """Reads RGB frames (uint8, (k, H, W, 3)) of one video by frame index."""

    def __init__(self, path: str | os.PathLike):
        super().__init__(str(path), "frames")

    @property
    def codec(self) -> str:
        return str(self.attrs.get("codec", "raw"))

    def read(self, video_id: str, indices) -> np.ndarray:
        rows = self._rows(video_id, indices)
        f = self.file
        with checked_read(self.path, video_id):
            if self.codec == "jpeg":
                return self._read_jpeg(f, video_id, rows)
            return _read_rows(f["frames"], rows)

    def _read_jpeg(self, f: h5py.File, video_id: str, rows: np.ndarray) -> np.ndarray:
        import cv2  # deferred: OpenCV is slow to import; only jpeg frames and png flow need it

        ds = f["jpeg"]
        crcs = f["jpeg_crc32"] if "jpeg_crc32" in f else None
        out = []
        for r in rows:
            data = np.asarray(ds[r], dtype=np.uint8)
            if crcs is not None and zlib.crc32(data.tobytes()) != int(crcs[r]):
                raise StoreError(f"{self.path}: video {video_id!r}: frame {r} fails its CRC-32 check (corrupt data)")
            img = cv2.imdecode(data, cv2.IMREAD_COLOR)
            if img is None:
                raise StoreError(f"{self.path}: video {video_id!r}: frame {r} is not a decodable JPEG")
            out.append(img[..., ::-1])
        if not out:  # same shape as the raw codec's empty read
            v = self.video(video_id)
            return np.zeros((0, int(v.height), int(v.width), 3), np.uint8)
        return np.stack(out)


def _read_rows(ds: h5py.Dataset, rows: np.ndarray) -> np.ndarray:
    """Read arbitrary rows (in any order, with repeats) from a chunked dataset."""
    if rows.size == 0:
        return np.zeros((0,) + ds.shape[1:], ds.dtype)
    uniq, inverse = np.unique(rows, return_inverse=True)
    if uniq.size > 1 and np.all(np.diff(uniq) == 1):
        block = ds[int(uniq[0]) : int(uniq[-1]) + 1]
    else:
        block = np.stack([ds[int(r)] for r in uniq])
    return block[inverse]


def dequantize_flow(q: np.ndarray, bound: float) -> np.ndarray:
    """uint8 (128 = 0) back to pixels/frame in [-bound, bound]."""
    return (q.astype(np.float32) - 128.0) * (bound / 127.0)


def quantize_flow(flow: np.ndarray, bound: float) -> np.ndarray:
    """Clip to ±bound and map linearly with rounding to uint8: -bound → 1, 0 → 128, +bound → 255."""
    f = np.clip(np.asarray(flow, dtype=np.float32), -bound, bound)
    return np.rint(f * (127.0 / bound) + 128.0).astype(np.uint8)


FLOW_LAYOUTS = ("fixed", "png")


def encode_flow_png(field: np.ndarray) -> np.ndarray:
    """One stored flow field (H, W, 2), uint8 or float16, to lossless PNG bytes.

    The x map sits above the y map in one grey image (2H, W): 8-bit for uint8, 16-bit
    holding the float16 bit patterns for float16.
    """
    import cv2  # deferred: OpenCV is slow to import; only jpeg frames and png flow need it

    field = np.asarray(field)
    if field.dtype == np.float16:
        field = field.view(np.uint16)
    elif field.dtype != np.uint8:
        raise StoreError(f"flow PNG holds uint8 or float16 fields, got {field.dtype}")
    img = np.ascontiguousarray(np.concatenate([field[..., 0], field[..., 1]], axis=0))
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:  # pragma: no cover - OpenCV fails only on invalid arrays
        raise StoreError(f"cannot PNG-encode a flow field of shape {field.shape}")
    return buf.reshape(-1)


def decode_flow_png(buf: np.ndarray, dtype: np.dtype) -> np.ndarray | None:
    """PNG bytes of :func:`encode_flow_png` back to the stored field (H, W, 2); None if undecodable."""
    import cv2  # deferred: OpenCV is slow to import; only jpeg frames and png flow need it

    img = cv2.imdecode(np.asarray(buf, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None or img.ndim != 2 or img.shape[0] % 2:
        return None
    h = img.shape[0] // 2
    out = np.stack([img[:h], img[h:]], axis=-1)
    return out.view(np.float16) if np.dtype(dtype) == np.float16 else out


class FlowShard(_Shard):
    """Reads flow fields (float32 pixels/frame, (k, H, W, 2)) of one video by index.

    Layout ``fixed`` (one frame size per shard, dataset /flow) or ``png`` (any size per
    video, dataset /flow_png); see the module docstring.
    """

    def __init__(self, path: str | os.PathLike):
        super().__init__(str(path), "flow")

    @property
    def bound(self) -> float:
        return float(self.attrs.get("bound", 20.0))

    @property
    def layout(self) -> str:
        return str(self.attrs.get("layout", "fixed"))

    def read(self, video_id: str, indices) -> np.ndarray:
        raw = self.read_raw(video_id, indices)
        if raw.dtype == np.uint8:
            return dequantize_flow(raw, self.bound)
        return raw.astype(np.float32)

    def read_raw(self, video_id: str, indices) -> np.ndarray:
        """Stored values (uint8 quantized or float16), (k, H, W, 2), without conversion."""
        rows = self._rows(video_id, indices)
        with checked_read(self.path, video_id):
            if self.layout != "png":
                return _read_rows(self.file["flow"], rows)
            dtype = np.float16 if self.attrs.get("storage") == "float16" else np.uint8
            v = self.video(video_id)
            out = np.empty((len(rows), int(v.height), int(v.width), 2), dtype)
            ds = self.file["flow_png"]
            for i, r in enumerate(rows):
                field = decode_flow_png(ds[r], dtype)
                if field is None or field.shape != out.shape[1:]:
                    raise StoreError(f"{self.path}: flow field {r} of {video_id!r} is not a decodable "
                                     f"{int(v.height)}x{int(v.width)} flow PNG")
                out[i] = field
            return out
