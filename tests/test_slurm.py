"""The tiny workflow on a real single-node SLURM cluster gives the local run's results.

Needs root: tests/slurm/cluster.sh installs Debian's slurmctld/slurmd/munge when
missing, writes /etc/slurm/slurm.conf and starts the daemons (about 10 s).  Without
root the test is skipped, except under CI=true, where it fails instead.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import time
from types import SimpleNamespace
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent / "slurm"))
import tiny_run  # noqa: E402

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

CLUSTER = Path(__file__).parent / "slurm" / "cluster.sh"
PROFILE = tiny_run.REPO / "workflow" / "profiles" / "slurm" / "config.yaml"


def _require(condition: bool, reason: str):
    if condition:
        return
    if os.environ.get("CI", "").lower() in {"true", "1"}:
        pytest.fail(f"{reason} (CI=true: the SLURM test must run, not skip)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def cluster():
    _require(
        os.geteuid() == 0,
        "the SLURM test needs root: it installs and starts a local SLURM cluster (tests/slurm/cluster.sh start)",
    )
    _require(
        shutil.which("sinfo") is not None or shutil.which("apt-get") is not None,
        "the SLURM test needs SLURM installed or apt-get to install it",
    )
    was_up = subprocess.run([CLUSTER, "status"], capture_output=True).returncode == 0
    start = subprocess.run([CLUSTER, "start"], capture_output=True, text=True, timeout=900)
    assert start.returncode == 0, f"cluster.sh start failed:\n{start.stdout}{start.stderr}"
    # jobs an interrupted earlier run left queued (slurmctld restores them on restart)
    # would hold the node's CPUs: the test cluster is ours, cancel them
    subprocess.run(["scancel", "--user", pwd.getpwuid(os.geteuid()).pw_name], capture_output=True, timeout=60)
    yield
    if not was_up:
        subprocess.run([CLUSTER, "stop"], capture_output=True, timeout=60)


def _node_limits() -> tuple[int, int]:
    """CPUs and memory (MB) of the smallest node of the default partition."""
    out = subprocess.run(["sinfo", "-h", "-o", "%c %m"], capture_output=True, text=True, check=True).stdout
    cpus, mem = zip(*(map(int, line.split()) for line in out.split("\n") if line.strip()))
    return min(cpus), min(mem)


def fit_profile(profile: dict, mem_mb: int) -> dict:
    """The profile with memory requests shrunk to the test node, no GPU requests
    (the test node has none: gpu=0 also overrides a rule's own gpu=1), and no
    set-threads or cpus_per_task: every job keeps the threads its rule declares and
    asks SLURM for that many CPUs (the plugin's default), so jobs run side by side
    with the same torch thread counts as in the local run; everything else is kept."""
    fitted = yaml.safe_load(yaml.safe_dump(profile))
    for res in [fitted.get("default-resources", {}), *fitted.get("set-resources", {}).values()]:
        for key in {"gpu_model", "gres"} & res.keys():
            del res[key]
        res["gpu"] = 0
        res.pop("cpus_per_task", None)
        if "mem_mb" in res:
            res["mem_mb"] = min(int(res["mem_mb"]), mem_mb // 4)
    # jobs keep the threads their rules declare, as in the local run: float results
    # (training, activation maximisation) depend on torch's thread count
    fitted.pop("set-threads", None)
    return fitted


def test_fit_profile_only_shrinks_requests():
    profile = {
        "executor": "slurm",
        "default-resources": {"mem_mb": 2000, "cpus_per_task": 1},
        "set-resources": {"train": {"mem_mb": 32000, "cpus_per_task": 8, "gpu": 1, "runtime": 60}},
        "set-threads": {"train": 8},
    }
    fitted = fit_profile(profile, mem_mb=20000)
    assert fitted["set-resources"]["train"] == {"mem_mb": 5000, "runtime": 60, "gpu": 0}
    assert fitted["default-resources"] == {"mem_mb": 2000, "gpu": 0}
    assert "set-threads" not in fitted and profile["set-threads"] == {"train": 8}
    assert fitted["executor"] == "slurm"
    assert profile["set-resources"]["train"]["gpu"] == 1  # the input is left alone


def test_slurm_profile_is_valid_for_the_plugin():
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    profile = yaml.safe_load(PROFILE.read_text())
    assert profile["executor"] == "slurm"
    assert profile["slurm-status-command"] in {"squeue", "sacct"}
    gpu_rules = set()
    for rule, res in profile["set-resources"].items():
        assert int(res["runtime"]) > 0 and int(res["mem_mb"]) > 0, rule
        if "cpus_per_task" in res:
            assert profile["set-threads"].get(rule, 1) <= int(res["cpus_per_task"]), rule
        job = SimpleNamespace(resources=_Resources(res))
        if "gpu" in res:
            gpu_rules.add(rule)
            assert set_gres_string(job) == f" --gpus={res['gpu']}", rule
        else:
            assert set_gres_string(job) == "", rule
    assert {"train_stream", "train_fusion", "visualize", "flow"} <= gpu_rules


class _Resources(dict):
    """What the plugin reads from job.resources: .get() and attributes."""

    __getattr__ = dict.__getitem__


# The DAG up to a fused model's test scores: every stage with its own resources
# (decode, flow, both streams, fusion fine-tuning, evaluation) goes through sbatch;
# the rest of the tiny DAG (visualization, findings, quirk: half its job time)
# runs the same way and adds minutes, not coverage of the profile.
SLURM_TARGETS = (
    "results/eval/fusion-conv-res3-s0/metrics.json",
    "results/eval/fusion-late_geometric-softmax-s0/metrics.json",
)


def test_tiny_workflow_on_slurm_matches_local_run(cluster, tmp_path_factory):
    local = tiny_run.finished_run(tmp_path_factory)
    # the same code and config as the local run
    work = tiny_run.copy_project(tmp_path_factory.mktemp("tiny-slurm"), source=local)
    cpus, mem_mb = _node_limits()
    profile_dir = work / "test-profile"
    profile_dir.mkdir()
    fitted = fit_profile(yaml.safe_load(PROFILE.read_text()), mem_mb)
    (profile_dir / "config.yaml").write_text(yaml.safe_dump(fitted))

    t0 = time.monotonic()
    tiny_run.snakemake(
        work,
        "--profile",
        str(profile_dir),
        "--executor",
        "slurm",
        "--slurm-init-seconds-before-status-checks",
        "1",
        "--slurm-keep-successful-logs",
        "--cores",
        str(cpus),
        *SLURM_TARGETS,  # last: --configfile before them takes every word up to the next option
        timeout=1200,
    )
    elapsed = time.monotonic() - t0
    print(f"tiny workflow on SLURM: {elapsed:.0f} s")

    logdir = work / fitted["slurm-logdir"]  # logdir/rule_NAME/[WILDCARDS/]JOBID.log
    slurm_logs = {p.relative_to(logdir).parts[0] for p in logdir.rglob("*.log")}
    # every rule up to the fused model's evaluation went through sbatch, alone
    # (rule_NAME) or in a job group (group_GROUP_RULE1_RULE2)
    for rule in ("synthesize", "decode", "flow", "train_stream", "train_fusion", "evaluate"):
        assert any(rule in name for name in slurm_logs), f"no SLURM job log for {rule}: {sorted(slurm_logs)}"
    assert not (work / "results").samefile(local / "results")
    for target in SLURM_TARGETS:
        assert (work / target).is_file(), target
    problems = tiny_run.compare_results(local / "results", work / "results", subset=True)
    assert not problems, "SLURM results differ from the local run:\n" + "\n".join(problems)


def _tree(root: Path, flow_value: int, acc: float, seconds: float, image_shift: float = 0.0) -> Path:
    import h5py
    import numpy as np

    (root / "flow").mkdir(parents=True)
    with h5py.File(root / "flow" / "shard-000.h5", "w") as f:
        f["flow"] = np.full((2, 4, 4, 2), flow_value, np.uint8)
        f["image"] = np.linspace(-1, 1, 9, dtype=np.float32) + np.float32(image_shift)
        f["videos"] = np.array([(b"v1", 3)], dtype=[("video_id", "S8"), ("n", "i4")])
        f.attrs["created"] = seconds  # attributes (provenance) are not compared
    (root / "history.csv").write_text(f"epoch,acc,seconds\n1,{acc},{seconds}\n")
    (root / "metrics.json").write_text(f'{{"top1": {acc}, "elapsed_s": {seconds}}}')
    return root


def test_compare_results_sees_real_differences_only(tmp_path):
    a = _tree(tmp_path / "a", 128, 0.5, 1.0)
    assert tiny_run.compare_results(a, _tree(tmp_path / "same", 128, 0.5, 99.0)) == []
    assert tiny_run.compare_results(a, _tree(tmp_path / "close", 128, 0.5 + 1e-9, 1.0, 1e-5)) == []
    assert tiny_run.compare_results(a, _tree(tmp_path / "far", 128, 0.5, 1.0, 1e-2)) == [
        "flow/shard-000.h5:/image differs"
    ]
    problems = tiny_run.compare_results(a, _tree(tmp_path / "other", 129, 0.6, 1.0))
    assert any("shard-000.h5:/flow" in p for p in problems)
    assert any("history.csv" in p for p in problems)
    assert any("metrics.json" in p for p in problems)
    (tmp_path / "other" / "extra.csv").write_text("x\n1\n")
    assert any("only in" in p and "extra.csv" in p for p in tiny_run.compare_results(a, tmp_path / "other"))
