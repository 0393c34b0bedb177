"""Evaluation with the papers' test protocol (``twostream evaluate``), for any model kind.

``twostream evaluate --checkpoint results/models/{model}/checkpoint.pt --frames <shards..>
--flow <shards..> [--classes classes.csv] --out results/eval/{model}/ [--params JSON | --config FILE]``

writes into ``--out``, for the test split (the final tables) and for the validation split
(choosing settings; the same protocol):

* ``scores.h5`` (test), ``val_scores.h5`` (val): ``/scores`` (videos, classes) float32, the
  softmax averaged over the ``frames`` x ``crops`` views of each video; ``/logits`` the averaged logits;
  ``/labels``; ``/video_id``; ``/class_names``; provenance attributes (``params`` =
  this stage's settings, ``split``, ``checkpoint``, ``spec``, ``train_config``, ``versions``).
* ``metrics.json`` (test), ``val_metrics.json`` (val): ``split``, ``top1``, ``top5``, ``mean_class_accuracy``, ``per_class`` accuracy, and
  with a ``classes.csv`` (columns ``label, class_name, group``) ``groups``: for each group
  ``accuracy`` (argmax over all classes), ``within_group_accuracy`` (argmax restricted to the
  group's classes: "can it tell the group's classes apart"), ``chance_within``, ``n_videos``,
  ``classes``.
* ``confusion.png``: the row-normalised confusion matrix of the test split (seaborn).

The model is rebuilt from the checkpoint's ``spec`` by ``twostream.models.load_model`` (a
registry the fusion module extends); its ``data`` entry (``modalities``, ``flow_length``,
``crop_size``) says what inputs to load. Test views: ``frames`` uniformly spaced snippets
(25 by default) x ``crops`` (1 centre crop or 10 crops), see ``twostream.data``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import add_params_arguments, from_dict, section_from_args, settings
from .data import ClipDataset
from .engine import make_loader, predict_videos, setup
from .errors import InputError
from .models import load_model
from .readers import SCORE_FILES, read_classes, read_scores  # noqa: F401  (read_scores: the reader of this stage's output)
from .store import atomic_h5, atomic_path, create_dataset, write_provenance


@settings("evaluate")
class EvalConfig:
    """Settings of the ``evaluate:`` section (see config/README.md)."""

    frames: int
    crops: int
    crop_size: int
    batch_size: int
    workers: int
    amp: bool



def compute_metrics(
    probs: np.ndarray, labels: np.ndarray, class_names: list[str], classes: pd.DataFrame | None = None
) -> dict[str, Any]:
    """Top-1/top-5, mean class accuracy, per-class and per-group accuracy (see module docstring)."""
    labels = np.asarray(labels)
    n_classes = probs.shape[1]
    pred = probs.argmax(1)
    k = min(5, n_classes)
    topk = np.argsort(-probs, axis=1)[:, :k]
    per_class = {}
    for c in range(n_classes):
        sel = labels == c
        if sel.any():
            per_class[class_names[c]] = float((pred[sel] == c).mean())
    m: dict[str, Any] = {
        "n_videos": int(len(labels)), "n_classes": int(n_classes),
        "top1": float((pred == labels).mean()),
        "top5": float((topk == labels[:, None]).any(1).mean()),
        "mean_class_accuracy": float(np.mean(list(per_class.values()))),
        "per_class": per_class,
    }
    if classes is not None:
        groups = {}
        for g, part in classes.groupby("group", sort=True):
            members = sorted(int(x) for x in part["label"] if 0 <= int(x) < n_classes)
            sel = np.isin(labels, members)
            if not members or not sel.any():
                continue
            within = np.asarray(members)[probs[sel][:, members].argmax(1)]
            groups[str(g)] = {
                "accuracy": float((pred[sel] == labels[sel]).mean()),
                "within_group_accuracy": float((within == labels[sel]).mean()),
                "chance_within": 1.0 / len(members),
                "n_videos": int(sel.sum()),
                "classes": [class_names[c] for c in members],
            }
        m["groups"] = groups
    return m


def confusion_matrix(pred: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    cm = np.zeros((n, n), np.int64)
    np.add.at(cm, (labels, pred), 1)
    return cm


def plot_confusion(cm: np.ndarray, class_names: list[str], path: Path, title: str) -> None:
    import matplotlib  # deferred: matplotlib is slow to import; only the figures need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: matplotlib is slow to import; only the figures need it
    import seaborn as sns  # deferred: matplotlib is slow to import; only the figures need it

    rows = cm.sum(1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape, float), where=rows > 0)
    n = len(class_names)
    side = min(4 + 0.35 * n, 30)
    fig, ax = plt.subplots(figsize=(side + 1.5, side))
    small = n <= 20
    sns.heatmap(norm, vmin=0, vmax=1, cmap="viridis", square=True, ax=ax, annot=small, fmt=".2f",
                xticklabels=class_names if n <= 60 else False, yticklabels=class_names if n <= 60 else False,
                cbar_kws={"label": "fraction of the true class"})
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def main(args: argparse.Namespace) -> int:
    cfg = from_dict(EvalConfig, section_from_args(args, "evaluate"), "evaluate")
    device = setup(args.device, args.threads, cfg.workers).device
    model, ckpt = load_model(args.checkpoint, map_location="cpu")
    model.to(device)
    data = ckpt.get("data") or {}
    modalities = tuple(data.get("modalities") or getattr(model, "modalities", ()))
    if not modalities:
        raise InputError(f"{args.checkpoint}: checkpoint does not say which inputs the model takes")
    classes = read_classes(args.classes) if args.classes else None
    name = Path(args.out).name
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for split in ("val", "test"):  # the same protocol on both; test last, as the final figure
        ds = ClipDataset(
            frames=args.frames if "rgb" in modalities else (), flow=args.flow if "flow" in modalities else (),
            modalities=modalities, split=split, mode="test", flow_length=int(data.get("flow_length", 10)),
            crop_size=int(cfg.crop_size or data.get("crop_size", 224)), test_frames=cfg.frames, test_crops=cfg.crops,
        )
        names = list(ckpt.get("class_names") or ds.class_names)
        if len(names) != ds.num_classes and ds.num_classes > len(names):
            raise InputError(f"{args.checkpoint}: model knows {len(names)} classes, the shards have {ds.num_classes}")
        loader = make_loader(ds, cfg.batch_size, cfg.workers, device)
        print(f"twostream evaluate: {args.checkpoint}, {len(ds.videos)} {split} videos x {cfg.frames} frames x "
              f"{cfg.crops} crops, device {device}", file=sys.stderr)
        probs, logits = predict_videos(model, loader, device, amp=cfg.amp)
        labels = ds.labels
        metrics = compute_metrics(probs, labels, names, classes)
        metrics.update({"model": name, "split": split, "checkpoint": str(args.checkpoint), "protocol": asdict(cfg)})
        scores_name, metrics_name = SCORE_FILES[split]
        with atomic_h5(out / scores_name) as f:
            create_dataset(f, "scores", data=probs.astype(np.float32))
            create_dataset(f, "logits", data=logits.astype(np.float32))
            create_dataset(f, "labels", data=labels.astype(np.int32))
            create_dataset(f, "video_id", data=np.array(ds.videos["video_id"].tolist(), dtype=object).astype("S"))
            create_dataset(f, "class_names", data=np.array(names, dtype=object).astype("S"))
            write_provenance(f, "scores", asdict(cfg), model=name, split=split, checkpoint=str(args.checkpoint),
                             spec=json.dumps(ckpt["spec"], sort_keys=True),
                             train_config=json.dumps(ckpt.get("config", {}), sort_keys=True, default=str),
                             modalities=json.dumps(list(modalities)))
        with atomic_path(out / metrics_name) as tmp:
            tmp.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
        print(f"twostream evaluate: {name} {split} top-1 {metrics['top1']:.3f} top-5 {metrics['top5']:.3f} "
              f"mean class {metrics['mean_class_accuracy']:.3f}", file=sys.stderr)
    cm = confusion_matrix(probs.argmax(1), labels, len(names))
    plot_confusion(cm, names, out / "confusion.png", f"{name}: top-1 {metrics['top1']:.1%}")
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="checkpoint.pt of any model kind")
    p.add_argument("--frames", nargs="*", default=[], help="frames shards (for models taking rgb)")
    p.add_argument("--flow", nargs="*", default=[], help="flow shards (for models taking flow)")
    p.add_argument("--classes", default="", help="classes.csv (label,class_name,group) for per-group accuracy")
    p.add_argument("--out", required=True, help="output folder: scores.h5, metrics.json, val_scores.h5, val_metrics.json, confusion.png")
    add_params_arguments(p)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])


def run(args: argparse.Namespace) -> int:
    return main(args)


__all__ = ["EvalConfig", "compute_metrics", "read_classes", "confusion_matrix",
           "plot_confusion", "read_scores", "main"]
