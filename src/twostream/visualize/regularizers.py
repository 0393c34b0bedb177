"""Penalties that keep an optimised input natural, and the measures reported about it.

Penalties return one value per sample (shape (B,)), so a batch can hold samples
with different weights. Flow stacks are (B, 2L, H, W); ``layout`` says how the
2L channels are ordered:

* ``interleaved``: x0, y0, x1, y1, ... (the default of this project);
* ``grouped``: x0 .. x(L-1), y0 .. y(L-1).

The temporal penalty is the paper's speed control: the mean squared difference
between consecutive flow fields. A high weight makes the motion nearly constant
over the L frames ("slow"); a low weight lets it change from frame to frame
("fast"). The size of the flow is held by the L2 weight.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InputError

LAYOUTS = ("interleaved", "grouped")


def flow_frames(flow: torch.Tensor, layout: str = "interleaved") -> torch.Tensor:
    """(B, 2L, H, W) -> (B, L, 2, H, W) with channel 0 = x, 1 = y."""
    if layout not in LAYOUTS:
        raise InputError(f"flow layout {layout!r} is not one of {LAYOUTS}")
    b, c, h, w = flow.shape
    if c % 2:
        raise InputError(f"a flow stack needs an even number of channels, got {c}")
    if layout == "interleaved":
        return flow.reshape(b, c // 2, 2, h, w)
    return flow.reshape(b, 2, c // 2, h, w).transpose(1, 2)


def l2(x: torch.Tensor, centre: float = 0.0) -> torch.Tensor:
    """Mean squared value (about ``centre``) per sample."""
    return (x - centre).square().flatten(1).mean(1)


def spatial_tv(x: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of horizontal and vertical neighbours, per sample."""
    dy = (x[..., 1:, :] - x[..., :-1, :]).square().flatten(1).mean(1)
    dx = (x[..., :, 1:] - x[..., :, :-1]).square().flatten(1).mean(1)
    return dx + dy


def temporal_variation(flow: torch.Tensor, layout: str = "interleaved") -> torch.Tensor:
    """Mean squared difference between consecutive flow fields, per sample (0 when L = 1)."""
    f = flow_frames(flow, layout)
    if f.shape[1] < 2:
        return flow.new_zeros(flow.shape[0])
    return (f[:, 1:] - f[:, :-1]).square().flatten(1).mean(1)


# ---- measures (numpy, one sample) -------------------------------------------------


def relative_temporal_variation(frames: np.ndarray) -> float:
    """mean |f(k+1) - f(k)| / mean |f| of a flow stack (L, H, W, 2); 0 for a constant stack."""
    f = np.asarray(frames, dtype=np.float64)
    if f.ndim != 4 or f.shape[-1] != 2:
        raise InputError(f"expected a flow stack (L, H, W, 2), got shape {f.shape}")
    denom = np.abs(f).mean()
    if f.shape[0] < 2 or denom == 0:
        return 0.0
    return float(np.abs(np.diff(f, axis=0)).mean() / denom)


def flow_magnitude(frames: np.ndarray) -> float:
    """Mean end-point magnitude of a flow stack (L, H, W, 2), in its units."""
    f = np.asarray(frames, dtype=np.float64)
    return float(np.sqrt((f**2).sum(-1)).mean())
