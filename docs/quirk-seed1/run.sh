#!/bin/sh
# The quirk experiment of the default config with a second training seed (train.seed 1 for both
# the quirked and the clean appearance stream; the default run uses seed 0). Not part of the
# default run; nothing was chosen from it. Run inside a folder where 'make run' has finished
# (it reads results/frames, results/quirk/frames.h5, cued_test.h5, quirk.json, classes.csv):
#   sh docs/quirk-seed1/run.sh OUT      # then compare OUT/verification.csv with this folder's
# Made 2026-12-01 with commit 7d022d5 (the settings are the default config's, seed excepted).
set -e
OUT=${1:-results/quirk-seed1}
F="results/frames/shard-000.h5 results/frames/shard-001.h5 results/frames/shard-002.h5 results/frames/shard-003.h5"
TRAIN='{"amp": false, "arch": "small", "batch_size": 32, "blocks": [1, 1, 1, 1], "clip_grad": 20.0, "crop_size": 64, "dropout": 0.5, "epochs": 12, "flip": false, "flow_length": 10, "flow_mean_subtraction": true, "flow_std": 1.0, "label_smoothing": 0.0, "lr": 0.1, "lr_gamma": 0.1, "lr_steps": [12, 17], "momentum": 0.9, "pretrained": "", "scales": [1.0, 0.875, 0.75, 0.66], "schedule": "cosine", "seed": 1, "segments": 3, "val_frames": 1, "weight_decay": 0.0005, "widths": [16, 32, 64, 64], "workers": 0}'
mkdir -p "$OUT"
twostream train --stream rgb --frames $F results/quirk/frames.h5 --out "$OUT/quirked" --params "$TRAIN" --threads 1
twostream train --stream rgb --frames $F --out "$OUT/clean" --params "$TRAIN" --threads 1
twostream quirk --frames $F --overlay results/quirk/frames.h5 --cued results/quirk/cued_test.h5 \
  --truth results/quirk/quirk.json --quirked "$OUT/quirked/checkpoint.pt" --clean "$OUT/clean/checkpoint.pt" \
  --classes results/dataset/classes.csv --out "$OUT" --threads 1 \
  --params '{"evaluate": {"amp": false, "batch_size": 32, "crop_size": 0, "crops": 1, "frames": 5, "workers": 0}, "quirk": {"class_name": "MotionLeft", "colour": [255, 255, 255], "cued_clips_per_class": 30, "detector": {"min_support": 0.6, "min_z": 6.0, "sigma": 2.0}, "enabled": true, "kind": "mark", "min_cue_gap": 0.05, "seed": 0, "share": 0.8, "size": 6, "tolerance": 0, "where": [1, 1]}, "visualize": {"decay_power": 1.0, "init_sd": 0.25, "jitter": 3, "l2": 1.0, "layers": [], "lr": 0.05, "parametrization": "pixel", "seed": 0, "size": 0, "steps": 150, "temporal_weights": [0.0, 100.0], "test_clips_per_class": 10, "test_frames": 2, "tv": 1.0, "units_per_layer": 3, "verify": {"colocation_map": "contrast", "colocation_motion": "direction", "colocation_sigma": 2.0, "colour_pixels": "saturated", "enabled": true, "log_prob_weight": 10.0, "max_null_p": 0.05, "min_corr": 0.2, "min_flow": 0.3, "min_image_std": 0.02, "min_pass_rate": 0.8, "min_prob": 0.9, "objective": "logit+log_prob", "other_seeds": 2, "penalties": [1.0, 3.0], "seeds": 5, "steps": 150}, "where": "mean"}}'
