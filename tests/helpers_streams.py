"""Tiny frame/flow shards in the store.py layout, with classes of known cause.

Four classes, 32x32 frames, a square moving over a noisy grey background:

=====  ==========  ===========  ========================  =========================
label  class_name  group        colour                    motion
=====  ==========  ===========  ========================  =========================
0      red         appearance   red                       up or down (random)
1      blue        appearance   blue                      up or down (random)
2      right       motion       green or yellow (random)  right
3      left        motion       green or yellow (random)  left
=====  ==========  ===========  ========================  =========================

So colour alone decides the appearance group's classes and says nothing about the motion
group's; motion direction alone decides the motion group's classes and says nothing about
the appearance group's. The flow written is the true motion (velocity on the object's
pixels of frame t, zero elsewhere), quantized as the flow stage stores it.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from twostream.store import quantize_flow, video_table_to_array, write_provenance

CLASSES = pd.DataFrame(
    {
        "label": [0, 1, 2, 3],
        "class_name": ["red", "blue", "right", "left"],
        "group": ["appearance", "appearance", "motion", "motion"],
    }
)
COLOURS = {"red": (220, 40, 40), "blue": (40, 60, 220), "green": (40, 200, 60), "yellow": (220, 210, 40)}
SPEED = 2


def make_video(label: int, n_frames: int, rng: np.random.Generator, size: int = 32, obj: int = 10):
    """Frames (n, size, size, 3) uint8 and true flow (n-1, size, size, 2) float32."""
    name = CLASSES.class_name[label]
    if label < 2:
        colour = COLOURS[name]
        v = (0, SPEED * rng.choice([-1, 1]))
    else:
        colour = COLOURS[rng.choice(["green", "yellow"])]
        v = (SPEED if name == "right" else -SPEED, 0)
    x, y = rng.integers(0, size, 2)
    frames = np.empty((n_frames, size, size, 3), np.uint8)
    masks = []
    for t in range(n_frames):
        img = rng.normal(128, 12, (size, size, 3))
        yy = (np.arange(obj) + y + v[1] * t) % size
        xx = (np.arange(obj) + x + v[0] * t) % size
        mask = np.zeros((size, size), bool)
        mask[np.ix_(yy, xx)] = True
        img[mask] = colour
        frames[t] = np.clip(img, 0, 255).astype(np.uint8)
        masks.append(mask)
    flow = np.zeros((max(n_frames - 1, 0), size, size, 2), np.float32)
    for t in range(n_frames - 1):
        flow[t][masks[t]] = v
    return frames, flow


def write_shards(
    out: Path,
    n_shards: int = 2,
    train_per_class: int = 12,
    test_per_class: int = 10,
    n_frames: int = 8,
    val_per_class: int = 4,
    short_videos: int = 0,
    seed: int = 0,
) -> tuple[list[str], list[str]]:
    """Write frames/shard-XXX.h5 and flow/shard-XXX.h5 (+ classes.csv) under ``out``.

    ``short_videos`` train videos of class 0 get only 2 frames (1 flow field).
    """
    out = Path(out)
    rng = np.random.default_rng(seed)
    vids = []
    for label in range(4):
        for split, n in (("train", train_per_class), ("val", val_per_class), ("test", test_per_class)):
            for i in range(n):
                nf = 2 if (label == 0 and split == "train" and i < short_videos) else n_frames
                vids.append((f"{CLASSES.class_name[label]}/v_{split}_{i:03d}", label, split, nf))
    vids.sort()
    (out / "frames").mkdir(parents=True, exist_ok=True)
    (out / "flow").mkdir(parents=True, exist_ok=True)
    CLASSES.to_csv(out / "classes.csv", index=False)
    frame_paths, flow_paths = [], []
    for s in range(n_shards):
        mine = vids[s::n_shards]
        frames_all, flow_all, rows, frows = [], [], [], []
        off = foff = 0
        for vid, label, split, nf in mine:
            fr, fl = make_video(label, nf, rng)
            base = dict(video_id=vid, label=label, class_name=CLASSES.class_name[label], split=split,
                        fps=25.0, height=32, width=32)
            rows.append(dict(base, n_frames=nf, offset=off))
            frows.append(dict(base, n_frames=nf - 1, offset=foff))
            frames_all.append(fr)
            flow_all.append(fl)
            off += nf
            foff += nf - 1
        fp = out / "frames" / f"shard-{s:03d}.h5"
        with h5py.File(fp, "w") as f:
            f["videos"] = video_table_to_array(pd.DataFrame(rows))
            f.create_dataset("frames", data=np.concatenate(frames_all), chunks=(1, 32, 32, 3))
            write_provenance(f, "frames", {"test": True}, codec="raw")
        op = out / "flow" / f"shard-{s:03d}.h5"
        with h5py.File(op, "w") as f:
            f["videos"] = video_table_to_array(pd.DataFrame(frows))
            f.create_dataset("flow", data=quantize_flow(np.concatenate(flow_all), 20.0), chunks=(1, 32, 32, 2))
            write_provenance(f, "flow", {"test": True}, backend="truth", storage="uint8", bound=20.0,
                             quantization="round")
        frame_paths.append(str(fp))
        flow_paths.append(str(op))
    return frame_paths, flow_paths
