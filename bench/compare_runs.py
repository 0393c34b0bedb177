"""Compare the result files two runs have in common (HDF5 datasets, CSV tables, JSON),
file by file, with the tolerances of the tests (tests/slurm/tiny_run.py: wall-clock
columns and HDF5 provenance attributes are not compared).

    python bench/compare_runs.py RUN_A/results RUN_B/results

Used to show that a refactor changes no result: RUN_A made before it, RUN_B after.
"""

from __future__ import annotations

import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "slurm"))
import tiny_run  # noqa: E402


def compare_file(a: Path, b: Path, rel: Path) -> list[str]:
    with tempfile.TemporaryDirectory() as ta, tempfile.TemporaryDirectory() as tb:
        for root, src in ((ta, a), (tb, b)):
            (Path(root) / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src / rel, Path(root) / rel)
        try:
            return tiny_run.compare_results(Path(ta), Path(tb))
        except Exception as e:  # e.g. an empty CSV: then only bytes can be compared
            return [] if filecmp.cmp(a / rel, b / rel, shallow=False) else [f"{rel}: {e!r}"]


def main(a: Path, b: Path) -> int:
    files = [{p.relative_to(r) for p in r.rglob("*") if p.suffix in tiny_run.COMPARED} for r in (a, b)]
    both = sorted(files[0] & files[1])
    problems = [p for rel in both for p in compare_file(a, b, rel)]
    print(f"{a} vs {b}: {len(files[0])} and {len(files[1])} result files, {len(both)} in both")
    for p in problems:
        print("  differs:", p)
    print(f"{len(both) - len({p.split(':')[0] for p in problems})} of {len(both)} identical")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
