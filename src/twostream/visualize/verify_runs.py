"""Planning and driving the verification runs of a model's class units.

``plan_runs`` lists the runs (class x seed x penalty setting, cycling over each class
group's classes), ``run_checks`` renders them in one batch (``render.render_vis``) and
judges each optimised input (``judges.py``) against its class's factors (``causes.py``);
``verdicts.summarise`` turns the results into rows of ``verification.csv``.

What a model is expected to show (``expected_outcomes``): a trained network shows the
direction of its motion classes and the colour of its appearance classes; a fused
network binds the moving colour to the motion (co-location) only when the streams meet
before spatial pooling: fusion at ``pool`` and late fusion are expected to fail it. The
untrained network (``untrained_model``: the same architecture from a fixed random init)
is expected to fail every check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from ..errors import InputError
from ..models import build_model
from .causes import GROUPS, ClassFactors
from .judges import NEEDS, Thresholds, gate, judge_colocation, judge_colour, judge_direction
from .objectives import class_log_prob, class_logit
from .params import InputSet, InputSpec
from .render import Preprocess, Weights, render_vis

CHECKS = ("direction", "colour", "colocation")
OBJECTIVES = ("logit", "log_prob", "logit+log_prob")  # what a class-unit run maximises
UNTRAINED_SEED = 20240  # the fixed random init of the untrained control


@dataclass
class VerifySettings:
    seeds: Sequence[int] = (0, 1, 2, 3, 4)
    penalties: Sequence[dict] = ({"l2_rgb": 1.0, "tv_rgb": 1.0, "l2_flow": 1.0, "tv_flow": 1.0, "temporal": 1.0},
                                 {"l2_rgb": 10.0, "tv_rgb": 10.0, "l2_flow": 10.0, "tv_flow": 10.0, "temporal": 10.0})
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


# ---- which runs ------------------------------------------------------------------------


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
    if check == "direction":
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


# ---- what a model should show ------------------------------------------------------------


def expected_outcomes(model: torch.nn.Module, untrained: bool = False) -> dict[str, str]:
    """check -> 'pass' | 'fail' (see the module docstring)."""
    if untrained:
        return {c: "fail" for c in CHECKS}
    kind = getattr(model, "kind", None)
    stages = tuple(getattr(model, "stages", ()) or ())
    binds = kind in ("spatial", "pool3d", "cross") and "pool" not in stages
    return {"direction": "pass", "colour": "pass", "colocation": "pass" if binds else "fail"}


def untrained_model(spec: dict, seed: int = UNTRAINED_SEED) -> torch.nn.Module:
    """The network of ``spec`` from a fixed random init (no weights loaded), in eval mode:
    the same architecture as the trained cell, without what training put in it."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = build_model(spec)
    return model.eval()


# ---- driving a model ----------------------------------------------------------------------


def _spec_for(modalities: Sequence[str], flow_frames: int) -> InputSpec:
    kinds = tuple(modalities)
    chans = tuple(3 if m == "rgb" else 2 * int(flow_frames) for m in kinds)
    return InputSpec(kinds, kinds, chans)


def class_objective(name: str, labels: list[int], log_prob_weight: float = 10.0):
    """The objective of a verification run (one of ``OBJECTIVES``) for each sample's class.

    ``logit+log_prob`` is the class score plus ``log_prob_weight`` times its log softmax.
    The log softmax's gradient vanishes once the class is certain, so a large weight
    acts only while the input is still nearer another class (the score of MotionRight
    alone grows into MotionRightFast: faster is "more right"); then the score drives
    the signal, as in the papers. A late-fusion network's scores are its fused
    log-probabilities, so its class unit is the fused score."""
    if name == "logit":
        return class_logit(labels)
    if name == "log_prob":
        return float(log_prob_weight) * class_log_prob(labels)
    if name == "logit+log_prob":
        return class_logit(labels) + float(log_prob_weight) * class_log_prob(labels)
    raise InputError(f"verification objective {name!r} is not one of {', '.join(OBJECTIVES)}")


def render_classes(model: torch.nn.Module, modalities: Sequence[str], labels: Sequence[int], seeds: Sequence[int],
                   weights: Sequence[dict], s: VerifySettings, preprocess: Preprocess, jitter_seed: int = 0):
    """Visualize class units in one batch: sample i maximises the objective of ``labels[i]``
    from seed ``seeds[i]`` with penalty weights ``weights[i]``."""
    spec = _spec_for(modalities, s.flow_frames)
    inputs = InputSet(spec, s.size, list(seeds), s.parametrization, sd=s.init_sd)
    keys = ("l2_rgb", "tv_rgb", "l2_flow", "tv_flow", "temporal")
    w = Weights(**{k: [float(wi.get(k, 0.0)) for wi in weights] for k in keys})
    return render_vis(model, class_objective(s.objective, list(labels), s.log_prob_weight), inputs, w, s.steps,
                      s.lr, s.jitter, jitter_seed, preprocess)


def group_probability(r, i: int, c: ClassFactors, classes: Sequence[ClassFactors]) -> float | None:
    """Probability of class ``c`` for rendered sample ``i``, softmax over the classes of ``c``'s group."""
    if r.logits is None:
        return None
    members = [k.label for k in classes if k.group == c.group] or [c.label]
    z = np.asarray(r.logits[i], dtype=np.float64)[members]
    p = np.exp(z - z.max())
    return float(p[members.index(c.label)] / p.sum())


def judge(check: str, c: ClassFactors, rgb, flow, colours, th: Thresholds) -> tuple[bool, dict]:
    """The judge of ``check`` on one run's optimised inputs."""
    if check == "colour":
        return judge_colour(rgb, c.label, colours, th.colour_pixels)
    if check == "direction":
        return judge_direction(flow, c.direction)
    if check == "colocation":
        return judge_colocation(rgb, flow, c.moving_colour, c.still_colour, th, c.direction)
    raise InputError(f"unknown check {check!r} (known: {', '.join(CHECKS)})")


def run_checks(model: torch.nn.Module, modalities: Sequence[str], classes: Sequence[ClassFactors], s: VerifySettings,
               fused: bool, preprocess: Preprocess | None = None, checks: Sequence[str] = CHECKS,
               keep_inputs: bool = False) -> list[RunResult]:
    """Run every applicable check on ``model``'s class units; one RunResult per (run, check).

    ``keep_inputs`` keeps each run's optimised inputs on its results (for figures)."""
    pre = preprocess or Preprocess()
    th = s.thresholds
    colours = {c.label: c.colour for c in classes if c.colour is not None}
    jobs = plan_runs(modalities, classes, s, fused, checks)
    results: list[RunResult] = []
    if not jobs:
        return results
    r = render_classes(model, modalities, [j.cls.label for j in jobs], [j.seed for j in jobs],
                       [j.weights for j in jobs], s, pre)
    for i, j in enumerate(jobs):
        rgb = r.inputs["rgb"][i] if "rgb" in r.inputs else None
        flow = r.inputs["flow"][i] if "flow" in r.inputs else None
        prob = group_probability(r, i, j.cls, classes)
        for check in j.checks:
            ok_gate, gd = gate(prob, rgb, flow, th, NEEDS[check])
            ok, d = judge(check, j.cls, rgb, flow, colours, th)
            status = "inconclusive" if not ok_gate else ("pass" if ok else "fail")
            kept = {k: v for k, v in (("rgb", rgb), ("flow", flow)) if v is not None} if keep_inputs else None
            results.append(RunResult(check, j.cls.label, j.seed, j.setting, status,
                                     {**gd, **d, "activation": float(r.objective[i])}, kept))
    return results


def runs_table(results: Sequence[RunResult], model: str) -> pd.DataFrame:
    """Every run of every check, one row each (details flattened)."""
    rows = []
    for r in results:
        d = {k: (json.dumps(v) if isinstance(v, (list, tuple)) else v) for k, v in r.detail.items()}
        rows.append(dict(model=model, check=r.check, label=r.label, seed=r.seed, setting=r.setting,
                         status=r.status, **d))
    return pd.DataFrame(rows)
