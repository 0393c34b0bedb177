"""Single-stream training (``twostream train``), resumable after any crash.

``twostream train --stream rgb|flow --frames <shards..> --flow <shards..> --out DIR
[--params JSON | --config FILE] [--threads N] [--device auto|cpu|cuda] [--workers N]``

writes ``DIR/checkpoint.pt`` (the final model) and ``DIR/history.csv`` (``epoch, loss,
train_acc, val_acc, lr, seconds``), in the style of torchvision's reference scripts
(``train_one_epoch`` / ``evaluate`` / ``main(args)``).

Resuming. After every epoch the complete state (model, optimizer, scheduler, RNG states,
history, the settings and inputs that made it, and a hash of this code) is written
atomically to ``DIR/resume.pt``, which is not a Snakemake output, so Snakemake does not delete
it when a killed job is rerun. A run whose settings, inputs and code match ``resume.pt``
continues after its last epoch; otherwise it starts over (and says why). The data
randomness of item ``i`` in epoch ``e`` depends only on ``(seed, e, i)``, the shuffling on
``(seed, e)``, and dropout on the restored torch RNG, so on CPU (with the same thread
count) a resumed run ends with exactly the weights of an uninterrupted one. ``resume.pt``
is removed when the run completes.

Checkpoint dict (``checkpoint.pt`` and ``resume.pt``): ``spec`` (rebuilds the model, see
``twostream.models.build_model``), ``model`` (state_dict), ``data`` (``modalities``,
``flow_length``, ``crop_size``: what the evaluation needs), ``class_names``, ``config``
(this stage's settings), ``stream``, ``inputs``, ``optimizer``, ``scheduler``, ``rng``,
``epoch`` (epochs done), ``history``, ``code`` and ``versions``.

Each snippet of the K TSN segments is scored and the K logits are averaged (segmental
consensus) before the cross-entropy. The validation accuracy after each epoch uses the
test split with ``val_frames`` uniformly spaced centre crops per video; it is reported,
never used to pick weights (the final weights are those of the last epoch).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, RandomSampler
from tqdm import tqdm

from .codehash import command_hash
from .config import ConfigError, add_params_arguments, from_dict, section_from_args
from .data import ClipDataset, worker_init
from .errors import InputError
from .store import atomic_path, versions

STREAM_KEYS = ("rgb", "flow")


@dataclass
class TrainConfig:
    """Settings of the ``train:`` section (see config/README.md)."""

    arch: str = "small"
    widths: list[int] = field(default_factory=lambda: [16, 32, 64, 64])
    blocks: list[int] = field(default_factory=lambda: [1, 1, 1, 1])
    pretrained: str = ""
    flow_length: int = 10
    flow_std: float = 1.0
    flow_mean_subtraction: bool = True
    segments: int = 3
    crop_size: int = 64
    scales: list[float] = field(default_factory=lambda: [1.0, 0.875, 0.75, 0.66])
    flip: bool = False
    epochs: int = 20
    batch_size: int = 32
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    dropout: float = 0.5
    schedule: str = "cosine"
    lr_steps: list[int] = field(default_factory=lambda: [12, 17])
    lr_gamma: float = 0.1
    clip_grad: float = 20.0
    label_smoothing: float = 0.0
    amp: bool = False
    val_frames: int = 5
    workers: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.schedule not in ("step", "cosine"):
            raise ConfigError(f"train.schedule must be step or cosine, got {self.schedule!r}")
        for k in ("epochs", "batch_size", "segments", "flow_length", "crop_size", "val_frames"):
            if int(getattr(self, k)) < 1:
                raise ConfigError(f"train.{k} must be >= 1, got {getattr(self, k)!r}")
        if not 0 <= float(self.dropout) < 1:
            raise ConfigError(f"train.dropout must be in [0, 1), got {self.dropout!r}")
        if float(self.lr) <= 0:
            raise ConfigError(f"train.lr must be > 0, got {self.lr!r}")
        if not self.scales or any(not 0 < float(s) <= 1 for s in self.scales):
            raise ConfigError(f"train.scales must be in (0, 1], got {self.scales!r}")


def stream_config(section: dict[str, Any], stream: str) -> TrainConfig:
    """The settings for one stream: the section's keys with its ``rgb:``/``flow:`` overrides."""
    d = {k: v for k, v in (section or {}).items() if k not in STREAM_KEYS}
    over = (section or {}).get(stream) or {}
    if not isinstance(over, dict):
        raise ConfigError(f"train.{stream} must be a mapping of overrides")
    from_dict(TrainConfig, over, f"train.{stream}")  # validates the override keys
    d.update(over)
    return from_dict(TrainConfig, d, "train")


# ------------------------------------------------------------------ building blocks
def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device available")
    return torch.device(name)


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)  # no weight decay on BN and biases
    return torch.optim.SGD(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr, momentum=cfg.momentum,
    )


def build_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig):
    """Stepped once per epoch."""
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(cfg.lr_steps), gamma=cfg.lr_gamma)
    return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)


def segment_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(B, K, C, H, W) snippets -> (B, classes) logits averaged over the K segments."""
    B, K = x.shape[:2]
    return model(x.flatten(0, 1)).view(B, K, -1).mean(1)


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    cfg: TrainConfig,
    modality: str,
    epoch: int,
) -> dict[str, float]:
    model.train()
    crit = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    total, correct, loss_sum = 0, 0, 0.0
    amp = cfg.amp and device.type == "cuda"
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", file=sys.stderr, leave=False, mininterval=2.0)
    for batch in bar:
        x = batch[modality].to(device, non_blocking=True)
        y = batch["label"].to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = segment_logits(model, x)
            loss = crit(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.clip_grad > 0:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
        optimizer.step()
        n = y.numel()
        total += n
        loss_sum += float(loss.detach()) * n
        correct += int((logits.argmax(1) == y).sum())
        bar.set_postfix(loss=f"{loss_sum / total:.3f}", acc=f"{correct / total:.3f}")
    bar.close()
    if not math.isfinite(loss_sum):
        raise InputError(f"training diverged in epoch {epoch + 1} (loss is not finite); lower train.lr")
    return {"loss": loss_sum / max(total, 1), "train_acc": correct / max(total, 1)}


def evaluate(model: nn.Module, loader: DataLoader, device: torch.device, amp: bool = False) -> float:
    """Video-level accuracy with the test protocol of ``loader``'s dataset."""
    from .evaluate import predict_videos

    probs, _ = predict_videos(model, loader, device, amp=amp, progress=False)
    labels = loader.dataset.labels
    return float((probs.argmax(1) == labels).mean())


def rng_state() -> dict[str, Any]:
    st = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict[str, Any]) -> None:
    torch.set_rng_state(st["torch"])
    np.random.set_state(st["numpy"])
    random.setstate(st["python"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def write_history(history: list[dict], path: Path) -> None:
    cols = ["epoch", "loss", "train_acc", "val_acc", "lr", "seconds"]
    with atomic_path(path) as tmp:
        pd.DataFrame(history, columns=cols).to_csv(tmp, index=False)


def save(obj: dict, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


# ------------------------------------------------------------------ main
def main(args: argparse.Namespace) -> int:
    section = section_from_args(args, "train")
    stream = args.stream
    cfg = stream_config(section, stream)
    device = pick_device(args.device)
    workers = cfg.workers if args.workers is None else int(args.workers)
    if args.threads:  # the job's threads: on CPU, loader workers take theirs from it
        n = int(args.threads) - (workers if device.type == "cpu" else 0)
        torch.set_num_threads(max(1, n))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    frames = [str(p) for p in (args.frames or [])]
    flow = [str(p) for p in (args.flow or [])]
    modality = stream
    data_kw = dict(frames=frames if stream == "rgb" else (), flow=flow if stream == "flow" else (),
                   modalities=(modality,), flow_length=cfg.flow_length, crop_size=cfg.crop_size)
    train_ds = ClipDataset(split="train", mode="train", segments=cfg.segments, scales=cfg.scales,
                           flip=cfg.flip, seed=cfg.seed, **data_kw)
    val_ds = ClipDataset(split="test", mode="test", test_frames=cfg.val_frames, test_crops=1, **data_kw)

    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    random.seed(cfg.seed)
    from .models import stream_model

    model = stream_model(stream, train_ds.num_classes, arch=cfg.arch, flow_length=cfg.flow_length,
                         dropout=cfg.dropout, widths=cfg.widths, blocks=cfg.blocks, flow_std=cfg.flow_std,
                         pretrained=cfg.pretrained, flow_mean_subtraction=cfg.flow_mean_subtraction).to(device)
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg)
    inputs = {"frames": [Path(p).name for p in data_kw["frames"]], "flow": [Path(p).name for p in data_kw["flow"]]}
    fingerprint = {"config": dataclasses.asdict(cfg), "stream": stream, "inputs": inputs,
                   "num_classes": train_ds.num_classes, "code": command_hash("train")}

    history: list[dict] = []
    start = 0
    resume_path = out / "resume.pt"
    if resume_path.exists():
        try:
            ck = torch.load(resume_path, map_location=device, weights_only=False)
            same = ck.get("fingerprint") == fingerprint
        except Exception as e:  # noqa: BLE001 - a corrupt resume file means starting over
            print(f"twostream train: ignoring unreadable {resume_path} ({e})", file=sys.stderr)
            ck, same = None, False
        if ck is not None and not same:
            print(f"twostream train: {resume_path} was made by other settings, inputs or code; starting over",
                  file=sys.stderr)
        if same:
            model.load_state_dict(ck["model"])
            optimizer.load_state_dict(ck["optimizer"])
            scheduler.load_state_dict(ck["scheduler"])
            set_rng_state(ck["rng"])
            history = list(ck["history"])
            start = int(ck["epoch"])
            print(f"twostream train: resuming {stream} after epoch {start} from {resume_path}", file=sys.stderr)

    val_loader = DataLoader(val_ds, batch_size=max(1, cfg.batch_size), shuffle=False, num_workers=workers,
                            pin_memory=device.type == "cuda", persistent_workers=workers > 0,
                            worker_init_fn=worker_init)
    print(f"twostream train: {stream} stream, {len(train_ds)} train / {len(val_ds.videos)} val videos, "
          f"{train_ds.num_classes} classes, {cfg.arch}, device {device}, {torch.get_num_threads()} threads, "
          f"{workers} workers", file=sys.stderr)

    def checkpoint(epoch: int) -> dict:
        return {
            "spec": model.spec, "model": model.state_dict(),
            "data": {"modalities": [modality], "flow_length": cfg.flow_length, "crop_size": cfg.crop_size},
            "class_names": train_ds.class_names, "config": dataclasses.asdict(cfg), "stream": stream,
            "inputs": inputs, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "rng": rng_state(), "epoch": epoch, "history": history, "fingerprint": fingerprint,
            "code": fingerprint["code"], "versions": versions(),
        }

    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        train_ds.set_epoch(epoch)
        gen = torch.Generator().manual_seed(cfg.seed * 100003 + epoch)
        loader = DataLoader(train_ds, batch_size=cfg.batch_size, sampler=RandomSampler(train_ds, generator=gen),
                            num_workers=workers, pin_memory=device.type == "cuda", drop_last=False,
                            worker_init_fn=worker_init)
        lr = optimizer.param_groups[0]["lr"]
        stats = train_one_epoch(model, loader, optimizer, device, cfg, modality, epoch)
        scheduler.step()
        val_acc = evaluate(model, val_loader, device, amp=cfg.amp)
        row = {"epoch": epoch + 1, **stats, "val_acc": val_acc, "lr": lr, "seconds": time.perf_counter() - t0}
        history.append(row)
        print(f"epoch {epoch + 1}/{cfg.epochs} loss {row['loss']:.4f} train {row['train_acc']:.3f} "
              f"val {val_acc:.3f} lr {lr:.2g} {row['seconds']:.1f}s", file=sys.stderr)
        save(checkpoint(epoch + 1), resume_path)
        write_history(history, out / "history.csv")

    final = checkpoint(cfg.epochs)
    save(final, out / "checkpoint.pt")
    write_history(history, out / "history.csv")
    resume_path.unlink(missing_ok=True)
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


__all__ = ["TrainConfig", "stream_config", "train_one_epoch", "evaluate", "main", "segment_logits",
           "build_optimizer", "build_scheduler", "pick_device"]
