"""Copy a finished default run's reported outputs into docs/default-run/, with its job times.

    python bench/collect_run.py RUN_DIR [OUT_DIR]     # OUT_DIR: docs/default-run

RUN_DIR is the folder ``make run`` ran in (its ``results/`` and ``benchmarks/``). Copies the
tables, findings and figures the README quotes, and writes from ``benchmarks/**/*.tsv``
(Snakemake's ``benchmark:`` files):

* ``jobs.csv``: one row per job: its wall seconds, mean load (% of one core) and peak memory;
* ``stage_seconds.csv``: job count and the sum of job seconds per stage (the benchmark
  folder's first part: train_fusion, evaluate, ...). Jobs run side by side, so the sum is
  job time, not wall time; RUN.txt (written by hand beside the run) holds the wall time.
"""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

FILES = {  # results/... -> docs name
    "ablation/accuracy.csv": "accuracy.csv",
    "ablation/findings.md": "findings.md",
    "ablation/heatmap.png": "heatmap.png",
    "ablation/groups.png": "groups.png",
    "findings.md": "findings-2-3.md",
    "visualization/verification.csv": "verification.csv",
    "visualization/units.csv": "units.csv",
    "visualization/units.png": "units.png",
    "visualization/invariance.csv": "invariance.csv",
    "visualization/invariance.png": "invariance.png",
    "visualization/unit_checks.csv": "unit_checks.csv",
    "quirk/findings.md": "quirk/findings.md",
    "quirk/montage.png": "quirk/montage.png",
    "quirk/quirk.csv": "quirk/quirk.csv",
    "quirk/quirk.json": "quirk/quirk.json",
    "quirk/seeds.csv": "quirk/seeds.csv",
    "quirk/seeds.md": "quirk/seeds.md",
}


def job_rows(bench: Path) -> list[dict]:
    rows = []
    for tsv in sorted(bench.rglob("*.tsv")):
        with tsv.open() as f:
            rec = next(csv.DictReader(f, delimiter="\t"))
        job = str(tsv.relative_to(bench).with_suffix(""))
        rows.append({"job": job, "seconds": float(rec["s"]), "mean_load": float(rec["mean_load"]),
                     "max_rss_mb": float(rec["max_rss"])})
    return sorted(rows, key=lambda r: -r["seconds"])


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    run = Path(argv[0])
    out = Path(argv[1] if len(argv) > 1 else "docs/default-run")
    missing = [src for src in FILES if not (run / "results" / src).is_file()]
    if missing:
        print(f"{run}: missing results/{missing[0]} (is the run finished?)", file=sys.stderr)
        return 1
    for src, dst in FILES.items():
        (out / dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run / "results" / src, out / dst)
    jobs = job_rows(run / "benchmarks")
    with (out / "jobs.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["job", "seconds", "mean_load", "max_rss_mb"])
        w.writeheader()
        for r in jobs:
            w.writerow({"job": r["job"], "seconds": f"{r['seconds']:.1f}", "mean_load": f"{r['mean_load']:.2f}",
                        "max_rss_mb": f"{r['max_rss_mb']:.2f}"})
    stages: dict[str, list[float]] = {}
    for r in jobs:
        stages.setdefault(r["job"].split("/")[0], []).append(r["seconds"])
    with (out / "stage_seconds.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["stage", "jobs", "seconds"])
        for stage in sorted(stages):
            w.writerow([stage, len(stages[stage]), f"{sum(stages[stage]):.0f}"])
    print(f"{out}: {len(FILES)} files from {run}/results, {len(jobs)} jobs; job seconds per stage:")
    for stage in sorted(stages, key=lambda s: -sum(stages[s])):
        print(f"  {stage:16s} {len(stages[stage]):3d} jobs {sum(stages[stage]):8.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
