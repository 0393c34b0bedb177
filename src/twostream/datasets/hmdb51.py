"""HMDB51 adapter: one ``<class>_test_split<k>.txt`` per class and split (k = 1..3).

Layout::

    <root>/<class>/<video>.avi
    <splits_dir>/<class>_test_split1.txt    "<video>.avi 1"   (1 = train, 2 = test, 0 = unused)

Videos tagged 0 are left out of the index. Labels are the classes in sorted order.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import InputError
from ._common import check_exist, check_listed, check_split_file, finish_index, is_hidden, read_lines

TAGS = {"1": "train", "2": "test"}


def build(root: Path, split: int, splits_dir: Path | None = None) -> pd.DataFrame:
    splits_dir = splits_dir or root
    if split not in (1, 2, 3):
        raise InputError(f"HMDB51 has splits 1, 2, 3; got split {split}")
    if not splits_dir.is_dir():
        raise InputError(f"{splits_dir}: split folder does not exist")
    suffix = f"_test_split{split}.txt"
    files = sorted(p for p in splits_dir.iterdir() if p.name.endswith(suffix) and p.is_file() and not is_hidden(p.name))
    if not files:
        raise InputError(f"{splits_dir}: no HMDB51 split files '<class>{suffix}'")
    classes = {p.name[: -len(suffix)]: i for i, p in enumerate(files)}
    if root.is_dir():
        folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not is_hidden(p.name))
        unlisted = [c for c in folders if c not in classes and any(q.is_file() for q in (root / c).iterdir())]
        if unlisted:
            raise InputError(
                f"{root / unlisted[0]}: class folder has no split file {unlisted[0]}{suffix} in {splits_dir}"
                + (f" ({len(unlisted) - 1} more such folders)" if len(unlisted) > 1 else "")
            )
    rows = []
    for path in files:
        class_name = path.name[: -len(suffix)]
        if not (root / class_name).is_dir():
            raise InputError(f"{path}: unknown class {class_name!r}: no folder {root / class_name}")
        lines = list(read_lines(path))
        check_split_file(path, lines)
        for lineno, line in lines:
            parts = line.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise InputError(f"{path}:{lineno}: expected '<video>.avi <0|1|2>', got {line!r}")
            if parts[1] == "0":
                continue
            name = parts[0]
            check_listed(path, lineno, name)
            rows.append(
                {
                    "video_id": f"{class_name}/{Path(name).stem}",
                    "rel": f"{class_name}/{name}",
                    "label": classes[class_name],
                    "class_name": class_name,
                    "split": TAGS[parts[1]],
                    "listed_in": f"{path}:{lineno}",
                }
            )
    df = pd.DataFrame(rows, columns=["video_id", "rel", "label", "class_name", "split", "listed_in"])
    check_exist(df, root)
    where = f"{splits_dir}/*{suffix}"
    return finish_index(df, root, {"train": where, "test": where})
