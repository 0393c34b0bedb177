"""The video index: one table for every dataset (synthetic, UCF101, HMDB51, folder).

Columns (``INDEX_COLUMNS``):
    video_id    class folder / file stem, e.g. ``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01``
    path        path of the encoded video: ``dataset.root`` joined with its place under the
                root (so relative paths resolve from the working directory, like root)
    label       0-based class index
    class_name  class name as in the dataset
    split       ``train``, ``val`` (validation: choosing settings, per-epoch accuracy) or ``test``
                (final tables only); see ``twostream.datasets``
Shards are assigned round-robin over the index sorted by video_id, so every shard
holds a similar mix of classes and sizes.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .errors import InputError

INDEX_COLUMNS = ["video_id", "path", "label", "class_name", "split"]


SHARD_PATTERN = r"shard-\d{3}"  # a shard's name (also the workflow's {shard} wildcard)


def shard_names(n_shards: int) -> list[str]:
    """``shard-000`` .. the names of ``decode.shards`` shards."""
    return [f"shard-{i:03d}" for i in range(int(n_shards))]


def assign_shards(index: pd.DataFrame, n_shards: int) -> pd.Series:
    """Shard name of each row (round-robin over video_id order)."""
    order = index["video_id"].rank(method="first").astype(int) - 1
    names = shard_names(n_shards)
    return order.map(lambda i: names[i % n_shards])


def read_index(path: str | Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, dtype={"video_id": str, "path": str, "class_name": str, "split": str})
    except FileNotFoundError:
        raise InputError(f"{path}: no such index file") from None
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: empty file, not a video index (rerun twostream index)") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
        raise InputError(f"{path}: not a readable video index ({' '.join(str(e).split())})") from None
    except OSError as e:
        raise InputError(f"{path}: unreadable ({e.strerror or e})") from None
    missing = [c for c in INDEX_COLUMNS if c not in df]
    if missing:
        raise InputError(f"{path}: index lacks column(s) {', '.join(missing)}")
    if df.empty:
        raise InputError(f"{path}: the index lists no videos (rerun twostream index)")
    return df


def write_index(df: pd.DataFrame, path: str | Path) -> None:
    from .store import atomic_path  # deferred: store imports h5py; the workflow imports index for shard names at start

    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
