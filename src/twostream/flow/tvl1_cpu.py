"""The TV-L1 inner iterations on CPU as a small C kernel, compiled once per process.

Why C and not torch: one inner iteration is ~20 float operations per pixel on data that
stays in the L3 cache. ``torch.compile`` turns ``tvl1_step`` into vectorised C++ too, but
with a masked load for every shifted neighbour (the padding of the differences); it ran at
2.2 ms per iteration for a 340x256 pair on one core here, the loops below at 0.3 ms
(``bench/flow.py`` measures the whole solver). The loops are the same arithmetic as
``tvl1_torch.tvl1_step`` (same operation order, float32, no contracted multiply-adds), so
the two agree to float rounding (tests/test_flow_tvl1.py); the stopping test runs per pair
inside the kernel, so a batch needs no Python work per iteration.

Why not a library: no kept package offers TV-L1 iterations we could call per pair with
OpenCV's semantics (OpenCV's own ``DualTVL1`` is the reference we compare against).
Building: the C compiler (``$CC``, else ``cc``) that ``torch.compile`` needs as well, through
``subprocess`` and ``ctypes`` from the standard library (``torch.utils.cpp_extension`` would
need ninja, not installed here, and a compile against torch's headers; this takes under a second).
``target_clones`` picks AVX2 or baseline SSE2 code at load time, so one build runs on any
x86-64 node; other CPUs get the compiler's default target. Where nothing compiles,
``available()`` is False and the solver runs its torch iteration instead (with a warning).
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import subprocess
import tempfile

import torch

KERNEL_C = r"""
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CLONES
#endif

/* One pixel of the u step: v = u + clamp(-rho / |grad I1|^2, -l_t, l_t) grad I1, u <- v + theta div p;
   l0, l1: p_x left of the pixel; q0, q1: p_y above it (0 outside the image). Returns the squared change. */
static inline float pixel_u(float *restrict u0, float *restrict u1, float g0, float g1, float rc, float iv,
                            float p0x, float l0, float p0y, float q0, float p1x, float l1, float p1y, float q1,
                            float l_t, float theta) {
    const float a0 = *u0, a1 = *u1;
    const float rho = rc + g0 * a0 + g1 * a1;
    float fi = -rho * iv;
    fi = fi < -l_t ? -l_t : fi;
    fi = fi > l_t ? l_t : fi;
    const float n0 = a0 + fi * g0 + theta * (p0x - l0 + p0y - q0);
    const float n1 = a1 + fi * g1 + theta * (p1x - l1 + p1y - q1);
    const float c0 = n0 - a0, c1 = n1 - a1;
    *u0 = n0;
    *u1 = n1;
    return c0 * c0 + c1 * c1;
}

/* The u step of one pair. u [2][H][W]; p [2 components][2 directions x, y][H][W]; ig [2][H][W];
   rc, iv [H][W]. Divergence by backward differences, p = 0 outside. Returns the summed squared change. */
CLONES static double step_u(float *restrict u, const float *restrict p, const float *restrict ig,
                            const float *restrict rc, const float *restrict iv, const float *restrict zrow,
                            float *restrict sq, int64_t H, int64_t W, float l_t, float theta) {
    const int64_t N = H * W;
    float *restrict u0 = u, *restrict u1 = u + N;
    const float *restrict p0x = p, *restrict p0y = p + N, *restrict p1x = p + 2 * N, *restrict p1y = p + 3 * N;
    const float *restrict g0 = ig, *restrict g1 = ig + N;
    double err = 0.0;
    for (int64_t y = 0; y < H; ++y) {
        const int64_t o = y * W;
        const float *restrict q0 = y ? p0y + o - W : zrow; /* p_y of the row above */
        const float *restrict q1 = y ? p1y + o - W : zrow;
        /* x = 0 apart (nothing on its left): the loop over x > 0 vectorises */
        sq[0] = pixel_u(u0 + o, u1 + o, g0[o], g1[o], rc[o], iv[o], p0x[o], 0.0f, p0y[o], q0[0], p1x[o], 0.0f,
                        p1y[o], q1[0], l_t, theta);
        for (int64_t x = 1; x < W; ++x) {
            const int64_t i = o + x;
            sq[x] = pixel_u(u0 + i, u1 + i, g0[i], g1[i], rc[i], iv[i], p0x[i], p0x[i - 1], p0y[i], q0[x], p1x[i],
                            p1x[i - 1], p1y[i], q1[x], l_t, theta);
        }
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0}; /* 8 lanes: the sum vectorises */
        int64_t x = 0;
        for (; x + 8 <= W; x += 8)
            for (int k = 0; k < 8; ++k) acc[k] += sq[x + k];
        double e = 0.0;
        for (; x < W; ++x) e += sq[x];
        for (int k = 0; k < 8; ++k) e += acc[k];
        err += e;
    }
    return err;
}

/* One pixel of the p step: p <- (p + taut grad u) / (1 + taut |grad u|). */
static inline void pixel_p(float *restrict px, float *restrict py, float ux, float uy, float taut) {
    const float ng = 1.0f + taut * sqrtf(ux * ux + uy * uy);
    *px = (*px + taut * ux) / ng;
    *py = (*py + taut * uy) / ng;
}

/* The p step of one pair: forward differences of u, zero on the last column and row. */
CLONES static void step_p(const float *restrict u, float *restrict p, int64_t H, int64_t W, float taut) {
    const int64_t N = H * W;
    for (int c = 0; c < 2; ++c) {
        for (int64_t y = 0; y < H; ++y) {
            const int64_t o = y * W;
            const float *restrict r = u + c * N + o;
            const float *restrict rn = y + 1 < H ? r + W : r; /* last row: uy = 0 */
            float *restrict ax = p + 2 * c * N + o, *restrict ay = p + (2 * c + 1) * N + o;
            for (int64_t x = 0; x + 1 < W; ++x) pixel_p(ax + x, ay + x, r[x + 1] - r[x], rn[x] - r[x], taut);
            pixel_p(ax + W - 1, ay + W - 1, 0.0f, rn[W - 1] - r[W - 1], taut); /* last column: ux = 0 */
        }
    }
}

/* Up to n inner iterations of every pair b with going[b] != 0. The stopping test (OpenCV's:
   summed squared change of u <= scaled_eps) runs after every `every`-th iteration and after
   each of the last n % every; a pair that meets it stops (going[b] = 0). work: 2 W floats.
   Returns the iterations run, summed over pairs. */
int64_t tvl1_inner(float *u, float *p, const float *ig, const float *rc, const float *iv, uint8_t *going,
                   int64_t B, int64_t H, int64_t W, int64_t n, int64_t every, double scaled_eps,
                   float l_t, float theta, float taut, float *work) {
    const int64_t N = H * W;
    int64_t total = 0;
    float *zrow = work, *sq = work + W;
    memset(zrow, 0, sizeof(float) * W);
    for (int64_t b = 0; b < B; ++b) {
        if (!going[b]) continue;
        float *ub = u + b * 2 * N, *pb = p + b * 4 * N;
        const float *gb = ig + b * 2 * N, *rb = rc + b * N, *vb = iv + b * N;
        for (int64_t it = 1; it <= n; ++it) {
            const double e = step_u(ub, pb, gb, rb, vb, zrow, sq, H, W, l_t, theta);
            step_p(ub, pb, H, W, taut);
            ++total;
            if ((it % every == 0 || it > (n / every) * every) && !(e > scaled_eps)) {
                going[b] = 0;
                break;
            }
        }
    }
    return total;
}
"""

CFLAGS = ["-O3", "-ffp-contract=off", "-fno-math-errno", "-fPIC", "-shared"]


@functools.lru_cache(maxsize=None)
def _library() -> tuple[ctypes.CDLL | None, str]:
    """(the loaded kernel, "") or (None, why not). Built in a temporary folder, once per process."""
    cc = os.environ.get("CC", "cc")
    with tempfile.TemporaryDirectory(prefix="twostream-tvl1-") as d:
        src, lib = os.path.join(d, "tvl1_cpu.c"), os.path.join(d, "tvl1_cpu.so")
        with open(src, "w") as f:
            f.write(KERNEL_C)
        try:
            r = subprocess.run([cc, *CFLAGS, src, "-o", lib, "-lm"], capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            return None, f"cannot run the C compiler {cc!r} ({e})"
        if r.returncode != 0:
            return None, f"{cc} failed on {platform.machine()}: {r.stderr.strip().splitlines()[-1:]}"
        so = ctypes.CDLL(lib)  # the loaded library stays mapped after its file is removed
    fp, i64 = ctypes.c_void_p, ctypes.c_int64
    so.tvl1_inner.restype = i64
    so.tvl1_inner.argtypes = [fp] * 6 + [i64] * 5 + [ctypes.c_double] + [ctypes.c_float] * 3 + [fp]
    return so, ""


def available() -> bool:
    return _library()[0] is not None


def why_unavailable() -> str:
    return _library()[1]


def inner_iterations(
    u: torch.Tensor,
    p: torch.Tensor,
    ig: torch.Tensor,
    rho_c: torch.Tensor,
    inv_grad: torch.Tensor,
    going: torch.Tensor,
    n: int,
    every: int,
    scaled_eps: float,
    l_t: float,
    theta: float,
    taut: float,
) -> int:
    """Up to ``n`` inner iterations of each pair with ``going`` set, in place on ``u`` (B, 2, H, W)
    and ``p`` (B, 2, 2, H, W); ``going`` (B,) uint8 is cleared for the pairs that stop.
    Shapes as ``tvl1_torch.tvl1_step``; every tensor float32, contiguous, on the CPU.
    ``scaled_eps < 0``: no pair stops (fixed iterations). Returns the iterations run."""
    B, _, H, W = u.shape
    tensors = (u, p, ig, rho_c, inv_grad)
    for t in tensors:
        if t.dtype != torch.float32 or not t.is_contiguous() or t.device.type != "cpu" or len(t) != B:
            raise ValueError("tvl1_cpu.inner_iterations: float32 contiguous CPU tensors of one batch expected")
    if going.dtype != torch.uint8 or going.shape != (B,) or not going.is_contiguous():
        raise ValueError("tvl1_cpu.inner_iterations: going must be a contiguous uint8 tensor (B,)")
    if p.shape != (B, 2, 2, H, W) or ig.shape != (B, 2, H, W) or rho_c.shape != (B, H, W) or inv_grad.shape != (B, H, W):
        raise ValueError("tvl1_cpu.inner_iterations: shapes of u, p, ig, rho_c, inv_grad do not match")
    so, why = _library()
    if so is None:
        raise RuntimeError(f"the TV-L1 C kernel is not available: {why}")
    work = torch.empty(2 * W, dtype=torch.float32)
    ptrs = [t.data_ptr() for t in (*tensors, going)]
    return int(so.tvl1_inner(*ptrs, B, H, W, int(n), int(every), float(scaled_eps), l_t, theta, taut, work.data_ptr()))


__all__ = ["KERNEL_C", "available", "inner_iterations", "why_unavailable"]
