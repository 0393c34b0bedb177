"""The C kernel of the TV-L1 inner iterations (twostream.flow.tvl1_cpu) against the torch
iteration it replaces on CPU (tvl1_torch.tvl1_step), and its stopping test."""

from __future__ import annotations

import pytest
import torch

from twostream.flow import tvl1_cpu
from twostream.flow.tvl1_torch import TorchTVL1, tvl1_step

CONSTS = dict(l_t=0.15 * 0.3, theta=0.3, taut=0.25 / 0.3)

pytestmark = pytest.mark.skipif(not tvl1_cpu.available(), reason=f"no C kernel: {tvl1_cpu.why_unavailable()}")


def state(B=3, H=13, W=21, seed=0):
    """Random but TV-L1-like inputs: u, p, the warped gradient, rho_c and 1 / |grad|^2."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randn((B, 2, H, W), generator=g)
    p = torch.randn((B, 2, 2, H, W), generator=g) * 0.3
    ig = torch.randn((B, 2, H, W), generator=g) * 10
    rho_c = torch.randn((B, H, W), generator=g) * 5
    inv_grad = 1.0 / (ig * ig).sum(1)
    return u, p, ig, rho_c, inv_grad


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 13, 21), (2, 17, 8), (2, 5, 40)])
def test_kernel_equals_torch_iterations(shape):
    """n C iterations = n tvl1_step calls, to float rounding, for odd sizes, one-pixel images
    and widths under / over one vector; in place on u and p, shapes kept."""
    u, p, ig, rc, iv = state(*shape)
    ut, pt = u, p
    for _ in range(7):
        ut, pt, _ = tvl1_step(ut, pt, ig, rc, iv, **CONSTS)
    uc, pc = u.clone(), p.clone()
    going = torch.ones(shape[0], dtype=torch.uint8)
    n = tvl1_cpu.inner_iterations(uc, pc, ig, rc, iv, going, 7, 2, -1.0, **CONSTS)
    assert n == 7 * shape[0] and going.all()
    assert uc.shape == u.shape and pc.shape == p.shape
    torch.testing.assert_close(uc, ut, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(pc, pt, rtol=1e-5, atol=1e-5)
    assert not torch.equal(uc, u)  # it did move (the control: 0 iterations leave u as it was)


def test_stopping_test_per_pair():
    """OpenCV's test per pair, every `every` iterations and on each of the last n % every:
    a pair whose u cannot change (flat u, no image gradient, p = 0) stops at the first test; a pair
    in motion runs all n; a pair not going is not touched."""
    u, p, ig, rc, iv = state(B=3)
    u[1] = 0.5  # flat: p stays 0
    ig[1] = 0.0
    p[1] = 0.0
    iv[1] = 0.0
    going = torch.tensor([1, 1, 0], dtype=torch.uint8)
    u0, p0 = u.clone(), p.clone()
    n = tvl1_cpu.inner_iterations(u, p, ig, rc, iv, going, 5, 2, 1e-6, **CONSTS)
    assert going.tolist() == [1, 0, 0]
    assert n == 5 + 2  # pair 0 all 5, pair 1 until the test after iteration 2, pair 2 none
    assert torch.equal(u[1], u0[1]) and torch.equal(u[2], u0[2]) and torch.equal(p[2], p0[2])
    # every = 1: the still pair stops after its first iteration
    going = torch.tensor([0, 1, 0], dtype=torch.uint8)
    assert tvl1_cpu.inner_iterations(u, p, ig, rc, iv, going, 5, 1, 1e-6, **CONSTS) == 1
    # a threshold above every change stops the moving pair at the first test too; n odd, every 2
    going = torch.tensor([1, 0, 0], dtype=torch.uint8)
    assert tvl1_cpu.inner_iterations(u, p, ig, rc, iv, going, 1, 2, 1e30, **CONSTS) == 1 and going[0] == 0


def test_bad_tensors_are_refused():
    u, p, ig, rc, iv = state()
    going = torch.ones(3, dtype=torch.uint8)
    with pytest.raises(ValueError, match="float32 contiguous"):
        tvl1_cpu.inner_iterations(u.double(), p, ig, rc, iv, going, 2, 2, -1.0, **CONSTS)
    with pytest.raises(ValueError, match="float32 contiguous"):
        tvl1_cpu.inner_iterations(u.transpose(2, 3), p, ig, rc, iv, going, 2, 2, -1.0, **CONSTS)
    with pytest.raises(ValueError, match="going"):
        tvl1_cpu.inner_iterations(u, p, ig, rc, iv, going.bool(), 2, 2, -1.0, **CONSTS)
    with pytest.raises(ValueError, match="shapes"):
        tvl1_cpu.inner_iterations(u, p[..., :-1].contiguous(), ig, rc, iv, going, 2, 2, -1.0, **CONSTS)
    with pytest.raises(ValueError, match="kernel"):
        TorchTVL1(None, device="cpu", kernel="fortran")


def test_solver_uses_the_kernel_on_cpu_only_when_asked_or_auto():
    from twostream.flow.params import TVL1Params

    assert TorchTVL1(TVL1Params(), device="cpu").stop_impl == "c"
    assert TorchTVL1(TVL1Params(), device="cpu", kernel="torch").stop_impl == "masked"
