"""Data-parallel training (torchrun, gloo on CPU) equals one process with the same global batch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from helpers_streams import write_shards

TOY = Path(__file__).with_name("ddp_toy.py")
pytestmark = pytest.mark.skipif(not torch.distributed.is_gloo_available(), reason="needs torch.distributed gloo")


def torchrun(n: int, *args: str) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node n ARGS``."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}", *args]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def toy(n: int, out: Path, *args: str) -> tuple[int, str]:
    """ddp_toy.py in n processes with the variables torchrun sets (without torchrun's agent
    process, to save a start-up): (worst exit code, rank 0's stderr)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for rank in range(n):
        dist_env = dict(WORLD_SIZE=str(n), RANK=str(rank), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                        MASTER_PORT=str(port)) if n > 1 else {}
        procs.append(subprocess.Popen([sys.executable, str(TOY), str(out), *args], stderr=subprocess.PIPE,
                                      text=True, env=dict(os.environ, OMP_NUM_THREADS="1", **dist_env)))
    errs = [p.communicate(timeout=600)[1] for p in procs]
    return max(abs(p.returncode) for p in procs), errs[0]


def weights(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "checkpoint.pt", weights_only=False)["model"]


def test_two_processes_equal_one_with_the_same_global_batch(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    assert toy(1, one)[0] == 0
    assert toy(2, two)[0] == 0
    # the same global batches in the same order: each step's items of both processes
    order1 = json.loads((one / "order-rank0.json").read_text())
    ranks = [json.loads((two / f"order-rank{r}.json").read_text()) for r in (0, 1)]
    assert len(order1) == 9 and [len(b) for b in order1[:3]] == [8, 8, 5]
    assert [sorted(a + b) for a, b in zip(*ranks)] == [sorted(b) for b in order1]
    assert [len(b) for b in ranks[0][:3]] == [4, 4, 3] and [len(b) for b in ranks[1][:3]] == [4, 4, 2]
    w1, w2 = weights(one), weights(two)
    for k in w1:
        torch.testing.assert_close(w2[k], w1[k], rtol=1e-5, atol=1e-6, msg=k)
    h1, h2 = pd.read_csv(one / "history.csv"), pd.read_csv(two / "history.csv")
    pd.testing.assert_frame_equal(h1.drop(columns="seconds"), h2.drop(columns="seconds"), rtol=1e-5)
    assert not (two / "resume.pt").exists()
    # control: training moved the weights far beyond the tolerance
    import ddp_toy

    torch.manual_seed(0)
    init = ddp_toy.Net(0.0).state_dict()
    assert max(float((w1[k] - init[k]).abs().max()) for k in w1) > 1e-2


def test_resume_under_ddp_ends_with_the_uninterrupted_weights(tmp_path):
    whole, crashed = tmp_path / "whole", tmp_path / "crashed"
    assert toy(2, whole, "--dropout", "0.5")[0] == 0
    rc, _ = toy(2, crashed, "--dropout", "0.5", "--crash-step", "4")  # both processes crash in epoch 2
    assert rc != 0 and (crashed / "resume.pt").exists() and not (crashed / "checkpoint.pt").exists()
    assert torch.load(crashed / "resume.pt", weights_only=False)["epoch"] == 1
    rc, err = toy(2, crashed, "--dropout", "0.5")
    assert rc == 0 and "toy: resuming after epoch 1" in err
    a, b = weights(whole), weights(crashed)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # control: one process, same dropout, draws other masks and ends elsewhere
    single = tmp_path / "single"
    assert toy(1, single, "--dropout", "0.5")[0] == 0
    assert any(not torch.equal(a[k], v) for k, v in weights(single).items())


def test_stream_training_cli_under_torchrun(tmp_path):
    frames, _ = write_shards(tmp_path / "data", n_shards=1, train_per_class=3, test_per_class=1)
    params = {"crop_size": 32, "epochs": 2, "batch_size": 4, "val_frames": 1, "widths": [8, 8, 8, 8]}
    out = tmp_path / "rgb"
    r = torchrun(2, "-m", "twostream", "train", "--stream", "rgb", "--frames", *frames, "--out", str(out),
                 "--params", json.dumps(params), "--threads", "2", "--device", "cpu")
    assert "2 process(es)" in r.stderr
    ck = torch.load(out / "checkpoint.pt", weights_only=False)
    assert ck["epoch"] == 2 and ck["fingerprint"]["processes"] == 2 and len(ck["rng"]["ranks"]) == 2
    assert len(pd.read_csv(out / "history.csv")) == 2
