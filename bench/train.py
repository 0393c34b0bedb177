"""Training throughput: is the data loader the bottleneck?

    python bench/train.py [--stream flow] [--arch small] [--size 64] [--crop 64] [--device auto]

In one run, on the same shards and model, it measures (samples = videos of ``--segments``
snippets each, i.e. what one training step consumes per batch row):

1. ``loader``: the training DataLoader alone (HDF5 read, sampling, crop, flip, collate);
2. ``model``: training steps (forward, backward, SGD) on tensors already on the device;
3. ``full``: the real loop, loader feeding the model (``twostream.train.train_one_epoch``'s step);

and prints samples/s of each and the ratio full / model (target >= 0.9: the loader keeps up).
The shards are random frames and quantized flow written to a temporary folder in the
layout of ``twostream.store``. On a GPU try ``--arch resnet50 --size 256 --crop 224 --amp``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from twostream.data import ClipDataset, worker_init
from twostream.decode import FrameWriter
from twostream.models import stream_model
from twostream.store import quantize_flow, video_table_to_array, write_provenance
from twostream.train import TrainConfig, build_optimizer, pick_device, segment_logits


def write_random_shards(root: Path, videos: int, frames: int, size: int, shards: int = 2,
                        codec: str = "raw") -> tuple[list, list]:
    """Frames shards (written by the decode stage's ``FrameWriter``, codec raw or jpeg) and
    uint8 flow shards of smooth random content."""
    rng = np.random.default_rng(0)
    fr, fl = [], []
    for s in range(shards):
        n = videos // shards
        frows = []
        with h5py.File(root / f"frames-{s}.h5", "w") as f, h5py.File(root / f"flow-{s}.h5", "w") as g:
            writer = FrameWriter(f, codec)
            oset = g.create_dataset("flow", (n * (frames - 1), size, size, 2), np.uint8,
                                    chunks=(1, size, size, 2), compression="lzf")
            for v in range(n):
                # smooth random images (compress like real frames, unlike white noise)
                base = rng.integers(0, 255, (frames, size // 8, size // 8, 3), dtype=np.uint8)
                imgs = base.repeat(8, 1).repeat(8, 2)
                flow = rng.normal(0, 2, (frames - 1, size // 8, size // 8, 2)).repeat(8, 1).repeat(8, 2)
                oset[v * (frames - 1) : (v + 1) * (frames - 1)] = quantize_flow(flow, 20.0)
                meta = dict(video_id=f"c{v % 10}/v{s}_{v:04d}", label=v % 10, class_name=f"c{v % 10}",
                            split="train", fps=25.0, height=size, width=size)
                writer.add(meta, imgs, fps=25.0)
                frows.append(dict(meta, n_frames=frames - 1, offset=v * (frames - 1)))
            writer.finish()
            g["videos"] = video_table_to_array(pd.DataFrame(frows))
            write_provenance(f, "frames", {"bench": True}, codec=codec)
            write_provenance(g, "flow", {"bench": True}, bound=20.0, storage="uint8")
        fr.append(str(root / f"frames-{s}.h5"))
        fl.append(str(root / f"flow-{s}.h5"))
    return fr, fl


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stream", default="flow", choices=["rgb", "flow"])
    p.add_argument("--arch", default="small")
    p.add_argument("--size", type=int, default=64, help="stored frame side")
    p.add_argument("--crop", type=int, default=64, help="network input side")
    p.add_argument("--flow-length", type=int, default=10)
    p.add_argument("--segments", type=int, default=3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--videos", type=int, default=960,
                   help="training videos (default: the default config's 960); an epoch of only a few batches "
                        "restarts the workers' prefetch every few steps, which real training does once per epoch")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--codec", default="raw", choices=["raw", "jpeg"], help="frames codec of the shards (decode.codec)")
    p.add_argument("--steps", type=int, default=30, help="timed steps per measurement")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch threads of the training process (0: default)")
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast (GPU)")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    device = pick_device(a.device)
    torch.backends.cudnn.benchmark = True
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        fr, fl = write_random_shards(Path(tmp), a.videos, a.frames, a.size, codec=a.codec)
        print(f"shards: {a.videos} videos of {a.frames} frames {a.size}x{a.size} in {time.perf_counter() - t0:.1f}s",
              file=sys.stderr)
        ds = ClipDataset(fr if a.stream == "rgb" else (), fl if a.stream == "flow" else (), (a.stream,),
                         split="train", mode="train", segments=a.segments, flow_length=a.flow_length,
                         crop_size=a.crop, flip=True)
        cfg = TrainConfig(arch=a.arch, flow_length=a.flow_length, crop_size=a.crop, segments=a.segments,
                          batch_size=a.batch, amp=a.amp)
        model = stream_model(a.stream, ds.num_classes, arch=a.arch, flow_length=a.flow_length).to(device)
        opt = build_optimizer(model, cfg)
        crit = torch.nn.CrossEntropyLoss()
        amp = a.amp and device.type == "cuda"

        def loader():
            return DataLoader(ds, batch_size=a.batch, shuffle=True, num_workers=a.workers, drop_last=True,
                              pin_memory=device.type == "cuda", persistent_workers=a.workers > 0,
                              prefetch_factor=4 if a.workers else None, worker_init_fn=worker_init)

        def step(x, y):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss = crit(segment_logits(model, x).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
            opt.step()

        def batches(n):
            while True:
                for b in dl:
                    yield b
                    n -= 1
                    if n <= 0:
                        return

        dl = loader()
        # 1. loader alone
        it = batches(a.steps + 2)
        next(it), next(it)  # warm up workers
        t0 = time.perf_counter()
        n = sum(len(b["label"]) for b in it)
        loader_sps = n / (time.perf_counter() - t0)
        # 2. model alone
        C = 3 if a.stream == "rgb" else 2 * a.flow_length
        x = torch.rand(a.batch, a.segments, C, a.crop, a.crop, device=device)
        y = torch.randint(0, ds.num_classes, (a.batch,), device=device)
        model.train()
        for _ in range(3):
            step(x, y)
        sync(device)
        t0 = time.perf_counter()
        for _ in range(a.steps):
            step(x, y)
        sync(device)
        model_sps = a.steps * a.batch / (time.perf_counter() - t0)
        # 3. full loop
        it = batches(a.steps + 3)
        for _ in range(3):
            b = next(it)
            step(b[a.stream].to(device, non_blocking=True), b["label"].to(device, non_blocking=True))
        sync(device)
        t0 = time.perf_counter()
        n = 0
        for b in it:
            step(b[a.stream].to(device, non_blocking=True), b["label"].to(device, non_blocking=True))
            n += len(b["label"])
        sync(device)
        full_sps = n / (time.perf_counter() - t0)
    dev = torch.cuda.get_device_name() if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"bench/train.py: {a.stream} stream, {a.arch}, input {a.crop}x{a.crop}, {a.segments} segments, "
          f"batch {a.batch}, {a.workers} workers, frames codec {a.codec}, {dev}{', bf16' if amp else ''}")
    print(f"  loader alone : {loader_sps:9.2f} samples/s  ({loader_sps * a.segments:.1f} snippets/s)")
    print(f"  model alone  : {model_sps:9.2f} samples/s  ({model_sps * a.segments:.1f} snippets/s)")
    print(f"  full loop    : {full_sps:9.2f} samples/s  ({full_sps * a.segments:.1f} snippets/s)")
    print(f"  ratio full/model: {full_sps / model_sps:.2f} (target >= 0.90)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
