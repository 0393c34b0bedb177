"""The one training engine of stream and fusion training, after torchvision's reference
scripts (``train_one_epoch``, ``evaluate``, ``fit``): the caller builds its data, its model
and its ``forward(net, batch) -> logits``; the engine does everything else.

* **One loader recipe** (``make_loader``): batches from ``GlobalBatches``, the permutation
  of ``(seed, epoch)`` cut into global batches of ``batch_size``; ``seed_worker`` gives each
  worker process one OpenCV thread and its own numpy/random seed (item randomness itself
  depends only on ``(seed, epoch, item)``, see ``twostream.data``).
* **Threads** (``setup``): the job's ``--threads`` are shared by the training processes and,
  on CPU, their loader workers: each process takes ``threads / processes - workers``.
* **Fit loop** (``fit``): per epoch ``train_one_epoch``, the scheduler step (once per
  epoch), the validation accuracy (``evaluate``, video level) when a validation set is
  given (the callers pass the ``val`` split, never ``test``), one plain log line, ``resume.pt`` and ``history.csv``; at the end
  ``checkpoint.pt``. The logged ``lr`` is the scheduled value of the ``lr`` setting (layers
  with their own factor, e.g. ``fusion.train.stream_lr``, learn at that times the factor).
* **Resumable checkpointer**: after every epoch the complete state (model, optimizer,
  scheduler, RNG states of every process, history, fingerprint of settings, inputs and
  code) is written atomically to ``resume.pt``; a run whose fingerprint matches continues
  after its last epoch, otherwise it starts over and says why. On CPU with the same thread
  count a resumed run ends with exactly the weights of an uninterrupted one.
* **Memory layout** (``channels_last``): on CPU, and on CUDA under ``amp``, the 4-D
  weights of the model are stored channels-last (NHWC) during training, so the oneDNN/cuDNN
  convolutions skip their layout reorders (``bench/layout.py`` and ``bench/fusion_step.py`` measure it). The values
  are the same; checkpoints load into a plain model.
* **Data parallel** (``torchrun --nproc_per_node N -m twostream.cli train ...``): with
  ``WORLD_SIZE`` > 1 each process joins the group (NCCL on CUDA, gloo on CPU), takes
  every N-th item of each global batch (the same global batches in the same order as one
  process), and the model is wrapped in ``DistributedDataParallel``; on CUDA BatchNorm
  becomes ``SyncBatchNorm`` (statistics over the global batch, as one process computes
  them). On CPU BatchNorm statistics stay per process (``SyncBatchNorm`` needs a GPU). A
  global batch the processes cannot share evenly weights each process's loss by its share,
  so the averaged gradient is the one-process gradient. Rank 0 writes every file.
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset, Sampler
from .progress import progress as progress_bar

from .data import worker_init
from .errors import InputError
from .models import call_model
from .store import atomic_path, versions

HISTORY_COLUMNS = ["epoch", "loss", "train_acc", "val_acc", "lr", "seconds"]


@dataclass
class FitSettings:
    """The settings the engine reads, common to ``train`` and ``fusion.train``: stream and
    fusion training declare them once, here, by inheriting (defaults: the schema, through
    ``config.settings``)."""

    epochs: int
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    dropout: float
    schedule: str
    lr_steps: list[int]
    lr_gamma: float
    clip_grad: float
    label_smoothing: float
    amp: bool
    segments: int
    crop_size: int
    scales: list[float]
    flip: bool
    val_frames: int
    workers: int


# ------------------------------------------------------------------ processes and devices
@dataclass(frozen=True)
class Run:
    """Where a training process runs: its device and its place in a torchrun group."""

    device: torch.device
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device available")
    return torch.device(name)


def setup(device: str = "auto", threads: int = 0, workers: int = 0) -> Run:
    """The process's device and group (torchrun's ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``),
    and its torch threads: ``threads / processes``, less the loader workers on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    dev = pick_device(device)
    if world > 1:
        if dev.type == "cuda":
            dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(dev)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    if threads:
        n = int(threads) // world - (int(workers) if dev.type == "cpu" else 0)
        torch.set_num_threads(max(1, n))
    return Run(dev, rank, world)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


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


def channels_last(model: nn.Module) -> nn.Module:
    """Store every 4-D parameter and buffer of ``model`` channels-last, in place (the
    parameters stay the same objects, so an optimizer built before keeps them). 5-D weights
    (3D convolutions) and the rest are left as they are (``Module.to`` refuses a model with
    any 5-D weight)."""
    fmt = torch.channels_last
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.dim() == 4 and not t.is_contiguous(memory_format=fmt):
                t.data = t.data.contiguous(memory_format=fmt)
    return model


def uses_channels_last(run: Run, amp: bool) -> bool:
    """Channels-last training: on CPU always, on CUDA with bf16 autocast."""
    return run.device.type == "cpu" or (run.device.type == "cuda" and bool(amp))


# ------------------------------------------------------------------ data
def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: one OpenCV thread, and numpy/random seeded from the worker's torch seed."""
    worker_init(worker_id)
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


class GlobalBatches(Sampler[list[int]]):
    """This process's batches: the permutation of ``(seed, epoch)`` cut into global batches
    of ``batch_size``, of which process ``rank`` of ``world`` takes every ``world``-th item
    (one process: the global batches themselves). A last global batch with fewer items than
    processes is left out (with one process: never)."""

    def __init__(self, n: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world: int = 1):
        gen = torch.Generator().manual_seed(seed * 100003 + epoch)
        perm = torch.randperm(n, generator=gen).tolist()
        chunks = [perm[i:i + batch_size] for i in range(0, n, batch_size)]
        self.global_batches = [c for c in chunks if len(c) >= world]
        self.rank, self.world = rank, world

    def __iter__(self):
        for c in self.global_batches:
            yield c[self.rank::self.world]

    def __len__(self) -> int:
        return len(self.global_batches)


def make_loader(ds: Dataset, batch_size: int, workers: int, device: torch.device,
                batches: Sampler | None = None) -> DataLoader:
    """The loader recipe: ``batches`` (a batch sampler, e.g. ``GlobalBatches``) or the items
    in order in batches of ``batch_size``; per-worker seeding; pinned memory on CUDA."""
    kw = dict(batch_sampler=batches) if batches is not None else dict(batch_size=batch_size, shuffle=False)
    return DataLoader(ds, num_workers=workers, pin_memory=device.type == "cuda", worker_init_fn=seed_worker, **kw)


# ------------------------------------------------------------------ optimisation
def build_scheduler(opt: torch.optim.Optimizer, cfg: FitSettings):
    """Stepped once per epoch: ``step`` (milestones ``lr_steps``, factor ``lr_gamma``) or ``cosine``."""
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(cfg.lr_steps), gamma=cfg.lr_gamma)
    return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)


def scheduled_lr(optimizer: torch.optim.Optimizer, base_lr: float) -> float:
    """The scheduled value of the ``lr`` setting: the learning rate of the first group that
    starts at ``base_lr``, else ``base_lr`` times the schedule's factor."""
    groups = optimizer.param_groups
    for g in groups:
        if g.get("initial_lr", g["lr"]) == base_lr:
            return float(g["lr"])
    return float(base_lr * groups[0]["lr"] / groups[0].get("initial_lr", groups[0]["lr"]))


def train_one_epoch(net: nn.Module, forward: Callable, loader: DataLoader, optimizer: torch.optim.Optimizer,
                    cfg: FitSettings, run: Run, epoch: int, section: str = "train") -> dict[str, float]:
    """One epoch: ``logits = forward(net, batch)``, cross-entropy with ``batch["label"]``,
    gradient clipping at ``clip_grad``, an optimizer step per batch. Loss and accuracy are
    over the epoch's items (of every process)."""
    net.train()
    crit = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    params = [p for p in net.parameters() if p.requires_grad]
    total, correct, loss_sum = 0, 0, 0.0
    amp = cfg.amp and run.device.type == "cuda"
    sizes = loader.batch_sampler.global_batches if isinstance(loader.batch_sampler, GlobalBatches) else None
    bar = progress_bar(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", file=sys.stderr, leave=False,
                       mininterval=2.0, disable=not run.main)
    for step, batch in enumerate(bar):
        y = batch["label"].to(run.device, non_blocking=True)
        with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=amp):
            logits = forward(net, batch)
            loss = crit(logits.float(), y)
        n = y.numel()
        share = n * run.world / len(sizes[step]) if sizes is not None else 1.0
        optimizer.zero_grad(set_to_none=True)
        (loss if share == 1.0 else loss * share).backward()  # DDP averages: the global batch's mean
        if cfg.clip_grad > 0:
            nn.utils.clip_grad_norm_(params, cfg.clip_grad)
        optimizer.step()
        total += n
        loss_sum += float(loss.detach()) * n
        correct += int((logits.argmax(1) == y).sum())
        bar.set_postfix(loss=f"{loss_sum / total:.3f}", acc=f"{correct / total:.3f}")
    bar.close()
    if run.world > 1:
        sums = torch.tensor([loss_sum, correct, total], dtype=torch.float64, device=run.device)
        dist.all_reduce(sums)
        loss_sum, correct, total = float(sums[0]), int(sums[1]), int(sums[2])
    if not math.isfinite(loss_sum):
        raise InputError(f"training diverged in epoch {epoch + 1} (loss is not finite); lower {section}.lr")
    return {"loss": loss_sum / max(total, 1), "train_acc": correct / max(total, 1)}


@torch.no_grad()
def predict_videos(model: nn.Module, loader: DataLoader, device: torch.device, amp: bool = False,
                   progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Per-video (softmax, logits) averaged over every view the loader yields.

    Items are dicts with the model's modalities as (B, views, C, H, W) tensors and
    ``"video"`` (row of ``loader.dataset.videos``).
    """
    model.eval()
    n_videos = len(loader.dataset.videos)
    prob_sum = logit_sum = None
    count = np.zeros(n_videos)
    amp = amp and device.type == "cuda"
    for batch in progress_bar(loader, desc="evaluate", file=sys.stderr, leave=False, disable=not progress, mininterval=2.0):
        inputs = {m: batch[m].to(device, non_blocking=True) for m in model.modalities}
        B, V = next(iter(inputs.values())).shape[:2]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = call_model(model, {m: x.flatten(0, 1) for m, x in inputs.items()}).float()
        logits = logits.view(B, V, -1)
        probs = logits.softmax(-1).sum(1).cpu().double().numpy()
        lsum = logits.sum(1).cpu().double().numpy()
        if prob_sum is None:
            prob_sum = np.zeros((n_videos, probs.shape[1]))
            logit_sum = np.zeros_like(prob_sum)
        vid = batch["video"].numpy()
        np.add.at(prob_sum, vid, probs)
        np.add.at(logit_sum, vid, lsum)
        np.add.at(count, vid, V)
    if prob_sum is None or np.any(count == 0):
        raise InputError("evaluation saw no views of some videos")
    return prob_sum / count[:, None], logit_sum / count[:, None]


def evaluate(model: nn.Module, loader: DataLoader, device: torch.device, amp: bool = False) -> float:
    """Video-level accuracy with the test protocol of ``loader``'s dataset."""
    probs, _ = predict_videos(model, loader, device, amp=amp, progress=False)
    return float((probs.argmax(1) == loader.dataset.labels).mean())


# ------------------------------------------------------------------ files
def write_history(history: list[dict], path: Path) -> None:
    with atomic_path(path) as tmp:
        pd.DataFrame(history, columns=HISTORY_COLUMNS).to_csv(tmp, index=False)


def save(obj: dict, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _all_rng(run: Run) -> dict[str, Any]:
    """This process's RNG state; under torchrun every process's, as ``ranks`` (collective)."""
    if run.world == 1:
        return rng_state()
    states: list = [None] * run.world
    dist.all_gather_object(states, rng_state())
    return {"ranks": states}


def _resume(path: Path, fingerprint: dict, model: nn.Module, optimizer, scheduler, run: Run,
            tag: str) -> tuple[int, list[dict]]:
    """(epochs done, history) from ``resume.pt`` when its fingerprint matches, else (0, [])."""
    if not path.exists():
        return 0, []
    say = print if run.main else (lambda *a, **k: None)
    try:
        ck = torch.load(path, map_location=run.device, weights_only=False)
        same = ck.get("fingerprint") == fingerprint
    except Exception as e:  # noqa: BLE001 - a corrupt resume file means starting over
        say(f"{tag}: ignoring unreadable {path} ({e})", file=sys.stderr)
        return 0, []
    if not same:
        say(f"{tag}: {path} was made by other settings, inputs or code; starting over", file=sys.stderr)
        return 0, []
    model.load_state_dict(ck["model"])
    optimizer.load_state_dict(ck["optimizer"])
    scheduler.load_state_dict(ck["scheduler"])
    rng = ck["rng"]
    set_rng_state(rng["ranks"][run.rank] if "ranks" in rng else rng)
    say(f"{tag}: resuming after epoch {int(ck['epoch'])} from {path}", file=sys.stderr)
    return int(ck["epoch"]), list(ck["history"])


# ------------------------------------------------------------------ the fit loop
def fit(*, tag: str, section: str, model: nn.Module, forward: Callable, optimizer, scheduler, cfg: FitSettings, run: Run,
        train_ds: Dataset | None, val_ds: Dataset | None, seed: int, epochs: int, workers: int, out: Path,
        fingerprint: dict, meta: dict) -> list[dict]:
    """Train ``epochs`` epochs (0: none, ``checkpoint.pt`` only), resuming from ``out/resume.pt``;
    ``tag`` starts the log lines, ``section`` names the settings in messages.

    ``meta`` goes into every checkpoint beside the engine's entries (``spec``, ``model``,
    ``optimizer``, ``scheduler``, ``rng``, ``epoch``, ``history``, ``fingerprint``, ``code``,
    ``versions``). Returns the history (one dict per epoch).
    """
    out = Path(out)
    resume_path = out / "resume.pt"
    fingerprint = dict(fingerprint, **({"processes": run.world} if run.world > 1 else {}))
    if run.world > 1:  # the model is built alike everywhere; dropout masks differ per process
        torch.manual_seed(seed + 7919 * run.rank)
    if epochs and uses_channels_last(run, cfg.amp):
        channels_last(model)
    start, history = _resume(resume_path, fingerprint, model, optimizer, scheduler, run, tag) if epochs else (0, [])
    if run.world > 1:
        dist.barrier()  # every process has read resume.pt before rank 0 replaces it
    net = model
    if run.world > 1 and epochs:
        if run.device.type == "cuda":
            net = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        net = nn.parallel.DistributedDataParallel(
            net, device_ids=[run.device.index] if run.device.type == "cuda" else None,
            find_unused_parameters=True)

    def checkpoint(epoch: int) -> dict:
        return {"spec": model.spec, "model": model.state_dict(), **meta,
                "optimizer": optimizer.state_dict() if optimizer else None,
                "scheduler": scheduler.state_dict() if scheduler else None, "rng": _all_rng(run),
                "epoch": epoch, "history": history, "fingerprint": fingerprint, "code": fingerprint["code"],
                "versions": versions()}

    val_loader = make_loader(val_ds, cfg.batch_size, workers, run.device) if val_ds is not None else None
    for epoch in range(start, epochs):
        t0 = time.perf_counter()
        train_ds.set_epoch(epoch)
        batches = GlobalBatches(len(train_ds), cfg.batch_size, seed, epoch, run.rank, run.world)
        loader = make_loader(train_ds, cfg.batch_size, workers, run.device, batches)
        lr = scheduled_lr(optimizer, cfg.lr)
        stats = train_one_epoch(net, forward, loader, optimizer, cfg, run, epoch, section)
        scheduler.step()
        val_acc = evaluate(model, val_loader, run.device, amp=cfg.amp) if val_loader is not None else float("nan")
        row = {"epoch": epoch + 1, **stats, "val_acc": val_acc, "lr": lr, "seconds": time.perf_counter() - t0}
        history.append(row)
        state = checkpoint(epoch + 1)  # collective under torchrun: every process takes part
        if run.main:
            print(f"epoch {epoch + 1}/{epochs} loss {row['loss']:.4f} train {row['train_acc']:.3f} "
                  f"val {val_acc:.3f} lr {lr:.2g} {row['seconds']:.1f}s", file=sys.stderr)
            save(state, resume_path)
            write_history(history, out / "history.csv")
    final = checkpoint(epochs)
    if run.main:
        save(final, out / "checkpoint.pt")
        write_history(history, out / "history.csv")
        resume_path.unlink(missing_ok=True)
    if run.world > 1:
        dist.barrier()
    return history


__all__ = ["Run", "setup", "channels_last", "uses_channels_last", "pick_device", "seed_everything", "rng_state", "set_rng_state", "seed_worker",
           "GlobalBatches", "make_loader", "build_scheduler", "scheduled_lr", "train_one_epoch",
           "predict_videos", "evaluate", "write_history", "save", "fit"]
