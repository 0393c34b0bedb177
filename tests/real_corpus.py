"""A small real-video corpus the tests encode themselves (tests/test_real_videos.py).

Several codecs that the local OpenCV/FFmpeg writes (probed: XVID, MJPG, mp4v and FFV1
here; H.264 encoders are absent from the wheel), several frame sizes and aspect ratios
(landscape, portrait, sides off the usual grids), names with ``#&()!``, a truncated copy and a one-frame
clip. Two classes with a known cause: the square moves right (``run``) or down (``jump``).
Laid out as HMDB51 (``<root>/<class>/*.ext`` + ``<splits>/<class>_test_split1.txt``) or
as a plain folder of class folders.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from twostream.errors import InputError
from twostream.video import write_video

CODECS = {"XVID": ".avi", "MJPG": ".avi", "mp4v": ".mp4", "FFV1": ".mkv"}
# (width, height): landscape 4:3, portrait, sides off the 4- and 8-pixel grid (OpenCV's
# writers round odd sides to even), wide
SIZES = [(48, 36), (36, 56), (42, 26), (64, 36)]
CLASSES = {"run": (2, 0), "jump": (0, 2)}


def clip(n: int, width: int, height: int, motion: tuple[int, int], seed: int) -> np.ndarray:
    """RGB (n, H, W, 3): a bright square moving by ``motion`` px/frame over a textured background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, 3)
    bg = np.stack([100 + 40 * np.sin(xx / 5 + phase[0]) * np.cos(yy / 7 + phase[1]),
                   110 + 30 * np.cos(xx / 9 + phase[2]),
                   90 + 30 * np.sin(yy / 6)], -1)  # fmt: skip
    s = max(6, min(width, height) // 4)
    out = np.empty((n, height, width, 3), np.uint8)
    x0, y0 = width // 4, height // 4
    for t in range(n):
        f = bg.copy()
        x, y = (x0 + motion[0] * t) % (width - s), (y0 + motion[1] * t) % (height - s)
        f[y : y + s, x : x + s] = (230, 200, 60)
        out[t] = np.clip(f, 0, 255).astype(np.uint8)
    return out


def working_codecs(tmp: Path) -> dict[str, str]:
    """The codecs of CODECS that this OpenCV can write and read back."""
    import cv2

    ok = {}
    for fourcc, ext in CODECS.items():
        p = tmp / f"probe-{fourcc}{ext}"
        try:
            write_video(p, clip(3, 32, 24, (1, 0), 0), fourcc=fourcc)
        except InputError:
            continue
        cap = cv2.VideoCapture(str(p), cv2.CAP_FFMPEG)
        good = cap.isOpened() and cap.read()[0]
        cap.release()
        p.unlink()
        if good:
            ok[fourcc] = ext
    return ok


def encoded_size(path: Path) -> tuple[int, int]:
    """(width, height) of the frames the file holds."""
    import cv2

    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    size = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    cap.release()
    return size


def make_corpus(
    root: Path, layout: str = "hmdb51", per_class: int = 6, frames: int = 10, videos: str = "videos"
) -> dict:
    """Write the corpus under ``root``; returns its description.

    hmdb51: ``root/<videos>/<class>/...`` and ``root/splits/<class>_test_split1.txt`` (tag 1 train,
    2 test, 0 unused, lines ending in a space as the official files). folder: ``root/<videos>/<class>/...``.
    Besides the good clips (codecs and sizes cycled), class ``run`` gets a truncated copy of an
    MJPG clip (kept, fewer frames) and a one-frame clip (bad), both in the train split.
    """
    root = Path(root)
    vids = root / videos
    vids.mkdir(parents=True, exist_ok=True)
    codecs = working_codecs(root)
    if not codecs:
        raise RuntimeError("this OpenCV writes none of XVID, MJPG, mp4v, FFV1")
    names = list(codecs)
    info: dict = {"codecs": names, "videos": {}, "sizes": set(), "splits": {}}
    k = 0
    for c, (cls, motion) in enumerate(CLASSES.items()):
        (vids / cls).mkdir(exist_ok=True)
        for i in range(per_class):
            fourcc = names[k % len(names)]
            w, h = SIZES[(k + k // len(names)) % len(SIZES)]  # every codec meets several sizes
            name = f"{cls}_#{i}&(take!){codecs[fourcc]}" if i == 0 else f"{cls}_{i:02d}_{fourcc}{codecs[fourcc]}"
            write_video(vids / cls / name, clip(frames, w, h, motion, seed=k), fourcc=fourcc)
            w, h = encoded_size(vids / cls / name)  # some encoders round odd sides (mp4v: 41x33 -> 40x32)
            split = "test" if i % 3 == 0 else "train"
            info["videos"][f"{cls}/{name}"] = dict(size=(w, h), split=split, fourcc=fourcc, frames=frames)
            info["sizes"].add((w, h))
            k += 1
        if cls == "run":
            # a truncated copy of an intra-only (MJPG) clip: its first frames still decode
            full = vids / cls / "run_full_MJPG.avi"
            write_video(full, clip(30, 48, 36, motion, seed=99), fourcc="MJPG")
            data = full.read_bytes()
            (vids / cls / "run_cut_MJPG.avi").write_bytes(data[: len(data) * 6 // 10])
            full.unlink()
            write_video(vids / cls / "run_one_frame_MJPG.avi", clip(1, 48, 36, motion, seed=98), fourcc="MJPG")
            info["videos"]["run/run_cut_MJPG.avi"] = dict(size=(48, 36), split="train", fourcc="MJPG", frames=None)
            info["videos"]["run/run_one_frame_MJPG.avi"] = dict(size=(48, 36), split="train", fourcc="MJPG", frames=1)
    # a video listed as unused (tag 0) in the HMDB51 layout
    write_video(vids / "jump" / "jump_unused.avi", clip(4, 48, 36, (0, 2), seed=97), fourcc="MJPG")
    if layout == "hmdb51":
        splits = root / "splits"
        splits.mkdir(exist_ok=True)
        for cls in CLASSES:
            lines = [f"{Path(v).name} {1 if d['split'] == 'train' else 2} "
                     for v, d in info["videos"].items() if v.startswith(cls + "/")]  # fmt: skip
            if cls == "jump":
                lines.append("jump_unused.avi 0 ")
            (splits / f"{cls}_test_split1.txt").write_text("\n".join(lines) + "\n")
    else:
        (vids / "jump" / "jump_unused.avi").unlink()
    return info
