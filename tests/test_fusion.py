"""Fusion layers and fused two-stream networks: shapes, exact init identities, errors."""

import copy
import dataclasses
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from twostream.config import ConfigError
from twostream.fusion_train import build_optimizer, train_config
from twostream.models import build_model, stream_model
from twostream.models.fusion import (
    _STAGE_ATTRS, BilinearFusion, ConcatFusion, Conv3dFusion, ConvFusion, CrossConnection, FusionNet, MaxFusion, SumFusion,
    TemporalConv, count_parameters, fuse_streams, known_methods, late_combine, parse_position, temporal_max_pool,
    uses_clips,
)

torch.set_num_threads(1)
K, L = 5, 2


@pytest.fixture(scope="module")
def streams():
    torch.manual_seed(0)
    rgb = stream_model("rgb", K, arch="small", flow_length=L, dropout=0.5)
    flow = stream_model("flow", K, arch="small", flow_length=L, dropout=0.5)
    # non-trivial BN statistics, so identities are not satisfied by accident
    for m in (rgb, flow):
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
                mod.bias.data.uniform_(-0.1, 0.3)
    return rgb.eval(), flow.eval()


def clip(b=2, t=3, size=32):
    g = torch.Generator().manual_seed(1)
    return torch.rand(b, t, 3, size, size, generator=g), torch.randn(b, t, 2 * L, size, size, generator=g)


def net(streams, method, position, **kw):
    rgb, flow = streams
    return fuse_streams(copy.deepcopy(rgb), copy.deepcopy(flow), method, position, **kw).eval()


def test_sum_max_layers():
    a, m = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3)
    torch.testing.assert_close(SumFusion()(a, m), a + m)
    out = MaxFusion()(a, m)
    assert torch.equal(out, torch.where(a > m, a, m))
    with pytest.raises(ValueError, match="equal shapes"):
        SumFusion()(a, m[:, :3])


def test_conv_fusion_initialised_as_sum_layer_and_vectors():
    a, m = torch.rand(2, 6, 5, 5), torch.rand(2, 6, 5, 5)  # post-ReLU activations
    conv = ConvFusion(6, 6, init="sum")
    torch.testing.assert_close(conv(a, m), a + m)
    torch.testing.assert_close(conv(a[:, :, 0, 0], m[:, :, 0, 0]), a[:, :, 0, 0] + m[:, :, 0, 0])
    weighted = ConvFusion(6, 6, init="sum", weights=(0.25, 0.75))
    torch.testing.assert_close(weighted(a, m), 0.25 * a + 0.75 * m)
    project = ConvFusion(6, 4, init="random", relu=False)
    assert project(a, m[:, :4]).shape == (2, 6, 5, 5)
    with pytest.raises(ValueError, match="equal channels"):
        ConvFusion(6, 4, init="sum")


def test_conv_fusion_is_relu_of_the_1x1_conv_and_conv_linear_is_not():
    torch.manual_seed(3)
    a, m = torch.rand(2, 4, 3, 3), torch.rand(2, 4, 3, 3)
    conv, linear = ConvFusion(4, 4), ConvFusion(4, 4, relu=False)
    w, bias = torch.randn(4, 8), torch.randn(4)
    for f in (conv, linear):
        with torch.no_grad():
            f.conv.weight.copy_(w[:, :, None, None])
            f.conv.bias.copy_(bias)
    # by hand: W [a; m] + b at every location
    lin = torch.einsum("oc,bchw->bohw", w, torch.cat([a, m], 1)) + bias[None, :, None, None]
    assert (lin < 0).any()  # control: the linear map does go negative here
    torch.testing.assert_close(linear(a, m), lin)
    torch.testing.assert_close(conv(a, m), lin.clamp(min=0))
    assert (conv(a, m) >= 0).all()


def test_concat_layer_stacks_channels():
    a, m = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3)
    out = ConcatFusion()(a, m)
    assert torch.equal(out[:, :4], a) and torch.equal(out[:, 4:], m)
    assert ConcatFusion()(a[:, :, 0, 0], m[:, :, 0, 0]).shape == (2, 8)


def test_bilinear_dims_and_value():
    a, m = torch.rand(2, 3, 4, 4), torch.rand(2, 5, 4, 4)
    full = BilinearFusion(3, 5)
    y = full(a, m)
    assert y.shape == (2, 15) and full.out_features == 15
    # by hand: mean over locations of the outer product, signed sqrt, L2 normalised
    ref = torch.einsum("bchw,bdhw->bcd", a, m).flatten(1) / 16
    ref = ref.sqrt()
    torch.testing.assert_close(y, ref / ref.norm(dim=1, keepdim=True), atol=1e-5, rtol=1e-4)
    reduced = BilinearFusion(3, 5, dim=2)
    assert reduced(a, m).shape == (2, 4) and reduced.out_features == 4
    torch.testing.assert_close(reduced(a, m).norm(dim=1), torch.ones(2))


def test_cross_connections_have_no_weights_and_follow_the_equations():
    a, m = torch.randn(2, 4, 3, 3), torch.rand(2, 4, 3, 3)
    add, mul = CrossConnection("add", 4), CrossConnection("mul", 4)
    assert count_parameters(add) == count_parameters(mul) == 0
    torch.testing.assert_close(add(a, m), a + m)
    torch.testing.assert_close(mul(a, m), a * m)
    torch.testing.assert_close(mul(a, torch.ones_like(m)), a)
    assert torch.equal(mul(a, torch.zeros_like(m)), torch.zeros_like(a))
    with pytest.raises(ValueError, match="equal shapes"):
        add(a, m[:, :3])


def test_temporal_conv_is_identity_at_init_and_mixes_frames():
    b, t, c = 2, 3, 4
    x = torch.randn(b * t, c, 5, 5)
    tc = TemporalConv(c)
    torch.testing.assert_close(tc(x, t), x)
    with torch.no_grad():  # taps [1, 0, 0]: frame i gets frame i - 1 (zero before the first)
        tc.conv.weight.zero_()
        tc.conv.weight[:, :, 0, 0, 0] = torch.eye(c)
    clip = x.reshape(b, t, c, 5, 5)
    ref = torch.cat([torch.zeros_like(clip[:, :1]), clip[:, :-1]], dim=1).flatten(0, 1)
    torch.testing.assert_close(tc(x, t), ref)
    assert uses_clips("st_add_time") and uses_clips("conv_pool3d") and not uses_clips("st_add")


def test_conv3d_fusion_on_static_frames_equals_sum():
    a = torch.rand(2, 4, 1, 5, 5).repeat(1, 1, 3, 1, 1)  # post-ReLU activations
    m = torch.rand(2, 4, 1, 5, 5).repeat(1, 1, 3, 1, 1)
    torch.testing.assert_close(Conv3dFusion(4, 4)(a, m), a + m)
    # a ReLU follows the conv, as in 2D conv fusion
    torch.testing.assert_close(Conv3dFusion(4, 4)(-a, -m), torch.zeros_like(a))


def test_conv3d_kernel_option_and_errors():
    a = torch.rand(1, 4, 1, 5, 5).repeat(1, 1, 5, 1, 1)
    m = torch.rand(1, 4, 1, 5, 5).repeat(1, 1, 5, 1, 1)
    f = Conv3dFusion(4, 4, (0.25, 0.75), kernel=(5, 1, 1))
    assert f.conv.weight.shape == (4, 8, 5, 1, 1)
    torch.testing.assert_close(f(a, m), 0.25 * a + 0.75 * m)
    with pytest.raises(ConfigError, match="conv3d_kernel"):
        Conv3dFusion(4, 4, kernel=(2, 3, 3))
    from twostream.fusion_train import train_config

    with pytest.raises(ConfigError, match="fusion.train.conv3d_kernel"):
        train_config({"conv3d_kernel": [3, 3]})
    assert train_config({"train": {"epochs": 1}, "grid": {}}).epochs == 1


def test_temporal_max_pool():
    x = torch.randn(2, 3, 4, 6, 6)
    out = temporal_max_pool(x)
    assert out.shape == (2, 3, 6, 6)
    ref = F.max_pool2d(x.amax(dim=2), 3, 1, 1)
    torch.testing.assert_close(out, ref)


def test_late_combine_formulas():
    la, lm = torch.randn(3, K), torch.randn(3, K)
    pa, pm = la.softmax(-1), lm.softmax(-1)
    torch.testing.assert_close(late_combine(la, lm, "mean").exp(), (pa + pm) / 2)
    torch.testing.assert_close(late_combine(la, lm, "weighted", (1.0, 3.0)).exp(), (pa + 3 * pm) / 4)
    torch.testing.assert_close(late_combine(la, lm, "weighted", (1.0, 0.0)).exp(), pa)
    g = (pa * pm).sqrt()
    torch.testing.assert_close(late_combine(la, lm, "geometric").exp(), g / g.sum(-1, keepdim=True))
    with pytest.raises(ConfigError, match="late_weights"):
        late_combine(la, lm, "weighted", (-1.0, 1.0))


@pytest.mark.parametrize("position", ["conv1", "res3", "res5", "pool"])
def test_conv_fusion_net_equals_sum_fusion_net_at_init(streams, position):
    rgb, flow = clip()
    torch.testing.assert_close(net(streams, "conv", position)(rgb, flow), net(streams, "sum", position)(rgb, flow))


def test_sum_fusion_net_by_hand(streams):
    rgb, flow = clip()
    r, f = streams
    out = net(streams, "sum", "res3")(rgb, flow)
    x, y = rgb.flatten(0, 1), flow.flatten(0, 1)
    ref = r.forward_from(r.forward_to(x, "res3") + f.forward_to(y, "res3"), "res3")
    torch.testing.assert_close(out, ref.reshape(2, 3, K).mean(1))


def test_residual_unit_split_equals_its_forward():
    from twostream.models.resnet import BasicBlock, Bottleneck

    torch.manual_seed(0)
    x, h = torch.rand(2, 8, 6, 6), torch.randn(2, 8, 6, 6)
    for unit in (BasicBlock(8, 8).eval(), Bottleneck(8, 4, 2, torch.nn.Conv2d(8, 16, 1, 2)).eval()):
        pre = unit.branch(x) + unit.shortcut(x)
        torch.testing.assert_close(unit(x), pre.clamp(min=0))
        torch.testing.assert_close(unit.preactivation(x), pre)
        torch.testing.assert_close(unit.preactivation(x, h), unit.branch(h) + unit.shortcut(x))


def _set_unit_output(unit, value: float):
    """Make a BasicBlock with a projection shortcut output the constant ReLU(2 * value)."""
    with torch.no_grad():
        for bn in (unit.bn2, unit.downsample[1]):
            bn.weight.zero_()
            bn.bias.fill_(value)


def st_res3_by_hand(r, f, rgb, flow, kind="add"):
    """One connection at res3 of one-unit stages, by the equation: the appearance unit
    res3a's sum before its ReLU plus (times) the motion's res3a output feeds the residual
    branch of the next appearance unit (res4a); its shortcut gets the appearance alone."""
    x, y = rgb.flatten(0, 1), flow.flatten(0, 1)
    a3_pre = r.layer2[0].preactivation(r.forward_to(x, "res2"))
    m3 = f.forward_to(y, "res3")
    branch_in = a3_pre + m3 if kind == "add" else a3_pre * m3
    a4 = r.layer3[0].preactivation(a3_pre.clamp(min=0), branch_in).clamp(min=0)
    out = r.forward_from(a4, "res4") + f(y)
    return out.reshape(*rgb.shape[:2], K).mean(1)


@pytest.mark.parametrize("kind", ["add", "mul"])
def test_st_connection_by_hand(streams, kind):
    r, f = streams
    rgb, flow = clip()
    n = net(streams, f"st_{kind}", "res3")
    with torch.no_grad():
        torch.testing.assert_close(n(rgb, flow), st_res3_by_hand(r, f, rgb, flow, kind))
    assert count_parameters(n) == count_parameters(r) + count_parameters(f)  # no learned connection weights


def test_st_add_with_zero_motion(streams):
    r, f = (copy.deepcopy(m) for m in streams)
    rgb, flow = clip()
    _set_unit_output(f.layer2[0], -1.0)  # the motion's res3a output is 0
    x, y = rgb.flatten(0, 1), flow.flatten(0, 1)
    assert torch.equal(f.forward_to(y, "res3"), torch.zeros_like(f.forward_to(y, "res3")))
    n = fuse_streams(copy.deepcopy(r), copy.deepcopy(f), "st_add", "res3").eval()
    two_stream = (r(x) + f(y)).reshape(2, 3, K).mean(1)
    with torch.no_grad():
        out = n(rgb, flow)
        torch.testing.assert_close(out, st_res3_by_hand(r, f, rgb, flow))
    # control: the branch reads the sum *before* the ReLU (NIPS 2016 eq.; the authors' code
    # adds into 'res3a', not 'res3a_relu'), so with negative pre-activations it is not the
    # appearance stream
    assert (r.layer2[0].preactivation(r.forward_to(x, "res2")) < 0).any()
    assert not torch.allclose(out, two_stream, atol=1e-4)
    # when the appearance unit's sum is non-negative, zero motion gives the two streams exactly
    with torch.no_grad():
        for bn in (r.layer2[0].bn2, r.layer2[0].downsample[1]):
            bn.weight.mul_(0.01)
            bn.bias.fill_(2.0)
    assert (r.layer2[0].preactivation(r.forward_to(x, "res2")) >= 0).all()
    n = fuse_streams(copy.deepcopy(r), copy.deepcopy(f), "st_add", "res3").eval()
    with torch.no_grad():
        torch.testing.assert_close(n(rgb, flow), (r(x) + f(y)).reshape(2, 3, K).mean(1))


def test_st_mul_with_motion_one_and_zero(streams):
    r, f = (copy.deepcopy(m) for m in streams)
    rgb, flow = clip()
    x = rgb.flatten(0, 1)
    one, zero, silent = copy.deepcopy(f), copy.deepcopy(f), copy.deepcopy(f)
    _set_unit_output(one.layer2[0], 0.5)  # res3a output 1 everywhere
    _set_unit_output(zero.layer2[0], -1.0)  # res3a output 0 everywhere
    _set_unit_output(silent.layer2[0], -1.0)
    with torch.no_grad():
        # m = 1: a * m = a, the additive connection with zero motion (motion scores aside)
        mul_one = fuse_streams(copy.deepcopy(r), one, "st_mul", "res3").eval()(rgb, flow)
        add_zero = fuse_streams(copy.deepcopy(r), silent, "st_add", "res3").eval()(rgb, flow)
        motion_one = one(flow.flatten(0, 1)).reshape(2, 3, K).mean(1)
        motion_zero = silent(flow.flatten(0, 1)).reshape(2, 3, K).mean(1)
        torch.testing.assert_close(mul_one - motion_one, add_zero - motion_zero)
        # m = 0: the residual branch of res4a sees zeros; its shortcut still the appearance
        mul_zero = fuse_streams(copy.deepcopy(r), zero, "st_mul", "res3").eval()(rgb, flow)
        a3 = r.forward_to(x, "res3")
        a4 = r.layer3[0].preactivation(a3, torch.zeros_like(a3)).clamp(min=0)
        ref = (r.forward_from(a4, "res4") + zero(flow.flatten(0, 1))).reshape(2, 3, K).mean(1)
        torch.testing.assert_close(mul_zero, ref)


def test_st_receiving_unit_in_the_same_stage_and_res5():
    torch.manual_seed(0)
    kw = dict(arch="small", flow_length=L, blocks=[2, 1, 1, 2])
    r, f = stream_model("rgb", K, **kw).eval(), stream_model("flow", K, **kw).eval()
    rgb, flow = clip()
    x, y = rgb.flatten(0, 1), flow.flatten(0, 1)
    n = fuse_streams(copy.deepcopy(r), copy.deepcopy(f), "st_add", "res2+res5").eval()
    with torch.no_grad():
        # res2a -> res2b (same stage), res5a -> res5b
        h = r.maxpool(r.forward_to(x, "conv1"))
        a_pre = r.layer1[0].preactivation(h)
        m = f.layer1[0](f.maxpool(f.forward_to(y, "conv1")))
        a2 = r.layer1[1].preactivation(a_pre.clamp(min=0), a_pre + m).clamp(min=0)
        a4 = r.layer3(r.layer2(a2))
        a5_pre = r.layer4[0].preactivation(a4)
        m5 = f.layer4[0](f.forward_to(y, "res4"))
        a5 = r.layer4[1].preactivation(a5_pre.clamp(min=0), a5_pre + m5).clamp(min=0)
        ref = (r.forward_from(a5, "res5") + f(y)).reshape(2, 3, K).mean(1)
        torch.testing.assert_close(n(rgb, flow), ref)
    r1, f1 = stream_model("rgb", K, arch="small", flow_length=L), stream_model("flow", K, arch="small", flow_length=L)
    with pytest.raises(ConfigError, match="res5 needs a second residual unit"):
        fuse_streams(r1, f1, "st_add", "res4+res5")


def test_st_time_is_st_at_init_and_its_temporal_conv_learns(streams):
    rgb, flow = clip(t=3)
    plain, timed = net(streams, "st_add", "res2+res3"), net(streams, "st_add_time", "res2+res3")
    with torch.no_grad():
        torch.testing.assert_close(timed(rgb, flow), plain(rgb, flow))
        timed.connections["res3"].time.conv.weight[:, :, 0].add_(0.1)  # mix in the previous frame
        assert not torch.allclose(timed(rgb, flow), plain(rgb, flow))
    c = streams[0].stage_channels
    assert count_parameters(timed) == count_parameters(plain) + sum(3 * c[s] ** 2 + c[s] for s in ("res2", "res3"))


def test_st_layers_are_visible_to_the_visualization(streams):
    from twostream.visualize.render import Probe
    from twostream.visualize.stage import default_layers

    rgb, flow = clip(t=1)
    n = net(streams, "st_add", "res2+res3")
    layers = default_layers(n) + ["flow.res3", "rgb.res3"]
    acts = Probe(n, layers, ("rgb", "flow"))({"rgb": rgb[:, 0], "flow": flow[:, 0]})
    x = rgb[:, 0]
    a2_pre = n.rgb.layer1[0].preactivation(n.rgb.maxpool(n.rgb.forward_to(x, "conv1")))
    with torch.no_grad():
        torch.testing.assert_close(acts["connections.res2"], a2_pre + n.flow.forward_to(flow[:, 0], "res2"))
    assert acts["rgb.res5"].shape[1] == n.rgb.stage_channels["res5"]
    from twostream.analysis.stage import analysis_layers, depth_of

    assert [depth_of(l, n) for l in analysis_layers(n)] == [2.0, 3.0, 4.0, 5.0, 6.0]
    cat = net(streams, "concat", "res3")  # the fusion layer of concat: 2C stacked channels
    acts = Probe(cat, ["fuse", "rgb.res4"], ("rgb", "flow"))({"rgb": rgb[:, 0], "flow": flow[:, 0]})
    assert acts["fuse"].shape[1] == 2 * cat.rgb.stage_channels["res3"]


def test_concat_widens_the_next_layer_and_starts_as_sum(streams):
    r, f = streams
    rgb, flow = clip()
    c = r.stage_channels
    for position, extra in [
        ("res3", c["res3"] * c["res4"] * 9 + c["res3"] * c["res4"]),  # res4a: 3x3 conv + projection shortcut
        ("conv1", c["conv1"] * c["res2"] * 9 + 2 * c["conv1"] * c["conv1"]),  # res2a: identity shortcut -> 1x1
        ("res5", c["res5"] * K),  # the classifier after pooling
        ("pool", c["pool"] * K),
    ]:
        cat, plain = net(streams, "concat", position), net(streams, "sum", position)
        assert count_parameters(cat) == count_parameters(plain) + extra, position
        with torch.no_grad():
            torch.testing.assert_close(cat(rgb, flow), plain(rgb, flow))
    cat = net(streams, "concat", "res3")
    assert cat.rgb.layer3[0].conv1.in_channels == 2 * c["res3"]
    assert cat.rgb.layer3[0].downsample[0].in_channels == 2 * c["res3"]
    assert net(streams, "concat", "pool").rgb.fc.in_features == 2 * c["pool"]
    # the motion half is a trained-from-here weight: changing it changes the output
    with torch.no_grad():
        cat.rgb.layer3[0].conv1.weight[:, c["res3"]:].mul_(-1.0)
        assert not torch.allclose(cat(rgb, flow), net(streams, "sum", "res3")(rgb, flow))
    # the 1x1 projection of the old concat is kept as concat_project: C channels after the fusion
    proj = net(streams, "concat_project", "res3")
    assert proj.rgb.layer3[0].conv1.in_channels == c["res3"]
    assert count_parameters(proj) == count_parameters(net(streams, "sum", "res3")) + 2 * c["res3"] ** 2 + c["res3"]


@pytest.mark.parametrize("how", ["mean", "weighted", "geometric"])
def test_late_fusion_net(streams, how):
    rgb, flow = clip()
    r, f = streams
    n = net(streams, f"late_{how}", "softmax", late_weights=(1.0, 1.5))
    out = n(rgb, flow)
    ref = late_combine(r(rgb.flatten(0, 1)), f(flow.flatten(0, 1)), how, (1.0, 1.5))
    torch.testing.assert_close(out, ref.reshape(2, 3, K).mean(1))
    assert count_parameters(n) == count_parameters(r) + count_parameters(f)


def test_conv3d_pool3d_equals_sum_pool3d_at_init_on_static_clips(streams):
    rgb, flow = clip(t=1)
    rgb, flow = rgb.repeat(1, 4, 1, 1, 1), flow.repeat(1, 4, 1, 1, 1)
    torch.testing.assert_close(
        net(streams, "conv3d_pool3d", "res3")(rgb, flow), net(streams, "sum_pool3d", "res3")(rgb, flow)
    )


def test_pool3d_merges_frames(streams):
    rgb, flow = clip(t=4)
    n = net(streams, "max_pool3d", "res4")
    out = n(rgb, flow)
    assert out.shape == (2, K)
    # the max over the 4 frames differs from averaging per-frame scores of max fusion
    assert not torch.allclose(out, net(streams, "max", "res4")(rgb, flow))


@pytest.mark.parametrize("method", known_methods())
def test_every_method_shapes_and_rebuild(streams, method, tmp_path):
    position = {"late": "softmax", "st": "res2+res3"}.get(method.split("_")[0], "res3")
    n = net(streams, method, position)
    rgb, flow = clip()
    out = n(rgb, flow)
    assert out.shape == (2, K) and torch.isfinite(out).all()
    # the checkpoint round trip the evaluate stage uses
    path = tmp_path / "ckpt.pt"
    torch.save({"spec": n.spec, "model": n.state_dict()}, path)
    from twostream.models import load_model

    again, _ = load_model(path)
    torch.testing.assert_close(again(rgb, flow), out)
    assert again.modalities == ("rgb", "flow")


def test_spatial_fusion_drops_motion_tower_after_fusion_point(streams):
    r, f = streams
    n = net(streams, "sum", "res3")
    motion_kept = sum(
        p.numel() for name, p in f.named_parameters() if name.split(".")[0] in ("conv1", "bn1", "layer1", "layer2")
    )
    assert count_parameters(n) == count_parameters(r) + motion_kept
    conv = net(streams, "conv", "res3")
    c = r.stage_channels["res3"]
    assert count_parameters(conv) == count_parameters(n) + 2 * c * c + c


@pytest.mark.parametrize("method", ["conv", "sum_pool3d"])
def test_plus_fc_keeps_the_motion_tower_and_adds_its_scores(streams, method):
    r, f = streams
    rgb, flow = clip()
    kept, plain = net(streams, method, "res3+fc"), net(streams, method, "res3")
    assert count_parameters(kept) == count_parameters(plain) + sum(
        p.numel() for name, p in f.named_parameters() if name.split(".")[0] in ("layer3", "layer4", "fc"))
    b, t = flow.shape[:2]
    motion = f(flow.flatten(0, 1)).reshape(b, t, -1).mean(1)
    with torch.no_grad():
        torch.testing.assert_close(kept(rgb, flow), plain(rgb, flow) + motion)
    assert fuse_streams(copy.deepcopy(r), copy.deepcopy(f), method, "res3+fc").spec["position"] == "res3+fc"


def test_4d_input_is_one_frame(streams):
    rgb, flow = clip(t=1)
    n = net(streams, "conv", "res2")
    torch.testing.assert_close(n(rgb[:, 0], flow[:, 0]), n(rgb, flow))


@pytest.mark.parametrize(
    "method,position,match",
    [
        ("avg", "res3", "unknown method 'avg'"),
        ("conv", "res6", "unknown position 'res6'"),
        ("conv", "fc", "unknown position 'fc'"),
        ("conv", "res2+res3", "unknown position 'res2\\+res3'"),
        ("conv", "pool+fc", "'\\+fc' needs a fusion stage before pooling"),
        ("st_add", "res3+fc", "unknown position 'fc'"),
        ("st_add", "res2+res9", "unknown position 'res9'"),
        ("st_add", "res2+res2", "repeats"),
        ("st_add", "conv1+res2", "unknown position 'conv1'"),
        ("st_mul_time", "pool", "unknown position 'pool'"),
        ("late_mean", "res3", "takes position 'softmax'"),
    ],
)
def test_unknown_method_or_position(method, position, match):
    with pytest.raises(ConfigError, match=match):
        parse_position(method, position)


def test_unknown_method_in_net_and_mismatched_streams(streams):
    r, f = streams
    with pytest.raises(ConfigError, match="unknown method"):
        FusionNet(copy.deepcopy(r), copy.deepcopy(f), "average", "res3")
    other = stream_model("flow", K + 1, arch="small", flow_length=L)
    with pytest.raises(ConfigError, match="disagree on classes"):
        FusionNet(copy.deepcopy(r), other, "sum", "res3")


def test_build_model_knows_fusion_kind(streams):
    n = net(streams, "sum", "res2")
    assert isinstance(build_model(n.spec), FusionNet)
    assert math.isclose(n.spec["conv_init"][0], 1.0)


# --------------------------------------------------------------------------- training on known-cause shards
# Four classes: (which colour moves: red | blue) x (direction: left | right). Two squares of
# colours with similar grey level, one moving and one still, at independent random places; the
# flow written is the true motion (no colour in it). A single frame cannot tell which square
# moves; the flow cannot tell its colour: only fusion of aligned feature maps can.
import json  # noqa: E402
from pathlib import Path  # noqa: E402

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from twostream.store import quantize_flow, video_table_to_array, write_provenance  # noqa: E402

ST_CLASSES = pd.DataFrame({
    "label": [0, 1, 2, 3],
    "class_name": ["RedMovesLeft", "RedMovesRight", "BlueMovesLeft", "BlueMovesRight"],
    "group": ["spatiotemporal"] * 4,
    "moving_colour": ["red", "red", "blue", "blue"],
    "direction": ["left", "right", "left", "right"],
})
RGB = {"red": (190, 40, 40), "blue": (20, 90, 230)}
SIZE, OBJ, SPEED, N_FRAMES = 32, 6, 2, 6


def conjunction_clip(label: int, rng: np.random.Generator):
    row = ST_CLASSES.iloc[label]
    mov, still = row.moving_colour, "blue" if row.moving_colour == "red" else "red"
    v = SPEED if row.direction == "right" else -SPEED
    p_mov, p_still = rng.integers(0, SIZE, 2), rng.integers(0, SIZE, 2)
    frames = np.empty((N_FRAMES, SIZE, SIZE, 3), np.uint8)
    flow = np.zeros((N_FRAMES - 1, SIZE, SIZE, 2), np.float32)
    for t in range(N_FRAMES):
        img = rng.normal(128, 10, (SIZE, SIZE, 3))
        img[np.ix_((np.arange(OBJ) + p_still[1]) % SIZE, (np.arange(OBJ) + p_still[0]) % SIZE)] = RGB[still]
        box = np.ix_((np.arange(OBJ) + p_mov[1]) % SIZE, (np.arange(OBJ) + p_mov[0] + v * t) % SIZE)
        img[box] = RGB[mov]
        if t < N_FRAMES - 1:
            flow[t][box] = (v, 0)
        frames[t] = np.clip(img, 0, 255).astype(np.uint8)
    return frames, flow


def write_conjunction_shards(out: Path, train_per_class: int = 40, test_per_class: int = 25, val_per_class: int = 8,
                             seed: int = 0):
    """frames/shard-000.h5, flow/shard-000.h5 (store.py layouts) and classes.csv under ``out``."""
    rng = np.random.default_rng(seed)
    (out / "frames").mkdir(parents=True)
    (out / "flow").mkdir(parents=True)
    ST_CLASSES.to_csv(out / "classes.csv", index=False)
    rows, frows, frames_all, flow_all = [], [], [], []
    for label in range(4):
        # val drawn last: the train and test clips are those of the two-split version
        for split, n in (("train", train_per_class), ("test", test_per_class), ("val", val_per_class)):
            for i in range(n):
                fr, fl = conjunction_clip(label, rng)
                base = dict(video_id=f"{ST_CLASSES.class_name[label]}/v_{split}_{i:03d}", label=label,
                            class_name=ST_CLASSES.class_name[label], split=split, fps=25.0, height=SIZE, width=SIZE)
                rows.append(dict(base, n_frames=N_FRAMES, offset=len(frames_all) * N_FRAMES))
                frows.append(dict(base, n_frames=N_FRAMES - 1, offset=len(flow_all) * (N_FRAMES - 1)))
                frames_all.append(fr)
                flow_all.append(fl)
    fp, op = out / "frames" / "shard-000.h5", out / "flow" / "shard-000.h5"
    with h5py.File(fp, "w") as f:
        f["videos"] = video_table_to_array(pd.DataFrame(rows))
        f.create_dataset("frames", data=np.concatenate(frames_all), chunks=(1, SIZE, SIZE, 3))
        write_provenance(f, "frames", {"test": True}, codec="raw")
    with h5py.File(op, "w") as f:
        f["videos"] = video_table_to_array(pd.DataFrame(frows))
        f.create_dataset("flow", data=quantize_flow(np.concatenate(flow_all), 20.0), chunks=(1, SIZE, SIZE, 2))
        write_provenance(f, "flow", {"test": True}, backend="truth", storage="uint8", bound=20.0,
                         quantization="round")
    return [str(fp)], [str(op)]


STREAM_SETTINGS = {"arch": "small", "epochs": 6, "batch_size": 16, "crop_size": SIZE, "flow_length": 2,
                   "segments": 2, "val_frames": 1, "scales": [1.0], "flip": False, "lr": 0.02}
FUSION_SETTINGS = {"epochs": 10, "batch_size": 16, "segments": 2, "scales": [1.0], "flip": False, "lr": 0.05}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Shards, and the two streams trained on them with the `twostream train` stage."""
    from twostream.cli import main

    root = tmp_path_factory.mktemp("conjunction")
    frames, flow = write_conjunction_shards(root / "data")
    for s in ("rgb", "flow"):
        assert main(["train", "--stream", s, "--frames", *frames, "--flow", *flow, "--out", str(root / "models" / s),
                     "--params", json.dumps(STREAM_SETTINGS), "--threads", "1"]) == 0
    return root, frames, flow


def train_and_evaluate(trained, method, position, settings=FUSION_SETTINGS):
    from twostream.cli import main

    root, frames, flow = trained
    name = f"fusion-{method}-{position}-s0"
    models = root / "models"
    assert main(["train-fusion", "--method", method, "--position", position, "--seed", "0",
                 "--rgb-checkpoint", str(models / "rgb" / "checkpoint.pt"),
                 "--flow-checkpoint", str(models / "flow" / "checkpoint.pt"), "--frames", *frames, "--flow", *flow,
                 "--out", str(models / name), "--params", json.dumps(settings), "--threads", "1"]) == 0
    assert main(["evaluate", "--checkpoint", str(models / name / "checkpoint.pt"), "--frames", *frames,
                 "--flow", *flow, "--out", str(root / "eval" / name), "--params", json.dumps({"frames": 2}),
                 "--threads", "1"]) == 0
    return name


def test_conv_fusion_at_spatial_stage_solves_conjunction_late_fusion_cannot(trained):
    from twostream.ablation import build_table, read_classes
    from twostream.cli import main

    root, frames, flow = trained
    for s in ("rgb", "flow"):
        assert main(["evaluate", "--checkpoint", str(root / "models" / s / "checkpoint.pt"), "--frames", *frames,
                     "--flow", *flow, "--out", str(root / "eval" / s), "--params", json.dumps({"frames": 2}),
                     "--threads", "1"]) == 0
    names = ["rgb", "flow", train_and_evaluate(trained, "late_mean", "softmax"),
             train_and_evaluate(trained, "conv", "res2"), train_and_evaluate(trained, "sum", "pool")]
    table = build_table(names, root / "eval", root / "models", read_classes(root / "data" / "classes.csv"))
    acc = table[table["split"] == "test"].set_index("model")
    # the motion stream knows the direction; nothing without fusion of maps knows the colour (chance 0.5,
    # 100 test clips: sd 0.05)
    assert acc.loc["flow", "st_direction"] >= 0.9
    late = acc.loc["fusion-late_mean-softmax-s0"]
    assert late["st_direction"] >= 0.9 and abs(late["st_moving_colour"] - 0.5) <= 0.2
    assert abs(acc.loc["fusion-sum-pool-s0", "st_moving_colour"] - 0.5) <= 0.2
    conv = acc.loc["fusion-conv-res2-s0"]
    assert conv["st_moving_colour"] >= 0.8 and conv["acc_spatiotemporal"] >= 0.75
    assert conv["acc_spatiotemporal"] >= late["acc_spatiotemporal"] + 0.25
    assert acc.loc["fusion-late_mean-softmax-s0", "train_seconds"] == 0
    assert acc.loc["fusion-conv-res2-s0", "train_seconds"] > 0


def test_fusion_training_resumes_to_the_same_weights(trained, monkeypatch):
    import twostream.engine as engine
    from twostream.models import read_checkpoint

    root = trained[0]
    settings = dict(FUSION_SETTINGS, epochs=2)
    train_and_evaluate(trained, "concat", "res3", settings)
    whole = read_checkpoint(root / "models" / "fusion-concat-res3-s0" / "checkpoint.pt")
    (root / "models" / "fusion-concat-res3-s0" / "checkpoint.pt").unlink()

    real, calls = engine.train_one_epoch, []

    def crash_in_second_epoch(*a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        return real(*a, **kw)

    monkeypatch.setattr(engine, "train_one_epoch", crash_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_and_evaluate(trained, "concat", "res3", settings)
    assert (root / "models" / "fusion-concat-res3-s0" / "resume.pt").exists()
    monkeypatch.setattr(engine, "train_one_epoch", real)
    train_and_evaluate(trained, "concat", "res3", settings)
    again = read_checkpoint(root / "models" / "fusion-concat-res3-s0" / "checkpoint.pt")
    assert len(again["history"]) == 2
    for k, v in whole["model"].items():
        torch.testing.assert_close(again["model"][k], v, rtol=0, atol=0, msg=k)


def test_train_fusion_cli_errors(trained, capsys):
    from twostream.cli import main

    root, frames, flow = trained
    base = ["train-fusion", "--rgb-checkpoint", str(root / "models" / "rgb" / "checkpoint.pt"),
            "--flow-checkpoint", str(root / "models" / "flow" / "checkpoint.pt"), "--frames", *frames,
            "--flow", *flow, "--out", str(root / "models" / "bad")]
    assert main(base + ["--method", "mean", "--position", "res3"]) == 2
    assert "unknown method 'mean'" in capsys.readouterr().err
    assert main(base + ["--method", "conv", "--position", "res7"]) == 2
    assert "unknown position 'res7'" in capsys.readouterr().err
    assert main(base + ["--method", "conv", "--position", "res3", "--params", '{"epochz": 1}']) == 2
    assert "fusion.train: unknown key(s) epochz" in capsys.readouterr().err
    swapped = list(base)
    swapped[2], swapped[4] = swapped[4], swapped[2]
    assert main(swapped + ["--method", "conv", "--position", "res3"]) == 2
    assert "expected the rgb stream checkpoint" in capsys.readouterr().err


def test_pool3d_segments_must_allow_temporal_pooling():
    from twostream.fusion_train import train_config

    assert train_config({"segments": 1}).pool3d_segments == 3
    with pytest.raises(ConfigError, match="fusion.train.pool3d_segments"):
        train_config({"pool3d_segments": 1})


def test_schema_lists_exactly_the_known_methods():
    from pathlib import Path

    import yaml

    schema = yaml.safe_load((Path(__file__).parents[1] / "workflow/schemas/config.schema.yaml").read_text())
    grid = schema["properties"]["fusion"]["properties"]["grid"]["properties"]
    assert grid["methods"]["items"]["enum"] == known_methods()
    assert grid["extra"]["items"]["properties"]["method"]["enum"] == known_methods()


def _fusion_cfg():
    return train_config(yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml").read_text())["fusion"])


def _one_training_step(model, freeze: bool):
    """An SGD step with the fusion stage's optimizer; returns every parameter and BN buffer before and after."""
    opt = build_optimizer(model, dataclasses.replace(_fusion_cfg(), freeze_to_fusion=freeze))
    model.train()
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    x, y = clip(b=4, t=1)
    loss = F.cross_entropy(model(x, y), torch.arange(4) % K)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return before, model.state_dict()

def _changed(before, after, prefix):
    return {k for k, v in before.items() if k.startswith(prefix) and v.dtype.is_floating_point
            and not torch.equal(v, after[k])}


@pytest.mark.parametrize("method,position,frozen", [
    ("conv", "res3", ("conv1", "res2", "res3")),
    ("sum", "pool", ("conv1", "res2", "res3", "res4", "res5", "pool")),
    ("conv", "res3+fc", ("conv1", "res2", "res3")),
    ("st_add", "res2+res3+res4", ("conv1",)),
])
def test_freeze_to_fusion_keeps_the_layers_below_the_fusion_as_trained(streams, method, position, frozen):
    model = net(streams, method, position)
    assert model.frozen_stages() == frozen
    before, after = _one_training_step(model, freeze=True)
    below = [f"{t}.{a}." for t in ("rgb", "flow") for s in frozen for a in _STAGE_ATTRS[s]]
    # weights and batch-norm running statistics below the fusion: untouched
    assert not any(_changed(before, after, p) for p in below)
    assert not any(p.requires_grad for n, p in model.named_parameters() if n.startswith(tuple(below)))
    # the layers above it learn (the appearance tower's classifier, always above)
    assert _changed(before, after, "rgb.fc.")
    # and train() keeps the frozen batch norms in eval mode
    model.train()
    assert all(not m.training for m in model._frozen) and model.rgb.fc.training
    # control: without the freeze the same step moves the layers below the fusion
    control = net(streams, method, position)
    b2, a2 = _one_training_step(control, freeze=False)
    assert any(_changed(b2, a2, p) for p in below)


def test_frozen_prefix_runs_no_backward(streams):
    """With the stages up to res3 frozen, no autograd node touches them: their inputs get no gradient."""
    model = net(streams, "conv", "res3")
    model.freeze_to_fusion()
    model.train()
    x, y = clip(b=2, t=1)
    x.requires_grad_(False)
    out = model(x, y)
    a = model.rgb.forward_to(x.flatten(0, 1), "res3")
    assert not a.requires_grad  # the activation at the fusion point carries no graph below it
    assert out.requires_grad


def test_late_fusion_has_nothing_to_freeze(streams):
    assert net(streams, "late_mean", "softmax").frozen_stages() == ()
