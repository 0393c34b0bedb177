#!/usr/bin/env bash
# One design of the planted quirk on the validation training seeds (see run.sh):
#
#   design.sh RUN_FOLDER NAME '{"share": 1.0}'
#
# plants the quirk with the default run's quirk settings (params.json: the quirk rule's
# params as the default config at commit 33e9ae1 wrote them) changed by the JSON given,
# trains the quirked appearance stream of each seed in $SEEDS (default 5 6 4) with the rgb
# stream's settings, and analyses it against the clean model of the same seed
# (RUN_FOLDER/results/quirk/seed-N/clean, made by run.sh's first step). The same commands
# as the rules quirk_data, train_quirk and quirk; the outputs go to RUN_FOLDER/../quirk-design/NAME.
set -euo pipefail
run=$(cd "$1" && pwd); name=$2; over=$3
here=$(cd "$(dirname "$0")" && pwd)
out=$(dirname "$run")/quirk-design/$name
mkdir -p "$out/logs"
export PATH="$run/.venv/bin:$PATH"
params=$(python - "$here/params.json" "$over" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
p["quirk"].update(json.loads(sys.argv[2]))
print(json.dumps(p))
PY
)
frames="$run/results/frames/shard-000.h5 $run/results/frames/shard-001.h5 $run/results/frames/shard-002.h5 $run/results/frames/shard-003.h5"
twostream quirk --plant --frames $frames --overlay "$out/frames.h5" --cued "$out/cued_test.h5" \
  --truth "$out/quirk.json" --params "$params" > "$out/logs/data.log" 2>&1
# the rgb stream's train settings of the default config (rule train_quirk), seed replaced
train='{"amp": false, "arch": "small", "batch_size": 32, "blocks": [1, 1, 1, 1], "clip_grad": 20.0, "crop_size": 64, "dropout": 0.5, "epochs": 12, "flip": false, "flow_length": 10, "flow_mean_subtraction": true, "flow_std": 1.0, "label_smoothing": 0.0, "lr": 0.1, "lr_gamma": 0.1, "lr_steps": [12, 17], "momentum": 0.9, "pretrained": "", "scales": [1.0, 0.875, 0.75, 0.66], "schedule": "cosine", "seed": SEED, "segments": 3, "val_frames": 1, "weight_decay": 0.0005, "widths": [16, 32, 64, 64], "workers": 0}'
one() {
  twostream train --stream rgb --frames $frames "$out/frames.h5" --out "$out/seed-$1/model" \
    --params "${train/SEED/$1}" --threads 1 > "$out/logs/train-$1.log" 2>&1
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
