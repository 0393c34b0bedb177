"""``twostream findings``: the paper's findings 2 and 3 measured per layer, trained beside untrained.

For one checkpoint (``--checkpoint``) the stage measures every analysed layer (``findings.layers``;
automatic: the visualized layers of ``visualize/stage.py``, and for a spatially fused network the
motion tower's stages up to the fusion point too) twice: on the trained network and on an untrained
one of the same architecture (every module's ``reset_parameters`` after ``torch.manual_seed(
findings.untrained_seed)``). It writes into ``--out`` (results/visualization/{model}/):

``units.csv``
    one row per (network, layer, unit): the unit's kind from its class profile on test clips
    (``units.py``; the test-clip activations are ``visualize.stage.clip_statistics``, with the
    ``visualize`` settings ``test_clips_per_class``, ``test_frames`` and ``where``);
``invariance.csv``
    one row per (network, layer, factor): the mean invariance index over units with its 95% t
    interval (``invariance.py``) on probe clips (``probes.py``); speed rows add the spread of the
    units' preferred speed;
``unit_checks.csv``
    activation maximisation (the ``visualize`` settings) of the most generic and the most specific
    unit of the top analysed layer of the trained network, judged as ``verify`` judges class units:
    the optimised flow's direction for a direction factor, the optimised image's colour for a
    colour factor.

``--collect DIR ...`` concatenates the per-model tables into ``--units`` and ``--invariance``,
draws ``--units-figure`` and ``--invariance-figure`` and writes the findings (``findings.py``).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..config import ConfigError, add_params_arguments, from_dict, read_config, section_from_args, settings
from ..errors import InputError
from ..store import atomic_path
from ..datasets.synthetic import DIRECTIONS, class_table
from ..datasets.synthetic import make_config as synth_config
from ..models import load_model
from ..store import FlowShard
from ..visualize import judges as V
from ..visualize.objectives import OUTPUT
from ..visualize.render import Preprocess, Probe
from ..visualize.stage import SPATIAL, _reduce, default_layers, model_info, selectivity, clip_statistics, visualize_layers
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


def unit_rows(network: str, model, info, layers, frames, flow, vcfg, classes_df, fcfg: FindingsConfig,
              model_name: str, depth: dict) -> pd.DataFrame:
    """units.csv rows of one network: every unit's kind from its class profile on test clips."""
    stats = clip_statistics(model, info, layers, frames, flow, vcfg, split="test")
    if stats is None:
        raise InputError("findings needs the test shards of the model's inputs (--frames / --flow)")
    factors = UN.factor_sets(classes_df) if classes_df is not None else {}
    labels = np.unique(stats["labels"])
    out = []
    for l in layers:
        means, _ = selectivity(stats["acts"][l], stats["labels"])
        uk = UN.classify(means, labels, factors, fcfg.specific_margin, fcfg.generic_level)
        out.append(UN.kinds_table(uk, model=model_name, network=network, layer=l, depth=depth[l]))
    return pd.concat(out, ignore_index=True)


def probe_inputs(sets: list[P.ProbeSet], syn, classes_df, info, bound: float, fcfg: FindingsConfig, log):
    """Render every probe clip once: the model inputs and (set, class, level) of each."""
    table = class_table(syn)
    if list(table.class_name) != list(classes_df.class_name):
        raise InputError("classes.csv does not match the synthetic settings (class names differ)")
    xs: dict[str, list[torch.Tensor]] = {m: [] for m in info.modalities}
    index = []
    n = int(fcfg.probe_clips)
    for si, s in enumerate(sets):
        for label in s.labels:
            for li, fac in enumerate(s.factors):
                for i in range(n):
                    seed = int(np.random.SeedSequence([int(fcfg.seed), 7919, int(label), i]).generate_state(1)[0])
                    clip = P.render_probe(syn, int(label), seed, fac, table)
                    x = P.clip_inputs(clip, info.modalities, info.flow_length, info.crop_size, bound)
                    for m in info.modalities:
                        xs[m].append(x[m])
                    index.append((si, int(label), li))
        log(f"probe set {s.factor}: {len(s.labels)} classes x {len(s.levels)} levels x {n} clips")
    return {m: torch.stack(v) for m, v in xs.items()}, np.array(index)


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
    try:
        classes_df = pd.read_csv(args.classes)
    except (FileNotFoundError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise InputError(f"{args.classes}: cannot read the classes table ({type(e).__name__})") from None
    for col in ("label", "class_name", "group", "motion", "direction", "speed", "moving_colour"):
        if col not in classes_df.columns:
            raise InputError(f"{args.classes}: column {col!r} missing (a synthetic dataset's classes.csv is needed)")
    bound = FlowShard(args.flow[0]).bound if args.flow else 20.0
    layers = list(fcfg.layers) or analysis_layers(model)
    depth = {l: depth_of(l, model) for l in layers}
    log(f"{args.checkpoint}: layers {', '.join(layers)}")
    nets = {"trained": model, "untrained": untrained(model, fcfg.untrained_seed)}

    units, inv = [], []
    for net, m in nets.items():
        u = unit_rows(net, m, info, layers, args.frames, args.flow, vcfg, classes_df, fcfg, name, depth)
        units.append(u)
        counts = u.groupby("kind").size().to_dict()
        log(f"{net}: unit kinds {counts}")
    units = pd.concat(units, ignore_index=True)

    sets = P.probe_plan(classes_df, syn, fcfg.speeds, fcfg.positions, fcfg.sizes, fcfg.phases, fcfg.colours)
    x, index = probe_inputs(sets, syn, classes_df, info, bound, fcfg, log)
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
    if not args.checkpoint or not args.out or not args.classes:
        raise InputError("twostream findings needs --checkpoint, --classes and --out (or --collect)")
    return main(args)
