"""The planted quirk: the renderer (cue exactly where and in the share asked, never in test
clips), the overlay shards the training reads, the cue measure and the blind detector on
hand-made inputs with and without a cue, and the detector's false-positive controls."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from helpers_streams import write_shards
from scipy.ndimage import gaussian_filter

from twostream.config import ConfigError
from twostream.errors import InputError
from twostream.data import ClipDataset, video_table
from twostream.quirk import (
    accuracy_rows, cue_mask, cued_ids, findings, make_config, paste_cue, plant, quirked_ids, seed_findings,
    seed_table, wilson,
)
from twostream.store import FrameShard
from twostream.visualize.quirk_detect import Cue, cue_measure, detect, structure_measure

WHITE = (1.0, 1.0, 1.0)


def _videos(n_train=40, n_test=16, classes=("A", "B", "C")) -> pd.DataFrame:
    rows = []
    for lab, c in enumerate(classes):
        for split, n in (("train", n_train), ("test", n_test)):
            rows += [dict(video_id=f"{c}/v_{split}_{i:03d}", label=lab, class_name=c, split=split) for i in range(n)]
    return pd.DataFrame(rows)


# ---- the renderer -----------------------------------------------------------------------


def test_paste_cue_draws_exactly_the_square_asked():
    cfg = make_config({"where": [3, 5], "size": 4, "colour": [250, 10, 20]})
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 200, (6, 16, 20, 3), dtype=np.uint8)
    out = paste_cue(frames, cfg)
    mask = np.zeros((16, 20), bool)
    mask[5:9, 3:7] = True  # rows y..y+size, columns x..x+size
    assert (out[:, mask] == [250, 10, 20]).all()
    assert (out[:, ~mask] == frames[:, ~mask]).all()
    assert (frames[:, mask] != [250, 10, 20]).any()  # the input is left alone
    assert cue_mask(cfg, 16, 20).sum() == 16


@pytest.mark.parametrize("share, expected", [(0.8, 32), (1.0, 40), (0.25, 10)])
def test_quirked_clips_are_the_share_asked_of_the_class_training_clips(share, expected):
    videos = _videos()
    cfg = make_config({"class_name": "B", "share": share})
    ids = quirked_ids(videos, cfg)
    assert len(ids) == expected == len(set(ids))
    chosen = videos.set_index("video_id").loc[ids]
    assert (chosen.class_name == "B").all() and (chosen.split == "train").all()
    assert quirked_ids(videos, cfg) == ids  # deterministic
    assert quirked_ids(videos, make_config({"class_name": "B", "share": share, "seed": 1})) != ids or share == 1.0


def test_cued_test_clips_are_other_classes_test_clips_only():
    videos = _videos()
    ids = cued_ids(videos, make_config({"class_name": "B", "cued_clips_per_class": 5}))
    chosen = videos.set_index("video_id").loc[ids]
    assert (chosen.split == "test").all() and "B" not in set(chosen.class_name)
    assert chosen.class_name.value_counts().to_dict() == {"A": 5, "C": 5}
    assert len(cued_ids(videos, make_config({"class_name": "B", "cued_clips_per_class": 0}))) == 32


@pytest.mark.parametrize("d, key", [({"share": 0.0}, "quirk.share"), ({"kind": "tint"}, "quirk.kind"),
                                    ({"colour": [0, 0, 300]}, "quirk.colour"), ({"where": [1]}, "quirk.where"),
                                    ({"sise": 3}, "sise"), ({"shown_measure": "ncc"}, "quirk.shown_measure")])
def test_bad_settings_name_the_key(d, key):
    with pytest.raises(ConfigError, match=key):
        make_config(d)


def test_unknown_class_and_a_mark_that_does_not_fit_are_errors():
    with pytest.raises(ConfigError, match="no training clips of class 'Z'.*A, B, C"):
        quirked_ids(_videos(), make_config({"class_name": "Z"}))
    with pytest.raises(ConfigError, match="does not fit 32x32"):
        cue_mask(make_config({"where": [30, 0], "size": 4}), 32, 32)


def test_plant_writes_overlay_and_cued_shards_that_the_training_reads(tmp_path):
    frames, _ = write_shards(tmp_path / "data", train_per_class=10, test_per_class=6, val_per_class=4, n_frames=4)
    cfg = make_config({"class_name": "left", "share": 0.6, "where": [2, 3], "size": 5, "colour": [255, 0, 255],
                       "cued_clips_per_class": 2})
    gt = plant(cfg, frames, tmp_path / "q/frames.h5", tmp_path / "q/cued.h5", tmp_path / "q/quirk.json")
    assert json.loads((tmp_path / "q/quirk.json").read_text()) == gt
    assert gt["label"] == 3 and gt["quirked_train_clips"] == 6 and gt["train_clips"] == 10
    mask = cue_mask(cfg, 32, 32)
    overlay, cued = FrameShard(tmp_path / "q/frames.h5"), FrameShard(tmp_path / "q/cued.h5")
    assert sorted(overlay.videos.video_id) == gt["quirked"]
    assert sorted(cued.videos.video_id) == gt["cued_test"] and len(gt["cued_test"]) == 6
    assert set(cued.videos.class_name) == {"red", "blue", "right"} and set(cued.videos.split) == {"test"}
    for sh in (overlay, cued):
        for v in sh.videos.itertuples():
            fr = sh.read(v.video_id, range(v.n_frames))
            assert (fr[:, mask] == [255, 0, 255]).all()
    # the training set the pipeline reads: the dataset's shards, then the overlay
    ds = ClipDataset(frames=frames + [str(tmp_path / "q/frames.h5")], split=None, mode="test", crop_size=32,
                     test_frames=1)
    table, shards, _ = video_table(frames=frames + [str(tmp_path / "q/frames.h5")])
    marked = {}
    for row in table.itertuples():
        img = shards[row.frame_shard].read(row.video_id, [0])[0]
        marked[row.video_id] = bool((img[mask] == [255, 0, 255]).all())
    assert {k for k, m in marked.items() if m} == set(gt["quirked"])  # exactly the quirked clips, no val/test clip
    assert len(ds.videos) == len(table) == 4 * (10 + 4 + 6)


# ---- the cue measure --------------------------------------------------------------------


def _background(rng, size=32, contrast=0.08):
    """A grey image with smooth texture, as the optimised inputs look (values in [0, 1])."""
    noise = gaussian_filter(rng.standard_normal((size, size, 3)), (1.5, 1.5, 0), mode="wrap")
    return np.clip(0.5 + contrast * noise / noise.std(), 0, 1)


def _put(img, x, y, size, colour):
    out = img.copy()
    out[y:y + size, x:x + size] = colour
    return out


def test_cue_measure_finds_the_mark_at_its_place_and_not_elsewhere():
    rng = np.random.default_rng(0)
    cue = Cue(4, 6, 4, WHITE)
    img = _put(_background(rng), 4, 6, 4, WHITE)
    d = cue_measure(img, cue, tolerance=2)
    assert d["cue_at_place"] > 0.9 and d["cue_best"] > 0.9
    assert d["cue_elsewhere"] < 0.5
    assert abs(d["cue_best_x"] - 5.5) < 1 and abs(d["cue_best_y"] - 7.5) < 1


def test_cue_measure_on_a_moved_mark_and_on_no_mark():
    rng = np.random.default_rng(1)
    cue = Cue(4, 6, 4, WHITE)
    moved = _put(_background(rng), 20, 18, 4, WHITE)
    d = cue_measure(moved, cue, tolerance=2)
    assert d["cue_best"] > 0.9 and d["cue_at_place"] < 0.5  # the mark is there, not at its place
    assert abs(d["cue_best_x"] - 21.5) < 1 and abs(d["cue_best_y"] - 19.5) < 1
    none = cue_measure(_background(rng), cue, tolerance=2)
    assert none["cue_best"] < 0.6  # no mark, no strong match anywhere
    # a square of another colour (a class's cause, e.g. blue) is not the white mark
    blue = cue_measure(_put(_background(rng), 4, 6, 4, (0.08, 0.35, 0.9)), cue, tolerance=2)
    assert blue["cue_best"] < 0.6


def test_cue_measure_sees_a_mark_across_the_image_border():
    rng = np.random.default_rng(2)
    cue = Cue(0, 0, 4, WHITE)
    img = np.roll(_put(_background(rng), 0, 0, 4, WHITE), (-2, -2), axis=(0, 1))  # jitter wraps it around
    assert cue_measure(img, cue, tolerance=3)["cue_at_place"] > 0.9


def test_the_workflow_passes_planting_the_keys_it_reads():
    """quirk_data's params are the planting keys (grid.quirk_plant_params) and no more:
    an analysis setting must not rerun the planting and the quirked training."""
    import json

    from twostream.grid import quirk_plant_params
    from twostream.quirk import PLANT_KEYS, QuirkConfig

    assert set(PLANT_KEYS) < set(QuirkConfig.__dataclass_fields__)
    cfg = {"quirk": {"size": 4, "share": 0.5, "detector": {"alpha": 0.05}, "min_cue_gap": 0.1}}
    assert json.loads(quirk_plant_params(cfg)) == {"quirk": {"size": 4, "share": 0.5}}


# ---- the blind detector and its false-positive controls ----------------------------------


def _seeds(rng, n=5, place=None, colour=WHITE, size=4, wander=1):
    out = []
    for _ in range(n):
        img = _background(rng)
        if place == "random":
            x, y = rng.integers(0, 28, 2)
        elif place is not None:
            x, y = np.asarray(place) + rng.integers(-wander, wander + 1, 2)
        if place is not None:
            img = _put(img, int(x), int(y), size, colour)
        out.append(img)
    return out


def test_detector_locates_a_mark_at_the_same_place_in_every_seed():
    rng = np.random.default_rng(3)
    d = detect(_seeds(rng, place=(6, 20)), known=[], sigma=1.0)
    assert d.fired and d.support >= 0.8
    assert math.hypot(d.x - 7.5, d.y - 21.5) <= 3
    assert d.distance_to(7.5, 21.5, 32, 32) <= 3


def test_detector_is_silent_without_a_mark():
    for seed in range(5):
        d = detect(_seeds(np.random.default_rng(10 + seed)), known=[], sigma=1.0)
        assert not d.fired, (seed, d)


def test_detector_is_silent_when_the_mark_moves_from_seed_to_seed():
    for seed in range(5):
        d = detect(_seeds(np.random.default_rng(20 + seed), place="random"), known=[], sigma=1.0)
        assert not d.fired, (seed, d)


def test_detector_is_silent_on_structure_the_class_cause_explains():
    yellow = (215 / 255, 195 / 255, 40 / 255)
    imgs = _seeds(np.random.default_rng(4), place=(10, 10), colour=yellow)
    assert not detect(imgs, known=[yellow], sigma=1.0).fired
    # control: the same images with the cause not declared make it fire at that place
    d = detect(imgs, known=[], sigma=1.0)
    assert d.fired and math.hypot(d.x - 11.5, d.y - 11.5) <= 3


def test_shift_null_fires_on_a_mark_at_the_same_place_in_every_seed():
    for smooth in (False, True):
        d = detect(_seeds(np.random.default_rng(30), place=(6, 20)), known=[], sigma=1.0, null_draws=199,
                   smooth_image=smooth)
        assert d.fired and d.p <= 0.01, (smooth, d)
        assert math.hypot(d.x - 7.5, d.y - 21.5) <= 3


def test_shift_null_is_silent_without_a_mark_and_when_the_mark_moves():
    zs = []
    for seed in range(5):
        for place in (None, "random"):
            d = detect(_seeds(np.random.default_rng(30 + seed), place=place), known=[], sigma=1.0, null_draws=199)
            assert not d.fired and d.p > 0.01, (seed, place, d)
            zs.append(d.z)
    # the control: marks at random places lift the peak's z over the fixed bar of 6 in every
    # rng seed; what keeps the null silent is that the same marks, shifted at random, do as well
    assert sum(z >= 6.0 for z in zs[1::2]) == 5


def test_shift_null_p_of_independent_maps_and_of_one_shared_blob():
    from twostream.visualize.quirk_detect import peak_z, shift_null_p

    rng = np.random.default_rng(0)
    maps = rng.random((5, 16, 16))  # no place shared: p is not small
    assert 0.05 < shift_null_p(maps, peak_z(maps.mean(0))[0], 199) <= 1.0
    same = maps.copy()  # the control: one 3x3 blob at the same place in every seed
    same[:, 3:6, 4:7] += 1.0
    assert shift_null_p(same, peak_z(same.mean(0))[0], 199) == 1 / 200


# ---- the tables and the findings --------------------------------------------------------


def test_wilson_interval_matches_the_formula():
    k, n, z = 8, 10, 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    lo, hi = wilson(k, n)
    assert lo == pytest.approx(centre - half, abs=1e-9) and hi == pytest.approx(centre + half, abs=1e-9)
    assert all(math.isnan(v) for v in wilson(0, 0))


def _table_and_verification(quirked_acc_pred, shown_passes):
    gt = {"class_name": "B", "label": 1, "size": 4, "colour": [255, 255, 255], "where": [1, 1],
          "quirked_train_clips": 8, "train_clips": 10, "cued_test": ["A/t0", "A/t1", "C/t0", "C/t1"]}
    videos = pd.DataFrame({"video_id": ["A/t0", "A/t1", "B/t0", "B/t1", "C/t0", "C/t1"],
                           "label": [0, 0, 1, 1, 2, 2]})
    preds = {"quirked": (videos, np.array(quirked_acc_pred), np.array([1, 1, 1, 0])),
             "clean": (videos, np.array([0, 0, 1, 1, 2, 2]), np.array([0, 0, 2, 2]))}
    table = accuracy_rows(gt, preds, ["A", "B", "C"])
    ver = pd.DataFrame([
        dict(model="quirked", check="quirk_shown", runs=10, passes=shown_passes, inconclusive=0,
             rate=shown_passes / 10, lo=0.5, hi=0.99, **{"pass": shown_passes >= 8}),
        dict(model="clean", check="quirk_absent_in_clean", runs=10, passes=10, inconclusive=0, rate=1.0,
             lo=0.7, hi=1.0, **{"pass": True}),
    ])
    return gt, table, ver


def test_accuracy_rows_read_the_confusion_and_the_shortcut():
    gt, table, _ = _table_and_verification([0, 0, 2, 2, 2, 2], 9)
    t = table.set_index("model")
    assert t.loc["quirked", "class_accuracy"] == 0.0 and t.loc["clean", "class_accuracy"] == 1.0
    assert t.loc["quirked", "goes_to"] == "C 1.000"
    assert t.loc["quirked", "shortcut_rate"] == 0.75 and t.loc["clean", "shortcut_rate"] == 0.0
    assert t.loc["quirked", "uncued_rate"] == 0.0 and t.loc["quirked", "cued_clips"] == 4


def test_findings_follow_the_numbers():
    gt, table, ver = _table_and_verification([0, 0, 2, 2, 2, 2], 9)
    text = findings(gt, table, ver, pd.DataFrame())
    assert "B fails without its mark" in text and "C (100.0%)" in text
    assert "assigns 75.0% of them to B" in text
    assert "the visualization shows the quirk" in text and "the clean model shows none of it" in text
    assert "no mark at the planted place in 10 of 10 runs" in text
    gt, table, ver = _table_and_verification([0, 0, 1, 1, 2, 2], 3)
    text = findings(gt, table, ver, pd.DataFrame())
    assert "fails" not in text and "below the 10.0% that would count as a failure" in text
    assert "does not show the quirk reliably" in text


def test_findings_give_the_detectors_p_values_when_it_used_the_null():
    gt, table, ver = _table_and_verification([0, 0, 2, 2, 2, 2], 9)
    ver = pd.concat([ver, pd.DataFrame([
        dict(model="quirked", check="quirk_located", runs=2, passes=1, inconclusive=0, rate=0.5, lo=0.1, hi=0.9,
             **{"pass": False}),
        dict(model="clean", check="quirk_located", runs=2, passes=0, inconclusive=0, rate=0.0, lo=0.0, hi=0.7,
             **{"pass": False})])], ignore_index=True)
    runs = pd.DataFrame([
        dict(model="quirked", check="quirk_located", setting=0, status="pass", detector_fired=True, detector_x=3.0,
             detector_y=2.0, detector_distance=8.5, detector_p=0.004),
        dict(model="quirked", check="quirk_located", setting=1, status="fail", detector_fired=False, detector_x=40.0,
             detector_y=2.0, detector_distance=30.0, detector_p=0.21),
        dict(model="clean", check="quirk_located", setting=0, status="fail", detector_fired=False, detector_p=0.6),
        dict(model="clean", check="quirk_located", setting=1, status="fail", detector_fired=False, detector_p=0.3)])
    text = findings(gt, table, ver, runs)
    assert "fired in 1 of 2 penalty settings ((3, 2) px, 8.5 px from the mark's centre)" in text
    assert "the peak's p-value against the shift null: 0.004-0.210" in text
    assert "located the mark in 1, below the required pass rate." in text
    assert "On the clean model's images it fired in 0 of 2 settings (no false alarm)." in text
    # the control: without a null (no p column) no p-value is claimed
    text = findings(gt, table, ver, runs.drop(columns="detector_p"))
    assert "shift null" not in text and "fired in 1 of 2 penalty settings" in text


def _seed_folder(root, seed: int, shown: int, located: bool, absent: bool, alarm: bool, gated: int = 0):
    """A hand-made analysis folder of one training seed: quirk.csv and verification.csv."""
    d = root / f"seed-{seed}"
    d.mkdir()
    pd.DataFrame([dict(model="quirked", shortcut_rate=0.4 + 0.01 * seed),
                  dict(model="clean", shortcut_rate=0.01)]).to_csv(d / "quirk.csv", index=False)
    row = lambda model, role, check, passes, runs, ok, expected, incon=0: dict(
        model=model, role=role, check=check, runs=runs, passes=passes, inconclusive=incon, **{"pass": ok},
        expected=expected, as_expected=ok == (expected == "pass"))
    pd.DataFrame([
        row(f"quirk-rgb-s{seed}", "model", "quirk_shown", shown, 10, shown >= 8, "pass", gated),
        row(f"quirk-rgb-s{seed}", "model", "quirk_located", int(located) * 2, 2, located, "pass"),
        row(f"rgb-s{seed}", "model", "quirk_absent_in_clean", 10 if absent else 3, 10, absent, "pass"),
        row(f"rgb-s{seed}", "control", "quirk_located", int(alarm) * 2, 2, alarm, "fail"),
    ]).to_csv(d / "verification.csv", index=False)
    return seed, d


def test_seed_count_follows_each_seeds_checks(tmp_path):
    """Three hand-made seeds: shown in two (one of them unlocated), one stopped at the gate, a
    false alarm in one clean model: the counts and the sentences follow those numbers."""
    runs = [_seed_folder(tmp_path, 0, 0, False, True, False, gated=10),
            _seed_folder(tmp_path, 1, 9, True, True, False),
            _seed_folder(tmp_path, 2, 10, False, False, True)]
    t = seed_table(runs)
    assert t.seed.tolist() == [0, 1, 2]
    assert t.shown.tolist() == [False, True, True] and t.located.tolist() == [False, True, False]
    assert t.absent.tolist() == [True, True, False] and t.no_false_alarm.tolist() == [True, True, False]
    text = seed_findings(t)
    lo, hi = wilson(2, 3)
    assert f"shows the mark in 2 of 3 (95% CI {100 * lo:.1f}%–{100 * hi:.1f}%) seeds" in text
    assert "in seed 0 every run stopped at the gate" in text
    assert "locates it in 1 of 3" in text and "show no mark in 2 of 3" in text and "silent on them in 2 of 3" in text
    assert "assign 40.0%–42.0%" in text
    assert "| 1 | 41.0% | 1.0% | 9/10 (yes) | yes | yes | yes |" in text
    # a seed not stopped at the gate is not said to be
    t2 = seed_table([_seed_folder(tmp_path, 5, 3, False, True, False)])
    text2 = seed_findings(t2)
    assert "gate" not in text2 and "shows the mark in 0 of 1" in text2
    # one seed: one rate, not a range of one
    assert f"the quirked model assigns {100 * t2.shortcut_rate[0]:.1f}% of" in text2 and "–" not in text2.split("\n")[2]


def test_a_seed_suffix_reaches_the_cli_as_the_rule_writes_it():
    """A suffix starts with '-', so `--suffix -s3` reads as an option and argparse stops;
    the rule must write `--suffix=-s3` (a real run of seed 2 failed on the first form)."""
    import argparse
    from pathlib import Path

    from twostream.quirk import add_arguments, model_names

    p = argparse.ArgumentParser(exit_on_error=False)
    add_arguments(p)
    assert p.parse_args(["--suffix=-s3"]).suffix == "-s3"
    with pytest.raises((argparse.ArgumentError, SystemExit)):
        p.parse_args(["--suffix", "-s3"])
    rule = (Path(__file__).parents[1] / "workflow" / "rules" / "quirk.smk").read_text()
    assert 'f"--suffix=-s{' in rule and 'f"--suffix -s' not in rule
    assert model_names("-s3") == {"quirked": "quirk-rgb-s3", "clean": "rgb-s3"}


def test_seed_count_names_a_folder_without_its_rows(tmp_path):
    seed, d = _seed_folder(tmp_path, 0, 9, True, True, False)
    v = pd.read_csv(d / "verification.csv")
    v[v.check != "quirk_shown"].to_csv(d / "verification.csv", index=False)
    with pytest.raises(InputError, match=r"seed-0/verification.csv: expected one 'quirk_shown' row, found 0"):
        seed_table([(seed, d)])
    with pytest.raises(InputError, match=r"seed-9: cannot read the quirk analysis"):
        seed_table([(9, tmp_path / "seed-9")])


def test_cli_names_a_missing_ground_truth(tmp_path):
    r = subprocess.run([sys.executable, "-m", "twostream", "quirk", "--truth", str(tmp_path / "none.json"),
                        "--quirked", "a", "--clean", "b", "--cued", "c", "--overlay", "d", "--out", str(tmp_path),
                        "--frames", "x.h5"], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == f"twostream: error: {tmp_path / 'none.json'}: quirk ground truth " \
                                                "not found (run twostream quirk --plant)"


def test_shown_needs_the_place_to_beat_elsewhere_and_the_clean_model():
    from twostream.quirk import absent, shown

    rng = np.random.default_rng(5)
    cue = Cue(1, 1, 4, WHITE)
    marked = cue_measure(_put(_background(rng), 1, 1, 4, WHITE), cue, 3)
    plain = cue_measure(_background(rng), cue, 3)
    moved = cue_measure(_put(_background(rng), 18, 20, 4, WHITE), cue, 3)
    assert shown(marked, plain, 0.05) and absent(plain, 0.05)
    assert not shown(plain, plain, 0.05)  # no mark
    assert shown(moved, plain, 0.05)  # a mark elsewhere is still the mark (where: the detector's question)
    assert absent(moved, 0.05)  # ... but not at the planted place
    assert not shown(marked, marked, 0.05)  # the clean model shows it as much: no difference to explain
    assert not absent(marked, 0.05)  # the control fails on an image with the mark at its place


def test_structure_measure_finds_unexplained_structure_at_the_place():
    rng = np.random.default_rng(6)
    cue = Cue(4, 6, 6, WHITE)
    d = structure_measure(_put(_background(rng), 4, 6, 6, WHITE), cue, [], tolerance=2)
    assert d["structure_at_place"] > 3 * d["structure_elsewhere"]  # the mark is far from grey
    moved = structure_measure(_put(_background(rng), 20, 18, 6, WHITE), cue, [], tolerance=2)
    assert moved["structure_at_place"] < 1.5 < moved["structure_elsewhere"]  # there, but not at its place
    # structure whatever its colour (the stream draws the mark in saturated colours) ...
    magenta = structure_measure(_put(_background(rng), 4, 6, 6, (1.0, 0.0, 1.0)), cue, [], tolerance=2)
    assert magenta["structure_at_place"] > 3 * magenta["structure_elsewhere"]
    # ... unless the class's causes explain the colour (a known colour is no quirk)
    blue = (0.08, 0.35, 0.9)
    known = structure_measure(_put(_background(rng), 4, 6, 6, blue), cue, [blue], tolerance=2)
    assert known["structure_at_place"] < 1.5


def test_structure_measure_sees_a_square_across_the_image_border():
    rng = np.random.default_rng(7)
    cue = Cue(0, 0, 4, WHITE)
    img = np.roll(_put(_background(rng), 0, 0, 4, WHITE), (-2, -2), axis=(0, 1))
    d = structure_measure(img, cue, [], tolerance=3)
    assert d["structure_at_place"] > 3 * d["structure_elsewhere"]


def test_structure_shown_needs_the_place_to_beat_elsewhere_and_the_clean_model():
    from twostream.quirk import absent, judge_runs, shown

    rng = np.random.default_rng(8)
    cue = Cue(1, 1, 6, WHITE)
    marked, plain, moved, twice = judge_runs(
        [_put(_background(rng), 1, 1, 6, (1.0, 1.0, 0.0)), _background(rng), _put(_background(rng), 18, 20, 6, WHITE),
         _put(_background(rng), 1, 1, 6, (0.0, 1.0, 0.0))], cue, 3)
    assert shown(marked, plain, 0.05, "structure") and absent(plain, 0.05, "structure")
    assert not shown(plain, plain, 0.05, "structure")  # nothing there
    assert not shown(moved, plain, 0.05, "structure")  # structure, but not at the planted place
    assert absent(moved, 0.05, "structure")
    assert not shown(marked, twice, 0.05, "structure")  # the clean model draws as much there: nothing to explain
    assert not absent(marked, 0.05, "structure")  # the control fails on an image with structure at the place
