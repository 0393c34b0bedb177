"""Compare the result files two runs have in common (HDF5 datasets, CSV tables, JSON),
file by file, with the tolerances of the tests (tests/slurm/tiny_run.py: wall-clock
columns and HDF5 provenance attributes are not compared).

    python bench/compare_runs.py RUN_A/results RUN_B/results

Used to show that a refactor changes no result: RUN_A made before it, RUN_B after.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "slurm"))
import tiny_run  # noqa: E402


def main(a: Path, b: Path) -> int:
    files = [{p.relative_to(r) for p in r.rglob("*") if p.suffix in tiny_run.COMPARED} for r in (a, b)]
    both = sorted(files[0] & files[1])
    problems = [p for rel in both for p in tiny_run.compare_file(a / rel, b / rel, rel)]
    print(f"{a} vs {b}: {len(files[0])} and {len(files[1])} result files, {len(both)} in both")
    for p in problems:
        print("  differs:", p)
    print(f"{len(both) - len({p.split(':')[0] for p in problems})} of {len(both)} identical")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
