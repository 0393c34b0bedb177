"""ImageNet weights in torchvision's format (train.pretrained).

torchvision cannot be installed here, so the fixture is written from its published
architecture (torchvision/models/resnet.py: names and shapes of ``resnet18``/``resnet50``
state_dicts), independently of our ResNet code, with random values."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch

from twostream.errors import InputError
from twostream.models import stream_model

# arch -> (block, blocks per layer, expansion)
PLANS = {"resnet18": ("basic", (2, 2, 2, 2), 1), "resnet50": ("bottleneck", (3, 4, 6, 3), 4)}


def torchvision_shapes(arch: str, num_classes: int = 1000) -> "OrderedDict[str, tuple]":
    """Keys and shapes of torchvision's ``resnet18()`` / ``resnet50()`` state_dict."""
    kind, blocks, exp = PLANS[arch]
    out: OrderedDict[str, tuple] = OrderedDict()

    def bn(name, c):
        for k in ("weight", "bias", "running_mean", "running_var"):
            out[f"{name}.{k}"] = (c,)
        out[f"{name}.num_batches_tracked"] = ()

    out["conv1.weight"] = (64, 3, 7, 7)
    bn("bn1", 64)
    inplanes = 64
    for i, (planes, n) in enumerate(zip((64, 128, 256, 512), blocks), start=1):
        for j in range(n):
            p = f"layer{i}.{j}"
            stride = 2 if (i > 1 and j == 0) else 1
            if kind == "basic":
                out[f"{p}.conv1.weight"] = (planes, inplanes, 3, 3)
                bn(f"{p}.bn1", planes)
                out[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
                bn(f"{p}.bn2", planes)
            else:
                out[f"{p}.conv1.weight"] = (planes, inplanes, 1, 1)
                bn(f"{p}.bn1", planes)
                out[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
                bn(f"{p}.bn2", planes)
                out[f"{p}.conv3.weight"] = (planes * exp, planes, 1, 1)
                bn(f"{p}.bn3", planes * exp)
            if j == 0 and (stride != 1 or inplanes != planes * exp):
                out[f"{p}.downsample.0.weight"] = (planes * exp, inplanes, 1, 1)
                bn(f"{p}.downsample.1", planes * exp)
            inplanes = planes * exp
    out["fc.weight"] = (num_classes, 512 * exp)
    out["fc.bias"] = (num_classes,)
    return out


def fake_imagenet(arch: str) -> "OrderedDict[str, torch.Tensor]":
    g = torch.Generator().manual_seed(0)
    return OrderedDict(
        (k, torch.tensor(7, dtype=torch.long) if k.endswith("num_batches_tracked") else torch.randn(s, generator=g))
        for k, s in torchvision_shapes(arch).items()
    )


@pytest.mark.parametrize("arch, n", [("resnet18", 11_689_512), ("resnet50", 25_557_032)])
def test_our_resnets_have_torchvisions_keys_and_shapes(arch, n):
    shapes = torchvision_shapes(arch)
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    assert sum(torch.Size(s).numel() for k, s in shapes.items() if not k.endswith(buffers)) == n  # torchvision's
    ours = stream_model("rgb", 1000, arch=arch).state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == dict(shapes)


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "resnet18-imagenet.pth"
    state = fake_imagenet("resnet18")
    torch.save(state, path)
    return path, state


def test_appearance_stream_loads_every_weight_but_the_classifier(resnet18_file):
    path, state = resnet18_file
    model = stream_model("rgb", 51, arch="resnet18", pretrained=str(path))
    got = model.state_dict()
    for k, v in state.items():
        if k.startswith("fc."):
            assert got[k].shape[0] == 51  # a new classifier for 51 classes
        else:
            assert torch.equal(got[k], v), k
    control = stream_model("rgb", 51, arch="resnet18")  # control: without the file the weights differ
    assert not torch.equal(control.state_dict()["layer3.1.conv2.weight"], state["layer3.1.conv2.weight"])


def test_motion_stream_gets_cross_modality_init(resnet18_file):
    path, state = resnet18_file
    L = 10
    model = stream_model("flow", 51, arch="resnet18", flow_length=L, pretrained=str(path))
    w = model.state_dict()["conv1.weight"]
    assert w.shape == (64, 2 * L, 7, 7)
    mean = state["conv1.weight"].mean(dim=1, keepdim=True)
    for c in range(2 * L):  # the RGB filters averaged over R, G, B, the same on every flow channel
        torch.testing.assert_close(w[:, c : c + 1], mean)
    assert torch.equal(model.state_dict()["layer4.1.bn2.running_var"], state["layer4.1.bn2.running_var"])


def test_a_file_of_another_architecture_is_a_clear_error(resnet18_file, tmp_path):
    path, state = resnet18_file
    with pytest.raises(InputError) as e:
        stream_model("rgb", 51, arch="resnet50", pretrained=str(path))
    msg = str(e.value)
    assert msg.startswith(f"{path}: not resnet50 weights: ") and "\n" not in msg
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(InputError, match="junk.pth: not a readable torch state_dict"):
        stream_model("rgb", 51, arch="resnet18", pretrained=str(junk))
