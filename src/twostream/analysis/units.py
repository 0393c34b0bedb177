"""Units by their class profile (the paper's finding 2: class-specific and generic units).

A unit's profile is its mean response per class on test clips, ``means`` (units, K). From it:

- the *driving* classes: those whose mean reaches half of the way from ``min(0, lowest
  class mean)`` to the best class's mean (``driving``; the same rule as the class
  selectivity of ``visualize/stage.py``);
- the *margin*: (best - second best) / (best - min(0, lowest)), in [0, 1].

Each unit gets one kind:

``silent``
    the profile does not vary (best - lowest below ``1e-9`` of the layer's largest range);
``specific``
    margin >= ``specific_margin``: one class stands out;
``generic``
    the driving classes match the class set F of a shared factor f: precision |D & F| / |D|
    and recall |D & F| / |F| both >= ``generic_level``, and at least two classes drive the
    unit. Among several matching factors the one with the best F1 (then the smaller set) wins;
``other``
    anything else.

Factors come from ``classes.csv`` (:func:`factor_sets`): every value shared by two or more
classes (but not all of them) of the columns ``group``, ``motion``, ``direction`` and
``moving_colour``, e.g. ``direction=right`` = {MotionRight, MotionRightFast, RedMovesRight,
BlueMovesRight}; values that carry no factor (``random``, empty) are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .stats import wilson

FACTOR_COLUMNS = ("group", "motion", "direction", "moving_colour")
NO_FACTOR = {"", "random", "nan", "none"}
KINDS = ("specific", "generic", "other", "silent")


def factor_sets(classes: pd.DataFrame) -> dict[str, frozenset[int]]:
    """{"direction=right": {labels}, ...}: shared generating factors of the classes."""
    out: dict[str, frozenset[int]] = {}
    n = len(classes)
    for col in FACTOR_COLUMNS:
        if col not in classes.columns:
            continue
        for value, rows in classes.groupby(classes[col].astype(str).str.strip()):
            if value.lower() in NO_FACTOR or not 2 <= len(rows) < n:
                continue
            out[f"{col}={value}"] = frozenset(int(x) for x in rows.label)
    # the same class set under two names (e.g. group=motion and colour=grey): keep the first
    seen: dict[frozenset[int], str] = {}
    for k, v in out.items():
        seen.setdefault(v, k)
    return {k: v for k, v in out.items() if seen[v] == k}


def driving(means: np.ndarray) -> np.ndarray:
    """Boolean (units, K): the classes whose mean reaches half of the unit's range above
    ``min(0, lowest class mean)``; all False for a unit whose profile does not vary."""
    means = np.asarray(means, float)
    best = means.max(1, keepdims=True)
    lo = np.minimum(means.min(1, keepdims=True), 0.0)
    d = means >= lo + 0.5 * (best - lo)
    return d & ((best - lo) > 1e-12)


@dataclass
class UnitKinds:
    kind: np.ndarray  # (units,) str
    factor: np.ndarray  # (units,) str ("" unless generic; the best-matching factor otherwise)
    precision: np.ndarray
    recall: np.ndarray
    margin: np.ndarray
    top_class: np.ndarray
    n_driving: np.ndarray


def classify(means: np.ndarray, labels: np.ndarray, factors: dict[str, frozenset[int]],
             specific_margin: float = 0.5, generic_level: float = 0.75) -> UnitKinds:
    """Kind of every unit of a layer from its class profile ``means`` (units, K);
    ``labels`` (K,) names the columns' classes."""
    means = np.asarray(means, float)
    labels = np.asarray(labels)
    U, K = means.shape
    lo = np.minimum(means.min(1), 0.0)
    srt = np.sort(means, 1)
    best = srt[:, -1]
    second = srt[:, -2] if K > 1 else lo
    rng = best - lo
    scale = float(np.max(means.max(1) - means.min(1))) if U else 0.0
    silent = (means.max(1) - means.min(1)) <= max(1e-9 * scale, 1e-12)
    margin = np.where(rng > 0, (best - second) / np.where(rng > 0, rng, 1.0), 0.0)
    D = driving(means)
    kind = np.full(U, "other", dtype=object)
    factor = np.full(U, "", dtype=object)
    prec = np.full(U, np.nan)
    rec = np.full(U, np.nan)
    fsets = {k: np.isin(labels, sorted(v)) for k, v in factors.items()}
    for u in range(U):
        if silent[u]:
            kind[u] = "silent"
            continue
        d = D[u]
        best_key, best_f1 = "", -1.0
        for k, F in fsets.items():
            hit = float((d & F).sum())
            p = hit / max(d.sum(), 1)
            r = hit / max(F.sum(), 1)
            f1 = 2 * p * r / (p + r) if p + r > 0 else 0.0
            if f1 > best_f1 + 1e-12 or (abs(f1 - best_f1) <= 1e-12 and F.sum() < fsets[best_key].sum()):
                best_key, best_f1, prec[u], rec[u] = k, f1, p, r
        factor[u] = best_key
        if margin[u] >= specific_margin:
            kind[u] = "specific"
        elif d.sum() >= 2 and best_key and prec[u] >= generic_level and rec[u] >= generic_level:
            kind[u] = "generic"
    return UnitKinds(kind=kind.astype(str), factor=factor.astype(str), precision=prec, recall=rec,
                     margin=margin, top_class=labels[means.argmax(1)], n_driving=D.sum(1))


def kinds_table(uk: UnitKinds, **cols) -> pd.DataFrame:
    df = pd.DataFrame(dict(unit=np.arange(len(uk.kind)), kind=uk.kind,
                           factor=np.where(uk.kind == "generic", uk.factor, ""), best_factor=uk.factor,
                           precision=uk.precision, recall=uk.recall, margin=uk.margin,
                           top_class=uk.top_class, n_driving=uk.n_driving))
    for i, (k, v) in enumerate(cols.items()):
        df.insert(i, k, v)
    return df


def kind_fractions(units: pd.DataFrame, keys=("model", "network", "layer", "depth")) -> pd.DataFrame:
    """Fraction of each kind per (model, network, layer), with a 95% Wilson interval."""
    rows = []
    keys = [k for k in keys if k in units.columns]
    for key, g in units.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        n = len(g)
        for kind in KINDS:
            k = int((g.kind == kind).sum())
            lo, hi = wilson(k, n)
            rows.append(dict(zip(keys, key), kind=kind, units=n, count=k, fraction=k / n if n else np.nan,
                             lo=lo, hi=hi))
    return pd.DataFrame(rows)
