"""ResNet backbones with named stages (plain torch, torchvision-compatible names).

API (stable; the fusion and visualization code builds on it)
------------------------------------------------------------
``resnet(arch, in_channels=3, num_classes=1000, dropout=0.0, widths=None, blocks=None) -> ResNet``
    ``arch`` is one of ``ARCHS``: ``"resnet18"``, ``"resnet34"``, ``"resnet50"`` (ImageNet
    layer plans, 7x7/2 stem + 3x3/2 max pool) or ``"small"`` (CPU-sized: 3x3/2 stem, no max
    pool, basic blocks, ``widths`` default (16, 32, 64, 64), ``blocks`` default (1, 1, 1, 1);
    meant for 64x64 inputs). ``widths`` and ``blocks`` shape ``small`` only: the ImageNet
    archs ignore them and always have torchvision's plan (and parameter count).

``STAGES = ("conv1", "res2", "res3", "res4", "res5", "pool", "fc")``
    ``conv1``  stem conv + BN + ReLU (before the max pool)      (N, C, H/2, W/2)
    ``res2``   [max pool +] ``layer1``                            stride 4 (small: 2)
    ``res3``   ``layer2``                                         stride 8 (small: 4)
    ``res4``   ``layer3``                                         stride 16 (small: 8)
    ``res5``   ``layer4``                                         stride 32 (small: 16)
    ``pool``   global average pool, flattened                     (N, C)
    ``fc``     dropout + linear: class logits                     (N, num_classes)
    Every residual stage ends in a ReLU, so ``resN`` is the paper's "ReLU N" position.

``ResNet`` methods and attributes
    ``forward(x)``                 logits; ``x`` is the raw input (see *Inputs* below)
    ``forward_to(x, stage)``       raw input -> output of ``stage`` (inclusive)
    ``forward_from(h, stage)``     output of ``stage`` -> logits (runs the stages after it;
                                   ``forward_from(h, "fc")`` returns ``h``)
    ``forward_stages(x, upto="fc")``  ``dict`` stage -> activation for every stage up to ``upto``
    ``run_stage(stage, h, unit_fn=None)``  one stage only: output of the stage before -> output
                                   of ``stage`` (``run_stage("conv1", normalize(x))``);
                                   ``unit_fn(j, unit, h)`` stands in for the stage's residual
                                   units (cross-stream connections into units, ST-ResNet)
    residual units                 ``layer1``..``layer4`` are ``ResStage``s of units with
                                   ``branch(h)`` (F), ``shortcut(x)`` and
                                   ``preactivation(x, branch_input=None)`` = F + shortcut;
                                   ``unit(x) = ReLU(preactivation(x))``
    ``normalize(x)``               the input normalisation ``forward_to`` applies first
    ``stage_channels[stage]``      channels (``fc``: num_classes)
    ``stage_strides[stage]``       spatial stride w.r.t. the input (``pool``/``fc``: None)
    ``stage_module(stage)``        the ``nn.Module`` of a stage (``pool``: the avgpool)
    ``in_channels``, ``num_classes``, ``arch``, ``config`` (the kwargs that rebuild it)

Inputs
    The model normalises its input itself (non-persistent buffers ``input_mean`` and
    ``input_std``, not in the state_dict), so callers feed natural units: RGB as float in
    [0, 1], flow in pixels/frame. ``set_input_normalization(mean, std)`` sets them
    (per channel or scalar); the streams module sets ImageNet statistics for RGB and
    mean 0 / std ``flow_std`` for flow. With ``center_input = True`` (set for flow by
    ``flow_mean_subtraction``) each input channel's spatial mean is subtracted first: the
    mean flow of each field, i.e. camera motion, is removed.

Weights
    Parameter names are torchvision's (``conv1``, ``bn1``, ``layer1.0.conv1`` ...,
    ``layer1.0.downsample.0``, ``fc``), so an ImageNet ``state_dict`` file (e.g. saved from
    torchvision's ``resnet50(weights=...)``) loads with ``load_pretrained(model, path)``; it
    skips ``fc`` when the class count differs and adapts ``conv1`` to other input channel
    counts by cross-modality initialisation (see ``cross_modality_weight``).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn

from ..errors import InputError

STAGES: tuple[str, ...] = ("conv1", "res2", "res3", "res4", "res5", "pool", "fc")
SPATIAL_STAGES: tuple[str, ...] = ("conv1", "res2", "res3", "res4", "res5")


class _ResidualUnit(nn.Module):
    """``out = ReLU(F(x) + shortcut(x))``, split so that a cross-stream connection can feed
    the residual branch ``F`` another input than the shortcut's (ST-ResNet)."""

    downsample: nn.Module | None

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.downsample is None else self.downsample(x)

    def preactivation(self, x: torch.Tensor, branch_input: torch.Tensor | None = None) -> torch.Tensor:
        """``F(branch_input) + shortcut(x)``, the sum before the unit's final ReLU
        (``branch_input`` defaults to ``x``)."""
        return self.branch(x if branch_input is None else branch_input) + self.shortcut(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.preactivation(x))


class ResStage(nn.Sequential):
    """The residual units of one stage (``layer1``..``layer4``), run in order.

    ``forward(x, unit_fn)`` runs ``unit_fn(j, unit, h)`` in place of ``unit(h)`` for the
    j-th unit: the hook through which a fused network reaches single units (ST-ResNet)
    while the stage stays one module call (forward hooks on it still fire).
    """

    def forward(self, x: torch.Tensor, unit_fn=None) -> torch.Tensor:  # noqa: D102
        for j, unit in enumerate(self):
            x = unit(x) if unit_fn is None else unit_fn(j, unit, x)
        return x


class BasicBlock(_ResidualUnit):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def branch(self, h: torch.Tensor) -> torch.Tensor:
        """The residual function F (conv-BN-ReLU-conv-BN)."""
        return self.bn2(self.conv2(self.relu(self.bn1(self.conv1(h)))))


class Bottleneck(_ResidualUnit):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def branch(self, h: torch.Tensor) -> torch.Tensor:
        """The residual function F (1x1, 3x3, 1x1 convs with BN and ReLUs between)."""
        out = self.relu(self.bn1(self.conv1(h)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))


# arch -> (block, blocks per stage, widths, small stem?)
ARCHS: dict[str, tuple[type[nn.Module], tuple[int, ...], tuple[int, ...], bool]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2), (64, 128, 256, 512), False),
    "resnet34": (BasicBlock, (3, 4, 6, 3), (64, 128, 256, 512), False),
    "resnet50": (Bottleneck, (3, 4, 6, 3), (64, 128, 256, 512), False),
    "small": (BasicBlock, (1, 1, 1, 1), (16, 32, 64, 64), True),
}


class ResNet(nn.Module):
    """A ResNet whose forward pass can be cut at any named stage (see module docstring)."""

    stages = STAGES

    def __init__(
        self,
        arch: str = "resnet50",
        in_channels: int = 3,
        num_classes: int = 1000,
        dropout: float = 0.0,
        widths: Sequence[int] | None = None,
        blocks: Sequence[int] | None = None,
    ):
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"unknown arch {arch!r} (known: {', '.join(ARCHS)})")
        block, default_blocks, default_widths, small = ARCHS[arch]
        if not small:  # the ImageNet plans are fixed: widths/blocks shape `small` only
            widths, blocks = None, None
        widths = tuple(int(w) for w in (widths or default_widths))
        blocks = tuple(int(b) for b in (blocks or default_blocks))
        if len(widths) != 4 or len(blocks) != 4:
            raise ValueError("widths and blocks need 4 entries (res2..res5)")
        self.arch = arch
        self.in_channels = int(in_channels)
        self.num_classes = int(num_classes)
        self.config = dict(
            arch=arch, in_channels=self.in_channels, num_classes=self.num_classes,
            dropout=float(dropout), widths=list(widths), blocks=list(blocks),
        )
        stem = widths[0] if small else 64
        if small:
            self.conv1 = nn.Conv2d(in_channels, stem, 3, 2, 1, bias=False)
            self.maxpool: nn.Module = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_channels, stem, 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self._inplanes = stem
        self.layer1 = self._make_layer(block, widths[0], blocks[0], 1)
        self.layer2 = self._make_layer(block, widths[1], blocks[1], 2)
        self.layer3 = self._make_layer(block, widths[2], blocks[2], 2)
        self.layer4 = self._make_layer(block, widths[3], blocks[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        out = widths[3] * block.expansion
        self.fc = nn.Linear(out, num_classes)
        first = 2 if small else 4
        self.stage_channels = {
            "conv1": stem,
            "res2": widths[0] * block.expansion,
            "res3": widths[1] * block.expansion,
            "res4": widths[2] * block.expansion,
            "res5": out,
            "pool": out,
            "fc": self.num_classes,
        }
        self.stage_strides = {
            "conv1": 2, "res2": first, "res3": first * 2, "res4": first * 4, "res5": first * 8,
            "pool": None, "fc": None,
        }
        self.center_input = False
        self.register_buffer("input_mean", torch.zeros(1, 1, 1, 1), persistent=False)
        self.register_buffer("input_std", torch.ones(1, 1, 1, 1), persistent=False)
        self._shift = self._scale = False  # mean 0 and std 1 are skipped: the same values, no pass over x
        self._init_weights()

    def _make_layer(self, block, planes: int, n: int, stride: int) -> ResStage:
        downsample = None
        if stride != 1 or self._inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self._inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self._inplanes, planes, stride, downsample)]
        self._inplanes = planes * block.expansion
        layers += [block(self._inplanes, planes) for _ in range(1, n)]
        return ResStage(*layers)

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    # ---- input normalisation -------------------------------------------------
    def set_input_normalization(self, mean, std) -> None:
        mean = torch.as_tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1)
        std = torch.as_tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1)
        self.input_mean = mean.to(self.input_mean.device)
        self.input_std = std.to(self.input_std.device)
        self._shift, self._scale = bool((mean != 0).any()), bool((std != 1).any())

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        if self.center_input:  # camera-motion compensation of flow (Simonyan & Zisserman 2014)
            x = x - x.mean(dim=(2, 3), keepdim=True)
        if self._shift:
            x = x - self.input_mean
        return x / self.input_std if self._scale else x

    # ---- staged forward ------------------------------------------------------
    def stage_module(self, stage: str) -> nn.Module:
        return {
            "conv1": nn.ModuleList([self.conv1, self.bn1]),
            "res2": nn.ModuleList([self.maxpool, self.layer1]),
            "res3": self.layer2, "res4": self.layer3, "res5": self.layer4,
            "pool": self.avgpool, "fc": self.fc,
        }[_check_stage(stage)]

    def _run_stage(self, stage: str, h: torch.Tensor, unit_fn=None) -> torch.Tensor:
        if stage == "conv1":
            return self.relu(self.bn1(self.conv1(h)))
        if stage == "res2":
            return self.layer1(self.maxpool(h), unit_fn)
        if stage == "res3":
            return self.layer2(h, unit_fn)
        if stage == "res4":
            return self.layer3(h, unit_fn)
        if stage == "res5":
            return self.layer4(h, unit_fn)
        if stage == "pool":
            return torch.flatten(self.avgpool(h), 1)
        return self.fc(self.dropout(h))

    def run_stage(self, stage: str, h: torch.Tensor, unit_fn=None) -> torch.Tensor:
        """Run exactly one stage on the output of the stage before it; for ``res2``..``res5``
        ``unit_fn(j, unit, h)`` may stand in for each residual unit (see ``ResStage``)."""
        return self._run_stage(_check_stage(stage), h, unit_fn)

    def forward_to(self, x: torch.Tensor, stage: str) -> torch.Tensor:
        """Raw input -> activation after ``stage`` (inclusive)."""
        end = STAGES.index(_check_stage(stage))
        h = self.normalize(x)
        for s in STAGES[: end + 1]:
            h = self._run_stage(s, h)
        return h

    def forward_from(self, h: torch.Tensor, stage: str) -> torch.Tensor:
        """Activation after ``stage`` -> logits (runs every stage after ``stage``)."""
        start = STAGES.index(_check_stage(stage))
        for s in STAGES[start + 1 :]:
            h = self._run_stage(s, h)
        return h

    def forward_stages(self, x: torch.Tensor, upto: str = "fc") -> "OrderedDict[str, torch.Tensor]":
        """Every stage's activation, in order, up to ``upto`` (inclusive)."""
        end = STAGES.index(_check_stage(upto))
        out: OrderedDict[str, torch.Tensor] = OrderedDict()
        h = self.normalize(x)
        for s in STAGES[: end + 1]:
            h = self._run_stage(s, h)
            out[s] = h
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_to(x, "fc")


def _check_stage(stage: str) -> str:
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r} (stages: {', '.join(STAGES)})")
    return stage


def resnet(
    arch: str = "resnet50",
    in_channels: int = 3,
    num_classes: int = 1000,
    dropout: float = 0.0,
    widths: Sequence[int] | None = None,
    blocks: Sequence[int] | None = None,
) -> ResNet:
    """Build a ResNet backbone; see the module docstring."""
    return ResNet(arch, in_channels, num_classes, dropout, widths, blocks)


def cross_modality_weight(rgb_weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Cross-modality initialisation: average conv1 filters over the RGB channels and
    replicate the mean over ``in_channels`` input channels (Wang et al., TSN)."""
    if rgb_weight.ndim != 4:
        raise ValueError(f"expected a conv weight (out, in, kh, kw), got shape {tuple(rgb_weight.shape)}")
    mean = rgb_weight.mean(dim=1, keepdim=True)
    return mean.repeat(1, int(in_channels), 1, 1).contiguous()


def load_pretrained(model: ResNet, source: str | Path | dict) -> list[str]:
    """Load a (torchvision-named) state_dict into ``model``; return the keys skipped.

    ``conv1.weight`` with 3 input channels is adapted by ``cross_modality_weight`` when the
    model has another input channel count; ``fc.*`` is skipped when its shape differs.
    Any other missing or mis-shaped key is an ``InputError`` naming the file.
    """
    name = str(source) if not isinstance(source, dict) else "<state_dict>"
    if isinstance(source, dict):
        state = source
    else:
        path = Path(source)
        if not path.exists():
            raise InputError(f"{path}: pretrained weights file not found")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unreadable file is a user error
            raise InputError(f"{path}: not a readable torch state_dict ({e})") from None
        if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
            state = state["model"]  # one of our checkpoints
    state = {k.removeprefix("module."): v for k, v in state.items()}
    own = model.state_dict()
    skipped = []
    new = {}
    for k, v in state.items():
        if k not in own:
            skipped.append(k)
            continue
        if k == "conv1.weight" and v.shape[1] != own[k].shape[1] and v.shape[1] == 3:
            v = cross_modality_weight(v, own[k].shape[1])
        if v.shape != own[k].shape:
            if k.startswith("fc."):
                skipped.append(k)
                continue
            raise InputError(
                f"{name}: not {model.arch} weights: {k} has shape {tuple(v.shape)}, a {model.arch} needs "
                f"{tuple(own[k].shape)}"
            )
        new[k] = v
    missing = [k for k in own if k not in new and not k.startswith("fc.")]
    if missing:
        raise InputError(f"{name}: lacks {len(missing)} weight(s) of a {model.arch}, e.g. {missing[0]}")
    model.load_state_dict(new, strict=False)
    return skipped


__all__ = [
    "STAGES", "SPATIAL_STAGES", "ARCHS", "ResNet", "ResStage", "BasicBlock", "Bottleneck", "resnet",
    "cross_modality_weight", "load_pretrained",
]
