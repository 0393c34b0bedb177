#!/usr/bin/env bash
# The quirk's design and the class-unit visualization's settings, tried on VALIDATION
# training seeds 4, 5, 6 only (the reported seeds are 0, the default run's, and 1-3 of
# docs/quirk-seeds). Inside a finished default run (a clone where `make run` has finished):
#
#   cd <run folder> && bash docs/quirk-validation/run.sh
#
# 1. the clean appearance streams of seeds 4, 5, 6 (rule train_quirk, role clean: they do
#    not depend on the quirk's design);
# 2. five designs of the quirk (design.sh): a 6 px mark in the corner ([1, 1], the earlier
#    default), the same with every MotionLeft training clip marked (share 1.0), 6 px at the
#    frame's centre ([29, 29]), and 12 and 16 px in the corner; each: plant, train the
#    quirked stream, analyse;
# 3. design.csv: per design and seed, the shortcut rate and the four quirk checks;
# 4. variants.csv: the corner design's models rendered with 17 other render settings
#    (variants.py), to see whether the visualization, not the design, was at fault.
set -euo pipefail
here=docs/quirk-validation
printf 'quirk:\n  train_seeds: [4, 5, 6]\n' > /tmp/quirk-validation-seeds.yaml
.venv/bin/snakemake --cores 2 results/quirk/seed-{4,5,6}/clean/checkpoint.pt \
  --configfile config/config.yaml /tmp/quirk-validation-seeds.yaml
bash $here/design.sh . corner '{"where": [1, 1], "size": 6}'
bash $here/design.sh . share1 '{"where": [1, 1], "size": 6, "share": 1.0}'
bash $here/design.sh . centre '{"where": [29, 29], "size": 6}'
bash $here/design.sh . corner12 '{"where": [1, 1], "size": 12}'
bash $here/design.sh . corner16 '{"where": [1, 1], "size": 16}'
root=../quirk-design
.venv/bin/python $here/summarise.py $root $here/design.csv corner share1 centre corner12 corner16
.venv/bin/python $here/variants.py . $root/corner 5,6,4 $here/variants.csv
for d in corner centre corner16; do cp $root/$d/seed-5/montage.png $here/montage-$d-seed5.png; done
