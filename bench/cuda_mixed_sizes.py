"""The real-video corpus (tests/real_corpus.py: four codecs, mixed frame sizes and aspect
ratios, a truncated clip) through index -> decode -> flow -> one training epoch of each
stream on one device, with timings: the CUDA path of mixed-size shards in one go.

    python bench/cuda_mixed_sizes.py --device cuda [--out DIR]
    python bench/cuda_mixed_sizes.py --device cpu            # the same path on CPU

Settings: config/config.yaml with tests/hmdb51_corpus.yaml laid over it key by key (as
Snakemake lays a --configfile), flow and training on --device. Prints one line per step;
the last line says whether every flow shard with mixed sizes used the png layout on the
requested device and both streams trained one finite epoch there.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def merge(base, over):
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{k: merge(base.get(k), v) for k, v in over.items()}}
    return over


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", choices=["cpu", "cuda"])
    ap.add_argument("--out", default="", help="work folder (default: a temporary one)")
    args = ap.parse_args()

    import h5py

    from real_corpus import make_corpus
    from twostream.cli import main as cli
    from twostream.config import stream_section

    def run(*argv) -> float:
        t = time.perf_counter()
        rc = cli([str(a) for a in argv])
        if rc != 0:
            raise SystemExit(f"step failed ({rc}): twostream {' '.join(map(str, argv[:3]))} ...")
        return time.perf_counter() - t

    root = Path(args.out or tempfile.mkdtemp(prefix="cuda-mixed-"))
    root.mkdir(parents=True, exist_ok=True)
    make_corpus(root, "hmdb51", videos="hmdb51")
    cfg = merge(yaml.safe_load((REPO / "config/config.yaml").read_text()),
                yaml.safe_load((REPO / "tests/hmdb51_corpus.yaml").read_text()))
    cfg["dataset"].update(root=str(root / "hmdb51"), splits_dir=str(root / "splits"))
    cfg["flow"]["device"] = args.device
    out = root / "results"
    print(f"index: {run('index', '--params', json.dumps(cfg['dataset']), '--out', out / 'index.csv'):.1f} s")
    shards = [f"shard-{i:03d}" for i in range(cfg["decode"]["shards"])]
    ok = True
    for s in shards:
        t = run("decode", "--params", json.dumps(cfg["decode"]), "--index", out / "index.csv", "--shard", s,
                "--out", out / "frames" / f"{s}.h5", "--bad-list", out / "frames" / f"{s}.bad.csv", "--no-progress")
        tf = run("flow", "--params", json.dumps(cfg["flow"]), "--frames", out / "frames" / f"{s}.h5",
                 "--out", out / "flow" / f"{s}.h5")
        with h5py.File(out / "flow" / f"{s}.h5", "r") as f:
            sizes = {(int(v["height"]), int(v["width"])) for v in f["videos"][()]}
            layout, device = f.attrs["layout"], f.attrs["device"]
            fields = len(f["flow_png"] if "flow_png" in f else f["flow"])
        mixed_ok = len(sizes) == 1 or layout == "png"
        ok &= mixed_ok and device.startswith(args.device)
        print(f"{s}: decode {t:.1f} s, flow {tf:.1f} s ({fields} fields, {fields / tf:.1f} pairs/s incl. start-up), "
              f"sizes {sorted(sizes)}, layout {layout}, device {device}")
    for stream, flag, kind in (("rgb", "--frames", "frames"), ("flow", "--flow", "flow")):
        sec = stream_section(cfg["train"], stream)
        files = [out / kind / f"{s}.h5" for s in shards]
        t = run("train", "--stream", stream, flag, *files, "--out", out / stream, "--params", json.dumps(sec),
                "--device", args.device)
        hist = pd.read_csv(out / stream / "history.csv")
        finite = bool(np.isfinite(hist.filter(like="loss").to_numpy()).all())
        ok &= finite and len(hist) == 1
        print(f"train {stream}: 1 epoch in {t:.1f} s on {args.device}, loss finite: {finite}")
    print(f"mixed sizes on {args.device}: {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
