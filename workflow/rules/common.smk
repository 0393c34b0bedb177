import hashlib
import json
import os
import sys
from pathlib import Path

from snakemake.utils import validate


def check_config(cfg, schema_path):
    """Fail before any job runs, naming the offending key (e.g. ``decode.codec``)."""
    import jsonschema
    import yaml

    with open(schema_path) as fh:
        schema = yaml.safe_load(fh)
    errors = sorted(
        jsonschema.Draft7Validator(schema).iter_errors(cfg), key=lambda e: list(e.path)
    )
    if errors:
        lines = [
            f"  {'.'.join(str(p) for p in e.absolute_path) or '(top level)'}: {e.message}"
            for e in errors
        ]
        raise ValueError("invalid config:\n" + "\n".join(lines))


check_config(config, Path(workflow.basedir) / "schemas" / "config.schema.yaml")
validate(config, schema="../schemas/config.schema.yaml")

# Rules call the `twostream` CLI of the environment that runs Snakemake.
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]
# HDF5 file locking fails on many network file systems (NFS, Lustre): our
# writers never share a file, so locking is not needed.
os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")

import twostream

# the installed package (editable install: src/twostream)
SRC = Path(twostream.__file__).parent

# Source files each stage runs: editing them reruns that stage (and what depends on it).
STAGE_CODE = {
    "synthesize": ["datasets/synthetic.py", "config.py", "errors.py", "store.py"],
    "index": ["datasets", "video.py", "index.py"],
    "decode": ["decode.py", "video.py", "store.py", "index.py", "config.py"],
    "flow": ["flow", "store.py"],
    "train": [
        "train.py",
        "data.py",
        "models/__init__.py",
        "models/resnet.py",
        "models/streams.py",
        "store.py",
    ],
    "evaluate": ["evaluate.py", "data.py", "models", "store.py"],
    "fusion": ["fusion_train.py", "train.py", "data.py", "models", "store.py"],
    "ablation": ["ablation.py"],
    "visualize": ["visualize", "models", "data.py", "store.py"],
    "plots": ["plots.py"],
}


def code_hash(stage):
    """Short hash of the source files a stage runs (a plain str param)."""
    h = hashlib.sha1()
    for rel in STAGE_CODE[stage]:
        p = SRC / rel
        files = sorted(p.rglob("*.py")) if p.is_dir() else [p]
        for f in files:
            if f.exists():
                h.update(str(f.relative_to(SRC)).encode())
                h.update(f.read_bytes())
    return h.hexdigest()[:12]


def section(name):
    """A config section as a canonical JSON string: a plain, repr-comparable param."""
    return json.dumps(config.get(name, {}), sort_keys=True)


def shards():
    return [f"shard-{i:03d}" for i in range(int(config["decode"]["shards"]))]


wildcard_constraints:
    shard=r"shard-\d{3}",
    stream=r"rgb|flow",


def trained_models():
    """Every model with a checkpoint: the two streams, then the fusion grid's cells."""
    models = ["rgb", "flow"]
    if "fusion_models" in globals():
        models += fusion_models()
    return models


def all_targets():
    targets = expand("results/flow/{shard}.h5", shard=shards())
    targets += ["results/frames/bad_videos.csv"]
    targets += ["results/plots/training_curves.png", "results/plots/flow_examples.png"]
    targets += [
        "results/ablation/accuracy.csv",
        "results/ablation/findings.md",
        "results/visualization/summary.csv",
        "results/visualization/verification.csv",
    ]
    return targets
