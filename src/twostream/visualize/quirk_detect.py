"""Measures that find a planted cue (a quirk of the training data) in optimised inputs.

Two measures of a class unit's optimised images (``(H, W, 3)`` in [0, 1]):

:func:`cue_measure` knows the cue.  It slides the cue's template (the mark's colour inside a
ring of neutral grey, the mark's surroundings in the training frames) over the image and
returns the normalised cross-correlation (NCC) at the planted place (best offset within
``tolerance`` px of it), elsewhere (95th percentile over the places farther away of the same
best-within-tolerance value) and at the best offset anywhere.  The image is treated as periodic, as the optimiser's jitter is a
circular shift.

:func:`structure_measure` knows the cue's place and size, not its colour.  It averages the
detector's step-1 map (below: colour distance from the class's known colours and grey) over a
cue-sized square and returns that value at the planted place and elsewhere, judged like the
template's: structure the class's causes do not explain, drawn where the mark was planted.

:func:`detect` does not know the cue.  It looks for structure that the class's known causes
do not explain and that sits at the same place in most seeds' images:

1. per image, the distance of every pixel's colour from the nearest known colour of the
   class (its causes, and neutral grey), divided by the image's mean distance;
2. each map smoothed (Gaussian, periodic, ``sigma`` px) and averaged over the seeds;
3. the peak of the average map, as a robust z-score against the whole map (median, MAD);
4. the peak's support: the share of seeds whose own map is in its top 5% there.

With ``null_draws`` = 0 it fires when ``z >= min_z`` and ``support >= min_support``. With
``null_draws`` > 0 the z is judged against a **shift null** instead of a fixed bar: each
seed's map is circularly shifted by its own uniform random offset, the shifted maps are
averaged and their peak's z taken, ``null_draws`` times (a fixed numpy seed);
``p = (1 + #null z >= z) / (1 + null_draws)``, and it fires when ``p <= alpha`` and
``support >= min_support``. Structure at the same place in every seed beats the same
structure at random places; strong structure at a different place in each seed does not.
``smooth_image`` smooths each image (the same Gaussian) before the colour distance, so
pixel colour noise averages towards grey. It reports the peak's place (x, y in px). A cue
that the network draws at a different place in every seed, or structure explained by a
known colour, leaves it silent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

NEUTRAL = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class Cue:
    """A square mark: top-left corner (x, y) and side in px of the image, colour RGB in [0, 1]."""

    x: int
    y: int
    size: int
    colour: tuple[float, float, float]

    @property
    def margin(self) -> int:
        return max(1, self.size // 2)

    @property
    def centre(self) -> tuple[float, float]:
        return self.x + (self.size - 1) / 2.0, self.y + (self.size - 1) / 2.0

    def template(self) -> np.ndarray:
        """(k, k, 3) window: the mark inside a ring of neutral grey, k = size + 2 margin."""
        m = self.margin
        k = self.size + 2 * m
        t = np.empty((k, k, 3), np.float64)
        t[:] = NEUTRAL
        t[m:m + self.size, m:m + self.size] = self.colour
        return t


def _windows(image: np.ndarray, k: int) -> np.ndarray:
    """(H, W, k, k, 3) periodic windows; window (y, x) starts at pixel (y, x)."""
    img = np.asarray(image, np.float64)
    padded = np.pad(img, ((0, k - 1), (0, k - 1), (0, 0)), mode="wrap")
    win = np.lib.stride_tricks.sliding_window_view(padded, (k, k), axis=(0, 1))  # (H, W, 3, k, k)
    return np.moveaxis(win, 2, -1)


def ncc_map(image: np.ndarray, template: np.ndarray) -> np.ndarray:
    """(H, W) normalised cross-correlation of ``template`` with the window starting at each
    pixel (periodic); 0 where the window or the template is flat."""
    k = template.shape[0]
    win = _windows(image, k).reshape(image.shape[0], image.shape[1], -1)
    t = template.reshape(-1) - template.mean()
    w = win - win.mean(-1, keepdims=True)
    num = w @ t
    den = np.linalg.norm(w, axis=-1) * np.linalg.norm(t)
    return np.where(den > 1e-9, num / np.maximum(den, 1e-12), 0.0)


def _circ_dist(ys: np.ndarray, xs: np.ndarray, y0: float, x0: float, H: int, W: int) -> np.ndarray:
    dy = np.abs(ys - y0) % H
    dx = np.abs(xs - x0) % W
    return np.hypot(np.minimum(dy, H - dy), np.minimum(dx, W - dx))


def place_and_elsewhere(score: np.ndarray, top: int, left: int, tolerance: float, far_from: float) -> tuple[float, float]:
    """A (H, W) map of windows (window (y, x) starts at pixel (y, x)) judged at one place:
    the best window within ``tolerance`` px of (top, left), and the 95th percentile of the
    same best-within-tolerance value over the windows farther than ``far_from`` px (periodic)."""
    H, W = score.shape
    from scipy.ndimage import maximum_filter  # deferred: scipy is slow to import; only the measures need it

    k = 2 * int(math.ceil(tolerance)) + 1  # like with like: at every place, the best offset within the tolerance
    best_near = maximum_filter(score, size=k, mode="wrap")
    ys, xs = np.mgrid[0:H, 0:W]
    far = _circ_dist(ys, xs, top, left, H, W) > far_from
    return float(best_near[top % H, left % W]), float(np.percentile(best_near[far], 95)) if far.any() else float("nan")


def cue_measure(image: np.ndarray, cue: Cue, tolerance: float = 3.0) -> dict:
    """NCC of the cue's template at its place, elsewhere (95th percentile) and anywhere."""
    H, W = image.shape[:2]
    c = ncc_map(image, cue.template())
    at, elsewhere = place_and_elsewhere(c, cue.y - cue.margin, cue.x - cue.margin, tolerance,
                                        2 * tolerance + cue.size)
    by, bx = np.unravel_index(int(np.argmax(c)), c.shape)
    return {
        "cue_at_place": at,
        "cue_elsewhere": elsewhere,
        "cue_best": float(c.max()),
        "cue_best_x": float((bx + cue.margin + (cue.size - 1) / 2.0) % W),
        "cue_best_y": float((by + cue.margin + (cue.size - 1) / 2.0) % H),
    }


def structure_measure(image: np.ndarray, cue: Cue, known: Sequence[Sequence[float]], tolerance: float = 3.0) -> dict:
    """Unexplained structure (:func:`unexplained`, 1 = the image's typical value) averaged over a
    cue-sized square: at the planted square (best within ``tolerance``) and elsewhere (95th
    percentile over the squares far from it)."""
    u = unexplained(image, known)
    k = int(cue.size)
    padded = np.pad(u, ((0, k - 1), (0, k - 1)), mode="wrap")
    c = np.cumsum(np.cumsum(np.pad(padded, ((1, 0), (1, 0))), 0), 1)  # summed-area table: every square's mean
    H, W = u.shape
    sq = (c[k:k + H, k:k + W] - c[:H, k:k + W] - c[k:k + H, :W] + c[:H, :W]) / (k * k)
    at, elsewhere = place_and_elsewhere(sq, cue.y, cue.x, tolerance, 2 * tolerance + cue.size)
    return {"structure_at_place": at, "structure_elsewhere": elsewhere}


def _smooth(a: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return a
    from scipy.ndimage import gaussian_filter  # deferred: scipy is slow to import; only this function needs it

    return gaussian_filter(a, sigma, mode="wrap")


def unexplained(image: np.ndarray, known: Sequence[Sequence[float]]) -> np.ndarray:
    """(H, W) distance of each pixel's colour from the nearest known colour, over the
    image's mean distance (1 = typical)."""
    img = np.asarray(image, np.float64)
    cols = np.asarray(list(known) + [NEUTRAL], np.float64)
    d = np.linalg.norm(img[:, :, None, :] - cols[None, None], axis=-1).min(-1)
    return d / max(float(d.mean()), 1e-9)


@dataclass
class Detection:
    fired: bool
    x: float  # the peak's place (px); a place is reported only when ``fired``
    y: float
    z: float  # robust z-score of the peak of the seed-averaged map
    support: float  # share of seeds whose own map is in its top 5% at the peak
    p: float = float("nan")  # the shift null's p-value of z (nan without a null)

    def distance_to(self, x: float, y: float, H: int, W: int) -> float:
        """Periodic distance (px) of the peak from (x, y)."""
        return float(_circ_dist(np.array(self.y), np.array(self.x), y, x, H, W))


def peak_z(mean: np.ndarray) -> tuple[float, int, int]:
    """(robust z of the map's peak against the whole map (median, MAD), peak y, peak x)."""
    med = float(np.median(mean))
    mad = 1.4826 * float(np.median(np.abs(mean - med)))
    py, px = np.unravel_index(int(np.argmax(mean)), mean.shape)
    return float((mean[py, px] - med) / max(mad, 1e-9)), int(py), int(px)


def shift_null_p(maps: np.ndarray, z: float, draws: int, seed: int = 0) -> float:
    """p of ``z`` under the shift null: every map rolled by its own random offset, averaged."""
    rng = np.random.default_rng(seed)
    S, H, W = maps.shape
    hits = 0
    for _ in range(int(draws)):
        dy, dx = rng.integers(0, H, S), rng.integers(0, W, S)
        hits += peak_z(np.mean([np.roll(maps[s], (dy[s], dx[s]), (0, 1)) for s in range(S)], 0))[0] >= z
    return (1 + hits) / (int(draws) + 1)


def detect(images: Sequence[np.ndarray], known: Sequence[Sequence[float]], sigma: float = 2.0,
           min_z: float = 6.0, min_support: float = 0.6, null_draws: int = 0, alpha: float = 0.01,
           smooth_image: bool = False) -> Detection:
    """Blind detector: consistent, localized structure unexplained by the ``known`` colours
    across the images of one class unit (one per seed); see the module docstring."""
    if smooth_image:
        images = [np.stack([_smooth(np.asarray(im, np.float64)[..., c], sigma) for c in range(3)], -1)
                  for im in images]
        maps = np.stack([unexplained(im, known) for im in images])
    else:
        maps = np.stack([_smooth(unexplained(im, known), sigma) for im in images])
    z, py, px = peak_z(maps.mean(0))
    top = np.array([m[py, px] >= np.percentile(m, 95) for m in maps])
    support = float(top.mean())
    if null_draws > 0:
        p = shift_null_p(maps, z, null_draws)
        fired = bool(p <= alpha and support >= min_support)
    else:
        p = float("nan")
        fired = bool(z >= min_z and support >= min_support)
    return Detection(fired, float(px), float(py), z, support, p)


__all__ = ["Cue", "ncc_map", "place_and_elsewhere", "cue_measure", "structure_measure", "unexplained", "Detection", "peak_z", "shift_null_p", "detect", "NEUTRAL"]
