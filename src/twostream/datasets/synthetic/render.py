"""Rendering of synthetic clips: raw RGB frames with their exact ground truth (pure functions).

Every clip has a textured background that shakes (``background_jitter``: a random offset in
every frame, zero mean, so subtracting a flow field's mean still leaves each object's own motion on
average) and may pan (``background_speed``), small grey distractor discs moving randomly
(``distractors``) and Gaussian sensor noise (``noise``).  Objects move independently of the background:
a "still" disc does not move in the frame while the background moves behind it (why: the codec
leak, see :mod:`twostream.datasets.synthetic.write`).

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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...config import ConfigError
from ...errors import InputError
from .classes import (
    BLUE,
    DIRECTIONS,
    DISTRACTOR_GREY,
    MOTIONS,
    OBJECT_GREY,
    PALETTE,
    RED,
    SyntheticConfig,
    _camel,
    class_table,
    video_table,
)

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
