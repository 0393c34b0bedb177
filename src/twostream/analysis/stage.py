"""``twostream findings``: the paper's findings 2 and 3 measured per layer, trained beside untrained.

For one checkpoint (``--checkpoint``) the stage measures every analysed layer (``findings.layers``;
automatic: the visualized layers of ``visualize/stage.py``, and for a spatially fused network the
motion tower's stages up to the fusion point too) twice: on the trained network and on an untrained
one of the same architecture (every module's ``reset_parameters`` after ``torch.manual_seed(
findings.untrained_seed)``). It writes into ``--out`` (results/visualization/{model}/):

``units.csv``
    one row per (network, layer, unit): the unit's kind from its class profile on test clips
    (``units.py``; the test-clip activations are ``visualize.stage.clip_statistics_of``, with the
    ``visualize`` settings ``test_clips_per_class``, ``test_frames`` and ``where``: the clips are
    read once and each batch is fed to both networks);
``invariance.csv``
    one row per (network, layer, factor): the mean invariance index over units with its 95% t
    interval (``invariance.py``) on probe clips (``probes.py``), read from ``--probes``; speed rows
    add the spread of the units' preferred speed;
``unit_checks.csv``
    activation maximisation (the ``visualize`` settings) of the most generic and the most specific
    unit of the top analysed layer of the trained network, judged as ``verify`` judges class units:
    the optimised flow's direction for a direction factor, the optimised image's colour for a
    colour factor.

``--render-probes OUT`` renders the probe clips once per run (rule ``findings_probes``,
``results/findings/probes.h5``, layout in ``probes.py``): the ``findings`` probe keys
(``grid.FINDINGS_PROBE_KEYS``), the ``synthetic`` settings, the streams' flow lengths
(``train.flow_length``) and the flow shards' bound (``--flow``; without shards ``--bound``
or ``flow.bound``) define them. Each model's job reads them
(``--probes``; ``readers.read_probes``) and stops with one line naming the file when they were
rendered with other settings than its own.

``--collect DIR ...`` concatenates the per-model tables into ``--units`` and ``--invariance``,
draws ``--units-figure`` and ``--invariance-figure`` and writes the findings (``findings.py``).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..config import ConfigError, add_params_arguments, defaults, from_dict, read_config, section_from_args, settings
from ..errors import InputError
from ..grid import FINDINGS_PROBE_KEYS, probe_flow_lengths
from ..readers import read_probes
from ..store import atomic_path, quantize_flow
from ..datasets.synthetic import DIRECTIONS, class_table
from ..datasets.synthetic import make_config as synth_config
from ..models import load_model
from ..store import FlowShard
from ..visualize import judges as V
from ..visualize.objectives import OUTPUT
from ..visualize.render import Preprocess, Probe
from ..visualize.stage import SPATIAL, _reduce, clip_statistics_of, default_layers, model_info, selectivity, visualize_layers
from ..visualize.stage import make_config as vis_config
from . import findings as F
from . import invariance as INV
from . import probes as P
from . import units as UN

NETWORKS = ("trained", "untrained")
DEPTH = {"conv1": 1, "res2": 2, "res3": 3, "res4": 4, "res5": 5, "pool": 5.25}


@settings("findings")
class FindingsConfig:
    """The ``findings:`` section (see config/README.md)."""

    layers: list[str]
    specific_margin: float
    generic_level: float
    probe_clips: int
    speeds: list[float]
    positions: list[float]
    sizes: list[float]
    phases: list[float]
    colours: list[str]
    seed: int
    untrained_seed: int
    check_units: bool
    where: str
    min_change: float



def make_config(d: dict | None) -> FindingsConfig:
    return from_dict(FindingsConfig, d, "findings")


# --------------------------------------------------------------------------- networks and layers


def untrained(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """A copy of ``model`` with every parameter freshly initialised (``reset_parameters``)."""
    m = copy.deepcopy(model)
    torch.manual_seed(int(seed))
    for mod in m.modules():
        if hasattr(mod, "reset_parameters"):
            mod.reset_parameters()
    return m.eval()


def analysis_layers(model: torch.nn.Module) -> list[str]:
    """The visualized layers; a spatially fused network adds its motion tower up to the fusion."""
    layers = default_layers(model)
    if getattr(model, "kind", None) in ("spatial", "pool3d") and hasattr(model, "fuse"):
        stage = tuple(getattr(model, "stages", ("pool",)))[0]
        upto = SPATIAL[: SPATIAL.index(stage) + 1] if stage in SPATIAL else SPATIAL
        layers = [f"flow.{s}" for s in upto] + layers
    return layers


def depth_of(layer: str, model: torch.nn.Module) -> float:
    """Position of a layer in the hierarchy: conv1 = 1, res2..res5 = 2..5, the fusion layer
    just after its stage, the class scores 6."""
    if layer == OUTPUT:
        return 6.0
    last = layer.rsplit(".", 1)[-1]
    if last in DEPTH:
        return float(DEPTH[last])
    if layer == "fuse":
        stage = tuple(getattr(model, "stages", ("pool",)))[0]
        return float(DEPTH.get(stage, 5.25)) + 0.5
    return float("nan")


# --------------------------------------------------------------------------- measures of one network


def test_statistics(nets: dict, info, layers, frames, flow, vcfg) -> dict[str, dict]:
    """Every network's per-video activations on the test clips, the clips read once for all."""
    stats = clip_statistics_of(nets, info, layers, frames, flow, vcfg, split="test")
    if stats is None:
        raise InputError("findings needs the test shards of the model's inputs (--frames / --flow)")
    return stats


def unit_rows(network: str, stats: dict, layers, classes_df, fcfg: FindingsConfig, model_name: str,
              depth: dict) -> pd.DataFrame:
    """units.csv rows of one network: every unit's kind from its class profile on test clips
    (``stats``: its ``clip_statistics``)."""
    factors = UN.factor_sets(classes_df) if classes_df is not None else {}
    labels = np.unique(stats["labels"])
    out = []
    for l in layers:
        means, _ = selectivity(stats["acts"][l], stats["labels"])
        uk = UN.classify(means, labels, factors, fcfg.specific_margin, fcfg.generic_level)
        out.append(UN.kinds_table(uk, model=model_name, network=network, layer=l, depth=depth[l]))
    return pd.concat(out, ignore_index=True)


def plan_index(sets: list[P.ProbeSet], n: int) -> np.ndarray:
    """(set, class label, level) of every probe clip, in the order they are rendered and stored."""
    return np.array([(si, int(label), li) for si, s in enumerate(sets) for label in s.labels
                     for li in range(len(s.factors)) for _ in range(int(n))], dtype=np.int64).reshape(-1, 3)


def render_probes(sets: list[P.ProbeSet], syn, classes_df, fcfg: FindingsConfig, flow_lengths, bound: float, log):
    """Render every probe clip once: the frames and quantized flow fields that the middle snippet
    of any model reads (each stream's flow length, with and without flow inputs)."""
    table = class_table(syn)
    T = int(syn.frames)
    picks = [P.snippet_frames(T, L, use_flow) for L in flow_lengths for use_flow in (False, True)]
    frame_index = sorted({int(f) for f, _ in picks})
    field_index = sorted({int(i) for _, fields in picks for i in fields})
    frames, flow = [], []
    n = int(fcfg.probe_clips)
    for s in sets:
        for label in s.labels:
            for fac in s.factors:
                for i in range(n):
                    seed = int(np.random.SeedSequence([int(fcfg.seed), 7919, int(label), i]).generate_state(1)[0])
                    clip = P.render_probe(syn, int(label), seed, fac, table)
                    frames.append(clip.frames[frame_index])
                    flow.append(quantize_flow(clip.truth.flow[field_index], bound))
        log(f"probe set {s.factor}: {len(s.labels)} classes x {len(s.levels)} levels x {n} clips")
    return dict(frames=np.stack(frames), frame_index=frame_index, flow=np.stack(flow), field_index=field_index,
                index=plan_index(sets, n), n_frames=T)


def probe_params(fcfg: FindingsConfig, syn) -> dict:
    """The settings that define the probe clips, as the probes file records them (JSON values)."""
    f = {k: getattr(fcfg, k) for k in FINDINGS_PROBE_KEYS}
    return json.loads(json.dumps({"findings": f, "synthetic": asdict(syn)}, sort_keys=True, default=str))


def probe_inputs(path, sets: list[P.ProbeSet], syn, info, bound: float, fcfg: FindingsConfig):
    """The model inputs of every probe clip from the probes file ``path`` and (set, class, level)
    of each: the stored frame and fields of the model's middle snippet (``probes.snippet_inputs``)."""
    use_flow = "flow" in info.modalities
    pr = read_probes(path, flow=use_flow)
    want, have = probe_params(fcfg, syn), {k: pr["params"].get(k) for k in ("findings", "synthetic")}
    for sec in want:
        diff = sorted(k for k in set(want[sec]) | set(have[sec] or {}) if want[sec].get(k) != (have[sec] or {}).get(k))
        if diff:
            k = diff[0]
            raise InputError(f"{path}: rendered with other probe settings ({sec}.{k} {(have[sec] or {}).get(k)!r}, "
                             f"this job {want[sec].get(k)!r}): rerun rule findings_probes")
    index = plan_index(sets, fcfg.probe_clips)
    if not np.array_equal(pr["index"], index):
        raise InputError(f"{path}: its probe clips are not this job's probe plan (classes.csv differs?): "
                         "rerun rule findings_probes")
    frame, fields = P.snippet_frames(pr["n_frames"], info.flow_length, use_flow)
    if frame not in pr["frame_index"] or (use_flow and not set(int(i) for i in fields) <= set(pr["field_index"])):
        raise InputError(f"{path}: holds frames {pr['frame_index']} and flow fields {pr['field_index']}; this model's "
                         f"snippet (flow length {info.flow_length}) needs frame {frame} and fields {list(map(int, fields))}")
    if use_flow and pr["bound"] != float(bound):
        raise InputError(f"{path}: flow quantized at bound {pr['bound']:g}, the flow shards at {float(bound):g}")
    rgb = pr["frames"][:, pr["frame_index"].index(frame)] if "rgb" in info.modalities else None
    flow = pr["flow"][:, [pr["field_index"].index(int(i)) for i in fields]] if use_flow else None
    return P.snippet_inputs(rgb, flow, info.modalities, info.crop_size, bound), index


@torch.no_grad()
def probe_responses(model, info, layers, x: dict, where: str) -> dict[str, np.ndarray]:
    probe = Probe(model, layers, info.modalities)
    n = len(next(iter(x.values())))
    out: dict[str, list] = {l: [] for l in layers}
    for i in range(0, n, 64):
        acts = probe({m: v[i : i + 64] for m, v in x.items()})
        for l in layers:
            out[l].append(_reduce(acts[l], where).double().numpy())
    return {l: np.concatenate(v) for l, v in out.items()}


def invariance_rows(network, layers, resp, index, sets, model_name, depth) -> list[dict]:
    """invariance.csv rows of one network from its probe responses {layer: (clips, units)}."""
    rows = []
    for l in layers:
        r = resp[l]
        base_i = [i for i, s in enumerate(sets) if s.factor == "base"][0]
        base_labels = sets[base_i].labels
        base = np.stack([r[(index[:, 0] == base_i) & (index[:, 1] == c)].mean(0) for c in base_labels], 1)
        between = INV.between_class_variance(base)
        for si, s in enumerate(sets):
            if s.factor == "base":
                continue
            R = np.stack([np.stack([r[(index[:, 0] == si) & (index[:, 1] == c) & (index[:, 2] == li)].mean(0)
                                    for li in range(len(s.levels))], 1) for c in s.labels], 1)  # (U, C, L)
            idx = INV.invariance_index(R, between)
            row = INV.layer_rows(idx, model=model_name, network=network, layer=l, depth=depth[l], factor=s.factor,
                                 levels=" ".join(str(v) for v in s.levels), classes=len(s.labels))
            if s.factor.startswith("speed"):
                pref = INV.preferred_level(R, s.levels)
                row["preferred_speed_spread"], row["preferred_speed_median"] = INV.speed_spread(pref, np.isfinite(idx))
            rows.append(row)
    return rows


# --------------------------------------------------------------------------- activation maximisation checks


def judge_unit(factor: str, rgb, flow, classes_df, colours: dict, verify) -> tuple[str, bool | None, dict]:
    """(judge, passed, measures) of a unit's optimised input against its factor, as ``verify``
    judges class units: the top flow's direction for ``direction=...``, the saturated pixels'
    hue for a colour. The input must carry signal as ``verify``'s gate asks (the top-10% flow
    magnitude >= ``min_flow``, the image's std >= ``min_image_std``): a near-still flow shows no
    direction. ``passed`` is None when no judge reads the factor."""
    col, _, value = factor.partition("=")
    if col == "direction" and value in DIRECTIONS and flow is not None:
        ok, detail = V.judge_direction(flow, DIRECTIONS[value])
        detail["flow_top"], _ = V.top_flow(flow)
        return "direction", bool(ok and detail["flow_top"] >= verify.min_flow), detail
    if col in ("moving_colour", "colour") and rgb is not None:
        lab = [int(x) for x in classes_df[classes_df.moving_colour.astype(str) == value].label]
        if lab:
            # the colour of the factor: the nearest class colour is one with that moving colour
            _, detail = V.judge_colour(rgb, lab[0], colours, "saturated")
            detail["image_std"] = float(np.asarray(rgb).std())
            return "colour", bool(int(detail["nearest"]) in lab and detail["image_std"] >= verify.min_image_std), detail
    return "", None, {}


def unit_checks(model, info, units: pd.DataFrame, layer: str, classes_df, vcfg, model_name: str, log) -> pd.DataFrame:
    """Render the most generic and the most specific unit of ``layer`` and judge the factor."""
    u = units[(units.layer == layer) & (units.network == "trained")]
    picks = []
    gen = u[u.kind == "generic"].assign(f1=lambda d: 2 * d.precision * d.recall / (d.precision + d.recall))
    judgeable = gen[gen.factor.str.startswith("direction=" if "flow" in info.modalities else "moving_colour=")]
    gen = judgeable if len(judgeable) else gen
    if len(gen):
        g = gen.sort_values(["f1", "margin"], ascending=[False, True]).iloc[0]
        picks.append(("generic", int(g.unit), str(g.factor)))
    spec = u[u.kind == "specific"]
    if len(spec):
        s = spec.sort_values("margin", ascending=False).iloc[0]
        row = classes_df[classes_df.label == int(s.top_class)].iloc[0]
        if str(row.direction) in DIRECTIONS and "flow" in info.modalities:
            f = f"direction={row.direction}"
        elif str(row.moving_colour) not in ("grey", "", "nan") and "rgb" in info.modalities:
            f = f"moving_colour={row.moving_colour}"
        else:
            f = f"class={row.class_name}"
        picks.append(("specific", int(s.unit), f))
    rows = []
    if not picks:
        return pd.DataFrame(rows)
    pre = Preprocess(flow_scale=info.flow_std, flow_center=info.flow_center)
    vc = copy.deepcopy(vcfg)
    vc.temporal_weights = [max(vcfg.temporal_weights)]
    _, _, r = visualize_layers(model, info, [layer], {layer: [p[1] for p in picks]}, vc, pre, progress=False)
    colours = {}
    for _, c in classes_df.iterrows():
        try:
            colours[int(c.label)] = tuple(float(v) for v in str(c.moving_rgb).split())
        except ValueError:
            pass
    for i, (kind, unit, factor) in enumerate(picks):
        rgb = r.inputs["rgb"][i] if "rgb" in r.inputs else None
        flow = r.inputs["flow"][i] if "flow" in r.inputs else None
        judged, ok, detail = judge_unit(factor, rgb, flow, classes_df, colours, vcfg.verify)
        rows.append(dict(model=model_name, layer=layer, unit=unit, kind=kind, factor=factor, judged=judged or "none",
                         passed=ok, **{k: v for k, v in detail.items() if isinstance(v, (int, float))}))
        log(f"unit check {layer} #{unit} ({kind}, {factor}): {judged or 'no judge'} -> {ok}")
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- the stage


def read_synthetic_classes(path, syn) -> pd.DataFrame:
    """classes.csv of the synthetic dataset that ``syn`` renders (its generating factors)."""
    try:
        classes_df = pd.read_csv(path)
    except (FileNotFoundError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise InputError(f"{path}: cannot read the classes table ({type(e).__name__})") from None
    for col in ("label", "class_name", "group", "motion", "direction", "speed", "moving_colour"):
        if col not in classes_df.columns:
            raise InputError(f"{path}: column {col!r} missing (a synthetic dataset's classes.csv is needed)")
    if list(class_table(syn).class_name) != list(classes_df.class_name):
        raise InputError(f"{path}: does not match the synthetic settings (class names differ)")
    return classes_df


def flow_bound(args: argparse.Namespace, cfg: dict) -> float:
    """The flow's clip and quantization bound: the flow shards' (``--flow``), as the flow stage
    stored it; without shards ``--bound``, else ``flow.bound`` of ``cfg``."""
    if args.flow:
        return float(FlowShard(args.flow[0]).bound)
    return float(args.bound if getattr(args, "bound", None) is not None else cfg["flow"]["bound"])


def probes_main(args: argparse.Namespace) -> int:
    """``--render-probes OUT``: render the probe clips once into the probes file."""
    fcfg = make_config(section_from_args(args, "findings"))
    syn = synth_config(_section(args, "synthetic"))
    t0 = time.time()
    log = lambda msg: print(f"twostream findings [probes] {time.time() - t0:6.1f}s {msg}", file=sys.stderr, flush=True)
    classes_df = read_synthetic_classes(args.classes, syn)
    cfg = read_config(args.config) if getattr(args, "config", None) else defaults()
    lengths = sorted(set(args.flow_length)) if args.flow_length else probe_flow_lengths(cfg)
    bound = flow_bound(args, cfg)
    sets = P.probe_plan(classes_df, syn, fcfg.speeds, fcfg.positions, fcfg.sizes, fcfg.phases, fcfg.colours)
    r = render_probes(sets, syn, classes_df, fcfg, lengths, bound, log)
    params = dict(probe_params(fcfg, syn), flow_length=lengths, bound=bound)
    P.write_probes(args.render_probes, r["frames"], r["frame_index"], r["flow"], r["field_index"], r["index"],
                   sets, params, bound, r["n_frames"])
    log(f"{args.render_probes}: {len(r['index'])} probe clips, frames {r['frame_index']}, "
        f"flow fields {r['field_index'][0]}-{r['field_index'][-1]}")
    return 0


def main(args: argparse.Namespace) -> int:
    fcfg = make_config(section_from_args(args, "findings"))
    vcfg = vis_config(_section(args, "visualize"))
    syn = synth_config(_section(args, "synthetic"))
    torch.set_num_threads(max(1, int(args.threads or 1)))
    t0 = time.time()
    out = Path(args.out)
    name = args.name or out.name
    log = lambda msg: print(f"twostream findings [{name}] {time.time() - t0:6.1f}s {msg}", file=sys.stderr, flush=True)
    try:
        model, ckpt = load_model(args.checkpoint, map_location="cpu")
    except RuntimeError as e:
        raise InputError(f"{args.checkpoint}: weights do not match the model ({str(e).splitlines()[0]})") from None
    info = model_info(model, ckpt)
    classes_df = read_synthetic_classes(args.classes, syn)
    bound = flow_bound(args, read_config(args.config) if getattr(args, "config", None) else defaults())
    layers = list(fcfg.layers) or analysis_layers(model)
    depth = {l: depth_of(l, model) for l in layers}
    log(f"{args.checkpoint}: layers {', '.join(layers)}")
    nets = {"trained": model, "untrained": untrained(model, fcfg.untrained_seed)}
    sets = P.probe_plan(classes_df, syn, fcfg.speeds, fcfg.positions, fcfg.sizes, fcfg.phases, fcfg.colours)
    x, index = probe_inputs(args.probes, sets, syn, info, bound, fcfg)
    log(f"{args.probes}: {len(index)} probe clips in {len(sets)} probe sets")

    units, inv = [], []
    stats = test_statistics(nets, info, layers, args.frames, args.flow, vcfg)
    for net in nets:
        u = unit_rows(net, stats[net], layers, classes_df, fcfg, name, depth)
        units.append(u)
        counts = u.groupby("kind").size().to_dict()
        log(f"{net}: unit kinds {counts}")
    units = pd.concat(units, ignore_index=True)

    for net, m in nets.items():
        resp = probe_responses(m, info, layers, x, fcfg.where)
        inv += invariance_rows(net, layers, resp, index, sets, name, depth)
        log(f"{net}: invariance measured on {len(index)} probe clips")
    inv = INV.summarise(inv)

    checks = pd.DataFrame()
    top = [l for l in layers if l != OUTPUT]
    if fcfg.check_units and top:
        checks = unit_checks(model, info, units, top[-1], classes_df, vcfg, name, log)
    out.mkdir(parents=True, exist_ok=True)
    for fname, df in (("units.csv", units), ("invariance.csv", inv), ("unit_checks.csv", checks)):
        with atomic_path(out / fname) as tmp:
            df.to_csv(tmp, index=False)
    log("done")
    return 0


def _section(args: argparse.Namespace, name: str) -> dict:
    v = getattr(args, name, "") or ""
    if v:
        try:
            d = json.loads(v)
        except json.JSONDecodeError as e:
            raise ConfigError(f"--{name} is not valid JSON ({e})") from None
        return dict(d or {})
    if getattr(args, "config", None):
        return dict(read_config(args.config).get(name) or {})
    return {}


def collect(args: argparse.Namespace) -> int:
    fcfg = make_config(section_from_args(args, "findings"))
    tables = {"units.csv": [], "invariance.csv": [], "unit_checks.csv": []}
    for d in args.collect:
        for fname, acc in tables.items():
            p = Path(d) / fname
            if not p.exists():
                raise InputError(f"{p}: missing (run the findings stage for {Path(d).name} first)")
            try:
                acc.append(pd.read_csv(p))
            except pd.errors.EmptyDataError:
                continue
    cat = {k: (pd.concat(v, ignore_index=True) if v else pd.DataFrame()) for k, v in tables.items()}
    for path, key in ((args.units, "units.csv"), (args.invariance, "invariance.csv"), (args.checks, "unit_checks.csv")):
        if path:
            with atomic_path(path) as tmp:
                cat[key].to_csv(tmp, index=False)
    fractions = UN.kind_fractions(cat["units.csv"]) if len(cat["units.csv"]) else pd.DataFrame()
    if args.units_figure:
        F.units_figure(fractions, args.units_figure)
    if args.invariance_figure:
        F.invariance_figure(cat["invariance.csv"], args.invariance_figure)
    if args.findings:
        ablation = Path(args.ablation_findings).read_text() if args.ablation_findings else ""
        F.write_findings(args.findings, ablation, fractions, cat["invariance.csv"], cat["unit_checks.csv"],
                         rst=args.findings_rst, min_change=float(fcfg.min_change))
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", help="checkpoint.pt of a stream or a fused network")
    p.add_argument("--frames", nargs="*", default=[], help="frames shards (test clips of rgb inputs)")
    p.add_argument("--flow", nargs="*", default=[], help="flow shards (test clips of flow inputs)")
    p.add_argument("--classes", default="", help="classes.csv of the synthetic dataset (its generating factors)")
    p.add_argument("--out", help="output folder: results/visualization/{model}")
    p.add_argument("--name", default="", help="model name in the tables (default: the --out folder's name)")
    p.add_argument("--visualize", default="", help="JSON of the visualize section (test clips, rendering)")
    p.add_argument("--synthetic", default="", help="JSON of the synthetic section (the probe renderer)")
    p.add_argument("--probes", default="", help="the probe clips (results/findings/probes.h5 of --render-probes)")
    p.add_argument("--render-probes", default="", metavar="OUT",
                   help="render the probe clips once into this file (results/findings/probes.h5) instead")
    p.add_argument("--flow-length", nargs="+", type=int, default=[],
                   help="--render-probes: the streams' flow lengths (default: train.flow_length of --config)")
    p.add_argument("--bound", type=float, default=None,
                   help="--render-probes without --flow: flow.bound, the flow stage's clip and quantization "
                        "(default: of --config); with --flow the shards' bound")
    p.add_argument("--collect", nargs="+", metavar="DIR", help="concatenate these folders' tables instead")
    p.add_argument("--units", default="", help="--collect: combined units.csv")
    p.add_argument("--invariance", default="", help="--collect: combined invariance.csv")
    p.add_argument("--checks", default="", help="--collect: combined unit_checks.csv")
    p.add_argument("--units-figure", default="", help="--collect: fraction of unit kinds per layer (png)")
    p.add_argument("--invariance-figure", default="", help="--collect: invariance against depth (png)")
    p.add_argument("--ablation-findings", default="", help="--collect: results/ablation/findings.md (finding 1)")
    p.add_argument("--findings", default="", help="--collect: the findings document (markdown)")
    p.add_argument("--findings-rst", default="", help="--collect: the same findings as reStructuredText (report)")
    add_params_arguments(p)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")


def run(args: argparse.Namespace) -> int:
    if args.collect:
        return collect(args)
    if args.render_probes:
        if not args.classes:
            raise InputError("twostream findings --render-probes needs --classes")
        return probes_main(args)
    if not args.checkpoint or not args.out or not args.classes or not args.probes:
        raise InputError("twostream findings needs --checkpoint, --classes, --probes and --out "
                         "(or --render-probes, --collect)")
    return main(args)
