"""Torch datasets over the HDF5 frame and flow shards: snippet sampling, crops, flips.

Snippets
--------
A *snippet* at position ``t`` of a video is what one stream sees once:

* flow (motion): the stack of flow fields ``t, t+1, ..., t+L-1`` (field ``k`` is the motion
  from frame ``k`` to ``k+1``), as ``2L`` channels ``x0, y0, x1, y1, ...`` in pixels/frame;
* rgb (appearance): frame ``t`` for an RGB-only model; when flow is also loaded (fused
  models) the frame in the middle of the stack, ``t + L // 2``, so both look at one moment.

Rule for every video length (``n`` frames, ``m`` flow fields, usually ``m = n - 1``):
positions are ``0 .. P-1`` with ``P = max(m - L + 1, 1)`` when flow is loaded, ``P = n``
otherwise. Indices past the end are clamped to the last one, so a video shorter than
``L + 1`` frames repeats its last flow field to fill the stack (and its last frame), and
a video with no flow field at all (one frame) gives zero flow.

Sampling
--------
* training (``mode="train"``): TSN segments. ``[0, P)`` is cut into ``segments`` equal
  parts and one position is drawn uniformly inside each (parts shorter than one position
  use their start, clamped to ``P - 1``). An item is one video:
  ``{"rgb": (K, 3, S, S), "flow": (K, 2L, S, S), "label", "video"}``.
* testing (``mode="test"``): ``test_frames`` positions uniformly spaced,
  ``floor((i + 0.5) * P / N)``; one item per (video, position) holding its crops
  (``(C, 3, S, S)`` ...); scores are averaged per video by the caller (``"video"`` is the
  row of ``dataset.videos``).

Augmentation (training; identical for every snippet and modality of one item)
-----------------------------------------------------------------------------
Multi-scale random crop (TSN): width and height are ``base * s`` with ``s`` drawn from
``scales`` (``base`` = shorter side; the two scales at most one step apart), placed
uniformly at random, resized to ``crop_size``; then a horizontal flip with probability 1/2.
Flow vectors follow the geometry: resizing multiplies x and y by the resize factors, a
flip negates x. Test crops: ``test_crops = 1`` (centre) or ``10`` (4 corners + centre and
their flips) of ``crop_size``; frames whose shorter side is below ``crop_size`` are first
resized up to it. The randomness of item ``i`` in epoch ``e`` comes from
``numpy.random.default_rng([seed, e, i])``: the same with any number of workers and after
a resume.

Values: RGB float32 in [0, 1]; flow float32 pixels/frame (uint8 flow is de-quantized right
after the crop is cut, before any resize).
Shard files are opened lazily, once per worker process. A split whose stored frames (raw
codec) and flow (fixed layout) fit in ``preload_mb`` MiB is read into memory once, one HDF5
slice per run of consecutive videos (``read_videos``), on the first item (the items are the same values, without an HDF5 read each).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from .errors import InputError
from .store import FlowShard, FrameShard, StoreError, dequantize_flow

MODALITIES = ("rgb", "flow")
DEFAULT_SCALES = (1.0, 0.875, 0.75, 0.66)
PRELOAD_MB = 1024  # a split that fits is held in memory (the synthetic default: about 300 MiB)


# ---------------------------------------------------------------- sampling rule
def num_positions(n_frames: int, n_flow: int, use_flow: bool, flow_length: int) -> int:
    """Number of snippet start positions ``P`` of a video (always >= 1)."""
    if use_flow:
        return max(int(n_flow) - int(flow_length) + 1, 1)
    return max(int(n_frames), 1)


def segment_positions(P: int, segments: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """TSN: one position per equal segment of ``[0, P)``; random if ``rng`` else the segment centre."""
    K = int(segments)
    edges = np.arange(K + 1) * P / K
    lo = np.floor(edges[:-1]).astype(np.int64)
    hi = np.floor(edges[1:]).astype(np.int64)  # exclusive
    out = np.empty(K, np.int64)
    for k in range(K):
        if hi[k] <= lo[k]:
            out[k] = lo[k]
        elif rng is None:
            out[k] = (lo[k] + hi[k] - 1) // 2
        else:
            out[k] = rng.integers(lo[k], hi[k])
    return np.minimum(out, P - 1)


def uniform_positions(P: int, n: int) -> np.ndarray:
    """``n`` positions uniformly spaced over ``[0, P)`` (test protocol)."""
    return np.minimum(np.floor((np.arange(int(n)) + 0.5) * P / int(n)).astype(np.int64), P - 1)


def snippet_indices(
    t: int, n_frames: int, n_flow: int, flow_length: int, use_flow: bool
) -> tuple[int, np.ndarray]:
    """(RGB frame index, flow field indices) of the snippet at position ``t`` (clamped)."""
    L = int(flow_length)
    fields = np.clip(t + np.arange(L), 0, max(int(n_flow) - 1, 0))
    frame = t + L // 2 if use_flow else t
    return int(min(frame, max(int(n_frames) - 1, 0))), fields


# ---------------------------------------------------------------- geometry
@dataclass
class CropBox:
    x: int
    y: int
    w: int
    h: int
    flip: bool = False


def random_crop_box(H: int, W: int, scales: Sequence[float], rng: np.random.Generator) -> CropBox:
    base = min(H, W)
    sizes = [max(1, int(round(base * s))) for s in scales]
    pairs = [(i, j) for i in range(len(sizes)) for j in range(len(sizes)) if abs(i - j) <= 1]
    i, j = pairs[rng.integers(len(pairs))]
    w, h = min(sizes[i], W), min(sizes[j], H)
    x = int(rng.integers(0, W - w + 1))
    y = int(rng.integers(0, H - h + 1))
    return CropBox(x, y, w, h, bool(rng.integers(2)))


def eval_crop_boxes(H: int, W: int, size: int, n_crops: int) -> list[CropBox]:
    """Centre (``n_crops=1``) or 4 corners + centre and their flips (``10``)."""
    s = min(size, H, W)
    cx, cy = (W - s) // 2, (H - s) // 2
    if n_crops == 1:
        return [CropBox(cx, cy, s, s)]
    if n_crops != 10:
        raise InputError(f"test crops must be 1 or 10, got {n_crops}")
    boxes = [CropBox(0, 0, s, s), CropBox(W - s, 0, s, s), CropBox(0, H - s, s, s),
             CropBox(W - s, H - s, s, s), CropBox(cx, cy, s, s)]
    return boxes + [CropBox(b.x, b.y, b.w, b.h, True) for b in boxes]


def apply_crop(img: np.ndarray, box: CropBox, size: int, is_flow: bool) -> np.ndarray:
    """Crop ``img`` (H, W, C; flow channels x, y alternating) to ``box``, resize to ``size``, flip.

    Flow x/y are multiplied by the resize factors and x is negated by a flip.
    """
    out = img[box.y : box.y + box.h, box.x : box.x + box.w]
    if box.w != size or box.h != size:
        out = _resize(out, size, size)
        if is_flow:
            out[..., 0::2] *= size / box.w
            out[..., 1::2] *= size / box.h
    if box.flip:
        out = out[:, ::-1]
        if is_flow:
            out = out.copy()
            out[..., 0::2] *= -1
    return np.ascontiguousarray(out)


def _resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    C = img.shape[2]
    if C <= 512:
        out = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
        return out.reshape(h, w, C)
    return np.concatenate([_resize(img[..., i : i + 512], w, h) for i in range(0, C, 512)], axis=2)


def upscale_to(img: np.ndarray, size: int, is_flow: bool) -> np.ndarray:
    """Resize so the shorter side is at least ``size`` (flow vectors scaled alike)."""
    H, W = img.shape[:2]
    if min(H, W) >= size:
        return img
    f = size / min(H, W)
    w, h = max(size, int(round(W * f))), max(size, int(round(H * f)))
    out = _resize(img, w, h)
    if is_flow:
        out[..., 0::2] *= w / W
        out[..., 1::2] *= h / H
    return out


# ---------------------------------------------------------------- shards
def video_table(frames: Sequence[str] = (), flow: Sequence[str] = ()) -> tuple[pd.DataFrame, list, list]:
    """Open shards lazily; return (videos, frame shards, flow shards).

    ``videos`` has one row per video: video_id, label, class_name, split, n_frames,
    n_flow, frame_shard, flow_shard (shard list positions, -1 when absent).
    """
    fshards = [FrameShard(p) for p in frames]
    oshards = [FlowShard(p) for p in flow]
    rows: dict[str, dict] = {}
    for i, sh in enumerate(fshards):
        for v in sh.videos.itertuples():
            rows[v.video_id] = dict(video_id=v.video_id, label=int(v.label), class_name=v.class_name,
                                    split=v.split, n_frames=int(v.n_frames), n_flow=-1,
                                    frame_shard=i, flow_shard=-1)
    for i, sh in enumerate(oshards):
        for v in sh.videos.itertuples():
            r = rows.get(v.video_id)
            if r is None:
                if fshards:
                    raise StoreError(f"{sh.path}: video {v.video_id!r} is in no frames shard given")
                r = rows[v.video_id] = dict(video_id=v.video_id, label=int(v.label),
                                            class_name=v.class_name, split=v.split,
                                            n_frames=int(v.n_frames) + 1, n_flow=-1,
                                            frame_shard=-1, flow_shard=-1)
            r["n_flow"] = int(v.n_frames)
            r["flow_shard"] = i
    if oshards and fshards:
        lacking = [k for k, r in rows.items() if r["flow_shard"] < 0]
        if lacking:
            raise StoreError(f"{fshards[rows[lacking[0]]['frame_shard']].path}: video {lacking[0]!r} "
                             f"has no flow in the flow shards given")
    cols = ["video_id", "label", "class_name", "split", "n_frames", "n_flow", "frame_shard", "flow_shard"]
    df = pd.DataFrame(list(rows.values()), columns=cols)
    return df.sort_values("video_id", kind="stable").reset_index(drop=True), fshards, oshards


def class_names(videos: pd.DataFrame) -> list[str]:
    """Class names by label (labels are 0..n-1 over all splits)."""
    n = int(videos["label"].max()) + 1 if len(videos) else 0
    names = [f"class-{i}" for i in range(n)]
    for lab, name in videos.groupby("label")["class_name"].first().items():
        names[int(lab)] = str(name)
    return names


class ClipDataset(Dataset):
    """Snippets of the videos of one split, for training or testing (see module docstring)."""

    def __init__(
        self,
        frames: Sequence[str] = (),
        flow: Sequence[str] = (),
        modalities: Sequence[str] = ("rgb",),
        split: str | None = "train",
        mode: str = "train",
        segments: int = 3,
        flow_length: int = 10,
        crop_size: int = 224,
        scales: Sequence[float] = DEFAULT_SCALES,
        flip: bool = False,
        test_frames: int = 25,
        test_crops: int = 1,
        seed: int = 0,
        preload_mb: float = PRELOAD_MB,
    ):
        self.modalities = tuple(modalities)
        for m in self.modalities:
            if m not in MODALITIES:
                raise InputError(f"unknown modality {m!r} (known: rgb, flow)")
        if "rgb" in self.modalities and not frames:
            raise InputError("the rgb stream needs frames shards (--frames)")
        if "flow" in self.modalities and not flow:
            raise InputError("the flow stream needs flow shards (--flow)")
        if mode not in ("train", "test"):
            raise InputError(f"mode must be train or test, got {mode!r}")
        videos, self.frame_shards, self.flow_shards = video_table(
            frames if "rgb" in self.modalities else (), flow if "flow" in self.modalities else ()
        )
        self.class_names = class_names(videos)
        self.num_classes = len(self.class_names)
        if split is not None:
            videos = videos[videos["split"] == split].reset_index(drop=True)
        if not len(videos):
            where = (list(frames) + list(flow))[:1]
            raise InputError(f"{where[0] if where else 'shards'}: no videos of split {split!r}")
        self.videos = videos
        self.split, self.mode = split, mode
        self.use_flow = "flow" in self.modalities
        self.segments, self.flow_length = int(segments), int(flow_length)
        self.crop_size, self.scales, self.flip = int(crop_size), tuple(scales), bool(flip)
        self.test_frames, self.test_crops = int(test_frames), int(test_crops)
        if self.test_crops not in (1, 10):
            raise InputError(f"test crops must be 1 or 10, got {self.test_crops}")
        self.seed, self.epoch = int(seed), 0
        self.preload_mb = float(preload_mb)

    def _stores(self):
        """(modality, shard list, shard column) of the loaded modalities."""
        if "rgb" in self.modalities:
            yield "rgb", self.frame_shards, "frame_shard"
        if self.use_flow:
            yield "flow", self.flow_shards, "flow_shard"

    def split_mb(self) -> float:
        """MiB of the split's stored frames and flow; inf when a shard is compressed per item
        (jpeg frames, png flow), which is never held in memory."""
        total = 0.0
        for _, shards, col in self._stores():
            for i, part in self._videos.groupby(col):
                sh = shards[int(i)]
                if (sh.kind == "frames" and sh.codec != "raw") or (sh.kind == "flow" and sh.layout == "png"):
                    return float("inf")
                ds = sh.file["frames" if sh.kind == "frames" else "flow"]
                n = part["n_frames" if sh.kind == "frames" else "n_flow"].clip(lower=0).sum()
                total += float(n) * np.prod(ds.shape[1:]) * ds.dtype.itemsize
        return total / 2**20

    def _preload(self) -> dict[str, dict[str, np.ndarray]]:
        """Every video's stored frames and flow fields, read once (all rows of the video), when
        the split fits in ``preload_mb``; else nothing (items are read from the shards)."""
        self._memory = {}
        if not 0 < self.split_mb() <= self.preload_mb:
            return self._memory
        for m, shards, col in self._stores():
            store = self._memory.setdefault(m, {})
            for i, part in self._videos.groupby(col):
                store.update(shards[int(i)].read_videos(list(part["video_id"])))
        for _, shards, _ in self._stores():
            for sh in shards:
                sh.close()
        return self._memory

    @property
    def videos(self) -> pd.DataFrame:
        """The videos of the split, one row each; assigning a subset (e.g. a few clips per class)
        re-indexes the items, so item ``i`` always reads row ``i`` of this table."""
        return self._videos

    @videos.setter
    def videos(self, table: pd.DataFrame) -> None:
        self._videos = table.reset_index(drop=True)
        self._rows = list(self._videos.itertuples(index=False))
        self._memory: dict[str, dict[str, np.ndarray]] | None = None  # filled on the first item

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        if self.mode == "train":
            return len(self.videos)
        return len(self.videos) * self.test_frames

    @property
    def labels(self) -> np.ndarray:
        return self.videos["label"].to_numpy()

    def positions(self, row, rng: np.random.Generator | None) -> np.ndarray:
        P = num_positions(row.n_frames, row.n_flow, self.use_flow, self.flow_length)
        if self.mode == "train":
            return segment_positions(P, self.segments, rng)
        return uniform_positions(P, self.test_frames)

    def _read(self, row, pos: np.ndarray) -> dict[str, np.ndarray]:
        """Raw snippets stacked along channels: rgb (H, W, K*3) uint8; flow (H, W, K*2L) float32
        (uint8 quantized flow stays uint8 here; ``_finish_flow`` de-quantizes after cropping)."""
        frames, fields = [], []
        for t in pos:
            f, fl = snippet_indices(int(t), row.n_frames, max(row.n_flow, 0), self.flow_length, self.use_flow)
            frames.append(f)
            fields.append(fl)
        out = {}
        mem = self._preload() if self._memory is None else self._memory
        if "rgb" in self.modalities:
            if "rgb" in mem:
                rgb = mem["rgb"][row.video_id][frames]
            else:
                rgb = self.frame_shards[row.frame_shard].read(row.video_id, frames)  # (K, H, W, 3)
            out["rgb"] = _stack_channels(rgb)
        if self.use_flow:
            shard = self.flow_shards[row.flow_shard]
            if row.n_flow > 0 and "flow" in mem:
                raw = mem["flow"][row.video_id][np.concatenate(fields)]
            elif row.n_flow > 0:
                raw = shard.read_raw(row.video_id, np.concatenate(fields))  # (K*L, H, W, 2)
            else:
                v = shard.video(row.video_id)
                raw = np.zeros((len(pos) * self.flow_length, int(v.height), int(v.width), 2), np.float32)
            # (K*L, H, W, 2) -> (H, W, K*L*2): channels k-major, then x0, y0, x1, y1, ...
            out["flow"] = _stack_channels(raw)
        return out

    def _finish_flow(self, arr: np.ndarray, row) -> np.ndarray:
        if arr.dtype == np.uint8:
            return dequantize_flow(arr, self.flow_shards[row.flow_shard].bound)
        return arr.astype(np.float32, copy=False)

    def __getitem__(self, i: int) -> dict:
        if self.mode == "train":
            return self._train_item(i)
        return self._test_item(i)

    def _train_item(self, i: int) -> dict:
        row = self._rows[i]
        rng = np.random.default_rng([self.seed, self.epoch, i])
        pos = self.positions(row, rng)
        raw = self._read(row, pos)
        H, W = next(iter(raw.values())).shape[:2]
        box = random_crop_box(H, W, self.scales, rng)
        if not self.flip:
            box.flip = False
        item = {"label": int(row.label), "video": i}
        for m, arr in raw.items():
            if m == "flow":  # cut first, de-quantize the cut only
                arr = self._finish_flow(arr[box.y : box.y + box.h, box.x : box.x + box.w], row)
                cut = CropBox(0, 0, box.w, box.h, box.flip)
                item[m] = _to_tensor(apply_crop(arr, cut, self.crop_size, True), len(pos), m)
            else:
                item[m] = _to_tensor(apply_crop(arr, box, self.crop_size, False), len(pos), m)
        return item

    def _test_item(self, i: int) -> dict:
        v, j = divmod(i, self.test_frames)
        row = self._rows[v]
        t = self.positions(row, None)[j : j + 1]
        raw = self._read(row, t)
        item = {"label": int(row.label), "video": v}
        for m, arr in raw.items():
            if m == "flow":
                arr = self._finish_flow(arr, row)
            img = upscale_to(arr, self.crop_size, m == "flow")
            boxes = eval_crop_boxes(img.shape[0], img.shape[1], self.crop_size, self.test_crops)
            crops = [apply_crop(img, b, self.crop_size, m == "flow") for b in boxes]
            item[m] = torch.stack([_to_tensor(c, 1, m)[0] for c in crops])
        return item


def _stack_channels(arr: np.ndarray) -> np.ndarray:
    """(K, H, W, C) -> (H, W, K*C), channel index k*C + c."""
    K, H, W, C = arr.shape
    arr = np.ascontiguousarray(arr)
    size = C * arr.itemsize
    if size in (2, 4, 8):  # move each pixel's C values as one machine word: several times faster
        word = arr.view(f"u{size}")[..., 0]
        return np.ascontiguousarray(word.transpose(1, 2, 0)).view(arr.dtype).reshape(H, W, K * C)
    return np.ascontiguousarray(arr.transpose(1, 2, 0, 3).reshape(H, W, K * C))


def worker_init(_worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: one OpenCV thread per worker (workers are the parallelism)."""
    cv2.setNumThreads(1)


def _to_tensor(arr: np.ndarray, K: int, modality: str) -> torch.Tensor:
    """(S, S, K*C) -> float tensor (K, C, S, S); RGB scaled to [0, 1]."""
    S1, S2, KC = arr.shape
    t = torch.from_numpy(np.ascontiguousarray(arr.reshape(S1, S2, K, KC // K).transpose(2, 3, 0, 1)))
    if modality == "rgb":
        return t.float().div_(255.0)
    return t.float()


__all__ = [
    "MODALITIES", "DEFAULT_SCALES", "PRELOAD_MB", "ClipDataset", "worker_init", "video_table", "class_names", "num_positions",
    "segment_positions", "uniform_positions", "snippet_indices", "CropBox", "random_crop_box",
    "eval_crop_boxes", "apply_crop",
]
