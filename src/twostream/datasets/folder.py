"""Generic adapter: a folder of class folders, split per class by a fixed ratio.

Layout::

    <root>/<class>/<any name>.<video extension>

Hidden and system files and folders (names starting with ``.``, including macOS
``._*`` and ``.DS_Store``; ``Thumbs.db``, ``desktop.ini``, ``__MACOSX``) are never
classes or videos. Labels are the class folders in sorted order. Within each class, videos are
ordered by the SHA-1 of their file name and the first ``round(n * test_ratio)``
(at least one when the class has two or more videos, never all of them) go to
``test``: the split is deterministic, independent of the machine, and stable
when videos are added to other classes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from ..errors import InputError
from ..video import is_video_name
from ._common import finish_index, is_hidden


def n_test(n: int, test_ratio: float) -> int:
    if n < 2:
        return 0
    return min(n - 1, max(1, int(round(n * test_ratio))))


def build(root: Path, test_ratio: float) -> pd.DataFrame:
    if not 0 < test_ratio < 1:
        raise InputError(f"test_ratio must lie strictly between 0 and 1, got {test_ratio}")
    if not root.is_dir():
        raise InputError(f"{root}: dataset folder does not exist")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not is_hidden(p.name))
    if not folders:
        raise InputError(f"{root}: no class folders (expected <root>/<class>/<video>)")
    rows = []
    for label, folder in enumerate(folders):
        videos = sorted(
            p.name for p in folder.iterdir() if p.is_file() and is_video_name(p.name) and not is_hidden(p.name)
        )
        if not videos:
            raise InputError(f"{folder}: class folder holds no video files")
        videos.sort(key=lambda name: hashlib.sha1(name.encode()).hexdigest())
        k = n_test(len(videos), test_ratio)
        for i, name in enumerate(videos):
            rows.append(
                {
                    "video_id": f"{folder.name}/{Path(name).stem}",
                    "rel": f"{folder.name}/{name}",
                    "label": label,
                    "class_name": folder.name,
                    "split": "test" if i < k else "train",
                }
            )
    df = pd.DataFrame(rows)
    dup = df[df["video_id"].duplicated()]
    if len(dup):
        raise InputError(f"{root / dup.iloc[0].rel}: two files share the video id {dup.iloc[0].video_id!r}")
    return finish_index(df, root)
