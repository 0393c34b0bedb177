"""What the interpreter's teardown costs a ``twostream`` job, and what ``cli.console`` saves.

    python bench/exit.py [ROUNDS]

For each stage module, a fresh interpreter imports it with the libraries its jobs load on the
way (matplotlib, scipy.ndimage, h5py) and ends either the usual way (``sys.exit``: module and
object finalisation) or as ``twostream`` now does (``os._exit`` after flushing). The two are
interleaved over ROUNDS rounds (default 5); it prints per module the median wall seconds of
each, the spread, and the saving, and last the mean saving per job.
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time

MODULES = ["twostream.decode", "twostream.flow.stage", "twostream.train", "twostream.fusion_train",
           "twostream.evaluate", "twostream.visualize.stage", "twostream.analysis.stage", "twostream.quirk",
           "twostream.plots"]
EXTRA = "matplotlib.pyplot, scipy.ndimage, h5py"
ENDS = {"teardown": "import sys; sys.exit(0)", "os._exit": "import os, sys; sys.stdout.flush(); os._exit(0)"}


def once(module: str, end: str) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}, {EXTRA}; {ENDS[end]}"], check=True)
    return time.perf_counter() - t


def main(rounds: int = 5) -> int:
    print(f"# bench/exit.py: {rounds} interleaved rounds, python {sys.version.split()[0]}")
    print(f"{'module':28s} {'teardown s':>11s} {'os._exit s':>11s} {'saved s':>8s}  spread (teardown; os._exit)")
    saved = []
    for m in MODULES:
        t = {e: [] for e in ENDS}
        for _ in range(rounds):
            for e in ENDS:
                t[e].append(once(m, e))
        a, b = statistics.median(t["teardown"]), statistics.median(t["os._exit"])
        saved.append(a - b)
        print(f"{m:28s} {a:11.2f} {b:11.2f} {a - b:8.2f}  {min(t['teardown']):.2f}-{max(t['teardown']):.2f}; "
              f"{min(t['os._exit']):.2f}-{max(t['os._exit']):.2f}")
    print(f"mean saving per job: {statistics.mean(saved):.2f} s (medians of {rounds} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5))
