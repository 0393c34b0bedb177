"""Hand-built models whose activation maximum is known, for the visualize tests."""

from __future__ import annotations

import torch
from torch import nn

from twostream.visualize.causes import ClassFactors

YELLOW, GREEN, MAGENTA, CYAN = (0.84, 0.76, 0.16), (0.16, 0.65, 0.22), (0.78, 0.22, 0.76), (0.16, 0.76, 0.80)
RED, BLUE = (0.75, 0.16, 0.16), (0.08, 0.35, 0.90)


def toy_classes() -> list[ClassFactors]:
    """4 appearance, 4 motion, 4 spatiotemporal classes, as in the synthetic dataset."""
    out = []
    for i, c in enumerate((YELLOW, GREEN, MAGENTA, CYAN)):
        out.append(ClassFactors(i, f"Colour{i}", "appearance", colour=c))
    for i, d in enumerate(((-1.0, 0.0), (1.0, 0.0), (0.0, -1.0), (0.0, 1.0))):
        out.append(ClassFactors(4 + i, f"Motion{i}", "motion", direction=d))
    for i, (m, s, d) in enumerate(((RED, BLUE, (-1.0, 0.0)), (RED, BLUE, (1.0, 0.0)),
                                   (BLUE, RED, (-1.0, 0.0)), (BLUE, RED, (1.0, 0.0)))):
        out.append(ClassFactors(8 + i, f"St{i}", "spatiotemporal", direction=d, moving_colour=m, still_colour=s))
    return out


def _frames(flow: torch.Tensor, L: int) -> torch.Tensor:
    return flow.reshape(flow.shape[0], L, 2, *flow.shape[2:])


class ColourNet(nn.Module):
    """Appearance toy: the logit of class c rises with pixels of colour c (``permute`` swaps units)."""

    modalities = ("rgb",)

    def __init__(self, permute: bool = False, gain: float = 20.0):
        super().__init__()
        cols = torch.tensor([YELLOW, GREEN, MAGENTA, CYAN]) - 0.5
        if permute:
            cols = cols[[1, 2, 3, 0]]
        self.register_buffer("cols", cols / cols.norm(dim=1, keepdim=True))
        self.gain = gain
        self.unit = nn.Conv2d(3, 4, 1, bias=False)
        self.unit.weight.data = self.cols[:, :, None, None].clone()

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.gain * self.unit(rgb - 0.5).mean((2, 3))


class MotionNet(nn.Module):
    """Motion toy: logits of left, right, up, down are the mean flow along that direction.

    ``flip``: the units respond to the opposite direction (a wrong model).
    ``fast``: the units also reward change of the flow between consecutive fields, so
    without a temporal penalty the optimum varies in time.
    """

    modalities = ("flow",)

    def __init__(self, L: int = 4, flip: bool = False, fast: float = 0.0, gain: float = 10.0):
        super().__init__()
        self.L, self.sign, self.fast, self.gain = L, -1.0 if flip else 1.0, fast, gain

    def forward(self, flow: torch.Tensor) -> torch.Tensor:
        f = _frames(flow, self.L)
        fx, fy = f[:, :, 0], f[:, :, 1]
        dirs = torch.stack([-fx.mean((1, 2, 3)), fx.mean((1, 2, 3)), -fy.mean((1, 2, 3)), fy.mean((1, 2, 3))], 1)
        out = self.sign * dirs
        if self.fast:
            out = out + self.fast * (f[:, 1:] - f[:, :-1]).abs().mean((1, 2, 3, 4))[:, None]
        return self.gain * out


class BindingNet(nn.Module):
    """Fused toy over the 4 spatiotemporal classes of ``group_classes("spatiotemporal")``.

    Class "colour X moves along d": ``pooled=False`` (a spatial fusion that binds colour to
    motion) rewards, at each pixel, colour X where the flow points along d and the other
    colour where there is no flow. ``pooled=True`` (a fusion after pooling) adds the mean
    colour evidence and the mean motion evidence: it is just as confident, but nothing
    ties the colour to where the motion is.
    """

    modalities = ("rgb", "flow")

    def __init__(self, L: int = 4, pooled: bool = False, gain: float = 100.0):
        super().__init__()
        self.L, self.pooled, self.gain = L, pooled, gain
        cols = torch.tensor([RED, BLUE]) - 0.5
        self.register_buffer("rb", cols / cols.norm(dim=1, keepdim=True))

    def forward(self, rgb: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        f = _frames(flow, self.L).mean(1)  # (B, 2, H, W)
        col = torch.einsum("bchw,kc->bkhw", rgb - 0.5, self.rb).relu()  # (B, 2, H, W): redness, blueness
        still = torch.exp(-f.norm(dim=1))
        st = []
        for moving, other in ((0, 1), (1, 0)):
            for d in (-1.0, 1.0):
                along = torch.tanh((d * f[:, 0]).relu())
                if self.pooled:
                    z = (col[:, moving] - col[:, other] + along).mean((1, 2))
                else:
                    z = (col[:, moving] * along + col[:, other] * still).mean((1, 2))
                st.append(z)
        return self.gain * torch.stack(st, 1)


def group_classes(group: str) -> list[ClassFactors]:
    """The toy classes of one group, labelled 0.. (for the single-stream toys)."""
    import dataclasses

    cs = [c for c in toy_classes() if c.group == group]
    return [dataclasses.replace(c, label=i) for i, c in enumerate(cs)]


class SilentColourNet(nn.Module):
    """Appearance toy with ReLU units silent on a grey start: unit c is
    ReLU(gain * (colour c . (rgb - 0.5)) - bias), recorded at layer ``relu``. Its maximum is an
    image of colour c, but near grey (the random start) every unit is below zero, so its plain
    gradient is zero."""

    modalities = ("rgb",)

    def __init__(self, bias: float = 0.3, gain: float = 1.0):
        super().__init__()
        cols = torch.tensor([YELLOW, GREEN, MAGENTA, CYAN]) - 0.5
        cols = cols / cols.norm(dim=1, keepdim=True)
        self.unit = nn.Conv2d(3, 4, 1)
        self.unit.weight.data = gain * cols[:, :, None, None].clone()
        self.unit.bias.data = torch.full((4,), -float(bias))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.relu(self.unit(rgb - 0.5)).mean((2, 3))
