"""One fusion training step at the default config's sizes: CPU time of data, forward, backward, optimiser.

    python bench/fusion_step.py THREADS CHANNELS_LAST [PRELOAD [FREEZE]]  # e.g. 1 0, then 1 1; PRELOAD 0: read every
    # item from the shards; FREEZE 1: fusion.train.freeze_to_fusion (no backward pass below the fusion)

The conv fusion after res3 of two untrained default-size streams (config/config.yaml:
train arch/widths/blocks/flow_length/crop_size, fusion.train batch_size/scales), fed
by the real ClipDataset over random shards in the store layout (bench/train.py), as
fusion_train.train_one_epoch does with workers 0. CPU (process) time, so the split holds
on a loaded machine. Steps 4..18 are timed.
"""
import os, sys, time, tempfile
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, "bench")
import dataclasses
import numpy as np, torch, yaml
from pathlib import Path
from torch.utils.data import DataLoader
from train import write_random_shards
from twostream.data import ClipDataset
from twostream.models import stream_model
from twostream.fusion_train import build_fused, build_optimizer, train_config
from twostream.engine import channels_last
torch.set_num_threads(int(sys.argv[1])); cl = sys.argv[2] == "1"
base = yaml.safe_load(open("config/config.yaml"))
tr = base["train"]; cfg = train_config(base["fusion"])
freeze = sys.argv[4:5] == ["1"]
cfg = dataclasses.replace(cfg, freeze_to_fusion=freeze)
tmp = Path(tempfile.mkdtemp())
fr, fl = write_random_shards(tmp, 320, 15, 64)
ds = ClipDataset(fr, fl, ("rgb", "flow"), split="train", mode="train", segments=1, flow_length=tr["flow_length"],
                 crop_size=tr["crop_size"], scales=cfg.scales, flip=False,
                 preload_mb=0 if sys.argv[3:4] == ["0"] else 1024)
kw = dict(arch=tr["arch"], widths=tr["widths"], blocks=tr["blocks"], flow_length=tr["flow_length"])
rgb = stream_model("rgb", ds.num_classes, **kw); flow = stream_model("flow", ds.num_classes, **kw)
model = build_fused(os.environ.get("METHOD", "conv"), os.environ.get("POSITION", "res3"), rgb, flow, cfg)
if cl: channels_last(model)  # the engine's layout (fit does this on CPU)
opt = build_optimizer(model, cfg); crit = torch.nn.CrossEntropyLoss()
BS = int(os.environ.get("BS", cfg.batch_size))
dl = DataLoader(ds, batch_size=BS, shuffle=True, num_workers=0, drop_last=True)
acc = {k: 0.0 for k in ("data", "forward", "backward", "optimiser")}
n = 0
def clock(): return time.process_time()
it = iter(dl)
for step in range(18):
    t = clock(); b = next(it, None)
    if b is None:
        it = iter(dl); b = next(it)
    t1 = clock()
    logits = model(*[b[m] for m in model.modalities])
    loss = crit(logits.float(), b["label"]); t2 = clock()
    opt.zero_grad(set_to_none=True); loss.backward(); t3 = clock()
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], cfg.clip_grad); opt.step(); t4 = clock()
    if step >= 3:
        for k, v in zip(acc, (t1 - t, t2 - t1, t3 - t2, t4 - t3)): acc[k] += v
        n += 1
tot = sum(acc.values())
print(f"fusion {model.method}@{model.position}, frozen {model.frozen_stages() if freeze else ()}, batch {BS}, crop {tr['crop_size']}, threads {sys.argv[1]}, channels_last {cl}, "
      f"split in memory {bool(ds._memory)}: "
      f"{1e3 * tot / n:.1f} CPU ms/step: " + ", ".join(f"{k} {1e3 * v / n:.1f} ms ({100 * v / tot:.0f}%)" for k, v in acc.items()))
