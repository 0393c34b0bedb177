"""Copy a finished default run's reported outputs into docs/default-run/, with its job times.

    python bench/collect_run.py RUN_DIR [OUT_DIR]     # OUT_DIR: docs/default-run
    python bench/collect_run.py --timings-only RUN_DIR OUT_DIR   # an older commit's run: no file copy

RUN_DIR is the folder ``make run`` ran in (its ``results/`` and ``benchmarks/``). Copies the
tables, findings and figures the README quotes, and writes from ``benchmarks/**/*.tsv``
(Snakemake's ``benchmark:`` files):

* ``jobs.csv``: one row per job: its wall seconds, mean load (% of one core), peak memory,
  and when it ran: ``start_s`` and ``end_s``, seconds after the first job started (the end
  is the benchmark file's modification time, written as the job ends; the start is the end
  less the job's seconds);
* ``stage_seconds.csv``: per stage (the benchmark folder's first part: train_fusion,
  evaluate, ...) the job count, the sum of job seconds (``seconds``: jobs run side by side,
  so this is job time), and the stage's wall span: from its first job's start to its last
  job's end (``start_s``, ``end_s``, ``wall_s``; stages overlap). RUN.txt (written by hand
  beside the run) holds the run's wall time;
* ``machine.txt``: the CPU this script runs on (run it on the machine that made the run):
  model name, core count, the vector instruction sets it offers and the one torch's CPU
  kernels use (``torch.backends.cpu.get_cpu_capability()``). Float results of training
  differ between instruction sets (AVX2 against AVX-512), so two runs of the same commit
  are byte-identical only on the same kind of CPU.

Run it on the run folder itself: a copy without the files' modification times has no
``start_s``/``end_s``.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import sys
from pathlib import Path

ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")

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
    "quirk/verification_runs.csv": "quirk/verification_runs.csv",
    "quirk/seeds.csv": "quirk/seeds.csv",
    "quirk/seeds.md": "quirk/seeds.md",
}


def job_rows(bench: Path) -> list[dict]:
    rows = []
    for tsv in sorted(bench.rglob("*.tsv")):
        with tsv.open() as f:
            rec = next(csv.DictReader(f, delimiter="\t"))
        job = str(tsv.relative_to(bench).with_suffix(""))
        end = tsv.stat().st_mtime
        rows.append({"job": job, "seconds": float(rec["s"]), "mean_load": float(rec["mean_load"]),
                     "max_rss_mb": float(rec["max_rss"]), "end": end, "start": end - float(rec["s"])})
    t0 = min((r["start"] for r in rows), default=0.0)
    for r in rows:
        r["start"] -= t0
        r["end"] -= t0
    return sorted(rows, key=lambda r: -r["seconds"])


def machine_lines() -> list[str]:
    """The CPU this process runs on (see the module docstring)."""
    model, flags = platform.processor() or "?", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    try:
        import torch  # deferred: only this record needs it

        capability = f"torch {torch.__version__}: CPU capability {torch.backends.cpu.get_cpu_capability()}"
    except ImportError:
        capability = "torch: not importable here"
    isa = ", ".join(f for f in ISA_FLAGS if f in flags) or "none of " + ", ".join(ISA_FLAGS)
    return [f"cpu: {model}", f"cores: {os.cpu_count()}", f"instruction sets: {isa}", capability]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="the folder make run ran in")
    ap.add_argument("out", type=Path, nargs="?", default=Path("docs/default-run"))
    ap.add_argument("--timings-only", action="store_true", help="job times and machine.txt only (an older commit's run)")
    args = ap.parse_args(argv)
    run, out = args.run, args.out
    files = {} if args.timings_only else FILES
    missing = [src for src in files if not (run / "results" / src).is_file()]
    if missing:
        print(f"{run}: missing results/{missing[0]} (is the run finished?)", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    for src, dst in files.items():
        (out / dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run / "results" / src, out / dst)
    jobs = job_rows(run / "benchmarks")
    with (out / "jobs.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["job", "seconds", "mean_load", "max_rss_mb", "start_s", "end_s"])
        w.writeheader()
        for r in jobs:
            w.writerow({"job": r["job"], "seconds": f"{r['seconds']:.1f}", "mean_load": f"{r['mean_load']:.2f}",
                        "max_rss_mb": f"{r['max_rss_mb']:.2f}", "start_s": f"{r['start']:.0f}", "end_s": f"{r['end']:.0f}"})
    stages: dict[str, list[dict]] = {}
    for r in jobs:
        stages.setdefault(r["job"].split("/")[0], []).append(r)
    summary = {}
    for stage, rs in stages.items():
        start, end = min(r["start"] for r in rs), max(r["end"] for r in rs)
        summary[stage] = (len(rs), sum(r["seconds"] for r in rs), start, end, end - start)
    with (out / "stage_seconds.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["stage", "jobs", "seconds", "start_s", "end_s", "wall_s"])
        for stage in sorted(summary):
            n, sec, start, end, wall = summary[stage]
            w.writerow([stage, n, f"{sec:.0f}", f"{start:.0f}", f"{end:.0f}", f"{wall:.0f}"])
    (out / "machine.txt").write_text("\n".join(machine_lines()) + "\n")
    print(f"{out}: {len(files)} files from {run}/results, {len(jobs)} jobs; per stage (job seconds, wall span):")
    for stage in sorted(summary, key=lambda s: summary[s][2]):
        n, sec, start, end, wall = summary[stage]
        print(f"  {stage:16s} {n:3d} jobs {sec:8.0f} job-s   {start:6.0f}-{end:6.0f} s ({wall:.0f} s wall)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
