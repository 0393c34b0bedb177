"""Helpers shared by the dataset adapters."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import pandas as pd

from ..errors import InputError
from ..index import INDEX_COLUMNS


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, stripped line) of the non-blank lines of a text file."""
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file") from None
    except OSError as e:
        raise InputError(f"{path}: unreadable ({e.strerror or e})") from None
    for i, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line:
            yield i, line


# system files that are never videos (compared in lower case); and every name starting with "."
# (hidden files and folders, macOS AppleDouble "._*" files, .DS_Store)
SYSTEM_NAMES = frozenset({"thumbs.db", "desktop.ini", "__macosx", "$recycle.bin", "system volume information"})


def is_hidden(name: str) -> bool:
    """Hidden or system file or folder: never a video, a class or a split list."""
    return name.startswith(".") or name.lower() in SYSTEM_NAMES


def check_listed(path: Path, lineno: int, rel: str) -> None:
    """A split-list line must not name a hidden or system file."""
    parts = [p for p in rel.replace("\\", "/").split("/") if p]
    if any(is_hidden(p) for p in parts):
        raise InputError(f"{path}:{lineno}: {rel!r} is a hidden or system file, never a video")


def check_split_file(path: Path, lines: list) -> None:
    if not lines:
        raise InputError(f"{path}: split list is empty")


# Snakemake reads "{...}" in a file name as a wildcard (WildcardError); it cannot carry them
SNAKEMAKE_UNSAFE = re.compile(r"[{}]")


def check_exist(df: pd.DataFrame, root: Path) -> None:
    """Every listed video exists under ``root``; duplicates are an error."""
    dup = df[df["video_id"].duplicated(keep=False)]
    if len(dup):
        first = dup.iloc[0]
        where = sorted(dup[dup["video_id"] == first.video_id]["listed_in"])
        raise InputError(f"video {first.video_id!r} is listed more than once ({', '.join(where)})")
    missing = [r for r in df.itertuples() if not (root / r.rel).is_file()]
    if missing:
        m = missing[0]
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise InputError(f"{root / m.rel}: listed video does not exist (listed in {m.listed_in}){more}")


def finish_index(df: pd.DataFrame, root: Path, lists: dict[str, str] | None = None) -> pd.DataFrame:
    """Index columns in order, paths joined to ``root``, rows sorted by split (train, val, test) then video_id.

    ``lists`` names, per split, what lists its videos (a split file, a folder), for the
    error when a split has no video.
    """
    if df.empty:
        raise InputError(f"{root}: the split lists no videos")
    for split in ("train", "test"):
        if not (df["split"] == split).any():
            where = (lists or {}).get(split, str(root))
            raise InputError(f"{where}: split has no {split} videos (training needs both train and test videos)")
    df = df.copy()
    df["path"] = [str(root / rel) for rel in df["rel"]]
    for p in df["path"]:
        if SNAKEMAKE_UNSAFE.search(p):
            raise InputError(
                f"{p}: '{{' or '}}' in the path; Snakemake reads them as wildcards and cannot use this file "
                "(rename it)"
            )
    return sort_index(df[INDEX_COLUMNS])


SPLIT_ORDER = {"train": 0, "val": 1, "test": 2}


def sort_index(df: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by split (train, val, test) then video_id; a fresh 0..n-1 index."""
    order = df["split"].map(SPLIT_ORDER).fillna(len(SPLIT_ORDER))
    return df.assign(_o=order).sort_values(["_o", "video_id"], kind="stable").drop(columns="_o").reset_index(drop=True)
