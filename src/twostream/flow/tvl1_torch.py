"""Batched duality-based TV-L1 optical flow in PyTorch (CPU and CUDA, same code).

The algorithm is Zach, Pock & Bischof (2007) with the coarse-to-fine warping
scheme of Wedel et al. (2009) and Sánchez et al. (IPOL 2013), with the same
parameters and the same semantics as OpenCV's CPU ``DualTVL1OpticalFlow``:

* grayscale images in 0..255 (float32); pyramid by bilinear resizing with
  ``scale_step`` from level to level, stopping before a side falls under 16 px;
  the flow starts at zero on the coarsest level, is resized bilinearly to the
  next level and multiplied by ``1 / scale_step``;
* on every level the dual variables start at zero; every warp resamples ``I1``
  and its centred gradient (one-sided at the border) at ``x + u`` with bicubic
  interpolation and *zero* outside the image (as ``cv2.remap``);
* every outer iteration first median-filters ``u`` (replicated border, as
  ``cv2.medianBlur``), then runs the inner iterations: thresholding step for
  ``v``, ``u = v + theta div p`` with backward differences, and the dual step
  ``p = (p + tau/theta grad u) / (1 + tau/theta |grad u|)`` with forward
  differences (zero on the last column/row);
* stopping ``"opencv"``: a pair leaves the current warp as soon as the summed
  squared change of ``u`` falls under ``epsilon**2 * H * W`` (OpenCV's test,
  evaluated per pair, every other iteration as OpenCV's OpenCL version does);
  ``"fixed"``: every pair runs all warps x outer x inner iterations (no
  reduction, no host synchronisation: the mode for GPUs and ``torch.compile``).

Many pairs of one size are solved together as a batch of tensors (B, 2, H, W).
On CPU the median filter and the bicubic warp run through OpenCV (``cv2.medianBlur``,
one call for the whole batch, and ``cv2.remap``, the calls OpenCV's TV-L1 makes), and
the inner iterations through the C kernel of :mod:`.tvl1_cpu` (the same arithmetic as
``tvl1_step``, pair by pair, with the stopping test inside). On GPU (and on a CPU
without a C compiler) the median filter is a forgetful-selection network, the warp
``grid_sample`` and the inner iteration ``tvl1_step``, one fused kernel under ``torch.compile``.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from ..config import ConfigError
from . import tvl1_cpu
from .params import TVL1Params

FLT_EPSILON = float(np.finfo(np.float32).eps)
MIN_LEVEL_SIZE = 16


# --------------------------------------------------------------------------- pyramid


def pyramid_sizes(h: int, w: int, nscales: int, scale_step: float) -> list[tuple[int, int]]:
    """Level sizes as OpenCV builds them: each level is the previous one times ``scale_step``,
    rounded; a level with a side under 16 px ends the pyramid."""
    sizes = [(h, w)]
    for _ in range(1, nscales):
        ph, pw = sizes[-1]
        nh, nw = int(round(ph * scale_step)), int(round(pw * scale_step))
        if nh < MIN_LEVEL_SIZE or nw < MIN_LEVEL_SIZE:
            break
        sizes.append((nh, nw))
    return sizes


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of (B, C, H, W) as cv2.resize(INTER_LINEAR) (half-pixel centres, no antialias)."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def centered_gradient(img: torch.Tensor) -> torch.Tensor:
    """(B, H, W) -> (B, 2, H, W): central differences, one-sided halves at the border (OpenCV)."""
    p = F.pad(img[:, None], (1, 1, 1, 1), mode="replicate")[:, 0]
    gx = 0.5 * (p[:, 1:-1, 2:] - p[:, 1:-1, :-2])
    gy = 0.5 * (p[:, 2:, 1:-1] - p[:, :-2, 1:-1])
    return torch.stack((gx, gy), 1)


def warp_bicubic(img: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Sample (B, C, H, W) at x + u (pixels) bicubically; zero outside the image (cv2.remap default)."""
    B, _, H, W = img.shape
    ys = torch.arange(H, device=img.device, dtype=img.dtype).view(1, H, 1)
    xs = torch.arange(W, device=img.device, dtype=img.dtype).view(1, 1, W)
    gx = (xs + u[:, 0]) * (2.0 / max(W - 1, 1)) - 1.0
    gy = (ys + u[:, 1]) * (2.0 / max(H - 1, 1)) - 1.0
    grid = torch.stack((gx, gy), -1)
    return F.grid_sample(img, grid, mode="bicubic", padding_mode="zeros", align_corners=True)


def warp_bicubic_cv2(img: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``warp_bicubic`` on CPU through cv2.remap (what OpenCV's TV-L1 itself calls), one call
    per image and channel, on planar arrays (no layout copies)."""
    import cv2  # deferred: OpenCV is slow to import; only this CPU path needs it

    B, C, H, W = img.shape
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    src = img.contiguous().numpy()
    un = u.numpy()
    out = np.empty((B, C, H, W), np.float32)
    for b in range(B):
        mx, my = xs + un[b, 0], ys + un[b, 1]
        for c in range(C):
            cv2.remap(src[b, c], mx, my, cv2.INTER_CUBIC, dst=out[b, c], borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return torch.from_numpy(out)


# --------------------------------------------------------------------------- median filter


def median_blur_cv2(u: torch.Tensor, k: int) -> torch.Tensor:
    """k x k median of every channel of (B, C, H, W) on CPU with one cv2.medianBlur call.

    The images are stacked vertically, each padded by replicating its own border,
    so the result equals cv2.medianBlur (BORDER_REPLICATE) of each image alone.
    """
    import cv2  # deferred: OpenCV is slow to import; only this CPU path needs it

    B, C, H, W = u.shape
    r = k // 2
    a = u.detach().reshape(B * C, H, W).cpu().numpy()
    tall = np.pad(a, ((0, 0), (r, r), (r, r)), mode="edge").reshape(B * C * (H + 2 * r), W + 2 * r)
    out = cv2.medianBlur(tall, k).reshape(B * C, H + 2 * r, W + 2 * r)[:, r : r + H, r : r + W]
    # a fresh tensor, not a view: compiled steps guard on whether their inputs are views
    return torch.from_numpy(np.ascontiguousarray(out).reshape(B, C, H, W)).to(u.device)


def _minmax(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.minimum(a, b), torch.maximum(a, b)


def _drop_min_max(vals: list[torch.Tensor]) -> list[torch.Tensor]:
    """Compare-exchange passes that move the max to the end and the min to the front; drop both."""
    vals = list(vals)
    for i in range(len(vals) - 1):  # max bubbles to the end
        vals[i], vals[i + 1] = _minmax(vals[i], vals[i + 1])
    for i in range(len(vals) - 2, 0, -1):  # min (of the rest) bubbles to the front
        vals[i - 1], vals[i] = _minmax(vals[i - 1], vals[i])
    return vals[1:-1]


def median_blur_torch(u: torch.Tensor, k: int) -> torch.Tensor:
    """k x k median (replicated border) of (B, C, H, W) by forgetful selection.

    Of any k*k//2 + 2 of the k*k values, the smallest and the largest cannot be the
    median: drop both, add the next value, repeat until one value is left.
    Pure elementwise min/max: one fused kernel under torch.compile, runs on any device.
    """
    B, C, H, W = u.shape
    r = k // 2
    p = F.pad(u.reshape(B * C, 1, H, W), (r, r, r, r), mode="replicate")[:, 0]
    vals = [p[:, i : i + H, j : j + W] for i in range(k) for j in range(k)]
    n = k * k
    work, rest = vals[: n // 2 + 2], vals[n // 2 + 2 :]
    work = _drop_min_max(work)
    while rest:
        work.append(rest.pop(0))
        work = _drop_min_max(work)
    assert len(work) == 1
    return work[0].reshape(B, C, H, W)


def median_blur_unfold(u: torch.Tensor, k: int) -> torch.Tensor:
    """k x k median via unfold + torch.median: few kernel launches (GPU without compile)."""
    B, C, H, W = u.shape
    r = k // 2
    p = F.pad(u.reshape(B * C, 1, H, W), (r, r, r, r), mode="replicate")[:, 0]
    win = p.unfold(1, k, 1).unfold(2, k, 1).reshape(B * C, H, W, k * k)
    return win.median(-1).values.reshape(B, C, H, W)


# --------------------------------------------------------------------------- one iteration


def tvl1_step(
    u: torch.Tensor,
    p: torch.Tensor,
    ig: torch.Tensor,
    rho_c: torch.Tensor,
    inv_grad: torch.Tensor,
    l_t: float,
    theta: float,
    taut: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One inner iteration for a batch.

    u (B, 2, H, W) flow; p (B, 2, 2, H, W) dual variables (flow component, x/y);
    ig (B, 2, H, W) gradient of the warped I1; rho_c, inv_grad (B, H, W).
    Returns the new u, the new p and the per-pair summed squared change of u.
    """
    # thresholding step (TH): v = u + clamp(-rho/|grad I|^2, -l_t, l_t) * grad I
    rho = rho_c + ig[:, 0] * u[:, 0] + ig[:, 1] * u[:, 1]
    fi = torch.clamp(-rho * inv_grad, -l_t, l_t)
    # divergence of p with backward differences (p = 0 outside the image)
    px, py = p[:, :, 0], p[:, :, 1]
    div = px - F.pad(px[..., :-1], (1, 0)) + py - F.pad(py[..., :-1, :], (0, 0, 1, 0))
    u_new = u + fi[:, None] * ig + theta * div
    d = u_new - u
    err = (d * d).sum((1, 2, 3))
    # forward differences (zero on the last column / row), then the dual step
    ux = F.pad(u_new[..., 1:] - u_new[..., :-1], (0, 1))
    uy = F.pad(u_new[..., 1:, :] - u_new[..., :-1, :], (0, 0, 0, 1))
    ng = 1.0 + taut * torch.sqrt(ux * ux + uy * uy)
    # stack the results, not the gradients: no intermediate (B, 2, 2, H, W) buffer when compiled
    p_new = torch.stack(((px + taut * ux) / ng, (py + taut * uy) / ng), 2)
    return u_new, p_new, err


def tvl1_step_fixed(u, p, ig, rho_c, inv_grad, l_t: float, theta: float, taut: float):
    """``tvl1_step`` without the stopping measure (one reduction pass less when compiled)."""
    u_new, p_new, _ = tvl1_step(u, p, ig, rho_c, inv_grad, l_t, theta, taut)
    return u_new, p_new


def tvl1_step2(u, p, ig, rho_c, inv_grad, l_t: float, theta: float, taut: float):
    """Two inner iterations; the stopping measure of the second only (as OpenCV's OpenCL
    TV-L1, which measures every other iteration): half the tests and calls."""
    u, p = tvl1_step_fixed(u, p, ig, rho_c, inv_grad, l_t, theta, taut)
    return tvl1_step(u, p, ig, rho_c, inv_grad, l_t, theta, taut)


def tvl1_step_masked(
    u, p, ig, rho_c, inv_grad, going, scaled_eps: float, l_t: float, theta: float, taut: float, n: int = 1
):
    """``n`` (1 or 2) inner iterations that change only the pairs still ``going`` (bool (B,));
    a pair stops once its squared change of u falls under ``scaled_eps`` (OpenCV's test).
    No host synchronisation: the GPU form of the per-pair stopping rule."""
    u_new, p_new, err = (tvl1_step2 if n == 2 else tvl1_step)(u, p, ig, rho_c, inv_grad, l_t, theta, taut)
    g = going.view(-1, 1, 1, 1)
    u = torch.where(g, u_new, u)
    p = torch.where(g.unsqueeze(-1), p_new, p)
    return u, p, going & (err > scaled_eps)


_FUNCS = {  # the torch code of the GPU path (and of a CPU without a C compiler)
    "step_fixed": tvl1_step_fixed,
    "step_masked": tvl1_step_masked,
    "median": median_blur_torch,
}


@functools.lru_cache(maxsize=None)
def _compiled(name: str):
    import torch._dynamo  # deferred: loads torch's compiler stack; only flow.compile needs it
    # deferred: loads torch's compiler stack; only flow.compile needs it
    import torch.fx.experimental._config as fx_config

    # one graph per pyramid level size must not exhaust dynamo's cache (default 8) and
    # square images must not specialise H == W
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
    fx_config.use_duck_shape = False
    return torch.compile(_FUNCS[name], dynamic=True)


# --------------------------------------------------------------------------- solver


class TorchTVL1:
    """Callable: (prev, next) uint8 grayscale (B, H, W) -> float32 flow (B, H, W, 2).

    ``device``: "auto" (CUDA when present), "cpu", "cuda", "cuda:N".
    ``stopping``: "opencv" (OpenCV's epsilon test, per pair) or "fixed" (all iterations).
    ``compile``: torch.compile the torch iteration (dynamic shapes; one warm-up per process;
    falls back to eager mode with a warning where compiling fails); unused where the C
    kernel runs the iterations.
    ``batch_size``: pairs solved together.
    ``kernel``: the inner iterations on CPU: "auto" (the C kernel of :mod:`.tvl1_cpu`, else
    torch with a warning), "c" (an error where it cannot be built) or "torch" (``tvl1_step``,
    the GPU code; for tests and benches).
    """

    name = "torch"

    def __init__(
        self,
        params: TVL1Params,
        device: str = "auto",
        stopping: str = "opencv",
        compile: bool = False,
        batch_size: int = 64,
        kernel: str = "auto",
    ):
        if kernel not in ("auto", "c", "torch"):
            raise ValueError(f"kernel must be auto, c or torch, not {kernel!r}")
        self.params = params
        self.device = resolve_device(device)
        self.stopping = stopping
        self.batch_size = int(batch_size)
        self.iterations = 0  # inner iterations x pairs run so far (for reports)
        # who runs the inner iterations: "c" (the C kernel, CPU) or "masked" (torch; a pair
        # that stops is frozen by a mask, the GPU form of the per-pair stopping rule)
        self.stop_impl = "masked"
        if self.device.type == "cpu" and kernel != "torch":
            if tvl1_cpu.available():
                self.stop_impl = "c"
            elif kernel == "c":
                raise RuntimeError(f"the TV-L1 C kernel is not available: {tvl1_cpu.why_unavailable()}")
            else:
                warnings.warn(f"TV-L1 C kernel unavailable ({tvl1_cpu.why_unavailable()}); torch iterations (slower)")
        self.compile = bool(compile) and self.stop_impl != "c"
        # iterations per stopping test: 2 = test every other iteration, as OpenCV's OpenCL
        # TV-L1 does (a pair may run one iteration more than OpenCV's CPU code); 1 = every one
        self.test_every = 2
        if self.compile:
            self._warm_up()

    # public API -----------------------------------------------------------
    def __call__(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        prev = np.asarray(prev)
        nxt = np.asarray(nxt)
        out = np.empty(prev.shape + (2,), np.float32)
        for s in range(0, len(prev), self.batch_size):
            i0 = torch.from_numpy(np.ascontiguousarray(prev[s : s + self.batch_size]))
            i1 = torch.from_numpy(np.ascontiguousarray(nxt[s : s + self.batch_size]))
            u = self.flow(i0, i1)
            out[s : s + len(i0)] = u.permute(0, 2, 3, 1).cpu().numpy()
        return out

    @torch.no_grad()
    def flow(self, i0: torch.Tensor, i1: torch.Tensor) -> torch.Tensor:
        """(B, H, W) images (uint8 0..255 or float 0..255) -> (B, 2, H, W) flow in pixels."""
        pr = self.params
        i0 = i0.to(self.device, torch.float32, non_blocking=True)
        i1 = i1.to(self.device, torch.float32, non_blocking=True)
        B, H, W = i0.shape
        sizes = pyramid_sizes(H, W, pr.nscales, pr.scale_step)
        lv0, lv1 = [i0], [i1]
        for size in sizes[1:]:
            lv0.append(_resize(lv0[-1][:, None], size)[:, 0])
            lv1.append(_resize(lv1[-1][:, None], size)[:, 0])
        u = torch.zeros((B, 2) + sizes[-1], device=self.device)
        for s in range(len(sizes) - 1, -1, -1):
            u = self._one_scale(lv0[s], lv1[s], u)
            if s > 0:
                u = _resize(u, sizes[s - 1]) * (1.0 / pr.scale_step)
        return u

    # internals ------------------------------------------------------------
    def _warm_up(self) -> None:
        """Compile on a tiny batch; fall back to eager mode if the compiler fails."""
        try:
            g = torch.Generator().manual_seed(0)
            # levels 48x48 .. 20x20 cover both graphs inductor makes (small and large planes)
            a = (torch.rand((2, 48, 48), generator=g) * 255).to(torch.uint8)
            p = self.params
            self.params = TVL1Params(
                nscales=5, warps=1, outer_iterations=1, inner_iterations=2, median_filtering=p.median_filtering
            )
            try:
                self.flow(a, torch.roll(a, 1, 2))
            finally:
                self.params = p
        except Exception as e:  # no C++ compiler, unsupported platform...
            warnings.warn(f"torch.compile failed ({type(e).__name__}: {e}); running TV-L1 in eager mode")
            self.compile = False
        self.iterations = 0

    def _chunks(self) -> list[int]:
        """Inner iterations grouped by stopping test: ``test_every`` (1 or 2) per test."""
        n, k = self.params.inner_iterations, self.test_every
        return [k] * (n // k) + [1] * (n % k)

    def _fn(self, name: str):
        return _compiled(name) if self.compile else _FUNCS[name]

    def _median(self, u: torch.Tensor) -> torch.Tensor:
        k = self.params.median_filtering
        if u.device.type == "cpu":
            return median_blur_cv2(u, k)
        if self.compile:
            return _compiled("median")(u, k)
        return median_blur_unfold(u, k)

    def _one_scale(self, i0: torch.Tensor, i1: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        pr = self.params
        B, H, W = i0.shape
        consts = dict(l_t=float(pr.lambda_ * pr.theta), theta=float(pr.theta), taut=float(pr.tau / pr.theta))
        scaled_eps = float(pr.epsilon * pr.epsilon * H * W)
        img = torch.cat((i1[:, None], centered_gradient(i1)), 1)  # I1, I1x, I1y
        p = torch.zeros((B, 2, 2, H, W), device=i0.device)
        u = u.contiguous()
        warp = warp_bicubic_cv2 if i0.device.type == "cpu" else warp_bicubic
        for _ in range(pr.warps):
            w = warp(img, u)
            ig = w[:, 1:3].contiguous()
            grad = (ig * ig).sum(1)
            rho_c = w[:, 0] - ig[:, 0] * u[:, 0] - ig[:, 1] * u[:, 1] - i0
            inv_grad = torch.where(grad > FLT_EPSILON, 1.0 / grad.clamp_min(FLT_EPSILON), torch.zeros_like(grad))
            if self.stop_impl == "c":
                u, p = self._warp_c(u, p, ig, rho_c, inv_grad, scaled_eps, consts)
            elif self.stopping == "fixed":
                u, p = self._warp_fixed(u, p, ig, rho_c, inv_grad, consts)
            else:
                u, p = self._warp_masked(u, p, ig, rho_c, inv_grad, scaled_eps, consts)
        return u

    def _warp_fixed(self, u, p, ig, rho_c, inv_grad, consts):
        """All outer x inner iterations, no stopping test."""
        pr = self.params
        step = self._fn("step_fixed")
        for _ in range(pr.outer_iterations):
            if pr.median_filtering > 1:
                u = self._median(u)
            for _ in range(pr.inner_iterations):
                u, p = step(u, p, ig, rho_c, inv_grad, **consts)
        self.iterations += len(u) * pr.outer_iterations * pr.inner_iterations
        return u, p

    def _warp_masked(self, u, p, ig, rho_c, inv_grad, scaled_eps, consts):
        """OpenCV's stopping test per pair without host synchronisation inside the inner loop
        (GPU): a pair that stops is frozen by a mask for the rest of the outer iteration;
        after each outer iteration (one read-back) the stopped pairs leave the batch, so the
        remaining work shrinks. (A batch never shrinks to one pair: a stopped pair rides
        along, frozen, so compiled code is not specialised to 1.)"""
        pr = self.params
        step = self._fn("step_masked")
        B = len(u)
        idx = torch.arange(B, device=u.device)  # row of the full batch
        ua, pa, iga, rca, iva = u, p, ig, rho_c, inv_grad
        going = torch.ones(B, dtype=torch.bool, device=u.device)
        for _ in range(pr.outer_iterations):
            if pr.median_filtering > 1:
                ua = torch.where(going.view(-1, 1, 1, 1), self._median(ua), ua)
            for n in self._chunks():
                ua, pa, going = step(ua, pa, iga, rca, iva, going, scaled_eps, n=n, **consts)
            self.iterations += len(ua) * pr.inner_iterations
            n_going = int(going.sum())  # the one read-back per outer iteration
            if n_going == len(ua):
                continue
            if u is ua or p is pa:
                u, p = u.clone(), p.clone()
            done = ~going
            u[idx[done]] = ua[done]
            p[idx[done]] = pa[done]
            if n_going == 0:
                return u, p
            keep = going.clone()
            if n_going == 1 and len(keep) > 1:
                keep[int(torch.nonzero(done)[0])] = True  # passenger (frozen: going is False)
            idx, going = idx[keep], going[keep]
            ua, pa, iga, rca, iva = ua[keep], pa[keep], iga[keep], rca[keep], iva[keep]
        if ua is u:
            return u, p
        u[idx] = ua
        p[idx] = pa
        return u, p

    def _warp_c(self, u, p, ig, rho_c, inv_grad, scaled_eps, consts):
        """One warp's outer x inner iterations with the C kernel, in place on ``u`` and ``p``:
        the median filter (on the pairs still going) in Python, the inner iterations and
        the per-pair stopping test in C."""
        pr = self.params
        eps = scaled_eps if self.stopping == "opencv" else -1.0  # -1: no pair ever stops
        going = torch.ones(len(u), dtype=torch.uint8)
        for _ in range(pr.outer_iterations):
            if pr.median_filtering > 1:
                if bool(going.all()):
                    u = self._median(u)
                else:
                    g = going.bool()
                    u[g] = self._median(u[g])
            self.iterations += tvl1_cpu.inner_iterations(
                u, p, ig, rho_c, inv_grad, going, pr.inner_iterations, self.test_every, eps, **consts
            )
            if not bool(going.any()):
                break
        return u, p


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"flow.device: {device!r} requested but CUDA is not available")
    return dev
