"""Channels-last against plain NCHW training steps of the two default streams.

    python bench/layout.py [--rounds 3] [--steps 10] [--batch 32]

The engine trains channels-last on CPU (``engine.channels_last``). This bench times one
forward and backward pass of each stream at the default config's sizes (small ResNet,
widths 16-64, 64x64, flow L = 10), plain and channels-last, interleaved over ``--rounds``
rounds, in CPU (process) time on one thread, and prints each round's ms per step and the
median of the paired ratios channels-last / plain (below 1: channels-last is faster).
The fused step is ``bench/fusion_step.py``.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import yaml

from twostream.engine import channels_last
from twostream.models import stream_model


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch", type=int, default=32)
    a = p.parse_args()
    torch.set_num_threads(1)
    tr = yaml.safe_load(open("config/config.yaml"))["train"]
    crit = torch.nn.CrossEntropyLoss()
    for stream, channels in (("rgb", 3), ("flow", 2 * tr["flow_length"])):
        torch.manual_seed(0)
        base = stream_model(stream, 16, arch=tr["arch"], widths=tr["widths"], blocks=tr["blocks"],
                            flow_length=tr["flow_length"])
        models = {"plain": base, "channels_last": channels_last(copy.deepcopy(base))}
        x = torch.randn(a.batch, channels, tr["crop_size"], tr["crop_size"])
        y = torch.randint(0, 16, (a.batch,))
        ms = {k: [] for k in models}
        for _ in range(a.rounds):
            for k, m in models.items():
                m.train()
                for i in range(a.steps + 3):
                    if i == 3:
                        t = time.process_time()
                    crit(m(x), y).backward()
                ms[k].append(1e3 * (time.process_time() - t) / a.steps)
        ratio = statistics.median(c / q for c, q in zip(ms["channels_last"], ms["plain"]))
        print(f"{stream} stream, batch {a.batch}: plain " + ", ".join(f"{v:.1f}" for v in ms["plain"])
              + " ms/step; channels_last " + ", ".join(f"{v:.1f}" for v in ms["channels_last"])
              + f" ms/step; channels_last/plain {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
