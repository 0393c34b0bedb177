"""Checks before any job: dataset folders and split files, CUDA, stale shard files; the
workflow's default config is found whatever the working directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from twostream.config import ConfigError
from twostream.preflight import preflight, problems, stale_shards, stale_warning

REPO = Path(__file__).resolve().parents[1]


def hmdb(tmp_path, **kw):
    d = {"kind": "hmdb51", "root": str(tmp_path / "hmdb51"), "splits_dir": str(tmp_path / "splits"), "split": 1}
    d.update(kw)
    return {"dataset": d, "flow": {"backend": "torch", "device": "cpu"}}


def test_dataset_paths(tmp_path):
    cfg = hmdb(tmp_path)
    assert problems(cfg) == [f"dataset.root: {tmp_path / 'hmdb51'}: no such folder (the hmdb51 videos)"]
    (tmp_path / "hmdb51").mkdir()
    assert problems(cfg) == [f"dataset.splits_dir: {tmp_path / 'splits'}: no such folder (the hmdb51 split files)"]
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "run_test_split2.txt").write_text("a.avi 1\n")
    assert problems(cfg) == [f"dataset.splits_dir: {tmp_path / 'splits'}: no <class>_test_split1.txt files "
                             "(dataset.split 1)"]  # fmt: skip
    (tmp_path / "splits" / "run_test_split1.txt").write_text("a.avi 1\n")
    assert problems(cfg) == []
    ucf = {"dataset": {"kind": "ucf101", "root": str(tmp_path / "hmdb51"), "split": 2}}
    assert problems(ucf) == [f"dataset.root: {tmp_path / 'hmdb51' / n}: no such split file (dataset.split 2)"
                             for n in ("classInd.txt", "trainlist02.txt", "testlist02.txt")]  # fmt: skip
    assert problems({"dataset": {"kind": "folder", "root": str(tmp_path / "nope")}})[0].startswith("dataset.root: ")
    assert problems({"dataset": {"kind": "synthetic", "root": str(tmp_path / "nope")}}) == []  # generated
    with pytest.raises(ConfigError, match="^dataset.root: "):
        preflight({"dataset": {"kind": "folder", "root": str(tmp_path / "nope")}})


def test_cuda_asked_for_where_there_is_none(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = {"flow": {"backend": "torch", "device": "cuda"}}
    assert problems(cfg) == ["flow.device: cuda is asked for but torch finds no CUDA device (use auto or cpu)"]
    assert problems({"flow": {"backend": "torch", "device": "auto"}}) == []
    assert problems({"flow": {"backend": "dis", "device": "cuda"}}) == []  # the device is the torch backend's
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert problems(cfg) == []
    assert "finds 1 CUDA device(s)" in problems({"flow": {"backend": "torch", "device": "cuda:1"}})[0]


def test_stale_shards(tmp_path):
    for kind, names in (("frames", ["shard-000.h5", "shard-001.h5", "shard-002.h5", "shard-002.bad.csv",
                                    "bad_videos.csv"]), ("flow", ["shard-000.h5", "shard-003.h5"])):  # fmt: skip
        (tmp_path / kind).mkdir()
        for n in names:
            (tmp_path / kind / n).write_text("")
    got = [p.relative_to(tmp_path).as_posix() for p in stale_shards(2, tmp_path)]
    assert got == ["frames/shard-002.bad.csv", "frames/shard-002.h5", "flow/shard-003.h5"]
    assert stale_shards(4, tmp_path) == [] and stale_warning(4, tmp_path) == ""
    assert "(now 2)" in stale_warning(2, tmp_path) and "\n" not in stale_warning(2, tmp_path)


def snakemake(args, cwd):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    exe = Path(sys.executable).with_name("snakemake")
    return subprocess.run([str(exe), "-n", "--cores", "1", "-s", str(REPO / "workflow" / "Snakefile"), *args],
                          cwd=cwd, capture_output=True, text=True, env=env, timeout=300)  # fmt: skip


def test_dry_runs(tmp_path):
    """A dry run from another folder finds the default config; a missing dataset root stops it in one line."""
    p = snakemake([], cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "synthesize" in p.stdout + p.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"dataset: {{kind: hmdb51, root: {tmp_path}/data/hmdb51, splits_dir: {tmp_path}/splits}}\n")
    p = snakemake(["--configfile", str(bad)], cwd=tmp_path)
    assert p.returncode == 1
    assert p.stderr.strip().splitlines()[-1] == (
        f"twostream: error: dataset.root: {tmp_path}/data/hmdb51: no such folder (the hmdb51 videos)")


def test_yaml_error_names_file_and_line(tmp_path, capsys):
    from twostream.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("decode:\n  shards: 2\n  codec: [raw\nflow: {}\n")
    assert main(["decode", "--config", str(bad), "--index", "x", "--shard", "shard-000", "--out", "y"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"twostream: error: {bad}:4:5: not valid YAML (expected ',' or ']', but got ':')"]


def test_yaml_error_in_the_default_config_names_file_and_line_through_snakemake(tmp_path):
    for d in ("workflow", "config"):
        shutil.copytree(REPO / d, tmp_path / d)
    default = tmp_path / "config" / "config.yaml"
    lines = default.read_text().splitlines()
    default.write_text("\n".join(lines + ["extra: [1, 2"]) + "\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    exe = Path(sys.executable).with_name("snakemake")
    p = subprocess.run([str(exe), "-n", "--cores", "1"], cwd=tmp_path, capture_output=True, text=True, env=env,
                       timeout=300)  # fmt: skip
    assert p.returncode == 1
    assert p.stderr.strip().splitlines()[-1] == (
        f"twostream: error: {default}:{len(lines) + 2}:1: not valid YAML (expected ',' or ']', but got '<stream end>')")
