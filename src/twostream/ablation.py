"""The fusion ablation table: every evaluated model in one table, two figures and findings.

``twostream ablation`` (rule ``ablation_table``) reads, for each model name given,

* ``<eval-root>/<model>/scores.h5``  per-video class scores and labels (evaluate stage),
* ``<eval-root>/<model>/metrics.json`` top-1 and mean class accuracy (evaluate stage),
* ``<models-root>/<model>/history.csv`` training seconds per epoch (``seconds`` column),
* ``<models-root>/<model>/checkpoint.pt`` the weights (for the parameter count),

plus the dataset's ``classes.csv`` (label, class_name, group and generating factors), and writes
``<out>/accuracy.csv``, ``heatmap.png``, ``groups.png`` and ``findings.md``.

Model names: ``rgb`` and ``flow`` (single streams) and ``fusion-{method}-{position}-s{seed}``.

accuracy.csv has one row per model: ``model, method, position, seed, parameters,
train_seconds, top1, mean_class_acc``, then ``acc_<group>`` for every class group of
classes.csv, and for the spatiotemporal group the accuracy of each generating factor
(``st_moving_colour`` = "which colour moves": the predicted class has the true class's
moving colour; ``st_direction``). Accuracies are fractions in [0, 1]. ``train_seconds``
is the model's own training (fine-tuning for fused networks; 0 for late fusion, which
trains nothing).
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from .config import add_params_arguments, from_dict, section_from_args
from .errors import InputError
from .store import atomic_path, checked_read

MODEL_RE = re.compile(r"^fusion-(?P<method>[a-z0-9_]+)-(?P<position>[a-z0-9_+]+)-s(?P<seed>\d+)$")
ST_GROUP = "spatiotemporal"
ST_FACTORS = ("moving_colour", "direction")
STREAM_LABELS = {"rgb": "appearance stream", "flow": "motion stream"}
NO_CLASSES = pd.DataFrame({"label": pd.Series([], dtype=int), "class_name": pd.Series([], dtype=str),
                           "group": pd.Series([], dtype=str)})


@dataclass
class TableConfig:
    solved: float = 0.9  # a group counts as solved at this accuracy
    chance_margin: float = 0.15  # "near chance": within this of chance


def parse_model(name: str) -> dict:
    """method, position, seed of a model directory name."""
    if name in STREAM_LABELS:
        return {"method": name, "position": "-", "seed": 0}
    m = MODEL_RE.match(name)
    if not m:
        raise InputError(f"{name}: not a model name of the grid (rgb, flow or fusion-<method>-<position>-s<seed>)")
    return {"method": m["method"], "position": m["position"], "seed": int(m["seed"])}


def read_scores(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(scores (N, K), labels (N,)) of an evaluate stage's scores.h5."""
    if not path.exists():
        raise InputError(f"{path}: scores file not found")
    with checked_read(path), h5py.File(path, "r") as f:
        if "scores" not in f or not ("labels" in f or "label" in f):
            raise InputError(f"{path}: not a scores file with /scores and /labels")
        scores = np.asarray(f["scores"][()], dtype=np.float64)
        key = "labels" if "labels" in f else "label"
        labels = np.asarray(f[key][()], dtype=np.int64)
    if scores.ndim != 2 or len(scores) != len(labels):
        raise InputError(f"{path}: /scores {scores.shape} and /labels {labels.shape} do not match")
    return scores, labels


def read_classes(path: Path) -> pd.DataFrame:
    if not Path(path).exists():
        raise InputError(f"{path}: classes file not found")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    for col in ("label", "class_name", "group"):
        if col not in df:
            raise InputError(f"{path}: classes file lacks column {col!r}")
    df["label"] = df["label"].astype(int)
    return df.sort_values("label").reset_index(drop=True)


def group_accuracies(scores: np.ndarray, labels: np.ndarray, classes: pd.DataFrame) -> dict[str, float]:
    """acc_<group> for every group, and st_<factor> for the spatiotemporal group's factors.

    ``scores`` (videos, classes): a group's accuracy is *within the group* — the argmax over
    that group's classes only ("can the model tell this group's classes apart"), so a
    motion-only model is not charged for confusing "grey disc moves left" with "red disc
    moves left", which flow alone cannot separate; chance is 1 / classes in the group.
    ``scores`` may also be 1-D predicted labels (argmax over all classes).
    """
    out: dict[str, float] = {}
    by_label = classes.set_index("label")
    known = np.isin(labels, by_label.index)
    labels_k = labels[known]
    group_of = by_label["group"].reindex(labels_k).to_numpy()
    scores_k = scores[known]

    def predict(sel: np.ndarray, group_labels: np.ndarray) -> np.ndarray:
        if scores_k.ndim == 1:
            return scores_k[sel]
        cols = np.asarray(group_labels, dtype=int)
        return cols[scores_k[sel][:, cols].argmax(axis=1)]

    for g in classes["group"].drop_duplicates():
        sel = group_of == g
        members = classes.loc[classes["group"] == g, "label"].to_numpy()
        out[f"acc_{g}"] = float(np.mean(predict(sel, members) == labels_k[sel])) if sel.any() else float("nan")
    st = group_of == ST_GROUP
    if st.any():
        guess_labels = predict(st, classes.loc[classes["group"] == ST_GROUP, "label"].to_numpy())
        for factor in ST_FACTORS:
            if factor not in classes:
                continue
            truth = by_label[factor].reindex(labels_k[st]).to_numpy()
            guess = by_label[factor].reindex(guess_labels).to_numpy()  # NaN for unknown labels
            out[f"st_{factor}"] = float(np.mean(truth == guess))
    return out


def chance_levels(classes: pd.DataFrame) -> dict[str, float]:
    """Chance accuracy of each column (1 / classes in the group; 1 / factor values)."""
    out = {f"acc_{g}": 1.0 / n for g, n in classes.groupby("group", sort=False).size().items()}
    st = classes[classes["group"] == ST_GROUP]
    for factor in ST_FACTORS:
        if factor in st and len(st):
            out[f"st_{factor}"] = 1.0 / st[factor].nunique()
    return out


def count_parameters(path: Path) -> int:
    """Parameters of a checkpoint's model (state_dict tensors that are not BN statistics)."""
    from .models import read_checkpoint

    state = read_checkpoint(path)["model"]
    skip = ("running_mean", "running_var", "num_batches_tracked")
    return int(sum(v.numel() for k, v in state.items() if not k.endswith(skip)))


def train_seconds(path: Path) -> float:
    if not path.exists():
        raise InputError(f"{path}: training history not found")
    h = pd.read_csv(path)
    if "seconds" not in h:
        raise InputError(f"{path}: history lacks column 'seconds'")
    return float(h["seconds"].sum()) if len(h) else 0.0


def model_row(name: str, eval_dir: Path, model_dir: Path, classes: pd.DataFrame) -> dict:
    row = {"model": name, **parse_model(name)}
    row["parameters"] = count_parameters(model_dir / "checkpoint.pt")
    row["train_seconds"] = round(train_seconds(model_dir / "history.csv"), 2)
    scores, labels = read_scores(eval_dir / "scores.h5")
    pred = scores.argmax(axis=1)
    row["top1"] = float(np.mean(pred == labels))
    per_class = [np.mean(pred[labels == c] == c) for c in np.unique(labels)]
    row["mean_class_acc"] = float(np.mean(per_class))
    row.update(group_accuracies(scores, labels, classes))
    return row


def build_table(models: list[str], eval_root: Path, models_root: Path, classes: pd.DataFrame) -> pd.DataFrame:
    rows = [model_row(m, Path(eval_root) / m, Path(models_root) / m, classes) for m in models]
    df = pd.DataFrame(rows)
    df["_f"] = df["method"].map(family).map(FAMILY_ORDER)
    df["_s"] = df["method"].map({"rgb": 0, "flow": 1}).fillna(2)
    df = df.sort_values(["_f", "_s", "method", "position", "seed"], kind="stable").drop(columns=["_f", "_s"])
    return df.reset_index(drop=True)


# --------------------------------------------------------------------------- summaries
FAMILY_ORDER = {"stream": 0, "late": 1, "spatial": 2, "cross": 3}


def family(method: str) -> str:
    if method in STREAM_LABELS:
        return "stream"
    if method.startswith("late_"):
        return "late"
    if method.startswith("st_"):
        return "cross"
    return "spatial"


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread (max - min) over seeds of every accuracy, per method and position."""
    acc = [c for c in table if c in ("top1", "mean_class_acc") or c.startswith(("acc_", "st_"))]
    g = table.groupby(["method", "position"], sort=False)[acc]
    mean = g.mean()
    spread = g.max() - g.min()
    out = mean.join(spread.add_suffix("_spread"))
    out["seeds"] = g.size()
    return out.reset_index()


def best_spatial(summary: pd.DataFrame) -> pd.Series | None:
    sp = summary[summary["method"].map(family) == "spatial"]
    if not len(sp):
        return None
    col = f"acc_{ST_GROUP}" if f"acc_{ST_GROUP}" in sp else "top1"
    return sp.sort_values([col, "top1"], ascending=False).iloc[0]


def label_of(method: str, position: str) -> str:
    if method in STREAM_LABELS:
        return STREAM_LABELS[method]
    if method.startswith("late_"):
        return {"late_mean": "late fusion (softmax mean)", "late_weighted": "late fusion (weighted)",
                "late_geometric": "late fusion (geometric mean)"}.get(method, method)
    if position.endswith("+fc"):  # the motion tower kept to its classifier ("ReLU5 + FC8")
        return f"{method} fusion after {position.removesuffix('+fc')} + motion scores"
    return f"{method} fusion after {position}"


def _pct(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{100 * x:.1f}%"


def findings(table: pd.DataFrame, classes: pd.DataFrame, cfg: TableConfig) -> str:
    """Plain-words findings, written from the numbers of the table."""
    summary = summarise(table)
    chance = chance_levels(classes)
    groups = list(classes["group"].drop_duplicates())
    lines = ["# Fusion ablation: findings", ""]
    lines.append(
        f"Written by `twostream ablation` from results/ablation/accuracy.csv ({len(table)} models, "
        f"{summary.shape[0]} method/position cells). A group counts as *solved* at >= {_pct(cfg.solved)} "
        f"accuracy; *near chance* means within {_pct(cfg.chance_margin)} of chance. Values are means over seeds."
    )
    lines.append("")
    lines.append("## Which fusion solved which group")
    lines.append("")
    if not groups:
        lines.append("- No classes.csv with class groups was given: only overall accuracies are compared.")
    for g in groups:
        col = f"acc_{g}"
        solved = summary[summary[col] >= cfg.solved].sort_values(col, ascending=False)
        names = [f"{label_of(r.method, r.position)} ({_pct(r[col])})" for _, r in solved.iterrows()]
        n_cls = int((classes["group"] == g).sum())
        head = f"- **{g}** ({n_cls} classes, chance {_pct(chance[col])}): "
        lines.append(head + ("solved by " + ", ".join(names) + "." if names else "solved by no model."))
    lines.append("")
    st_col, colour_col = f"acc_{ST_GROUP}", f"st_{ST_FACTORS[0]}"
    if st_col in summary:
        lines.append("## Spatiotemporal group: where the streams meet")
        lines.append("")
        lines += _st_statements(summary, chance, cfg)
        lines.append("")
    lines.append("## All models (mean over seeds)")
    lines.append("")
    extra = [c for c in (colour_col, f"st_{ST_FACTORS[1]}") if c in summary]
    heads = ["top-1"] + groups + [{"st_moving_colour": "which colour moves", "st_direction": "ST direction"}[c]
                                  for c in extra]
    lines.append("| model | seeds | " + " | ".join(heads) + " |")
    lines.append("|---|---|" + "---|" * len(heads))
    order = summary.assign(_f=summary["method"].map(family).map(FAMILY_ORDER),
                           _s=summary["method"].map({"rgb": 0, "flow": 1}).fillna(2))
    order = order.sort_values(["_f", "_s", "method", "position"])
    for _, r in order.iterrows():
        cells = [_pct(r["top1"])] + [_pct(r[f"acc_{g}"]) for g in groups] + [_pct(r[c]) for c in extra]
        lines.append(f"| {label_of(r.method, r.position)} | {int(r.seeds)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _st_statements(summary: pd.DataFrame, chance: dict, cfg: TableConfig) -> list[str]:
    st_col, colour_col = f"acc_{ST_GROUP}", f"st_{ST_FACTORS[0]}"
    out = []
    fam = summary["method"].map(family)

    def near_chance(v: float, col: str) -> bool:
        return abs(v - chance.get(col, 0.0)) <= cfg.chance_margin

    for _, r in summary[fam.isin(["stream", "late"])].iterrows():
        words = f"- {label_of(r.method, r.position)}: {_pct(r[st_col])} on the spatiotemporal group"
        if colour_col in summary:
            c = r[colour_col]
            verdict = ("near chance" if near_chance(c, colour_col)
                       else "solved" if c >= cfg.solved else "above chance but not solved")
            words += f", {_pct(c)} on which colour moves (chance {_pct(chance[colour_col])}: {verdict})"
        out.append(words + ".")
    sp = summary[fam == "spatial"]
    for method, rows in sp.groupby("method", sort=False):
        solved = rows[rows[st_col] >= cfg.solved]
        failed = rows[rows[st_col] < cfg.solved]
        text = f"- {method} fusion: "
        parts = []
        if len(solved):
            parts.append("solves the spatiotemporal group after " + ", ".join(
                f"{p} ({_pct(v)})" for p, v in zip(solved.position, solved[st_col])))
        if len(failed):
            parts.append("does not after " + ", ".join(
                f"{p} ({_pct(v)})" for p, v in zip(failed.position, failed[st_col])))
        out.append(text + "; ".join(parts) + ".")
    for _, r in summary[fam == "cross"].iterrows():
        out.append(f"- {label_of(r.method, r.position)}: {_pct(r[st_col])} on the spatiotemporal group.")
    best = best_spatial(summary)
    pool = sp[sp["position"] == "pool"]
    if best is not None and best[st_col] >= cfg.solved and len(pool):
        out.append(
            f"- So fusion must happen where the streams still have spatial maps: the best spatial fusion "
            f"({label_of(best.method, best.position)}) reaches {_pct(best[st_col])}, fusion after global "
            f"pooling at most {_pct(pool[st_col].max())}."
        )
    return out


# --------------------------------------------------------------------------- figures
def position_order(positions) -> list[str]:
    from .models.resnet import STAGES

    def key(p: str):
        first = p.split("+")[0]
        return (STAGES.index(first) if first in STAGES else len(STAGES), p.count("+"), p)

    return sorted(set(positions), key=key)


def plot_heatmap(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    fused = table[table["method"].map(family) != "stream"]
    grid = fused.groupby(["method", "position"])["top1"].mean().unstack("position")
    grid = grid.reindex(columns=position_order(grid.columns)) * 100 if len(grid) else grid
    fig, ax = plt.subplots(figsize=(3.5 + 1.1 * max(len(grid.columns), 1), 1.6 + 0.5 * max(len(grid), 1)))
    if len(grid):
        sns.heatmap(grid, annot=True, fmt=".1f", cmap="viridis", vmin=0, vmax=100, ax=ax,
                    cbar_kws={"label": "top-1 (%)"})
        ax.tick_params(axis="y", labelrotation=0)
        ax.tick_params(axis="x", labelrotation=30)
    ax.set_title("top-1 (%), mean over seeds", fontsize=10)
    ax.set_xlabel("fusion after stage")
    ax.set_ylabel("method")
    fig.tight_layout()
    _save(fig, path)


def plot_groups(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    summary = summarise(table)
    keep = {(m, "-") for m in STREAM_LABELS} | {
        (m, p) for m, p in zip(summary.method, summary.position) if family(m) == "late"}
    best = best_spatial(summary)
    if best is not None:
        keep.add((best.method, best.position))
    sel = table[[(m, p) in keep for m, p in zip(table.method, table.position)]].copy()
    cols = [c for c in table if c.startswith("acc_")] + [c for c in table if c.startswith("st_")]
    sel["model"] = [label_of(m, p) for m, p in zip(sel.method, sel.position)]
    long = sel.melt(id_vars=["model", "seed"], value_vars=cols, var_name="measure", value_name="accuracy")
    long["measure"] = long["measure"].map(
        lambda c: c.removeprefix("acc_") + " group" if c.startswith("acc_") else "ST: " + c[3:].replace("_", " "))
    long["accuracy"] *= 100
    fig, ax = plt.subplots(figsize=(5 + 1.6 * len(cols), 4.5))
    if len(long):
        sns.barplot(data=long, x="measure", y="accuracy", hue="model", errorbar=("pi", 100), capsize=0.1, ax=ax)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_ylim(0, 100)
    ax.set_ylabel("accuracy (%)\nbars: mean, whiskers: min..max over seeds")
    ax.set_xlabel("")
    ax.set_title("per-group accuracy: single streams, late fusion, best spatial fusion")
    fig.tight_layout()
    _save(fig, path)


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


# --------------------------------------------------------------------------- CLI
def add_arguments(p: argparse.ArgumentParser) -> None:
    add_params_arguments(p)
    p.add_argument("--models", nargs="+", required=True, help="model names (rgb, flow, fusion-...)")
    p.add_argument("--eval-root", default="results/eval", help="folder of <model>/scores.h5 (default %(default)s)")
    p.add_argument("--models-root", default="results/models",
                   help="folder of <model>/checkpoint.pt and history.csv (default %(default)s)")
    p.add_argument("--classes", default="",
                   help="the dataset's classes.csv (label, class_name, group, factors); without it no group columns")
    p.add_argument("--out", default="results/ablation", help="output folder (default %(default)s)")


def table_config(args: argparse.Namespace) -> TableConfig:
    """``--params`` holds the ``fusion.table`` section; ``--config`` the whole file."""
    d = section_from_args(args, "fusion")
    if getattr(args, "config", None):
        d = d.get("table") or {}
    return from_dict(TableConfig, d, "fusion.table")


def run(args: argparse.Namespace) -> int:
    cfg = table_config(args)
    classes = read_classes(Path(args.classes)) if args.classes else NO_CLASSES
    table = build_table(list(dict.fromkeys(args.models)), Path(args.eval_root), Path(args.models_root), classes)
    out = Path(args.out)
    with atomic_path(out / "accuracy.csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    plot_heatmap(table, out / "heatmap.png")
    plot_groups(table, out / "groups.png")
    with atomic_path(out / "findings.md") as tmp:
        tmp.write_text(findings(table, classes, cfg))
    print(f"ablation: {len(table)} models -> {out}")
    return 0
