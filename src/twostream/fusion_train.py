"""Fine-tune one fused two-stream network (``twostream train-fusion``), resumable.

``twostream train-fusion --method conv --position res3 --seed 0
--rgb-checkpoint results/models/rgb/checkpoint.pt --flow-checkpoint results/models/flow/checkpoint.pt
--frames <shards..> --flow <shards..> --out results/models/fusion-conv-res3-s0
[--params JSON | --config FILE]``

The network (see ``twostream.models.fusion``) is initialised from the two trained
single-stream checkpoints, as in the papers, and fine-tuned on the training split with
the settings of the ``fusion.train`` section. Each training item is a clip of T snippets
at TSN segment positions, each an RGB frame with the flow stack around it: per-frame
scores are averaged over the T = ``segments`` snippets (spatial, cross-stream fusion), or
the T = ``pool3d_segments`` frames are merged by 3D pooling (``*_pool3d``) or mixed by
temporal convs (``st_*_time``). Late fusion
(``late_*``) trains nothing: its checkpoint holds the two streams and an empty history.

Writes ``OUT/checkpoint.pt`` (the dict of ``twostream.train``: ``spec``, ``model``,
``data``, ``class_names``, ``config`` ...) and ``OUT/history.csv`` (``epoch, loss,
train_acc, val_acc, lr, seconds``). The fit loop, resuming and data parallel training are
``twostream.engine``'s: after every epoch the state goes to ``OUT/resume.pt`` (not a
Snakemake output); a rerun with the same settings, inputs and code continues from it, and
on CPU ends with exactly the weights of an uninterrupted run.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .codehash import command_hash
from .config import ConfigError, from_dict, section_from_args, settings
from .data import ClipDataset
from .engine import FitSettings, build_scheduler, fit, seed_everything, setup
from .errors import InputError
from .models import load_model
from .models.fusion import LATE_METHODS, count_parameters, fuse_streams, parse_position, uses_clips
from .train import add_output_arguments

GRID_KEYS = ("grid", "table")  # fusion sections that are not training settings


@settings("fusion.train")
class FusionTrainConfig(FitSettings):
    """Settings of the ``fusion.train`` section (see config/README.md); the fit settings are
    the engine's ``FitSettings`` (``segments``: snippets per clip and step for spatial, cross
    and late cells; ``crop_size`` 0: the streams' crop size; ``val_frames`` 0: no validation
    pass per epoch, the evaluate stage scores the val split)."""

    stream_lr: float  # learning rate factor of the pretrained stream layers (0 freezes them)
    freeze_to_fusion: bool  # the stream layers up to the fusion point keep their weights and BN statistics
    pool3d_segments: int  # T snippets per clip for *_pool3d and st_*_time cells (mixing over T needs T >= 2)
    bilinear_dim: int
    conv_init: list[float]
    conv3d_kernel: list[int]
    late_weights: list[float]



def train_config(section: dict[str, Any] | None) -> FusionTrainConfig:
    """``fusion.train`` settings from the ``fusion`` section or from the ``train`` subsection itself."""
    d = dict(section or {})
    if "train" in d or any(k in d for k in GRID_KEYS):
        d = dict(d.get("train") or {})
    return from_dict(FusionTrainConfig, d, "fusion.train")


# ------------------------------------------------------------------ building blocks
def load_streams(rgb_path: str | Path, flow_path: str | Path):
    """The two trained stream models and their checkpoints."""
    rgb, rgb_ck = load_model(rgb_path)
    flow, flow_ck = load_model(flow_path)
    for path, m, want in ((rgb_path, rgb, ("rgb",)), (flow_path, flow, ("flow",))):
        if tuple(getattr(m, "modalities", ())) != want:
            raise InputError(f"{path}: expected the {want[0]} stream checkpoint, got modalities {getattr(m, 'modalities', None)}")
    if rgb.num_classes != flow.num_classes:
        raise InputError(f"{flow_path}: {flow.num_classes} classes, but {rgb_path} has {rgb.num_classes}")
    return rgb, rgb_ck, flow, flow_ck


def build_fused(method: str, position: str, rgb, flow, cfg: FusionTrainConfig):
    return fuse_streams(rgb, flow, method, position, bilinear_dim=cfg.bilinear_dim, conv_init=tuple(cfg.conv_init),
                        late_weights=tuple(cfg.late_weights), dropout=cfg.dropout,
                        conv3d_kernel=tuple(cfg.conv3d_kernel))


def build_optimizer(model: nn.Module, cfg: FusionTrainConfig) -> torch.optim.Optimizer:
    """SGD; the pretrained stream layers learn at ``lr * stream_lr``, new fusion layers at ``lr``;
    no weight decay on biases and BN parameters."""
    groups: dict[tuple[bool, bool], list] = {}
    if cfg.freeze_to_fusion:
        model.freeze_to_fusion()
    for name, p in model.named_parameters():
        pretrained = name.startswith(("rgb.", "flow."))
        if not p.requires_grad:
            continue
        if pretrained and cfg.stream_lr == 0:
            p.requires_grad_(False)
            continue
        groups.setdefault((pretrained, p.ndim <= 1), []).append(p)
    params = [
        {"params": ps, "lr": cfg.lr * (cfg.stream_lr if pre else 1.0), "weight_decay": 0.0 if flat else cfg.weight_decay}
        for (pre, flat), ps in sorted(groups.items())
    ]
    if not params:
        raise ConfigError("fusion.train: nothing to train (stream_lr is 0 and the method adds no layers)")
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum)


# ------------------------------------------------------------------ main
def main(args: argparse.Namespace) -> int:
    cfg = train_config(section_from_args(args, "fusion"))
    method, position, seed = args.method, args.position, int(args.seed)
    parse_position(method, position)  # a clear error before any loading
    workers = cfg.workers if args.workers is None else int(args.workers)
    run = setup(args.device, args.threads, workers)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    seed_everything(seed)
    rgb, rgb_ck, flow, flow_ck = load_streams(args.rgb_checkpoint, args.flow_checkpoint)
    model = build_fused(method, position, rgb, flow, cfg).to(run.device)
    flow_length = int(flow.flow_length)
    crop_size = int(cfg.crop_size or (rgb_ck.get("data") or {}).get("crop_size") or 224)
    epochs = 0 if method in LATE_METHODS else cfg.epochs
    inputs = {"frames": [Path(p).name for p in args.frames or []], "flow": [Path(p).name for p in args.flow or []],
              "rgb_checkpoint": str(args.rgb_checkpoint), "flow_checkpoint": str(args.flow_checkpoint)}
    fingerprint = {"config": dataclasses.asdict(cfg), "cell": [method, position, seed], "inputs": inputs,
                   "streams": [rgb_ck.get("code"), flow_ck.get("code"), rgb_ck.get("epoch"), flow_ck.get("epoch")],
                   "code": command_hash("train-fusion")}
    optimizer = build_optimizer(model, cfg) if epochs else None
    scheduler = build_scheduler(optimizer, cfg) if epochs else None
    if run.main:
        print(f"twostream train-fusion: {method} at {position}, seed {seed}, {count_parameters(model)} parameters, "
              f"{epochs} epochs, device {run.device}, {torch.get_num_threads()} threads, {workers} workers, "
              f"{run.world} process(es)", file=sys.stderr)

    train_ds = val_ds = None
    if epochs:
        data_kw = dict(frames=[str(p) for p in args.frames or []], flow=[str(p) for p in args.flow or []],
                       modalities=("rgb", "flow"), flow_length=flow_length, crop_size=crop_size)
        segments = cfg.pool3d_segments if uses_clips(method) else cfg.segments
        train_ds = ClipDataset(split="train", mode="train", segments=segments, scales=cfg.scales,
                               flip=cfg.flip, seed=seed, **data_kw)
        if train_ds.num_classes != model.num_classes:
            raise InputError(f"{args.frames[0]}: shards have {train_ds.num_classes} classes, the streams "
                             f"{model.num_classes}")
        if cfg.val_frames:
            val_ds = ClipDataset(split="val", mode="test", test_frames=cfg.val_frames, test_crops=1, **data_kw)

    def forward(net: nn.Module, batch: dict) -> torch.Tensor:
        """Clips {"rgb": (B, T, 3, S, S), "flow": (B, T, 2L, S, S)}: the fused network merges the T snippets."""
        return net(*[batch[m].to(run.device, non_blocking=True) for m in model.modalities])

    meta = {"data": {"modalities": list(model.modalities), "flow_length": flow_length, "crop_size": crop_size},
            "class_names": list(rgb_ck.get("class_names") or []), "config": dataclasses.asdict(cfg),
            "cell": {"method": method, "position": position, "seed": seed}, "inputs": inputs,
            "n_parameters": count_parameters(model)}
    fit(tag="twostream train-fusion", section="fusion.train", model=model, forward=forward, optimizer=optimizer,
        scheduler=scheduler, cfg=cfg, run=run, train_ds=train_ds, val_ds=val_ds, seed=seed, epochs=epochs,
        workers=workers, out=out, fingerprint=fingerprint, meta=meta)
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", required=True, help="fusion method (sum, max, concat, conv, bilinear, ...)")
    p.add_argument("--position", required=True, help="stage after which to fuse (res2..res5, pool; softmax for late)")
    p.add_argument("--seed", type=int, default=0, help="seed of the fine-tuning (data order, new layers)")
    p.add_argument("--rgb-checkpoint", required=True, help="trained appearance stream checkpoint.pt")
    p.add_argument("--flow-checkpoint", required=True, help="trained motion stream checkpoint.pt")
    p.add_argument("--frames", nargs="*", default=[], help="frames shards")
    p.add_argument("--flow", nargs="*", default=[], help="flow shards")
    add_output_arguments(p, "fusion.train")


def run(args: argparse.Namespace) -> int:
    return main(args)


__all__ = ["FusionTrainConfig", "train_config", "build_optimizer", "load_streams", "build_fused", "main"]
