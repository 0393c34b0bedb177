"""The judges of one optimised input: measures with their thresholds, pure functions of arrays.

Each judge takes the optimised image (H, W, 3) in [0, 1] and/or flow (L, H, W, 2) in
px/frame and the class's known factors (``causes.py``), and returns (passed, details):

* ``gate`` - does the run count? The class probability within its group reaches
  ``min_prob`` and every input the check reads carries signal (mean of the top-10% flow
  magnitudes >= ``min_flow`` px/frame; image standard deviation >= ``min_image_std``);
  a run that fails the gate is *inconclusive*, never a pass;
* ``judge_direction`` - the mean flow of the top-10% magnitude vectors points the
  class's way (sign of its projection; chance 1/2);
* ``judge_colour`` - the hue of the mean colour shift from grey (of every pixel or of
  the 10% most saturated, ``colour_pixels``) is nearer the class's hue than any other
  class colour's (chance 1 / number of colours);
* ``judge_colocation`` - the moving colour sits where the flow is: the correlation
  ``r`` between a colour map and a motion map, both smoothed at ``colocation_sigma`` px,
  is >= ``min_corr`` *and* beats the same correlation against circularly shifted motion
  maps (``shift_null``): its p-value ``(1 + #{null >= r}) / (1 + n_null)`` is
  <= ``max_null_p``. Two smooth maps correlate by coincidence; the shifts keep both maps'
  texture and move the motion away from where it was, so the p-value asks whether the
  colour is at *this* motion rather than correlated at all. The judge's pass rate under
  that null (each shifted map judged as the real one) is the run's ``null_pass``.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.ndimage import gaussian_filter

from ..errors import InputError

COLOCATION_MOTIONS = ("magnitude", "direction")  # motion maps of the co-location check
COLOCATION_MAPS = ("contrast", "distance")  # colour maps of the co-location check
COLOUR_PIXELS = ("all", "saturated")  # pixels whose mean shift from grey the colour check reads
NULL_GRID = 8  # shift_null: shifts at multiples of 1/8 of each side ...
NULL_MIN_SHIFT = 0.25  # ... at least a quarter of the side away (toroidal), beyond an object's size


@dataclass
class Thresholds:
    min_prob: float = 0.9
    min_flow: float = 0.3  # px/frame, mean of the top-10% magnitudes
    min_image_std: float = 0.02
    min_corr: float = 0.2
    max_null_p: float = 0.05  # co-location: p-value against the circular-shift null
    min_pass_rate: float = 0.8
    colocation_map: str = "contrast"
    colocation_motion: str = "magnitude"
    colocation_sigma: float = 2.0  # px: Gaussian smoothing of both co-location maps (0: pixel by pixel)
    colour_pixels: str = "saturated"  # all | saturated (the 10% of highest chroma)


# which inputs must carry signal for each check
NEEDS = {"colour": ("rgb",), "direction": ("flow",), "colocation": ("rgb", "flow")}


# ---- measures ------------------------------------------------------------------------


def top_flow(flow: np.ndarray, frac: float = 0.1) -> tuple[float, np.ndarray]:
    """(mean magnitude, mean vector) of the top ``frac`` flow vectors by magnitude.

    ``flow``: (L, H, W, 2) or (H, W, 2) in px/frame.
    """
    v = np.asarray(flow, dtype=np.float64).reshape(-1, 2)
    mag = np.hypot(v[:, 0], v[:, 1])
    k = max(1, int(round(frac * len(mag))))
    idx = np.argpartition(mag, len(mag) - k)[len(mag) - k :]
    return float(mag[idx].mean()), v[idx].mean(0)


def hue_of(rgb: Sequence[float]) -> float | None:
    """Hue (0..1) of an RGB vector, None when it has no chroma."""
    r, g, b = (float(c) for c in rgb)
    lo = min(r, g, b)
    r, g, b = r - lo, g - lo, b - lo  # shift so the colour is a non-negative chroma
    if max(r, g, b) < 1e-6:
        return None
    return colorsys.rgb_to_hsv(r, g, b)[0]


def hue_distance(a: float, b: float) -> float:
    d = abs(a - b) % 1.0
    return min(d, 1.0 - d)


def colour_shift_hue(image: np.ndarray, pixels: str = "all") -> float | None:
    """Hue of the mean colour shift from grey of an image (H, W, 3) in [0, 1].

    ``pixels``: ``all`` (every pixel) or ``saturated`` (the 10% of pixels of highest
    chroma, max - min of R, G, B). A unit may paint its colour in blobs over a
    texture of other hues; the mean over all pixels then mixes them (a cyan unit's
    blobs on green-yellow texture average to green), the saturated pixels do not.
    """
    px = np.asarray(image, dtype=np.float64).reshape(-1, 3)
    if pixels == "saturated":
        chroma = px.max(1) - px.min(1)
        k = max(1, int(round(0.1 * len(px))))
        px = px[np.argpartition(chroma, len(px) - k)[len(px) - k :]]
    elif pixels != "all":
        raise InputError(f"colour pixels {pixels!r} is not one of {', '.join(COLOUR_PIXELS)}")
    return hue_of(px.mean(0) - 0.5)


def nearest_hue(h: float | None, colours: dict[int, tuple[float, float, float]]) -> int | None:
    """The label whose colour's hue is nearest ``h`` (None without a hue)."""
    if h is None:
        return None
    best, dist = None, 2.0
    for label, c in colours.items():
        hc = hue_of(c)
        if hc is None:
            continue
        d = hue_distance(h, hc)
        if d < dist:
            best, dist = label, d
    return best


def nearest_colour(image: np.ndarray, colours: dict[int, tuple[float, float, float]],
                   pixels: str = "all") -> int | None:
    """The label whose colour's hue is nearest the image's colour-shift hue."""
    return nearest_hue(colour_shift_hue(image, pixels), colours)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two maps (0 when one is constant)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    a, b = a - a.mean(), b - b.mean()
    den = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else 0.0


def colocation_maps(image: np.ndarray, flow: np.ndarray, moving: Sequence[float], still: Sequence[float],
                    method: str = "contrast", direction: Sequence[float] | None = None,
                    motion: str = "magnitude", sigma: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(moving-colour map, still-colour map, motion map), each (H, W), smoothed at ``sigma`` px.

    ``sigma``: both maps are smoothed by a Gaussian of this standard deviation (circular
    borders, as the jitter that made the inputs), so that co-location is judged at a
    scale below the objects' size rather than pixel by pixel; 0 keeps pixels.

    Motion maps (means over the L fields): ``magnitude`` (per-pixel flow magnitude) or
    ``direction`` (the flow projected on the class's ``direction``: an in-place spin, as
    of the synthetic still object, adds little to it).

    Colour maps: ``contrast`` (each pixel's colour projected on ``moving - still``; the
    still-colour map is its negative) or ``distance`` (minus each pixel's distance to
    the colour, for each colour).
    """
    if sigma < 0:
        raise InputError(f"colocation smoothing sigma must be >= 0, got {sigma}")
    img = np.asarray(image, dtype=np.float64)
    f = np.asarray(flow, dtype=np.float64)
    if f.ndim == 3:
        f = f[None]
    if motion == "direction":
        if direction is None:
            raise InputError("colocation on the direction map needs the class's direction")
        d = np.asarray(direction, dtype=np.float64)
        mag = (f[..., 0] * d[0] + f[..., 1] * d[1]).mean(0)
    elif motion == "magnitude":
        mag = np.hypot(f[..., 0], f[..., 1]).mean(0)
    else:
        raise InputError(f"colocation motion map {motion!r} is not one of {', '.join(COLOCATION_MOTIONS)}")
    smooth = (lambda a: gaussian_filter(a, sigma, mode="wrap")) if sigma > 0 else (lambda a: a)
    mv, st = np.asarray(moving, dtype=float), np.asarray(still, dtype=float)
    if method == "contrast":
        m = smooth(img @ (mv - st))
        return m, -m, smooth(mag)
    if method != "distance":
        raise InputError(f"colocation method {method!r} is not one of {', '.join(COLOCATION_MAPS)}")
    m = smooth(-np.linalg.norm(img - mv, axis=-1))
    s = smooth(-np.linalg.norm(img - st, axis=-1))
    return m, s, smooth(mag)


def colocation(image, flow, moving, still, method: str = "contrast", direction=None,
               motion: str = "magnitude", sigma: float = 0.0) -> tuple[float, float]:
    """(corr(moving-colour map, motion map), corr(still-colour map, motion map))."""
    m, s, mag = colocation_maps(image, flow, moving, still, method, direction, motion, sigma)
    return correlation(m, mag), correlation(s, mag)


def null_shifts(shape: tuple[int, int], grid: int = NULL_GRID, min_shift: float = NULL_MIN_SHIFT) -> list[tuple[int, int]]:
    """Circular shifts (dy, dx) of the null: multiples of side/``grid`` on each axis whose
    toroidal distance is >= ``min_shift`` of the shorter side."""
    h, w = int(shape[0]), int(shape[1])
    lim = min_shift * min(h, w)
    out = []
    for i in range(grid):
        for j in range(grid):
            dy, dx = round(i * h / grid) % h, round(j * w / grid) % w
            ty, tx = min(dy, h - dy), min(dx, w - dx)
            if math.hypot(ty, tx) >= lim and (dy, dx) not in out:
                out.append((dy, dx))
    return out


def shift_null(colour_map: np.ndarray, motion_map: np.ndarray, shifts: Sequence[tuple[int, int]] | None = None) -> np.ndarray:
    """Correlations of ``colour_map`` with circularly shifted copies of ``motion_map``."""
    shifts = null_shifts(motion_map.shape) if shifts is None else shifts
    return np.array([correlation(colour_map, np.roll(motion_map, s, axis=(0, 1))) for s in shifts])


def null_p(observed: float, null: np.ndarray) -> float:
    """One-sided permutation p-value: (1 + #{null >= observed}) / (1 + n)."""
    null = np.asarray(null, dtype=np.float64)
    return float((1 + np.sum(null >= observed - 1e-12)) / (1 + len(null)))


def null_pass_rate(null: np.ndarray, observed: float, min_corr: float, max_p: float) -> float:
    """Fraction of the null draws that the co-location judge would pass, each judged as the
    observed map (>= ``min_corr`` and its p-value among the other draws + the observed <= ``max_p``)."""
    null = np.asarray(null, dtype=np.float64)
    if not len(null):
        return float("nan")
    every = np.append(null, observed)
    passes = 0
    for k, v in enumerate(null):
        others = np.delete(every, k)
        passes += v >= min_corr and null_p(v, others) <= max_p
    return passes / len(null)


# ---- judges --------------------------------------------------------------------------


def gate(prob: float | None, rgb: np.ndarray | None, flow: np.ndarray | None, th: Thresholds,
         needs: Sequence[str] = ("rgb", "flow")) -> tuple[bool, dict]:
    """Does the optimised input count? The class probability is high enough and every
    input the check judges (``needs``) carries real signal."""
    d: dict = {"prob": float("nan") if prob is None else float(prob)}
    ok = prob is not None and prob >= th.min_prob
    if flow is not None:
        d["flow_top"], _ = top_flow(flow)
        if "flow" in needs:
            ok = ok and d["flow_top"] >= th.min_flow
    if rgb is not None:
        d["image_std"] = float(np.asarray(rgb).std())
        if "rgb" in needs:
            ok = ok and d["image_std"] >= th.min_image_std
    return bool(ok), d


def judge_direction(flow: np.ndarray, direction: Sequence[float]) -> tuple[bool, dict]:
    """The top-10% flow points along ``direction``; chance (a direction-blind unit) 1/2."""
    _, v = top_flow(flow)
    proj = float(np.dot(v, np.asarray(direction, dtype=float)))
    return proj > 0, {"mean_dx": float(v[0]), "mean_dy": float(v[1]), "projection": proj, "null_pass": 0.5}


def judge_colour(rgb: np.ndarray, label: int, colours: dict[int, tuple[float, float, float]],
                 pixels: str = "all") -> tuple[bool, dict]:
    """The image's colour-shift hue is nearest ``label``'s colour; chance 1 / len(colours)."""
    h = colour_shift_hue(rgb, pixels)
    best = nearest_hue(h, colours)
    return best == label, {"hue": float("nan") if h is None else h, "nearest": -1 if best is None else best,
                           "null_pass": 1.0 / max(1, len(colours))}


def judge_colocation(rgb, flow, moving, still, th: Thresholds, direction=None) -> tuple[bool, dict]:
    """Correlation of the moving-colour map with the motion map >= ``min_corr`` and above
    the circular-shift null (p <= ``max_null_p``)."""
    m, s, mag = colocation_maps(rgb, flow, moving, still, th.colocation_map, direction, th.colocation_motion,
                                th.colocation_sigma)
    cm, cs = correlation(m, mag), correlation(s, mag)
    null = shift_null(m, mag)
    p = null_p(cm, null)
    ok = cm >= th.min_corr and p <= th.max_null_p
    return bool(ok), {"corr_moving": cm, "corr_still": cs, "null_p": p, "null_mean": float(null.mean()),
                      "null_pass": null_pass_rate(null, cm, th.min_corr, th.max_null_p)}
