"""Helpers shared by the dataset adapters."""

from __future__ import annotations

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


def finish_index(df: pd.DataFrame, root: Path) -> pd.DataFrame:
    """Index columns in order, paths joined to ``root``, rows sorted by split then video_id."""
    if df.empty:
        raise InputError(f"{root}: the split lists no videos")
    df = df.copy()
    df["path"] = [str(root / rel) for rel in df["rel"]]
    df = df.sort_values(["split", "video_id"], ascending=[False, True], kind="stable")
    return df[INDEX_COLUMNS].reset_index(drop=True)
