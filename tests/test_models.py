"""ResNet backbones, named stages, streams, cross-modality init, registry."""

import numpy as np
import pytest
import torch

from twostream.errors import InputError
from twostream.models import (
    STAGES, build_model, call_model, cross_modality_weight, load_model, load_pretrained, resnet,
    stream_model,
)
from twostream.models.streams import flow_channels, flow_stack_to_channels

torch.set_num_threads(1)


@pytest.mark.parametrize("arch,n_params", [("resnet18", 11689512), ("resnet34", 21797672), ("resnet50", 25557032)])
def test_imagenet_archs_match_torchvision_parameter_counts(arch, n_params):
    # torchvision's published parameter counts for 1000 classes
    m = resnet(arch)
    assert sum(p.numel() for p in m.parameters()) == n_params
    names = set(m.state_dict())
    for key in ("conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer4.1.bn2.weight", "fc.bias"):
        assert key in names
    if arch != "resnet18":
        assert "layer2.0.downsample.0.weight" in names and "layer2.0.downsample.1.running_var" in names


def test_small_stage_shapes_channels_and_strides():
    m = resnet("small", in_channels=3, num_classes=7).eval()
    x = torch.rand(2, 3, 64, 64)
    acts = m.forward_stages(x)
    assert list(acts) == list(STAGES)
    expected = {"conv1": (16, 32), "res2": (16, 32), "res3": (32, 16), "res4": (64, 8), "res5": (64, 4)}
    for s, (c, side) in expected.items():
        assert acts[s].shape == (2, c, side, side)
        assert m.stage_channels[s] == c
        assert 64 // m.stage_strides[s] == side
    assert acts["pool"].shape == (2, 64) and acts["fc"].shape == (2, 7)
    torch.testing.assert_close(acts["fc"], m(x))


def test_resnet50_strides_and_channels():
    m = resnet("resnet50", num_classes=5).eval()
    acts = m.forward_stages(torch.rand(1, 3, 64, 64), upto="res5")
    assert list(acts) == ["conv1", "res2", "res3", "res4", "res5"]
    for s, a in acts.items():
        assert a.shape[1] == m.stage_channels[s]
        assert a.shape[-1] == 64 // m.stage_strides[s]
    assert m.stage_channels["res5"] == 2048


@pytest.mark.parametrize("stage", STAGES)
def test_forward_to_then_from_equals_forward(stage):
    torch.manual_seed(0)
    m = resnet("small", num_classes=4).eval()
    x = torch.rand(3, 3, 64, 64)
    torch.testing.assert_close(m.forward_from(m.forward_to(x, stage), stage), m(x))


def test_run_stage_by_stage_equals_forward():
    m = resnet("small", num_classes=3).eval()
    x = torch.rand(2, 3, 64, 64)
    h = m.normalize(x)
    for s in STAGES:
        h = m.run_stage(s, h)
    torch.testing.assert_close(h, m(x))


def test_unknown_stage_and_arch():
    m = resnet("small")
    with pytest.raises(ValueError, match="res6"):
        m.forward_to(torch.rand(1, 3, 64, 64), "res6")
    with pytest.raises(ValueError, match="vgg"):
        resnet("vgg")


def test_cross_modality_weight_averages_rgb_and_replicates():
    w = torch.randn(8, 3, 3, 3)
    out = cross_modality_weight(w, 20)
    assert out.shape == (8, 20, 3, 3)
    for c in range(20):
        torch.testing.assert_close(out[:, c], w.mean(dim=1))


def test_motion_stream_from_rgb_weights(tmp_path):
    rgb = stream_model("rgb", 10, arch="resnet18")
    path = tmp_path / "imagenet.pth"
    torch.save(rgb.state_dict(), path)  # a torchvision-named state_dict file
    motion = stream_model("flow", 4, arch="resnet18", flow_length=5, pretrained=str(path))
    assert motion.conv1.weight.shape == (64, 10, 7, 7)
    torch.testing.assert_close(motion.conv1.weight[:, 7], rgb.conv1.weight.mean(1))
    torch.testing.assert_close(motion.layer3[1].conv2.weight, rgb.layer3[1].conv2.weight)
    assert motion.fc.weight.shape == (4, 512)  # fc not copied (different class count)


def test_pretrained_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        stream_model("rgb", 3, pretrained=str(tmp_path / "nope.pth"))
    bad = tmp_path / "bad.pth"
    bad.write_text("not torch")
    with pytest.raises(InputError, match="bad.pth"):
        stream_model("rgb", 3, pretrained=str(bad))
    small = resnet("small").state_dict()
    with pytest.raises(InputError, match="shape"):
        load_pretrained(resnet("resnet18"), small)


def test_streams_normalize_inputs_and_channel_order():
    rgb = stream_model("rgb", 3)
    flow = stream_model("flow", 3, flow_length=4, flow_std=2.0, flow_mean_subtraction=False)
    assert rgb.modalities == ("rgb",) and flow.modalities == ("flow",)
    x = torch.full((1, 3, 8, 8), 0.485)
    assert abs(float(rgb.normalize(x)[0, 0].mean())) < 1e-6
    assert float(flow.normalize(torch.full((1, 8, 2, 2), 3.0)).mean()) == pytest.approx(1.5)
    # camera-motion compensation: each field's mean flow is removed, object motion kept
    centred = stream_model("flow", 3, flow_length=1)
    assert centred.spec["flow_mean_subtraction"] is True
    f = torch.full((1, 2, 4, 4), 0.5)  # camera moves right by 0.5 px/frame
    f[0, 0, 1, 1] = 2.5  # one pixel moves right by 2.5
    out = centred.normalize(f)
    assert float(out[0, 1].abs().max()) == 0 and float(out[0, 0].sum()) == pytest.approx(0, abs=1e-6)
    assert float(out[0, 0, 1, 1]) == pytest.approx(2.0 - 2.0 / 16)
    stack = np.zeros((4, 2, 2, 2), np.float32)
    stack[:, :, :, 0] = np.arange(4)[:, None, None]  # x of field k = k
    stack[:, :, :, 1] = -1
    ch = flow_stack_to_channels(stack)
    assert flow_channels(2) == ["x0", "y0", "x1", "y1"]
    assert ch[:, 0, 0].tolist() == [0, -1, 1, -1, 2, -1, 3, -1]


def test_build_and_load_model_roundtrip(tmp_path):
    m = stream_model("flow", 5, flow_length=3, dropout=0.3)
    path = tmp_path / "c.pt"
    torch.save({"spec": m.spec, "model": m.state_dict()}, path)
    m2, _ = load_model(path)
    x = torch.randn(2, 6, 64, 64)
    m.eval()
    torch.testing.assert_close(call_model(m2, {"flow": x}), m(x))
    with pytest.raises(InputError, match="unknown model kind"):
        build_model({"kind": "nope"})
    with pytest.raises(InputError, match="not found"):
        load_model(tmp_path / "missing.pt")
