"""Do the visualizations tell the truth? Checks against the synthetic dataset's known causes.

The class units of a trained model are visualized and the optimised inputs are
compared with the factors that generated each class (``classes.csv`` of the
synthetic dataset: group, colour, direction, moving and still colour):

* **gate** - a run counts only if the optimised input reaches class probability
  >= ``min_prob`` among the classes of its group (softmax of the group's scores: a
  motion stream cannot tell MotionLeft from RedMovesLeft, which differ by colour, but
  it must be sure it is MotionLeft and not MotionRight; the same restriction as the
  within-group accuracy of the evaluate stage) and carries real signal (mean of the top-10% flow magnitudes >=
  ``min_flow`` px/frame; image standard deviation >= ``min_image_std``); otherwise
  it is *inconclusive*, never a pass;
* **direction** - the mean flow over the top-10% magnitude vectors points the
  class's way (sign of its projection on the class direction; size is not judged);
* **colour** - the hue of the mean colour shift from grey (of every pixel, or of the
  10% most saturated: ``colour_pixels``) is nearer the class's hue than any other
  class's;
* **colocation** - the moving colour sits where the flow is: the correlation between
  a moving-colour map and a motion map (flow magnitude, or flow along the class's
  direction), both smoothed at ``colocation_sigma`` px, is >= ``min_corr`` and
  exceeds the same correlation for the still colour by >= ``min_corr_gap``;
* **temporal** - the relative temporal variation of the optimised flow falls as the
  temporal weight rises, with the direction unchanged.

A check passes for a model when it passes on >= ``min_pass_rate`` of its runs
(classes x seeds x penalty settings). The functions below take plain arrays so
they are unit-tested on hand-built models; ``run_checks`` drives a trained model.
"""

from __future__ import annotations

import colorsys
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from scipy.ndimage import gaussian_filter

from ..errors import InputError
from ..readers import read_classes as read_class_table
from . import regularizers as R
from .objectives import class_log_prob, class_logit
from .params import InputSet, InputSpec
from .render import Preprocess, Weights, render_vis

CHECKS = ("direction", "colour", "colocation", "temporal")
OBJECTIVES = ("logit", "log_prob", "logit+log_prob")  # what a class-unit run maximises
COLOCATION_MOTIONS = ("magnitude", "direction")  # motion maps of the co-location check
COLOCATION_MAPS = ("contrast", "distance")  # colour maps of the co-location check
COLOUR_PIXELS = ("all", "saturated")  # pixels whose mean shift from grey the colour check reads
GROUPS = ("appearance", "motion", "spatiotemporal")

# ---- class factors ----------------------------------------------------------------


@dataclass
class ClassFactors:
    """The generating factors of one synthetic class (colours RGB in [0, 1])."""

    label: int
    name: str
    group: str
    colour: tuple[float, float, float] | None = None  # the colour that defines the class
    direction: tuple[float, float] | None = None  # unit vector, x right, y down
    moving_colour: tuple[float, float, float] | None = None
    still_colour: tuple[float, float, float] | None = None


_DIRECTIONS = {
    "right": (1.0, 0.0), "left": (-1.0, 0.0), "down": (0.0, 1.0), "up": (0.0, -1.0),
}


# motions without one direction of translation
_NO_DIRECTION = {"none", "still", "static", "random", "cw", "ccw", "in", "out"}


def _parse_colour(v, where: str) -> tuple[float, float, float] | None:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v == "":
        return None
    if isinstance(v, str):
        s = v.strip().lstrip("#")
        if len(s) == 6 and all(c in "0123456789abcdefABCDEF" for c in s):
            vals = [int(s[i : i + 2], 16) for i in (0, 2, 4)]
        else:
            try:
                vals = [float(t) for t in s.replace(";", " ").replace(",", " ").replace("(", " ").replace(")", " ").split()]
            except ValueError:
                raise InputError(f"{where}: colour {v!r} is not R G B or #rrggbb") from None
    else:
        vals = list(v)
    if len(vals) != 3:
        raise InputError(f"{where}: colour {v!r} needs 3 components")
    arr = np.asarray(vals, dtype=float)
    if arr.max() > 1.0:
        arr = arr / 255.0
    return tuple(float(c) for c in arr)


def _parse_direction(v, where: str) -> tuple[float, float] | None:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v == "":
        return None
    if isinstance(v, str):
        s = v.strip().lower()
        if s in _DIRECTIONS:
            return _DIRECTIONS[s]
        if s in _NO_DIRECTION:
            return None
        try:
            parts = [float(t) for t in s.replace(",", " ").replace(";", " ").split()]
        except ValueError:
            raise InputError(f"{where}: direction {v!r} is not a name, an angle or dx dy") from None
    elif isinstance(v, (int, float)):
        parts = [float(v)]
    else:
        parts = [float(t) for t in v]
    if len(parts) == 1:  # angle in degrees, 0 = right, 90 = down (image y axis)
        a = math.radians(parts[0])
        return (math.cos(a), math.sin(a))
    if len(parts) == 2:
        n = math.hypot(*parts)
        if n == 0:
            return None
        return (parts[0] / n, parts[1] / n)
    raise InputError(f"{where}: direction {v!r} is not a name, an angle or dx dy")


def read_classes(path: str | Path) -> list[ClassFactors]:
    """Read the synthetic dataset's ``classes.csv``.

    Columns used: ``label``, ``class_name``, ``group``, ``direction``
    (left/right/up/down, an angle in degrees or "dx dy"; other motions such as
    rotate/zoom/random have none), ``moving_rgb`` and ``still_rgb`` ("R G B" 0..255).
    The colour of an appearance class is its ``moving_rgb`` (or ``colour_rgb``/``rgb``).
    """
    path = Path(path)
    df = read_class_table(path)
    name_col = "class_name"
    out = []
    for i, row in df.iterrows():
        where = f"{path} row {i + 2}"
        r = {k: (None if v == "" else v) for k, v in row.to_dict().items()}
        group = str(r["group"])
        moving = _parse_colour(r.get("moving_rgb"), where)
        still = _parse_colour(r.get("still_rgb"), where)
        colour = _parse_colour(r.get("colour_rgb", r.get("rgb")), where) or moving
        out.append(
            ClassFactors(
                label=int(r["label"]),
                name=str(r[name_col]),
                group=group,
                colour=colour if group == "appearance" else None,
                direction=_parse_direction(r.get("direction"), where),
                moving_colour=moving if group == "spatiotemporal" else None,
                still_colour=still if group == "spatiotemporal" else None,
            )
        )
    return out


# ---- measures of one optimised input ------------------------------------------------


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


def nearest_colour(image: np.ndarray, colours: dict[int, tuple[float, float, float]],
                   pixels: str = "all") -> int | None:
    """The label whose colour's hue is nearest the image's colour-shift hue."""
    return _nearest_hue(colour_shift_hue(image, pixels), colours)


def _nearest_hue(h: float | None, colours: dict[int, tuple[float, float, float]]) -> int | None:
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


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a = a.ravel() - a.mean()
    b = b.ravel() - b.mean()
    den = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else 0.0


def colocation(image: np.ndarray, flow: np.ndarray, moving: Sequence[float], still: Sequence[float],
               method: str = "contrast", direction: Sequence[float] | None = None,
               motion: str = "magnitude", sigma: float = 0.0) -> tuple[float, float]:
    """(corr(moving-colour map, motion map), corr(still-colour map, motion map)).

    ``sigma`` (px): both maps are smoothed by a Gaussian of this standard deviation
    before they are correlated (circular borders, as the jitter that made the inputs),
    so that co-location is judged at a scale below the objects' size rather than pixel
    by pixel: an optimised input's pixel-level texture (the optimiser's high
    frequencies, in colour and in flow) is noise to this question. 0 keeps pixels.

    Motion maps (means over the L fields):

    * ``magnitude``: the per-pixel flow magnitude;
    * ``direction``: the flow projected on the class's ``direction``, the translation
      that defines the class. In-place spin (the still object of the synthetic
      spatiotemporal classes spins) has flow of every direction around the disc and
      adds little to it, while it does add to the magnitude.

    Colour maps:

    * ``contrast`` (default): the projection of each pixel's colour on
      ``moving - still`` (for red and blue, about R - B); the still-colour map is its
      negative, so the two correlations are opposite. It rewards the moving colour where
      the motion is *and* the still colour where there is none, whichever of the two
      a unit encodes;
    * ``distance``: minus the distance of each pixel to the colour, for each colour.
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
    mag = smooth(mag)
    mv, st = np.asarray(moving, dtype=float), np.asarray(still, dtype=float)
    if method == "contrast":
        c = _corr(smooth(img @ (mv - st)), mag)
        return c, -c
    if method != "distance":
        raise InputError(f"colocation method {method!r} is not one of {', '.join(COLOCATION_MAPS)}")
    m = -np.linalg.norm(img - mv, axis=-1)
    s = -np.linalg.norm(img - st, axis=-1)
    return _corr(smooth(m), mag), _corr(smooth(s), mag)


@dataclass
class Thresholds:
    min_prob: float = 0.9
    min_flow: float = 0.3  # px/frame, mean of the top-10% magnitudes
    min_image_std: float = 0.02
    min_corr: float = 0.2
    min_corr_gap: float = 0.2
    min_pass_rate: float = 0.8
    colocation_map: str = "contrast"
    colocation_motion: str = "magnitude"
    colocation_sigma: float = 2.0  # px: Gaussian smoothing of both co-location maps (0: pixel by pixel)
    colour_pixels: str = "saturated"  # all | saturated (the 10% of highest chroma)


# ---- judging one run -------------------------------------------------------------------


@dataclass
class RunResult:
    """One run of one check: ``status`` is 'pass', 'fail' or 'inconclusive'."""

    check: str
    label: int
    seed: int
    setting: int
    status: str
    detail: dict = field(default_factory=dict)
    inputs: dict | None = None  # the optimised inputs (rgb (H, W, 3), flow (L, H, W, 2)) when kept


# which inputs must carry signal for each check
NEEDS = {"colour": ("rgb",), "direction": ("flow",), "colocation": ("rgb", "flow"), "temporal": ("flow",)}


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
    _, v = top_flow(flow)
    proj = float(np.dot(v, np.asarray(direction, dtype=float)))
    return proj > 0, {"mean_dx": float(v[0]), "mean_dy": float(v[1]), "projection": proj}


def judge_colour(rgb: np.ndarray, label: int, colours: dict[int, tuple[float, float, float]],
                 pixels: str = "all") -> tuple[bool, dict]:
    h = colour_shift_hue(rgb, pixels)
    best = _nearest_hue(h, colours)
    return best == label, {"hue": float("nan") if h is None else h, "nearest": -1 if best is None else best}


def judge_colocation(rgb, flow, moving, still, th: Thresholds, direction=None) -> tuple[bool, dict]:
    cm, cs = colocation(rgb, flow, moving, still, th.colocation_map, direction, th.colocation_motion,
                        th.colocation_sigma)
    ok = cm >= th.min_corr and cm - cs >= th.min_corr_gap
    return bool(ok), {"corr_moving": cm, "corr_still": cs}


def judge_temporal(flows: Sequence[np.ndarray], direction: Sequence[float] | None,
                   tolerance: float = 0.02) -> tuple[bool, dict]:
    """The temporal penalty works: with ``flows`` ordered by rising temporal weight, the
    relative temporal variation never rises by more than ``tolerance``, ends lower than it
    starts, and the direction of motion is the same at every weight."""
    rel = [R.relative_temporal_variation(f) for f in flows]
    falls = all(b <= a + tolerance for a, b in zip(rel, rel[1:])) and rel[-1] < rel[0]
    vecs = [top_flow(f)[1] for f in flows]
    ref = np.asarray(direction, dtype=float) if direction is not None else vecs[-1]
    same = all(float(np.dot(v, ref)) > 0 for v in vecs)
    return bool(falls and same), {"rel_temporal": rel}


# ---- driving a model -------------------------------------------------------------------


@dataclass
class VerifySettings:
    seeds: Sequence[int] = (0, 1, 2, 3, 4)
    penalties: Sequence[dict] = ({"l2_rgb": 1.0, "tv_rgb": 1.0, "l2_flow": 1.0, "tv_flow": 1.0, "temporal": 1.0},
                                 {"l2_rgb": 10.0, "tv_rgb": 10.0, "l2_flow": 10.0, "tv_flow": 10.0, "temporal": 10.0})
    temporal_weights: Sequence[float] = (0.0, 1.0, 10.0, 100.0)
    steps: int = 150
    lr: float = 0.05
    jitter: int = 3
    size: tuple[int, int] = (64, 64)
    flow_frames: int = 10
    parametrization: str = "pixel"
    init_sd: float = 0.25
    objective: str = "logit"  # logit (the class score, as the papers) | log_prob (log softmax) | logit+log_prob
    log_prob_weight: float = 10.0  # weight of the log-softmax term of log_prob and logit+log_prob
    thresholds: Thresholds = field(default_factory=Thresholds)


def applicable_checks(modalities: Sequence[str], group: str, fused: bool) -> list[str]:
    """Which checks a class unit of ``group`` gets on a model taking ``modalities``.

    colour: appearance classes, models that see RGB; direction: motion classes, models
    that see flow, and spatiotemporal classes on fused models (a motion stream alone
    cannot reach a confident spatiotemporal class, it cannot see the colour);
    colocation: spatiotemporal classes on fused models.
    """
    has_rgb, has_flow = "rgb" in modalities, "flow" in modalities
    out = []
    if group == "appearance" and has_rgb:
        out.append("colour")
    if group == "motion" and has_flow:
        out.append("direction")
    if group == "spatiotemporal" and fused and has_rgb and has_flow:
        out += ["direction", "colocation"]
    return out


def _has_factors(c: ClassFactors, check: str) -> bool:
    if check == "colour":
        return c.colour is not None
    if check in ("direction", "temporal"):
        return c.direction is not None
    if check == "colocation":
        return c.moving_colour is not None and c.still_colour is not None
    return False


@dataclass
class Job:
    """One visualization of a class unit: its class, seed and penalty setting."""

    group: str
    cls: ClassFactors
    seed: int
    setting: int
    weights: dict
    checks: list[str]


def plan_runs(modalities: Sequence[str], classes: Sequence[ClassFactors], s: VerifySettings, fused: bool,
              checks: Sequence[str] = CHECKS) -> list[Job]:
    """Seeds x penalty settings runs for each class group, cycling over the group's classes."""
    jobs = []
    for group in GROUPS:
        todo = [c for c in applicable_checks(modalities, group, fused) if c in checks]
        eligible = [c for c in classes if c.group == group and any(_has_factors(c, k) for k in todo)]
        if not eligible:
            continue
        i = 0
        for si, pen in enumerate(s.penalties):
            for seed in s.seeds:
                c = eligible[i % len(eligible)]
                i += 1
                jobs.append(Job(group, c, int(seed), si, dict(pen), [k for k in todo if _has_factors(c, k)]))
    return jobs


def _spec_for(modalities: Sequence[str], flow_frames: int) -> InputSpec:
    kinds = tuple(modalities)
    chans = tuple(3 if m == "rgb" else 2 * int(flow_frames) for m in kinds)
    return InputSpec(kinds, kinds, chans)


def render_classes(
    model: torch.nn.Module,
    modalities: Sequence[str],
    labels: Sequence[int],
    seeds: Sequence[int],
    weights: Sequence[dict],
    s: VerifySettings,
    preprocess: Preprocess,
    jitter_seed: int = 0,
):
    """Visualize class units in one batch: sample i maximises the logit of ``labels[i]``
    from seed ``seeds[i]`` with penalty weights ``weights[i]``."""
    spec = _spec_for(modalities, s.flow_frames)
    inputs = InputSet(spec, s.size, list(seeds), s.parametrization, sd=s.init_sd)
    keys = ("l2_rgb", "tv_rgb", "l2_flow", "tv_flow", "temporal")
    w = Weights(**{k: [float(wi.get(k, 0.0)) for wi in weights] for k in keys})
    return render_vis(model, class_objective(s.objective, list(labels), s.log_prob_weight), inputs, w, s.steps,
                      s.lr, s.jitter, jitter_seed, preprocess)


def class_objective(name: str, labels: list[int], log_prob_weight: float = 10.0):
    """The objective of a verification run (one of ``OBJECTIVES``) for each sample's class.

    ``logit+log_prob`` is the class score plus ``log_prob_weight`` times its log softmax.
    The log softmax's gradient vanishes once the class is certain, so a large weight
    acts only while the input is still nearer another class (the score of MotionRight
    alone grows into MotionRightFast: faster is "more right"); then the score drives
    the signal, as in the papers."""
    if name == "logit":
        return class_logit(labels)
    if name == "log_prob":
        return float(log_prob_weight) * class_log_prob(labels)
    if name == "logit+log_prob":
        return class_logit(labels) + float(log_prob_weight) * class_log_prob(labels)
    raise InputError(f"verification objective {name!r} is not one of {', '.join(OBJECTIVES)}")


def group_probability(r, i: int, c: ClassFactors, classes: Sequence[ClassFactors]) -> float | None:
    """Probability of class ``c`` for rendered sample ``i``, softmax over the classes of ``c``'s group."""
    if r.logits is None:
        return None
    members = [k.label for k in classes if k.group == c.group] or [c.label]
    z = np.asarray(r.logits[i], dtype=np.float64)[members]
    p = np.exp(z - z.max())
    return float(p[members.index(c.label)] / p.sum())


def _judge(check: str, c: ClassFactors, rgb, flow, colours, th: Thresholds) -> tuple[bool, dict]:
    if check == "colour":
        return judge_colour(rgb, c.label, colours, th.colour_pixels)
    if check == "direction":
        return judge_direction(flow, c.direction)
    return judge_colocation(rgb, flow, c.moving_colour, c.still_colour, th, c.direction)


def run_checks(
    model: torch.nn.Module,
    modalities: Sequence[str],
    classes: Sequence[ClassFactors],
    s: VerifySettings,
    fused: bool,
    preprocess: Preprocess | None = None,
    checks: Sequence[str] = CHECKS,
    keep_inputs: bool = False,
) -> list[RunResult]:
    """Run every applicable check on ``model``'s class units; one RunResult per (run, check).

    ``keep_inputs`` keeps each run's optimised inputs on its results (for figures)."""
    pre = preprocess or Preprocess()
    th = s.thresholds
    colours = {c.label: c.colour for c in classes if c.colour is not None}
    jobs = plan_runs(modalities, classes, s, fused, checks)
    results: list[RunResult] = []
    if jobs:
        r = render_classes(model, modalities, [j.cls.label for j in jobs], [j.seed for j in jobs],
                           [j.weights for j in jobs], s, pre)
        for i, j in enumerate(jobs):
            rgb = r.inputs["rgb"][i] if "rgb" in r.inputs else None
            flow = r.inputs["flow"][i] if "flow" in r.inputs else None
            prob = group_probability(r, i, j.cls, classes)
            for check in j.checks:
                ok_gate, gd = gate(prob, rgb, flow, th, NEEDS[check])
                ok, d = _judge(check, j.cls, rgb, flow, colours, th)
                status = "inconclusive" if not ok_gate else ("pass" if ok else "fail")
                kept = {k: v for k, v in (("rgb", rgb), ("flow", flow)) if v is not None} if keep_inputs else None
                results.append(RunResult(check, j.cls.label, j.seed, j.setting, status,
                                         {**gd, **d, "activation": float(r.objective[i])}, kept))
    if "temporal" in checks and "flow" in modalities:
        results += temporal_runs(model, modalities, classes, s, pre, fused)
    return results


def temporal_runs(model, modalities, classes, s: VerifySettings, pre: Preprocess, fused: bool) -> list[RunResult]:
    """One run = one (seed, penalty setting) rendered at every temporal weight, for a
    motion class (cycling over the classes that have a direction)."""
    movers = [c for c in classes if c.direction is not None and "direction" in applicable_checks(modalities, c.group, fused)]
    if not movers:
        return []
    labels, seeds, weights, keys = [], [], [], []
    i = 0
    for si, pen in enumerate(s.penalties):
        for seed in s.seeds:
            c = movers[i % len(movers)]
            i += 1
            for tw in s.temporal_weights:
                labels.append(c.label)
                seeds.append(seed)
                weights.append({**pen, "temporal": float(tw)})
                keys.append((c, si, seed))
    r = render_classes(model, modalities, labels, seeds, weights, s, pre)
    out = []
    n = len(s.temporal_weights)
    for j in range(0, len(labels), n):
        c, si, seed = keys[j]
        flows = [r.inputs["flow"][j + k] for k in range(n)]
        rgbs = [r.inputs["rgb"][j + k] if "rgb" in r.inputs else None for k in range(n)]
        probs = [group_probability(r, j + k, c, classes) for k in range(n)]
        gates = [gate(probs[k], rgbs[k], flows[k], s.thresholds, NEEDS["temporal"])[0] for k in range(n)]
        ok, d = judge_temporal(flows, c.direction)
        d["magnitude"] = [R.flow_magnitude(f) for f in flows]
        d["temporal_weights"] = list(s.temporal_weights)
        status = "inconclusive" if not all(gates) else ("pass" if ok else "fail")
        out.append(RunResult("temporal", c.label, int(seed), si, status, d))
    return out


def runs_table(results: Sequence[RunResult], model: str) -> pd.DataFrame:
    """Every run of every check, one row each (details flattened)."""
    rows = []
    for r in results:
        d = {k: (json.dumps(v) if isinstance(v, (list, tuple)) else v) for k, v in r.detail.items()}
        rows.append(dict(model=model, check=r.check, label=r.label, seed=r.seed, setting=r.setting,
                         status=r.status, **d))
    return pd.DataFrame(rows)


def summarise(results: Sequence[RunResult], model: str, min_pass_rate: float = 0.8,
              expected: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per check: runs, passes, inconclusive, pass_rate, pass (+ expected, as_expected)."""
    expected = expected or {}
    rows = []
    for check in CHECKS:
        rs = [r for r in results if r.check == check]
        if not rs:
            continue
        passes = sum(r.status == "pass" for r in rs)
        inc = sum(r.status == "inconclusive" for r in rs)
        rate = passes / len(rs)
        ok = rate >= min_pass_rate
        exp = expected.get(check, "pass")
        rows.append(dict(model=model, check=check, runs=len(rs), passes=passes, inconclusive=inc,
                         pass_rate=round(rate, 4), **{"pass": ok}, expected=exp,
                         as_expected=(ok == (exp == "pass"))))
    return pd.DataFrame(rows, columns=["model", "check", "runs", "passes", "inconclusive", "pass_rate", "pass",
                                       "expected", "as_expected"])
