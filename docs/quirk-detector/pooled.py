"""RULE2.md: V0-null (per penalty setting, located in both) against P-null (one test over both
settings' images) on finished quirk analyses (no rendering).

    python docs/quirk-detector/pooled.py FOLDER [FOLDER ...] > pooled.csv

FOLDER as in candidates.py (whose ``judge`` this calls, with its V0-null settings). One row per
(folder, candidate, model): images, fired, located, p, distance (P-null), or the two settings'
values joined by ';' (V0-null).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from candidates import judge  # noqa: E402  (the same detector call as RULE.md's candidates)

from twostream.visualize import quirk_detect as Q  # noqa: E402


def main(folders: list[str]) -> int:
    rows = []
    for folder in map(Path, folders):
        truth = next(p for p in (folder / "quirk.json", folder.parent / "quirk.json", folder.parent.parent / "quirk.json") if p.exists())
        gt = json.loads(truth.read_text())
        cue = Q.Cue(int(gt["where"][0]), int(gt["where"][1]), int(gt["size"]), tuple(np.asarray(gt["colour"]) / 255.0))
        runs = pd.read_csv(folder / "verification_runs.csv")
        shown = runs[runs.check == "quirk_shown"]
        tol = 3.0  # visualize.jitter of the default config (quirk.tolerance 0)
        with h5py.File(folder / "visualizations.h5") as f:
            imgs = {role: f[role][()] for role in ("quirked", "clean")}
        for role, arr in imgs.items():
            per = []
            for si in range(arr.shape[0]):
                if role == "quirked":
                    gate = shown[shown.setting == si].sort_values("seed")["gate"].astype(bool).tolist()
                    per.append([arr[si, j] for j in range(arr.shape[1]) if gate[j]])
                else:
                    per.append(list(arr[si]))
            v0 = [judge(sel, [], cue, tol, "V0-null") if len(sel) >= 2 else None for sel in per]
            rows.append(dict(folder=str(folder), candidate="V0-null", model=role,
                             images=";".join(str(len(s)) for s in per),
                             fired=any(d and d["fired"] for d in v0) if role == "clean" else all(d and d["fired"] for d in v0),
                             located=all(d and d["located"] for d in v0),
                             p=";".join(f"{d['p']:.3f}" if d else "-" for d in v0),
                             distance=";".join(f"{d['distance']:.1f}" if d else "-" for d in v0)))
            pooled = [im for sel in per for im in sel]
            d = judge(pooled, [], cue, tol, "V0-null") if len(pooled) >= 2 else None
            rows.append(dict(folder=str(folder), candidate="P-null", model=role, images=str(len(pooled)),
                             fired=bool(d and d["fired"]), located=bool(d and d["located"]),
                             p=f"{d['p']:.3f}" if d else "-", distance=f"{d['distance']:.1f}" if d else "-"))
    pd.DataFrame(rows).to_csv(sys.stdout, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
