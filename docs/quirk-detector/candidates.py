"""Judge the detector candidates of RULE.md on finished quirk analyses (no rendering).

    python docs/quirk-detector/candidates.py FOLDER [FOLDER ...] > candidates.csv

Each FOLDER is one quirk analysis (``twostream quirk`` output): its ``visualizations.h5``
(the class unit's images, (setting, seed, H, W, 3) per model), ``verification_runs.csv``
(the gate of each quirked image) and ``../quirk.json`` or ``../../quirk.json`` (the mark).
One row per (folder, candidate, model, setting): fired, peak, z, p, support, distance, located.
The V0-z6 rows must reproduce the folder's own detector rows (checked: it exits 1 if not).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from twostream.visualize import quirk_detect as Q

SIGMA, MIN_Z, MIN_SUPPORT, ALPHA, DRAWS = 2.0, 6.0, 0.6, 0.01, 999


CANDIDATES = {  # RULE.md: keyword arguments of quirk_detect.detect
    "V0-z6": dict(min_z=MIN_Z),
    "V0-null": dict(null_draws=DRAWS, alpha=ALPHA),
    "V1-null": dict(null_draws=DRAWS, alpha=ALPHA, smooth_image=True),
}


def judge(images, known, cue, tol, cand: str) -> dict:
    d = Q.detect(images, known, sigma=SIGMA, min_support=MIN_SUPPORT, **CANDIDATES[cand])
    H, W = images[0].shape[:2]
    cx, cy = cue.centre
    dist = d.distance_to(cx, cy, H, W)
    return dict(fired=d.fired, x=d.x, y=d.y, z=d.z, p=d.p, support=d.support, distance=dist,
                located=bool(d.fired and dist <= tol + cue.size / 2.0 + SIGMA))


def main(folders: list[str]) -> int:
    rows, bad = [], []
    for folder in map(Path, folders):
        truth = next(p for p in (folder / "quirk.json", folder.parent / "quirk.json", folder.parent.parent / "quirk.json") if p.exists())
        gt = json.loads(truth.read_text())
        cue = Q.Cue(int(gt["where"][0]), int(gt["where"][1]), int(gt["size"]), tuple(np.asarray(gt["colour"]) / 255.0))
        runs = pd.read_csv(folder / "verification_runs.csv")
        tol = 3.0  # visualize.jitter of the default config (quirk.tolerance 0)
        with h5py.File(folder / "visualizations.h5") as f:
            imgs = {role: f[role][()] for role in ("quirked", "clean")}
        shown = runs[runs.check == "quirk_shown"]
        for role, arr in imgs.items():
            for si in range(arr.shape[0]):
                if role == "quirked":
                    gate = shown[shown.setting == si].sort_values("seed")["gate"].astype(bool).tolist()
                    sel = [arr[si, j] for j in range(arr.shape[1]) if gate[j]]
                else:
                    sel = list(arr[si])
                for cand in ("V0-z6", "V0-null", "V1-null"):
                    r = dict(folder=str(folder), candidate=cand, model=role, setting=si, images=len(sel))
                    if len(sel) >= 2:
                        r.update(judge(sel, [], cue, tol, cand))
                        if cand == "V0-z6":  # must reproduce the pipeline's own row
                            own = runs[(runs.check == "quirk_located") & (runs.setting == si)
                                       & (runs.model.str.startswith("quirk") == (role == "quirked"))]
                            if len(own) and abs(float(own.detector_z.iloc[0]) - r["z"]) > 1e-6:
                                bad.append(f"{folder} {role} {si}: z {r['z']} against {float(own.detector_z.iloc[0])}")
                    rows.append(r)
    pd.DataFrame(rows).to_csv(sys.stdout, index=False, float_format="%.4g")
    for b in bad:
        print("MISMATCH", b, file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
