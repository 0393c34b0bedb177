"""Dataset adapters -> the video index (``twostream index``).

Every on-disk collection becomes the same table (``twostream.index.INDEX_COLUMNS``:
video_id, path, label, class_name, split); ``path`` is ``dataset.root`` joined
with the video's place under it, so it resolves like ``root`` does (relative to the
working directory unless ``root`` is absolute).

Kinds (``dataset.kind``):
    synthetic   the generated dataset (UCF101 layout, split 1, plus vallist01.txt); adds the
                columns of ``<root>/classes.csv`` (e.g. ``group``) keyed by class_name
    ucf101      classInd.txt + trainlist0k.txt / testlist0k.txt
    hmdb51      <class>_test_split<k>.txt with tags 1 train / 2 test / 0 unused
    folder      <root>/<class>/<video>, a deterministic per-class ratio split

Splits: ``train``, ``val`` and ``test``. The test split is the dataset's own (official lists,
the synthetic test groups, the folder ratio split) and is scored only for the final tables;
``val`` is the synthetic dataset's validation list, or for the real kinds a deterministic
group-wise hold-out of ``dataset.val_ratio`` of the training list (``holdout.py``), on which
per-epoch validation runs and settings are chosen.

``twostream index --params JSON --out results/index.csv`` also writes
``results/index.json`` (the dataset settings and counts) that the decode stage
copies into each shard's provenance.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from ..config import ConfigError, add_params_arguments, from_dict, section_from_args, settings, to_dict
from ..errors import InputError
from ..index import INDEX_COLUMNS, write_index
from . import hmdb51, ucf101
from ._common import sort_index
from .holdout import hold_out

KINDS = ("synthetic", "ucf101", "hmdb51", "folder")


@settings("dataset")
class DatasetConfig:
    """The ``dataset:`` config section."""

    kind: str
    root: str
    split: int
    test_ratio: float
    val_ratio: float  # real kinds: share of the training list held out for validation (holdout.py)
    splits_dir: str  # "" = the split files lie in root



def build_index(
    kind: str,
    root: str | Path,
    split: int = 1,
    test_ratio: float = 0.3,
    splits_dir: str | Path | None = None,
    val_ratio: float = 0.15,
) -> pd.DataFrame:
    """The video index of a dataset on disk (columns INDEX_COLUMNS, plus extras for synthetic);
    splits train, val and test (module doc)."""
    root = Path(root)
    sdir = Path(splits_dir) if splits_dir else None
    if kind in ("synthetic", "ucf101", "hmdb51") and not root.is_dir():
        raise InputError(f"{root}: dataset folder does not exist")
    if kind == "synthetic":
        df = ucf101.build(root, 1, sdir, val_list=True)
        return _add_class_columns(df, (sdir or root) / "classes.csv")
    if kind == "ucf101":
        df = ucf101.build(root, int(split), sdir)
    elif kind == "hmdb51":
        df = hmdb51.build(root, int(split), sdir)
    elif kind == "folder":
        from . import folder  # deferred: folder imports OpenCV; only folder datasets need it

        df = folder.build(root, float(test_ratio))
    else:
        raise ConfigError(f"dataset.kind: {kind!r} is not one of {', '.join(KINDS)}")
    return sort_index(hold_out(df, kind, float(val_ratio)))


def split_files(dataset: dict) -> list[str]:
    """The split files that the index of a ``dataset:`` config section reads (rule inputs).

    Videos are not listed: the index stage checks that they exist.
    """
    root = Path(dataset.get("root", "results/dataset"))
    sdir = Path(dataset.get("splits_dir") or root)
    kind = dataset.get("kind", "synthetic")
    k = int(dataset.get("split", 1))
    if kind == "synthetic":
        return [str(root / n) for n in ("classInd.txt", "trainlist01.txt", "vallist01.txt", "testlist01.txt",
                                        "classes.csv")]
    if kind == "ucf101":
        return [str(sdir / n) for n in ("classInd.txt", f"trainlist{k:02d}.txt", f"testlist{k:02d}.txt")]
    if kind == "hmdb51":
        return sorted(str(p) for p in sdir.glob(f"*_test_split{k}.txt")) if sdir.is_dir() else []
    return []


def _add_class_columns(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Join the per-class columns of ``classes.csv`` (keyed by class_name), if present."""
    if not path.is_file():
        return df
    try:
        classes = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not a readable CSV ({e})") from None
    if "class_name" not in classes:
        raise InputError(f"{path}: lacks a class_name column")
    extra = [c for c in classes.columns if c not in INDEX_COLUMNS]
    unknown = sorted(set(df["class_name"]) - set(classes["class_name"]))
    if unknown:
        raise InputError(f"{path}: no row for class {unknown[0]!r}")
    if not extra:
        return df
    return df.merge(classes[["class_name", *extra]], on="class_name", how="left", validate="many_to_one")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_params_arguments(p)
    p.add_argument("--out", required=True, help="index CSV to write (e.g. results/index.csv)")
    p.add_argument("--meta", help="JSON summary to write (default: --out with suffix .json)")


def run(args: argparse.Namespace) -> int:
    cfg = from_dict(DatasetConfig, section_from_args(args, "dataset"), "dataset")
    from ..store import check_output  # deferred: store imports h5py; the workflow imports this package at start

    for out in (args.out, args.meta or Path(args.out).with_suffix(".json")):  # fail before any work
        check_output(out)
    df = build_index(cfg.kind, cfg.root, cfg.split, cfg.test_ratio, cfg.splits_dir or None, cfg.val_ratio)
    write_index(df, args.out)
    meta = {
        "dataset": to_dict(cfg),
        "n_videos": int(len(df)),
        "n_classes": int(df["label"].nunique()),
        "n_train": int((df["split"] == "train").sum()),
        "n_val": int((df["split"] == "val").sum()),
        "n_test": int((df["split"] == "test").sum()),
    }
    from ..store import atomic_path  # deferred: store imports h5py; the workflow imports this package at start

    with atomic_path(args.meta or Path(args.out).with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    print(
        f"index: {meta['n_videos']} videos, {meta['n_classes']} classes "
        f"({meta['n_train']} train, {meta['n_val']} val, {meta['n_test']} test) -> {args.out}"
    )
    return 0
