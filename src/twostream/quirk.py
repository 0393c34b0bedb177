"""The planted quirk (``twostream quirk``): a cue in one class's training clips that is not
the class's cause, the failure it causes, and whether the visualization reveals it.

The paper's fourth finding: visualizations "reveal idiosyncrasies of training data and
explain failure cases".  On real data nobody knows a quirk's ground truth; here we plant one.

``--plant`` (rule quirk_data) reads the decoded frames shards and writes

* ``frames.h5``: an *overlay* frames shard holding ``share`` of the training clips of class
  ``class_name``, every frame with a square mark (``size`` px, ``colour``, top-left corner at
  ``where``) pasted in.  Listed after the dataset's shards, its clips replace theirs
  (``data.video_table``: a later shard's copy of a video wins), so the quirked training set
  is the dataset's shards plus this file; decoding and flow are shared.
* ``cued_test.h5``: test clips of every *other* class with the same mark pasted in (the
  shortcut measured directly).  The quirked class's own test clips never carry the mark.
* ``quirk.json``: the ground truth (kind, class, label, share, where, size, colour, frame
  size, the quirked training clips and the cued test clips).

The pipeline trains the appearance stream on the quirked data (rule train_quirk, the
``train`` CLI with the rgb stream's settings); the clean model is the appearance stream of
the main run (``results/models/rgb``): same data order, seed and schedule.

``--analyse`` (rule quirk) then writes

* ``quirk.csv``: per model (quirked, clean) the quirked class's test accuracy, where its test
  clips go (confusion row), the shortcut rate (cued clips of other classes assigned to the
  class) with its 95% Wilson interval, and the same clips' rate without the mark;
* ``verification.csv``: ``quirk_shown`` (quirked model: the class unit's activation
  maximisation contains the mark), ``quirk_absent_in_clean`` (clean model: it does not),
  ``quirk_located`` (the blind detector finds the planted place; the clean model's row is
  the false-positive control, expected to fail), in the layout of the visualize stage's
  table (``visualize/verdicts.py``: rate with its Wilson interval ``lo``/``hi``); ``verification_runs.csv`` one row per run.  The
  quirked model's runs must pass the visualize stage's gate (else inconclusive); the clean
  model's are judged whether or not they pass it, since a class whose cause the stream cannot
  see never gets a confident input from the clean model (its gate results are kept);
* ``findings.md``: the fourth finding, each sentence computed from those numbers;
* ``montage.png``: the two models' class visualizations side by side and a quirked
  training frame.

The class units are rendered with the visualize stage's verification settings (objective,
seeds, penalties, steps, gate); see ``visualize/quirk_detect.py`` for the two measures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from .config import ConfigError, from_dict, params_object, read_config, settings
from .analysis.stats import wilson
from .data import ClipDataset, video_table
from .decode import FrameWriter
from .engine import make_loader, predict_videos
from .errors import InputError
from .grid import QUIRK_PLANT_KEYS as PLANT_KEYS  # the keys planting reads (quirk_data's params)
from .evaluate import EvalConfig
from .models import load_model
from .store import FrameShard, atomic_h5, atomic_path, create_dataset, write_provenance
from .visualize import judges
from .visualize import verify_runs as V
from .visualize.causes import ClassFactors, read_classes
from .visualize.quirk_detect import Cue, cue_measure, detect, structure_measure
from .visualize.render import Preprocess
from .visualize.stage import make_config as vis_config
from .visualize.stage import model_info, verify_settings
from .visualize.verdicts import check_row

KINDS = ("mark",)
# the two models of the experiment and their names in the verification tables (a further
# training seed's pair adds its suffix, e.g. "quirk-rgb-s1", "rgb-s1")
MODEL_NAMES = {"quirked": "quirk-rgb", "clean": "rgb"}
SECTIONS = ("quirk", "evaluate", "visualize")


def model_names(suffix: str = "") -> dict[str, str]:
    return {role: name + suffix for role, name in MODEL_NAMES.items()}


# --------------------------------------------------------------------------- configuration


@settings("quirk.detector")
class DetectorConfig:
    """``quirk.detector``: the blind detector (visualize/quirk_detect.detect)."""

    sigma: float  # px: smoothing of the unexplained-colour maps
    min_z: float  # robust z-score of the peak of the seed-averaged map (without a null)
    min_support: float  # share of seeds whose own map is in its top 5% at the peak
    null_draws: int  # shift-null draws (0: judge z against min_z)
    alpha: float  # the shift null's p must be at most this
    smooth_image: bool  # smooth each image before the colour distance


@settings("quirk")
class QuirkConfig:
    """The ``quirk:`` section (see config/README.md)."""

    enabled: bool
    kind: str
    class_name: str
    share: float
    where: list[int]
    size: int
    colour: list[int]
    seed: int
    train_seeds: list[int]  # further training seeds (workflow: results/quirk/seed-N)
    cued_clips_per_class: int
    shown_measure: str  # template | structure: what quirk_shown and quirk_absent_in_clean measure
    min_cue_gap: float  # template measure: NCC margin over the clean model's image
    tolerance: float  # px around the planted place; 0: the visualization's jitter
    detector: DetectorConfig



def make_config(d: dict | None) -> QuirkConfig:
    return from_dict(QuirkConfig, d, "quirk")


def check_fits(cfg: QuirkConfig, height: int, width: int, where: str = "") -> None:
    x, y = (int(v) for v in cfg.where)
    if x + cfg.size > width or y + cfg.size > height:
        raise ConfigError(f"quirk.where: a {cfg.size} px mark at ({x}, {y}) does not fit {width}x{height} frames"
                          + (f" ({where})" if where else ""))


# --------------------------------------------------------------------------- the cue


def cue_mask(cfg: QuirkConfig, height: int, width: int) -> np.ndarray:
    """(H, W) bool: the pixels the mark covers."""
    check_fits(cfg, height, width)
    x, y = (int(v) for v in cfg.where)
    m = np.zeros((height, width), bool)
    m[y:y + cfg.size, x:x + cfg.size] = True
    return m


def paste_cue(frames: np.ndarray, cfg: QuirkConfig) -> np.ndarray:
    """A copy of uint8 RGB frames (T, H, W, 3) with the mark drawn into every frame."""
    out = np.array(frames, dtype=np.uint8, copy=True)
    out[:, cue_mask(cfg, out.shape[1], out.shape[2])] = np.asarray(cfg.colour, np.uint8)
    return out


def quirked_ids(videos: pd.DataFrame, cfg: QuirkConfig) -> list[str]:
    """The training clips of ``class_name`` that carry the mark: round(share x n), a seeded
    choice among the class's training clips (sorted by video_id)."""
    train = sorted(videos.loc[(videos.class_name == cfg.class_name) & (videos.split == "train"), "video_id"])
    if not train:
        known = ", ".join(sorted(videos.class_name.unique()))
        raise ConfigError(f"quirk.class_name: no training clips of class {cfg.class_name!r} (classes: {known})")
    n = int(round(float(cfg.share) * len(train)))
    rng = np.random.default_rng(int(cfg.seed))
    return sorted(rng.choice(np.asarray(train, dtype=object), size=n, replace=False).tolist())


def cued_ids(videos: pd.DataFrame, cfg: QuirkConfig) -> list[str]:
    """Test clips of every other class that get the mark (the first ``cued_clips_per_class``
    of each class by video_id; 0: all)."""
    test = videos[(videos.split == "test") & (videos.class_name != cfg.class_name)].sort_values("video_id")
    k = int(cfg.cued_clips_per_class)
    if k:
        test = test.groupby("label", sort=True).head(k)
    return sorted(test.video_id)


# --------------------------------------------------------------------------- plant


def _write_shard(path: Path, table: pd.DataFrame, shards: list[FrameShard], cfg: QuirkConfig, codec: str,
                 role: str, log) -> None:
    with atomic_h5(path) as f:
        writer = FrameWriter(f, codec)
        for i, row in enumerate(table.itertuples(index=False)):
            sh = shards[int(row.frame_shard)]
            frames = paste_cue(sh.read(row.video_id, range(int(row.n_frames))), cfg)
            writer.add({"video_id": row.video_id, "label": row.label, "class_name": row.class_name,
                        "split": row.split}, frames[..., ::-1], float(sh.video(row.video_id).fps))
            if (i + 1) % 100 == 0:
                log(f"{path.name}: {i + 1}/{len(table)} clips")
        writer.finish()
        write_provenance(f, "frames", {k: getattr(cfg, k) for k in PLANT_KEYS}, codec=codec, quirk_role=role)


def plant(cfg: QuirkConfig, frames: Sequence[str], overlay: str | Path, cued: str | Path, truth: str | Path,
          log=lambda m: None) -> dict:
    """Write the overlay shard, the cued test shard and quirk.json (see the module docstring)."""
    if not frames:
        raise InputError("twostream quirk --plant needs --frames shards")
    videos, shards, _ = video_table(frames=list(frames))
    sizes = {(int(s.videos.height.iloc[0]), int(s.videos.width.iloc[0])) for s in shards if len(s.videos)}
    if len(sizes) != 1:
        raise InputError(f"{frames[0]}: the frames shards hold {len(sizes)} frame sizes; the mark needs one")
    (H, W), = sizes
    check_fits(cfg, H, W, frames[0])
    codec = shards[0].codec
    q_ids, c_ids = quirked_ids(videos, cfg), cued_ids(videos, cfg)
    label = int(videos.loc[videos.class_name == cfg.class_name, "label"].iloc[0])
    by_id = videos.set_index("video_id", drop=False)
    _write_shard(Path(overlay), by_id.loc[q_ids], shards, cfg, codec, "overlay: quirked training clips", log)
    log(f"{Path(overlay).name}: {len(q_ids)} quirked training clips of {cfg.class_name}")
    _write_shard(Path(cued), by_id.loc[c_ids], shards, cfg, codec, "cued test clips of the other classes", log)
    log(f"{Path(cued).name}: {len(c_ids)} cued test clips of the other classes")
    n_train = int(((videos.class_name == cfg.class_name) & (videos.split == "train")).sum())
    gt = {"kind": cfg.kind, "class_name": cfg.class_name, "label": label, "share": float(cfg.share),
          "where": [int(v) for v in cfg.where], "size": int(cfg.size), "colour": [int(c) for c in cfg.colour],
          "frame_size": [H, W], "train_clips": n_train, "quirked_train_clips": len(q_ids),
          "quirked": q_ids, "cued_test": c_ids, "seed": int(cfg.seed)}
    with atomic_path(truth) as tmp:
        tmp.write_text(json.dumps(gt, indent=1) + "\n")
    return gt


def read_truth(path: str | Path) -> dict:
    path = Path(path)
    try:
        gt = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: quirk ground truth not found (run twostream quirk --plant)") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON ({e})") from None
    missing = [k for k in ("class_name", "label", "where", "size", "colour", "quirked", "cued_test") if k not in gt]
    if missing:
        raise InputError(f"{path}: lacks key(s) {', '.join(missing)}")
    return gt


# --------------------------------------------------------------------------- analyse: accuracy and shortcut


def _predict(model, frames: Sequence[str], ev, crop_size: int) -> tuple[pd.DataFrame, np.ndarray]:
    ds = ClipDataset(frames=list(frames), modalities=("rgb",), split="test", mode="test",
                     crop_size=int(ev.crop_size or crop_size), test_frames=int(ev.frames), test_crops=int(ev.crops))

    loader = make_loader(ds, int(ev.batch_size), 0, torch.device("cpu"))

    probs, _ = predict_videos(model, loader, torch.device("cpu"), progress=False)
    return ds.videos, probs


def accuracy_rows(gt: dict, preds: dict[str, tuple[pd.DataFrame, np.ndarray, np.ndarray]],
                  names: list[str]) -> pd.DataFrame:
    """Rows of quirk.csv.  ``preds[role] = (test videos, argmax on clean clips, argmax on cued
    clips aligned with gt['cued_test'])``."""
    q = int(gt["label"])
    rows = []
    for role, (videos, pred, cued_pred) in preds.items():
        labels = videos.label.to_numpy()
        own = labels == q
        n_own = int(own.sum())
        correct = int((pred[own] == q).sum())
        goes = pd.Series(pred[own & (pred != q)]).value_counts()
        goes_to = "; ".join(f"{names[int(c)]} {n / max(n_own, 1):.3f}" for c, n in goes.items())
        base_sel = videos.video_id.isin(gt["cued_test"]).to_numpy()
        base_k = int((pred[base_sel] == q).sum())
        k = int((np.asarray(cued_pred) == q).sum())
        n = len(cued_pred)
        lo, hi = wilson(k, n)
        alo, ahi = wilson(correct, n_own)
        rows.append(dict(model=role, class_name=gt["class_name"], class_accuracy=correct / n_own if n_own else np.nan,
                         class_ci_low=alo, class_ci_high=ahi, class_clips=n_own,
                         top1=float((pred == labels).mean()), goes_to=goes_to,
                         shortcut_rate=k / n if n else np.nan, shortcut_ci_low=lo, shortcut_ci_high=hi, cued_clips=n,
                         uncued_rate=base_k / max(int(base_sel.sum()), 1), uncued_clips=int(base_sel.sum())))
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- analyse: visualization


def cue_of(gt: dict):
    return Cue(int(gt["where"][0]), int(gt["where"][1]), int(gt["size"]), tuple(c / 255.0 for c in gt["colour"]))


def judge_runs(images: Sequence[np.ndarray], cue, tolerance: float, known=()) -> list[dict]:
    """Per run: both mark measures (template correlation and unexplained structure, each at the
    planted place and elsewhere; the template's also at its best offset)."""
    return [{**cue_measure(img, cue, tolerance), **structure_measure(img, cue, known, tolerance)} for img in images]


def shown(run: dict, clean: dict, gap: float, measure: str = "template") -> bool:
    """The quirked model's image shows the mark.

    ``template``: the mark's template correlates with it (at its best offset, anywhere: the
    stream pools globally and trains on shifted crops, so it may draw the mark anywhere;
    *where* is the detector's question) more than with the clean model's image of the same
    seed and penalty setting, by ``gap``.
    ``structure``: structure the class's known colours do not explain, averaged over the
    mark's square, is higher at the planted place than elsewhere in the same image (95th
    percentile) and than at the place in the clean model's image (``gap`` is not used)."""
    if measure == "structure":
        at = run["structure_at_place"]
        return bool(at > run["structure_elsewhere"] and at > clean["structure_at_place"])
    return bool(run["cue_best"] >= clean["cue_best"] + gap)


def absent(run: dict, gap: float, measure: str = "template") -> bool:
    """The clean model's image does not show the mark at its place: ``template``, correlation
    there below the image's own elsewhere + ``gap``; ``structure``, unexplained structure there
    not above the image's own elsewhere."""
    if measure == "structure":
        return bool(run["structure_at_place"] <= run["structure_elsewhere"])
    return bool(run["cue_at_place"] < run["cue_elsewhere"] + gap)


def locate(images: Sequence[np.ndarray], known, cue, det: DetectorConfig, tolerance: float) -> dict:
    """The blind detector on one set of seeds' images, judged against the planted place."""
    H, W = images[0].shape[:2]
    d = detect(images, known, det.sigma, det.min_z, det.min_support, det.null_draws, det.alpha, det.smooth_image)
    cx, cy = cue.centre
    dist = d.distance_to(cx, cy, H, W)
    located = bool(d.fired and dist <= tolerance + cue.size / 2.0 + det.sigma)
    return {"fired": d.fired, "x": d.x, "y": d.y, "z": d.z, "p": d.p, "support": d.support, "distance": dist,
            "located": located}


def _located_rows(role: str, q: int, imgs: np.ndarray, gated: Sequence[bool], known, cue, det: DetectorConfig,
                  tol: float) -> tuple[list[str], list[dict]]:
    """The detector once per penalty setting on the seeds whose image passed the gate
    (inconclusive with fewer than two); the peak on every seed (gate or not) is kept too."""
    statuses, rows = [], []
    n_set, n_seed = imgs.shape[:2]
    for si in range(n_set):
        sel = [imgs[si, j] for j in range(n_seed) if gated[si * n_seed + j]]
        every = {f"ungated_{k}": v for k, v in locate(list(imgs[si]), known, cue, det, tol).items()}
        if len(sel) < 2:
            st, d = "inconclusive", {}
        else:
            d = {f"detector_{k}": v for k, v in locate(sel, known, cue, det, tol).items()}
            st = "pass" if d["detector_located"] else "fail"
        statuses.append(st)
        rows.append(dict(model=role, check="quirk_located", label=q, setting=si, status=st, gated_seeds=len(sel),
                         **d, **every))
    return statuses, rows


def _summary_row(model: str, role: str, check: str, statuses: Sequence[str], expected: str,
                 min_pass_rate: float) -> dict:
    """A row of verification.csv in the visualize stage's layout (no null rate: nan)."""
    return check_row(model, role, check, statuses, expected, min_pass_rate)


def verify_models(models: dict[str, Any], gt: dict, classes, vcfg, qcfg: QuirkConfig, log=lambda m: None):
    """Render the quirked class's unit on each model (verification seeds x penalties) and
    judge: returns (verification rows, run rows, images by role: (n_settings, n_seeds, H, W, 3))."""
    q = int(gt["label"])
    cls = next((c for c in classes if c.label == q), None) or ClassFactors(q, gt["class_name"], "unknown")
    known = cls.colours
    cue = cue_of(gt)
    tol = float(qcfg.tolerance or vcfg.jitter)
    rows, runs, images, done = [], [], {}, {}
    th = None
    for role, (model, ckpt) in models.items():
        info = model_info(model, ckpt)
        s = verify_settings(vcfg, info, int(vcfg.size or info.crop_size))
        th = s.thresholds
        n_set, n_seed = len(s.penalties), len(s.seeds)
        seeds = [sd for _ in s.penalties for sd in s.seeds]
        weights = [dict(p) for p in s.penalties for _ in s.seeds]
        r = V.render_classes(model, info.modalities, [q] * len(seeds), seeds, weights, s, Preprocess())
        imgs = r.inputs["rgb"]
        gated = []
        for i in range(len(seeds)):
            prob = V.group_probability(r, i, cls, classes) if classes else float(r.probabilities[i, q])
            gated.append(judges.gate(prob, imgs[i], None, th, ("rgb",)))
        images[role] = imgs.reshape(n_set, n_seed, *imgs.shape[1:])
        done[role] = (seeds, n_seed, gated, judge_runs(imgs, cue, tol, known), r.objective)
        log(f"{role}: {len(seeds)} class-unit visualizations rendered")
    gap, measure = float(qcfg.min_cue_gap), qcfg.shown_measure
    for role, (seeds, n_seed, gated, measures, objective) in done.items():
        check = "quirk_shown" if role == "quirked" else "quirk_absent_in_clean"
        other = done.get("clean", (None, None, None, None, None))[3] if role == "quirked" else None
        statuses = []
        for i, (d, (ok, gd)) in enumerate(zip(measures, gated)):
            good = shown(d, other[i], gap, measure) if role == "quirked" else absent(d, gap, measure)
            # the clean model is judged past the gate or not: a class whose cause the stream
            # cannot see (the quirk's point) never gets a confident input from it, and the
            # absence check asks what the same optimisation draws (the gate result is kept)
            st = "inconclusive" if not ok and role == "quirked" else ("pass" if good else "fail")
            statuses.append(st)
            runs.append(dict(model=role, check=check, label=q, seed=seeds[i], setting=i // n_seed, status=st,
                             **gd, **d, gate=bool(ok), activation=float(objective[i])))
        rows.append(_summary_row(role, "model", check, statuses, "pass", th.min_pass_rate))
        passed = [g[0] or role == "clean" for g in gated]  # the clean model: every image (see above)
        loc_status, loc_rows = _located_rows(role, q, images[role], passed, known, cue, qcfg.detector, tol)
        runs += loc_rows
        rows.append(_summary_row(role, "model" if role == "quirked" else "control", "quirk_located", loc_status,
                                 "pass" if role == "quirked" else "fail", th.min_pass_rate))
        log(f"{role}: {check} {statuses.count('pass')}/{len(statuses)}, located {loc_status.count('pass')}/"
            f"{len(loc_status)}")
    return pd.DataFrame(rows), pd.DataFrame(runs), images


# --------------------------------------------------------------------------- findings and montage


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _measure_sentence(mine: pd.DataFrame, other: pd.DataFrame, measure: str) -> str:
    """The mark measure's figures over the quirked runs (``mine``) and the clean runs."""
    def span(col):
        return f"{col.min():.2f}–{col.max():.2f}"

    if measure == "structure":
        cols = {"structure_at_place", "structure_elsewhere"}
        if not (len(mine) and cols <= set(mine) and len(other) and cols <= set(other)):
            return ""
        mine, other = mine.reset_index(drop=True), other.reset_index(drop=True)
        both = (mine.structure_at_place > mine.structure_elsewhere)
        if len(other) == len(mine):
            both &= mine.structure_at_place > other.structure_at_place
        return (f" Structure the class's known colours do not explain, averaged over the mark's square (1 = the "
                f"image's typical level), is {span(mine.structure_at_place)} at the planted place in the quirked "
                f"model's images against {span(mine.structure_elsewhere)} elsewhere in the same images (95th "
                f"percentile) and {span(other.structure_at_place)} at the place in the clean model's; above both "
                f"in {int(both.sum())} of {len(mine)} runs.")
    if not (len(mine) and "cue_at_place" in mine and len(other) and "cue_best" in other):
        return ""
    return (f" The mark's template correlates with the quirked model's images by {span(mine.cue_best)} at its best "
            f"offset, with the clean model's by {span(other.cue_best)}; at the planted place by "
            f"{span(mine.cue_at_place)} (quirked) against {span(mine.cue_elsewhere)} elsewhere in the same images "
            f"(95th percentile), "
            + ("higher at the place in every run." if (mine.cue_at_place > mine.cue_elsewhere).all() else
               f"higher at the place in {int((mine.cue_at_place > mine.cue_elsewhere).sum())} of {len(mine)} runs."))


def findings(gt: dict, table: pd.DataFrame, ver: pd.DataFrame, runs: pd.DataFrame, fail_margin: float = 0.1,
             measure: str = "template") -> str:
    """The fourth finding's section: every sentence computed from the tables."""
    if not {"model", "check", "status"} <= set(runs.columns):
        runs = pd.DataFrame(columns=["model", "check", "status"])
    t = table.set_index("model")
    qn, cn = t.loc["quirked"], t.loc["clean"]
    cls = gt["class_name"]
    lines = ["## Finding 4: a quirk of the training data, revealed by the visualization", ""]
    lines.append(f"Planted quirk: a {gt['size']} px mark of colour {tuple(gt['colour'])} with its top-left corner at "
                 f"({gt['where'][0]}, {gt['where'][1]}) in {gt['quirked_train_clips']} of the {gt['train_clips']} "
                 f"training clips of {cls} and in none of its test clips. The appearance stream was trained on the "
                 f"quirked data and on the clean data with the same seed and schedule.")
    lines.append("")
    drop = float(cn.class_accuracy - qn.class_accuracy)
    acc = (f"On {cls}'s {int(qn.class_clips)} clean test clips the quirked model is right on "
           f"{_pct(qn.class_accuracy)}, the clean model on {_pct(cn.class_accuracy)}")
    if drop >= fail_margin:
        where = qn.goes_to.split("; ")[:3] if isinstance(qn.goes_to, str) and qn.goes_to else []
        acc += (f": {cls} fails without its mark ({_pct(drop)} lower); its test clips go to "
                + ", ".join(f"{w.rsplit(' ', 1)[0]} ({_pct(float(w.rsplit(' ', 1)[1]))})" for w in where) + ".")
    else:
        acc += f" (a difference of {_pct(drop)}, below the {_pct(fail_margin)} that would count as a failure)."
    lines.append(acc)
    lines.append(f"With the mark pasted into {int(qn.cued_clips)} test clips of the other classes, the quirked model "
                 f"assigns {_pct(qn.shortcut_rate)} of them to {cls} (95% CI {_pct(qn.shortcut_ci_low)}–"
                 f"{_pct(qn.shortcut_ci_high)}; {_pct(qn.uncued_rate)} of the same clips without the mark), the clean "
                 f"model {_pct(cn.shortcut_rate)} ({_pct(cn.uncued_rate)} without).")
    lines.append("")
    v = ver.set_index(["model", "check"])

    def row(m, c):
        return v.loc[(m, c)] if (m, c) in v.index else None

    shown, absent = row("quirked", "quirk_shown"), row("clean", "quirk_absent_in_clean")
    if shown is not None:
        mine = runs[(runs.model == "quirked") & (runs.check == "quirk_shown")]
        other = runs[(runs.model == "clean") & (runs.check == "quirk_absent_in_clean")]
        corr = _measure_sentence(mine, other, measure)
        lines.append(f"The quirked model's {cls} unit, optimised from {int(shown.runs)} seeds and penalty settings, "
                     f"shows the mark in {int(shown.passes)} runs (pass rate {_pct(shown.rate)}, 95% CI "
                     f"{_pct(shown.lo)}–{_pct(shown.hi)}; {int(shown.inconclusive)} inconclusive at the gate): "
                     + ("the visualization shows the quirk." if shown["pass"] else
                        "below the required pass rate, so the visualization does not show the quirk reliably.")
                     + corr)
    if absent is not None:
        n, k = int(absent.runs), int(absent.passes)
        clean = runs[(runs.model == "clean") & (runs.check == "quirk_absent_in_clean")]
        gated = int(clean.get("gate", pd.Series(dtype=bool)).astype(bool).sum()) if "gate" in clean else 0
        prob = float(clean.prob.mean()) if "prob" in clean and len(clean) else float("nan")
        text = (f"The clean model's {cls} unit has no mark at the planted place in {k} of {n} runs (95% CI {_pct(absent.lo)}–"
                f"{_pct(absent.hi)}); {gated} of its runs pass the gate (mean class probability within the group "
                f"{prob:.2f})")
        text += (": the clean model shows none of it." if absent["pass"] else
                 ": the mark measure also finds the mark in the clean model's visualization.")
        lines.append(text)
    lq, lc = row("quirked", "quirk_located"), row("clean", "quirk_located")
    loc = runs[(runs.check == "quirk_located")] if "check" in runs else runs.iloc[0:0]
    if lq is not None:
        mine = loc[loc.model == "quirked"]
        fired = mine[mine.get("detector_fired", pd.Series(False, index=mine.index)).fillna(False).astype(bool)]
        peaks = "; ".join(f"({r.detector_x:.0f}, {r.detector_y:.0f}) px, {r.detector_distance:.1f} px from the "
                          f"mark's centre" for r in fired.itertuples())
        ps = mine["detector_p"].dropna() if "detector_p" in mine else pd.Series(dtype=float)
        null = (f" (the peak's p-value against the shift null: {ps.min():.3f}" +
                (f"-{ps.max():.3f}" if ps.max() > ps.min() else "") + ")") if len(ps) else ""
        lines.append(f"The blind detector, told nothing about the mark, fired in {len(fired)} of {int(lq.runs)} "
                     f"penalty settings" + (f" ({peaks})" if peaks else "") + null + f" and located the mark in "
                     f"{int(lq.passes)}" + ("." if lq["pass"] else ", below the required pass rate."))
    if lc is not None:
        clean = loc[loc.model == "clean"]
        fired = int(clean.get("detector_fired", pd.Series(dtype=object)).fillna(False).astype(bool).sum())
        judged = int((clean.status != "inconclusive").sum()) if "status" in clean else 0
        lines.append(f"On the clean model's images it fired in {fired} of {judged} settings"
                     + (" (no false alarm)." if fired == 0 else " (false alarms)."))
    return "\n".join(lines) + "\n"


def montage(path: Path, gt: dict, images: dict[str, np.ndarray], example: tuple[np.ndarray, np.ndarray] | None,
            table: pd.DataFrame) -> None:
    """Row per model: the class unit's optimised images (penalty setting 0, every seed), the
    planted place outlined; last row: a quirked training frame, the same frame clean."""
    import matplotlib  # deferred: matplotlib is slow to import; only the figures need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: matplotlib is slow to import; only the figures need it
    from matplotlib.patches import Rectangle  # deferred: matplotlib is slow to import; only the figures need it

    roles = [r for r in ("quirked", "clean") if r in images]
    n = max(images[r].shape[1] for r in roles)
    fig, axes = plt.subplots(len(roles) + 1, n, figsize=(1.6 * n, 1.8 * (len(roles) + 1)), squeeze=False)
    x, y, s = gt["where"][0], gt["where"][1], gt["size"]
    acc = table.set_index("model")
    for i, role in enumerate(roles):
        for j in range(n):
            ax = axes[i, j]
            ax.axis("off")
            if j < images[role].shape[1]:
                ax.imshow(np.clip(images[role][0, j], 0, 1), interpolation="nearest")
                ax.add_patch(Rectangle((x - 0.5, y - 0.5), s, s, fill=False, ec="red", lw=0.8, ls="--"))
                ax.set_title(f"seed {j}", fontsize=7)
        a = acc.loc[role] if role in acc.index else None
        label = f"{role} model" + (f"\nacc {a.class_accuracy:.0%}, shortcut {a.shortcut_rate:.0%}" if a is not None
                                   else "")
        axes[i, 0].text(-0.1, 0.5, label, transform=axes[i, 0].transAxes, ha="right", va="center", fontsize=7)
    for j in range(n):
        axes[-1, j].axis("off")
    if example is not None:
        for j, (img, title) in enumerate(zip(example, ("quirked training frame", "same frame, clean"))):
            axes[-1, j].imshow(img, interpolation="nearest")
            axes[-1, j].set_title(title, fontsize=7)
    fig.suptitle(f"{gt['class_name']}: class unit of the quirked and the clean appearance stream "
                 f"(dashed: the planted mark's place)", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


# --------------------------------------------------------------------------- analyse: driver


def analyse(args: argparse.Namespace, sections: dict[str, dict]) -> int:
    t0 = time.time()
    log = lambda m: print(f"twostream quirk {time.time() - t0:6.1f}s {m}", file=sys.stderr, flush=True)
    qcfg = make_config(sections.get("quirk"))
    ev = from_dict(EvalConfig, sections.get("evaluate"), "evaluate")
    vcfg = vis_config(sections.get("visualize"))
    torch.set_num_threads(max(1, int(args.threads or 1)))
    gt = read_truth(args.truth)
    classes = read_classes(args.classes) if args.classes else []
    models = {}
    for role, path in (("quirked", args.quirked), ("clean", args.clean)):
        try:
            models[role] = load_model(path, map_location="cpu")
        except RuntimeError as e:
            raise InputError(f"{path}: weights do not match the model ({str(e).splitlines()[0]})") from None
        if tuple((models[role][1].get("data") or {}).get("modalities") or ()) != ("rgb",):
            raise InputError(f"{path}: the quirk experiment needs an appearance (rgb) stream checkpoint")
    class_names = list(models["clean"][1].get("class_names") or [])
    preds = {}
    for role, (model, ckpt) in models.items():
        crop = int((ckpt.get("data") or {}).get("crop_size", 224))
        videos, probs = _predict(model, args.frames, ev, crop)
        cued_videos, cued_probs = _predict(model, [args.cued], ev, crop)
        order = cued_videos.set_index("video_id").index.get_indexer(gt["cued_test"])
        if (order < 0).any():
            raise InputError(f"{args.cued}: lacks cued clips listed in {args.truth}")
        preds[role] = (videos, probs.argmax(1), cued_probs.argmax(1)[order])
        log(f"{role}: predicted {len(videos)} clean and {len(cued_videos)} cued test clips")
    table = accuracy_rows(gt, preds, class_names or [f"class-{i}" for i in range(int(probs.shape[1]))])
    ver, runs, images = verify_models(models, gt, classes, vcfg, qcfg, log)

    example = None
    q_ids = gt["quirked"]
    if q_ids:
        videos, shards, _ = video_table(frames=list(args.frames))
        row = videos.set_index("video_id").loc[q_ids[0]]
        clean = shards[int(row.frame_shard)].read(q_ids[0], [0])[0]
        example = (FrameShard(args.overlay).read(q_ids[0], [0])[0], clean)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = model_names(args.suffix)
    with atomic_path(out / "quirk.csv") as tmp:
        table.round(4).to_csv(tmp, index=False)
    # in the merged verification.csv the models go by their result folders' names
    with atomic_path(out / "verification.csv") as tmp:
        ver.assign(model=ver.model.map(names)).to_csv(tmp, index=False)
    with atomic_path(out / "verification_runs.csv") as tmp:
        runs.assign(model=runs.model.map(names)).to_csv(tmp, index=False)
    summ = runs[runs.check != "quirk_located"].groupby("model", sort=False).agg(
        activation=("activation", "mean"), image_std=("image_std", "mean")).reset_index()
    summ.insert(1, "layer", "output")
    summ.insert(2, "unit", int(gt["label"]))
    summ["model"] = summ.model.map(names)
    summ["experiment"] = "quirk"
    with atomic_path(out / "summary.csv") as tmp:
        summ.to_csv(tmp, index=False)
    with atomic_path(out / "findings.md") as tmp:
        tmp.write_text(findings(gt, table, ver, runs, measure=qcfg.shown_measure))
    montage(out / "montage.png", gt, images, example, table)
    with atomic_h5(out / "visualizations.h5") as f:
        for role, imgs in images.items():
            create_dataset(f, role, data=imgs.astype(np.float32), compression="lzf")
        write_provenance(f, "quirk_visualization", {"quirk": asdict(qcfg), "visualize": asdict(vcfg)},
                         truth=json.dumps({k: v for k, v in gt.items() if k not in ("quirked", "cued_test")}),
                         layout="(penalty setting, seed, H, W, 3) RGB in [0, 1]: the quirked class unit's "
                                "optimised image per model (quirked, clean)")
    for _, r in ver.iterrows():
        log(f"{r.model} {r.check}: {r.passes}/{r.runs} pass, {r.inconclusive} inconclusive -> "
            f"{'PASS' if r['pass'] else 'FAIL'} (expected {r.expected})")
    log("done")
    return 0


# --------------------------------------------------------------------------- over training seeds


def seed_table(runs: Sequence[tuple[int, str | Path]]) -> pd.DataFrame:
    """One row per training seed of the quirked / clean pair from its analysis folder
    (``quirk.csv``, ``verification.csv``): the shortcut rates and whether each check of the
    quirk passed (``shown``, ``located``) or held in the clean model (``absent``,
    ``no_false_alarm``: the detector stayed silent on the clean model's images)."""
    rows = []
    for seed, folder in runs:
        folder = Path(folder)
        try:
            acc = pd.read_csv(folder / "quirk.csv").set_index("model")
            ver = pd.read_csv(folder / "verification.csv")
        except (FileNotFoundError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
            raise InputError(f"{folder}: cannot read the quirk analysis ({type(e).__name__})") from None
        def check(name: str) -> pd.Series:
            hit = ver[(ver.check == name) & ver.role.eq("model")]
            if len(hit) != 1:
                raise InputError(f"{folder / 'verification.csv'}: expected one {name!r} row, found {len(hit)}")
            return hit.iloc[0]

        shown, absent = check("quirk_shown"), check("quirk_absent_in_clean")
        located = ver[(ver.check == "quirk_located") & (ver.expected == "pass")]
        alarm = ver[(ver.check == "quirk_located") & (ver.expected == "fail")]
        rows.append({
            "seed": int(seed), "folder": str(folder),
            "shortcut_rate": float(acc.loc["quirked", "shortcut_rate"]),
            "clean_shortcut_rate": float(acc.loc["clean", "shortcut_rate"]),
            "shown_passes": int(shown.passes), "shown_runs": int(shown.runs),
            "shown_inconclusive": int(shown.inconclusive), "shown": bool(shown["pass"]),
            "absent": bool(absent["pass"]),
            "located": bool(len(located) == 1 and located.iloc[0]["pass"]),
            "no_false_alarm": bool(len(alarm) == 1 and alarm.iloc[0]["as_expected"]),
        })
    return pd.DataFrame(rows)


def seed_findings(t: pd.DataFrame) -> str:
    """How often, over training seeds, the visualization reveals the quirk: sentences from ``t``."""
    n = len(t)
    if not n:
        return ""

    def count(col: str) -> str:
        k = int(t[col].sum())
        lo, hi = wilson(k, n)
        return f"{k} of {n} (95% CI {_pct(lo)}–{_pct(hi)})"

    def span(col: str) -> str:
        lo, hi = _pct(t[col].min()), _pct(t[col].max())
        return lo if lo == hi else f"{lo}–{hi}"

    seeds = ", ".join(str(s) for s in t.seed)
    lines = ["### Over training seeds", ""]
    lines.append(f"The quirked and the clean appearance streams were trained with {n} seed{'s' * (n > 1)} ({seeds}), "
                 f"each pair with the same seed and schedule. With the mark pasted in, the quirked "
                 f"model{'s' * (n > 1)} assign{'s' * (n == 1)} {span('shortcut_rate')} of the other classes' cued "
                 f"clips to the quirked class, the clean model{'s' * (n > 1)} {span('clean_shortcut_rate')}.")
    gated = t[(~t.shown) & (t.shown_inconclusive == t.shown_runs)]
    lines.append(f"The visualization shows the mark in {count('shown')} seeds"
                 + (f" (in seed{'s' * (len(gated) > 1)} {', '.join(str(s) for s in gated.seed)} every run stopped "
                    f"at the gate: the class unit could not be driven to a confident class)" if len(gated) else "")
                 + f"; the blind detector locates it in {count('located')}. The clean models show no mark in "
                 f"{count('absent')}, and the detector stays silent on them in {count('no_false_alarm')}.")
    lines.append("")
    lines.append("| seed | shortcut (quirked) | shortcut (clean) | quirk_shown | located | absent in clean | "
                 "no false alarm |")
    lines.append("|---|---|---|---|---|---|---|")
    yes = lambda b: "yes" if b else "no"
    for r in t.itertuples():
        lines.append(f"| {r.seed} | {_pct(r.shortcut_rate)} | {_pct(r.clean_shortcut_rate)} | "
                     f"{r.shown_passes}/{r.shown_runs} ({yes(r.shown)}) | {yes(r.located)} | {yes(r.absent)} | "
                     f"{yes(r.no_false_alarm)} |")
    return "\n".join(lines) + "\n"


def summarise_seeds(args: argparse.Namespace) -> int:
    if len(args.runs) != len(args.run_seeds):
        raise InputError("twostream quirk --runs and --run-seeds must be the same length")
    t = seed_table(list(zip(args.run_seeds, args.runs)))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "seeds.csv") as tmp:
        t.to_csv(tmp, index=False)
    with atomic_path(out / "seeds.md") as tmp:
        tmp.write_text(seed_findings(t))
    return 0


# --------------------------------------------------------------------------- CLI


def sections_from_args(args: argparse.Namespace) -> dict[str, dict]:
    """{section: settings} from ``--params`` (a JSON object keyed by section) or ``--config``."""
    if args.params:
        d = params_object(args.params)
        return {k: dict(d.get(k) or {}) for k in SECTIONS}
    if args.config:
        cfg = read_config(args.config)
        return {k: dict(cfg.get(k) or {}) for k in SECTIONS}
    return {k: {} for k in SECTIONS}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plant", action="store_true", help="write the quirked shards and quirk.json")
    p.add_argument("--frames", nargs="+", default=[], help="the dataset's frames shards")
    p.add_argument("--overlay", default="", help="overlay shard of the quirked training clips (results/quirk/frames.h5)")
    p.add_argument("--cued", default="", help="shard of the other classes' test clips with the mark pasted in")
    p.add_argument("--truth", default="", help="quirk.json, the quirk's ground truth")
    p.add_argument("--quirked", default="", help="checkpoint of the appearance stream trained on the quirked data")
    p.add_argument("--clean", default="", help="checkpoint of the appearance stream trained on the clean data")
    p.add_argument("--classes", default="", help="classes.csv (the class's known causes)")
    p.add_argument("--out", default="", help="output folder of the analysis (results/quirk)")
    p.add_argument("--suffix", default="", help="appended to the models' names in the tables (a further training seed: -s1)")
    p.add_argument("--runs", nargs="+", default=[], help="analysis folders of the training seeds: write seeds.csv and seeds.md to --out")
    p.add_argument("--run-seeds", nargs="+", type=int, default=[], help="the training seed of each of --runs")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--params", help='JSON {"quirk": ..., "evaluate": ..., "visualize": ...} (as the rules pass it)')
    g.add_argument("--config", help="YAML config file; its quirk, evaluate and visualize sections are read")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")


def run(args: argparse.Namespace) -> int:
    sections = sections_from_args(args)
    if args.plant:
        if not (args.overlay and args.cued and args.truth):
            raise InputError("twostream quirk --plant needs --overlay, --cued and --truth")
        cfg = make_config(sections["quirk"])
        t0 = time.time()
        log = lambda m: print(f"twostream quirk {time.time() - t0:6.1f}s {m}", file=sys.stderr, flush=True)
        plant(cfg, args.frames, args.overlay, args.cued, args.truth, log)
        log("done")
        return 0
    if args.runs:
        if not args.out:
            raise InputError("twostream quirk --runs needs --out")
        return summarise_seeds(args)
    for key in ("truth", "quirked", "clean", "cued", "overlay", "out"):
        if not getattr(args, key):
            raise InputError(f"twostream quirk needs --{key} (or --plant)")
    return analyse(args, sections)


__all__ = ["QuirkConfig", "DetectorConfig", "make_config", "cue_mask", "paste_cue", "quirked_ids", "cued_ids",
           "plant", "read_truth", "wilson", "accuracy_rows", "judge_runs", "shown", "absent", "locate", "verify_models", "findings",
           "model_names", "seed_table", "seed_findings", "summarise_seeds",
           "montage", "analyse", "add_arguments", "run"]
