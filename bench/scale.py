"""Scale on paper: time and disk of each stage for UCF101 and HMDB51, from measured unit costs.

    python bench/scale.py [--nodes 8] [--markdown]

Reads the unit costs from the committed outputs of the benchmarks (nothing is typed in):

* ``docs/bench/decode.txt`` (bench/decode.py): CPU ms per frame of the decode stage
  (jpeg codec, 341x256) and KiB per stored frame;
* ``docs/bench/flow.txt`` (bench/flow.py): CPU pairs/s of the torch TV-L1 at 340x256
  with OpenCV's defaults on 2 cores (best setting); ``docs/bench/flow_storage.txt``:
  KiB per stored flow field (uint8, lzf);
* ``docs/bench/train_cpu.txt`` (bench/train.py, ResNet-50 224x224 on 2 CPU cores):
  model-alone samples/s;
* ``docs/gpu/flow*.csv`` and ``docs/gpu/train.csv`` (bench/gpu.py on one H200): TV-L1
  pairs/s at the best batch, ResNet-50 full-loop samples/s (bf16) of each stream.

Dataset sizes and the schedule come from ``config/ucf101.yaml``/``hmdb51.yaml`` (epochs,
fusion grid) and the constants below (video and frame counts). A sample is one video
(``segments`` snippets) in stream training and one snippet in fusion training; evaluation
is forward-only on 25 frames x 10 crops per test video, costed at a third of a training
snippet (forward ~ 1/3 of forward + backward). Settings:

* ``2-core``: one machine with 2 cores and no GPU (the machine of ``make run``);
* ``1 GPU``: one node with one H200 and 16 cores (decode runs on its cores);
* ``N nodes``: a SLURM cluster of N such nodes; shards and fusion cells spread over
  the nodes, a stream trains on one GPU (no DDP assumed).
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent

# Video counts of the official split 1 (train/test); frames per video on average.
DATASETS = {
    "ucf101": dict(videos=13320, train=9537, test=3783, pairs=2_400_000, config="config/ucf101.yaml"),
    # HMDB51: 70 train / 30 test clips per class and split; ~95 frames per clip (assumed, not measured here)
    "hmdb51": dict(videos=6766, train=3570, test=1530, pairs=6766 * 94, config="config/hmdb51.yaml"),
}
GPU_NODE_CORES = 16  # the measured H200 node


def newest_run(path: Path) -> str:
    """The newest run in a bench output file: its top, above the first ``# ----`` line that
    starts the earlier runs kept below."""
    return path.read_text().split("\n# ----", 1)[0]


def _find(path: Path, pattern: str, group: int = 1) -> float:
    """The last match of ``pattern`` in ``newest_run(path)``."""
    text = newest_run(path)
    m = re.findall(pattern, text, re.M)
    if not m:
        raise SystemExit(f"{path}: no line matches {pattern!r}; rerun the benchmark that writes it")
    v = m[-1]
    return float(v if isinstance(v, str) else v[group - 1])


def best_torch_rate(path: Path) -> float:
    """bench/flow.py's best torch setting in ``newest_run(path)``: its summary line, or (a run
    stopped early) the best median over the rounds it printed."""
    text = newest_run(path)
    m = re.findall(r"^best torch : .*? ([0-9.]+) pairs/s", text, re.M)
    if m:
        return float(m[0])
    rates: dict[str, list[float]] = {}
    for line in re.findall(r"^\s*round \d+: (.*) pairs/s", text, re.M):
        for name, v in re.findall(r"(torch \d+x\d+) ([0-9.]+)", line):
            rates.setdefault(name, []).append(float(v))
    if not rates:
        raise SystemExit(f"{path}: no torch rate; rerun bench/flow.py")
    import statistics

    return max(statistics.median(v) for v in rates.values())


def unit_costs(root: Path = ROOT) -> dict:
    d = root / "docs"
    u = {}
    # decode: "jpeg  <read> <write> <stage> <bound> <ratio>   <r> + <w> -> <stage cpu>, <cpu ratio>   (<KiB> KiB/frame"
    u["decode_cpu_ms_per_frame"] = _find(d / "bench/decode.txt", r"^jpeg .*?->\s*([0-9.]+),")
    u["frame_kib"] = _find(d / "bench/decode.txt", r"^jpeg .*?\(([0-9.]+) KiB/frame")
    u["flow_cpu_pairs_per_s"] = best_torch_rate(d / "bench/flow.txt")
    u["flow_kib"] = _find(d / "bench/flow_storage.txt", r"^storage: ([0-9.]+) KiB/pair")
    # snippets/s over snippets per sample: more digits than samples/s at CPU speeds
    segs = _find(d / "bench/train_cpu.txt", r"input \d+x\d+, (\d+) segments")
    u["train_cpu_sps"] = _find(d / "bench/train_cpu.txt", r"model alone\s*:.*?\(([0-9.]+) snippets/s") / segs
    rates = []
    for path in sorted((d / "gpu").glob("flow*.csv")):  # every batch size measured
        with open(path) as f:
            rates += [float(r["pairs_per_s"]) for r in csv.DictReader(f)]
    u["flow_gpu_pairs_per_s"] = max(rates)
    with open(d / "gpu/train.csv") as f:
        rows = {r["stream"]: r for r in csv.DictReader(f)}
    u["train_gpu_sps"] = {s: float(rows[s]["full_sps"]) for s in ("rgb", "flow")}
    return u


def hours(s: float) -> str:
    return f"{s / 3600:,.1f} h" if s >= 3600 else f"{s / 60:,.0f} min"


def plan(name: str, nodes: int, u: dict) -> list[dict]:
    ds = DATASETS[name]
    cfg = yaml.safe_load((ROOT / ds["config"]).read_text())
    base = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    train = {**base["train"], **cfg.get("train", {})}
    fusion = {**base["fusion"]["train"], **cfg.get("fusion", {}).get("train", {})}
    grid = {**base["fusion"]["grid"], **cfg.get("fusion", {}).get("grid", {})}
    extra = grid.get("extra", [])
    cells = len(grid["methods"]) * len(grid["positions"]) * len(grid["seeds"]) + len(extra)
    trained = cells - sum(1 for e in extra if e.get("position") == "softmax")  # late fusion: nothing to train
    segs = int(train["segments"])
    frames = ds["pairs"] + ds["videos"]
    ev = {**base["evaluate"], **cfg.get("evaluate", {})}
    eval_snippets = ds["test"] * int(ev["frames"]) * int(ev["crops"])
    models = 2 + cells

    # work in "seconds on one unit" -------------------------------------------------------
    decode_cpu_s = frames * u["decode_cpu_ms_per_frame"] / 1e3  # CPU-seconds
    flow_cpu_s = ds["pairs"] / u["flow_cpu_pairs_per_s"]  # seconds on a 2-core machine
    flow_gpu_s = ds["pairs"] / u["flow_gpu_pairs_per_s"]
    samples = int(train["epochs"]) * ds["train"]
    g = u["train_gpu_sps"]
    stream_gpu_s = {s: samples / g[s] for s in ("rgb", "flow")}
    stream_cpu_s = {s: samples / u["train_cpu_sps"] for s in ("rgb", "flow")}
    # a fusion snippet runs both towers: snippets/s = segs / (1/rgb + 1/flow) samples/s
    snip_gpu = segs / (1 / g["rgb"] + 1 / g["flow"])
    snip_cpu = segs / (2 / u["train_cpu_sps"])
    cell_snips = int(fusion["epochs"]) * ds["train"] * int(fusion.get("segments", 1))
    cell_gpu_s, cell_cpu_s = cell_snips / snip_gpu, cell_snips / snip_cpu
    eval_gpu_s = eval_snippets / (3 * snip_gpu)  # per model, forward only
    eval_cpu_s = eval_snippets / (3 * snip_cpu)

    rows = []
    for setting, n in (("2-core", 1), ("1 GPU", 1), (f"{nodes} nodes", nodes)):
        gpu = setting != "2-core"
        cores = GPU_NODE_CORES if gpu else 2
        t = {
            "decode": decode_cpu_s / (cores * n),
            "flow": (flow_gpu_s if gpu else flow_cpu_s) / n,
            # the two streams in parallel where there are 2 nodes or more
            "streams": (sum(stream_gpu_s.values()) if gpu else sum(stream_cpu_s.values())) / min(n, 2),
            "fusion grid": (cell_gpu_s if gpu else cell_cpu_s) * -(-trained // n),
            "evaluation": (eval_gpu_s if gpu else eval_cpu_s) * -(-models // n),
        }
        bound = max(t, key=t.get)
        rows.append(dict(dataset=name, setting=setting, **{k: hours(v) for k, v in t.items()},
                         total=hours(sum(t.values())), bound=bound))
    disk = {"frames": frames * u["frame_kib"] / 2**20, "flow": ds["pairs"] * u["flow_kib"] / 2**20}
    rows.append(dict(dataset=name, setting="disk", decode=f"{disk['frames']:,.0f} GiB",
                     flow=f"{disk['flow']:,.0f} GiB", streams="", **{"fusion grid": "", "evaluation": ""},
                     total=f"{sum(disk.values()):,.0f} GiB", bound=""))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, default=8, help="GPU nodes of the SLURM cluster")
    a = p.parse_args(argv)
    u = unit_costs()
    print("unit costs (measured): " + ", ".join(f"{k} {v if not isinstance(v, float) else round(v, 3)}"
                                                for k, v in u.items()))
    cols = ["dataset", "setting", "decode", "flow", "streams", "fusion grid", "evaluation", "total", "bound"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for name in DATASETS:
        for r in plan(name, a.nodes, u):
            print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
