"""Fusion of the appearance (RGB) and motion (flow) streams.

Where and how two streams are joined, as compared in Feichtenhofer et al.,
"Convolutional Two-Stream Network Fusion for Video Action Recognition" (CVPR 2016)
and ST-ResNet / multiplier networks (NIPS 2016, CVPR 2017).

A fused network is named by a *method* and a *position*:

==================  ==========================  ===============================================
method              position                    what it builds
==================  ==========================  ===============================================
``sum``             a stage (``res2``..         ``a + m`` after that stage of both towers; the
                    ``res5``, ``pool``)         appearance tower's later stages continue.
``max``             a stage                     element-wise ``max(a, m)``
``concat``          a stage                     ``[a, m]`` stacked (2C channels); the layer
                                                after the fusion point is widened to take 2C
                                                (its motion half starts as a copy of its
                                                appearance half: at init it equals ``sum``)
``concat_project``  a stage                     ``[a, m]`` stacked, then a randomly
                                                initialised 1x1 conv back to C channels
``conv``            a stage                     ``ReLU(W [a, m] + b)``, a 1x1 conv initialised
                                                as ``a + m`` (the paper's conv fusion, ReLU as
                                                in the authors' code)
``conv_linear``     a stage                     the same 1x1 conv without the ReLU
``bilinear``        a stage                     pooled outer product ``sum_xy a m^T`` (signed
                                                sqrt, L2), then a new linear classifier
``bilinear_reduced``a stage                     the same after 1x1 projections of both inputs
                                                to ``bilinear_dim`` channels (fits memory)
``<m>_pool3d``      a stage                     spatial method ``<m>`` (sum/max/concat/conv)
                                                per frame, then 3D max pooling over the ``T``
                                                frames of a sample ("2D conv + 3D pool")
``conv3d_pool3d``   a stage                     ReLU of a 3x3x3 (``conv3d_kernel``) conv fusion
                                                over T, initialised as ``a + m`` times a
                                                temporal Gaussian, then 3D pooling
``st_add``          stages of res2..res5 joined ST-ResNet (NIPS 2016, eq. of the cross-stream
                    by ``+`` (``res2+res3``)    residual unit): for each listed stage ``s`` the
                                                motion activation after the first residual unit
                                                of ``s`` (``res{s}a``) is added, unweighted, to
                                                the *residual branch* input of the appearance
                                                unit that follows it:
                                                ``x_{l+1} = ReLU(F(x^a_l + m_l) + shortcut(ReLU
                                                x^a_l))``, ``x^a_l`` the appearance unit's sum
                                                before its ReLU, ``m_l`` the motion unit's
                                                output; the shortcut (trunk) is untouched.
                                                Both towers' class scores are summed.
``st_mul``          same                        multiplier network (CVPR 2017): the branch
                                                input is ``x^a_l * m_l`` instead
``st_add_time``,    same                        the same, with a learnable temporal conv
``st_mul_time``                                 (kernel 3 in time, 1x1 in space, C -> C,
                                                initialised as the identity in time) on the
                                                branch input, over the T frames of a clip
``late_mean``       ``softmax``                 average of the two softmax scores
``late_weighted``   ``softmax``                 weighted average (``late_weights``)
``late_geometric``  ``softmax``                 geometric mean of the softmax scores
==================  ==========================  ===============================================

A spatial or ``*_pool3d`` position may end in ``+fc`` (``res3+fc``): the motion tower is
then kept to its classifier and its class scores are added to the fused network's,
the paper's "ReLU5 + FC8" (fusion at a conv layer *and* at the prediction layer, CVPR
2016 Fig. 4 and Table 2).

Position ``s`` always means "after stage ``s``" (output of ``s``). For ``st_*`` it names
the stage whose first unit sends: the authors' ``fusionLayer`` ``res2a``..``res5a`` are
``res2+res3+res4+res5``; in a one-unit stage (the ``small`` backbone) the receiving unit
is the first unit of the next stage, so ``res5`` then needs ``blocks[3] >= 2``.
Spatial fusion keeps the appearance tower after the fusion point and drops the
motion tower's later stages ("fusion injects the temporal stream into the spatial
one", as in the authors' code), so its parameter count is one tower plus the
motion tower's early stages plus the fusion layer (``concat``: plus the widening of
the next layer).

A fused network takes ``rgb (B, T, 3, H, W)`` and ``flow (B, T, 2L, H, W)`` (T frames
of one clip, each with its flow stack) and returns class scores ``(B, K)``:
per-frame scores are averaged over ``T`` unless a 3D pooling merged the frames.
Late fusion returns log-probabilities (their softmax is the fused probability).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ConfigError
from ..grid import (  # the method names live in grid.py (torch-free: the workflow reads them)
    CROSS_METHODS,
    CROSS_STAGES,
    KEEP_MOTION_SUFFIX,
    LATE_METHODS,
    LATE_POSITION,
    POOL3D_BASES,
    SPATIAL_METHODS,
    TIME_SUFFIX,
)
from .resnet import STAGES, ResNet
from .streams import build_stream


def uses_clips(method: str) -> bool:
    """Whether a method mixes the T frames of a training clip (3D pooling, temporal convs):
    such cells train on ``pool3d_segments`` snippets per clip."""
    return method.endswith(("_pool3d", TIME_SUFFIX))


def known_methods() -> list[str]:
    return (
        list(SPATIAL_METHODS)
        + [f"{b}_pool3d" for b in POOL3D_BASES]
        + list(CROSS_METHODS)
        + list(LATE_METHODS)
    )


# --------------------------------------------------------------------------- layers
def _as_map(x: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """(B, C) vectors as (B, C, 1, 1) maps; returns (map, was_vector)."""
    if x.dim() == 2:
        return x[:, :, None, None], True
    if x.dim() != 4:
        raise ValueError(f"fusion expects (B, C) or (B, C, H, W) features, got shape {tuple(x.shape)}")
    return x, False


def _back(x: torch.Tensor, was_vector: bool) -> torch.Tensor:
    return x.flatten(1) if was_vector else x


def _check_same(a: torch.Tensor, m: torch.Tensor, method: str) -> None:
    if a.shape != m.shape:
        raise ValueError(f"{method} fusion needs equal shapes, got {tuple(a.shape)} and {tuple(m.shape)}")


class SumFusion(nn.Module):
    """``a + m``."""

    def forward(self, a: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        _check_same(a, m, "sum")
        return a + m


class MaxFusion(nn.Module):
    """Element-wise maximum."""

    def forward(self, a: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        _check_same(a, m, "max")
        return torch.maximum(a, m)


class ConcatFusion(nn.Module):
    """``[a, m]`` stacked on channels (2C); the layer after it takes 2C (``widen_after``)."""

    def forward(self, a: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        a, vec = _as_map(a)
        m, _ = _as_map(m)
        if a.shape[-2:] != m.shape[-2:]:
            raise ValueError(f"concat fusion needs equal map sizes, got {tuple(a.shape)} and {tuple(m.shape)}")
        return _back(torch.cat([a, m], dim=1), vec)


class ConvFusion(nn.Module):
    """Stack channels and map back to ``out_channels`` with a 1x1 conv, then ReLU (``relu``).

    ``init="sum"`` (the paper's conv fusion, methods ``conv`` and ``conv_linear``): the
    filter bank starts as ``weights[0] * a + weights[1] * m`` (needs equal channel counts).
    With non-negative weights and post-ReLU inputs (every stage output is one), the ReLU
    passes that start unchanged: ``ReLU(a + m) = a + m``. ``init="random"`` (Kaiming, the
    ``concat_project`` method, no ReLU).
    """

    def __init__(self, ca: int, cm: int, out_channels: int | None = None, init: str = "sum",
                 weights: tuple[float, float] = (1.0, 1.0), relu: bool = True):
        super().__init__()
        out = int(out_channels or ca)
        self.relu = bool(relu)
        self.conv = nn.Conv2d(ca + cm, out, kernel_size=1, bias=True)
        if init == "sum":
            if not (ca == cm == out):
                raise ValueError(f"conv fusion initialised as a sum needs equal channels, got {ca}, {cm} -> {out}")
            with torch.no_grad():
                self.conv.weight.zero_()
                eye = torch.eye(out)
                self.conv.weight[:, :ca, 0, 0] = weights[0] * eye
                self.conv.weight[:, ca:, 0, 0] = weights[1] * eye
                self.conv.bias.zero_()
        elif init == "random":
            nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(self.conv.bias)
        else:
            raise ValueError(f"unknown init {init!r}")

    def forward(self, a: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        a, vec = _as_map(a)
        m, _ = _as_map(m)
        y = self.conv(torch.cat([a, m], dim=1))
        return _back(F.relu(y) if self.relu else y, vec)


class BilinearFusion(nn.Module):
    """Pooled outer product of the two feature maps: ``(B, Ca*Cm)`` vectors.

    ``y = sum over locations of a_xy m_xy^T / (H W)``, then signed square root and L2
    normalisation (as in bilinear CNNs). With ``dim`` set, both inputs are first
    projected to ``dim`` channels by 1x1 convs (the dimension-reduced variant).
    """

    def __init__(self, ca: int, cm: int, dim: int | None = None):
        super().__init__()
        self.proj_a = nn.Conv2d(ca, dim, 1) if dim else nn.Identity()
        self.proj_m = nn.Conv2d(cm, dim, 1) if dim else nn.Identity()
        self.out_features = (dim or ca) * (dim or cm)

    def forward(self, a: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        a, _ = _as_map(a)
        m, _ = _as_map(m)
        if a.shape[-2:] != m.shape[-2:]:
            raise ValueError(f"bilinear fusion needs equal map sizes, got {tuple(a.shape)} and {tuple(m.shape)}")
        a = self.proj_a(a).flatten(2)  # B, Ca, HW
        m = self.proj_m(m).flatten(2)
        y = torch.bmm(a, m.transpose(1, 2)) / a.shape[-1]  # B, Ca, Cm
        y = y.flatten(1)
        y = torch.sign(y) * torch.sqrt(y.abs() + 1e-8)
        return F.normalize(y, dim=1)


class TemporalConv(nn.Module):
    """A ``(k, 1, 1)`` conv over the T frames of a clip, C -> C channels (ST-ResNet's
    ``ConvTime``), initialised as the identity in time: the centre tap is the identity
    matrix, the other taps and the bias zero (zero padding in time)."""

    def __init__(self, channels: int, k: int = 3):
        super().__init__()
        self.conv = nn.Conv3d(channels, channels, kernel_size=(k, 1, 1), padding=(k // 2, 0, 0))
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[:, :, k // 2, 0, 0] = torch.eye(channels)
            self.conv.bias.zero_()

    def forward(self, x: torch.Tensor, t: int) -> torch.Tensor:
        """x: (B*T, C, H, W), frames of a clip consecutive -> the same shape."""
        clip, _ = _to_clip(x, x.shape[0] // t, t)
        y = self.conv(clip)
        return y.permute(0, 2, 1, 3, 4).flatten(0, 1)


class CrossConnection(nn.Module):
    """The motion -> appearance connection of ST-ResNet (``add``) or a multiplier network
    (``mul``): the input of the receiving appearance unit's residual branch.

    ``forward(a_pre, m, t)`` returns ``a_pre + m`` or ``a_pre * m`` (no learned weights),
    ``a_pre`` the sending appearance unit's sum before its ReLU and ``m`` the motion unit's
    output; with ``time`` then a ``TemporalConv`` over the T frames.
    """

    def __init__(self, kind: str, channels: int, time: bool = False):
        super().__init__()
        if kind not in ("add", "mul"):
            raise ValueError(f"unknown cross connection {kind!r}")
        self.kind = kind
        self.time = TemporalConv(channels) if time else None

    def forward(self, a_pre: torch.Tensor, m: torch.Tensor, t: int = 1) -> torch.Tensor:
        _check_same(a_pre, m, f"st_{self.kind}")
        out = a_pre + m if self.kind == "add" else a_pre * m
        return out if self.time is None else self.time(out, t)


def gaussian_kernel(size: int = 3, sigma: float = 1.0) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    k = torch.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


class Conv3dFusion(nn.Module):
    """3D conv over ``[a, m]`` stacked on channels across ``T`` frames, then ReLU.

    Input (B, C, T, H, W) each; ``kernel`` (t, h, w), odd sizes, default 3x3x3 as the
    paper. Initialised as ``sum_t G(t) (w0 a_t + w1 m_t)`` (identity at the spatial centre,
    a temporal Gaussian with sigma 1, as in the authors' 3D fusion; replicate padding), so
    on frames that do not change it equals sum fusion. The ReLU is the 2D conv fusion's
    (the authors' ``insert_conv_layers`` puts one after each fusion conv); on post-ReLU
    inputs and non-negative weights it passes the start unchanged.
    """

    def __init__(self, ca: int, cm: int, weights: tuple[float, float] = (1.0, 1.0),
                 kernel: tuple[int, int, int] = (3, 3, 3)):
        super().__init__()
        if ca != cm:
            raise ValueError(f"conv3d fusion needs equal channels, got {ca} and {cm}")
        kt, kh, kw = (int(k) for k in kernel)
        if min(kt, kh, kw) < 1 or not (kt % 2 and kh % 2 and kw % 2):
            raise ConfigError(f"fusion.train.conv3d_kernel must be three odd sizes >= 1, got {list(kernel)}")
        self.conv = nn.Conv3d(ca + cm, ca, kernel_size=(kt, kh, kw), padding=(kt // 2, kh // 2, kw // 2),
                              padding_mode="replicate")
        g = gaussian_kernel(kt)
        with torch.no_grad():
            self.conv.weight.zero_()
            eye = torch.eye(ca)
            for t in range(kt):
                self.conv.weight[:, :ca, t, kh // 2, kw // 2] = weights[0] * g[t] * eye
                self.conv.weight[:, ca:, t, kh // 2, kw // 2] = weights[1] * g[t] * eye
            self.conv.bias.zero_()

    def forward(self, a: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """a, m: (B, C, T, H, W) -> (B, C, T, H, W)."""
        return F.relu(self.conv(torch.cat([a, m], dim=1)))


def temporal_max_pool(x: torch.Tensor) -> torch.Tensor:
    """3D max pooling over all T frames and a 3x3 spatial neighbourhood (stride 1).

    (B, C, T, H, W) -> (B, C, H, W): the spatial size is kept so that the
    appearance tower's pretrained later stages still apply.
    """
    t = x.shape[2]
    if x.shape[-1] == 1 and x.shape[-2] == 1:
        return x.amax(dim=2)
    return F.max_pool3d(x, kernel_size=(t, 3, 3), stride=1, padding=(0, 1, 1)).squeeze(2)


def make_spatial_fusion(method: str, ca: int, cm: int, *, bilinear_dim: int = 64,
                        conv_init: tuple[float, float] = (1.0, 1.0)) -> nn.Module:
    """The layer that joins two feature maps (or vectors) for a spatial method."""
    if method == "sum":
        return SumFusion()
    if method == "max":
        return MaxFusion()
    if method == "concat":
        return ConcatFusion()
    if method == "concat_project":
        return ConvFusion(ca, cm, ca, init="random", relu=False)
    if method in ("conv", "conv_linear"):
        return ConvFusion(ca, cm, ca, init="sum", weights=tuple(conv_init), relu=method == "conv")
    if method == "bilinear":
        return BilinearFusion(ca, cm, None)
    if method == "bilinear_reduced":
        return BilinearFusion(ca, cm, int(bilinear_dim))
    raise ConfigError(f"fusion: unknown spatial method {method!r} (known: {', '.join(SPATIAL_METHODS)})")


# --------------------------------------------------------------------------- late fusion
def late_combine(logits_a: torch.Tensor, logits_m: torch.Tensor, how: str,
                 weights: tuple[float, float] = (1.0, 1.0)) -> torch.Tensor:
    """Combine two streams' class scores; returns log-probabilities.

    ``mean``: log((p_a + p_m) / 2); ``weighted``: log((w_a p_a + w_m p_m) / (w_a + w_m));
    ``geometric``: log of the normalised geometric mean sqrt(p_a p_m).
    """
    la = F.log_softmax(logits_a, dim=-1)
    lm = F.log_softmax(logits_m, dim=-1)
    if how == "mean":
        return torch.logsumexp(torch.stack([la, lm]), dim=0) - math.log(2.0)
    if how == "weighted":
        wa, wm = (float(w) for w in weights)
        if wa < 0 or wm < 0 or wa + wm <= 0:
            raise ConfigError(f"fusion.late_weights must be non-negative and not both zero, got {weights}")
        s = wa + wm
        parts = []
        if wa > 0:
            parts.append(la + math.log(wa / s))
        if wm > 0:
            parts.append(lm + math.log(wm / s))
        return torch.logsumexp(torch.stack(parts), dim=0)
    if how == "geometric":
        return F.log_softmax((la + lm) / 2.0, dim=-1)
    raise ConfigError(f"fusion: unknown late fusion {how!r} (known: mean, weighted, geometric)")


# --------------------------------------------------------------------------- networks
def parse_position(method: str, position: str) -> tuple[str, ...]:
    """Validate a (method, position) pair; return the stage(s) it names."""
    if method not in known_methods():
        raise ConfigError(f"fusion: unknown method {method!r} (known: {', '.join(known_methods())})")
    if method in LATE_METHODS:
        if position != LATE_POSITION:
            raise ConfigError(f"fusion: late fusion {method!r} takes position {LATE_POSITION!r}, got {position!r}")
        return ()
    if method in CROSS_METHODS:
        stages = tuple(position.split("+"))
    else:
        stages = (position.removesuffix(KEEP_MOTION_SUFFIX),)
        if stages[0] == "pool" and position.endswith(KEEP_MOTION_SUFFIX):
            raise ConfigError(f"fusion: position {position!r}: '+fc' needs a fusion stage before pooling")
    allowed = CROSS_STAGES if method in CROSS_METHODS else STAGES[:-1]  # conv1 .. pool
    for s in stages:
        if s not in allowed:
            raise ConfigError(
                f"fusion: unknown position {s!r} for method {method!r} (known: {', '.join(allowed)}"
                + (", joined by '+'" if method in CROSS_METHODS else "; optionally followed by '+fc'") + ")"
            )
    if method in CROSS_METHODS:
        if len(set(stages)) != len(stages):
            raise ConfigError(f"fusion: position {position!r} repeats a stage")
        stages = tuple(sorted(stages, key=STAGES.index))
    return stages


# stage -> attribute names of a ResNet that hold its parameters
_STAGE_ATTRS = {
    "conv1": ("conv1", "bn1"), "res2": ("layer1",), "res3": ("layer2",), "res4": ("layer3",),
    "res5": ("layer4",), "pool": (), "fc": ("fc",),
}


def widen_after(tower: ResNet, stage: str, extra: int) -> None:
    """Make the appearance tower's layer after ``stage`` take ``C + extra`` input channels
    (concatenation fusion: ``[a, m]`` stacked), with ``extra == C``.

    The layer is the first residual unit of the next stage (its branch's first conv and its
    shortcut; an identity shortcut becomes a 1x1 projection), or the classifier after
    ``res5`` / ``pool``. The new motion half of every widened weight starts as a copy of the
    appearance half (an identity shortcut as ``[I, I]``): the widened layer computes on
    ``[a, m]`` exactly what it computed on ``a + m``, so concatenation starts where sum
    fusion starts and its extra weights are free to tell the streams apart.
    """
    c = tower.stage_channels[stage]
    if int(extra) != c:
        raise ValueError(f"concat fusion needs equal channels, got {c} and {extra}")
    nxt = STAGES[STAGES.index(stage) + 1]
    with torch.no_grad():
        if nxt in CROSS_STAGES:
            unit = getattr(tower, _STAGE_ATTRS[nxt][0])[0]
            unit.conv1 = _widened_conv(unit.conv1)
            if unit.downsample is None:
                proj = nn.Conv2d(2 * c, c, kernel_size=1, bias=False)
                proj.weight.copy_(torch.cat([torch.eye(c), torch.eye(c)], dim=1)[:, :, None, None])
                unit.downsample = nn.Sequential(proj)
            else:
                unit.downsample[0] = _widened_conv(unit.downsample[0])
        else:  # res5 or pool: the classifier (after the parameter-free pooling)
            fc = nn.Linear(2 * c, tower.fc.out_features)
            fc.weight.copy_(torch.cat([tower.fc.weight, tower.fc.weight], dim=1))
            fc.bias.copy_(tower.fc.bias)
            tower.fc = fc


def _widened_conv(conv: nn.Conv2d) -> nn.Conv2d:
    new = nn.Conv2d(2 * conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    bias=conv.bias is not None)
    new.weight.copy_(torch.cat([conv.weight, conv.weight], dim=1))
    if conv.bias is not None:
        new.bias.copy_(conv.bias)
    return new


def _drop_after(tower: nn.Module, stage: str) -> None:
    """Replace the parameter-holding modules of the stages after ``stage`` by Identity."""
    for s in STAGES[STAGES.index(stage) + 1 :]:
        for attr in _STAGE_ATTRS[s]:
            setattr(tower, attr, nn.Identity())


def _frames(x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """(B, T, C, H, W) -> (B*T, C, H, W), B, T; (N, C, H, W) is T = 1."""
    if x.dim() == 5:
        b, t = x.shape[:2]
        return x.flatten(0, 1), b, t
    if x.dim() == 4:
        return x, x.shape[0], 1
    raise ValueError(f"fusion network expects (B, T, C, H, W) or (N, C, H, W) input, got {tuple(x.shape)}")


def _to_clip(h: torch.Tensor, b: int, t: int) -> tuple[torch.Tensor, bool]:
    """(B*T, C[, H, W]) -> (B, C, T, H, W) (vectors as 1x1 maps); returns (clip, was_vector)."""
    h, vec = _as_map(h)
    c, hh, ww = h.shape[1:]
    return h.reshape(b, t, c, hh, ww).permute(0, 2, 1, 3, 4), vec


class FusionNet(nn.Module):
    """Two streams joined by ``method`` at ``position`` (see the module docstring).

    Built from two stream models (``twostream.models.stream_model``), usually holding
    their trained weights: ``FusionNet(rgb, flow, "conv", "res3")``.
    """

    modalities = ("rgb", "flow")

    def __init__(self, rgb: nn.Module, flow: nn.Module, method: str, position: str, *,
                 bilinear_dim: int = 64, conv_init: tuple[float, float] = (1.0, 1.0),
                 late_weights: tuple[float, float] = (1.0, 1.0), dropout: float | None = None,
                 conv3d_kernel: tuple[int, int, int] = (3, 3, 3)):
        super().__init__()
        self.stages = parse_position(method, position)
        if rgb.num_classes != flow.num_classes:
            raise ConfigError(f"fusion: streams disagree on classes ({rgb.num_classes} vs {flow.num_classes})")
        self.method, self.position = method, position
        self.num_classes = rgb.num_classes
        self.late_weights = tuple(float(w) for w in late_weights)
        self.rgb, self.flow = rgb, flow
        if dropout is not None:
            self.rgb.dropout.p = float(dropout)
            self.flow.dropout.p = float(dropout)
        self.kind = (
            "late" if method in LATE_METHODS else "cross" if method in CROSS_METHODS
            else "pool3d" if method.endswith("_pool3d") else "spatial"
        )
        self.head: nn.Module | None = None
        self.keep_motion = False
        if self.kind == "late":
            return
        if self.kind == "cross":
            for s in self.stages:
                if rgb.stage_channels[s] != flow.stage_channels[s]:
                    raise ConfigError(f"fusion: {method} at {s} needs equal channels, got {rgb.stage_channels[s]} "
                                      f"and {flow.stage_channels[s]}")
                if s == "res5" and len(rgb.layer4) < 2:
                    raise ConfigError(f"fusion: {method} at res5 needs a second residual unit in res5 to receive "
                                      "the motion signal (model.blocks[3] >= 2, or an ImageNet ResNet)")
            kind = method.removeprefix("st_").removesuffix(TIME_SUFFIX)
            self.connections = nn.ModuleDict({
                s: CrossConnection(kind, rgb.stage_channels[s], time=method.endswith(TIME_SUFFIX))
                for s in self.stages
            })
            return
        stage = self.stages[0]
        ca, cm = rgb.stage_channels[stage], flow.stage_channels[stage]
        self.keep_motion = position.endswith(KEEP_MOTION_SUFFIX)
        if not self.keep_motion:
            _drop_after(self.flow, stage)  # the motion tower ends at the fusion point
        base = method.removesuffix("_pool3d")
        if base == "conv3d":
            self.fuse: nn.Module = Conv3dFusion(ca, cm, tuple(conv_init), tuple(conv3d_kernel))
        else:
            self.fuse = make_spatial_fusion(base, ca, cm, bilinear_dim=bilinear_dim, conv_init=tuple(conv_init))
        if base == "concat":
            widen_after(self.rgb, stage, cm)  # the next layer takes the 2C stacked channels
        if base.startswith("bilinear"):
            _drop_after(self.rgb, stage)  # a new classifier on the bilinear vector
            self.head = nn.Sequential(nn.Dropout(self.rgb.dropout.p), nn.Linear(self.fuse.out_features, self.num_classes))

    def frozen_stages(self) -> tuple[str, ...]:
        """The stages of both towers wholly before the fusion: up to and including the fusion
        stage of a spatial or 3D-pooled cell, the stages before the first connected one of a
        cross-stream cell, none of a late cell."""
        if self.kind == "late":
            return ()
        end = STAGES.index(self.stages[0]) + (0 if self.kind == "cross" else 1)
        return tuple(STAGES[:end])

    def freeze_to_fusion(self) -> None:
        """Keep the frozen stages (``frozen_stages``) as trained: no gradients, and their
        batch norms stay in eval mode (running statistics) whatever ``train()`` says. With no
        trainable layer below the fusion, autograd runs no backward pass through them."""
        self._frozen = [tower.stage_module(s) for tower in (self.rgb, self.flow) for s in self.frozen_stages()]
        for m in self._frozen:
            m.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> "FusionNet":
        super().train(mode)
        for m in getattr(self, "_frozen", ()):
            m.eval()
        return self

    def forward(self, rgb: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        x, b, t = _frames(rgb)
        y, b2, t2 = _frames(flow)
        if (b, t) != (b2, t2):
            raise ValueError(f"rgb and flow clips differ: {tuple(rgb.shape)} vs {tuple(flow.shape)}")
        if self.kind == "late":
            how = self.method.removeprefix("late_")
            out = late_combine(self.rgb(x), self.flow(y), how, self.late_weights)
        elif self.kind == "cross":
            out = self._cross(x, y, t)
        else:
            stage = self.stages[0]
            a = self.rgb.forward_to(x, stage)
            m = self.flow.forward_to(y, stage)
            if self.kind == "pool3d":
                if isinstance(self.fuse, Conv3dFusion):
                    ac, vec = _to_clip(a, b, t)
                    mc, _ = _to_clip(m, b, t)
                    f = self.fuse(ac, mc)
                else:
                    f, vec = _to_clip(self.fuse(a, m), b, t)
                f = _back(temporal_max_pool(f), vec)
                out = self.rgb.forward_from(f, stage)  # (B, K): the frames are merged
                if self.keep_motion:
                    out = out + self.flow.forward_from(m, stage).reshape(b, t, -1).mean(dim=1)
                return out
            f = self.fuse(a, m)
            out = self.head(f) if self.head is not None else self.rgb.forward_from(f, stage)
            if self.keep_motion:
                out = out + self.flow.forward_from(m, stage)
        return out.reshape(b, t, -1).mean(dim=1)

    def _cross(self, x: torch.Tensor, y: torch.Tensor, t: int) -> torch.Tensor:
        """ST-ResNet / multiplier network: both towers run unit by unit; after the first
        unit of each connected stage the connection's output becomes the residual-branch
        input of the next appearance unit (see the module docstring)."""
        a = self.rgb.run_stage("conv1", self.rgb.normalize(x))
        m = self.flow.run_stage("conv1", self.flow.normalize(y))
        pending: list[torch.Tensor] = []  # branch input waiting for the next appearance unit
        for s in CROSS_STAGES:
            sent: list[torch.Tensor] = []

            def motion_unit(j, unit, h, s=s, sent=sent):
                out = unit(h)
                if j == 0 and s in self.connections:
                    sent.append(out)
                return out

            def appearance_unit(j, unit, h, s=s, sent=sent):
                pre = unit.preactivation(h, pending.pop() if pending else None)
                if j == 0 and s in self.connections:
                    pending.append(self.connections[s](pre, sent[0], t))
                return F.relu(pre)

            m = self.flow.run_stage(s, m, motion_unit)
            a = self.rgb.run_stage(s, a, appearance_unit)
        if pending:  # FusionNet's checks make this unreachable
            raise RuntimeError("a cross-stream connection had no receiving unit")
        # both towers' class scores, as ST-ResNet sums (averages) them
        return self.rgb.forward_from(a, "res5") + self.flow.forward_from(m, "res5")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def fusion_spec(rgb_spec: dict, flow_spec: dict, method: str, position: str, *, bilinear_dim: int = 64,
                conv_init=(1.0, 1.0), late_weights=(1.0, 1.0), dropout: float | None = None,
                conv3d_kernel=(3, 3, 3)) -> dict:
    """The ``spec`` a fused checkpoint stores; ``build_fusion(spec)`` rebuilds the network."""
    return {
        "kind": "fusion", "method": method, "position": position, "rgb": dict(rgb_spec),
        "flow": dict(flow_spec), "bilinear_dim": int(bilinear_dim), "conv_init": [float(w) for w in conv_init],
        "late_weights": [float(w) for w in late_weights], "dropout": None if dropout is None else float(dropout),
        "conv3d_kernel": [int(k) for k in conv3d_kernel],
    }


def build_fusion(spec: dict) -> FusionNet:
    """Rebuild a fused network from its spec (weights are not loaded)."""
    net = FusionNet(
        build_stream(spec["rgb"]), build_stream(spec["flow"]), spec["method"], spec["position"],
        bilinear_dim=spec.get("bilinear_dim", 64), conv_init=tuple(spec.get("conv_init", (1.0, 1.0))),
        late_weights=tuple(spec.get("late_weights", (1.0, 1.0))), dropout=spec.get("dropout"),
        conv3d_kernel=tuple(spec.get("conv3d_kernel", (3, 3, 3))),
    )
    net.spec = dict(spec)
    return net


def fuse_streams(rgb: nn.Module, flow: nn.Module, method: str, position: str, **options) -> FusionNet:
    """A fused network initialised from two (trained) stream models, with its ``spec``."""
    net = FusionNet(rgb, flow, method, position, **options)
    net.spec = fusion_spec(rgb.spec, flow.spec, method, position, **options)
    return net
