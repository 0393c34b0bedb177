"""UCF101 adapter: ``classInd.txt`` + ``trainlist0k.txt`` / ``testlist0k.txt`` (k = 1..3).

Layout::

    <root>/<ClassName>/v_<ClassName>_gXX_cYY.avi
    <splits_dir>/classInd.txt        "1 ApplyEyeMakeup"            (1-based label, class)
    <splits_dir>/trainlist01.txt     "ApplyEyeMakeup/v_..._g08_c01.avi 1"
    <splits_dir>/testlist01.txt      "ApplyEyeMakeup/v_..._g01_c01.avi"
    <splits_dir>/vallist01.txt       as trainlist01.txt: the synthetic dataset's validation split

The synthetic dataset is written in this layout (split 1 only, plus ``vallist01.txt``) and read by
this adapter. UCF101 itself has no validation list: ``twostream.datasets.holdout`` takes one from the
training list.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import InputError
from ._common import check_exist, check_listed, check_split_file, finish_index, read_lines


def read_class_index(path: Path) -> dict[str, int]:
    """``classInd.txt`` -> {class name: 0-based label}."""
    if not path.is_file():
        raise InputError(f"{path}: missing UCF101 class list (classInd.txt)")
    classes: dict[str, int] = {}
    for lineno, line in read_lines(path):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise InputError(f"{path}:{lineno}: expected '<number> <ClassName>', got {line!r}")
        number, name = int(parts[0]), parts[1]
        if name in classes:
            raise InputError(f"{path}:{lineno}: class {name!r} listed twice")
        classes[name] = number - 1
    if not classes:
        raise InputError(f"{path}: class list is empty")
    if sorted(classes.values()) != list(range(len(classes))):
        raise InputError(f"{path}: class numbers must run 1..{len(classes)} without gaps")
    return classes


def _read_list(path: Path, classes: dict[str, int], split: str) -> list[dict]:
    if not path.is_file():
        raise InputError(f"{path}: missing UCF101 split file")
    rows = []
    lines = list(read_lines(path))
    check_split_file(path, lines)
    for lineno, line in lines:
        parts = line.split()
        if len(parts) not in (1, 2):
            raise InputError(f"{path}:{lineno}: expected '<Class>/<video>.avi [label]', got {line!r}")
        rel = parts[0].replace("\\", "/")
        if "/" not in rel:
            raise InputError(f"{path}:{lineno}: {rel!r} lacks its class folder ('<Class>/<video>.avi')")
        check_listed(path, lineno, rel)
        class_name = rel.split("/", 1)[0]
        if class_name not in classes:
            raise InputError(f"{path}:{lineno}: unknown class {class_name!r} (not in classInd.txt)")
        label = classes[class_name]
        if len(parts) == 2:
            if not parts[1].isdigit() or int(parts[1]) - 1 != label:
                raise InputError(
                    f"{path}:{lineno}: label {parts[1]!r} disagrees with classInd.txt ({class_name} = {label + 1})"
                )
        rows.append(
            {
                "video_id": str(Path(rel).with_suffix("")),
                "rel": rel,
                "label": label,
                "class_name": class_name,
                "split": split,
                "listed_in": f"{path}:{lineno}",
            }
        )
    return rows


def build(root: Path, split: int, splits_dir: Path | None = None, val_list: bool = False) -> pd.DataFrame:
    """The index of split ``split``; ``val_list``: also read ``vallist0k.txt`` (trainlist format) as
    the validation split (the synthetic dataset writes one; UCF101 has none)."""
    splits_dir = splits_dir or root
    if split not in (1, 2, 3):
        raise InputError(f"UCF101 has splits 1, 2, 3; got split {split}")
    classes = read_class_index(splits_dir / "classInd.txt")
    lists = {"train": str(splits_dir / f"trainlist{split:02d}.txt"), "test": str(splits_dir / f"testlist{split:02d}.txt")}
    if val_list:
        lists["val"] = str(splits_dir / f"vallist{split:02d}.txt")
    rows = []
    for name, path in lists.items():
        rows += _read_list(Path(path), classes, name)
    df = pd.DataFrame(rows)
    check_exist(df, root)
    return finish_index(df, root, lists)
