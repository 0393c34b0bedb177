"""Synthetic action dataset with a known cause for every class (``twostream synth``).

Three modules, one job each:

- :mod:`.classes`: the settings (``SyntheticConfig``), the classes and their causes
  (:func:`class_table`), and which clips exist: splits, UCF101-like groups, per-clip seeds
  (:func:`video_table`, :func:`clip_seed`);
- :mod:`.render`: a clip's frames with exact ground-truth flow (:func:`render_clip`, pure);
- :mod:`.write`: the dataset on disk: encoded videos, split lists, ``classes.csv``
  (:func:`generate`, the ``synth`` command).

This package re-exports their public names.
"""

from __future__ import annotations

from .classes import (
    BLUE,
    DIRECTIONS,
    DISTRACTOR_GREY,
    GROUPS,
    MOTIONS,
    OBJECT_GREY,
    PALETTE,
    RED,
    SPLITS,
    SyntheticConfig,
    _colour_rgb,
    class_table,
    clip_seed,
    make_config,
    video_table,
)
from .render import Clip, Truth, _wrap, render_clip, render_video
from .write import add_arguments, generate, run, write_video

__all__ = [
    "SyntheticConfig", "make_config", "class_table", "video_table", "clip_seed", "render_clip",
    "render_video", "write_video", "generate", "Clip", "Truth", "add_arguments", "run",
    "PALETTE", "RED", "BLUE", "OBJECT_GREY", "DISTRACTOR_GREY", "MOTIONS", "DIRECTIONS", "GROUPS", "SPLITS",
]
