#!/usr/bin/env bash
# The planted quirk over training seeds 0 (the default run's) and 1, 2, 3, inside a finished
# default run (a clone of this repository where `make run` has finished):
#
#   cd <run folder> && bash docs/quirk-seeds/run.sh
#
# Snakemake runs only the new seeds' jobs (two appearance-stream trainings and one analysis
# per seed), the seed count (rule quirk_seeds) and the verification table; then the files
# are copied here.
set -euo pipefail
.venv/bin/snakemake --cores 2 --configfile config/config.yaml docs/quirk-seeds/seeds.yaml
out=docs/quirk-seeds
cp results/quirk/seeds.csv results/quirk/seeds.md "$out/"
for d in results/quirk/seed-*; do
  s=$(basename "$d")
  mkdir -p "$out/$s"
  cp "$d"/quirk.csv "$d"/findings.md "$d"/verification.csv "$d"/verification_runs.csv "$d"/montage.png "$out/$s/"
done
