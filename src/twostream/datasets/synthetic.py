"""Synthetic action dataset with a known cause for every class (``twostream synth``).

The generator writes a dataset in the UCF101 on-disk layout::

    <root>/<ClassName>/v_<ClassName>_gXX_cYY.avi   encoded video (XVID/MPEG-4 in .avi, OpenCV VideoWriter)
    <root>/classInd.txt                            "1 ClassName" (1-based, as UCF101)
    <root>/trainlist01.txt                         "ClassName/v_ClassName_g08_c01.avi 1"
    <root>/testlist01.txt                          "ClassName/v_ClassName_g01_c01.avi"
    <root>/classes.csv                             label (0-based), class_name, group and generating factors
    <root>/videos.csv                              one row per clip: video_id, path, label, class_name,
                                                   split, group, clip, seed

Groups ``g01``..``g07`` hold the test clips and ``g08``..``g25`` the training clips (as split 1 of
UCF101); a clip's ``cYY`` numbers it inside its group.  Everything is fully determined by
``SyntheticConfig.seed``: each clip is rendered from its own seed (``clip_seed``: seed, class name,
split, index), so changing the number of clips or classes leaves every other clip unchanged.

Three groups of classes:

``appearance``
    one textured disc whose colour is the class; it moves in a random direction at a random speed
    (and spins randomly), so motion alone cannot tell these classes apart.
``motion``
    the same grey textured disc for every class; the class is the motion: ``left``, ``right``, ``up``,
    ``down``, ``right_fast`` (the same direction at ``fast_factor`` times the speed), ``rotate_cw``,
    ``rotate_ccw`` and ``zoom_in``.  The disc's texture makes rotation and zoom visible in the flow.
    One frame cannot tell these classes apart: the world is a torus (objects leaving one side enter
    the other), so the position of an object is uniform at every time for every class, the
    orientation is uniform, and the disc's size at any one frame has the same distribution for every
    class (zoom classes grow through the same range of sizes that the other classes are drawn from).
``spatiotemporal``
    two discs with identical silhouette and texture, one red (190, 40, 40) and one blue
    (20, 90, 230) -- colours of equal grey level, so grayscale flow carries no colour -- one moving,
    the other still, positions uniform and independent of which one moves.  The class is (which colour
    moves) x (direction).  A single frame cannot tell which disc moves, the flow cannot tell its colour;
    only features that keep *where* the motion is and *what colour is there* together can.

Every clip also has a textured background that shakes (``background_jitter``: a random offset in
every frame, zero mean, so subtracting a flow field's mean still leaves each object's own motion on
average) and may pan (``background_speed``), small grey distractor discs moving randomly
(``distractors``) and Gaussian sensor noise (``noise``).  Objects move independently of the background:
a "still" disc does not move in the frame while the background moves behind it.

Known truth for tests
---------------------
:func:`render_clip` is pure: ``render_clip(cfg, label, seed) -> Clip`` with

- ``Clip.frames``: uint8 ``(T, H, W, 3)`` RGB frames *before* encoding;
- ``Clip.truth``: :class:`Truth` with, per object ``k`` (object 0 is the class's main moving object;
  in the spatiotemporal group object 1 is the still disc; distractors follow):
  ``centres`` float ``(T, K, 2)`` (x, y) in px, ``radii`` ``(T, K)``, ``angles`` ``(T, K)`` (rad),
  ``colours`` ``(K, 3)``, ``moving`` ``(K,)`` bool, ``kind`` ``(K,)`` str;
  ``displacement`` float ``(T-1, 2)``: per-frame (dx, dy) of object 0's centre in px (the shortest
  displacement on the torus); ``flow`` float32 ``(T-1, H, W, 2)``: the exact motion of every pixel
  from frame t to t+1 (objects: rigid motion incl. rotation and zoom; background: its drift), and
  ``object_mask`` bool ``(T, H, W)``: pixels where an object covers more than half of the pixel.

:func:`render_video` renders the clip of a ``video_id`` of the generated table; decoded frames of the
written ``.avi`` match ``render_video(...).frames`` within codec error.

Codec leak
----------
OpenCV's FFmpeg writer takes no bitrate or key-frame options (``VIDEOWRITER_PROP_QUALITY`` is rejected,
``VIDEOWRITER_PROP_KEY_INTERVAL`` is ignored, ``OPENCV_FFMPEG_WRITER_OPTIONS`` is not passed to the
encoder): it fixes the GOP at 12 frames and the bitrate at about 1.5 bit/pixel.  At that rate an
MPEG-4 P-frame codes a disc whose motion differs from the background's (one vector per 16x16
macroblock) with less texture contrast than a disc that moves with the background.  With a still
background and a still disc (the prototype's design) a single-frame probe told the moving disc from
the still one in about 70-83% of P-frames (a tiny CNN on whole decoded frames: 81%); a camera that
moves background and discs together leaves the same leak (55%).  The background therefore shakes
independently of the discs (about 1.4 x background_jitter px from frame to frame; 0.7 px at the default 0.5), so *both* discs move relative to it and
the codec treats them alike; the same probe then stays at 51 +- 1.5% (the CNN: 49-51%), see
``tests/test_synthetic.py::test_codec_leak_probe``.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import ConfigError, add_params_arguments, from_dict, section_from_args, settings
from ..errors import InputError
from ..progress import progress as progress_bar

# --------------------------------------------------------------------------- configuration

# Appearance colours (RGB).  Spatiotemporal colours: equal grey level (BT.601 luma, as cv2 gray).
PALETTE: dict[str, tuple[int, int, int]] = {
    "yellow": (215, 195, 40),
    "green": (40, 165, 55),
    "magenta": (200, 55, 195),
    "cyan": (40, 195, 205),
    "orange": (235, 125, 30),
    "white": (235, 235, 235),
    "purple": (120, 60, 180),
    "brown": (130, 85, 45),
    "pink": (245, 150, 180),
    "olive": (128, 128, 20),
}
RED = (190, 40, 40)
BLUE = (20, 90, 230)
OBJECT_GREY = (150, 150, 150)
DISTRACTOR_GREY = (110, 110, 110)

MOTIONS = ("left", "right", "up", "down", "right_fast", "rotate_cw", "rotate_ccw", "zoom_in")
DIRECTIONS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}
GROUPS = ("appearance", "motion", "spatiotemporal")


@settings("synthetic")
class SyntheticConfig:
    seed: int
    size: int
    frames: int
    fps: float
    fourcc: str
    train_per_class: int
    test_per_class: int
    test_groups: int
    groups: int
    appearance_colours: list[str]
    motions: list[str]
    spatiotemporal_directions: list[str]
    radius: float
    radius_jitter: float
    speed: float
    speed_jitter: float
    fast_factor: float
    rotation_speed: float
    zoom_rate: float
    spin: float
    texture_contrast: float
    texture_period: float
    background_contrast: float
    background_detail: float
    background_speed: float
    background_jitter: float
    object_jitter: float
    blur: float
    noise: float
    distractors: int
    distractor_scale: float



def make_config(d: dict | None) -> SyntheticConfig:
    return from_dict(SyntheticConfig, d, "synthetic")


# --------------------------------------------------------------------------- classes and clips


def _camel(s: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in s.split("_"))


def class_table(cfg: SyntheticConfig) -> pd.DataFrame:
    """One row per class: label (0-based), class_name, group and the generating factors."""
    rows = []
    for c in cfg.appearance_colours:
        rows.append(dict(class_name=f"Colour{_camel(c)}", group="appearance", colour=c,
                         motion="random", direction="random", speed=cfg.speed, moving_colour=c,
                         still_colour=""))
    for m in cfg.motions:
        direction = m.split("_")[0] if m.split("_")[0] in DIRECTIONS else ""
        speed = cfg.speed * (cfg.fast_factor if m.endswith("_fast") else 1.0) if direction else 0.0
        kind = "translate" if direction else m.split("_")[0]
        rows.append(dict(class_name=f"Motion{_camel(m)}", group="motion", colour="grey",
                         motion=kind, direction=direction or m.split("_", 1)[1], speed=speed,
                         moving_colour="grey", still_colour=""))
    for col_name, other in (("red", "blue"), ("blue", "red")):
        for d in cfg.spatiotemporal_directions:
            rows.append(dict(class_name=f"{_camel(col_name)}Moves{_camel(d)}", group="spatiotemporal",
                             colour=f"{col_name}+{other}", motion="translate", direction=d,
                             speed=cfg.speed, moving_colour=col_name, still_colour=other))
    df = pd.DataFrame(rows)
    df.insert(0, "label", np.arange(len(df)))
    df["moving_rgb"] = [" ".join(map(str, _colour_rgb(c))) for c in df.moving_colour]
    df["still_rgb"] = [" ".join(map(str, _colour_rgb(c))) if c else "" for c in df.still_colour]
    return df[["label", "class_name", "group", "colour", "motion", "direction", "speed",
               "moving_colour", "moving_rgb", "still_colour", "still_rgb"]]


def _colour_rgb(name: str) -> tuple[int, int, int]:
    if name == "red":
        return RED
    if name == "blue":
        return BLUE
    if name == "grey":
        return OBJECT_GREY
    return PALETTE[name]


def clip_seed(cfg: SyntheticConfig, class_name: str, split: str, index: int) -> int:
    """Seed of one clip: a function of (seed, class name, split, index) only, so adding or removing
    classes or clips leaves every other clip unchanged."""
    key = zlib.crc32(class_name.encode())
    ss = np.random.SeedSequence([int(cfg.seed), key, 0 if split == "train" else 1, int(index)])
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def video_table(cfg: SyntheticConfig) -> pd.DataFrame:
    """One row per clip: video_id, path (relative to root), label, class_name, split, group, clip, seed.

    Test clips are spread round-robin over groups g01..g<test_groups>, training clips over the
    remaining groups; ``cYY`` numbers the clips inside a group from 1.
    """
    classes = class_table(cfg)
    test_g = list(range(1, cfg.test_groups + 1))
    train_g = list(range(cfg.test_groups + 1, cfg.groups + 1))
    rows = []
    for _, c in classes.iterrows():
        for split, n, groups in (("train", cfg.train_per_class, train_g), ("test", cfg.test_per_class, test_g)):
            counts: dict[int, int] = {}
            for i in range(n):
                g = groups[i % len(groups)]
                counts[g] = counts.get(g, 0) + 1
                stem = f"v_{c.class_name}_g{g:02d}_c{counts[g]:02d}"
                rows.append(dict(video_id=f"{c.class_name}/{stem}", path=f"{c.class_name}/{stem}.avi",
                                 label=int(c.label), class_name=c.class_name, split=split, group=g,
                                 clip=counts[g], seed=clip_seed(cfg, c.class_name, split, i)))
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- rendering


@dataclass
class Truth:
    centres: np.ndarray  # (T, K, 2) float, x y px
    radii: np.ndarray  # (T, K)
    angles: np.ndarray  # (T, K) rad
    colours: np.ndarray  # (K, 3) uint8 RGB
    moving: np.ndarray  # (K,) bool
    kind: np.ndarray  # (K,) str: main | still | distractor
    displacement: np.ndarray  # (T-1, 2) object 0's centre motion per frame
    flow: np.ndarray  # (T-1, H, W, 2) float32, px/frame, t -> t+1
    object_mask: np.ndarray  # (T, H, W) bool
    background_shift: np.ndarray  # (T, 2) offset (x, y) of the background at each frame (px)


@dataclass
class Clip:
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    truth: Truth
    label: int
    class_name: str
    group: str


@dataclass
class _Object:
    centres: np.ndarray  # (T, 2)
    radii: np.ndarray  # (T,)
    angles: np.ndarray  # (T,)
    colour: tuple[int, int, int]
    moving: bool
    kind: str
    contrast: float
    phase: np.ndarray  # (2,) texture phase


def _wrap(d: np.ndarray, size: int) -> np.ndarray:
    """Shortest signed difference on a torus of side ``size``."""
    return (d + size / 2.0) % size - size / 2.0


def _background(rng: np.random.Generator, size: int, contrast: float, detail: float) -> np.ndarray:
    """Periodic smooth texture (size, size, 3) in the Fourier domain (so it can shift by any sub-pixel)."""
    white = rng.standard_normal((size, size))
    f = np.fft.fftfreq(size)
    k = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2)
    spectrum = np.fft.fft2(white) / (1.0 + (k / 0.06) ** 2)  # pink-ish: blobs of ~1/6 of the frame
    spectrum[0, 0] = 0
    tex = np.real(np.fft.ifft2(spectrum))
    tex /= tex.std() + 1e-9
    fine = rng.standard_normal((size, size))
    fine_s = np.fft.fft2(fine) * np.exp(-((k / 0.25) ** 2))
    fine_s[0, 0] = 0
    fine_t = np.real(np.fft.ifft2(fine_s))
    fine_t /= fine_t.std() + 1e-9
    tex = tex + detail * fine_t
    base = rng.uniform(95, 135)
    tint = rng.uniform(-12, 12, size=3)
    img = base + tint[None, None, :] + contrast * 0.7 * tex[:, :, None]
    return np.fft.rfft2(img.astype(np.float32), axes=(0, 1))  # (size, size//2+1, 3)


def _random_unit(rng: np.random.Generator) -> np.ndarray:
    a = rng.uniform(0, 2 * np.pi)
    return np.array([math.cos(a), math.sin(a)])


def _log_scale(cfg: SyntheticConfig, rng: np.random.Generator, zoom: bool | None) -> np.ndarray:
    """Per-frame log scale of an object.

    ``u0 ~ U(-radius_jitter, radius_jitter)``.  In the motion group (``zoom`` not None) every class
    has the same single-frame distribution of sizes: a zooming object has ``u0 + zoom_rate * (t - tmid)``,
    any other object that expression at a random frame ``tau``, held constant.  Elsewhere
    (``zoom=None``) the size is ``u0``.
    """
    T = cfg.frames
    t = np.arange(T, dtype=float)
    tmid = (T - 1) / 2.0
    u0 = rng.uniform(-cfg.radius_jitter, cfg.radius_jitter)
    tau = float(rng.integers(0, T))
    if zoom is None:
        return np.full(T, u0)
    if zoom:
        return u0 + cfg.zoom_rate * (t - tmid)
    return np.full(T, u0 + cfg.zoom_rate * (tau - tmid))


def _torus_distance(a: np.ndarray, b: np.ndarray, size: int) -> np.ndarray:
    return np.hypot(*(_wrap(a - b, size)).T)


def _plan(cfg: SyntheticConfig, row: pd.Series, rng: np.random.Generator) -> list[_Object]:
    """Trajectories of the objects of one clip (object 0 = the class's main object)."""
    T, S = cfg.frames, cfg.size
    t = np.arange(T, dtype=float)[:, None]
    tmid = (T - 1) / 2.0
    angle0 = rng.uniform(0, 2 * np.pi)
    phase = rng.uniform(0, cfg.texture_period, size=2)
    group = row.group

    def speed_of(base: float) -> float:
        return base * (1.0 + rng.uniform(-cfg.speed_jitter, cfg.speed_jitter))

    objs: list[_Object] = []
    if group == "appearance":
        u = _log_scale(cfg, rng, zoom=None)
        v = _random_unit(rng) * speed_of(cfg.speed) * rng.uniform(0.5, 1.5)
        c = rng.uniform(0, S, size=2)
        spin = rng.uniform(-cfg.spin, cfg.spin)
        objs.append(_Object(c + v * (t - tmid), cfg.radius * np.exp(u), angle0 + spin * t[:, 0],
                            PALETTE[row.colour], True, "main", cfg.texture_contrast, phase))
    elif group == "motion":
        m = [k for k in MOTIONS if f"Motion{_camel(k)}" == row.class_name][0]
        u = _log_scale(cfg, rng, zoom=m.startswith("zoom"))
        c = rng.uniform(0, S, size=2)
        angles = np.full(T, angle0)
        v = np.zeros(2)
        if m.split("_")[0] in DIRECTIONS:
            v = np.array(DIRECTIONS[m.split("_")[0]]) * speed_of(cfg.speed) * (
                cfg.fast_factor if m.endswith("_fast") else 1.0)
        elif m.startswith("rotate"):
            w = speed_of(cfg.rotation_speed) * (1 if m == "rotate_cw" else -1)
            angles = angle0 + w * t[:, 0]  # image y points down: positive angle turns clockwise on screen
        objs.append(_Object(c + v * (t - tmid), cfg.radius * np.exp(u), angles, OBJECT_GREY, True, "main",
                            cfg.texture_contrast, phase))
    else:  # spatiotemporal
        u = _log_scale(cfg, rng, zoom=None)
        r = cfg.radius * np.exp(u)
        mov = RED if row.moving_colour == "red" else BLUE
        still = BLUE if row.moving_colour == "red" else RED
        v = np.array(DIRECTIONS[row.direction]) * speed_of(cfg.speed)
        min_d = 2 * float(r.max()) + 2.0
        for _ in range(1000):  # rejection keeps both positions uniform on the torus
            c = rng.uniform(0, S, size=2)
            p = rng.uniform(0, S, size=2)
            path = c + v * (t - tmid)
            if _torus_distance(path, p[None, :], S).min() >= min_d:
                break
        else:
            raise ConfigError(f"synthetic: cannot keep two discs of radius {r.max():.1f} apart in a {S}x{S} "
                              "frame; lower radius or raise size")
        # both discs spin in place at independent random rates: the still one changes from frame to frame
        # as much as the moving one does (which keeps the codec from treating them differently)
        spins = rng.uniform(-cfg.spin, cfg.spin, size=2)
        angle1 = rng.uniform(0, 2 * np.pi)
        objs.append(_Object(path, r, angle0 + spins[0] * t[:, 0], mov, True, "main", cfg.texture_contrast, phase))
        objs.append(_Object(np.repeat(p[None, :], T, 0), r.copy(), angle1 + spins[1] * t[:, 0], still, False, "still",
                            cfg.texture_contrast, phase.copy()))
    for _ in range(cfg.distractors):
        u = _log_scale(cfg, rng, zoom=None)
        v = _random_unit(rng) * speed_of(cfg.speed) * rng.uniform(0.5, 1.5)
        c = rng.uniform(0, S, size=2)
        spin = rng.uniform(-cfg.spin, cfg.spin)
        objs.append(_Object(c + v * (t - tmid), cfg.radius * cfg.distractor_scale * np.exp(u),
                            rng.uniform(0, 2 * np.pi) + spin * t[:, 0], DISTRACTOR_GREY, True, "distractor",
                            cfg.texture_contrast, rng.uniform(0, cfg.texture_period, size=2)))
    for o in objs:
        o.centres = o.centres % S
    return objs


def _texture(ux: np.ndarray, uy: np.ndarray, period: float, phase: np.ndarray) -> np.ndarray:
    """Object texture in object coordinates, in [-1, 1] (a smooth checker pattern)."""
    k = 2 * np.pi / period
    return np.sin(k * (ux + phase[0])) * np.sin(k * (uy + phase[1]))


def render_clip(cfg: SyntheticConfig, label: int, seed: int, classes: pd.DataFrame | None = None,
                adjust=None) -> Clip:
    """Render clip ``seed`` of class ``label``: raw RGB frames and their ground truth (pure function).

    ``classes`` (``class_table(cfg)``) may be passed to save rebuilding it for every clip.
    ``adjust(objects, cfg)``, when given, edits the planned objects (``_Object``, object 0 first)
    before drawing; the random stream is untouched, so background, distractors and noise stay
    those of ``seed`` (the probe clips of ``analysis/probes.py`` vary one factor this way).
    """
    classes = class_table(cfg) if classes is None else classes
    if not 0 <= label < len(classes):
        raise ConfigError(f"synthetic: label {label} out of range (0..{len(classes) - 1})")
    row = classes.iloc[label]
    rng = np.random.default_rng(seed)
    T, S = cfg.frames, cfg.size
    objs = _plan(cfg, row, rng)
    if adjust is not None:
        adjust(objs, cfg)

    bg_spec = _background(rng, S, cfg.background_contrast, cfg.background_detail)
    # the background pans (random direction) and shakes; objects move on their own (see module doc)
    bg_shift = _random_unit(rng)[None, :] * cfg.background_speed * np.arange(T)[:, None]
    if cfg.background_jitter > 0:
        bg_shift = bg_shift + rng.normal(0.0, cfg.background_jitter, size=(T, 2))
    if cfg.object_jitter > 0:
        for o in objs:
            o.centres = (o.centres + rng.normal(0.0, cfg.object_jitter, size=(T, 2))) % S
    freq_y, freq_x = np.fft.fftfreq(S), np.fft.rfftfreq(S)
    ph = np.exp(-2j * np.pi * (freq_x[None, None, :] * bg_shift[:, 0, None, None]
                               + freq_y[None, :, None] * bg_shift[:, 1, None, None])).astype(np.complex64)
    frames = np.fft.irfft2(bg_spec[None] * ph[..., None], s=(S, S), axes=(1, 2))  # (T, S, S, 3) exact shift

    flow = np.empty((T - 1, S, S, 2), np.float32)
    flow[:] = np.diff(bg_shift, axis=0)[:, None, None, :].astype(np.float32)  # background
    owner = np.full((T, S, S), -1, np.int16)
    tt = np.arange(T)
    for k in reversed(range(len(objs))):  # distractors first (underneath), the main object last
        o = objs[k]
        # each object is drawn on a square patch around it (indices wrap around the torus)
        half = int(math.ceil(o.radii.max() + 1.5))
        off = np.arange(-half, half + 1)
        base = np.rint(o.centres).astype(int)  # (T, 2)
        dx = (off[None, :] + (base[:, 0] - o.centres[:, 0])[:, None])[:, None, :]  # (T, 1, P)
        dy = (off[None, :] + (base[:, 1] - o.centres[:, 1])[:, None])[:, :, None]  # (T, P, 1)
        r = o.radii[:, None, None]
        alpha = np.clip(r + 0.5 - np.hypot(dx, dy), 0.0, 1.0)  # (T, P, P)
        scale = r / cfg.radius
        ca, sa = np.cos(o.angles)[:, None, None], np.sin(o.angles)[:, None, None]
        ux = (ca * dx + sa * dy) / scale
        uy = (-sa * dx + ca * dy) / scale
        shade = 1.0 + o.contrast * 0.5 * _texture(ux, uy, cfg.texture_period, o.phase)
        colour = shade[..., None] * np.asarray(o.colour, np.float64)
        iy = (base[:, 1, None] + off[None, :]) % S  # (T, P)
        ix = (base[:, 0, None] + off[None, :]) % S
        rows, cols = iy[:, :, None], ix[:, None, :]
        a3 = alpha[..., None]
        frames[tt[:, None, None], rows, cols] = frames[tt[:, None, None], rows, cols] * (1 - a3) + colour * a3
        own = owner[tt[:, None, None], rows, cols]
        owner[tt[:, None, None], rows, cols] = np.where(alpha > 0.5, k, own)
        # exact flow of the pixels this object owns at t: p -> c(t+1) + s R(da) (p - c(t))
        s_ = (o.radii[1:] / o.radii[:-1])[:, None, None]
        da = np.diff(o.angles)[:, None, None]
        move = _wrap(np.diff(o.centres, axis=0), S)
        ddx, ddy = np.broadcast_to(dx[:-1], alpha[:-1].shape), np.broadcast_to(dy[:-1], alpha[:-1].shape)
        fx = move[:, 0, None, None] + s_ * (np.cos(da) * ddx - np.sin(da) * ddy) - ddx
        fy = move[:, 1, None, None] + s_ * (np.sin(da) * ddx + np.cos(da) * ddy) - ddy
        sel = alpha[:-1] > 0.5
        t1 = tt[:-1, None, None]
        cur = flow[t1, rows[:-1], cols[:-1]]
        cur[..., 0] = np.where(sel, fx, cur[..., 0])
        cur[..., 1] = np.where(sel, fy, cur[..., 1])
        flow[t1, rows[:-1], cols[:-1]] = cur
    mask = owner >= 0
    if cfg.blur > 0:  # lens blur (Gaussian, periodic like the world), before the sensor noise
        g = np.exp(-2 * (np.pi * cfg.blur) ** 2 * (freq_y[:, None] ** 2 + freq_x[None, :] ** 2))
        frames = np.fft.irfft2(np.fft.rfft2(frames, axes=(1, 2)) * g[None, :, :, None], s=(S, S), axes=(1, 2))
    if cfg.noise > 0:
        frames += cfg.noise * rng.standard_normal(size=frames.shape, dtype=np.float32)
    frames = np.clip(np.rint(frames), 0, 255).astype(np.uint8)

    centres = np.stack([o.centres for o in objs], 1)
    truth = Truth(
        centres=centres,
        radii=np.stack([o.radii for o in objs], 1),
        angles=np.stack([o.angles for o in objs], 1),
        colours=np.array([o.colour for o in objs], np.uint8),
        moving=np.array([o.moving for o in objs]),
        kind=np.array([o.kind for o in objs]),
        displacement=_wrap(np.diff(centres[:, 0, :], axis=0), S),
        flow=flow,
        object_mask=mask,
        background_shift=bg_shift,
    )
    return Clip(frames, truth, int(label), str(row.class_name), str(row.group))


def render_video(cfg: SyntheticConfig, video_id: str, table: pd.DataFrame | None = None) -> Clip:
    """Render the clip that ``generate`` writes for ``video_id`` (e.g. ``MotionLeft/v_MotionLeft_g01_c01``)."""
    table = video_table(cfg) if table is None else table
    hit = table[table.video_id == video_id]
    if hit.empty:
        raise InputError(f"synthetic: no video {video_id!r} in this configuration")
    r = hit.iloc[0]
    return render_clip(cfg, int(r.label), int(r.seed))


# --------------------------------------------------------------------------- encoding and writing


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float, fourcc: str = "XVID") -> None:
    """Encode uint8 RGB frames (T, H, W, 3) with OpenCV's VideoWriter."""
    import cv2  # deferred: OpenCV is slow to import; only encoding videos needs it

    T, H, W, _ = frames.shape
    w = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*fourcc), float(fps), (W, H))
    if not w.isOpened():
        raise InputError(f"{path}: OpenCV cannot open a {fourcc} video writer (FFmpeg backend)")
    try:
        for f in frames:
            w.write(np.ascontiguousarray(f[:, :, ::-1]))
    finally:
        w.release()


def _write_text(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines))


def _write_clips(cfg: SyntheticConfig, folder: str, rows: list[tuple[str, int, int]]) -> int:
    """Render and encode clips ``(path, label, seed)`` under ``folder`` (one worker's share)."""
    classes = class_table(cfg)
    for path, label, seed in rows:
        write_video(Path(folder) / path, render_clip(cfg, label, seed, classes).frames, cfg.fps, cfg.fourcc)
    return len(rows)


def generate(cfg: SyntheticConfig, root: str | os.PathLike, progress: bool = True, workers: int = 1) -> pd.DataFrame:
    """Write the whole dataset under ``root`` and return the video table (as in ``videos.csv``).

    Atomic: everything is written into a hidden sibling folder that replaces ``root`` only when
    complete, so an interrupted run never leaves a complete-looking dataset.  ``workers`` processes
    render and encode in parallel; the output does not depend on it.
    """
    root = Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    from ..store import temp_path  # deferred: store imports h5py; the renderer (used by findings) needs none

    tmp = temp_path(root)  # the same for every run: a rerun removes what a killed run left
    old = root.with_name(f".{root.name}.old")
    for leftover in (tmp, old):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover)
        elif leftover.exists() or leftover.is_symlink():
            leftover.unlink()
    tmp.mkdir()
    try:
        classes = class_table(cfg)
        videos = video_table(cfg)
        for name in classes.class_name:
            (tmp / name).mkdir()
        jobs = list(zip(videos.path, videos.label.astype(int), videos.seed.astype(int)))
        chunk = 32
        chunks = [jobs[i:i + chunk] for i in range(0, len(jobs), chunk)]
        bar = progress_bar(total=len(jobs), desc="synth", unit="clip", disable=not progress, file=sys.stderr,
                   mininterval=2.0)
        if workers <= 1:
            for c in chunks:
                bar.update(_write_clips(cfg, str(tmp), c))
        else:
            with ProcessPoolExecutor(max_workers=workers) as ex:
                for n in ex.map(_write_clips, [cfg] * len(chunks), [str(tmp)] * len(chunks), chunks):
                    bar.update(n)
        bar.close()
        classes.to_csv(tmp / "classes.csv", index=False)
        videos.to_csv(tmp / "videos.csv", index=False)
        _write_text(tmp / "classInd.txt", [f"{lab + 1} {n}" for lab, n in zip(classes.label, classes.class_name)])
        tr = videos[videos.split == "train"]
        te = videos[videos.split == "test"]
        _write_text(tmp / "trainlist01.txt", [f"{p} {lab + 1}" for p, lab in zip(tr.path, tr.label)])
        _write_text(tmp / "testlist01.txt", list(te.path))
        # swap in: the final name only ever holds a complete dataset
        moved = root.exists() or root.is_symlink()
        if moved:
            os.replace(root, old)
        os.replace(tmp, root)
        if moved:
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() and not old.is_symlink() else old.unlink()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return videos


# --------------------------------------------------------------------------- CLI


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_params_arguments(p)
    p.add_argument("--out", required=True, help="dataset root to write (UCF101 layout)")
    p.add_argument("--threads", type=int, default=1, help="worker processes (the output does not depend on it)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    cfg = make_config(section_from_args(args, "synthetic"))
    t0 = time.perf_counter()
    videos = generate(cfg, args.out, progress=not args.no_progress, workers=args.threads)
    dt = time.perf_counter() - t0
    n_frames = len(videos) * cfg.frames
    print(f"synth: {len(videos)} videos, {n_frames} frames, {videos.label.nunique()} classes "
          f"-> {args.out} in {dt:.1f} s", file=sys.stderr)
    return 0


__all__ = [
    "SyntheticConfig", "make_config", "class_table", "video_table", "clip_seed", "render_clip",
    "render_video", "write_video", "generate", "Clip", "Truth", "add_arguments", "run",
]
