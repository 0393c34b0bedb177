"""Summary figures of the run: training curves of every model and flow examples.

The ablation figures are drawn by ``twostream ablation``, confusion matrices by
``twostream evaluate`` and visualization montages by ``twostream visualize``; this
module draws what spans several stages. Settings (``plots:`` section): ``dpi``,
``style`` (a seaborn style), ``flow_examples`` (number of videos shown).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from .config import add_params_arguments, from_dict, section_from_args, settings
from .errors import InputError
from .store import FlowShard, FrameShard, atomic_path


@settings("plots")
class PlotSettings:
    dpi: int
    style: str
    flow_examples: int


def _pyplot():
    import matplotlib  # deferred: matplotlib is slow to import; only the figures need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: matplotlib is slow to import; only the figures need it

    return plt


def save_figure(fig, path: str | Path, dpi: int) -> None:
    """Write a figure atomically (temporary name, then rename)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
    _pyplot().close(fig)


def read_histories(paths: list[str]) -> pd.DataFrame:
    """All ``history.csv`` files in one long table, with a ``model`` column (the folder name)."""
    frames = []
    for p in paths:
        try:
            df = pd.read_csv(p)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
            raise InputError(f"{p}: cannot read training history ({e})") from None
        if "epoch" not in df:
            raise InputError(f"{p}: training history lacks the 'epoch' column")
        df["model"] = Path(p).parent.name
        frames.append(df)
    if not frames:
        raise InputError("no training history given")
    return pd.concat(frames, ignore_index=True)


def training_curves(histories: pd.DataFrame, out: str | Path, s: PlotSettings) -> None:
    import seaborn as sns  # deferred: matplotlib is slow to import; only the figures need it

    sns.set_theme(style=s.style)
    plt = _pyplot()
    metrics = [c for c in ("loss", "train_acc", "val_acc") if c in histories]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        sns.lineplot(data=histories, x="epoch", y=metric, hue="model", marker="o", ax=ax)
        ax.set_title(metric.replace("_", " "))
        if metric != metrics[-1] and ax.get_legend() is not None:
            ax.get_legend().remove()
    if axes[0][-1].get_legend() is not None:
        sns.move_legend(axes[0][-1], "upper left", bbox_to_anchor=(1, 1), fontsize="small")
    save_figure(fig, out, s.dpi)


def flow_examples(frames_paths, flow_paths, out: str | Path, s: PlotSettings) -> None:
    """One row per video: a frame, its flow as a colour wheel, and the x and y maps.

    Videos come from the given shard pairs in order (a shard may be empty: every video bad)."""
    # deferred: montage imports torch (seconds); only flow_examples needs it
    from .visualize.montage import flow_to_colour

    plt = _pyplot()
    if isinstance(frames_paths, (str, Path)):
        frames_paths, flow_paths = [frames_paths], [flow_paths]
    tables = []
    for i, (fp, op) in enumerate(zip(frames_paths, flow_paths)):
        flow = FlowShard(op)
        tables.append(flow.videos[flow.videos["n_frames"] > 0].assign(shard_pos=i))
    vids = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=["label"])
    # one video per class first, so the examples show different actions
    vids = vids.drop_duplicates("label").head(s.flow_examples)
    if vids.empty:
        raise InputError(f"{', '.join(map(str, flow_paths))}: no video with flow to show")
    shards = {}
    fig, axes = plt.subplots(len(vids), 4, figsize=(10, 2.6 * len(vids)), squeeze=False)
    for row, v in zip(axes, vids.itertuples()):
        if v.shard_pos not in shards:
            shards[v.shard_pos] = FrameShard(frames_paths[v.shard_pos]), FlowShard(flow_paths[v.shard_pos])
        frames, flow = shards[v.shard_pos]
        t = int(v.n_frames) // 2
        img = frames.read(v.video_id, [t])[0]
        f = flow.read(v.video_id, [t])[0]
        lim = max(float(np.abs(f).max()), 1e-3)
        row[0].imshow(img)
        row[0].set_title(f"{v.class_name}  frame {t}", fontsize=8)
        row[1].imshow(flow_to_colour(f))
        row[1].set_title(f"flow {t}→{t + 1}", fontsize=8)
        for ax, ch, name in ((row[2], 0, "x"), (row[3], 1, "y")):
            im = ax.imshow(f[..., ch], cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set_title(f"flow {name} (px/frame)", fontsize=8)
            fig.colorbar(im, ax=ax, fraction=0.046)
        for ax in row:
            ax.set_axis_off()
    save_figure(fig, out, s.dpi)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_params_arguments(p)
    p.add_argument("--histories", nargs="+", required=True, help="history.csv files of trained models")
    p.add_argument("--frames", nargs="+", required=True, help="frames shards (for flow examples)")
    p.add_argument("--flow", nargs="+", required=True, help="the flow shards of the same videos, in the same order")
    p.add_argument("--curves", required=True, help="output PNG: training curves")
    p.add_argument("--flow-examples", required=True, help="output PNG: flow examples")


def run(args: argparse.Namespace) -> int:
    s = from_dict(PlotSettings, section_from_args(args, "plots"), "plots")
    training_curves(read_histories(args.histories), args.curves, s)
    flow_examples(args.frames, args.flow, args.flow_examples, s)
    return 0
