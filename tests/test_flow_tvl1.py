"""TV-L1 backends against ground truth and against each other (small real-photo pairs)."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

from flow_helpers import epe, known_flows, textured, warp_pair
from twostream.flow import flow_config, make_backend
from twostream.flow.opencv import OpenCVTVL1
from twostream.flow.params import opencv_defaults
from twostream.flow.tvl1_torch import (
    TorchTVL1,
    median_blur_cv2,
    median_blur_torch,
    median_blur_unfold,
    pyramid_sizes,
    warp_bicubic,
    warp_bicubic_cv2,
)

H, W = 96, 128
# Documented agreement of the torch backend with OpenCV on these pairs (measured: mean
# end-point difference 0.013 px, 95th percentile < 0.05 px; EPE to truth within 5 %).
AGREE_MEAN_PX = 0.05
AGREE_P95_PX = 0.15


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """torch's OpenMP workers spin between ops and starve OpenCV's threads in the same process
    (100x slowdowns measured on 2 busy cores): run this module's torch code on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def pairs():
    """Real photographs (scikit-image) moved by known flows: translation, rotation, zoom, non-rigid."""
    prev, nxt, gt, names = [], [], [], []
    for k, (name, f) in enumerate(known_flows(H, W).items()):
        a, b = warp_pair(textured(H, W, ["camera", "astronaut", "coffee", "camera"][k]), f)
        prev.append(a), nxt.append(b), gt.append(f), names.append(name)
    return np.stack(prev), np.stack(nxt), np.stack(gt), names


@pytest.fixture(scope="module")
def opencv_flow(pairs):
    prev, nxt, _, _ = pairs
    return OpenCVTVL1(opencv_defaults())(prev, nxt)


@pytest.fixture(scope="module")
def torch_flow(pairs):
    prev, nxt, _, _ = pairs
    return TorchTVL1(opencv_defaults(), device="cpu", compile=False)(prev, nxt)


def test_both_backends_recover_known_flow(pairs, opencv_flow, torch_flow):
    _, _, gt, names = pairs
    e_cv, e_t = epe(opencv_flow, gt), epe(torch_flow, gt)
    print("EPE opencv", dict(zip(names, e_cv.round(3))), "torch", dict(zip(names, e_t.round(3))))
    # both recover motions of 1.5..3 px to a small fraction of a pixel
    assert (e_cv < 0.25).all(), e_cv
    assert (e_t < 0.25).all(), e_t
    # the torch backend is within 10 % of OpenCV's average EPE (or better)
    assert e_t.mean() <= 1.10 * e_cv.mean(), (e_t.mean(), e_cv.mean())


def test_torch_fields_agree_with_opencv(opencv_flow, torch_flow):
    d = np.sqrt(((opencv_flow - torch_flow) ** 2).sum(-1))[:, 8:-8, 8:-8]
    assert d.mean() < AGREE_MEAN_PX, d.mean()
    assert np.percentile(d, 95) < AGREE_P95_PX, np.percentile(d, 95)


def test_gpu_stopping_form_matches_cpu_form(pairs):
    """The torch iterations with the masked (no host sync, GPU) form of OpenCV's stopping test
    give the same flow as the C kernel (CPU); fixed iterations differ but stay accurate."""
    prev, nxt, gt, _ = pairs
    p = replace(opencv_defaults(), nscales=3, warps=2)
    c_kernel = TorchTVL1(p, device="cpu", compile=False)
    masked = TorchTVL1(p, device="cpu", compile=False, kernel="torch")
    assert (c_kernel.stop_impl, masked.stop_impl) == ("c", "masked")
    a, b = c_kernel(prev, nxt), masked(prev, nxt)
    # float rounding differs, amplified by the median filter and by a stopping test that falls
    # one test later (the C kernel sums the change in double): measured mean 6e-6, max 0.023 px
    assert np.abs(a - b).mean() < 1e-4 and np.abs(a - b).max() < 0.05
    # the C kernel stops a pair at once, the masked form runs it to the end of the outer iteration
    assert c_kernel.iterations < masked.iterations <= len(prev) * 3 * 2 * 300
    fixed = TorchTVL1(
        replace(opencv_defaults(), nscales=3, warps=2, outer_iterations=2, inner_iterations=10),
        device="cpu",
        stopping="fixed",
        compile=False,
    )
    f = fixed(prev, nxt)
    assert fixed.iterations == len(prev) * 3 * 2 * 2 * 10
    assert epe(f, gt).mean() < 0.5


def test_batched_equals_one_by_one(pairs):
    prev, nxt, _, _ = pairs
    p = replace(opencv_defaults(), nscales=2, warps=2, outer_iterations=3)
    whole = TorchTVL1(p, device="cpu", compile=False, batch_size=4)(prev, nxt)
    single = TorchTVL1(p, device="cpu", compile=False, batch_size=1)(prev, nxt)
    assert np.abs(whole - single).max() < 1e-4


def test_sign_convention_flow_is_motion_from_prev_to_next():
    img = textured(64, 64, "astronaut")
    nxt = np.roll(img, (2, -3), axis=(0, 1))  # content moves 3 px left and 2 px down
    for be in (TorchTVL1(opencv_defaults(), device="cpu", compile=False), OpenCVTVL1(opencv_defaults())):
        f = be(img[None], nxt[None])[0, 12:-12, 12:-12].mean((0, 1))
        np.testing.assert_allclose(f, [-3.0, 2.0], atol=0.2)


@pytest.mark.parametrize("k", [3, 5])
def test_median_filters_equal_cv2(k):
    g = torch.Generator().manual_seed(k)
    u = torch.randn((3, 2, 19, 23), generator=g)
    ref = np.stack([[cv2.medianBlur(c.numpy(), k) for c in x] for x in u])
    for fn in (median_blur_cv2, median_blur_torch, median_blur_unfold):
        np.testing.assert_array_equal(fn(u, k).numpy(), ref, err_msg=fn.__name__)


def test_warp_is_bicubic_with_zero_border_like_remap():
    img = textured(32, 40).astype(np.float32)
    rng = np.random.default_rng(0)
    u = rng.uniform(-4, 4, size=(32, 40, 2)).astype(np.float32)
    ys, xs = np.mgrid[0:32, 0:40].astype(np.float32)
    ref = cv2.remap(img, xs + u[..., 0], ys + u[..., 1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT)
    got = warp_bicubic(torch.from_numpy(img)[None, None], torch.from_numpy(u).permute(2, 0, 1)[None])[0, 0].numpy()
    assert np.abs(got - ref).max() < 0.01  # grey levels 0..255 (measured 0.001)
    # the CPU path calls cv2.remap itself, for several channels and pairs at once
    img3 = torch.from_numpy(np.stack([img, 2 * img, -img]))[None].repeat(2, 1, 1, 1)
    uu = torch.from_numpy(u).permute(2, 0, 1)[None].repeat(2, 1, 1, 1)
    np.testing.assert_allclose(warp_bicubic_cv2(img3, uu).numpy(), warp_bicubic(img3, uu).numpy(), atol=0.01)
    outside = (xs + u[..., 0] < -2) | (xs + u[..., 0] > 41) | (ys + u[..., 1] < -2) | (ys + u[..., 1] > 33)
    assert outside.any() and np.all(got[outside] == 0)


def test_pyramid_sizes_follow_opencv():
    assert pyramid_sizes(64, 64, 5, 0.8) == [(64, 64), (51, 51), (41, 41), (33, 33), (26, 26)]
    assert pyramid_sizes(256, 340, 5, 0.8)[1] == (205, 272)
    assert pyramid_sizes(20, 30, 5, 0.8) == [(20, 30), (16, 24)]  # stops before a side < 16


def test_config_errors_name_the_key():
    from twostream.config import ConfigError

    with pytest.raises(ConfigError, match="flow: unknown key"):
        flow_config({"backend": "torch", "nscale": 3})
    with pytest.raises(ConfigError, match="flow.backend"):
        flow_config({"backend": "farneback"})
    with pytest.raises(ConfigError, match="flow.tvl1.median_filtering"):
        flow_config({"tvl1": {"median_filtering": 4}})
    with pytest.raises(ConfigError, match="flow.tvl1: unknown key"):
        flow_config({"tvl1": {"lambda": 0.1}})
    assert make_backend(flow_config({"backend": "dis"})).name == "dis"


@pytest.mark.slow
def test_compiled_iteration_equals_eager(pairs):
    """torch.compile (one warm-up per process, ~15 s) computes the same flow as eager mode."""
    prev, nxt, gt, _ = pairs
    p = replace(opencv_defaults(), nscales=2, warps=2, outer_iterations=2, inner_iterations=10)
    compiled = TorchTVL1(p, device="cpu", compile=True, kernel="torch")  # the GPU code, on CPU
    assert compiled.compile, "torch.compile fell back to eager mode"
    a = compiled(prev[:2], nxt[:2])
    b = TorchTVL1(p, device="cpu", compile=False, kernel="torch")(prev[:2], nxt[:2])
    # float rounding differs (fused multiply-adds), amplified by the median filter: measured max 0.003 px
    assert np.abs(a - b).mean() < 1e-3 and np.abs(a - b).max() < 0.02
