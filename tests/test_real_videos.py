"""Real encoded videos (tests/real_corpus.py: four codecs, mixed sizes and aspect ratios,
portrait, odd sides, special characters, a truncated copy, a one-frame clip) through
index -> decode -> flow -> train (1 epoch) -> evaluate -> visualize, in the HMDB51 layout
and as a plain folder, with the settings of tests/hmdb51_corpus.yaml laid over
config/config.yaml as Snakemake lays them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from real_corpus import CLASSES, make_corpus
from twostream.cli import main
from twostream.config import stream_section
from twostream.store import FlowShard, FrameShard

REPO = Path(__file__).resolve().parents[1]


def effective_config(root: Path) -> dict:
    """config/config.yaml with tests/hmdb51_corpus.yaml laid over it (Snakemake's merge)."""
    from snakemake.utils import update_config

    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    update_config(cfg, yaml.safe_load((REPO / "tests" / "hmdb51_corpus.yaml").read_text()))
    cfg["dataset"].update(root=str(root / "hmdb51"), splits_dir=str(root / "splits"))
    return cfg


def run(*argv) -> None:
    assert main([str(a) for a in argv]) == 0, argv


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    info = make_corpus(root, "hmdb51", videos="hmdb51")
    return root, info


@pytest.fixture(scope="module")
def pipeline(corpus, tmp_path_factory):
    """index, decode and flow of every shard, as the rules run them."""
    root, info = corpus
    cfg = effective_config(root)
    out = tmp_path_factory.mktemp("results")
    run("index", "--params", json.dumps(cfg["dataset"]), "--out", out / "index.csv")
    shards = [f"shard-{i:03d}" for i in range(cfg["decode"]["shards"])]
    for s in shards:
        run("decode", "--params", json.dumps(cfg["decode"]), "--index", out / "index.csv", "--shard", s,
            "--out", out / "frames" / f"{s}.h5", "--bad-list", out / "frames" / f"{s}.bad.csv", "--no-progress")
        run("flow", "--params", json.dumps(cfg["flow"]), "--frames", out / "frames" / f"{s}.h5",
            "--out", out / "flow" / f"{s}.h5", "--threads", "1")
    run("decode", "--gather", out / "frames" / "bad_videos.csv", *[out / "frames" / f"{s}.bad.csv" for s in shards])
    frames = [out / "frames" / f"{s}.h5" for s in shards]
    flow = [out / "flow" / f"{s}.h5" for s in shards]
    return cfg, out, frames, flow, info


def test_index_decode_flow_of_real_videos(pipeline):
    cfg, out, frames, flow, info = pipeline
    index = pd.read_csv(out / "index.csv")
    assert len(index) == len(info["videos"])  # the tag-0 video is left out
    assert "jump/jump_#0&(take!)" in set(index.video_id)
    bad = pd.read_csv(out / "frames" / "bad_videos.csv", dtype=str, keep_default_na=False)
    assert bad.set_index("video_id").status.to_dict() == {
        "run/run_cut_MJPG": "truncated", "run/run_one_frame_MJPG": "skipped"}  # fmt: skip
    cut = bad.set_index("video_id").loc["run/run_cut_MJPG"]
    assert cut.declared_frames == "30" and 2 <= int(cut.decoded_frames) < 30
    seen = {}
    for fp, op in zip(frames, flow):
        fs, os_ = FrameShard(fp), FlowShard(op)
        for v in fs.videos.itertuples():
            seen[v.video_id] = v
            o = os_.video(v.video_id)
            assert o.n_frames == v.n_frames - 1 and (o.height, o.width) == (v.height, v.width)
            if v.video_id != "run/run_cut_MJPG":
                assert v.n_frames == 10
            field = os_.read(v.video_id, [0])[0]
            assert field.shape == (v.height, v.width, 2)
        sizes = set(zip(fs.videos.height, fs.videos.width))
        assert os_.layout == ("png" if len(sizes) > 1 else "fixed")
    assert len(seen) == len(info["videos"]) - 1  # all but the one-frame clip
    for vid, d in info["videos"].items():
        key = vid.rsplit(".", 1)[0]
        if key in seen:
            w, h = d["size"]
            assert (seen[key].width, seen[key].height) == (w, h), vid  # portrait stays portrait
    sizes = {(v.width, v.height) for v in seen.values()}
    assert info["sizes"] <= sizes and (36, 56) in sizes and (42, 26) in sizes
    # the known motion: "run" squares move right, "jump" squares move down (2 px/frame)
    for fp, op in zip(frames, flow):
        os_ = FlowShard(op)
        for v in os_.videos.itertuples():
            f = os_.read(v.video_id, np.arange(v.n_frames))
            mag = np.linalg.norm(f, axis=-1)
            moving = f[mag > 1.0]
            dx, dy = np.median(moving, axis=0)
            cls = v.video_id.split("/")[0]
            if cls == "run":
                assert dx > 1.0 and abs(dy) < 0.7, (v.video_id, dx, dy)
            else:
                assert dy > 1.0 and abs(dx) < 0.7, (v.video_id, dx, dy)


def test_train_evaluate_visualize_on_mixed_sizes(pipeline, tmp_path):
    cfg, out, frames, flow, _ = pipeline
    models = {}
    for stream, flag, shards in (("rgb", "--frames", frames), ("flow", "--flow", flow)):
        sec = stream_section(cfg["train"], stream)
        assert sec["epochs"] == 1
        run("train", "--stream", stream, flag, *shards, "--out", tmp_path / stream,
            "--params", json.dumps(sec), "--threads", "1")  # fmt: skip
        hist = pd.read_csv(tmp_path / stream / "history.csv")
        assert len(hist) == 1 and np.isfinite(hist.filter(like="loss").to_numpy()).all()
        models[stream] = tmp_path / stream / "checkpoint.pt"
    ev = tmp_path / "eval-flow"
    run("evaluate", "--checkpoint", models["flow"], "--flow", *flow, "--out", ev,
        "--params", json.dumps(cfg["evaluate"]), "--threads", "1")  # fmt: skip
    metrics = json.loads((ev / "metrics.json").read_text())
    with h5py.File(ev / "scores.h5") as f:
        scores = f["scores"][()]
        assert scores.shape == (4, len(CLASSES))  # the 4 test videos (2 per class), every size
        np.testing.assert_allclose(scores.sum(1), 1.0, atol=1e-5)
    assert 0.0 <= metrics["top1"] <= 1.0
    vis = tmp_path / "vis-rgb"
    run("visualize", "--checkpoint", models["rgb"], "--frames", *frames, "--out", vis,
        "--params", json.dumps(cfg["visualize"]), "--threads", "1")  # fmt: skip
    summary = pd.read_csv(vis / "summary.csv")
    assert len(summary) and summary["test_max"].notna().all()


def test_folder_layout(tmp_path):
    info = make_corpus(tmp_path, "folder", per_class=3, frames=5)
    params = {"kind": "folder", "root": str(tmp_path / "videos"), "test_ratio": 0.3}
    run("index", "--params", json.dumps(params), "--out", tmp_path / "index.csv")
    index = pd.read_csv(tmp_path / "index.csv")
    assert len(index) == len(info["videos"]) and set(index.split) == {"train", "val", "test"}
    dec = {"shards": 1, "codec": "jpeg", "on_bad_video": "skip"}
    run("decode", "--params", json.dumps(dec), "--index", tmp_path / "index.csv", "--shard", "shard-000",
        "--out", tmp_path / "f.h5", "--bad-list", tmp_path / "bad.csv", "--no-progress")  # fmt: skip
    assert len(FrameShard(tmp_path / "f.h5").videos) == len(info["videos"]) - 1


def test_a_broken_file_gives_one_line_on_stderr(corpus, tmp_path):
    """FFmpeg's and OpenCV's own messages are silenced: the project's line is the only one."""
    root, _ = corpus
    src = next((root / "hmdb51" / "jump").glob("*mp4v.mp4"))
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(src.read_bytes()[: src.stat().st_size // 2])  # FFmpeg: "moov atom not found"
    rows = [{"video_id": "c/broken", "path": str(broken), "label": 0, "class_name": "c", "split": "train"}]
    pd.DataFrame(rows).to_csv(tmp_path / "index.csv", index=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENCV_LOG", "OPENCV_FFMPEG"))}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "twostream.cli", "decode", "--params", '{"shards": 1}', "--index",
           str(tmp_path / "index.csv"), "--shard", "shard-000", "--out", str(tmp_path / "f.h5"), "--no-progress"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2
    assert p.stderr.splitlines() == [
        f"twostream: error: {broken}: not a decodable video (FFmpeg cannot open it: corrupt or not a video file)"]
    # control: with OpenCV's and FFmpeg's logging back on, their lines come first
    env.update(OPENCV_LOG_LEVEL="INFO", OPENCV_FFMPEG_LOGLEVEL="32")
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    lines = p.stderr.splitlines()
    assert len(lines) > 1 and lines[-1].startswith(f"twostream: error: {broken}: ")
