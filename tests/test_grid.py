"""The experiment grid (twostream.grid): model names, cells of a config, what each model reads."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from twostream import grid
from twostream.config import ConfigError, stream_section

REPO = Path(__file__).resolve().parents[1]
BASE = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


@pytest.mark.parametrize("cell", [("conv", "res3", 0), ("conv3d_pool3d", "res3", 2), ("st_add", "res2+res3+res4", 1),
                                  ("conv", "res3+fc", 0), ("late_mean", "softmax", 12)])
def test_name_round_trip(cell):
    name = grid.model_name(*cell)
    assert name == "fusion-{}-{}-s{}".format(*cell)
    assert tuple(grid.parse_model(name)) == cell
    assert grid.parse_model(name).name == name


def test_streams_parse_to_themselves():
    for s in ("rgb", "flow"):
        assert grid.parse_model(s) == (s, "-", 0) and grid.parse_model(s).name == s


@pytest.mark.parametrize("bad", ["fusion-conv-res3", "fusion-conv-res3-0", "fusion-Conv-res3-s0", "conv-res3-s0",
                                 "fusion-conv-res3-s-1", "rgbx", ""])
def test_bad_names_are_one_line_errors(bad):
    with pytest.raises(ConfigError) as e:
        grid.parse_model(bad)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{bad}: not a model name") and "fusion-<method>-<position>-s<seed>" in msg


@pytest.mark.parametrize("cell", [("con-v", "res3", 0), ("conv", "res-3", 0), ("conv", "res3", -1), ("", "res3", 0)])
def test_parts_that_would_not_read_back_are_refused(cell):
    with pytest.raises(ConfigError, match="fusion cell"):
        grid.model_name(*cell)


def test_cells_by_hand():
    cfg = {"fusion": {"grid": {"methods": ["sum", "conv"], "positions": ["res3", "pool"], "seeds": [0, 1],
                               "extra": [{"method": "conv", "position": "res3", "seeds": [1, 2]},
                                         {"method": "late_mean", "position": "softmax"}]}}}
    assert grid.fusion_models(cfg) == [
        "fusion-sum-res3-s0", "fusion-sum-res3-s1", "fusion-sum-pool-s0", "fusion-sum-pool-s1",
        "fusion-conv-res3-s0", "fusion-conv-res3-s1", "fusion-conv-pool-s0", "fusion-conv-pool-s1",
        "fusion-conv-res3-s2",  # conv-res3-s1 of the extra entry is a repeat
        "fusion-late_mean-softmax-s0", "fusion-late_mean-softmax-s1",  # extra seeds default to grid.seeds
    ]
    assert grid.trained_models(cfg)[:2] == ["rgb", "flow"]
    assert grid.fusion_models({}) == []


def test_cells_of_the_default_config():
    g = BASE["fusion"]["grid"]
    want = {(m, p, s) for m in g["methods"] for p in g["positions"] for s in g["seeds"]}
    for e in g["extra"]:
        want |= {(e["method"], e["position"], s) for s in e.get("seeds", g["seeds"])}
    cells = grid.cells(BASE)
    assert set(cells) == want and len(cells) == len(want)
    names = grid.fusion_models(BASE)
    assert [grid.parse_model(n) for n in names] == cells


def test_shards_each_model_reads():
    assert grid.model_shards("rgb") == ("frames",)
    assert grid.model_shards("flow") == ("flow",)
    for name in grid.fusion_models(BASE):
        assert grid.model_shards(name) == ("frames", "flow")
    with pytest.raises(ConfigError, match="not a model name"):
        grid.model_shards("rgb_quirk")


def test_families_follow_the_fusion_module():
    fusion = pytest.importorskip("twostream.models.fusion")
    for k in ("SPATIAL_METHODS", "CROSS_METHODS", "LATE_METHODS", "LATE_POSITION"):
        assert getattr(grid, k) is getattr(fusion, k)  # one copy
    for m in fusion.LATE_METHODS:
        assert grid.family(m) == "late"
    for m in fusion.CROSS_METHODS:
        assert grid.family(m) == "cross"
    for m in fusion.SPATIAL_METHODS:
        assert grid.family(m) == "spatial"
    assert grid.family("rgb") == "stream"


def test_job_settings():
    cfg = copy.deepcopy(BASE)
    train = BASE["fusion"]["train"]
    assert yaml.safe_load(grid.fusion_train_params(cfg, "late_weighted")) == {"late_weights": train["late_weights"]}
    assert yaml.safe_load(grid.fusion_train_params(cfg, "conv")) == train
    for s in ("rgb", "flow"):
        assert yaml.safe_load(grid.stream_params(cfg, s)) == stream_section(cfg["train"], s)
    assert yaml.safe_load(grid.stream_params(cfg, "flow"))["epochs"] == BASE["train"]["flow"]["epochs"]


def test_visualized_models_end_with_the_control():
    cfg = copy.deepcopy(BASE)
    models = grid.visualized_models(cfg)
    assert models[-1] == grid.control_model(cfg) == cfg["visualize"]["control"]
    cfg["visualize"]["control"] = ""
    assert grid.visualized_models(cfg) == list(dict.fromkeys(cfg["visualize"]["models"]))
    cfg["visualize"]["models"] = ["rgb", "fusion-conv"]
    with pytest.raises(ConfigError, match="fusion-conv: not a model name"):
        grid.visualized_models(cfg)


def test_verified_models_are_the_trained_cells_not_shown():
    cfg = copy.deepcopy(BASE)
    shown = set(grid.visualized_models(cfg))
    verified = grid.verified_models(cfg)
    assert verified and not shown & set(verified)
    assert set(verified) | (shown & set(grid.trained_models(cfg))) == set(grid.trained_models(cfg))
    cfg["visualize"]["verify"]["models"] = ["fusion-sum-res2-s0", "rgb", "fusion-sum-res2-s0"]
    assert grid.verified_models(cfg) == ["fusion-sum-res2-s0"]  # rgb is visualized
    cfg["visualize"]["verify"]["models"] = ["fusion-sum"]
    with pytest.raises(ConfigError, match="fusion-sum: not a model name"):
        grid.verified_models(cfg)
    cfg["visualize"]["verify"]["enabled"] = False
    assert grid.verified_models(cfg) == [] and grid.untrained_models(cfg) == []


def test_untrained_control_is_one_parsed_cell_or_none():
    cfg = copy.deepcopy(BASE)
    assert grid.untrained_models(cfg) == [cfg["visualize"]["verify"]["untrained"]]
    cfg["visualize"]["verify"]["untrained"] = ""
    assert grid.untrained_models(cfg) == []
    cfg["visualize"]["verify"]["untrained"] = "conv-res3"
    with pytest.raises(ConfigError, match="not a model name"):
        grid.untrained_models(cfg)
