"""Helpers of the flow tests: frames shards and image pairs with known flow."""

from __future__ import annotations

import json

import cv2
import h5py
import numpy as np
import pandas as pd

from twostream.store import VIDEO_DTYPE, video_table_to_array


def write_frames_shard(path, videos: dict[str, np.ndarray], frames_dtype=None, drop_frames=False) -> None:
    """A raw-codec frames shard (store.py layout) holding ``videos`` (id -> (T, H, W, 3))."""
    rows, offset, blocks = [], 0, []
    for i, (vid, fr) in enumerate(videos.items()):
        T = len(fr)
        H, W = (fr.shape[1], fr.shape[2]) if T else next(v.shape[1:3] for v in videos.values() if len(v))
        rows.append(
            dict(
                video_id=vid,
                label=i,
                class_name=f"c{i}",
                split="train",
                n_frames=T,
                fps=25.0,
                height=H,
                width=W,
                offset=offset,
            )
        )
        offset += T
        if T:
            blocks.append(fr)
    data = np.concatenate(blocks)
    if frames_dtype is not None:
        data = data.astype(frames_dtype)
    with h5py.File(path, "w") as f:
        f.create_dataset("videos", data=video_table_to_array(pd.DataFrame(rows)), dtype=VIDEO_DTYPE)
        if not drop_frames:
            f.create_dataset("frames", data=data, chunks=(1,) + data.shape[1:])
        f.attrs["layout_version"] = 1
        f.attrs["kind"] = "frames"
        f.attrs["codec"] = "raw"
        f.attrs["params"] = json.dumps({})


def textured(h: int, w: int, name: str = "camera") -> np.ndarray:
    """A grayscale crop of a photograph shipped with scikit-image (works offline)."""
    import skimage.data

    img = getattr(skimage.data, name)()
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    img = cv2.resize(img, (2 * w, 2 * h), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(img[h // 2 : h // 2 + h, w // 2 : w // 2 + w])


def warp_pair(img: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(I0, I1) with I1 = img and I0(x) = I1(x + flow(x)): ``flow`` is the exact motion I0 -> I1."""
    h, w = img.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    i0 = cv2.remap(
        img.astype(np.float32), xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT
    )
    return np.clip(np.rint(i0), 0, 255).astype(np.uint8), img


def known_flows(h: int, w: int) -> dict[str, np.ndarray]:
    """Translation, rotation, zoom and a smooth non-rigid field, (h, w, 2) float32 px."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = w / 2, h / 2
    return {
        "translation": np.dstack([np.full((h, w), 2.3), np.full((h, w), -1.4)]).astype(np.float32),
        "rotation": np.dstack([-(ys - cy) * 0.03, (xs - cx) * 0.03]).astype(np.float32),
        "zoom": np.dstack([(xs - cx) * 0.04, (ys - cy) * 0.04]).astype(np.float32),
        "nonrigid": np.dstack([1.5 * np.sin(xs / 15) * np.cos(ys / 20), 1.2 * np.cos(xs / 18)]).astype(np.float32),
    }


def epe(a: np.ndarray, b: np.ndarray, margin: int = 8) -> np.ndarray:
    """Average end-point error per pair of (B, H, W, 2) fields, ignoring a border ``margin``."""
    d = np.sqrt(((a - b) ** 2).sum(-1))
    if margin:
        d = d[:, margin:-margin, margin:-margin]
    return d.mean(axis=(1, 2))
