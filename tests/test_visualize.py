"""Activation maximisation machinery and its checks, on hand-built models whose optimum is known."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from twostream.errors import InputError
from twostream.visualize import regularizers as R
from twostream.visualize import causes as C
from twostream.visualize import judges as J
from twostream.visualize import verdicts as D
from twostream.visualize import verify_runs as V
from twostream.visualize.objectives import OUTPUT, channel, class_logit, class_log_prob
from twostream.visualize.params import InputSet, InputSpec
from twostream.visualize.render import Probe, Weights, redirected_relu, render_vis

from visualize_toys import BindingNet, ColourNet, MotionNet, SilentColourNet, group_classes, toy_classes

torch.set_num_threads(1)

# 20 px toys: co-location smoothed at the same fraction of the side as the default's 2 px of 64
FAST = V.VerifySettings(steps=80, size=(20, 20), flow_frames=4, seeds=(0, 1, 2, 3, 4),
                        thresholds=J.Thresholds(colocation_sigma=2.0 * 20 / 64))


# ---- params / regularizers / objectives ---------------------------------------------------------


@pytest.mark.parametrize("param", ["pixel", "fourier"])
def test_input_set_shapes_ranges_and_seeds(param):
    spec = InputSpec.two_stream(3)
    a = InputSet(spec, (12, 16), [0, 1], param, sd=0.5)
    with torch.no_grad():
        x = a()
    assert x["rgb"].shape == (2, 3, 12, 16) and x["flow"].shape == (2, 6, 12, 16)
    assert 0 < float(x["rgb"].min()) and float(x["rgb"].max()) < 1  # sigmoid
    with torch.no_grad():
        b = InputSet(spec, (12, 16), [1, 5], param, sd=0.5)()
    # sample initialisation depends on its own seed only
    assert torch.equal(x["flow"][1], b["flow"][0])
    assert not torch.equal(x["flow"][0], x["flow"][1])


def test_input_errors():
    with pytest.raises(InputError, match="parametrization"):
        InputSet(InputSpec.rgb(), (8, 8), [0], "wavelet")
    with pytest.raises(InputError, match="bad input shape"):
        InputSet(InputSpec.rgb(), (1, 8), [0])


def test_flow_layouts_and_temporal_variation():
    L, H, W = 3, 2, 2
    frames = torch.arange(L * 2 * H * W, dtype=torch.float32).reshape(1, L, 2, H, W)
    inter = frames.reshape(1, 2 * L, H, W)  # x0, y0, x1, y1, ...
    grouped = frames.transpose(1, 2).reshape(1, 2 * L, H, W)  # x0..x2, y0..y2
    assert torch.equal(R.flow_frames(inter, "interleaved"), frames)
    assert torch.equal(R.flow_frames(grouped, "grouped"), frames)
    const = torch.ones(1, L, 2, H, W).reshape(1, 2 * L, H, W)
    assert float(R.temporal_variation(const)) == 0.0
    # consecutive fields differ by 2*H*W = 8 everywhere
    assert float(R.temporal_variation(inter)) == pytest.approx(64.0)
    with pytest.raises(InputError, match="even"):
        R.flow_frames(torch.zeros(1, 3, 2, 2))
    stack = np.zeros((4, 5, 5, 2))
    stack[:, :, :, 0] = [[[1.0]], [[1.0]], [[3.0]], [[3.0]]]
    # mean |diff| = (0 + 2 + 0)/3 / 2 channels; mean |f| = 2 / 2 channels
    assert R.relative_temporal_variation(stack) == pytest.approx((2 / 3) / 2)
    assert R.relative_temporal_variation(np.zeros((4, 5, 5, 2))) == 0.0


def test_objectives_select_per_sample_units_and_compose():
    act = torch.arange(2 * 3 * 3 * 3, dtype=torch.float32).reshape(2, 3, 3, 3)
    acts = {"l": act, OUTPUT: torch.tensor([[0.0, 2.0], [1.0, 0.0]])}
    assert channel("l", [0, 2])(acts).tolist() == [act[0, 0].mean().item(), act[1, 2].mean().item()]
    assert channel("l", 1, "center")(acts).tolist() == [act[0, 1, 1, 1].item(), act[1, 1, 1, 1].item()]
    assert class_logit([1, 0])(acts).tolist() == [2.0, 1.0]
    combo = channel("l", 0) - 0.5 * channel("l", 1)
    assert combo.layers == ("l",)
    assert torch.allclose(combo(acts), channel("l", 0)(acts) - 0.5 * channel("l", 1)(acts))
    assert torch.allclose(class_log_prob(1)(acts), torch.log_softmax(acts[OUTPUT], 1)[:, 1])
    with pytest.raises(InputError, match="out of range"):
        channel("l", 3)(acts)


def test_probe_reads_resnet_stages_like_forward_to():
    from twostream.models import stream_model

    torch.manual_seed(0)
    m = stream_model("flow", 5, flow_length=2).eval()
    x = {"flow": torch.randn(2, 4, 32, 32)}
    acts = Probe(m, ["conv1", "res3", "pool"], ("flow",))(x)
    for s in ("conv1", "res3", "pool"):
        assert torch.allclose(acts[s], m.forward_to(x["flow"], s), atol=1e-6)
    assert torch.allclose(acts[OUTPUT], m(x["flow"]))
    early = Probe(m, ["res2"], ("flow",))(x, output=False)  # stops after res2
    assert OUTPUT not in early and torch.allclose(early["res2"], m.forward_to(x["flow"], "res2"), atol=1e-6)
    with pytest.raises(InputError, match="no layer 'res9'"):
        Probe(m, ["res9"], ("flow",))


# ---- render ------------------------------------------------------------------------------------


def test_render_finds_the_known_optimum_and_is_deterministic():
    net = ColourNet()
    spec = InputSpec.rgb()
    run = lambda: render_vis(net, class_logit([0, 1, 2, 3]), InputSet(spec, (16, 16), [0, 1, 2, 3]),
                             Weights(), steps=60, lr=0.05, jitter=2, jitter_seed=3)
    r1, r2 = run(), run()
    assert np.array_equal(r1.inputs["rgb"], r2.inputs["rgb"])
    assert r1.inputs["rgb"].shape == (4, 16, 16, 3)
    assert np.all(r1.history[-1] > r1.history[0])
    # unit c is maximised by colour c: each optimised image's colour is nearest its unit's colour
    cols = {c.label: c.colour for c in group_classes("appearance")}
    assert [J.nearest_colour(img, cols) for img in r1.inputs["rgb"]] == [0, 1, 2, 3]
    assert np.all(r1.probabilities[np.arange(4), np.arange(4)] > 0.9)


def test_a_unit_silent_on_the_start_is_found_only_with_the_redirected_relu():
    """Units below zero on every pixel of the grey start: plain gradients never move the
    input (the control: activation 0 at every step); with the redirected ReLU gradient for
    the first 16 steps each unit is driven above zero and its image takes its colour."""
    net = SilentColourNet()
    obj = channel("relu", [0, 1, 2, 3])
    run = lambda k: render_vis(net, obj, InputSet(InputSpec.rgb(), (12, 12), [0, 1, 2, 3]), Weights(),
                               steps=60, lr=0.05, jitter=1, redirect_relu_steps=k)
    plain, redirected = run(0), run(16)
    assert np.all(plain.history == 0) and np.all(plain.objective == 0)
    assert np.all(redirected.objective > 0.05)
    cols = {c.label: c.colour for c in group_classes("appearance")}
    assert [J.nearest_colour(img, cols) for img in redirected.inputs["rgb"]] == [0, 1, 2, 3]
    # the mode ends with the steps: a plain ReLU gives no gradient below zero afterwards
    x = torch.tensor([-1.0, 2.0], requires_grad=True)
    torch.relu(x).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0]


def test_redirected_relu_gradient_rule():
    """Per sample: the ReLU gradient where it is not all zero; else the incoming gradient,
    except where it would push a negative input lower (descent moves x by -grad)."""
    x = torch.tensor([[-1.0, -2.0, -3.0], [-1.0, 2.0, -3.0]], requires_grad=True)
    with redirected_relu():
        y = torch.nn.functional.relu(x, inplace=True)
    assert y.tolist() == [[0.0, 0.0, 0.0], [0.0, 2.0, 0.0]]
    y.backward(torch.tensor([[-1.0, 1.0, -2.0], [-1.0, -1.0, -2.0]]))
    # sample 0: all-zero ReLU gradient -> redirected, the push-lower entry (+1 at x = -2) dropped
    # sample 1: its ReLU gradient is not zero -> plain ReLU gradient
    assert x.grad.tolist() == [[-1.0, 0.0, -2.0], [0.0, -1.0, 0.0]]


def test_render_flow_units_in_pixels_and_weights_per_sample():
    net = MotionNet(L=3)
    inputs = InputSet(InputSpec.flow(3), (12, 12), [0, 0])
    w = Weights(l2_flow=[4.0, 40.0], tv_flow=1.0, temporal=1.0)
    r = render_vis(net, class_logit(1), inputs, w, steps=80, jitter=0)
    flow = r.inputs["flow"]  # (B, L, H, W, 2), rightward unit: positive x, no y
    assert flow.shape == (2, 3, 12, 12, 2)
    # objective 10 * mean(x) - w * mean over x and y of f^2: optimum x = 10 / w, y = 0
    assert flow[..., 0].mean((1, 2, 3)) == pytest.approx([2.5, 0.25], rel=0.05)
    assert np.abs(flow[..., 1]).max() < 0.05
    assert r.weights.at(1)["l2_flow"] == 40.0
    with pytest.raises(InputError, match="weight l2_flow"):
        render_vis(net, class_logit(1), InputSet(InputSpec.flow(3), (8, 8), [0, 1, 2]), Weights(l2_flow=[1, 2]), steps=1)


def test_temporal_weight_slows_the_optimised_motion():
    net = MotionNet(L=4, fast=1.0)
    tws = [0.0, 1.0, 10.0, 100.0]
    inputs = InputSet(InputSpec.flow(4), (16, 16), [7] * 4)
    r = render_vis(net, class_logit(1), inputs, Weights(temporal=tws), steps=100)
    rel = [R.relative_temporal_variation(f) for f in r.inputs["flow"]]
    assert all(b < a for a, b in zip(rel, rel[1:])), rel
    assert rel[0] > 0.3 and rel[-1] < 0.1
    assert np.all(r.inputs["flow"][..., 0].mean((1, 2, 3)) > 0)  # still rightward


# ---- verification ------------------------------------------------------------------------------


def test_measures_on_hand_made_inputs():
    flow = np.zeros((2, 10, 10, 2))
    flow[:, 2:4, 2:7, 0] = 2.0  # a small patch moving right (the top 10%)
    flow[:, 6:8, 6:8, 0] = -0.1  # weak leftward noise
    mag, vec = J.top_flow(flow)
    assert mag == pytest.approx(2.0) and vec[0] == pytest.approx(2.0)
    assert J.judge_direction(flow, (1.0, 0.0))[0] and not J.judge_direction(flow, (-1.0, 0.0))[0]
    img = np.full((10, 10, 3), 0.5)
    img[2:4, 2:7] = (0.9, 0.1, 0.1)  # red where it moves
    img[6:8, 6:8] = (0.1, 0.3, 0.9)  # blue where it is still
    cm, cs = J.colocation(img, flow, (0.9, 0.1, 0.1), (0.1, 0.3, 0.9))
    assert cm > 0.5 and cs < 0.2
    assert not J.judge_colocation(img, flow, (0.1, 0.3, 0.9), (0.9, 0.1, 0.1), J.Thresholds())[0]
    assert J.hue_of((1.0, 0.0, 0.0)) == pytest.approx(0.0) and J.hue_of((0.5, 0.5, 0.5)) is None
    # gate: a confident but empty input is inconclusive; colour does not need flow
    th = J.Thresholds()
    assert not J.gate(0.99, img, np.zeros_like(flow), th, ("rgb", "flow"))[0]
    assert J.gate(0.99, img, np.zeros_like(flow), th, ("rgb",))[0]
    assert not J.gate(0.5, img, flow, th)[0]


def test_colocation_at_object_scale_and_colour_of_saturated_pixels():
    """The optimised inputs carry pixel texture in colour and flow that has nothing to do
    with binding: a red blob whose flow sits one pixel off, under independent texture,
    correlates weakly pixel by pixel and strongly once both maps are smoothed below the
    blob's size. Cyan blobs painted over a green-yellow texture average to green; the
    most saturated pixels are cyan."""
    rng = np.random.default_rng(0)
    n = 48
    yy, xx = np.mgrid[0:n, 0:n].astype(float)
    img = 0.5 + 0.25 * rng.standard_normal((n, n, 3)).clip(-2, 2)
    flow = 3.0 * rng.standard_normal((2, n, n, 2))
    blob = (xx - 16) ** 2 + (yy - 24) ** 2 < 36
    img[blob] = (0.9, 0.1, 0.1)
    shifted = np.roll(blob, 1, axis=1)
    flow[:, shifted, 0] += 3.0  # the blob's rightward motion, one pixel off
    red, blue, right = (0.9, 0.1, 0.1), (0.1, 0.3, 0.9), (1.0, 0.0)
    pix, _ = J.colocation(img.clip(0, 1), flow, red, blue, direction=right, motion="direction")
    smooth, _ = J.colocation(img.clip(0, 1), flow, red, blue, direction=right, motion="direction", sigma=2.0)
    assert pix < 0.2 <= smooth
    th = J.Thresholds(colocation_motion="direction", colocation_sigma=2.0)
    assert J.judge_colocation(img.clip(0, 1), flow, red, blue, th, right)[0]
    assert not J.judge_colocation(img.clip(0, 1), flow, blue, red, th, right)[0]
    with pytest.raises(InputError, match="sigma"):
        J.colocation(img, flow, red, blue, sigma=-1.0)

    cyan, green, yellow = (40 / 255, 195 / 255, 205 / 255), (40 / 255, 165 / 255, 55 / 255), (215 / 255, 195 / 255, 40 / 255)
    colours = {0: yellow, 1: green, 3: cyan}
    tex = np.where(rng.random((n, n, 1)) < 0.5, np.asarray(green), np.asarray(yellow))
    tex = 0.5 + 0.5 * (tex - 0.5)  # a paler texture
    tex[(xx % 12 < 4) & (yy % 12 < 4)] = cyan  # 11% of pixels: cyan blobs
    assert J.nearest_colour(tex, colours, "all") == 1
    assert J.nearest_colour(tex, colours, "saturated") == 3
    assert J.judge_colour(tex, 3, colours, "saturated")[0] and not J.judge_colour(tex, 3, colours, "all")[0]
    with pytest.raises(InputError, match="colour pixels"):
        J.colour_shift_hue(tex, "brightest")


def test_class_objective_weights_the_log_softmax():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 3.0, 1.0]])
    acts = {"output": logits}
    logp = torch.log_softmax(logits, 1)
    both = V.class_objective("logit+log_prob", [0, 2], 10.0)(acts)
    assert torch.allclose(both, torch.tensor([2.0 + 10 * logp[0, 0], 1.0 + 10 * logp[1, 2]]))
    assert torch.allclose(V.class_objective("log_prob", [0, 2], 3.0)(acts), 3 * logp[[0, 1], [0, 2]])
    assert torch.allclose(V.class_objective("logit", [0, 2], 3.0)(acts), torch.tensor([2.0, 1.0]))
    with pytest.raises(InputError, match="objective"):
        V.class_objective("prob", [0, 2])


def test_read_classes_of_the_synthetic_dataset(tmp_path):
    from twostream.datasets.synthetic import SyntheticConfig, class_table

    p = tmp_path / "classes.csv"
    class_table(SyntheticConfig()).to_csv(p, index=False)
    cs = {c.name: c for c in C.read_classes(p)}
    assert cs["ColourCyan"].group == "appearance" and cs["ColourCyan"].colour == pytest.approx((40 / 255, 195 / 255, 205 / 255))
    assert cs["MotionLeft"].direction == (-1.0, 0.0) and cs["MotionRotateCw"].direction is None
    assert cs["BlueMovesRight"].direction == (1.0, 0.0)
    assert cs["BlueMovesRight"].moving_colour == pytest.approx((20 / 255, 90 / 255, 230 / 255))
    assert cs["BlueMovesRight"].still_colour == pytest.approx((190 / 255, 40 / 255, 40 / 255))
    p.write_text("label,class_name\n0,a\n")
    with pytest.raises(InputError, match=r"classes file lacks column\(s\) group"):
        C.read_classes(p)
    p.write_text("label,class_name,group,direction\n0,a,motion,sideways\n")
    with pytest.raises(InputError, match="row 2"):
        C.read_classes(p)


def _table(model, modalities, classes, fused, checks=V.CHECKS, expected=None):
    res = V.run_checks(model, modalities, classes, FAST, fused, checks=checks)
    return D.summarise(res, "m", expected=expected).set_index("check")


def test_checks_pass_on_right_models_and_fail_on_wrong_ones():
    app = group_classes("appearance")
    good = _table(ColourNet(), ("rgb",), app, False)
    bad = _table(ColourNet(permute=True), ("rgb",), app, False)  # units answer the wrong colour
    assert good.loc["colour", "runs"] == 10 and good.loc["colour", "pass"]
    assert bad.loc["colour", "rate"] == 0 and not bad.loc["colour", "pass"]

    mot = group_classes("motion")
    good = _table(MotionNet(fast=1.0), ("flow",), mot, False)
    bad = _table(MotionNet(flip=True), ("flow",), mot, False, checks=("direction",))
    assert good.loc["direction", "pass"] and "temporal" not in good.index
    assert good.loc["direction", "inconclusive"] == 0
    assert bad.loc["direction", "rate"] == 0


def test_colocation_needs_binding_and_the_pooled_control_fails():
    st = group_classes("spatiotemporal")
    bound = _table(BindingNet(), ("rgb", "flow"), st, True, checks=("direction", "colocation"))
    pooled = _table(BindingNet(pooled=True), ("rgb", "flow"), st, True, checks=("direction", "colocation"),
                    expected={"colocation": "fail"})
    assert bound.loc["colocation", "pass"] and bound.loc["direction", "pass"]
    # the pooled model is as confident and moves the right way ...
    assert pooled.loc["direction", "pass"] and pooled.loc["colocation", "inconclusive"] == 0
    # ... but its pictures do not put the moving colour where the motion is
    assert pooled.loc["colocation", "rate"] < 0.2 and not pooled.loc["colocation", "pass"]
    assert pooled.loc["colocation", "as_expected"]
    # a motion stream alone is not asked about spatiotemporal classes
    assert V.applicable_checks(("flow",), "spatiotemporal", False) == []


@pytest.mark.parametrize("layout", ["interleaved", "grouped"])
def test_penalty_gradients_match_autograd(layout):
    torch.manual_seed(0)
    x = torch.randn(3, 6, 5, 7, requires_grad=True)
    w = torch.tensor([0.5, 1.0, 3.0])
    for fn, grad_fn in ((lambda t: R.l2(t, 0.5), lambda t, w: R.l2_grad(t, w, 0.5)),
                        (R.spatial_tv, R.spatial_tv_grad),
                        (lambda t: R.temporal_variation(t, layout), lambda t, w: R.temporal_variation_grad(t, w, layout))):
        pen = w * fn(x)
        (g_auto,) = torch.autograd.grad(pen.sum(), x)
        p2, g2 = grad_fn(x.detach(), w)
        assert torch.allclose(pen, p2) and torch.allclose(g_auto, g2, atol=1e-6)


def test_flow_of_a_mean_subtracting_model_is_saved_centred():
    """A model that removes each field's spatial mean cannot see a constant offset: the
    saved optimum is the centred one, and a small leftward patch stays leftward."""

    class PatchNet(torch.nn.Module):
        modalities = ("flow",)

        def forward(self, flow):
            f = flow - flow.mean((2, 3), keepdim=True)
            return -f[:, 0::2, 6:10, 6:10].mean((1, 2, 3))[:, None] * torch.tensor([[10.0, -10.0]])

    from twostream.visualize.render import Preprocess

    r = render_vis(PatchNet(), class_logit(0), InputSet(InputSpec.flow(2), (16, 16), [0]), Weights(),
                   steps=60, jitter=0, preprocess=Preprocess(flow_center=True))
    flow = r.inputs["flow"][0]
    assert np.abs(flow.mean((1, 2))).max() < 1e-5
    assert J.judge_direction(flow, (-1.0, 0.0))[0] and flow[:, 6:10, 6:10, 0].mean() < -0.5


def test_gate_probability_is_within_the_class_group():
    """A motion stream cannot tell MotionLeft from RedMovesLeft (colour): the gate's
    probability is the softmax over the class's group, so it judges left vs right only."""
    classes = [C.ClassFactors(0, "MotionLeft", "motion"), C.ClassFactors(1, "MotionRight", "motion"),
               C.ClassFactors(2, "RedMovesLeft", "spatiotemporal"), C.ClassFactors(3, "BlueMovesLeft", "spatiotemporal")]
    r = dataclasses.make_dataclass("R", ["logits"])(np.array([[5.0, 0.0, 5.0, 5.0], [0.0, 0.0, 9.0, 0.0]]))
    p_all = np.exp(5.0) / (3 * np.exp(5.0) + 1)
    assert p_all < 0.34
    assert V.group_probability(r, 0, classes[0], classes) == pytest.approx(np.exp(5.0) / (np.exp(5.0) + 1))
    assert V.group_probability(r, 1, classes[0], classes) == pytest.approx(0.5)
    assert V.group_probability(r, 1, classes[2], classes) == pytest.approx(np.exp(9.0) / (np.exp(9.0) + 1))
    assert V.group_probability(dataclasses.make_dataclass("N", ["logits"])(None), 0, classes[0], classes) is None


def test_colocation_direction_map_ignores_a_spinning_still_object():
    """The synthetic still object spins in place: its flow has size but no net direction.
    On the magnitude map a strongly spinning still disc wins; on the direction map the
    translating moving disc does."""
    n = 32
    yy, xx = np.mgrid[0:n, 0:n].astype(float)
    flow = np.zeros((3, n, n, 2))
    img = np.full((n, n, 3), 0.5)
    moving = (xx - 8) ** 2 + (yy - 16) ** 2 < 25  # red disc translating left at 1 px/frame
    still = (xx - 24) ** 2 + (yy - 16) ** 2 < 25  # blue disc spinning at 0.6 rad/frame (up to 3 px/frame)
    flow[:, moving, 0] = -1.0
    flow[:, still, 0] = -0.6 * (yy[still] - 16)
    flow[:, still, 1] = 0.6 * (xx[still] - 24)
    img[moving], img[still] = (0.9, 0.1, 0.1), (0.1, 0.3, 0.9)
    red, blue, left = (0.9, 0.1, 0.1), (0.1, 0.3, 0.9), (-1.0, 0.0)
    cm, cs = J.colocation(img, flow, red, blue, motion="magnitude")
    assert cm < cs  # the spin's magnitude sits on the still colour
    cm, cs = J.colocation(img, flow, red, blue, direction=left, motion="direction")
    assert cm > 0.3 and cm - cs > 0.6
    th = J.Thresholds(colocation_motion="direction")
    assert J.judge_colocation(img, flow, red, blue, th, left)[0]
    assert not J.judge_colocation(img, flow, blue, red, th, left)[0]
    with pytest.raises(InputError, match="needs the class's direction"):
        J.colocation(img, flow, red, blue, motion="direction")


# ---- co-location against its null, the untrained control, the table's rows ---------------------


def _disc_scene(n=32, at=(10, 10), flow_at=(10, 10), r=4.0, seed=0):
    """A red disc on a blue-tinted grey, a rightward flow disc; light noise in both."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:n, 0:n].astype(float)
    img = np.full((n, n, 3), 0.5) + 0.03 * rng.standard_normal((n, n, 3))
    img[(yy - at[0]) ** 2 + (xx - at[1]) ** 2 < r * r] = (0.9, 0.1, 0.1)
    flow = 0.05 * rng.standard_normal((2, n, n, 2))
    flow[:, (yy - flow_at[0]) ** 2 + (xx - flow_at[1]) ** 2 < r * r, 0] += 2.0
    return img.clip(0, 1), flow


RED, BLUE, RIGHT = (0.9, 0.1, 0.1), (0.1, 0.3, 0.9), (1.0, 0.0)


def test_colocation_passes_at_the_flow_and_fails_elsewhere_or_shifted():
    th = J.Thresholds(colocation_sigma=1.0)
    img, flow = _disc_scene()
    ok, d = J.judge_colocation(img, flow, RED, BLUE, th, RIGHT)
    assert ok and d["corr_moving"] > 0.8 and d["null_p"] <= 1 / len(J.null_shifts((32, 32))) + 1e-9
    assert d["null_pass"] < 0.1  # the judge almost never passes a shifted flow map
    # the disc elsewhere, or the whole picture circularly shifted: the colour is not at the motion
    far, flow2 = _disc_scene(at=(26, 24))
    assert not J.judge_colocation(far, flow2, RED, BLUE, th, RIGHT)[0]
    assert not J.judge_colocation(np.roll(img, (16, 16), axis=(0, 1)), flow, RED, BLUE, th, RIGHT)[0]
    # the still colour's map (contrast: the negative) fails
    assert not J.judge_colocation(img, flow, BLUE, RED, th, RIGHT)[0]


def test_null_shifts_keep_away_from_the_object_and_p_is_uniform_for_unrelated_maps():
    shifts = J.null_shifts((64, 64))
    assert len(shifts) == 64 - 9 and (0, 0) not in shifts
    assert all(min(a, 64 - a) ** 2 + min(b, 64 - b) ** 2 >= 16**2 for a, b in shifts)
    assert J.null_p(1.0, np.array([0.0, 0.5])) == pytest.approx(1 / 3)
    assert J.null_p(0.0, np.array([0.0, 0.5])) == pytest.approx(1.0)
    # two independent smooth random maps: the p-value is uniform (its null distribution)
    from scipy.ndimage import gaussian_filter
    from scipy.stats import kstest

    rng = np.random.default_rng(1)
    ps = []
    for _ in range(300):
        a = gaussian_filter(rng.standard_normal((32, 32)), 1.5, mode="wrap")
        b = gaussian_filter(rng.standard_normal((32, 32)), 1.5, mode="wrap")
        ps.append(J.null_p(J.correlation(a, b), J.shift_null(a, b)))
    ps = np.asarray(ps)
    assert 0.4 < ps.mean() < 0.6 and np.mean(ps <= 0.05) < 0.1
    assert kstest(ps, "uniform").pvalue > 0.001  # discrete (56 levels) but close to uniform
    # the judge's pass rate under the null stays near max_null_p
    rates = [J.null_pass_rate(J.shift_null(a, b), J.correlation(a, b), 0.0, 0.05)]
    assert rates[0] <= 0.1


def test_verdict_rows_carry_interval_null_rate_and_binomial_p():
    row = D.check_row("m", "model", "direction", ["pass"] * 8 + ["fail", "inconclusive"], "pass", 0.8,
                      [0.5] * 10)
    assert (row["runs"], row["passes"], row["inconclusive"], row["rate"]) == (10, 8, 1, 0.8)
    assert row["lo"] == pytest.approx(0.4902, abs=1e-3) and row["hi"] == pytest.approx(0.9433, abs=1e-3)
    assert row["null_rate"] == pytest.approx(0.45)  # the inconclusive run counts 0
    from scipy.stats import binomtest

    assert row["p_value"] == pytest.approx(binomtest(8, 10, 0.45, alternative="greater").pvalue)
    assert row["pass"] and row["as_expected"]
    fail = D.check_row("u", "control", "colour", ["fail"] * 9 + ["pass"], "fail", 0.8)
    assert not fail["pass"] and fail["as_expected"] and np.isnan(fail["null_rate"])
    assert list(D.summarise([], "m").columns) == D.COLUMNS


def test_expected_outcomes_follow_the_architecture():
    from twostream.models.fusion import fuse_streams
    from twostream.models.streams import stream_model

    def net(method, position):
        kw = dict(widths=[4, 4, 8, 8])
        return fuse_streams(stream_model("rgb", 4, **kw), stream_model("flow", 4, flow_length=2, **kw), method, position)

    assert V.expected_outcomes(net("conv", "res3"))["colocation"] == "pass"
    assert V.expected_outcomes(net("st_add", "res2+res3"))["colocation"] == "pass"
    assert V.expected_outcomes(net("conv", "pool"))["colocation"] == "fail"
    assert V.expected_outcomes(net("late_mean", "softmax"))["colocation"] == "fail"
    assert set(V.expected_outcomes(net("conv", "res3"), untrained=True).values()) == {"fail"}
    # the untrained control: the same architecture from a fixed random init, the same every time
    trained = net("conv", "res3")
    a, b = V.untrained_model(trained.spec), V.untrained_model(trained.spec)
    for (k, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), k
    assert not a.training and type(a) is type(trained)
    assert any(not torch.equal(p, q) for p, q in zip(a.parameters(), trained.parameters()))


class _RandomFused(torch.nn.Module):
    """A fused toy of random fixed filters: what an untrained network is to the checks."""

    modalities = ("rgb", "flow")

    def __init__(self, seed=0, L=4, K=4):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.c = torch.nn.Conv2d(3 + 2 * L, 8, 5, padding=2)
        self.f = torch.nn.Linear(8, K)
        for p in self.parameters():
            p.data = torch.randn(p.shape, generator=g) * 0.5

    def forward(self, rgb, flow):
        return 10 * self.f(torch.tanh(self.c(torch.cat([rgb - 0.5, flow], 1))).mean((2, 3)))


def test_an_untrained_network_fails_direction_colour_and_colocation():
    """The control that must fail: random filters give confident inputs whose direction,
    colour and co-location have nothing to do with the class."""
    classes = toy_classes()
    res = []
    for seed in range(3):
        res += V.run_checks(_RandomFused(seed, K=12), ("rgb", "flow"), classes, FAST, True)
    t = D.summarise(res, "untrained", expected={c: "fail" for c in V.CHECKS}).set_index("check")
    assert set(t.index) == {"direction", "colour", "colocation"}
    assert not t["pass"].any() and t.as_expected.all()
    assert (t.rate < 0.8).all()


# --------------------------------------------------------------------------- figures


def _pixels(path, rgb):
    """Number of pixels of exactly colour ``rgb`` (0..255) in a PNG."""
    from matplotlib.image import imread

    img = np.rint(imread(str(path))[..., :3] * 255).astype(int)
    return int((img == np.asarray(rgb)).all(-1).sum())


def test_layer_figure_draws_every_panel_at_its_size(tmp_path):
    """Each unit's appearance panel appears once, nearest-upscaled to PANEL_PX: pure red and pure
    blue images give exactly that many red and blue pixels; the flow panels come beside them."""
    from twostream.visualize import montage

    h = 16
    rgb = np.zeros((2, 2, h, h, 3))
    rgb[0, -1, ..., 0] = 1.0  # unit 0: red at the slowest setting (the one shown)
    rgb[1, -1, ..., 2] = 1.0  # unit 1: blue
    flow = np.zeros((2, 2, 3, h, h, 2))
    flow[..., 0] = 1.0  # rightwards: the colour wheel's red hue, the x map's positive end
    k = int(np.ceil(montage.PANEL_PX / h))
    path = tmp_path / "layer.png"
    montage.layer_figure(path, "model: layer", ["l #0", "l #1"], rgb, flow, [0.0, 100.0])
    from matplotlib.image import imread

    H, W = imread(str(path)).shape[:2]
    n_cols = 1 + 3 * 2
    assert W == montage.LABEL_PX + n_cols * (h * k + montage.GAP_PX)
    assert H == montage.TITLE_PX + 2 * (montage.CAPTION_PX + h * k + montage.GAP_PX)
    assert _pixels(path, (0, 0, 255)) == (h * k) ** 2
    # red: unit 0's image and the 4 colour wheels (right = red at full brightness)
    assert _pixels(path, (255, 0, 0)) == 5 * (h * k) ** 2
    # control: unit 0 green instead, so only the wheels stay red
    rgb[0, -1] = 0.0
    rgb[0, -1, ..., 1] = 1.0
    montage.layer_figure(path, "model: layer", ["l #0", "l #1"], rgb, flow, [0.0, 100.0])
    assert _pixels(path, (255, 0, 0)) == 4 * (h * k) ** 2


def test_overview_figure_has_one_row_per_layer(tmp_path):
    from matplotlib.image import imread

    from twostream.visualize import montage

    h = 8
    a = np.zeros((3, 1, h, h, 3))
    a[..., 1] = 1.0  # green
    b = np.zeros((1, 1, h, h, 3))
    b[..., 2] = 1.0  # blue
    path = tmp_path / "overview.png"
    montage.overview_figure(path, "model", ["conv1", "res5"], [[1, 2, 3], [7]], [a, b], [None, None])
    k = int(np.ceil(montage.PANEL_PX / h))
    H, W = imread(str(path)).shape[:2]
    assert H == montage.TITLE_PX + 2 * (montage.CAPTION_PX + h * k + montage.GAP_PX)
    assert W == montage.LABEL_PX + 3 * (h * k + montage.GAP_PX)
    assert _pixels(path, (0, 255, 0)) == 3 * (h * k) ** 2 and _pixels(path, (0, 0, 255)) == (h * k) ** 2
