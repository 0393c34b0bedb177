"""What each synthetic class should show: its generating factors, read from ``classes.csv``.

The synthetic dataset names the cause of every class (``classes.csv``, read through
``twostream.readers``): an appearance class is a colour, a motion class a direction of
translation, a spatiotemporal class a moving colour, a still colour and a direction.
``read_classes`` turns those rows into ``ClassFactors``, the truth the judges of
``judges.py`` compare optimised inputs with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..readers import read_classes as read_class_table

GROUPS = ("appearance", "motion", "spatiotemporal")


@dataclass
class ClassFactors:
    """The generating factors of one synthetic class (colours RGB in [0, 1])."""

    label: int
    name: str
    group: str
    colour: tuple[float, float, float] | None = None  # the colour that defines the class
    direction: tuple[float, float] | None = None  # unit vector, x right, y down
    moving_colour: tuple[float, float, float] | None = None
    still_colour: tuple[float, float, float] | None = None

    @property
    def colours(self) -> list[tuple[float, float, float]]:
        """Every colour the class's causes explain (the quirk measures' known colours)."""
        return [c for c in (self.colour, self.moving_colour, self.still_colour) if c is not None]


_DIRECTIONS = {
    "right": (1.0, 0.0), "left": (-1.0, 0.0), "down": (0.0, 1.0), "up": (0.0, -1.0),
}


# motions without one direction of translation
_NO_DIRECTION = {"none", "still", "static", "random", "cw", "ccw", "in", "out"}


def _parse_colour(v, where: str) -> tuple[float, float, float] | None:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v == "":
        return None
    if isinstance(v, str):
        s = v.strip().lstrip("#")
        if len(s) == 6 and all(c in "0123456789abcdefABCDEF" for c in s):
            vals = [int(s[i : i + 2], 16) for i in (0, 2, 4)]
        else:
            try:
                vals = [float(t) for t in s.replace(";", " ").replace(",", " ").replace("(", " ").replace(")", " ").split()]
            except ValueError:
                raise InputError(f"{where}: colour {v!r} is not R G B or #rrggbb") from None
    else:
        vals = list(v)
    if len(vals) != 3:
        raise InputError(f"{where}: colour {v!r} needs 3 components")
    arr = np.asarray(vals, dtype=float)
    if arr.max() > 1.0:
        arr = arr / 255.0
    return tuple(float(c) for c in arr)


def _parse_direction(v, where: str) -> tuple[float, float] | None:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v == "":
        return None
    if isinstance(v, str):
        s = v.strip().lower()
        if s in _DIRECTIONS:
            return _DIRECTIONS[s]
        if s in _NO_DIRECTION:
            return None
        try:
            parts = [float(t) for t in s.replace(",", " ").replace(";", " ").split()]
        except ValueError:
            raise InputError(f"{where}: direction {v!r} is not a name, an angle or dx dy") from None
    elif isinstance(v, (int, float)):
        parts = [float(v)]
    else:
        parts = [float(t) for t in v]
    if len(parts) == 1:  # angle in degrees, 0 = right, 90 = down (image y axis)
        a = math.radians(parts[0])
        return (math.cos(a), math.sin(a))
    if len(parts) == 2:
        n = math.hypot(*parts)
        if n == 0:
            return None
        return (parts[0] / n, parts[1] / n)
    raise InputError(f"{where}: direction {v!r} is not a name, an angle or dx dy")


def read_classes(path: str | Path) -> list[ClassFactors]:
    """Read the synthetic dataset's ``classes.csv``.

    Columns used: ``label``, ``class_name``, ``group``, ``direction``
    (left/right/up/down, an angle in degrees or "dx dy"; other motions such as
    rotate/zoom/random have none), ``moving_rgb`` and ``still_rgb`` ("R G B" 0..255).
    The colour of an appearance class is its ``moving_rgb`` (or ``colour_rgb``/``rgb``).
    """
    path = Path(path)
    df = read_class_table(path)
    name_col = "class_name"
    out = []
    for i, row in df.iterrows():
        where = f"{path} row {i + 2}"
        r = {k: (None if v == "" else v) for k, v in row.to_dict().items()}
        group = str(r["group"])
        moving = _parse_colour(r.get("moving_rgb"), where)
        still = _parse_colour(r.get("still_rgb"), where)
        colour = _parse_colour(r.get("colour_rgb", r.get("rgb")), where) or moving
        out.append(
            ClassFactors(
                label=int(r["label"]),
                name=str(r[name_col]),
                group=group,
                colour=colour if group == "appearance" else None,
                direction=_parse_direction(r.get("direction"), where),
                moving_colour=moving if group == "spatiotemporal" else None,
                still_colour=still if group == "spatiotemporal" else None,
            )
        )
    return out


