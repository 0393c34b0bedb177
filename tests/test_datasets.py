"""Dataset adapters on small fabricated folders in the UCF101 / HMDB51 / class-folder layouts."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import write_test_video

from twostream import cli
from twostream.datasets import build_index
from twostream.errors import InputError
from twostream.index import INDEX_COLUMNS, read_index
from twostream.store import FrameShard

UCF_CLASSES = ["ApplyEyeMakeup", "Basketball", "YoYo"]


def _video(path, seed=0):
    write_test_video(path, n=3, height=24, width=32, seed=seed)


def make_ucf101(root, splits_dir=None):
    """UCF101 layout: 3 classes x 3 groups x 1 clip; split k tests group k."""
    splits_dir = splits_dir or root
    splits_dir.mkdir(parents=True, exist_ok=True)
    (splits_dir / "classInd.txt").write_bytes(
        "".join(f"{i + 1} {c}\r\n" for i, c in enumerate(UCF_CLASSES)).encode()
    )  # the official files have CRLF line ends
    clips = {}
    for ci, c in enumerate(UCF_CLASSES):
        for g in (1, 2, 3):
            rel = f"{c}/v_{c}_g{g:02d}_c01.avi"
            _video(root / rel, seed=ci * 3 + g)
            clips[(c, g)] = rel
    for k in (1, 2, 3):
        train = [f"{rel} {UCF_CLASSES.index(c) + 1}\r\n" for (c, g), rel in clips.items() if g != k]
        test = [f"{rel}\r\n" for (c, g), rel in clips.items() if g == k]
        (splits_dir / f"trainlist{k:02d}.txt").write_bytes("".join(train).encode())
        (splits_dir / f"testlist{k:02d}.txt").write_bytes("".join(test).encode())
    return clips


HMDB_CLASSES = ["brush_hair", "cartwheel"]


def make_hmdb51(root, splits_dir=None):
    """HMDB51 layout: 2 classes x 4 clips; tags per split rotate 1, 2, 0, 1."""
    splits_dir = splits_dir or root
    splits_dir.mkdir(parents=True, exist_ok=True)
    for ci, c in enumerate(HMDB_CLASSES):
        names = [f"April_09_{c}_u_nm_np1_ba_goo_{i}.avi" for i in range(4)]
        for i, n in enumerate(names):
            _video(root / c / n, seed=10 * ci + i)
        for k in (1, 2, 3):
            tags = [(1, 2, 0, 1)[(i + k) % 4] for i in range(4)]
            # the official files end each line with a space
            (splits_dir / f"{c}_test_split{k}.txt").write_text("".join(f"{n} {t} \n" for n, t in zip(names, tags)))


# ----------------------------------------------------------------------------- UCF101


@pytest.mark.parametrize("split", [1, 2, 3])
def test_ucf101_splits(tmp_path, split):
    root = tmp_path / "UCF101"
    clips = make_ucf101(root)
    df = build_index("ucf101", root, split)
    assert list(df.columns) == INDEX_COLUMNS
    assert len(df) == 9 and df["video_id"].is_unique
    test = df[df["split"] == "test"]
    assert sorted(test["video_id"]) == sorted(f"{c}/v_{c}_g{split:02d}_c01" for c in UCF_CLASSES)
    # the 6 training-list videos (2 groups): one whole group is held out for validation
    assert (df["split"] == "train").sum() == 3 and (df["split"] == "val").sum() == 3
    val_groups = {v[-6:-4] for v in df[df["split"] == "val"]["video_id"]}
    train_groups = {v[-6:-4] for v in df[df["split"] == "train"]["video_id"]}
    assert len(val_groups) == 1 and not val_groups & train_groups and f"{split:02d}" not in val_groups
    assert list(df["split"]) == ["train"] * 3 + ["val"] * 3 + ["test"] * 3
    for r in df.itertuples():
        assert r.label == UCF_CLASSES.index(r.class_name)
        assert r.video_id.split("/")[0] == r.class_name
        assert r.path == str(root / clips[(r.class_name, int(r.video_id[-6:-4]))])


def test_ucf101_separate_splits_dir(tmp_path):
    make_ucf101(tmp_path / "UCF101", tmp_path / "ucfTrainTestlist")
    df = build_index("ucf101", tmp_path / "UCF101", 2, splits_dir=tmp_path / "ucfTrainTestlist")
    assert len(df) == 9


def test_ucf101_errors(tmp_path):
    root = tmp_path / "UCF101"
    make_ucf101(root)
    (root / "trainlist02.txt").unlink()
    with pytest.raises(InputError, match=r"trainlist02\.txt: missing UCF101 split file"):
        build_index("ucf101", root, 2)
    with open(root / "testlist01.txt", "a") as fh:
        fh.write("Juggling/v_Juggling_g01_c01.avi\r\n")
    with pytest.raises(InputError, match=r"testlist01\.txt:4: unknown class 'Juggling'"):
        build_index("ucf101", root, 1)
    (root / "testlist03.txt").write_text("YoYo/v_YoYo_g09_c01.avi\n")
    with pytest.raises(
        InputError, match=r"YoYo/v_YoYo_g09_c01\.avi: listed video does not exist \(listed in .*testlist03\.txt:1\)"
    ):
        build_index("ucf101", root, 3)
    (root / "trainlist03.txt").write_text("YoYo/v_YoYo_g01_c01.avi 1\n")
    with pytest.raises(InputError, match=r"trainlist03\.txt:1: label '1' disagrees with classInd\.txt \(YoYo = 3\)"):
        build_index("ucf101", root, 3)
    (root / "classInd.txt").unlink()
    with pytest.raises(InputError, match=r"classInd\.txt: missing UCF101 class list"):
        build_index("ucf101", root, 1)
    with pytest.raises(InputError, match="nowhere: dataset folder does not exist"):
        build_index("ucf101", tmp_path / "nowhere", 1)


def test_ucf101_video_listed_twice(tmp_path):
    root = tmp_path / "UCF101"
    make_ucf101(root)
    with open(root / "testlist01.txt", "a") as fh:
        fh.write("YoYo/v_YoYo_g02_c01.avi\n")
    with pytest.raises(InputError, match=r"'YoYo/v_YoYo_g02_c01' is listed more than once"):
        build_index("ucf101", root, 1)


# ----------------------------------------------------------------------------- HMDB51


@pytest.mark.parametrize("split", [1, 2, 3])
def test_hmdb51_splits(tmp_path, split):
    root = tmp_path / "hmdb51"
    make_hmdb51(root, tmp_path / "splits")
    df = build_index("hmdb51", root, split, splits_dir=tmp_path / "splits")
    assert list(df.columns) == INDEX_COLUMNS
    want = {}
    for c in HMDB_CLASSES:
        for i in range(4):
            tag = (1, 2, 0, 1)[(i + split) % 4]
            if tag:
                want[f"{c}/April_09_{c}_u_nm_np1_ba_goo_{i}"] = "train" if tag == 1 else "test"
    # tag 0 left out; every clip comes from one movie (April_09): one group, none held out for validation
    assert dict(zip(df["video_id"], df["split"])) == want
    assert len(df) == 6
    assert set(zip(df["class_name"], df["label"])) == {("brush_hair", 0), ("cartwheel", 1)}
    assert all((root / v).with_suffix(".avi").as_posix() == p for v, p in zip(df["video_id"], df["path"]))


def test_hmdb51_errors(tmp_path):
    root = tmp_path / "hmdb51"
    make_hmdb51(root)
    with pytest.raises(InputError, match=r"no HMDB51 split files '<class>_test_split1\.txt'"):
        build_index("hmdb51", root, 1, splits_dir=tmp_path)
    (root / "cartwheel_test_split1.txt").write_text("April_09_cartwheel_u_nm_np1_ba_goo_0.avi 3\n")
    with pytest.raises(InputError, match=r"cartwheel_test_split1\.txt:1: expected '<video>\.avi <0\|1\|2>'"):
        build_index("hmdb51", root, 1)
    (root / "cartwheel_test_split1.txt").write_text("missing_clip.avi 1\n")
    with pytest.raises(InputError, match=r"cartwheel/missing_clip\.avi: listed video does not exist"):
        build_index("hmdb51", root, 1)
    (root / "cartwheel_test_split2.txt").unlink()
    with pytest.raises(InputError, match=r"cartwheel: class folder has no split file cartwheel_test_split2\.txt"):
        build_index("hmdb51", root, 2)
    (root / "jump_test_split3.txt").write_text("x.avi 1\n")
    with pytest.raises(InputError, match=r"jump_test_split3\.txt: unknown class 'jump': no folder"):
        build_index("hmdb51", root, 3)


# ----------------------------------------------------------------------------- folder


def make_folder(root, counts):
    for ci, (c, n) in enumerate(counts.items()):
        for i in range(n):
            _video(root / c / f"clip{i:02d}.avi", seed=ci * 100 + i)
    (root / next(iter(counts)) / "notes.txt").write_text("not a video, ignored")


def test_folder_ratio_split(tmp_path):
    root = tmp_path / "data"
    make_folder(root, {"walk": 10, "run": 4, "jump": 1})
    df = build_index("folder", root, test_ratio=0.3)
    assert list(df.columns) == INDEX_COLUMNS
    counts = df.groupby(["class_name", "split"]).size().to_dict()
    # test: round(0.3 n); validation: round(0.15 x the rest), at least one, never a class's last training video
    assert counts == {("walk", "test"): 3, ("walk", "val"): 1, ("walk", "train"): 6, ("run", "test"): 1,
                      ("run", "val"): 1, ("run", "train"): 2, ("jump", "train"): 1}  # fmt: skip
    assert dict(zip(df["class_name"], df["label"])) == {"jump": 0, "run": 1, "walk": 2}
    # deterministic, and a class's split does not depend on the other classes
    again = build_index("folder", root, test_ratio=0.3)
    pd.testing.assert_frame_equal(df, again)
    _video(root / "run" / "clip99.avi")
    more = build_index("folder", root, test_ratio=0.3)
    walk = lambda d: d[d["class_name"] == "walk"][["video_id", "split"]].reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(walk(df), walk(more))


def test_folder_errors(tmp_path):
    with pytest.raises(InputError, match="no class folders"):
        (tmp_path / "empty").mkdir()
        build_index("folder", tmp_path / "empty")
    (tmp_path / "empty" / "walk").mkdir()
    (tmp_path / "empty" / "walk" / "readme.txt").write_text("x")
    with pytest.raises(InputError, match=r"walk: class folder holds no video files"):
        build_index("folder", tmp_path / "empty")
    with pytest.raises(InputError, match="does not exist"):
        build_index("folder", tmp_path / "nowhere")


# ----------------------------------------------------------------------------- validation hold-out


def _leaks(df, group_of) -> set:
    """Groups with videos on both sides of train / val, or of (train or val) / test."""
    g = {s: {group_of(r) for r in df[df["split"] == s].itertuples()} for s in ("train", "val", "test")}
    return (g["train"] & g["val"]) | ((g["train"] | g["val"]) & g["test"])


def _ucf_rows():
    """UCF101 split 1 as lists: 4 classes x groups g01..g25 x 2 clips; g01..g07 test."""
    rows = []
    for c in ("ApplyEyeMakeup", "Basketball", "YoYo", "Drumming"):
        for g in range(1, 26):
            for k in (1, 2):
                rows.append({"video_id": f"{c}/v_{c}_g{g:02d}_c{k:02d}", "class_name": c,
                             "split": "test" if g <= 7 else "train"})  # fmt: skip
    return pd.DataFrame(rows)


def test_ucf101_hold_out_whole_groups():
    from twostream.datasets.holdout import hold_out, ucf101_group

    df = _ucf_rows()
    out = hold_out(df, "ucf101", 0.15)
    grp = lambda r: ucf101_group(r.video_id)  # noqa: E731
    assert not _leaks(out, grp)
    assert (out[df["split"] == "test"]["split"] == "test").all()  # test rows untouched, no test video moved
    assert not (out[df["split"] == "train"]["split"] == "test").any()
    val_groups = {ucf101_group(v) for v in out[out["split"] == "val"]["video_id"]}
    assert len(val_groups) == 3  # round(0.15 x 144 videos) = 22: three groups of 8
    assert all(set(out[out["video_id"].map(ucf101_group) == g]["split"]) == {"val"} for g in val_groups)
    # deterministic: the same groups whatever the row order
    again = hold_out(df.sample(frac=1.0, random_state=3), "ucf101", 0.15).set_index("video_id").loc[out["video_id"]]
    assert list(again["split"]) == list(out["split"])
    # control: a video-wise split of the same list mixes groups, and the leak check sees it
    bad = df.copy()
    bad.loc[(df["split"] == "train") & (df["video_id"].str.endswith("c02")), "split"] = "val"
    assert _leaks(bad, grp)


def test_hmdb51_hold_out_whole_movies():
    from twostream.datasets.holdout import hmdb51_group, hold_out

    rows = []
    for c in ("brush_hair", "cartwheel", "kick_ball"):
        for m in ("April_09", "Bartender", "Boyz_n_the_Hood", "Goldfinger", "Hitch", "Matrix", "Veoh_Alpha"):
            for i in range(3):
                rows.append({"video_id": f"{c}/{m}_{c}_u_nm_np1_ba_goo_{i}", "class_name": c,
                             "split": "test" if (m == "Hitch") else "train"})  # fmt: skip
    df = pd.DataFrame(rows)
    assert hmdb51_group("kick_ball/Boyz_n_the_Hood_kick_ball_f_cm_np1_le_med_3", "kick_ball") == "Boyz_n_the_Hood"
    out = hold_out(df, "hmdb51", 0.2)
    grp = lambda r: hmdb51_group(r.video_id, r.class_name)  # noqa: E731
    assert not _leaks(out, grp)
    assert (out[df["split"] == "test"]["split"] == "test").all()
    movies = {grp(r) for r in out[out["split"] == "val"].itertuples()}
    assert movies and "Hitch" not in movies  # a movie goes to validation in every class at once
    assert (out["split"] == "val").sum() == 9 * len(movies)
    assert list(hold_out(df.iloc[::-1], "hmdb51", 0.2).sort_index()["split"]) == list(out["split"])


def test_folder_hold_out_stratified_and_stable():
    from twostream.datasets.holdout import hold_out

    def table(counts):
        return pd.DataFrame([{"video_id": f"{c}/clip{i:02d}", "class_name": c, "split": "test" if i < 2 else "train"}
                             for c, n in counts.items() for i in range(n)])  # fmt: skip

    df = table({"walk": 22, "run": 12, "jump": 4, "sit": 3})
    out = hold_out(df, "folder", 0.25)
    n = out.groupby(["class_name", "split"]).size().to_dict()
    # round(0.25 x training videos), at least one, never a class's last training video
    assert (n[("walk", "val")], n[("run", "val")], n[("jump", "val")]) == (5, 2, 1)
    assert ("sit", "val") not in n and n[("sit", "train")] == 1
    assert (out[df["split"] == "test"]["split"] == "test").all()
    more = hold_out(table({"walk": 22, "run": 30, "jump": 4, "sit": 3}), "folder", 0.25)
    walk = lambda d: d[d["class_name"] == "walk"].reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(walk(out), walk(more))  # a class's hold-out ignores the other classes


def test_index_holds_out_validation_of_real_layouts(tmp_path):
    """Through build_index on the fabricated UCF101 list: no test video in train or val, and the
    official test list is the index's test split exactly."""
    root = tmp_path / "UCF101"
    make_ucf101(root)
    for split in (1, 2, 3):
        df = build_index("ucf101", root, split, val_ratio=0.5)
        listed = [line.split()[0] for line in (root / f"testlist{split:02d}.txt").read_text().splitlines()]
        test = set(df[df["split"] == "test"]["video_id"])
        assert test == {p[:-4] for p in listed}
        assert not test & set(df[df["split"] != "test"]["video_id"])


def test_dataset_config_val_ratio_checked():
    from twostream.config import ConfigError
    from twostream.datasets import DatasetConfig

    with pytest.raises(ConfigError, match="dataset.val_ratio"):
        DatasetConfig(val_ratio=1.0)


# ----------------------------------------------------------------------------- synthetic + CLI


def test_synthetic_kind_reads_ucf_layout_and_classes_csv(tmp_path):
    root = tmp_path / "dataset"
    make_ucf101(root)
    pd.DataFrame({"class_name": UCF_CLASSES, "label": [0, 1, 2], "group": ["appearance", "motion", "motion"]}).to_csv(
        root / "classes.csv", index=False
    )
    (root / "vallist01.txt").write_text("YoYo/v_YoYo_g03_c01.avi 3\n")  # its own validation list
    (root / "trainlist01.txt").write_text(
        "".join(line for line in (root / "trainlist01.txt").read_text().splitlines(True) if "YoYo_g03" not in line))
    df = build_index("synthetic", root)
    assert dict(zip(df["video_id"], df["split"]))["YoYo/v_YoYo_g03_c01"] == "val"
    assert (df["split"] == "val").sum() == 1  # no hold-out from its training list
    assert list(df.columns) == INDEX_COLUMNS + ["group"]
    assert dict(zip(df["class_name"], df["group"])) == {
        "ApplyEyeMakeup": "appearance",
        "Basketball": "motion",
        "YoYo": "motion",
    }
    pd.DataFrame({"class_name": ["YoYo"], "group": ["x"]}).to_csv(root / "classes.csv", index=False)
    with pytest.raises(InputError, match=r"classes\.csv: no row for class 'ApplyEyeMakeup'"):
        build_index("synthetic", root)


def test_cli_index_then_decode(tmp_path):
    root = tmp_path / "UCF101"
    make_ucf101(root)
    out = tmp_path / "results" / "index.csv"
    params = json.dumps({"kind": "ucf101", "root": str(root), "split": 1, "test_ratio": 0.3, "splits_dir": ""})
    assert cli.main(["index", "--params", params, "--out", str(out)]) == 0
    df = read_index(out)
    assert len(df) == 9
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["dataset"]["kind"] == "ucf101" and meta["n_test"] == 3 and meta["n_classes"] == 3
    assert meta["n_val"] == 3 and meta["n_train"] == 3
    frames = tmp_path / "results" / "frames" / "shard-000.h5"
    rc = cli.main(["decode", "--params", json.dumps({"shards": 1, "short_side": 48, "codec": "jpeg"}),
                   "--index", str(out), "--shard", "shard-000", "--out", str(frames), "--no-progress"])  # fmt: skip
    assert rc == 0
    s = FrameShard(frames)
    assert sorted(s.videos["video_id"]) == sorted(df["video_id"])
    assert s.read("YoYo/v_YoYo_g01_c01", [0, 1, 2]).shape == (3, 48, 64, 3)


def test_cli_index_errors_one_line(tmp_path, capsys):
    root = tmp_path / "UCF101"
    make_ucf101(root)
    (root / "testlist01.txt").unlink()
    rc = cli.main(
        ["index", "--params", json.dumps({"kind": "ucf101", "root": str(root)}), "--out", str(tmp_path / "i.csv")]
    )
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"twostream: error: {root / 'testlist01.txt'}: missing UCF101 split file"]
    assert not (tmp_path / "i.csv").exists()
    assert cli.main(["index", "--params", json.dumps({"kind": "kinetics"}), "--out", str(tmp_path / "i.csv")]) == 2
    assert "dataset.kind: 'kinetics' is not one of" in capsys.readouterr().err
