"""The shipped configs mean what they say: laid over config/config.yaml as Snakemake lays
them, the real-data configs build true ResNets (torchvision's parameter counts) and their
effective settings are the file's own (no synthetic per-stream override leaks in)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from twostream.config import STREAM_KEYS, stream_section
from twostream.models import stream_model

REPO = Path(__file__).resolve().parents[1]
BASE = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
REAL = {"ucf101": 101, "hmdb51": 51}  # config -> class count
# torchvision's ImageNet models (1000 classes): parameters, fc input width, conv1 filters
TORCHVISION = {"resnet18": (11_689_512, 512), "resnet50": (25_557_032, 2048)}


def laid_over_base(name: str) -> tuple[dict, dict]:
    from snakemake.utils import update_config

    own = yaml.safe_load((REPO / "config" / f"{name}.yaml").read_text())
    merged = copy.deepcopy(BASE)
    update_config(merged, copy.deepcopy(own))
    return own, merged


def expected_params(arch: str, classes: int, in_channels: int) -> int:
    """torchvision's count with the classifier resized and conv1 (64 7x7 filters) widened."""
    total, fc_in = TORCHVISION[arch]
    return total - (fc_in * 1000 + 1000) + (fc_in * classes + classes) + 64 * 7 * 7 * (in_channels - 3)


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", list(REAL))
def test_real_config_streams_are_true_resnets(name):
    _, cfg = laid_over_base(name)
    for stream in STREAM_KEYS:
        sec = stream_section(cfg["train"], stream)
        assert sec["arch"] in TORCHVISION
        model = stream_model(stream, REAL[name], arch=sec["arch"], flow_length=sec["flow_length"],
                             widths=sec.get("widths"), blocks=sec.get("blocks"))  # fmt: skip
        in_ch = 3 if stream == "rgb" else 2 * sec["flow_length"]
        assert n_params(model) == expected_params(sec["arch"], REAL[name], in_ch), (name, stream)


def test_widths_and_blocks_shape_small_only():
    wide = dict(widths=[8, 8, 8, 8], blocks=[1, 1, 1, 1])
    assert n_params(stream_model("rgb", 1000, arch="resnet18", **wide)) == 11_689_512
    assert n_params(stream_model("rgb", 1000, arch="resnet50", **wide)) == 25_557_032
    # control: they do shape the small network
    assert n_params(stream_model("rgb", 10, arch="small", **wide)) < n_params(stream_model("rgb", 10, arch="small"))


@pytest.mark.parametrize("name", list(REAL))
def test_real_config_effective_settings_are_the_files(name):
    own, cfg = laid_over_base(name)
    for stream in STREAM_KEYS:
        eff = stream_section(cfg["train"], stream)
        mine = {k: v for k, v in own["train"].items() if k not in STREAM_KEYS}
        mine.update(own["train"].get(stream) or {})
        for key, value in mine.items():
            assert eff[key] == value, f"{name}: train.{stream}.{key} is {eff[key]!r}, the file says {value!r}"
        # every per-stream override of the synthetic default is one the file sets itself
        leaked = set(BASE["train"].get(stream) or {}) - set(mine)
        assert not leaked, f"{name}: config/config.yaml's train.{stream} sets {sorted(leaked)} for this run"
    assert "fusion" in own and cfg["fusion"]["grid"] == own["fusion"]["grid"]
    for key, value in own["fusion"]["train"].items():
        assert cfg["fusion"]["train"][key] == value
    assert cfg["decode"]["max_missing_frames"] == -1  # truncated clips kept
    assert cfg["decode"]["codec"] == "jpeg" and cfg["visualize"]["verify"]["enabled"] is False


def test_the_leak_check_can_fail():
    """Control: a real config without its per-stream resets inherits the synthetic epochs."""
    own, _ = laid_over_base("ucf101")
    own["train"]["rgb"] = {"lr": 0.001, "dropout": 0.8}
    from snakemake.utils import update_config

    merged = copy.deepcopy(BASE)
    update_config(merged, own)
    assert stream_section(merged["train"], "rgb")["epochs"] == BASE["train"]["rgb"]["epochs"] != own["train"]["epochs"]
