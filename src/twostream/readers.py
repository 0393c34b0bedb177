"""One reader for each results file that several stages read.

* ``read_classes(path)``: the dataset's ``classes.csv`` (written by ``twostream synth`` and
  the dataset adapters): one row per class with ``label``, ``class_name``, ``group`` and the
  generating factors, as strings (``label`` an int), sorted by label.
* ``read_scores(path)``: an evaluate stage's ``scores.h5`` (test split) or ``val_scores.h5``
  (validation split; names per split: ``SCORE_FILES``): ``scores`` (videos, classes),
  ``logits``, ``labels``, ``video_id``, ``class_names`` and the file's attributes.
* ``read_probes(path)``: the findings' probe clips ``results/findings/probes.h5`` (written by
  ``twostream findings --render-probes``; layout in ``analysis/probes.py``): ``index``,
  ``frames``, ``frame_index``, ``flow``, ``field_index``, ``bound``, ``n_frames``, ``params``.

Errors are one line naming the file (:class:`~twostream.errors.InputError`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from .errors import InputError
from .store import checked_read, read_params

CLASS_COLUMNS = ("label", "class_name", "group")
# the evaluate stage's files in results/eval/<model>/, per split (test: the final tables; val: choosing)
SCORE_FILES = {"test": ("scores.h5", "metrics.json"), "val": ("val_scores.h5", "val_metrics.json")}


def read_classes(path: str | Path) -> pd.DataFrame:
    """classes.csv as strings (missing values ""), ``label`` as int, sorted by label."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: classes file not found")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as e:  # noqa: BLE001 - pandas raises many kinds for a file that is no CSV
        raise InputError(f"{path}: not a readable CSV ({e})") from None
    missing = [c for c in CLASS_COLUMNS if c not in df]
    if missing:
        raise InputError(f"{path}: classes file lacks column(s) {', '.join(missing)} "
                         f"(needs {', '.join(CLASS_COLUMNS)})")
    try:
        df["label"] = df["label"].astype(int)
    except ValueError:
        raise InputError(f"{path}: column 'label' holds a value that is not an integer") from None
    return df.sort_values("label").reset_index(drop=True)


def read_scores(path: str | Path) -> dict[str, Any]:
    """scores.h5: {scores, logits, labels, video_id, class_names, attrs}."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: scores file not found")
    with checked_read(path), h5py.File(path, "r") as f:
        if "scores" not in f or "labels" not in f:
            raise InputError(f"{path}: not a scores file with /scores and /labels")
        out = {
            "scores": np.asarray(f["scores"][()], dtype=np.float64),
            "logits": np.asarray(f["logits"][()]) if "logits" in f else None,
            "labels": np.asarray(f["labels"][()], dtype=np.int64),
            "video_id": [v.decode() for v in f["video_id"][()]] if "video_id" in f else [],
            "class_names": [v.decode() for v in f["class_names"][()]] if "class_names" in f else [],
            "attrs": {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()},
        }
    if out["scores"].ndim != 2 or len(out["scores"]) != len(out["labels"]):
        raise InputError(f"{path}: /scores {out['scores'].shape} and /labels {out['labels'].shape} do not match")
    return out


PROBES_KIND = "findings_probes"  # analysis.probes writes this kind
PROBE_DATASETS = ("index", "frames", "frame_index", "flow", "field_index")


def read_probes(path: str | Path, flow: bool = True) -> dict[str, Any]:
    """probes.h5: {index, frames, frame_index, flow (None unless ``flow``), field_index, bound,
    n_frames, params}."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: probes file not found (rule findings_probes: twostream findings --render-probes)")
    with checked_read(path):
        try:
            f = h5py.File(path, "r")
        except OSError:
            raise InputError(f"{path}: not an HDF5 file (a findings probes file is needed)") from None
        with f:
            missing = [d for d in PROBE_DATASETS if d not in f]
            if f.attrs.get("kind") != PROBES_KIND or missing:
                what = f"lacks /{', /'.join(missing)}" if missing else f"kind {f.attrs.get('kind')!r}"
                raise InputError(f"{path}: not a findings probes file ({what})")
            out = {
                "index": np.asarray(f["index"][()], dtype=np.int64),
                "frames": np.asarray(f["frames"][()]),
                "frame_index": [int(v) for v in f["frame_index"][()]],
                "flow": np.asarray(f["flow"][()]) if flow else None,
                "field_index": [int(v) for v in f["field_index"][()]],
                "bound": float(f.attrs["bound"]),
                "n_frames": int(f.attrs["n_frames"]),
                "params": read_params(f),
            }
    n = len(out["index"])
    if out["index"].shape != (n, 3) or len(out["frames"]) != n or (flow and len(out["flow"]) != n):
        raise InputError(f"{path}: /index, /frames and /flow hold different numbers of clips")
    return out
