"""A toy training run through ``twostream.engine.fit``, for test_ddp.py.

``python ddp_toy.py OUT [--dropout P] [--crash-step K]``, alone or under
``torchrun --nproc_per_node N``. The model has no BatchNorm (its statistics would be per
process on CPU), so N processes must reach the weights of one process with the same global
batch. Each process writes ``OUT/order-rank{R}.json``: the item indices of each of its steps.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
import torch.nn as nn
from torch.utils.data import Dataset

from twostream.engine import build_scheduler, fit, seed_everything, setup
from twostream.fusion_train import FusionTrainConfig

N_ITEMS = 21  # with a global batch of 8: batches of 8, 8 and 5 (5 = 3 + 2 items on two processes)


class Items(Dataset):
    """Item i: a (4, 8, 8) image whose class (of 3) is the brightest of its first 3 channels."""

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(N_ITEMS, 4, 8, 8, generator=g)
        self.y = self.x[:, :3].mean((2, 3)).argmax(1)

    def set_epoch(self, epoch: int) -> None:
        pass

    def __len__(self) -> int:
        return N_ITEMS

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i], "label": self.y[i], "index": i}


class Net(nn.Module):
    spec = {"kind": "toy"}

    def __init__(self, dropout: float):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc(self.drop(self.conv(x).relu().mean((2, 3))))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--crash-step", type=int, default=-1)
    a = p.parse_args()
    run = setup("cpu", threads=int(os.environ.get("WORLD_SIZE", "1")))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = FusionTrainConfig(epochs=3, batch_size=8, lr=0.2, schedule="step", lr_steps=[2], lr_gamma=0.5,
                            clip_grad=5.0)  # the fit loop's settings (the rest is not read here)
    seed_everything(0)
    model = Net(a.dropout)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=1e-3)
    scheduler = build_scheduler(optimizer, cfg)
    order: list[list[int]] = []

    def forward(net, batch):
        if len(order) == a.crash_step:
            raise RuntimeError("crash")
        order.append(batch["index"].tolist())
        return net(batch["x"])

    fit(tag="toy", section="toy", model=model, forward=forward, optimizer=optimizer, scheduler=scheduler,
        cfg=cfg, run=run, train_ds=Items(), val_ds=None, seed=5, epochs=cfg.epochs, workers=0, out=out,
        fingerprint={"code": "toy", "dropout": a.dropout}, meta={})
    (out / f"order-rank{run.rank}.json").write_text(json.dumps(order))


if __name__ == "__main__":
    main()
