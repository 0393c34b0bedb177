"""Single-stream training: settings, outputs, and resume after SIGKILL equals an uninterrupted run."""

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from helpers_streams import write_shards
from twostream.config import ConfigError
from twostream.train import main, stream_config

torch.set_num_threads(1)
PARAMS = {"crop_size": 32, "flow_length": 3, "epochs": 4, "batch_size": 16, "lr": 0.05, "val_frames": 2,
          "flip": False, "widths": [8, 16, 16, 16]}


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return write_shards(tmp_path_factory.mktemp("shards"), train_per_class=6, test_per_class=3)


def _args(stream, shards, out, params, **kw):
    fr, fl = shards
    return argparse.Namespace(stream=stream, frames=fr, flow=fl, out=str(out), params=json.dumps(params),
                              config=None, threads=1, workers=kw.get("workers", 0), device="cpu")


def test_stream_config_overrides_and_errors():
    cfg = stream_config({"lr": 0.01, "dropout": 0.5, "flow": {"lr": 0.005, "dropout": 0.7}}, "flow")
    assert (cfg.lr, cfg.dropout) == (0.005, 0.7)
    assert stream_config({"lr": 0.01, "flow": {"lr": 0.005}}, "rgb").lr == 0.01
    with pytest.raises(ConfigError, match="train: unknown key.*learning_rate"):
        stream_config({"learning_rate": 1}, "rgb")
    with pytest.raises(ConfigError, match="train.flow: unknown key.*lrr"):
        stream_config({"flow": {"lrr": 1}}, "flow")
    with pytest.raises(ConfigError, match="schedule"):
        stream_config({"schedule": "linear"}, "rgb")


def test_outputs_history_and_checkpoint(shards, tmp_path):
    out = tmp_path / "flow"
    assert main(_args("flow", shards, out, dict(PARAMS, schedule="step", lr_steps=[2], lr_gamma=0.1))) == 0
    h = pd.read_csv(out / "history.csv")
    assert list(h.columns) == ["epoch", "loss", "train_acc", "val_acc", "lr", "seconds"]
    assert h.epoch.tolist() == [1, 2, 3, 4]
    assert h.lr.tolist() == pytest.approx([0.05, 0.05, 0.005, 0.005])
    assert h.train_acc.between(0, 1).all() and (h.seconds > 0).all()
    ck = torch.load(out / "checkpoint.pt", weights_only=False)
    assert ck["epoch"] == 4 and ck["spec"]["stream"] == "flow" and ck["spec"]["flow_length"] == 3
    assert ck["data"] == {"modalities": ["flow"], "flow_length": 3, "crop_size": 32}
    assert ck["class_names"] == ["red", "blue", "right", "left"]
    assert {"optimizer", "scheduler", "rng", "config", "history", "versions", "code"} <= set(ck)
    assert ck["model"]["conv1.weight"].shape[1] == 6
    assert not (out / "resume.pt").exists()


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    from twostream.cli import main as cli_main

    rc = cli_main(["train", "--stream", "rgb", "--frames", str(tmp_path / "missing.h5"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.strip().count("\n") == 0 and "missing.h5" in err


def _cmd(shards, out, params):
    fr, fl = shards
    return [sys.executable, "-m", "twostream", "train", "--stream", "rgb", "--frames", *fr, "--out", str(out),
            "--params", json.dumps(params), "--threads", "1", "--device", "cpu"]


def test_sigkill_then_rerun_equals_uninterrupted(shards, tmp_path):
    params = dict(PARAMS, epochs=20, dropout=0.5)  # dropout: the restored torch RNG matters
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    ref = subprocess.Popen(_cmd(shards, tmp_path / "ref", params), env=env, stderr=subprocess.DEVNULL)
    out = tmp_path / "killed"
    p = subprocess.Popen(_cmd(shards, out, params), env=env, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600  # generous: a loaded 2-core machine is slow
    while not (out / "resume.pt").exists() and p.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    # kill at once: on an idle machine an epoch of this tiny set takes well under a second
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert (out / "resume.pt").exists(), "no epoch finished before the kill (machine too slow?)"
    assert p.returncode == -signal.SIGKILL
    done = torch.load(out / "resume.pt", weights_only=False)["epoch"]
    assert 1 <= done < 20, "the kill must land mid-training"
    assert not (out / "checkpoint.pt").exists()
    r = subprocess.run(_cmd(shards, out, params), env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"twostream train: resuming after epoch {done}" in r.stderr
    assert ref.wait() == 0
    a = torch.load(tmp_path / "ref" / "checkpoint.pt", weights_only=False)
    b = torch.load(out / "checkpoint.pt", weights_only=False)
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    ha, hb = pd.read_csv(tmp_path / "ref" / "history.csv"), pd.read_csv(out / "history.csv")
    pd.testing.assert_frame_equal(ha.drop(columns="seconds"), hb.drop(columns="seconds"))


def test_changed_settings_start_over(shards, tmp_path):
    out = tmp_path / "rgb"
    params = dict(PARAMS, epochs=1)
    assert main(_args("rgb", shards, out, params)) == 0
    ck = torch.load(out / "checkpoint.pt", weights_only=False)
    torch.save(ck, out / "resume.pt")  # a stale resume file from other settings
    assert main(_args("rgb", shards, out, dict(params, epochs=2, lr=0.01))) == 0
    h = pd.read_csv(out / "history.csv")
    assert h.epoch.tolist() == [1, 2] and h.lr[0] == pytest.approx(0.01)


def test_channels_last_keeps_values_parameters_and_5d_weights():
    """The engine's layout change: same values, same Parameter objects (an optimizer built
    before still steps them), 4-D weights channels-last, a 3-D conv's 5-D weight untouched
    (``Module.to(memory_format=...)`` would refuse the model), and the same outputs."""
    from twostream.engine import channels_last

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU()).eval()
    net.c3d = torch.nn.Conv3d(2, 2, 1)  # not in the forward; only its layout is checked
    params = list(net.parameters())
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(2, 3, 9, 9)
    y0 = net(x)
    assert channels_last(net) is net
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]
    w = net[0].weight
    assert w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
    assert net.c3d.weight.is_contiguous()  # 5-D: left as it was
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    torch.testing.assert_close(net(x), y0, rtol=1e-5, atol=1e-5)
    # the control: a model with a 5-D weight is refused by Module.to
    with pytest.raises(RuntimeError):
        torch.nn.Sequential(torch.nn.Conv3d(2, 2, 1)).to(memory_format=torch.channels_last)
