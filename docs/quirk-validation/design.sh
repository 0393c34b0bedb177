#!/usr/bin/env bash
# One design of the planted quirk on the validation training seeds (see run.sh):
#
#   design.sh RUN_FOLDER NAME '{"size": 12}'
#
# plants the quirk with the settings of the run's own quirk job, its `quirk` section updated
# by the JSON given, trains the quirked appearance stream of each seed in $SEEDS (default
# 5 6 4) with the settings of that seed's clean training, and analyses it against that clean
# model (RUN_FOLDER/results/quirk/seed-N/clean, made by run.sh's first step). The settings are
# read from the commands Snakemake recorded (job_params.py); the commands are the rules
# quirk_data, train_quirk and quirk's. Outputs: RUN_FOLDER/../quirk-design/NAME.
set -euo pipefail
run=$(cd "$1" && pwd); name=$2; over=$3
here=$(cd "$(dirname "$0")" && pwd)
out=$(dirname "$run")/quirk-design/$name
mkdir -p "$out/logs"
export PATH="$run/.venv/bin:$PATH"
params=$(python "$here/job_params.py" "$run" results/quirk/quirk.csv "$over")
frames=$(echo "$run"/results/frames/*.h5)
twostream quirk --plant --frames $frames --overlay "$out/frames.h5" --cued "$out/cued_test.h5" \
  --truth "$out/quirk.json" --params "$params" > "$out/logs/data.log" 2>&1
one() {
  twostream train --stream rgb --frames $frames "$out/frames.h5" --out "$out/seed-$1/model" \
    --params "$(python "$here/job_params.py" "$run" "results/quirk/seed-$1/clean/checkpoint.pt")" --threads 1 > "$out/logs/train-$1.log" 2>&1
  twostream quirk --frames $frames --overlay "$out/frames.h5" --cued "$out/cued_test.h5" --truth "$out/quirk.json" \
    --quirked "$out/seed-$1/model/checkpoint.pt" --clean "$run/results/quirk/seed-$1/clean/checkpoint.pt" \
    --classes "$run/results/dataset/classes.csv" --suffix=-s$1 --out "$out/seed-$1" --params "$params" \
    --threads 1 > "$out/logs/analyse-$1.log" 2>&1
}
for s in ${SEEDS:-5 6 4}; do
  one "$s" &
  while [ "$(jobs -r | wc -l)" -ge 2 ]; do sleep 5; done
done
wait
