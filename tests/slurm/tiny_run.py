"""One real run of the tiny workflow (config/test.yaml), shared by test_rerun.py
and test_slurm.py, plus helpers to run Snakemake and compare result trees.

The run happens once per pytest process, in a temporary copy of the project
(workflow/, config/, src/), so the tests never touch the checkout's results/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

# TWOSTREAM_TEST_REPO: take workflow/, config/ and src/ from another checkout.
REPO = Path(os.environ.get("TWOSTREAM_TEST_REPO", Path(__file__).resolve().parents[2]))
CONFIG = "config/test.yaml"
COPIED = ("workflow", "config", "src")
# Floats may differ in their last bits between two runs (float32 optimisation
# steps, e.g. in the visualization, amplify them to ~1e-5 of an array's scale):
# floats compare to RTOL, and to ATOL times the largest magnitude of the array.
RTOL, ATOL = 1e-4, 1e-4
REL_NORM = 1e-4  # relative L2 difference allowed for float arrays that fail allclose

_finished: dict[str, Path] = {}


def copy_project(dest: Path, source: Path = REPO) -> Path:
    """Copy the parts of the project a run needs (workflow/, config/, src/) from
    source into dest, mtimes preserved."""
    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".snakemake")
    for name in COPIED:
        shutil.copytree(source / name, dest / name, ignore=ignore, dirs_exist_ok=True)
    return dest


def effective_config(workdir: Path) -> dict:
    """config/config.yaml with config/test.yaml merged over it, key by key, as
    Snakemake merges them (the Snakefile's configfile, then --configfile)."""
    import yaml

    def merge(base, over):
        if isinstance(base, dict) and isinstance(over, dict):
            return {**base, **{k: merge(base.get(k), v) for k, v in over.items()}}
        return over

    base = yaml.safe_load((workdir / "config" / "config.yaml").read_text()) or {}
    return merge(base, yaml.safe_load((workdir / CONFIG).read_text()) or {})


def env(workdir: Path) -> dict[str, str]:
    """Environment for Snakemake in workdir: this interpreter's bin first, and the
    copy's src/ ahead of the installed package, so the workflow imports, runs and
    hashes (code rerun trigger) the copy's code, even while the checkout changes."""
    e = dict(os.environ)
    e["PATH"] = os.path.dirname(sys.executable) + os.pathsep + e.get("PATH", "")
    e["PYTHONPATH"] = os.pathsep.join(filter(None, [str(workdir / "src"), e.get("PYTHONPATH")]))
    e.setdefault("OMP_NUM_THREADS", "1")
    e.pop("SLURM_CONF", None)
    return e


def snakemake(
    workdir: Path,
    *args: str,
    configfiles: tuple[str | Path, ...] = (),
    timeout: float = 900,
    check: bool = True,
):
    """Run `snakemake --configfile config/test.yaml [CONFIGFILES] ARGS` in workdir
    (later config files override earlier ones key by key); on failure raise
    AssertionError with the end of its output."""
    cmd = [sys.executable, "-m", "snakemake", "--configfile", CONFIG, *map(str, configfiles), *args]
    proc = subprocess.run(
        cmd,
        cwd=workdir,
        env=env(workdir),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        out = (proc.stdout + proc.stderr)[-6000:]
        raise AssertionError(f"{' '.join(cmd[2:])} failed ({proc.returncode}) in {workdir}:\n{out}")
    return proc


def finished_run(tmp_path_factory) -> Path:
    """The tiny workflow run for real, locally, once per pytest process."""
    if "local" not in _finished:
        work = copy_project(tmp_path_factory.mktemp("tiny-local"))
        snakemake(work, "--cores", "2")
        _finished["local"] = work
    return _finished["local"]


_JOB_HEAD = re.compile(r"^(?:local)?rule (\w+):$")


def scheduled(workdir: Path, *args: str, configfiles=()) -> list[dict]:
    """Jobs a dry run would execute: [{rule, output: [paths], reason}], without
    the `all` target job.  Empty when nothing is to be done."""
    proc = snakemake(workdir, "--dry-run", *args, configfiles=configfiles)
    jobs, job = [], None
    for line in (proc.stdout + proc.stderr).splitlines():
        m = _JOB_HEAD.match(line)
        if m:
            job = {"rule": m.group(1), "output": [], "reason": ""}
            jobs.append(job)
        elif job is not None and line.startswith("    output: "):
            job["output"] = line.split(": ", 1)[1].split(", ")
        elif job is not None and line.startswith("    reason: "):
            job["reason"] = line.split(": ", 1)[1]
        elif not line.startswith("    "):
            job = None
    return [j for j in jobs if j["rule"] != "all"]


def scheduled_rules(workdir: Path, *args: str, configfiles=()) -> dict[str, int]:
    """{rule: number of jobs} of a dry run (without the `all` target)."""
    counts: dict[str, int] = {}
    for job in scheduled(workdir, *args, configfiles=configfiles):
        counts[job["rule"]] = counts.get(job["rule"], 0) + 1
    return counts


def summary(workdir: Path, *args: str, configfiles=()) -> pd.DataFrame:
    """`snakemake --summary` as a table (output_file, date, rule, ..., status, plan)."""
    proc = snakemake(workdir, "--summary", *args, configfiles=configfiles)
    lines = [ln for ln in proc.stdout.splitlines() if "\t" in ln]
    rows = [ln.split("\t") for ln in lines]
    return pd.DataFrame(rows[1:], columns=rows[0])


# --- comparing two result trees --------------------------------------------------

COMPARED = (".h5", ".csv", ".json")
# Columns and keys that measure wall-clock time differ between any two runs.
VOLATILE = re.compile(r"(^|_)(seconds|secs|elapsed|duration|wall|timestamp|date)($|_)", re.IGNORECASE)


def _drop_volatile(obj):
    if isinstance(obj, dict):
        return {k: _drop_volatile(v) for k, v in obj.items() if not VOLATILE.search(str(k))}
    if isinstance(obj, list):
        return [_drop_volatile(v) for v in obj]
    return obj


def _h5_datasets(path: Path) -> dict[str, np.ndarray]:
    out = {}
    with h5py.File(path, "r") as f:

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[()]

        f.visititems(visit)
    return out


def _same_array(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind == "f":
        scale = float(np.nanmax(np.abs(a))) if a.size and not np.isnan(a).all() else 0.0
        if np.allclose(a, b, rtol=RTOL, atol=ATOL * max(scale, 1e-6), equal_nan=True):
            return True
        # Optimised inputs (activation maximisation: hundreds of Adam steps) amplify
        # last-bit differences of another thread layout into a few isolated pixels
        # (seen: max 2e-3 on a scale of 1.4, relative L2 difference 2e-5); a real
        # difference moves the whole array.
        norm = float(np.linalg.norm(np.nan_to_num(a)))
        return norm > 0 and float(np.linalg.norm(np.nan_to_num(a - b))) <= REL_NORM * norm
    if a.dtype.names:  # compound table: compare field by field
        return all(_same_array(a[n], b[n]) for n in a.dtype.names)
    return bool(np.array_equal(a, b))


def _same_json(a, b) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return bool(np.isclose(a, b, rtol=RTOL, atol=1e-8))
    return a == b


def compare_results(a: Path, b: Path, subset: bool = False) -> list[str]:
    """Differences between the HDF5 datasets, CSV tables and JSON files of two
    result trees.  Not compared: HDF5 attributes (provenance: host, versions,
    times) and CSV columns / JSON keys that hold wall-clock times (VOLATILE).
    subset: b is a partial run of a's DAG, so files only in a are expected."""
    files_a = {p.relative_to(a) for p in a.rglob("*") if p.suffix in COMPARED}
    files_b = {p.relative_to(b) for p in b.rglob("*") if p.suffix in COMPARED}
    problems = [] if subset else [f"only in {a}: {p}" for p in sorted(files_a - files_b)]
    problems += [f"only in {b}: {p}" for p in sorted(files_b - files_a)]
    for rel in sorted(files_a & files_b):
        problems += compare_file(a / rel, b / rel, rel)
    return problems


def compare_file(pa: Path, pb: Path, rel: Path) -> list[str]:
    """Differences between two result files of one kind (rel names them in messages):
    HDF5 datasets, CSV tables without VOLATILE columns, JSON without VOLATILE keys.
    Empty CSV files (no header) compare by their bytes."""
    problems: list[str] = []
    if rel.suffix == ".h5":
        da, db = _h5_datasets(pa), _h5_datasets(pb)
        if da.keys() != db.keys():
            problems.append(f"{rel}: datasets {sorted(da)} != {sorted(db)}")
        problems += [f"{rel}:/{k} differs" for k in sorted(da.keys() & db.keys()) if not _same_array(da[k], db[k])]
    elif rel.suffix == ".csv":
        if not pa.read_text().strip() or not pb.read_text().strip():
            return [] if pa.read_bytes() == pb.read_bytes() else [f"{rel}: one file is empty"]
        ta, tb = pd.read_csv(pa), pd.read_csv(pb)
        ta = ta[[c for c in ta.columns if not VOLATILE.search(str(c))]]
        tb = tb[[c for c in tb.columns if not VOLATILE.search(str(c))]]
        try:
            pd.testing.assert_frame_equal(ta, tb, check_exact=False, rtol=RTOL, atol=1e-8)
        except AssertionError as e:
            problems.append(f"{rel}: {str(e).splitlines()[0]}")
    else:
        ja, jb = (_drop_volatile(json.loads(p.read_text())) for p in (pa, pb))
        if not _same_json(ja, jb):
            problems.append(f"{rel}: contents differ")
    return problems
