"""The experiment grid: which models the workflow trains, their names and what they read.

Model names (folders under ``results/models``, ``results/eval`` ...):

* ``rgb`` and ``flow``, the two single streams (``STREAMS``);
* ``fusion-{method}-{position}-s{seed}``, one cell of the fusion grid (``fusion.grid``:
  ``methods`` x ``positions`` x ``seeds``, then the ``extra`` entries). A method is
  ``[a-z0-9_]+`` (no '-'), a position ``[a-z0-9_+]+`` (stages joined by '+'), a seed a
  non-negative integer.

``model_name`` writes a name and ``parse_model`` reads it back; every other place (the
rules in ``workflow/rules/``, ``ablation.py``) goes through them. The method families
(spatial, cross-stream, late) come from the constants of ``models/fusion.py``, read from
its source so that the workflow's start does not import torch.

This module is imported by Snakemake when it builds the DAG: keep it free of heavy imports.
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

from .config import STREAM_KEYS, ConfigError, stream_section

STREAMS = STREAM_KEYS  # ("rgb", "flow")
FUSION_PREFIX = "fusion"
# regexes of the parts of a fusion model name (also the wildcard constraints of rule train_fusion)
METHOD_PATTERN = r"[a-z0-9_]+"
POSITION_PATTERN = r"[a-z0-9_+]+"
SEED_PATTERN = r"\d+"
MODEL_RE = re.compile(
    rf"^{FUSION_PREFIX}-(?P<method>{METHOD_PATTERN})-(?P<position>{POSITION_PATTERN})-s(?P<seed>{SEED_PATTERN})$"
)
NAME_GRAMMAR = f"rgb, flow or {FUSION_PREFIX}-<method>-<position>-s<seed>"
NO_POSITION = "-"  # the position of a single stream in tables
# the shards a model reads: a stream its own kind, a fused model both
STREAM_SHARDS = {"rgb": "frames", "flow": "flow"}


class Model(NamedTuple):
    """A parsed model name; a single stream has method ``rgb``/``flow``, position '-', seed 0."""

    method: str
    position: str
    seed: int

    @property
    def name(self) -> str:
        if self.method in STREAMS:
            return self.method
        return model_name(self.method, self.position, self.seed)


def model_name(method: str, position: str, seed: int) -> str:
    """``fusion-{method}-{position}-s{seed}``; a part that would not read back is an error."""
    name = f"{FUSION_PREFIX}-{method}-{position}-s{seed}"
    m = MODEL_RE.match(name)
    if not m or (m["method"], m["position"], int(m["seed"])) != (method, position, int(seed)):
        raise ConfigError(
            f"fusion cell ({method!r}, {position!r}, {seed!r}): method must match {METHOD_PATTERN}, "
            f"position {POSITION_PATTERN}, seed a non-negative integer"
        )
    return name


def parse_model(name: str) -> Model:
    """(method, position, seed) of a model name; anything else is a one-line error."""
    if name in STREAMS:
        return Model(name, NO_POSITION, 0)
    m = MODEL_RE.match(str(name))
    if not m:
        raise ConfigError(f"{name}: not a model name ({NAME_GRAMMAR})")
    return Model(m["method"], m["position"], int(m["seed"]))


# --------------------------------------------------------------------------- method families
# The fusion method names (models/fusion.py builds them; it imports these names from here, so
# Snakemake can read them without importing torch).
SPATIAL_METHODS = ("sum", "max", "concat", "concat_project", "conv", "conv_linear", "bilinear", "bilinear_reduced")
POOL3D_BASES = ("sum", "max", "concat", "conv", "conv3d")
TIME_SUFFIX = "_time"  # st_* with temporal convs on the injected branch input
CROSS_METHODS = ("st_add", "st_mul", "st_add" + TIME_SUFFIX, "st_mul" + TIME_SUFFIX)
CROSS_STAGES = ("res2", "res3", "res4", "res5")  # stages whose first unit may send (res2a..res5a)
LATE_METHODS = ("late_mean", "late_weighted", "late_geometric")
LATE_POSITION = "softmax"
KEEP_MOTION_SUFFIX = "+fc"  # spatial position suffix: keep the motion tower, sum both scores


def family(method: str) -> str:
    """stream, late, cross (stream-to-stream connections) or spatial."""
    if method in STREAMS:
        return "stream"
    if method in LATE_METHODS:
        return "late"
    if method in CROSS_METHODS:
        return "cross"
    return "spatial"


# --------------------------------------------------------------------------- the grid of a config
def cells(config: dict[str, Any]) -> list[Model]:
    """Every cell of ``fusion.grid``, in config order (methods x positions x seeds, then
    ``extra``; an extra entry's seeds default to ``grid.seeds``), without repeats."""
    grid = (config.get("fusion") or {}).get("grid") or {}
    seeds = grid.get("seeds", [0])
    raw = [(m, p, s) for m in grid.get("methods", []) for p in grid.get("positions", []) for s in seeds]
    for entry in grid.get("extra", []):
        raw += [(entry["method"], entry["position"], s) for s in entry.get("seeds", seeds)]
    out = [Model(str(m), str(p), int(s)) for m, p, s in raw]
    for c in out:
        model_name(*c)  # a part that would not read back is an error now, not a missing file later
    return list(dict.fromkeys(out))


def fusion_models(config: dict[str, Any]) -> list[str]:
    """Model names of the fusion grid's cells."""
    return [c.name for c in cells(config)]


def trained_models(config: dict[str, Any]) -> list[str]:
    """Every model with a checkpoint: the two streams, then the grid's cells."""
    return list(STREAMS) + fusion_models(config)


def control_model(config: dict[str, Any]) -> str:
    """``visualize.control``: the negative control ("" = none); its default is the schema's."""
    return str(config["visualize"]["control"])


def visualized_models(config: dict[str, Any]) -> list[str]:
    """``visualize.models``, then the negative control, without repeats; each name parsed."""
    models = list(config["visualize"]["models"])
    if control_model(config):
        models.append(control_model(config))
    for m in models:
        parse_model(m)
    return list(dict.fromkeys(models))


def verified_models(config: dict[str, Any]) -> list[str]:
    """Trained cells verified without pictures (``visualize.verify.models``, ``all`` =
    every trained model) less the visualized ones, which their own job verifies.
    Empty when ``visualize.verify.enabled`` is false."""
    verify = config["visualize"]["verify"]
    if not verify["enabled"]:
        return []
    wanted = verify["models"]
    models = trained_models(config) if wanted == "all" else list(wanted)
    for m in models:
        parse_model(m)
    shown = set(visualized_models(config))
    return [m for m in dict.fromkeys(models) if m not in shown]


def untrained_models(config: dict[str, Any]) -> list[str]:
    """The cell whose untrained, randomly initialised architecture is the second
    negative control (``visualize.verify.untrained``; "" = none)."""
    verify = config["visualize"]["verify"]
    cell = str(verify["untrained"])
    if not (cell and verify["enabled"]):
        return []
    parse_model(cell)
    return [cell]


def model_shards(name: str) -> tuple[str, ...]:
    """The shard kinds a model reads: rgb frames, flow flow, a fused model both."""
    model = parse_model(name)
    if model.method in STREAMS:
        return (STREAM_SHARDS[model.method],)
    return ("frames", "flow")


# --------------------------------------------------------------------------- settings per job
def params_json(obj: Any) -> str:
    """A rule's settings as canonical JSON (sorted keys): a plain, repr-comparable param."""
    return json.dumps(obj, sort_keys=True)


def stream_params(config: dict[str, Any], stream: str) -> str:
    """The ``train:`` section as one stream sees it (its overrides merged), canonical JSON."""
    return params_json(stream_section(config.get("train"), stream))


def fusion_train_params(config: dict[str, Any], method: str) -> str:
    """The shared fine-tuning settings (``fusion.train``) of a cell, canonical JSON; a late
    fusion cell trains nothing, so it sees only ``late_weights`` (editing the training
    settings does not rerun it)."""
    train = (config.get("fusion") or {}).get("train") or {}
    if family(method) == "late":
        train = {k: v for k, v in train.items() if k == "late_weights"}
    return params_json(train)


# the quirk keys planting reads (twostream.quirk.plant: the mark, the quirked clips, the cued
# test clips); the analysis keys (detector, tolerance, shown_measure, min_cue_gap) rerun no planting
QUIRK_PLANT_KEYS = ("kind", "class_name", "share", "where", "size", "colour", "seed", "cued_clips_per_class")


def quirk_plant_params(config: dict[str, Any]) -> str:
    """The quirk_data job's settings: the planting keys of the ``quirk`` section, canonical JSON."""
    q = config.get("quirk") or {}
    return params_json({"quirk": {k: q[k] for k in QUIRK_PLANT_KEYS if k in q}})


# the findings keys that define the probe clips (rule findings_probes); the analysis keys
# (layers, margins, where, ...) rerun no rendering
FINDINGS_PROBE_KEYS = ("probe_clips", "speeds", "positions", "sizes", "phases", "colours", "seed")


def findings_probe_params(config: dict[str, Any]) -> str:
    """The findings_probes job's settings: the probe keys of the ``findings`` section, canonical JSON."""
    f = config.get("findings") or {}
    return params_json({k: f[k] for k in FINDINGS_PROBE_KEYS if k in f})


def probe_flow_lengths(config: dict[str, Any]) -> list[int]:
    """The flow lengths L of the two streams (``train.flow_length``, per-stream overrides
    merged; a fused network has its motion stream's): a probe clip's snippet depends on L."""
    return sorted({int(stream_section(config.get("train"), s)["flow_length"]) for s in STREAMS})
