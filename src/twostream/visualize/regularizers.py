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


# ---- penalty gradients without autograd (the optimisation loop's hot path) -----------------


def _per_sample(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return w.view(-1, *([1] * (x.dim() - 1))).to(x.dtype)


def l2_grad(x: torch.Tensor, w: torch.Tensor, centre: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(w * l2(x, centre), its gradient w.r.t. x)."""
    d = x - centre if centre else x
    n = d[0].numel()
    pen = w * d.square().flatten(1).mean(1)
    return pen, d * (_per_sample(w, x) * (2.0 / n))


def spatial_tv_grad(x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(w * spatial_tv(x), its gradient w.r.t. x)."""
    dy = x[..., 1:, :] - x[..., :-1, :]
    dx = x[..., :, 1:] - x[..., :, :-1]
    ny, nx = dy[0].numel(), dx[0].numel()
    pen = w * (dy.square().flatten(1).mean(1) + dx.square().flatten(1).mean(1))
    ws = _per_sample(w, x)
    gy, gx = dy * (ws * (2.0 / ny)), dx * (ws * (2.0 / nx))
    g = torch.zeros_like(x)
    g[..., 1:, :] += gy
    g[..., :-1, :] -= gy
    g[..., :, 1:] += gx
    g[..., :, :-1] -= gx
    return pen, g


def temporal_variation_grad(flow: torch.Tensor, w: torch.Tensor, layout: str = "interleaved") -> tuple[torch.Tensor, torch.Tensor]:
    """(w * temporal_variation(flow), its gradient w.r.t. flow)."""
    f = flow_frames(flow, layout)
    g = torch.zeros_like(f)
    if f.shape[1] < 2:
        return flow.new_zeros(flow.shape[0]), flow.new_zeros(flow.shape)
    d = f[:, 1:] - f[:, :-1]
    n = d[0].numel()
    pen = w * d.square().flatten(1).mean(1)
    gd = d * (_per_sample(w, d) * (2.0 / n))
    g[:, 1:] += gd
    g[:, :-1] -= gd
    if layout == "interleaved":
        return pen, g.reshape(flow.shape)
    return pen, g.transpose(1, 2).reshape(flow.shape)
