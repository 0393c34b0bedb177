"""Validation hold-out of real datasets: whole groups of the official training list.

Real datasets keep their official test split; settings are chosen on a validation split
taken from the training list, deterministically and group-wise, so that clips of one group
(one actor and scene, one source movie) are never on both sides:

``ucf101``
    the group number ``gGG`` of ``v_<Class>_gGG_cCC`` (UCF101 cuts its own splits the same way:
    a group number holds, in every class, clips of the same actors and scenes). Whole group numbers are
    held out, across all classes.
``hmdb51``
    the source movie: the part of the file name before ``_<class>_`` (e.g.
    ``April_09`` in ``April_09_brush_hair_u_nm_np1_ba_goo_0.avi``); a name without it is its own group.
``folder``
    no groups are known: each class's training videos are held out by themselves (stratified).

Groups are ordered by the SHA-1 of their name and taken in that order until the held-out
videos reach ``round(val_ratio * n)`` of the ``n`` training videos (at least one group, never
all of them). The choice depends on the names only: not on the machine, the file order, or
the test list.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import PurePosixPath

import pandas as pd

from ..errors import InputError

UCF101_GROUP = re.compile(r"^v_.+_g(\d+)_c\d+$")


def _sha1(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()


def ucf101_group(video_id: str) -> str:
    """``Class/v_Class_g08_c01`` -> ``g08``; a name without a group is its own group."""
    stem = PurePosixPath(video_id).name
    m = UCF101_GROUP.match(stem)
    return f"g{int(m.group(1)):02d}" if m else video_id


def hmdb51_group(video_id: str, class_name: str) -> str:
    """``brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0`` -> ``April_09`` (the source movie)."""
    stem = PurePosixPath(video_id).name
    cut = stem.rfind(f"_{class_name}_")
    return stem[:cut] if cut > 0 else video_id


def choose_groups(sizes: dict[str, int], val_ratio: float) -> set[str]:
    """Groups held out: in SHA-1 order until their videos reach round(val_ratio * total);
    at least one group, never all (empty when there is only one group)."""
    if len(sizes) < 2:
        return set()
    want = max(1, int(round(val_ratio * sum(sizes.values()))))
    chosen: set[str] = set()
    held = 0
    for g in sorted(sizes, key=_sha1):
        if held >= want or len(chosen) == len(sizes) - 1:
            break
        chosen.add(g)
        held += sizes[g]
    return chosen


def hold_out(df: pd.DataFrame, kind: str, val_ratio: float) -> pd.DataFrame:
    """Mark a validation split (``split = "val"``) in the training rows of an index table
    (columns video_id, class_name, split, ...); test rows are never touched."""
    if not 0 < val_ratio < 1:
        raise InputError(f"val_ratio must lie strictly between 0 and 1, got {val_ratio}")
    df = df.copy()
    train = df["split"] == "train"
    if kind == "folder":  # stratified: every class holds out its own videos, one video = one group
        val_ids: set[str] = set()
        for _, part in df[train].groupby("class_name", sort=True):
            val_ids |= choose_groups({v: 1 for v in part["video_id"]}, val_ratio)
        df.loc[train & df["video_id"].isin(val_ids), "split"] = "val"
        return df
    if kind == "ucf101":
        groups = df["video_id"].map(ucf101_group)
    elif kind == "hmdb51":
        groups = pd.Series([hmdb51_group(v, c) for v, c in zip(df["video_id"], df["class_name"])], index=df.index)
    else:
        raise InputError(f"no validation hold-out for dataset kind {kind!r}")
    chosen = choose_groups(groups[train].value_counts().to_dict(), val_ratio)
    df.loc[train & groups.isin(chosen), "split"] = "val"
    return df
