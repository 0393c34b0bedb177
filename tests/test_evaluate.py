"""Evaluation: metrics against known truth, outputs, and the streams' known-cause relations."""

import argparse
import json

import numpy as np
import pandas as pd
import pytest
import torch

from helpers_streams import CLASSES, write_shards
from twostream import evaluate as ev
from twostream.errors import InputError
from twostream.train import main as train_main

torch.set_num_threads(1)
TRAIN = {"crop_size": 32, "flow_length": 3, "epochs": 12, "batch_size": 16, "lr": 0.05, "val_frames": 1,
         "flip": False, "dropout": 0.3, "widths": [16, 16, 32, 32]}


def test_compute_metrics_known_truth():
    names = ["a", "b", "c", "d"]
    labels = np.array([0, 0, 1, 2, 3, 3])
    probs = np.array([
        [.7, .1, .1, .1],   # right
        [.1, .2, .3, .4],   # wrong, true class ranked last
        [.1, .6, .2, .1],   # right
        [.4, .1, .3, .2],   # wrong; within group {c, d}: c, right
        [.1, .1, .5, .3],   # wrong; within group: c, wrong
        [.1, .1, .1, .7],   # right
    ])
    classes = pd.DataFrame({"label": [0, 1, 2, 3], "class_name": names, "group": ["x", "x", "y", "y"]})
    m = ev.compute_metrics(probs, labels, names, classes)
    assert m["top1"] == pytest.approx(3 / 6)
    assert m["top5"] == 1.0
    assert m["per_class"] == pytest.approx({"a": .5, "b": 1.0, "c": 0.0, "d": .5})
    assert m["mean_class_accuracy"] == pytest.approx(0.5)
    assert m["groups"]["x"]["accuracy"] == pytest.approx(2 / 3)
    assert m["groups"]["y"]["accuracy"] == pytest.approx(1 / 3)
    assert m["groups"]["y"]["within_group_accuracy"] == pytest.approx(2 / 3)
    assert m["groups"]["y"]["chance_within"] == 0.5 and m["groups"]["y"]["n_videos"] == 3
    cm = ev.confusion_matrix(probs.argmax(1), labels, 4)
    assert cm.sum() == 6 and np.trace(cm) == 3 and cm[0, 3] == 1


def test_classes_csv_errors(tmp_path):
    p = tmp_path / "classes.csv"
    p.write_text("label,name\n0,a\n")
    with pytest.raises(InputError, match="classes.csv.*group"):
        ev.read_classes(p)
    with pytest.raises(InputError, match="not found"):
        ev.read_classes(tmp_path / "none.csv")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("known")
    fr, fl = write_shards(root, train_per_class=12, test_per_class=10)
    for stream in ("rgb", "flow"):
        args = argparse.Namespace(stream=stream, frames=fr, flow=fl, out=str(root / "models" / stream),
                                  params=json.dumps(TRAIN), config=None, threads=1, workers=0, device="cpu")
        assert train_main(args) == 0
    return root, fr, fl


def _evaluate(trained, stream, params):
    root, fr, fl = trained
    out = root / "eval" / stream
    args = argparse.Namespace(checkpoint=str(root / "models" / stream / "checkpoint.pt"), frames=fr, flow=fl,
                              classes=str(root / "classes.csv"), out=str(out), params=json.dumps(params),
                              config=None, threads=1, device="cpu")
    assert ev.main(args) == 0
    return out, json.loads((out / "metrics.json").read_text())


def test_streams_learn_their_cause_and_only_it(trained):
    _, m_rgb = _evaluate(trained, "rgb", {"frames": 5})
    _, m_flow = _evaluate(trained, "flow", {"frames": 5})
    # 20 test videos per group; chance inside a group is 1/2
    assert m_rgb["groups"]["appearance"]["accuracy"] >= 0.9
    assert m_rgb["groups"]["motion"]["within_group_accuracy"] <= 0.8
    assert m_flow["groups"]["motion"]["accuracy"] >= 0.9
    assert m_flow["groups"]["appearance"]["within_group_accuracy"] <= 0.8


def test_scores_file_and_ten_crops(trained):
    out, m = _evaluate(trained, "flow", {"frames": 3, "crops": 10, "crop_size": 24})
    s = ev.read_scores(out / "scores.h5")
    assert s["scores"].shape == (40, 4) and s["labels"].shape == (40,)
    np.testing.assert_allclose(s["scores"].sum(1), 1.0, rtol=1e-5)
    assert m["top1"] == pytest.approx(float((s["scores"].argmax(1) == s["labels"]).mean()))
    assert s["class_names"] == CLASSES.class_name.tolist()
    assert len(set(s["video_id"])) == 40 and s["video_id"][0].endswith("v_test_000")
    assert s["attrs"]["kind"] == "scores" and json.loads(s["attrs"]["params"])["crops"] == 10
    assert json.loads(s["attrs"]["spec"])["stream"] == "flow"
    png = (out / "confusion.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert m["protocol"]["crops"] == 10 and m["n_videos"] == 40 and m["split"] == "test"
    assert s["attrs"]["split"] == "test"
    # the validation split, same protocol, its own files: 4 val videos per class, none of them a test video
    v = ev.read_scores(out / "val_scores.h5")
    mv = json.loads((out / "val_metrics.json").read_text())
    assert v["scores"].shape == (16, 4) and v["attrs"]["split"] == "val" and mv["split"] == "val"
    assert all("v_val_" in x for x in v["video_id"]) and not set(v["video_id"]) & set(s["video_id"])
    assert mv["top1"] == pytest.approx(float((v["scores"].argmax(1) == v["labels"]).mean()))
