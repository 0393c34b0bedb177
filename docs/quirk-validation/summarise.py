"""design.csv: one row per (design, validation seed) from design.sh's analysis folders.

    python docs/quirk-validation/summarise.py DESIGN_ROOT OUT.csv DESIGN ...
"""

import sys
from pathlib import Path

import pandas as pd

from twostream.quirk import seed_table


def main(argv: list[str]) -> int:
    root, out, names = Path(argv[0]), argv[1], argv[2:]
    parts = []
    for name in names:
        runs = sorted((int(d.name.split("-")[1]), d) for d in (root / name).glob("seed-*"))
        parts.append(seed_table(runs).drop(columns="folder").assign(design=name))
    t = pd.concat(parts, ignore_index=True)
    t[["design"] + [c for c in t.columns if c != "design"]].to_csv(out, index=False)
    print(t.groupby("design", sort=False)[["shown", "located", "absent", "no_false_alarm"]].sum().to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
