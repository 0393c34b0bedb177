"""The ``twostream visualize`` stage on tiny checkpoints and shards (layout, tables, errors)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pandas as pd
import torch

from twostream.cli import main as cli
from twostream.models import stream_model
from twostream.models.fusion import fuse_streams
from twostream.store import video_table_to_array, write_provenance
from twostream.visualize.stage import default_layers, selectivity

torch.set_num_threads(1)

L, S = 2, 16
CLASSES = pd.DataFrame({
    "label": [0, 1, 2, 3],
    "class_name": ["ColourYellow", "MotionLeft", "RedMovesLeft", "BlueMovesLeft"],
    "group": ["appearance", "motion", "spatiotemporal", "spatiotemporal"],
    "direction": ["random", "left", "left", "left"],
    "moving_rgb": ["215 195 40", "150 150 150", "190 40 40", "20 90 230"],
    "still_rgb": ["", "", "20 90 230", "190 40 40"],
})


def _shards(tmp_path, n_frames=4, per_class=2):
    """One frames and one flow shard of random validation and test videos."""
    rng = np.random.default_rng(0)
    rows, frows, fr, fl = [], [], [], []
    for label in range(4):
        for i in range(2 * per_class):
            base = dict(video_id=f"c{label}/v{i}", label=label, class_name=CLASSES.class_name[label],
                        split="val" if i % 2 else "test", fps=25.0, height=S, width=S)
            rows.append(dict(base, n_frames=n_frames, offset=len(fr) * n_frames))
            frows.append(dict(base, n_frames=n_frames - 1, offset=len(fl) * (n_frames - 1)))
            fr.append(rng.integers(0, 255, (n_frames, S, S, 3), dtype=np.uint8))
            fl.append(rng.integers(100, 156, (n_frames - 1, S, S, 2), dtype=np.uint8))
    paths = {}
    for kind, table, data in (("frames", rows, fr), ("flow", frows, fl)):
        p = tmp_path / kind / "shard-000.h5"
        p.parent.mkdir(parents=True)
        with h5py.File(p, "w") as f:
            f["videos"] = video_table_to_array(pd.DataFrame(table))
            f[kind] = np.concatenate(data)
            write_provenance(f, kind, {}, codec="raw", bound=20.0, storage="uint8")
        paths[kind] = str(p)
    return paths


def _checkpoint(tmp_path, name, model):
    d = tmp_path / "models" / name
    d.mkdir(parents=True)
    torch.save({"spec": model.spec, "model": model.state_dict(), "class_names": list(CLASSES.class_name),
                "data": {"modalities": list(model.modalities), "flow_length": L, "crop_size": S}},
               d / "checkpoint.pt")
    return str(d / "checkpoint.pt")


def _streams():
    torch.manual_seed(0)
    kw = dict(widths=[4, 4, 8, 8])
    return stream_model("rgb", 4, **kw), stream_model("flow", 4, flow_length=L, **kw)


PARAMS = {"steps": 4, "units_per_layer": 2, "test_clips_per_class": 1, "test_frames": 1,
          "verify": {"steps": 4, "seeds": 5, "other_seeds": 2, "penalties": [1.0]}}


def test_stage_writes_layers_tables_and_verification(tmp_path):
    shards = _shards(tmp_path)
    rgb, flow = _streams()
    ck = _checkpoint(tmp_path, "fusion-conv-res3-s0", fuse_streams(rgb, flow, "conv", "res3"))
    classes = tmp_path / "classes.csv"
    CLASSES.to_csv(classes, index=False)
    out = tmp_path / "vis" / "fusion-conv-res3-s0"
    rc = cli(["visualize", "--checkpoint", ck, "--frames", shards["frames"], "--flow", shards["flow"],
              "--classes", str(classes), "--out", str(out), "--params", json.dumps(PARAMS), "--control"])
    assert rc == 0
    layers = ["fuse", "rgb.res4", "rgb.res5", "output"]
    for l in layers:
        with h5py.File(out / "layers" / f"{l}.h5") as f:
            assert f["rgb"].shape == (2, 2, S, S, 3) and f["flow"].shape == (2, 2, L, S, S, 2)
            assert list(f["temporal_weights"][()]) == [0.0, 100.0]
            assert f.attrs["kind"] == "visualization" and json.loads(f.attrs["params"])["steps"] == 4
            assert f["rgb"][()].min() >= 0 and f["rgb"][()].max() <= 1
        assert (out / "layers" / f"{l}.png").stat().st_size > 0
    with h5py.File(out / "layers" / "output.h5") as f:  # one class per group
        assert list(f["units"][()]) == [0, 1]
    for png in ("overview.png", "classes.png"):
        assert (out / png).stat().st_size > 0
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == len(layers) * 2 * 2
    assert summary.selectivity.between(1, 4).all() and (summary.test_max.notna()).all()
    pos = summary.test_max > 0
    assert np.allclose(summary.reached_ratio[pos], (summary.activation / summary.test_max)[pos])
    assert summary.reached_ratio[~pos].isna().all()
    ver = pd.read_csv(out / "verification.csv").set_index("check")
    assert set(ver.index) == {"colour", "direction", "colocation"}
    # 5 seeds x 1 penalty per class group; direction is judged on the motion and spatiotemporal groups
    assert ver.runs.to_dict() == {"direction": 10, "colour": 5, "colocation": 5}
    assert (ver.role == "control").all()  # --control names the role; the expectation is the architecture's
    assert (ver.expected == "pass").all()  # conv after res3 is expected to bind
    assert (ver.passes + ver.inconclusive <= ver.runs).all()
    assert np.allclose(ver.rate, ver.passes / ver.runs) and ((ver.lo <= ver.rate) & (ver.rate <= ver.hi)).all()
    assert ver.loc["direction", "null_rate"] <= 0.5 and ver.loc["colocation", "null_rate"] < 0.2
    runs = pd.read_csv(out / "verification_runs.csv")
    assert len(runs) == ver.runs.sum() and set(runs.status) <= {"pass", "fail", "inconclusive"}

    # collect: the per-model tables concatenated
    out2 = tmp_path / "vis" / "rgb"
    ck2 = _checkpoint(tmp_path, "rgb", rgb)
    assert cli(["visualize", "--checkpoint", ck2, "--frames", shards["frames"], "--classes", str(classes),
                "--out", str(out2), "--params", json.dumps(PARAMS)]) == 0
    assert pd.read_csv(out2 / "verification.csv").check.tolist() == ["colour"]
    # verify-only (fewer seeds, no pictures) and the untrained control of the same checkpoint
    out3 = tmp_path / "vis" / "verified" / "fusion-conv-res3-s0"
    assert cli(["visualize", "--verify-only", "--checkpoint", ck, "--classes", str(classes), "--out", str(out3),
                "--params", json.dumps(PARAMS)]) == 0
    assert not (out3 / "summary.csv").exists() and not (out3 / "layers").exists()
    assert pd.read_csv(out3 / "verification.csv").set_index("check").runs.to_dict() == {
        "direction": 4, "colour": 2, "colocation": 2}
    out4 = tmp_path / "vis" / "untrained" / "fusion-conv-res3-s0"
    assert cli(["visualize", "--untrained", "--checkpoint", ck, "--classes", str(classes), "--out", str(out4),
                "--name", "fusion-conv-res3-s0-untrained", "--params", json.dumps(PARAMS)]) == 0
    unt = pd.read_csv(out4 / "verification.csv")
    assert (unt.expected == "fail").all() and (unt.role == "control").all() and (unt.runs == [10, 5, 5]).all()
    assert set(unt.model) == {"fusion-conv-res3-s0-untrained"}
    s_all, v_all = tmp_path / "summary.csv", tmp_path / "verification.csv"
    assert cli(["visualize", "--collect", str(out), str(out2), "--verified", str(out3), str(out4),
                "--summary", str(s_all), "--verification", str(v_all)]) == 0
    assert set(pd.read_csv(s_all).model) == {"fusion-conv-res3-s0", "rgb"}
    v = pd.read_csv(v_all)
    assert len(v) == 4 + 3 + 3 and set(v.role) == {"control", "model"}
    assert set(v.model) == {"fusion-conv-res3-s0", "rgb", "fusion-conv-res3-s0-untrained"}


def test_stage_errors_are_one_line(tmp_path, capsys):
    rc = cli(["visualize", "--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "none.pt" in err and len(err.splitlines()) == 1
    rgb, _ = _streams()
    ck = _checkpoint(tmp_path, "rgb", rgb)
    rc = cli(["visualize", "--checkpoint", ck, "--out", str(tmp_path / "o"), "--params", '{"stepz": 3}'])
    assert rc == 2 and "stepz" in capsys.readouterr().err
    rc = cli(["visualize", "--checkpoint", ck, "--out", str(tmp_path / "o"), "--params", '{"layers": ["res9"]}'])
    assert rc == 2 and "res9" in capsys.readouterr().err
    rc = cli(["visualize", "--collect", str(tmp_path / "missing"), "--summary", str(tmp_path / "s.csv")])
    assert rc == 2 and "missing" in capsys.readouterr().err


def test_default_layers_follow_the_model_kind():
    rgb, flow = _streams()
    assert default_layers(rgb) == ["conv1", "res2", "res3", "res4", "res5", "output"]
    assert default_layers(fuse_streams(*_streams(), "sum", "res3")) == ["fuse", "rgb.res4", "rgb.res5", "output"]
    assert default_layers(fuse_streams(*_streams(), "conv", "pool")) == ["fuse", "output"]
    assert default_layers(fuse_streams(*_streams(), "st_add", "res2+res3")) == [
        "connections.res2", "connections.res3", "rgb.res4", "rgb.res5", "output"]
    assert default_layers(fuse_streams(*_streams(), "late_mean", "softmax")) == ["rgb.res5", "flow.res5", "output"]


def test_selectivity_counts_classes_above_half_the_best():
    labels = np.array([0, 0, 1, 1, 2, 2])
    acts = np.array([[4.0, 1.0], [4.0, 1.0], [0.1, 1.0], [0.1, 1.0], [2.5, 0.9], [1.5, 0.9]])
    means, n = selectivity(acts, labels)
    assert means.shape == (2, 3)
    assert n.tolist() == [2, 3]  # unit 0: classes 0 and 2 (2.0 >= 2.0); unit 1: generic
    assert selectivity(np.zeros((2, 1)), np.array([0, 1]))[1].tolist() == [0]  # dead unit
    # class scores may be negative: half of the range from the lowest class
    assert selectivity(np.array([[-4.0], [-3.0], [2.0]]), np.array([0, 1, 2]))[1].tolist() == [1]
