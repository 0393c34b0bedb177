"""The two streams: appearance (one RGB frame) and motion (a stack of L flow fields).

API (stable)
------------
``stream_model(stream, num_classes, arch="small", flow_length=10, dropout=0.5,
               widths=None, blocks=None, flow_std=1.0, pretrained="", flow_mean_subtraction=True) -> ResNet``
    ``stream`` is ``"rgb"`` (appearance, 3 input channels, RGB in [0, 1], normalised inside
    with ImageNet mean/std) or ``"flow"`` (motion, ``2 * flow_length`` input channels in
    pixels/frame, normalised inside as ``(x - spatial mean of each channel) / flow_std``;
    the mean subtraction, camera-motion compensation as in Simonyan & Zisserman 2014, is
    on unless ``flow_mean_subtraction=False``). The returned ``ResNet`` (see
    ``resnet.py``: named stages, ``forward_to``/``forward_from``/``forward_stages``) also
    carries ``modalities`` (``("rgb",)`` or ``("flow",)``), ``stream`` and ``spec``: the dict
    that ``build_stream(spec)`` (and ``twostream.models.build_model``) rebuilds it from.
    ``pretrained``: path of a torchvision-named state_dict (ImageNet) or of one of our
    checkpoints; for the motion stream a 3-channel ``conv1`` is adapted by cross-modality
    initialisation.

Motion input channel order: flow fields interleaved, ``x0, y0, x1, y1, ..., x(L-1), y(L-1)``,
where field ``k`` is the motion from frame ``t + k`` to ``t + k + 1`` (``flow_channels`` /
``flow_stack_to_channels`` convert a (L, H, W, 2) stack). ``x`` is positive to the right,
``y`` positive downwards (OpenCV convention).

``init_motion_from_rgb(motion, rgb)``: cross-modality initialisation of a motion stream from an
RGB model's weights (``conv1`` averaged over RGB and replicated over the 2L channels, every
other layer copied except a mis-shaped ``fc``).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from .resnet import ResNet, cross_modality_weight, load_pretrained, resnet

STREAMS = ("rgb", "flow")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def stream_channels(stream: str, flow_length: int) -> int:
    if stream == "rgb":
        return 3
    if stream == "flow":
        return 2 * int(flow_length)
    raise ValueError(f"unknown stream {stream!r} (streams: rgb, flow)")


def stream_model(
    stream: str,
    num_classes: int,
    arch: str = "small",
    flow_length: int = 10,
    dropout: float = 0.5,
    widths: Sequence[int] | None = None,
    blocks: Sequence[int] | None = None,
    flow_std: float = 1.0,
    pretrained: str = "",
    flow_mean_subtraction: bool = True,
) -> ResNet:
    """Appearance (``"rgb"``) or motion (``"flow"``) stream; see the module docstring."""
    in_ch = stream_channels(stream, flow_length)
    model = resnet(arch, in_ch, num_classes, dropout, widths, blocks)
    if stream == "rgb":
        model.set_input_normalization(IMAGENET_MEAN, IMAGENET_STD)
    else:
        model.set_input_normalization(0.0, float(flow_std))
        model.center_input = bool(flow_mean_subtraction)
    model.stream = stream
    model.modalities = (stream,)
    model.flow_length = int(flow_length)
    model.spec = {
        "kind": "stream", "stream": stream, "num_classes": int(num_classes), "arch": arch,
        "flow_length": int(flow_length), "dropout": float(dropout),
        "widths": list(model.config["widths"]), "blocks": list(model.config["blocks"]),
        "flow_std": float(flow_std), "flow_mean_subtraction": bool(flow_mean_subtraction),
    }
    if pretrained:
        load_pretrained(model, pretrained)
    return model


def build_stream(spec: dict[str, Any]) -> ResNet:
    """Rebuild a stream from its ``spec`` (weights are not loaded)."""
    kw = {k: v for k, v in spec.items() if k != "kind"}
    return stream_model(**kw)


def init_motion_from_rgb(motion: ResNet, rgb: ResNet | dict) -> list[str]:
    """Cross-modality initialisation of ``motion`` from an RGB model or state_dict."""
    state = rgb.state_dict() if isinstance(rgb, torch.nn.Module) else rgb
    return load_pretrained(motion, state)


def flow_stack_to_channels(stack: np.ndarray) -> np.ndarray:
    """(L, H, W, 2) flow stack -> (2L, H, W) channels ``x0, y0, x1, y1, ...``."""
    L, H, W, two = stack.shape
    assert two == 2
    return np.ascontiguousarray(stack.transpose(0, 3, 1, 2).reshape(2 * L, H, W))


def flow_channels(flow_length: int) -> list[str]:
    """Names of the motion input channels in order: ``["x0", "y0", "x1", "y1", ...]``."""
    return [f"{a}{k}" for k in range(int(flow_length)) for a in ("x", "y")]


__all__ = [
    "STREAMS", "IMAGENET_MEAN", "IMAGENET_STD", "stream_channels", "stream_model", "build_stream",
    "init_motion_from_rgb", "flow_stack_to_channels", "flow_channels", "cross_modality_weight",
]
