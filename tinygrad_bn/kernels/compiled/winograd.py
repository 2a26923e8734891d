"""3x3 stride-1 convolution by Winograd's F(2x2, 3x3): 2.25x fewer multiplications in the products.

The numba conv kernel uses this for 3x3 filters, stride 1, dilation 1, one
group, and enough channels for the products to dominate (`worth_it`). Output
tiles of 2x2 read 4x4 input patches d; with the constant matrices

    Bᵀ = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
    G  = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
    Aᵀ = [[1, 1, 1, 0], [0, 1, -1, -1]]

each filter w (3x3) becomes U = G w Gᵀ and each patch V = Bᵀ d B (4x4), and a
tile of output is Aᵀ [Σ_c U[f, c] ⊙ V[c]] A. Grouping the 16 positions ξ of
the 4x4 products, the sum over channels is 16 matrix products

    M_ξ = U_ξ (F, C) @ V_ξ (C, T)          T = tiles = N * ceil(OH/2) * ceil(OW/2)

Backward is the exact adjoint of this bilinear map (so it is the derivative
of what forward computed, not of a different rounding of the convolution).
With E = A e Aᵀ the 4x4 spread of each 2x2 output-gradient tile e:

    dX_ξ = U_ξᵀ @ E_ξ,   dx patch = B dX Bᵀ  (patches overlap by 2: added)
    dU_ξ = E_ξ @ V_ξᵀ,   dw = Gᵀ dU G
    db   = Σ e

Output positions past OH, OW (odd sizes) get zero gradient, and patch elements
outside the input read zero and pass nothing back. Every loop here is a task
per (n, c) or (n, f) plane with a fixed order inside, so results do not depend
on the thread count; the products are numpy's matmul, as in im2col.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from tinygrad_bn.functional.conv import Window
from tinygrad_bn.kernels.compiled._jit import jit, row_sum

# G and Gᵀ's adjoint, for the filter transforms done in numpy (they are small).
G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])

# Channels x filters from which the 2.25x fewer products outweigh the transforms:
# (32, 64, 16, 16) x (64, 64, 3, 3) ran in ... (see bench_conv.py); with C = 3 the
# products are a small part of the layer and im2col wins.
MIN_CHANNELS_X_FILTERS = 16 * 16


def worth_it(window: Window, groups: int, channels: int, filters: int) -> bool:
    """True when the convolution is 3x3, stride 1, dilation 1, one group and wide enough."""
    return (window.kernel == (3, 3) and window.stride == (1, 1) and window.dilation == (1, 1)
            and groups == 1 and channels * filters >= MIN_CHANNELS_X_FILTERS)


def tiles(window: Window) -> tuple[int, int]:
    """Tiles per column and per row: ceil(OH / 2), ceil(OW / 2)."""
    return -(-window.out[0] // 2), -(-window.out[1] // 2)


def filter_transform(w: np.ndarray) -> np.ndarray:
    """U (16, F, C) = G w Gᵀ of every (F, C, 3, 3) filter, in w's dtype (computed in float64)."""
    u = G @ w.astype(np.float64) @ G.T  # (F, C, 4, 4)
    f, c = w.shape[:2]
    return np.ascontiguousarray(u.reshape(f, c, 16).transpose(2, 0, 1)).astype(w.dtype)


def filter_gradient(du: np.ndarray) -> np.ndarray:
    """dw (F, C, 3, 3) = Gᵀ dU G from dU (16, F, C) (computed in float64)."""
    f, c = du.shape[1:]
    q = du.astype(np.float64).transpose(1, 2, 0).reshape(f, c, 4, 4)
    return (G.T @ q @ G).astype(du.dtype)


# Every transform works on whole tile rows: one loop over the tiles of a row per
# matrix entry, so the loops run as SIMD lanes. Planes are staged in local
# zero-bordered buffers (no bounds tests), and all indexing is into flat arrays
# with unsigned offsets: a view per row costs a reference count update, and a
# signed index a negative-index test, each of which made these loops 3-5x slower.
# (numba turns int64 mixed with uint64 into float64: every constant is a uint64.)
_0, _1, _2, _3, _4 = (np.uint64(k) for k in range(5))


@jit
def _input_task(x, top, left, th, tw, v, t):
    """Task t = (n, c): V[:, c, tiles of n] = Bᵀ d B of each 4x4 patch (zeros outside the input)."""
    n_all, channels, height, width = x.shape
    c, n = t // n_all, t % n_all  # channel-major: V's rows fill in order
    rows, cols = min(height, 2 * th + 2 - top), min(width, 2 * tw + 2 - left)
    u_th, u_tw, u_top, u_left = np.uint64(th), np.uint64(tw), np.uint64(top), np.uint64(left)
    span = _2 * u_tw + _2
    padded = np.zeros((2 * th + 2) * (2 * tw + 2), dtype=x.dtype)
    xf, vf = x.reshape(-1), v.reshape(-1)
    plane = np.uint64((n * channels + c) * height * width)
    u_width = np.uint64(width)
    for h in range(np.uint64(rows)):
        to, at = (u_top + h) * span + u_left, plane + h * u_width
        for k in range(np.uint64(cols)):
            padded[to + k] = xf[at + k]
    r = np.empty(4 * (2 * tw + 2), dtype=x.dtype)
    r1, r2, r3 = span, _2 * span, _3 * span
    tiles_all = np.uint64(v.shape[2])
    stride = np.uint64(channels) * tiles_all  # from one xi to the next in V
    start = np.uint64(c) * tiles_all + np.uint64(n) * u_th * u_tw
    for a in range(u_th):
        row = _2 * a * span
        for k in range(span):  # r = Bᵀ d, for every column at once
            d0, d1 = padded[row + k], padded[row + span + k]
            d2, d3 = padded[row + r2 + k], padded[row + r3 + k]
            r[k] = d0 - d2
            r[r1 + k] = d1 + d2
            r[r2 + k] = d2 - d1
            r[r3 + k] = d1 - d3
        at = start + a * u_tw
        for i in range(_4):  # V = r B, for every tile of the row at once
            ri = i * span
            o = at + _4 * i * stride
            for b in range(u_tw):
                q = ri + _2 * b
                vf[o + b] = r[q] - r[q + _2]
                vf[o + stride + b] = r[q + _1] + r[q + _2]
                vf[o + _2 * stride + b] = r[q + _2] - r[q + _1]
                vf[o + _3 * stride + b] = r[q + _1] - r[q + _3]


@jit(parallel=True)
def input_transform(x, top, left, th, tw, v, threaded):
    """V (16, C, T) of an (N, C, H, W) input."""
    tasks = x.shape[0] * x.shape[1]
    if threaded:
        for t in prange(tasks):
            _input_task(x, top, left, th, tw, v, t)
    else:
        for t in range(tasks):
            _input_task(x, top, left, th, tw, v, t)


@jit
def _output_task(m, bias, has_bias, th, tw, out, t):
    """Task t = (n, f): out[n, f] = Aᵀ M A of each tile (+ b[f]), cropped to (OH, OW)."""
    n_all, filters, oh, ow = out.shape
    f, n = t // n_all, t % n_all  # filter-major: rows of M / E in order
    b0 = bias[f] if has_bias else out.dtype.type(0)
    u_th, u_tw = np.uint64(th), np.uint64(tw)
    full = np.empty(4 * th * tw, dtype=out.dtype)
    s = np.empty(8 * tw, dtype=out.dtype)  # (2, 4, tw)
    mf = m.reshape(-1)
    tiles_all = np.uint64(m.shape[2])
    stride = np.uint64(filters) * tiles_all
    start = np.uint64(f) * tiles_all + np.uint64(n) * u_th * u_tw
    width = _2 * u_tw
    for a in range(u_th):
        at = start + a * u_tw
        for j in range(_4):  # s = Aᵀ M, for every tile of the row at once
            o = at + j * stride
            s0, s1 = j * u_tw, (_4 + j) * u_tw
            for b in range(u_tw):
                m0, m1 = mf[o + b], mf[o + _4 * stride + b]
                m2, m3 = mf[o + np.uint64(8) * stride + b], mf[o + np.uint64(12) * stride + b]
                s[s0 + b] = m0 + m1 + m2
                s[s1 + b] = m1 - m2 - m3
        for i in range(_2):  # (Aᵀ M) A
            row, si = (_2 * a + i) * width, _4 * i * u_tw
            for b in range(u_tw):
                c0, c1 = s[si + b], s[si + u_tw + b]
                c2, c3 = s[si + _2 * u_tw + b], s[si + _3 * u_tw + b]
                full[row + _2 * b] = c0 + c1 + c2 + b0
                full[row + _2 * b + _1] = c1 - c2 - c3 + b0
    out[n, f] = full.reshape(2 * th, 2 * tw)[:oh, :ow]


@jit(parallel=True)
def output_transform(m, bias, has_bias, th, tw, out, threaded):
    """out (N, F, OH, OW) from M (16, F, T), plus the bias."""
    tasks = out.shape[0] * out.shape[1]
    if threaded:
        for t in prange(tasks):
            _output_task(m, bias, has_bias, th, tw, out, t)
    else:
        for t in range(tasks):
            _output_task(m, bias, has_bias, th, tw, out, t)


@jit
def _grad_task(g, th, tw, e, db, t):
    """Task t = (n, f): E[:, f, tiles of n] = A e Aᵀ of each 2x2 tile of g (zeros past OH, OW); db part."""
    n_all, filters, oh, ow = g.shape
    f, n = t // n_all, t % n_all  # filter-major: rows of M / E in order
    padded2 = np.zeros((2 * th, 2 * tw), dtype=g.dtype)
    padded2[:oh, :ow] = g[n, f]
    padded = padded2.reshape(-1)
    db[n, f] = row_sum(padded)  # float64; the padding adds zeros
    u_th, u_tw = np.uint64(th), np.uint64(tw)
    span = _2 * u_tw
    s = np.empty(8 * tw, dtype=g.dtype)  # (4, 2 tw)
    ef = e.reshape(-1)
    tiles_all = np.uint64(e.shape[2])
    stride = np.uint64(filters) * tiles_all
    start = np.uint64(f) * tiles_all + np.uint64(n) * u_th * u_tw
    for a in range(u_th):
        row = _2 * a * span
        for k in range(span):  # s = A e: rows e0, e0 + e1, e0 - e1, -e1
            g0, g1 = padded[row + k], padded[row + span + k]
            s[k] = g0
            s[span + k] = g0 + g1
            s[_2 * span + k] = g0 - g1
            s[_3 * span + k] = -g1
        at = start + a * u_tw
        for i in range(_4):  # E = s Aᵀ
            si, o = i * span, at + _4 * i * stride
            for b in range(u_tw):
                x0, x1 = s[si + _2 * b], s[si + _2 * b + _1]
                ef[o + b] = x0
                ef[o + stride + b] = x0 + x1
                ef[o + _2 * stride + b] = x0 - x1
                ef[o + _3 * stride + b] = -x1


@jit(parallel=True)
def grad_transform(g, th, tw, e, db, threaded):
    """E (16, F, T) from g (N, F, OH, OW), and db's per-example parts (N, F) in float64."""
    tasks = g.shape[0] * g.shape[1]
    if threaded:
        for t in prange(tasks):
            _grad_task(g, th, tw, e, db, t)
    else:
        for t in range(tasks):
            _grad_task(g, th, tw, e, db, t)


@jit
def _dx_task(dv, top, left, th, tw, dx, t):
    """Task t = (n, c): dx[n, c] = Σ over tiles of B dV Bᵀ inside the input, added tile row by tile row."""
    n_all, channels, height, width = dx.shape
    c, n = t // n_all, t % n_all  # channel-major: V's rows fill in order
    u_th, u_tw = np.uint64(th), np.uint64(tw)
    span = _2 * u_tw + _2
    acc2 = np.zeros((2 * th + 2, 2 * tw + 2), dtype=dx.dtype)
    acc = acc2.reshape(-1)
    r = np.zeros(4 * (2 * tw + 2), dtype=dx.dtype)
    df = dv.reshape(-1)
    tiles_all = np.uint64(dv.shape[2])
    stride = np.uint64(channels) * tiles_all
    start = np.uint64(c) * tiles_all + np.uint64(n) * u_th * u_tw
    for a in range(u_th):
        at = start + a * u_tw
        r[:] = 0
        for i in range(_4):  # r = dV B: the adjoint of · B; the tiles of a row overlap by 2 columns
            ri, o = i * span, at + _4 * i * stride
            # One sweep per column offset: inside a sweep no two tiles touch the same column.
            for b in range(u_tw):
                r[ri + _2 * b] += df[o + b]
            for b in range(u_tw):
                r[ri + _2 * b + _2] += df[o + stride + b] + df[o + _2 * stride + b] - df[o + b]
            for b in range(u_tw):
                r[ri + _2 * b + _1] += df[o + stride + b] - df[o + _2 * stride + b] + df[o + _3 * stride + b]
            for b in range(u_tw):
                r[ri + _2 * b + _3] -= df[o + _3 * stride + b]
        row = _2 * a * span
        for k in range(span):  # B r: rows r0, r1 - r2 + r3, r1 + r2 - r0, -r3
            y0, y1, y2, y3 = r[k], r[span + k], r[_2 * span + k], r[_3 * span + k]
            acc[row + k] += y0
            acc[row + span + k] += y1 - y2 + y3
            acc[row + _2 * span + k] += y1 + y2 - y0
            acc[row + _3 * span + k] -= y3
    rows, cols = min(height, 2 * th + 2 - top), min(width, 2 * tw + 2 - left)
    plane = dx[n, c]
    plane[:, :] = 0
    plane[:rows, :cols] = acc2[top:top + rows, left:left + cols]


@jit(parallel=True)
def dx_transform(dv, top, left, th, tw, dx, threaded):
    """dx (N, C, H, W) from dV (16, C, T)."""
    tasks = dx.shape[0] * dx.shape[1]
    if threaded:
        for t in prange(tasks):
            _dx_task(dv, top, left, th, tw, dx, t)
    else:
        for t in range(tasks):
            _dx_task(dv, top, left, th, tw, dx, t)
