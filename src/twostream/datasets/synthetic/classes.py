"""Class design of the synthetic dataset: its settings, its classes and their causes, and the
split and group layout of its clips (which clip is which, rendered from which seed).

Three groups of classes:

``appearance``
    one textured disc whose colour is the class; it moves in a random direction at a random speed
    (and spins randomly), so motion alone cannot tell these classes apart.
``motion``
    the same grey textured disc for every class; the class is the motion: ``left``, ``right``, ``up``,
    ``down``, ``right_fast`` (the same direction at ``fast_factor`` times the speed), ``rotate_cw``,
    ``rotate_ccw`` and ``zoom_in``.  The disc's texture makes rotation and zoom visible in the flow.
    One frame cannot tell these classes apart: the world is a torus (objects leaving one side enter
    the other), so the position of an object is uniform at every time for every class, the
    orientation is uniform, and the disc's size at any one frame has the same distribution for every
    class (zoom classes grow through the same range of sizes that the other classes are drawn from).
``spatiotemporal``
    two discs with identical silhouette and texture, one red (190, 40, 40) and one blue
    (20, 90, 230) -- colours of equal grey level, so grayscale flow carries no colour -- one moving,
    the other still, positions uniform and independent of which one moves.  The class is (which colour
    moves) x (direction).  A single frame cannot tell which disc moves, the flow cannot tell its colour;
    only features that keep *where* the motion is and *what colour is there* together can.

Splits and groups (:func:`video_table`)
---------------------------------------
Three splits, in groups of clips as UCF101 (``v_<Class>_gGG_cCC``): ``test`` in ``g01`` ..
``g<test_groups>``, ``val`` in the next ``val_groups`` groups, ``train`` in the remaining groups up to
``g<groups>``; a clip's ``cCC`` numbers it inside its group.  Every clip is rendered from its own seed
(:func:`clip_seed`), a function of ``(synthetic.seed, class name, split, index)`` only, so changing the
number of clips or classes leaves every other clip unchanged:

- ``train`` clips: ``SeedSequence([seed, crc32(class), 0, index])``;
- ``val`` clips: ``SeedSequence([seed, crc32(class), 1, index])`` -- the stream that versions before
  the three-way split used for their *test* clips, on which the dataset and the schedules were tuned;
  they are validation clips in effect and are now called so;
- ``test`` clips: ``SeedSequence([seed, crc32(class), 2, index])`` -- a stream no earlier version
  rendered, so no setting was ever chosen by looking at them.  They are scored only for the final
  tables.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from ...config import ConfigError, from_dict, settings

# --------------------------------------------------------------------------- configuration

# Appearance colours (RGB).  Spatiotemporal colours: equal grey level (BT.601 luma, as cv2 gray).
PALETTE: dict[str, tuple[int, int, int]] = {
    "yellow": (215, 195, 40),
    "green": (40, 165, 55),
    "magenta": (200, 55, 195),
    "cyan": (40, 195, 205),
    "orange": (235, 125, 30),
    "white": (235, 235, 235),
    "purple": (120, 60, 180),
    "brown": (130, 85, 45),
    "pink": (245, 150, 180),
    "olive": (128, 128, 20),
}
RED = (190, 40, 40)
BLUE = (20, 90, 230)
OBJECT_GREY = (150, 150, 150)
DISTRACTOR_GREY = (110, 110, 110)

MOTIONS = ("left", "right", "up", "down", "right_fast", "rotate_cw", "rotate_ccw", "zoom_in")
DIRECTIONS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}
GROUPS = ("appearance", "motion", "spatiotemporal")
SPLITS = ("train", "val", "test")
SPLIT_TAGS = {"train": 0, "val": 1, "test": 2}  # the split's entry in every clip's seed (module doc)


@settings("synthetic")
class SyntheticConfig:
    """The ``synthetic:`` config section (defaults and ranges: the schema)."""

    seed: int
    size: int
    frames: int
    fps: float
    fourcc: str
    train_per_class: int
    val_per_class: int
    test_per_class: int
    test_groups: int
    val_groups: int
    groups: int
    appearance_colours: list[str]
    motions: list[str]
    spatiotemporal_directions: list[str]
    radius: float
    radius_jitter: float
    speed: float
    speed_jitter: float
    fast_factor: float
    rotation_speed: float
    zoom_rate: float
    spin: float
    texture_contrast: float
    texture_period: float
    background_contrast: float
    background_detail: float
    background_speed: float
    background_jitter: float
    object_jitter: float
    blur: float
    noise: float
    distractors: int
    distractor_scale: float


def make_config(d: dict | None) -> SyntheticConfig:
    return from_dict(SyntheticConfig, d, "synthetic")


# --------------------------------------------------------------------------- classes and clips


def _camel(s: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in s.split("_"))


def class_table(cfg: SyntheticConfig) -> pd.DataFrame:
    """One row per class: label (0-based), class_name, group and the generating factors."""
    rows = []
    for c in cfg.appearance_colours:
        rows.append(dict(class_name=f"Colour{_camel(c)}", group="appearance", colour=c,
                         motion="random", direction="random", speed=cfg.speed, moving_colour=c,
                         still_colour=""))
    for m in cfg.motions:
        direction = m.split("_")[0] if m.split("_")[0] in DIRECTIONS else ""
        speed = cfg.speed * (cfg.fast_factor if m.endswith("_fast") else 1.0) if direction else 0.0
        kind = "translate" if direction else m.split("_")[0]
        rows.append(dict(class_name=f"Motion{_camel(m)}", group="motion", colour="grey",
                         motion=kind, direction=direction or m.split("_", 1)[1], speed=speed,
                         moving_colour="grey", still_colour=""))
    for col_name, other in (("red", "blue"), ("blue", "red")):
        for d in cfg.spatiotemporal_directions:
            rows.append(dict(class_name=f"{_camel(col_name)}Moves{_camel(d)}", group="spatiotemporal",
                             colour=f"{col_name}+{other}", motion="translate", direction=d,
                             speed=cfg.speed, moving_colour=col_name, still_colour=other))
    df = pd.DataFrame(rows)
    df.insert(0, "label", np.arange(len(df)))
    df["moving_rgb"] = [" ".join(map(str, _colour_rgb(c))) for c in df.moving_colour]
    df["still_rgb"] = [" ".join(map(str, _colour_rgb(c))) if c else "" for c in df.still_colour]
    return df[["label", "class_name", "group", "colour", "motion", "direction", "speed",
               "moving_colour", "moving_rgb", "still_colour", "still_rgb"]]


def _colour_rgb(name: str) -> tuple[int, int, int]:
    if name == "red":
        return RED
    if name == "blue":
        return BLUE
    if name == "grey":
        return OBJECT_GREY
    return PALETTE[name]


def clip_seed(cfg: SyntheticConfig, class_name: str, split: str, index: int) -> int:
    """Seed of one clip: a function of (seed, class name, split, index) only, so adding or removing
    classes or clips leaves every other clip unchanged.  Each split has its own stream (``SPLIT_TAGS``;
    the test clips' stream, tag 2, is one that no setting was ever tuned on: module doc)."""
    if split not in SPLIT_TAGS:
        raise ConfigError(f"synthetic: unknown split {split!r} (known: {', '.join(SPLITS)})")
    key = zlib.crc32(class_name.encode())
    ss = np.random.SeedSequence([int(cfg.seed), key, SPLIT_TAGS[split], int(index)])
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def split_groups(cfg: SyntheticConfig) -> dict[str, list[int]]:
    """Group numbers of each split: test g01..g<test_groups>, val the next val_groups, train the rest."""
    t, v = cfg.test_groups, cfg.val_groups
    return {"test": list(range(1, t + 1)), "val": list(range(t + 1, t + v + 1)),
            "train": list(range(t + v + 1, cfg.groups + 1))}


def video_table(cfg: SyntheticConfig) -> pd.DataFrame:
    """One row per clip: video_id, path (relative to root), label, class_name, split, group, clip, seed.

    Each split's clips are spread round-robin over its groups (:func:`split_groups`); ``cYY``
    numbers the clips inside a group from 1.
    """
    classes = class_table(cfg)
    groups_of = split_groups(cfg)
    counts_of = {"train": cfg.train_per_class, "val": cfg.val_per_class, "test": cfg.test_per_class}
    rows = []
    for _, c in classes.iterrows():
        for split in SPLITS:
            groups = groups_of[split]
            counts: dict[int, int] = {}
            for i in range(counts_of[split]):
                g = groups[i % len(groups)]
                counts[g] = counts.get(g, 0) + 1
                stem = f"v_{c.class_name}_g{g:02d}_c{counts[g]:02d}"
                rows.append(dict(video_id=f"{c.class_name}/{stem}", path=f"{c.class_name}/{stem}.avi",
                                 label=int(c.label), class_name=c.class_name, split=split, group=g,
                                 clip=counts[g], seed=clip_seed(cfg, c.class_name, split, i)))
    return pd.DataFrame(rows)
