"""The ablation table: numbers from known predictions, figures, findings, errors."""

import json

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from twostream.ablation import (
    build_table, chance_levels, findings, group_accuracies, read_classes, TableConfig,
)
from twostream.cli import main
from twostream.grid import parse_model

CLASSES = pd.DataFrame({
    "label": range(8),
    "class_name": ["ColourA", "ColourB", "MotionLeft", "MotionRight", "RedMovesLeft", "RedMovesRight",
                   "BlueMovesLeft", "BlueMovesRight"],
    "group": ["appearance"] * 2 + ["motion"] * 2 + ["spatiotemporal"] * 4,
    "moving_colour": ["a", "b", "grey", "grey", "red", "red", "blue", "blue"],
    "direction": ["random", "random", "left", "right", "left", "right", "left", "right"],
})
PER_CLASS = 10
SWAP_COLOUR = {4: 6, 5: 7, 6: 4, 7: 5}


def predictions(model: str) -> tuple[np.ndarray, np.ndarray]:
    """Known predictions for each test video (10 per class)."""
    labels = np.repeat(np.arange(8), PER_CLASS)
    i = np.tile(np.arange(PER_CLASS), 8)
    pred = labels.copy()
    st = labels >= 4
    swap = np.array([SWAP_COLOUR.get(int(l), int(l)) for l in labels])
    if model == "rgb":  # motion: always MotionLeft; ST: wrong colour for half the clips
        pred[(labels == 3)] = 2
        pred[st & (i >= 5)] = swap[st & (i >= 5)]
    elif model == "flow":  # appearance: always ColourA; ST: wrong colour for odd clips
        pred[labels == 1] = 0
        pred[st & (i % 2 == 1)] = swap[st & (i % 2 == 1)]
    elif model in ("fusion-late_mean-softmax-s0", "fusion-sum-pool-s0"):
        pred[st & (i < 5)] = swap[st & (i < 5)]
    elif model == "fusion-conv-res3-s1":  # one ST clip per class wrong
        pred[st & (i == 0)] = swap[st & (i == 0)]
    return pred, labels


MODELS = ["rgb", "flow", "fusion-late_mean-softmax-s0", "fusion-conv-res3-s0", "fusion-conv-res3-s1",
          "fusion-sum-pool-s0"]


@pytest.fixture
def results(tmp_path):
    """results/eval/<model>/scores.h5 and results/models/<model>/{checkpoint.pt, history.csv}."""
    CLASSES.to_csv(tmp_path / "classes.csv", index=False)
    for k, m in enumerate(MODELS):
        pred, labels = predictions(m)
        scores = np.full((len(labels), 8), 0.01, np.float32)
        scores[np.arange(len(labels)), pred] = 0.93
        e = tmp_path / "eval" / m
        e.mkdir(parents=True)
        with h5py.File(e / "scores.h5", "w") as f:  # the evaluate stage's layout
            f["scores"] = scores
            f["labels"] = labels.astype(np.int32)
        with h5py.File(e / "val_scores.h5", "w") as f:  # validation split: every model perfect, on 16 clips
            f["scores"] = np.eye(8, dtype=np.float32)[np.repeat(np.arange(8), 2)]
            f["labels"] = np.repeat(np.arange(8), 2).astype(np.int32)
        d = tmp_path / "models" / m
        d.mkdir(parents=True)
        state = {"fc.weight": torch.zeros(8, 3 + k), "fc.bias": torch.zeros(8),
                 "bn.running_mean": torch.zeros(5), "bn.num_batches_tracked": torch.tensor(3)}
        torch.save({"spec": {"kind": "x"}, "model": state}, d / "checkpoint.pt")
        seconds = [] if "late" in m else [1.5, 2.25]
        pd.DataFrame({"epoch": range(1, len(seconds) + 1), "seconds": seconds}).to_csv(d / "history.csv", index=False)
    return tmp_path


def test_group_and_factor_accuracy_by_hand():
    pred, labels = predictions("rgb")
    acc = group_accuracies(pred, labels, CLASSES)
    assert acc == {"acc_appearance": 1.0, "acc_motion": 0.5, "acc_spatiotemporal": 0.5,
                   "st_moving_colour": 0.5, "st_direction": 1.0}
    # a prediction outside the group has no colour of the group: wrong factor
    labels = np.array([4, 5])
    assert group_accuracies(np.array([0, 5]), labels, CLASSES)["st_moving_colour"] == 0.5
    # with scores, a group's accuracy is the argmax within the group's classes
    scores = np.full((2, int(CLASSES["label"].max()) + 1), 0.0)
    scores[0, [0, 4]] = [0.2, 0.8]  # true 4: best overall and within its group
    scores[1, [0, 5, 4]] = [0.9, 0.6, 0.1]  # true 5: wrong overall (0), right within its group
    within = group_accuracies(scores, labels, CLASSES)
    assert within["st_moving_colour"] == 1.0
    assert chance_levels(CLASSES) == {"acc_appearance": 0.5, "acc_motion": 0.5, "acc_spatiotemporal": 0.25,
                                      "st_moving_colour": 0.5, "st_direction": 0.5}


def test_table_numbers(results):
    table = build_table(MODELS, results / "eval", results / "models", read_classes(results / "classes.csv"))
    assert list(table["model"][:3]) == ["rgb", "flow", "fusion-late_mean-softmax-s0"]  # streams, late, spatial
    t = table.set_index("model")
    assert list(t.columns[:8]) == ["split", "method", "position", "seed", "parameters", "train_seconds", "top1",
                                   "mean_class_acc"]
    assert set(t["split"]) == {"test"}
    # parameters: every tensor but the BN statistics (8 * (3 + k) + 8)
    assert t.loc["rgb", "parameters"] == 8 * 3 + 8 and t.loc["fusion-sum-pool-s0", "parameters"] == 8 * 8 + 8
    assert t.loc["fusion-conv-res3-s0", "train_seconds"] == 3.75
    assert t.loc["fusion-late_mean-softmax-s0", "train_seconds"] == 0
    # rgb: 10 motion clips and 20 ST clips wrong of 80
    assert t.loc["rgb", "top1"] == pytest.approx(50 / 80)
    assert t.loc["rgb", "mean_class_acc"] == pytest.approx(np.mean([1, 1, 1, 0, .5, .5, .5, .5]))
    row = t.loc["fusion-conv-res3-s1"]
    assert (row.method, row.position, row.seed) == ("conv", "res3", 1)
    assert row.acc_spatiotemporal == pytest.approx(0.9) and row.st_moving_colour == pytest.approx(0.9)
    assert row.st_direction == 1.0 and row.acc_appearance == 1.0
    late = t.loc["fusion-late_mean-softmax-s0"]
    assert late.acc_motion == 1.0 and late.st_moving_colour == 0.5 and late.st_direction == 1.0


def test_cli_writes_table_figures_and_findings(results):
    out = results / "ablation"
    args = ["ablation", "--models", *MODELS, "--eval-root", str(results / "eval"), "--models-root",
            str(results / "models"), "--classes", str(results / "classes.csv"), "--out", str(out),
            "--params", json.dumps({"solved": 0.9, "alpha": 0.05})]
    assert main(args) == 0
    both = pd.read_csv(out / "accuracy.csv")
    assert len(both) == 2 * len(MODELS) and list(both["split"]) == ["test"] * len(MODELS) + ["val"] * len(MODELS)
    val = both[both["split"] == "val"].set_index("model")
    assert (val["top1"] == 1.0).all() and (val["n_top1"] == 16).all()  # read from val_scores.h5
    csv = both[both["split"] == "test"]
    assert len(csv) == len(MODELS) and {"acc_spatiotemporal", "st_moving_colour"} <= set(csv.columns)
    # every accuracy has its clips and 95% Wilson interval: rgb's ST colour is 20 of 40
    rgb = csv.set_index("model").loc["rgb"]
    assert rgb.n_st_moving_colour == 40 and rgb.n_top1 == 80
    assert (rgb.st_moving_colour_lo, rgb.st_moving_colour_hi) == pytest.approx((0.3520, 0.6480), abs=1e-4)
    for png in ("heatmap.png", "groups.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    text = (out / "findings.md").read_text()
    # which fusion solved which group, from the numbers of the test rows (the val rows are all 100%:
    # findings written from them would fail every figure below)
    st_line = next(line for line in text.splitlines() if line.startswith("- **spatiotemporal**"))
    # two seeds (40/40 and 36/40): mean ± sd, and the Wilson interval of the 76 of 80 pooled clips
    assert "conv fusion after res3 (95.0% ± 7.1 [87.8, 98.0])" in st_line
    assert "late" not in st_line and "pool" not in st_line and "n = 40 test clips per model" in st_line
    app_line = next(line for line in text.splitlines() if line.startswith("- **appearance**"))
    assert "appearance stream (100.0% [83.9, 100.0])" in app_line and "motion stream" not in app_line
    assert "late fusion (softmax mean): 50.0% [35.2, 64.8] on the spatiotemporal group, 50.0% [35.2, 64.8] " \
           "on which colour moves (chance 50.0%: near chance)" in text
    assert "conv fusion: solves the spatiotemporal group after res3 (95.0% ± 7.1 [87.8, 98.0])" in text
    # 20 of 40 against chance 1/4: significantly above chance, not solved
    assert "sum fusion: does not after pool (50.0% [35.2, 64.8]: above chance but not solved)" in text
    assert "So fusion must happen where the streams still have spatial maps" in text
    assert "| conv fusion after res3 | 2 |" in text
    assert not list(out.glob(".*tmp"))


def test_findings_without_classes(results):
    table = build_table(["rgb", "fusion-conv-res3-s0"], results / "eval", results / "models",
                        read_classes(results / "classes.csv").iloc[:0])
    assert "acc_appearance" not in table
    text = findings(table, read_classes(results / "classes.csv").iloc[:0], TableConfig())
    assert "No classes.csv" in text and "| conv fusion after res3 | 1 | 100.0% [95.4, 100.0] |" in text


def test_missing_inputs_are_one_line_errors(results, capsys):
    (results / "eval" / "flow" / "scores.h5").unlink()
    args = ["ablation", "--models", "rgb", "flow", "--eval-root", str(results / "eval"), "--models-root",
            str(results / "models"), "--classes", str(results / "classes.csv"), "--out", str(results / "a")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "flow/scores.h5: scores file not found" in err
    assert main(args[:2] + ["rgb", "fusion-x"] + args[4:]) == 2
    assert "fusion-x: not a model name" in capsys.readouterr().err
    (results / "eval" / "rgb" / "val_scores.h5").unlink()
    assert main(args[:2] + ["rgb"] + args[4:]) == 2
    assert "rgb/val_scores.h5: scores file not found" in capsys.readouterr().err
    assert main(args[:2] + ["rgb"] + args[4:-2] + ["--out", str(results / "a"), "--params", '{"solvd": 1}']) == 2
    assert "fusion.table: unknown key(s) solvd" in capsys.readouterr().err
    assert not (results / "a" / "accuracy.csv").exists()


# --- findings from made-up tables: no sentence the numbers do not support --------------------
WHERE = "So fusion must happen where the streams still have spatial maps"


def made_up_table(st_correct: dict[str, int], n: int = 120) -> pd.DataFrame:
    """One row per model: k of n correct on the spatiotemporal group and on which colour moves;
    every other group solved. Rows carry what build_table writes (counts and intervals)."""
    from twostream.ablation import wilson

    rows = []
    for model, k in st_correct.items():
        row = {"model": model, **parse_model(model)._asdict(), "parameters": 1, "train_seconds": 0.0,
               "mean_class_acc": 0.0}
        counts = {"top1": (k + 6 * n, 7 * n), "acc_appearance": (n, n), "acc_motion": (n, n),
                  "acc_spatiotemporal": (k, n), "st_moving_colour": (k, n), "st_direction": (n, n)}
        for col, (kk, nn) in counts.items():
            row[col] = kk / nn
            row[f"n_{col}"] = nn
            row[f"{col}_lo"], row[f"{col}_hi"] = wilson(kk, nn)
        rows.append(row)
    return pd.DataFrame(rows)


def st_findings(st_correct: dict[str, int], n: int = 120) -> str:
    return findings(made_up_table(st_correct, n), CLASSES, TableConfig())


def test_findings_pooled_fusion_solving_the_group_does_not_conclude_maps_are_needed():
    text = st_findings({"fusion-late_mean-softmax-s0": 60, "fusion-sum-pool-s0": 116, "fusion-conv-res3-s0": 119})
    assert WHERE not in text
    assert "Fusion without spatial maps solves the group too (sum fusion after pool)" in text


def test_findings_no_cell_solving_the_group():
    text = st_findings({"fusion-late_mean-softmax-s0": 60, "fusion-sum-pool-s0": 62, "fusion-conv-res3-s0": 80})
    st_line = next(line for line in text.splitlines() if line.startswith("- **spatiotemporal**"))
    assert st_line.endswith("solved by no model.")
    assert WHERE not in text and "solves the spatiotemporal group" not in text
    assert "conv fusion: does not after res3 (66.7% [57.8, 74.5]: above chance but not solved)" in text


def test_findings_every_cell_at_chance():
    # chance is 1/4 on the group and 1/2 on which colour moves: 30 of 120 is both "at chance"
    # for the group and far below chance for the colour; use 60 (chance for the colour)
    text = st_findings({"fusion-late_mean-softmax-s0": 30, "fusion-sum-pool-s0": 31, "fusion-conv-res3-s0": 29})
    assert WHERE not in text and "solves the spatiotemporal group" not in text
    assert "does not after res3 (24.2% [17.4, 32.6]: near chance)" in text
    assert "does not after pool (25.8% [18.8, 34.3]: near chance)" in text


def test_findings_conclusion_needs_separated_intervals():
    # the positive control: maps solve it, pooled and late at chance, many clips: the sentence is written
    assert WHERE in st_findings({"fusion-late_mean-softmax-s0": 60, "fusion-sum-pool-s0": 62,
                                 "fusion-conv-res3-s0": 119})
    # the same rates on 10 clips: 10/10 is solved, but 8/10 after pooling is within the same interval
    text = st_findings({"fusion-late_mean-softmax-s0": 5, "fusion-sum-pool-s0": 8, "fusion-conv-res3-s0": 10}, n=10)
    assert WHERE not in text and "overlapping intervals: no conclusion on where to fuse" in text


def test_wilson_interval_and_binomial_test_by_hand():
    from twostream.ablation import p_vs_chance, wilson

    lo, hi = wilson(20, 40)
    z = 1.959964
    centre, half = (0.5 + z * z / 80) / (1 + z * z / 40), z / (1 + z * z / 40) * np.sqrt(0.25 / 40 + z * z / 6400)
    assert (lo, hi) == pytest.approx((centre - half, centre + half), abs=1e-6)
    assert p_vs_chance(20, 40, 0.5) == pytest.approx(1.0)
    assert p_vs_chance(40, 40, 0.5) == pytest.approx(2 * 0.5 ** 40)
    assert np.isnan(wilson(0, 0)[0])


def test_labels_of_cross_stream_and_spatial_cells():
    from twostream.ablation import label_of
    from twostream.grid import parse_model

    assert parse_model("fusion-st_add_time-res2+res3+res4+res5-s0").method == "st_add_time"
    assert label_of("st_add", "res2+res3") == "st_add connections at res2+res3"
    assert label_of("concat", "res3") == "concat fusion after res3"
