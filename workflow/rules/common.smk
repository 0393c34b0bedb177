import json
import os
import sys
from pathlib import Path

from twostream.config import ConfigError, complete

# The one validation, before any job (dry run included): the config laid over the schema's
# defaults (config/config.yaml equals them), checked by the schema and the checks across
# keys; every problem is named by its key (e.g. decode.codec).
try:
    config.update(complete(config))
except ConfigError as e:
    sys.exit(f"twostream: error: {e}")

# Rules call the `twostream` CLI of the environment that runs Snakemake.
os.environ.update(
    PATH=os.pathsep.join(
        [
            os.path.dirname(sys.executable),
            os.defpath if "PATH" not in os.environ else os.environ.get("PATH"),
        ]
    )
)
# HDF5 file locking fails on many network file systems (NFS, Lustre): our
# writers never share a file, so locking is not needed.
os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")
# Idle OpenMP threads spin by default; on a shared node that slows every op ~100x.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import twostream
from twostream import grid
from twostream.index import SHARD_PATTERN, shard_names
from twostream.preflight import preflight, stale_warning

# Fail before any job (dry run included), in one line naming the key and the path:
# a dataset root, split folder or split file that does not exist, CUDA where there is none.
try:
    preflight(config)
except ValueError as e:
    sys.exit(f"twostream: error: {e}")
if stale_warning(config["decode"]["shards"]):
    print(stale_warning(config["decode"]["shards"]), file=sys.stderr)

# code_hash("train"): a short hash of the package files `twostream train` imports, read
# from the imports themselves (a plain str param: editing one of them reruns the rule).
from twostream.codehash import command_hash as code_hash


def launcher(wildcards, resources):
    """The command that starts training: `twostream`, or with N > 1 GPUs asked for
    (resources gpu, e.g. in the SLURM profile) N processes, one per GPU, by torchrun.
    """
    gpus = int(resources.get("gpu", 0) or 0)
    if gpus > 1:
        return f"torchrun --standalone --nproc_per_node {gpus} -m twostream"
    return "twostream"


def section(name):
    """A config section as a canonical JSON string: a plain, repr-comparable param."""
    return json.dumps(config.get(name, {}), sort_keys=True)


def shards():
    return shard_names(config["decode"]["shards"])


wildcard_constraints:
    shard=SHARD_PATTERN,
    stream="|".join(grid.STREAMS),


def trained_models():
    """Every model with a checkpoint: the two streams, then the fusion grid's cells."""
    return grid.trained_models(config)


def all_targets():
    targets = expand("results/flow/{shard}.h5", shard=shards())
    targets += ["results/frames/bad_videos.csv"]
    targets += expand("results/eval/{model}/metrics.json", model=trained_models())
    targets += ["results/plots/training_curves.png", "results/plots/flow_examples.png"]
    targets += [
        "results/ablation/accuracy.csv",
        "results/ablation/heatmap.png",
        "results/ablation/groups.png",
        "results/ablation/findings.md",
        "results/visualization/summary.csv",
        "results/visualization/verification.csv",
    ]
    # the findings' probe clips come from the synthetic renderer
    if config["dataset"]["kind"] == "synthetic":
        targets += ["results/findings.md", "results/visualization/invariance.png"]
    if quirk_enabled():
        targets += [
            f"{d}/{f}"
            for d in quirk_dirs()
            for f in ("quirk.csv", "findings.md", "montage.png")
        ]
        targets += ["results/quirk/seeds.csv", "results/quirk/seeds.md"]
    return targets


# --- input functions and params of the train rules ---


def train_section(stream):
    """The `train:` section as one stream sees it (overrides merged), canonical JSON."""
    return grid.stream_params(config, stream)


def job_threads(workers):
    """Cores a training or evaluation job really uses: its main process (one torch
    thread on CPU: the default run's small networks do not speed up with more, and
    Snakemake then runs two jobs side by side) plus its DataLoader workers."""
    return 1 + int(workers or 0)


def stream_threads(stream):
    """Threads of a job training `stream` (rgb | flow) with the `train:` settings."""
    return job_threads(json.loads(train_section(stream)).get("workers"))


def stream_shards(wildcards):
    (kind,) = grid.model_shards(wildcards.stream)
    return expand(f"results/{kind}/{{shard}}.h5", shard=shards())


# --- input functions and params of the evaluate rules ---


def eval_shards(wildcards):
    return {
        k: expand(f"results/{k}/{{shard}}.h5", shard=shards())
        for k in grid.model_shards(wildcards.model)
    }


def classes_csv():
    path = os.path.join(config["dataset"]["root"], "classes.csv")
    if config["dataset"]["kind"] == "synthetic" or os.path.exists(path):
        return path
    return []


# --- input functions and params of the fusion rules ---


def fusion_train_section(wildcards):
    """The shared fine-tuning settings (fusion.train) of a cell, canonical JSON."""
    return grid.fusion_train_params(config, wildcards.method)


def ablation_models():
    return grid.trained_models(config)


# --- input functions and params of the visualize rules ---


def vis_models():
    """The visualized models: visualize.models, then the negative control."""
    return grid.visualized_models(config)


def vis_section():
    """The `visualize:` settings a model's job depends on (without the model lists)."""
    sec = {
        k: v
        for k, v in (config.get("visualize") or {}).items()
        if k not in ("models", "control")
    }
    if isinstance(sec.get("verify"), dict):  # verify.models, verify.untrained name jobs
        sec["verify"] = {
            k: v for k, v in sec["verify"].items() if k not in ("models", "untrained")
        }
    return json.dumps(sec, sort_keys=True)


def findings_probe_params():
    """The findings_probes job's settings: the probe keys of the findings section (grid)."""
    return grid.findings_probe_params(config)


def probe_flow_lengths():
    """The streams' flow lengths (train.flow_length): the probe snippets' lengths (grid)."""
    return " ".join(str(L) for L in grid.probe_flow_lengths(config))


def verify_only_models():
    """Trained cells verified without pictures (their causes come from classes.csv)."""
    return grid.verified_models(config) if classes_csv() else []


def untrained_models():
    """The cell whose untrained architecture is the second control."""
    return grid.untrained_models(config) if classes_csv() else []


def verified_dirs():
    return [f"results/visualization/verified/{m}" for m in verify_only_models()] + [
        f"results/visualization/untrained/{m}" for m in untrained_models()
    ]


# --- the planted quirk (rules in quirk.smk) ---


def quirk_enabled():
    """The quirk experiment runs on synthetic datasets when quirk.enabled (default true)."""
    sec = config.get("quirk") or {}
    return config["dataset"]["kind"] == "synthetic" and bool(sec.get("enabled", True))


def quirk_params():
    """The quirk job's settings: the quirk, evaluate and visualize sections, canonical JSON."""
    vis = json.loads(vis_section())
    return json.dumps(
        {
            # the further training seeds are not this job's: adding one reruns no analysis
            "quirk": {
                k: v
                for k, v in (config.get("quirk") or {}).items()
                if k != "train_seeds"
            },
            "evaluate": config.get("evaluate") or {},
            "visualize": vis,
        },
        sort_keys=True,
    )


def quirk_plant_params():
    """The quirk_data job's settings: the planting keys of the quirk section (grid)."""
    return grid.quirk_plant_params(config)


def quirk_seeds():
    """Training seeds of the quirked / clean pair: the rgb stream's seed first (its clean
    model is results/models/rgb), then quirk.train_seeds (each pair in results/quirk/seed-N).
    """
    if not quirk_enabled():
        return []
    first = int(json.loads(train_section("rgb"))["seed"])
    more = [int(s) for s in (config.get("quirk") or {}).get("train_seeds") or []]
    return [first] + [s for s in dict.fromkeys(more) if s != first]


def quirk_folder(seed):
    """`quirk` (results/quirk) for the rgb stream's seed, else `quirk/seed-N`."""
    return "quirk" if seed == quirk_seeds()[0] else f"quirk/seed-{seed}"


def quirk_dirs():
    """Folders whose verification tables join results/visualization/verification.csv."""
    return [f"results/{quirk_folder(s)}" for s in quirk_seeds()]


def quirk_seed_of(q):
    """The training seed of the analysis folder results/{q}."""
    return quirk_seeds()[0] if q == "quirk" else int(q.rsplit("-", 1)[1])


def quirk_train_params(wildcards):
    """The rgb stream's `train:` settings with the folder's training seed, canonical JSON."""
    d = json.loads(train_section("rgb"))
    d["seed"] = quirk_seed_of(wildcards.q)
    return grid.params_json(d)


def quirk_train_inputs(wildcards):
    """The frames shards, and the overlay of quirked clips for the quirked model only."""
    frames = expand("results/frames/{shard}.h5", shard=shards())
    if wildcards.role == "model":
        return frames + ["results/quirk/frames.h5"]
    return frames


def quirk_clean_checkpoint(wildcards):
    if wildcards.q == "quirk":
        return "results/models/rgb/checkpoint.pt"
    return f"results/{wildcards.q}/clean/checkpoint.pt"
