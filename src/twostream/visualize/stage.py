"""``twostream visualize``: per-layer activation maximisation of one trained model, verified.

For one checkpoint (a stream or a fused network) the stage

1. measures each visualized layer's channels on validation clips (channel mean, or centre,
   per clip): the highest activation, the per-class means and the class selectivity
   (how many classes' clips drive the unit, on average, above half of the best class);
2. picks ``units_per_layer`` units per layer (the most active on validation clips; for the
   class scores one class per class group), and optimises the model's inputs to
   maximise each at every ``temporal_weights`` setting (one batched run for all layers);
3. verifies the class units against the synthetic dataset's known causes
   (``verify_runs.py``, ``judges.py``, ``verdicts.py``), when ``--classes`` is given and
   ``verify.enabled``;
4. writes ``<out>/layers/{layer}.h5`` and ``.png``, ``<out>/overview.png``,
   ``<out>/classes.png``, ``<out>/summary.csv``, ``<out>/verification.csv`` and
   ``<out>/verification_runs.csv``.

``--verify-only`` runs step 3 alone (no layers, pictures or summary) with
``verify.other_seeds`` seeds: the cells of ``verify.models`` that ``visualize.models``
does not picture. ``--untrained`` verifies the checkpoint's architecture from a fixed
random init instead of its weights (the untrained control, with ``verify.seeds``).

``--collect DIR ...`` instead concatenates the per-model tables into
``--summary`` and ``--verification`` (results/visualization/summary.csv, verification.csv);
``--verified DIR ...`` adds folders that hold verification tables only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from ..config import add_params_arguments, from_dict, section_from_args, settings
from ..errors import InputError
from ..data import ClipDataset
from ..models import load_model, read_checkpoint
from ..store import atomic_h5, atomic_path, create_dataset, write_provenance
from . import montage
from . import regularizers as R
from . import verdicts
from . import verify_runs as V
from .causes import GROUPS, ClassFactors, read_classes
from .judges import Thresholds
from .objectives import OUTPUT, channels
from .params import InputSet, InputSpec
from .render import Preprocess, Probe, Weights, render_vis

SPATIAL = ("conv1", "res2", "res3", "res4", "res5")


# --------------------------------------------------------------------------- config


@settings("visualize.verify")
class VerifyConfig(Thresholds):
    """``visualize.verify``: the checks of the class units (see verify_runs.py); the gate and
    judge thresholds are those of ``judges.Thresholds``. ``models`` and ``untrained`` name
    the jobs (the workflow reads them); a job reads the rest."""

    enabled: bool
    models: Any  # all | [names]: cells verified besides visualize.models
    untrained: str  # the cell whose architecture, untrained, is the second control
    seeds: int
    other_seeds: int  # seeds of the verify-only cells
    penalties: list[float]
    steps: int
    objective: str
    log_prob_weight: float

    def thresholds(self) -> Thresholds:
        return Thresholds(**{f.name: getattr(self, f.name) for f in fields(Thresholds)})


@settings("visualize")
class VisualizeConfig:
    """The ``visualize:`` section (see config/README.md)."""

    models: list[str]
    control: str
    layers: list[str]
    units_per_layer: int
    where: str
    steps: int
    lr: float
    jitter: int
    size: int
    parametrization: str
    decay_power: float
    init_sd: float
    redirect_relu_steps: int
    seed: int
    l2: float
    tv: float
    temporal_weights: list[float]
    test_clips_per_class: int
    test_frames: int
    verify: VerifyConfig

    def __post_init__(self) -> None:  # validated by the schema (@settings); only the order is set here
        self.temporal_weights = sorted(float(w) for w in self.temporal_weights)


def make_config(d: dict | None) -> VisualizeConfig:
    return from_dict(VisualizeConfig, d, "visualize")


# --------------------------------------------------------------------------- model facts


@dataclass
class ModelInfo:
    modalities: tuple[str, ...]
    flow_length: int
    flow_std: float
    crop_size: int
    fused: bool
    class_names: list[str]
    flow_center: bool = False  # the motion stream removes each flow field's spatial mean


def model_info(model: torch.nn.Module, ckpt: dict) -> ModelInfo:
    spec = ckpt.get("spec") or {}
    data = ckpt.get("data") or {}
    modalities = tuple(data.get("modalities") or getattr(model, "modalities", ()))
    if not modalities:
        raise InputError("checkpoint does not say which inputs the model takes")
    flow_spec = spec.get("flow") if isinstance(spec.get("flow"), dict) else spec
    return ModelInfo(
        modalities=modalities,
        flow_length=int(data.get("flow_length") or flow_spec.get("flow_length") or 10),
        flow_std=float(flow_spec.get("flow_std", 1.0) or 1.0),
        crop_size=int(data.get("crop_size") or 64),
        fused=len(modalities) > 1,
        class_names=list(ckpt.get("class_names") or []),
        flow_center=any(bool(getattr(m, "center_input", False)) and getattr(m, "in_channels", 3) != 3
                        for m in model.modules()),
    )


def default_layers(model: torch.nn.Module) -> list[str]:
    """The layers visualized when ``visualize.layers`` is empty.

    A stream: conv1, res2..res5 and the class scores. A fused network: its fused layers:
    the fusion layer and the appearance tower's stages after it (spatial and temporal
    fusion), the cross-stream connections and the stages after them (ST-ResNet), or
    each tower's res5 (late fusion); then the class scores.
    """
    if hasattr(model, "stage_channels"):
        return list(SPATIAL) + [OUTPUT]
    kind = getattr(model, "kind", None)
    stages = tuple(getattr(model, "stages", ()))
    after = lambda s: [f"rgb.{t}" for t in SPATIAL[SPATIAL.index(s) + 1 :]] if s in SPATIAL else []
    head_is_new = getattr(model, "head", None) is not None
    if kind in ("spatial", "pool3d") and hasattr(model, "fuse"):
        return ["fuse"] + ([] if head_is_new else after(stages[0])) + [OUTPUT]
    if kind == "cross":
        return [f"connections.{s}" for s in stages] + after(stages[-1]) + [OUTPUT]
    if kind == "late":
        return ["rgb.res5", "flow.res5", OUTPUT]
    return [OUTPUT]


def _flat_name(layer: str) -> str:
    return layer.replace("/", "_")


# --------------------------------------------------------------------------- clips of a split


def _reduce(act: torch.Tensor, where: str) -> torch.Tensor:
    """(N, C, ...) -> (N, C): channel mean over the map, or its centre."""
    if act.dim() == 2:
        return act
    if where == "mean":
        return act.flatten(2).mean(2)
    idx = tuple(s // 2 for s in act.shape[2:])
    return act[(slice(None), slice(None)) + idx]


def clip_statistics(model, info: ModelInfo, layers: Sequence[str], frames: Sequence[str], flow: Sequence[str],
                    cfg: VisualizeConfig, split: str) -> dict[str, Any] | None:
    """Per-video channel activations of every layer on (a subset of) the clips of ``split``:
    ``val`` where they choose the units to visualize, ``test`` where findings report them.

    Returns {"labels": (N,), "acts": {layer: (N, C)}} or None without shards.
    """
    stats = clip_statistics_of({"model": model}, info, layers, frames, flow, cfg, split)
    return None if stats is None else stats["model"]


@torch.no_grad()
def clip_statistics_of(models: dict[str, torch.nn.Module], info: ModelInfo, layers: Sequence[str],
                       frames: Sequence[str], flow: Sequence[str], cfg: VisualizeConfig,
                       split: str) -> dict[str, dict[str, Any]] | None:
    """``clip_statistics`` of several models that take the same inputs (``info``), from one pass
    over the clips: each batch is read once and fed to every model, the same batches as one
    model's pass. Returns {name: {"labels", "acts"}} or None without shards."""
    if ("rgb" in info.modalities and not frames) or ("flow" in info.modalities and not flow):
        return None
    ds = ClipDataset(frames=frames if "rgb" in info.modalities else (), flow=flow if "flow" in info.modalities else (),
                     modalities=info.modalities, split=split, mode="test", flow_length=info.flow_length,
                     crop_size=info.crop_size, test_frames=cfg.test_frames, test_crops=1)
    if cfg.test_clips_per_class:
        ds.videos = ds.videos.groupby("label", sort=False).head(cfg.test_clips_per_class).reset_index(drop=True)
    probes = {name: Probe(m, layers, info.modalities) for name, m in models.items()}
    n = len(ds.videos)
    sums: dict[str, dict[str, np.ndarray]] = {name: {} for name in models}
    count = np.zeros(n)
    batch: list[dict] = []

    def flush():
        x = {m: torch.cat([b[m] for b in batch]) for m in info.modalities}
        vids = np.array([b["video"] for b in batch])
        for k, (name, probe) in enumerate(probes.items()):
            # every model but the last sees a copy: none can change what the next one sees
            acts = probe(x if k == len(probes) - 1 else {m: v.clone() for m, v in x.items()})
            for l in layers:
                a = _reduce(acts[l], cfg.where).double().numpy()
                if l not in sums[name]:
                    sums[name][l] = np.zeros((n, a.shape[1]))
                np.add.at(sums[name][l], vids, a)
        np.add.at(count, vids, 1)
        batch.clear()

    for i in range(len(ds)):
        batch.append(ds[i])
        if len(batch) == 32:
            flush()
    if batch:
        flush()
    labels = ds.videos["label"].to_numpy()
    return {name: {"labels": labels, "acts": {l: v / count[:, None] for l, v in s.items()}} for name, s in sums.items()}


def selectivity(per_video: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class mean activations (units, K) and each unit's class selectivity.

    Selectivity = the number of classes whose mean activation reaches half of the best
    class's, measured from ``min(0, lowest class mean)`` (so half the maximum for
    non-negative units, half the range for class scores); 0 for a unit that never varies.
    1 = class-specific, K = generic.
    """
    classes = np.unique(labels)
    means = np.stack([per_video[labels == k].mean(0) for k in classes], 1)  # (units, K)
    best = means.max(1, keepdims=True)
    lo = np.minimum(means.min(1, keepdims=True), 0.0)
    n = (means >= lo + 0.5 * (best - lo)).sum(1)
    n = np.where((best - lo)[:, 0] > 1e-12, n, 0)
    return means, n


def choose_units(layer: str, n_channels: int, k: int, stats: dict | None, classes: Sequence[ClassFactors]) -> list[int]:
    """The units of a layer to visualize (see the module docstring)."""
    if layer == OUTPUT and classes:
        out = []
        for g in GROUPS:
            cs = [c for c in classes if c.group == g and c.label < n_channels]
            cs = [c for c in cs if c.direction is not None or g == "appearance"] or cs
            if cs:
                out.append(cs[0].label)
        return out[:k] if len(out) >= k else out + [u for u in range(n_channels) if u not in out][: k - len(out)]
    if stats is not None and layer in stats["acts"]:
        order = np.argsort(-stats["acts"][layer].max(0), kind="stable")
        return [int(u) for u in order[:k]]
    return list(range(min(k, n_channels)))


# --------------------------------------------------------------------------- the stage


def visualize_layers(model, info: ModelInfo, layers: Sequence[str], units: dict[str, list[int]],
                     cfg: VisualizeConfig, pre: Preprocess, progress: bool = True):
    """One batched render: every (layer, unit, temporal weight)."""
    size = int(cfg.size or info.crop_size)
    has_flow = "flow" in info.modalities
    tws = cfg.temporal_weights if has_flow else [cfg.temporal_weights[-1]]
    rows = [(l, u, w) for l in layers for u in units[l] for w in tws]
    kinds = tuple(info.modalities)
    spec = InputSpec(kinds, kinds, tuple(3 if m == "rgb" else 2 * info.flow_length for m in kinds))
    # the same start for every speed setting of one unit, so the speeds differ by the weight only
    seeds = [cfg.seed * 100003 + layers.index(l) * 1009 + u for l, u, _ in rows]
    inputs = InputSet(spec, (size, size), seeds, cfg.parametrization, sd=cfg.init_sd, decay_power=cfg.decay_power)
    w = Weights(l2_rgb=cfg.l2, tv_rgb=cfg.tv, l2_flow=cfg.l2, tv_flow=cfg.tv, temporal=[r[2] for r in rows])
    obj = channels([r[0] for r in rows], [r[1] for r in rows], cfg.where)
    r = render_vis(model, obj, inputs, w, cfg.steps, cfg.lr, cfg.jitter, cfg.seed, pre, progress=progress,
                   redirect_relu_steps=cfg.redirect_relu_steps)
    return rows, tws, r


def verify_settings(cfg: VisualizeConfig, info: ModelInfo, size: int, n_seeds: int | None = None) -> V.VerifySettings:
    """The verification runs' settings (seeds, penalties, steps, objective, gate) of ``visualize.verify``
    (``n_seeds`` seeds, default ``verify.seeds``)."""
    v = cfg.verify
    n = int(v.seeds if n_seeds is None else n_seeds)
    pens = [{"l2_rgb": p, "tv_rgb": p, "l2_flow": p, "tv_flow": p, "temporal": p} for p in v.penalties]
    return V.VerifySettings(seeds=tuple(range(cfg.seed, cfg.seed + n)), penalties=tuple(pens),
                            steps=v.steps, lr=cfg.lr, jitter=cfg.jitter,
                            size=(size, size), flow_frames=info.flow_length, parametrization=cfg.parametrization,
                            init_sd=cfg.init_sd, objective=v.objective,
                            log_prob_weight=float(v.log_prob_weight), thresholds=v.thresholds())


def verify_model(model, info: ModelInfo, classes, cfg: VisualizeConfig, size: int, name: str, role: str,
                 untrained: bool = False, n_seeds: int | None = None, log=lambda m: None):
    """Verify ``model``'s class units: (results, verification rows, run rows)."""
    results: list[V.RunResult] = []
    if classes and cfg.verify.enabled:
        pre = Preprocess(flow_scale=info.flow_std, flow_center=info.flow_center)
        s = verify_settings(cfg, info, size, n_seeds)
        results = V.run_checks(model, info.modalities, classes, s, info.fused, pre, keep_inputs=True)
        log(f"{len(results)} verification runs ({len(s.seeds)} seeds x {len(s.penalties)} penalty settings)")
    expected = V.expected_outcomes(model, untrained)
    ver = verdicts.summarise(results, name, cfg.verify.min_pass_rate, expected, role)
    for _, row in ver.iterrows():
        log(f"check {row.check}: {row.passes}/{row.runs} pass (95% CI {row.lo:.2f}-{row.hi:.2f}, null rate "
            f"{row.null_rate:.2f}), {row.inconclusive} inconclusive -> {'PASS' if row['pass'] else 'FAIL'} "
            f"(expected {row.expected})")
    return results, ver, V.runs_table(results, name)


def _write_tables(out: Path, ver: pd.DataFrame, runs: pd.DataFrame) -> None:
    with atomic_path(out / "verification.csv") as tmp:
        ver.to_csv(tmp, index=False)
    with atomic_path(out / "verification_runs.csv") as tmp:
        runs.to_csv(tmp, index=False)


def main(args: argparse.Namespace) -> int:
    cfg = make_config(section_from_args(args, "visualize"))
    torch.set_num_threads(max(1, int(args.threads or 1)))
    t0 = time.time()
    out = Path(args.out)
    name = args.name or out.name
    log = lambda msg: print(f"twostream visualize [{name}] {time.time() - t0:6.1f}s {msg}", file=sys.stderr, flush=True)
    if args.untrained:
        ckpt = read_checkpoint(args.checkpoint)
        model = V.untrained_model(ckpt["spec"])
        log(f"{args.checkpoint}: its architecture from a fixed random init (seed {V.UNTRAINED_SEED}), untrained")
    else:
        try:
            model, ckpt = load_model(args.checkpoint, map_location="cpu")
        except RuntimeError as e:  # weights that do not fit the model the spec rebuilds
            raise InputError(f"{args.checkpoint}: weights do not match the model ({str(e).splitlines()[0]})") from None
    info = model_info(model, ckpt)
    pre = Preprocess(flow_scale=info.flow_std, flow_center=info.flow_center)
    classes = read_classes(args.classes) if args.classes else []
    size = int(cfg.size or info.crop_size)
    role = "control" if (args.control or args.untrained) else "model"
    if args.verify_only or args.untrained:
        n_seeds = cfg.verify.seeds if args.untrained else cfg.verify.other_seeds
        _, ver, runs = verify_model(model, info, classes, cfg, size, name, role, args.untrained, n_seeds, log)
        _write_tables(out, ver, runs)
        log("done")
        return 0
    layers = list(cfg.layers) or default_layers(model)
    log(f"{args.checkpoint}: inputs {', '.join(info.modalities)}, layers {', '.join(layers)}")

    # the units to visualize are chosen on validation clips: the test split is only for reported figures
    stats = clip_statistics(model, info, layers, args.frames, args.flow, cfg, split="val")
    log("validation-clip activations measured" if stats else "no shards given: no clip statistics")
    with torch.no_grad():  # channel counts
        dummy = {m: torch.zeros(1, 3 if m == "rgb" else 2 * info.flow_length, size, size) for m in info.modalities}
        n_ch = {l: int(a.shape[1]) for l, a in Probe(model, layers, info.modalities)(dummy).items() if l in layers}
    units = {l: choose_units(l, n_ch[l], cfg.units_per_layer, stats, classes) for l in layers}
    rows, tws, r = visualize_layers(model, info, layers, units, cfg, pre)
    log(f"{len(rows)} layer visualizations rendered")

    summary = []
    layer_dir = out / "layers"
    over_rgb, over_flow = [], []
    for l in layers:
        idx = [i for i, row in enumerate(rows) if row[0] == l]
        U, S = len(units[l]), len(tws)
        rgb = r.inputs["rgb"][idx].reshape(U, S, *r.inputs["rgb"].shape[1:]) if "rgb" in r.inputs else None
        flow = r.inputs["flow"][idx].reshape(U, S, *r.inputs["flow"].shape[1:]) if "flow" in r.inputs else None
        act = r.objective[idx].reshape(U, S)
        if stats is not None:
            per_video = stats["acts"][l][:, units[l]]
            test_max = per_video.max(0)
            means, sel = selectivity(per_video, stats["labels"])
            top = np.unique(stats["labels"])[means.argmax(1)]
        else:
            test_max = np.full(U, np.nan)
            means, sel, top = np.full((U, 0), np.nan), np.full(U, -1), np.full(U, -1)
        with atomic_h5(layer_dir / f"{_flat_name(l)}.h5") as f:
            if rgb is not None:
                create_dataset(f, "rgb", data=rgb.astype(np.float32), compression="lzf")
            if flow is not None:
                create_dataset(f, "flow", data=flow.astype(np.float32), compression="lzf")
            create_dataset(f, "units", data=np.asarray(units[l], np.int64))
            create_dataset(f, "temporal_weights", data=np.asarray(tws, np.float64))
            create_dataset(f, "activation", data=act.astype(np.float64))
            create_dataset(f, "test_max", data=np.asarray(test_max, np.float64))
            create_dataset(f, "class_means", data=np.asarray(means, np.float64))
            create_dataset(f, "selectivity", data=np.asarray(sel, np.int64))
            write_provenance(f, "visualization", asdict(cfg), model=name, layer=l, checkpoint=str(args.checkpoint),
                             modalities=json.dumps(list(info.modalities)), flow_units="px/frame",
                             flow_layout="(unit, setting, L, H, W, 2) x right, y down", where=cfg.where,
                             regularizers=json.dumps({"l2": cfg.l2, "tv": cfg.tv, "temporal": list(tws)}))
        labels = [f"{l} #{u}" + (f" (class {info.class_names[u]})" if l == OUTPUT and u < len(info.class_names) else "")
                  for u in units[l]]
        montage.layer_figure(layer_dir / f"{_flat_name(l)}.png", f"{name}: {l}", labels, rgb, flow, tws)
        over_rgb.append(rgb)
        over_flow.append(flow)
        for ui, u in enumerate(units[l]):
            for si, w in enumerate(tws):
                fl = flow[ui, si] if flow is not None else None
                summary.append(dict(
                    model=name, layer=l, unit=u, temporal_weight=w, activation=float(act[ui, si]),
                    test_max=float(test_max[ui]),
                    reached_ratio=float(act[ui, si] / test_max[ui]) if np.isfinite(test_max[ui]) and test_max[ui] > 0 else np.nan,
                    rel_temporal_variation=R.relative_temporal_variation(fl) if fl is not None else np.nan,
                    flow_magnitude=R.flow_magnitude(fl) if fl is not None else np.nan,
                    image_std=float(rgb[ui, si].std()) if rgb is not None else np.nan,
                    selectivity=int(sel[ui]), top_class=int(top[ui]),
                ))
    montage.overview_figure(out / "overview.png", f"{name}: one row per layer", layers,
                            [units[l] for l in layers], over_rgb, over_flow)

    results, ver, runs = verify_model(model, info, classes, cfg, size, name, role, log=log)
    montage_classes(out / "classes.png", name, results, classes, cfg.verify.penalties[0])
    with atomic_path(out / "summary.csv") as tmp:
        pd.DataFrame(summary).to_csv(tmp, index=False)
    _write_tables(out, ver, runs)
    log("done")
    return 0


def montage_classes(path: Path, name: str, results: Sequence[V.RunResult], classes, temporal_weight: float) -> None:
    """One row per verified class: the first run's optimised appearance and motion
    (penalty setting 0, whose temporal weight is ``temporal_weight``)."""
    first: dict[int, V.RunResult] = {}
    for r in results:
        if r.inputs is not None and r.label not in first:
            first[r.label] = r
    names = {c.label: c.name for c in classes}
    if not first:
        montage.layer_figure(path, f"{name}: no class units verified", ["-"], np.full((1, 1, 4, 4, 3), 0.5), None, [0])
        return
    labels = sorted(first)
    rgb = [first[k].inputs.get("rgb") for k in labels]
    flow = [first[k].inputs.get("flow") for k in labels]
    rgb_a = np.stack(rgb)[:, None] if rgb[0] is not None else None
    flow_a = np.stack(flow)[:, None] if flow[0] is not None else None
    montage.layer_figure(path, f"{name}: class units (verification runs)",
                         [f"{k} {names.get(k, '')}" for k in labels], rgb_a, flow_a, [float(temporal_weight)])


def collect(dirs: Sequence[str], summary: str, verification: str, verified: Sequence[str] = ()) -> int:
    """Concatenate the per-model summary.csv and verification.csv tables (of ``dirs``) and the
    verification.csv tables of the verify-only folders ``verified``."""
    sums, vers = [], []
    jobs = [(d, ("summary.csv", "verification.csv")) for d in dirs] + [(d, ("verification.csv",)) for d in verified]
    for d, names in jobs:
        d = Path(d)
        for fname, acc in ((f, sums if f == "summary.csv" else vers) for f in names):
            p = d / fname
            if not p.exists():
                raise InputError(f"{p}: missing (run the visualize stage for {d.name} first)")
            try:
                acc.append(pd.read_csv(p))
            except pd.errors.EmptyDataError:
                continue
    for path, frames in ((summary, sums), (verification, vers)):
        if path:
            with atomic_path(path) as tmp:
                (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()).to_csv(tmp, index=False)
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", help="checkpoint.pt of a stream or a fused network")
    p.add_argument("--frames", nargs="*", default=[], help="frames shards (validation-clip statistics of rgb inputs)")
    p.add_argument("--flow", nargs="*", default=[], help="flow shards (validation-clip statistics of flow inputs)")
    p.add_argument("--classes", default="", help="classes.csv of the synthetic dataset (enables the checks)")
    p.add_argument("--out", help="output folder: results/visualization/{model}")
    p.add_argument("--name", default="", help="model name in the tables (default: the --out folder's name)")
    p.add_argument("--control", action="store_true",
                   help="this model is the configured negative control (role 'control' in the tables; what it "
                        "is expected to show follows from its architecture)")
    p.add_argument("--verify-only", action="store_true",
                   help="only the checks of the class units, with visualize.verify.other_seeds seeds")
    p.add_argument("--untrained", action="store_true",
                   help="verify the checkpoint's architecture from a fixed random init (the untrained control)")
    p.add_argument("--collect", nargs="+", metavar="DIR", help="concatenate these folders' tables instead")
    p.add_argument("--summary", default="", help="--collect: combined summary.csv")
    p.add_argument("--verification", default="", help="--collect: combined verification.csv")
    p.add_argument("--verified", nargs="*", default=[], metavar="DIR",
                   help="--collect: folders holding only verification tables (verify-only and untrained jobs)")
    add_params_arguments(p)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")


def run(args: argparse.Namespace) -> int:
    if args.collect:
        return collect(args.collect, args.summary, args.verification, args.verified)
    if not args.checkpoint or not args.out:
        raise InputError("twostream visualize needs --checkpoint and --out (or --collect)")
    return main(args)
