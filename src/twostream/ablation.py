"""The fusion ablation table: every evaluated model in one table, two figures and findings.

``twostream ablation`` (rule ``ablation_table``) reads, for each model name given,

* ``<eval-root>/<model>/scores.h5``  per-video class scores and labels of the test split (evaluate stage),
* ``<eval-root>/<model>/val_scores.h5`` the same for the validation split,
* ``<models-root>/<model>/history.csv`` training seconds per epoch (``seconds`` column),
* ``<models-root>/<model>/checkpoint.pt`` the weights (for the parameter count),

plus the dataset's ``classes.csv`` (label, class_name, group and generating factors), and writes
``<out>/accuracy.csv``, ``heatmap.png``, ``groups.png`` and ``findings.md``.

Model names: ``rgb`` and ``flow`` (single streams) and ``fusion-{method}-{position}-s{seed}``.

accuracy.csv has one row per model and split: ``model, split, method, position, seed, parameters,
train_seconds, top1, mean_class_acc``, then ``acc_<group>`` for every class group of
classes.csv, and for the spatiotemporal group the accuracy of each generating factor
(``st_moving_colour`` = "which colour moves": the predicted class has the true class's
moving colour; ``st_direction``). Accuracies are fractions in [0, 1]. ``train_seconds``
is the model's own training (fine-tuning for fused networks; 0 for late fusion, which
trains nothing). Every accuracy column ``c`` but ``mean_class_acc`` comes with ``n_c`` (the
clips it counts) and ``c_lo``, ``c_hi``: the 95% Wilson score interval. ``split`` is ``val``
(the validation clips: the figures from which settings are chosen) or ``test`` (the final
figures); the figures and findings.md are written from the ``test`` rows only.

Statistics (findings.md): a cell's clips are pooled over its seeds (k correct of n); a
group is *solved* when the accuracy reaches ``solved`` and a binomial test rejects chance
(p < ``alpha``); *near chance* when the test does not reject chance (p >= ``alpha``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from .analysis.stats import LEVEL as CONFIDENCE, binomial_p, wilson
from .config import add_params_arguments, from_dict, section_from_args, settings
from .errors import InputError
from .grid import NO_POSITION, STREAMS, family, parse_model
from .models import read_checkpoint
from .models.resnet import STAGES
from .readers import SCORE_FILES, read_classes, read_scores
from .store import atomic_path

ST_GROUP = "spatiotemporal"
ST_FACTORS = ("moving_colour", "direction")
STREAM_LABELS = {"rgb": "appearance stream", "flow": "motion stream"}
NO_CLASSES = pd.DataFrame({"label": pd.Series([], dtype=int), "class_name": pd.Series([], dtype=str),
                           "group": pd.Series([], dtype=str)})


@settings("fusion.table")
class TableConfig:
    solved: float  # a group counts as solved at this accuracy (and significantly above chance)
    alpha: float  # significance level of the binomial tests against chance




def p_vs_chance(k: int, n: int, chance: float) -> float:
    """Two-sided exact binomial test of k of n against the chance rate (nan when n == 0)."""
    return binomial_p(k, n, chance, alternative="two-sided")


def group_accuracies(scores: np.ndarray, labels: np.ndarray, classes: pd.DataFrame) -> dict[str, float]:
    """acc_<group> for every group, and st_<factor> for the spatiotemporal group's factors."""
    return {c: (k / n if n else float("nan")) for c, (k, n) in group_counts(scores, labels, classes).items()}


def group_counts(scores: np.ndarray, labels: np.ndarray, classes: pd.DataFrame) -> dict[str, tuple[int, int]]:
    """(correct, clips) of acc_<group> for every group and st_<factor> of the spatiotemporal group.

    ``scores`` (videos, classes): a group's accuracy is *within the group* — the argmax over
    that group's classes only ("can the model tell this group's classes apart"), so a
    motion-only model is not charged for confusing "grey disc moves left" with "red disc
    moves left", which flow alone cannot separate; chance is 1 / classes in the group.
    ``scores`` may also be 1-D predicted labels (argmax over all classes).
    """
    out: dict[str, tuple[int, int]] = {}
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
        out[f"acc_{g}"] = (int(np.sum(predict(sel, members) == labels_k[sel])), int(sel.sum()))
    st = group_of == ST_GROUP
    if st.any():
        guess_labels = predict(st, classes.loc[classes["group"] == ST_GROUP, "label"].to_numpy())
        for factor in ST_FACTORS:
            if factor not in classes:
                continue
            truth = by_label[factor].reindex(labels_k[st]).to_numpy()
            guess = by_label[factor].reindex(guess_labels).to_numpy()  # NaN for unknown labels
            out[f"st_{factor}"] = (int(np.sum(truth == guess)), int(st.sum()))
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


SPLITS = ("test", "val")


def model_row(name: str, eval_dir: Path, model_dir: Path, classes: pd.DataFrame, split: str = "test") -> dict:
    row = {"model": name, "split": split, **parse_model(name)._asdict()}
    row["parameters"] = count_parameters(model_dir / "checkpoint.pt")
    row["train_seconds"] = round(train_seconds(model_dir / "history.csv"), 2)
    sc = read_scores(eval_dir / SCORE_FILES[split][0])
    scores, labels = sc["scores"], sc["labels"]
    pred = scores.argmax(axis=1)
    counts = {"top1": (int(np.sum(pred == labels)), len(labels))}
    per_class = [np.mean(pred[labels == c] == c) for c in np.unique(labels)]
    counts.update(group_counts(scores, labels, classes))
    for col, (k, n) in counts.items():
        row[col] = k / n if n else float("nan")
        if col == "top1":
            row["mean_class_acc"] = float(np.mean(per_class))
    for col, (k, n) in counts.items():
        row[f"n_{col}"] = n
        row[f"{col}_lo"], row[f"{col}_hi"] = wilson(k, n)
    return row


def accuracy_columns(table: pd.DataFrame) -> list[str]:
    """The accuracy columns that carry counts and intervals (top1, acc_<group>, st_<factor>)."""
    return [c for c in table if (c == "top1" or c.startswith(("acc_", "st_"))) and f"n_{c}" in table]


def build_table(models: list[str], eval_root: Path, models_root: Path, classes: pd.DataFrame,
                split: str = "test") -> pd.DataFrame:
    """One row per model, scored on ``split`` (``test``: the final figures; ``val``: for choosing)."""
    rows = [model_row(m, Path(eval_root) / m, Path(models_root) / m, classes, split) for m in models]
    df = pd.DataFrame(rows)
    df["_f"] = df["method"].map(family).map(FAMILY_ORDER)
    df["_s"] = df["method"].map({"rgb": 0, "flow": 1}).fillna(2)
    df = df.sort_values(["_f", "_s", "method", "position", "seed"], kind="stable").drop(columns=["_f", "_s"])
    return df.reset_index(drop=True)


# --------------------------------------------------------------------------- summaries
FAMILY_ORDER = {"stream": 0, "late": 1, "spatial": 2, "cross": 3}


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Per method and position: the mean and sd over seeds of every accuracy, and for each
    accuracy column c its clips pooled over seeds: ``k_c`` correct of ``n_c``, with the
    95% Wilson interval ``c_lo``, ``c_hi`` of the pooled rate."""
    cols = accuracy_columns(table)
    acc = [c for c in table if c in ("top1", "mean_class_acc") or c.startswith(("acc_", "st_"))]
    acc = [c for c in acc if not c.endswith(("_lo", "_hi"))]
    t = table.copy()
    for c in cols:
        t[f"k_{c}"] = (t[c] * t[f"n_{c}"]).round().astype(int)
    g = t.groupby(["method", "position"], sort=False)
    out = g[acc].mean().join(g[acc].std(ddof=1).fillna(0.0).add_suffix("_sd"))
    if cols:
        out = out.join(g[[f"k_{c}" for c in cols] + [f"n_{c}" for c in cols]].sum())
        for c in cols:
            lo_hi = [wilson(k, n) for k, n in zip(out[f"k_{c}"], out[f"n_{c}"])]
            out[f"{c}_lo"] = [a for a, _ in lo_hi]
            out[f"{c}_hi"] = [b for _, b in lo_hi]
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
    if family(method) == "late":
        return {"late_mean": "late fusion (softmax mean)", "late_weighted": "late fusion (weighted)",
                "late_geometric": "late fusion (geometric mean)"}.get(method, method)
    if method.startswith("st_"):  # motion -> appearance residual units from these stages' first units
        return f"{method} connections at {position}"
    if position.endswith("+fc"):  # the motion tower kept to its classifier ("ReLU5 + FC8")
        return f"{method} fusion after {position.removesuffix('+fc')} + motion scores"
    return f"{method} fusion after {position}"


def _pct(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{100 * x:.1f}%"


def _with_ci(r: pd.Series, col: str) -> str:
    """'95.0% [91.2, 97.3]' (the pooled Wilson interval), '± sd' over several seeds."""
    text = _pct(r[col])
    if int(r.get("seeds", 1)) > 1 and f"{col}_sd" in r:
        text += f" ± {100 * r[f'{col}_sd']:.1f}"
    if f"{col}_lo" in r and not np.isnan(r[f"{col}_lo"]):
        text += f" [{100 * r[f'{col}_lo']:.1f}, {100 * r[f'{col}_hi']:.1f}]"
    return text


def verdict(r: pd.Series, col: str, chance: float, cfg: TableConfig) -> str:
    """'solved', 'near chance', 'below chance' or 'above chance but not solved', from the
    cell's pooled clips: a binomial test against chance at level cfg.alpha."""
    k, n = int(r[f"k_{col}"]), int(r[f"n_{col}"])
    p = p_vs_chance(k, n, chance)
    if not p < cfg.alpha:
        return "near chance"
    if k / n < chance:
        return "below chance"
    return "solved" if k / n >= cfg.solved else "above chance but not solved"


def findings(table: pd.DataFrame, classes: pd.DataFrame, cfg: TableConfig) -> str:
    """Plain-words findings, written from the numbers of the table."""
    summary = summarise(table)
    chance = chance_levels(classes)
    groups = list(classes["group"].drop_duplicates())
    lines = ["# Fusion ablation: findings", ""]
    lines.append(
        f"Written by `twostream ablation` from the test rows of results/ablation/accuracy.csv ({len(table)} models, "
        f"{summary.shape[0]} method/position cells). Values are means over seeds (± sd where a cell has "
        f"several) with the {CONFIDENCE:.0%} Wilson interval of the cell's test clips pooled over its seeds "
        f"[low, high]. A group counts as *solved* when it reaches {_pct(cfg.solved)} and an exact binomial "
        f"test rejects chance (p < {cfg.alpha:g}); *near chance* when the test does not reject chance."
    )
    lines.append("")
    lines.append("## Which fusion solved which group")
    lines.append("")
    if not groups:
        lines.append("- No classes.csv with class groups was given: only overall accuracies are compared.")
    for g in groups:
        col = f"acc_{g}"
        ok = [verdict(r, col, chance[col], cfg) == "solved" for _, r in summary.iterrows()]
        solved = summary[ok].sort_values(col, ascending=False)
        names = [f"{label_of(r.method, r.position)} ({_with_ci(r, col)})" for _, r in solved.iterrows()]
        n_cls = int((classes["group"] == g).sum())
        n_clips = sorted(set(table[f"n_{col}"].astype(int)))
        head = (f"- **{g}** ({n_cls} classes, chance {_pct(chance[col])}, "
                f"n = {'/'.join(map(str, n_clips))} test clips per model): ")
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
        cells = [_with_ci(r, "top1")] + [_with_ci(r, f"acc_{g}") for g in groups] + [_with_ci(r, c) for c in extra]
        lines.append(f"| {label_of(r.method, r.position)} | {int(r.seeds)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _st_statements(summary: pd.DataFrame, chance: dict, cfg: TableConfig) -> list[str]:
    """Sentences on the spatiotemporal group, each written only when its numbers hold it."""
    st_col, colour_col = f"acc_{ST_GROUP}", f"st_{ST_FACTORS[0]}"
    out = []
    fam = summary["method"].map(family)

    def state(r: pd.Series, col: str) -> str:
        return verdict(r, col, chance[col], cfg)

    for _, r in summary[fam.isin(["stream", "late"])].iterrows():
        words = f"- {label_of(r.method, r.position)}: {_with_ci(r, st_col)} on the spatiotemporal group"
        if colour_col in summary:
            words += (f", {_with_ci(r, colour_col)} on which colour moves (chance {_pct(chance[colour_col])}: "
                      f"{state(r, colour_col)})")
        out.append(words + ".")
    sp = summary[fam == "spatial"]
    for method, rows in sp.groupby("method", sort=False):
        ok = np.array([state(r, st_col) == "solved" for _, r in rows.iterrows()], bool)
        parts = []
        if ok.any():
            parts.append("solves the spatiotemporal group after " + ", ".join(
                f"{r.position} ({_with_ci(r, st_col)})" for _, r in rows[ok].iterrows()))
        if (~ok).any():
            parts.append("does not after " + ", ".join(
                f"{r.position} ({_with_ci(r, st_col)}: {state(r, st_col)})" for _, r in rows[~ok].iterrows()))
        out.append(f"- {method} fusion: " + "; ".join(parts) + ".")
    for _, r in summary[fam == "cross"].iterrows():
        out.append(f"- {label_of(r.method, r.position)}: {_with_ci(r, st_col)} on the spatiotemporal group "
                   f"({state(r, st_col)}).")
    out += _where_to_fuse(summary, chance, cfg)
    return out


def _where_to_fuse(summary: pd.DataFrame, chance: dict, cfg: TableConfig) -> list[str]:
    """The conclusion "fusion must happen where the streams still have spatial maps", written
    only when a cell fused on maps solves the spatiotemporal group, no cell fused after global
    pooling and no late fusion does, and the best map cell's interval lies above theirs."""
    st_col = f"acc_{ST_GROUP}"
    fam = summary["method"].map(family)
    sp = summary[fam == "spatial"]
    maps = sp[sp["position"] != "pool"]
    pooled = pd.concat([sp[sp["position"] == "pool"], summary[fam == "late"]])
    solved = [verdict(r, st_col, chance[st_col], cfg) == "solved" for _, r in maps.iterrows()]
    if not any(solved) or not len(pooled):
        return []
    best = maps[solved].sort_values([st_col, "top1"], ascending=False).iloc[0]
    pooled_solved = [label_of(r.method, r.position) for _, r in pooled.iterrows()
                     if verdict(r, st_col, chance[st_col], cfg) == "solved"]
    if pooled_solved:
        return [f"- Fusion without spatial maps solves the group too ({', '.join(pooled_solved)}): these "
                f"numbers do not show that fusion must happen where the streams still have spatial maps."]
    top = pooled.sort_values(st_col, ascending=False).iloc[0]
    if not best[f"{st_col}_lo"] > top[f"{st_col}_hi"]:
        return [f"- The best fusion on spatial maps ({label_of(best.method, best.position)}, "
                f"{_with_ci(best, st_col)}) and the best fusion without them ({label_of(top.method, top.position)}, "
                f"{_with_ci(top, st_col)}) have overlapping intervals: no conclusion on where to fuse."]
    return [f"- So fusion must happen where the streams still have spatial maps: the best spatial fusion "
            f"({label_of(best.method, best.position)}) reaches {_with_ci(best, st_col)}, fusion after global "
            f"pooling or of the scores at most {_with_ci(top, st_col)} ({label_of(top.method, top.position)}); "
            f"the intervals do not overlap."]


# --------------------------------------------------------------------------- figures
def position_order(positions) -> list[str]:
    def key(p: str):
        first = p.split("+")[0]
        return (STAGES.index(first) if first in STAGES else len(STAGES), p.count("+"), p)

    return sorted(set(positions), key=key)


def plot_heatmap(table: pd.DataFrame, path: Path) -> None:
    import matplotlib  # deferred: matplotlib is slow to import; only the figures need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: matplotlib is slow to import; only the figures need it
    import seaborn as sns  # deferred: matplotlib is slow to import; only the figures need it

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
    import matplotlib  # deferred: matplotlib is slow to import; only the figures need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: matplotlib is slow to import; only the figures need it
    import seaborn as sns  # deferred: matplotlib is slow to import; only the figures need it

    summary = summarise(table)
    keep = {(m, NO_POSITION) for m in STREAMS} | {
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
    import matplotlib.pyplot as plt  # deferred: matplotlib is slow to import; only the figures need it

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


# --------------------------------------------------------------------------- CLI
def add_arguments(p: argparse.ArgumentParser) -> None:
    add_params_arguments(p)
    p.add_argument("--models", nargs="+", required=True, help="model names (rgb, flow, fusion-...)")
    p.add_argument("--eval-root", default="results/eval",
                   help="folder of <model>/scores.h5 and val_scores.h5 (default %(default)s)")
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
    models = list(dict.fromkeys(args.models))
    tables = {s: build_table(models, Path(args.eval_root), Path(args.models_root), classes, s) for s in SPLITS}
    table = tables["test"]  # the reported figures; the val rows are for choosing settings
    out = Path(args.out)
    with atomic_path(out / "accuracy.csv") as tmp:
        pd.concat([tables[s] for s in SPLITS], ignore_index=True).to_csv(tmp, index=False, float_format="%.4f")
    plot_heatmap(table, out / "heatmap.png")
    plot_groups(table, out / "groups.png")
    with atomic_path(out / "findings.md") as tmp:
        tmp.write_text(findings(table, classes, cfg))
    print(f"ablation: {len(table)} models -> {out}")
    return 0
