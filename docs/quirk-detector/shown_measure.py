"""RULE4.md: quirk_shown's two candidate measures (T: template, S: structure) judged on finished
quirk analyses, from their stored class visualizations and gate results (no rendering).

    python docs/quirk-detector/shown_measure.py CLASSES_CSV FOLDER [FOLDER ...] > shown-measure.csv

FOLDER: a quirk analysis folder (``results/quirk`` or ``results/quirk/seed-N``) holding
``visualizations.h5`` and ``verification_runs.csv``; ``quirk.json`` in it or above it.
CLASSES_CSV: the run's ``results/dataset/classes.csv`` (the class's known colours). Every
judgement is the pipeline's own (``twostream.quirk``: ``judge_runs``, ``shown``, ``absent``,
the gate as stored), with the default config's pass bar, ``min_cue_gap`` and tolerance.
One row per (folder, candidate).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import h5py
import pandas as pd

from twostream import quirk as Q
from twostream.visualize.causes import read_classes
from twostream.visualize.stage import make_config as vis_config

MEASURES = {"T": "template", "S": "structure"}
_Q, _V = Q.make_config({}), vis_config({})  # the default config's settings
BAR = _V.verify.min_pass_rate
TOL = float(_Q.tolerance or _V.jitter)
GAP = float(_Q.min_cue_gap)


def main(classes_csv: str, folders: list[str]) -> int:
    classes = read_classes(classes_csv)
    rows = []
    for folder in map(Path, folders):
        truth = next(p for p in (folder / "quirk.json", folder.parent / "quirk.json") if p.exists())
        gt = json.loads(truth.read_text())
        cls = next(c for c in classes if c.label == int(gt["label"]))
        known = cls.colours
        cue = Q.cue_of(gt)
        runs = pd.read_csv(folder / "verification_runs.csv")
        gate = runs[runs.check == "quirk_shown"].sort_values(["setting", "seed"]).gate.astype(bool).to_numpy()
        with h5py.File(folder / "visualizations.h5") as f:
            imgs = {role: f[role][()] for role in ("quirked", "clean")}
        m = {role: Q.judge_runs(a.reshape(-1, *a.shape[2:]), cue, TOL, known) for role, a in imgs.items()}
        for name, measure in MEASURES.items():
            st = ["inconclusive" if not g else ("pass" if Q.shown(q, c, GAP, measure) else "fail")
                  for q, c, g in zip(m["quirked"], m["clean"], gate)]
            ab = [Q.absent(c, GAP, measure) for c in m["clean"]]
            n_sh, k_sh = len(st), st.count("pass")
            shown_ok, absent_ok = k_sh >= BAR * n_sh, sum(ab) >= BAR * len(ab)
            rows.append(dict(folder=str(folder), candidate=name, measure=measure, shown=f"{k_sh}/{n_sh}",
                             inconclusive=st.count("inconclusive"), shown_pass=shown_ok,
                             absent=f"{sum(ab)}/{len(ab)}", absent_pass=absent_ok, success=shown_ok and absent_ok))
    pd.DataFrame(rows).to_csv(sys.stdout, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
