"""Optical flow backends (TV-L1 in OpenCV or PyTorch, DIS) and the ``twostream flow`` stage.

Every backend is a callable ``(prev, next) -> flow``: ``prev`` and ``next`` are
uint8 grayscale frames (B, H, W); the result is float32 (B, H, W, 2), (x, y) in
pixels per frame, flow ``i`` being the motion from ``prev[i]`` to ``next[i]``.
"""

from __future__ import annotations

import os

# Idle OpenMP threads sleep instead of spinning: on a shared or oversubscribed
# machine spinning threads made every torch op ~100x slower (measured here).
# Only effective when set before torch starts OpenMP (the CLI imports us first).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402

from ..config import from_dict  # noqa: E402
from .params import BACKENDS, DISParams, FlowConfig, TVL1Params  # noqa: E402,F401

FlowFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def flow_config(d: dict[str, Any] | None) -> FlowConfig:
    """The validated ``flow:`` section (unknown keys are an error naming the key)."""
    return from_dict(FlowConfig, d, "flow")


def make_backend(cfg: FlowConfig) -> FlowFn:
    """The backend named by ``cfg.backend``, set up with the config's parameters."""
    if cfg.backend == "opencv":
        from .opencv import OpenCVTVL1  # deferred: each backend imports its own library (OpenCV or torch) when chosen

        return OpenCVTVL1(cfg.tvl1)
    if cfg.backend == "dis":
        from .dis import DISFlow  # deferred: each backend imports its own library (OpenCV or torch) when chosen

        return DISFlow(cfg.dis)
    from .tvl1_torch import TorchTVL1  # deferred: each backend imports its own library (OpenCV or torch) when chosen

    return TorchTVL1(cfg.tvl1, device=cfg.device, stopping=cfg.stopping, compile=cfg.compile, batch_size=cfg.batch_size)
