"""Single-stream training (``twostream train``), resumable after any crash.

``twostream train --stream rgb|flow --frames <shards..> --flow <shards..> --out DIR
[--params JSON | --config FILE] [--threads N] [--device auto|cpu|cuda] [--workers N]``

writes ``DIR/checkpoint.pt`` (the final model) and ``DIR/history.csv`` (``epoch, loss,
train_acc, val_acc, lr, seconds``). This module builds the data, the model and its step;
``twostream.engine`` runs the fit loop (torchvision-style ``train_one_epoch`` / ``evaluate``),
data parallel under ``torchrun --nproc_per_node N``.

Resuming. After every epoch the complete state (model, optimizer, scheduler, RNG states,
history, the settings and inputs that made it, and a hash of the code ``twostream train``
imports) is written atomically to ``DIR/resume.pt``, which is not a Snakemake output, so
Snakemake does not delete it when a killed job is rerun. A run whose settings, inputs and
code match ``resume.pt`` continues after its last epoch; otherwise it starts over (and says
why). The data randomness of item ``i`` in epoch ``e`` depends only on ``(seed, e, i)``, the
shuffling on ``(seed, e)``, and dropout on the restored torch RNG, so on CPU (with the same
thread count) a resumed run ends with exactly the weights of an uninterrupted one.
``resume.pt`` is removed when the run completes.

Checkpoint dict (``checkpoint.pt`` and ``resume.pt``): ``spec`` (rebuilds the model, see
``twostream.models.build_model``), ``model`` (state_dict), ``data`` (``modalities``,
``flow_length``, ``crop_size``: what the evaluation needs), ``class_names``, ``config``
(this stage's settings), ``stream``, ``inputs``, ``optimizer``, ``scheduler``, ``rng``,
``epoch`` (epochs done), ``history``, ``code`` and ``versions``.

Each snippet of the K TSN segments is scored and the K logits are averaged (segmental
consensus) before the cross-entropy. The validation accuracy after each epoch uses the
validation split (``val``: never the test split) with ``val_frames`` uniformly spaced centre
crops per video; it is reported, never used to pick weights (the final weights are those of
the last epoch).
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
from .config import (
    STREAM_KEYS, ConfigError, add_params_arguments, from_dict, section_from_args, settings, stream_section,
)
from .data import ClipDataset
from .engine import FitSettings, build_scheduler, fit, pick_device, seed_everything, setup
from .models import stream_model



@settings("train", not_fields=STREAM_KEYS)
class TrainConfig(FitSettings):
    """Settings of the ``train:`` section (see config/README.md); the fit settings are the
    engine's ``FitSettings``."""

    arch: str
    widths: list[int]
    blocks: list[int]
    pretrained: str
    flow_length: int
    flow_std: float
    flow_mean_subtraction: bool
    seed: int



def stream_config(section: dict[str, Any], stream: str) -> TrainConfig:
    """The settings for one stream: the section's keys with its ``rgb:``/``flow:`` overrides."""
    over = (section or {}).get(stream) or {}
    if not isinstance(over, dict):
        raise ConfigError(f"train.{stream} must be a mapping of overrides")
    from_dict(TrainConfig, over, f"train.{stream}")  # validates the override keys
    return from_dict(TrainConfig, stream_section(section, stream), "train")


# ------------------------------------------------------------------ building blocks
def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)  # no weight decay on BN and biases
    return torch.optim.SGD(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr, momentum=cfg.momentum,
    )


def segment_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(B, K, C, H, W) snippets -> (B, classes) logits averaged over the K segments."""
    B, K = x.shape[:2]
    return model(x.flatten(0, 1)).view(B, K, -1).mean(1)


# ------------------------------------------------------------------ main
def main(args: argparse.Namespace) -> int:
    section = section_from_args(args, "train")
    stream = args.stream
    cfg = stream_config(section, stream)
    workers = cfg.workers if args.workers is None else int(args.workers)
    run = setup(args.device, args.threads, workers)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    frames = [str(p) for p in (args.frames or [])]
    flow = [str(p) for p in (args.flow or [])]
    data_kw = dict(frames=frames if stream == "rgb" else (), flow=flow if stream == "flow" else (),
                   modalities=(stream,), flow_length=cfg.flow_length, crop_size=cfg.crop_size)
    train_ds = ClipDataset(split="train", mode="train", segments=cfg.segments, scales=cfg.scales,
                           flip=cfg.flip, seed=cfg.seed, **data_kw)
    val_ds = ClipDataset(split="val", mode="test", test_frames=cfg.val_frames, test_crops=1, **data_kw)

    seed_everything(cfg.seed)
    model = stream_model(stream, train_ds.num_classes, arch=cfg.arch, flow_length=cfg.flow_length,
                         dropout=cfg.dropout, widths=cfg.widths, blocks=cfg.blocks, flow_std=cfg.flow_std,
                         pretrained=cfg.pretrained, flow_mean_subtraction=cfg.flow_mean_subtraction).to(run.device)
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg)
    inputs = {"frames": [Path(p).name for p in data_kw["frames"]], "flow": [Path(p).name for p in data_kw["flow"]]}
    fingerprint = {"config": dataclasses.asdict(cfg), "stream": stream, "inputs": inputs,
                   "num_classes": train_ds.num_classes, "code": command_hash("train")}
    if run.main:
        print(f"twostream train: {stream} stream, {len(train_ds)} train / {len(val_ds.videos)} val videos, "
              f"{train_ds.num_classes} classes, {cfg.arch}, device {run.device}, {torch.get_num_threads()} threads, "
              f"{workers} workers, {run.world} process(es)", file=sys.stderr)

    def forward(net: nn.Module, batch: dict) -> torch.Tensor:
        return segment_logits(net, batch[stream].to(run.device, non_blocking=True))

    meta = {"data": {"modalities": [stream], "flow_length": cfg.flow_length, "crop_size": cfg.crop_size},
            "class_names": train_ds.class_names, "config": dataclasses.asdict(cfg), "stream": stream,
            "inputs": inputs}
    fit(tag="twostream train", section="train", model=model, forward=forward, optimizer=optimizer,
        scheduler=scheduler, cfg=cfg, run=run, train_ds=train_ds, val_ds=val_ds, seed=cfg.seed,
        epochs=cfg.epochs, workers=workers, out=out, fingerprint=fingerprint, meta=meta)
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stream", required=True, choices=STREAM_KEYS, help="rgb (appearance) or flow (motion)")
    p.add_argument("--frames", nargs="*", default=[], help="frames shards (needed by the rgb stream)")
    p.add_argument("--flow", nargs="*", default=[], help="flow shards (needed by the flow stream)")
    add_output_arguments(p, "train")


def add_output_arguments(p: argparse.ArgumentParser, section: str) -> None:
    """--out, --params/--config and the run-time options shared by the training commands."""
    p.add_argument("--out", required=True, help="output folder: checkpoint.pt, history.csv")
    add_params_arguments(p)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--workers", type=int, default=None, help=f"DataLoader workers (default: {section}.workers)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto: cuda when present")


def run(args: argparse.Namespace) -> int:
    return main(args)


__all__ = ["TrainConfig", "stream_config", "main", "segment_logits", "build_optimizer", "pick_device"]
