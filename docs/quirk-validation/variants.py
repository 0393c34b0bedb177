"""The quirk's class-unit visualization under other render settings, on validation training
seeds only (see run.sh): does any setting make the quirked models' MotionLeft unit show the
mark, with the clean models silent?

    python docs/quirk-validation/variants.py RUN_FOLDER DESIGN_FOLDER SEEDS OUT.csv [VARIANT ...]

RUN_FOLDER is a finished default run with the clean models results/quirk/seed-N/clean of the
given SEEDS (comma-separated); DESIGN_FOLDER is one design's folder of design.sh (its
quirk.json and the quirked models seed-N/model). Each variant changes a few settings of the frozen
verification runs (``visualize`` / ``visualize.verify``) and, for ``redirect*``, applies the
redirected ReLU gradient for that many first steps; everything else is the analysis rule's
code (``twostream.quirk.verify_models``) with the settings the run's quirk job used
(job_params.py). One row per (seed, variant).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from twostream import quirk as Q
from twostream.models import load_model
from twostream.visualize import render as R
from twostream.visualize import verify_runs as V
from twostream.visualize.causes import read_classes
from twostream.visualize.stage import make_config as vis_config

from job_params import job_params

# name: (visualize overrides, visualize.verify overrides, redirected-ReLU steps)
VARIANTS = {
    "frozen": ({}, {}, 0),
    "redirect16": ({}, {}, 16),
    "steps300": ({}, {"steps": 300}, 0),
    "redirect16_steps300": ({}, {"steps": 300}, 16),
    "steps500_lr0.1": ({"lr": 0.1}, {"steps": 500}, 0),
    "lr0.1": ({"lr": 0.1}, {}, 0),
    "penalties3_10": ({}, {"penalties": [3.0, 10.0]}, 0),
    "penalties0.3_1": ({}, {"penalties": [0.3, 1.0]}, 0),
    "fourier": ({"parametrization": "fourier"}, {}, 0),
    "fourier_redirect16": ({"parametrization": "fourier"}, {}, 16),
    "objective_logit": ({}, {"objective": "logit"}, 0),
    "objective_log_prob": ({}, {"objective": "log_prob"}, 0),
    "init_sd0.05": ({"init_sd": 0.05}, {}, 0),
    "init_sd0.01": ({"init_sd": 0.01}, {}, 0),
    "init_sd0.05_logit": ({"init_sd": 0.05}, {"objective": "logit"}, 0),
    "jitter0": ({"jitter": 0}, {}, 0),
    "jitter8": ({"jitter": 8}, {}, 0),
}


def main(argv: list[str]) -> int:
    run, design, seeds, out = argv[0], argv[1], [int(s) for s in argv[2].split(",")], argv[3]
    names = argv[4:] or list(VARIANTS)
    cfg = job_params(Path(run), "results/quirk/quirk.csv")  # the settings the run's quirk job used
    qcfg = Q.make_config(cfg["quirk"])
    base = vis_config(cfg["visualize"])
    gt = Q.read_truth(f"{design}/quirk.json")
    classes = read_classes(f"{run}/results/dataset/classes.csv")
    torch.set_num_threads(1)
    plain = R.render_vis
    rows = []
    for seed in seeds:
        models = {"quirked": load_model(f"{design}/seed-{seed}/model/checkpoint.pt", map_location="cpu"),
                  "clean": load_model(f"{run}/results/quirk/seed-{seed}/clean/checkpoint.pt", map_location="cpu")}
        for name in names:
            vis, ver, redirect = VARIANTS[name]
            vc = dataclasses.replace(base, **vis, verify=dataclasses.replace(base.verify, **ver))
            V.render_vis = functools.partial(plain, redirect_relu_steps=redirect)
            t = time.time()
            table, runs, _ = Q.verify_models(models, gt, classes, vc, qcfg)
            v = {(r.model, r.check): r for _, r in table.iterrows()}
            q = runs[(runs.model == "quirked") & (runs.check == "quirk_shown")]
            row = dict(seed=seed, variant=name, gate=int(q.gate.sum()), runs=len(q),
                       mean_group_prob=round(float(q.prob.mean()), 3),
                       shown=int(v["quirked", "quirk_shown"].passes),
                       shown_inconclusive=int(v["quirked", "quirk_shown"].inconclusive),
                       shown_pass=bool(v["quirked", "quirk_shown"]["pass"]),
                       located=int(v["quirked", "quirk_located"].passes),
                       clean_absent=int(v["clean", "quirk_absent_in_clean"].passes),
                       clean_false_alarms=int(v["clean", "quirk_located"].passes),
                       seconds=round(time.time() - t, 1))
            rows.append(row)
            print(json.dumps(row), flush=True)
    V.render_vis = plain
    pd.DataFrame(rows).to_csv(out, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
