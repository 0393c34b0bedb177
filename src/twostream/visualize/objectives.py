"""Objectives: what a visualization maximises, as small composable pieces.

An objective maps the recorded activations ``{layer name: tensor}`` of a batch to
one score per sample (shape (B,)). ``units`` may be one int (the same unit for
every sample) or one int per sample, so one batch can visualize several units.
Objectives add, subtract and scale: ``channel("res3", 5) - 0.1 * channel("res3", 2)``.

Layer names are dotted module paths of the model (``"res3"``, ``"rgb.res3"``,
``"fuse"``) or ``OUTPUT`` (``"output"``), the model's return value (class logits).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from ..errors import InputError

OUTPUT = "output"
WHERE = ("mean", "center")

Acts = dict[str, torch.Tensor]


class Objective:
    """A named callable ``acts -> (B,)`` that records the layers it needs."""

    def __init__(self, fn: Callable[[Acts], torch.Tensor], layers: Sequence[str], name: str = ""):
        self.fn = fn
        self.layers = tuple(dict.fromkeys(layers))
        self.name = name

    def __call__(self, acts: Acts) -> torch.Tensor:
        return self.fn(acts)

    def __add__(self, other: "Objective | float") -> "Objective":
        if isinstance(other, Objective):
            return Objective(lambda a: self(a) + other(a), self.layers + other.layers, f"{self.name} + {other.name}")
        return Objective(lambda a: self(a) + float(other), self.layers, f"{self.name} + {other}")

    __radd__ = __add__

    def __neg__(self) -> "Objective":
        return Objective(lambda a: -self(a), self.layers, f"-{self.name}")

    def __sub__(self, other: "Objective | float") -> "Objective":
        return self + (-other)

    def __mul__(self, k: float) -> "Objective":
        return Objective(lambda a: float(k) * self(a), self.layers, f"{k} * {self.name}")

    __rmul__ = __mul__

    def __repr__(self) -> str:
        return f"Objective({self.name})"


def _select(act: torch.Tensor, units: int | Sequence[int], layer: str) -> torch.Tensor:
    """The chosen channel of each sample: (B, C, ...) -> (B, ...)."""
    b, c = act.shape[0], act.shape[1]
    u = torch.as_tensor(units, dtype=torch.long).reshape(-1)
    if u.numel() == 1:
        u = u.expand(b)
    if u.numel() != b:
        raise InputError(f"{layer}: {u.numel()} units given for a batch of {b}")
    if int(u.min()) < 0 or int(u.max()) >= c:
        raise InputError(f"{layer}: unit out of range (layer has {c} channels, asked {u.tolist()})")
    idx = u.view(b, 1, *([1] * (act.dim() - 2))).expand(b, 1, *act.shape[2:])
    return act.gather(1, idx).squeeze(1)


def channel(layer: str, units: int | Sequence[int], where: str = "mean") -> Objective:
    """Mean (over the whole map) or centre value of one channel of ``layer``.

    Maps of any dimensionality after the channel axis are reduced: (B, C, H, W),
    (B, C, T, H, W) or a vector (B, C).
    """
    if where not in WHERE:
        raise InputError(f"objective position {where!r} is not one of {WHERE}")

    def fn(acts: Acts) -> torch.Tensor:
        a = _select(acts[layer], units, layer)
        if a.dim() == 1:
            return a
        if where == "mean":
            return a.flatten(1).mean(1)
        centre = tuple(s // 2 for s in a.shape[1:])
        return a[(slice(None),) + centre]

    return Objective(fn, [layer], f"{layer}:{units}:{where}")


def class_logit(units: int | Sequence[int], layer: str = OUTPUT) -> Objective:
    """The class score (logit) of each sample's class."""
    return channel(layer, units, "mean")


def class_log_prob(units: int | Sequence[int], layer: str = OUTPUT) -> Objective:
    """log softmax of the class: raises the class against all the others."""

    def fn(acts: Acts) -> torch.Tensor:
        logp = torch.log_softmax(acts[layer].flatten(2).mean(2) if acts[layer].dim() > 2 else acts[layer], 1)
        return _select(logp, units, layer)

    return Objective(fn, [layer], f"logp:{layer}:{units}")


def channels(layers: Sequence[str], units: Sequence[int], where: str = "mean") -> Objective:
    """Sample ``b`` maximises channel ``units[b]`` of layer ``layers[b]``: many layers in one batch."""
    if len(layers) != len(units):
        raise InputError(f"{len(layers)} layers but {len(units)} units")
    groups: dict[str, list[int]] = {}
    for b, l in enumerate(layers):
        groups.setdefault(l, []).append(b)
    parts = {l: (idx, channel(l, [units[b] for b in idx], where)) for l, idx in groups.items()}

    def fn(acts: Acts) -> torch.Tensor:
        out = None
        for l, (idx, obj) in parts.items():
            rows = torch.as_tensor(idx)
            sub = {l: acts[l].index_select(0, rows)}
            v = obj(sub)
            if out is None:
                out = v.new_zeros(len(layers))
            out = out.index_copy(0, rows, v)
        return out

    return Objective(fn, list(groups), f"{len(groups)} layers")
