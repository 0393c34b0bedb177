"""Invariance by depth (the paper's finding 3), measured on probe clips (``probes.py``).

For one unit and one factor f with levels l and probed classes c (``ProbeSet``), let R[c, l] be
the unit's mean response over the probe clips of class c at level l. With B the variance across
all classes of the unit's mean response on the ``base`` probes (every class as planned),

    invariance_f = clip(1 - mean_c var_l R[c, l] / B, 0, 1)

(population variances). 1: changing f moves the unit less than a change of class does, on
average not at all; 0: f moves it as much as (or more than) the class. Units whose ``base``
responses do not vary across classes (B <= 1e-12, e.g. dead units) have no index (nan) and
are left out of the layer's mean.

The *preferred speed* of a unit is the speed level with the highest response averaged over the
speed probes' classes; a layer's spread is the standard deviation of log2(preferred speed)
over its units (0: every unit prefers the same speed).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .stats import mean_interval


def between_class_variance(base: np.ndarray) -> np.ndarray:
    """base: (units, K) mean response per class -> (units,) variance across classes."""
    return np.asarray(base, float).var(1)


def invariance_index(resp: np.ndarray, between: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """resp: (units, classes, levels) mean responses; between: (units,) -> (units,) index."""
    resp = np.asarray(resp, float)
    within = resp.var(2).mean(1)
    between = np.asarray(between, float)
    ok = between > eps
    idx = np.full(len(between), np.nan)
    idx[ok] = np.clip(1.0 - within[ok] / between[ok], 0.0, 1.0)
    return idx


def preferred_level(resp: np.ndarray, levels) -> np.ndarray:
    """(units,) the level whose response, averaged over classes, is highest."""
    levels = np.asarray(levels, float)
    return levels[np.asarray(resp, float).mean(1).argmax(1)]


def layer_rows(index: np.ndarray, **key) -> dict:
    """One invariance.csv row: mean, 95% t interval, sd and count of a layer's unit indices."""
    m, lo, hi, sd, n = mean_interval(index)
    return dict(key, units=n, mean=m, lo=lo, hi=hi, sd=sd)


def speed_spread(preferred: np.ndarray, valid: np.ndarray) -> tuple[float, float]:
    """(std of log2 preferred speed, median preferred speed) over the valid units."""
    p = np.asarray(preferred, float)[np.asarray(valid, bool)]
    p = p[p > 0]
    if not len(p):
        return float("nan"), float("nan")
    return float(np.log2(p).std()), float(np.median(p))


def summarise(rows: list[dict]) -> pd.DataFrame:
    cols = ["model", "network", "layer", "depth", "factor", "levels", "classes", "units", "mean", "lo", "hi", "sd",
            "preferred_speed_spread", "preferred_speed_median"]
    df = pd.DataFrame(rows)
    for c in cols:
        if c not in df.columns:
            df[c] = np.nan
    return df[cols]
