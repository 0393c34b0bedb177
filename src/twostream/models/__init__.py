"""Models: ResNet backbones with named stages, the two streams, and a registry of model kinds.

Every trained model is saved with a ``spec`` dict (``checkpoint["spec"]``) whose ``"kind"``
names a builder in ``MODEL_BUILDERS``; ``build_model(spec)`` rebuilds the network and
``load_model(path)`` rebuilds it and loads its weights. Single streams are kind
``"stream"``, fused networks ``"fusion"``; ``register_model(kind, builder)`` adds a kind.

A built model has ``modalities`` (e.g. ``("rgb",)``, ``("flow",)`` or ``("rgb", "flow")``)
and is called as ``model(*[inputs[m] for m in model.modalities])`` (see ``call_model``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from ..errors import InputError
from .fusion import build_fusion
from .resnet import ARCHS, SPATIAL_STAGES, STAGES, ResNet, cross_modality_weight, load_pretrained, resnet
from .streams import STREAMS, build_stream, flow_channels, init_motion_from_rgb, stream_model

MODEL_BUILDERS: dict[str, Callable[[dict[str, Any]], nn.Module]] = {"stream": build_stream, "fusion": build_fusion}


def register_model(kind: str, builder: Callable[[dict[str, Any]], nn.Module]) -> None:
    """Make ``build_model`` know how to rebuild models whose ``spec["kind"] == kind``."""
    MODEL_BUILDERS[kind] = builder


def build_model(spec: dict[str, Any]) -> nn.Module:
    kind = spec.get("kind")
    if kind not in MODEL_BUILDERS:
        raise InputError(f"unknown model kind {kind!r} (known: {', '.join(MODEL_BUILDERS)})")
    model = MODEL_BUILDERS[kind](spec)
    if not hasattr(model, "spec"):
        model.spec = dict(spec)
    return model


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # noqa: BLE001
        raise InputError(f"{path}: not a readable checkpoint ({e})") from None
    if not isinstance(ckpt, dict) or "spec" not in ckpt or "model" not in ckpt:
        raise InputError(f"{path}: not a twostream checkpoint (needs 'spec' and 'model')")
    return ckpt


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model of a checkpoint and load its weights; returns (model in eval mode, checkpoint)."""
    ckpt = read_checkpoint(path, map_location)
    model = build_model(ckpt["spec"])
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, ckpt


def call_model(model: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """Run ``model`` on the modalities it takes, from a dict modality -> tensor."""
    return model(*[inputs[m] for m in model.modalities])


__all__ = [
    "ARCHS", "STAGES", "SPATIAL_STAGES", "STREAMS", "ResNet", "resnet", "stream_model", "build_stream",
    "cross_modality_weight", "load_pretrained", "init_motion_from_rgb", "flow_channels",
    "MODEL_BUILDERS", "register_model", "build_model", "read_checkpoint", "load_model", "call_model",
]
