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
outside the input read zero and pass nothing back. The transforms run serially,
one (n, c) or (n, f) plane at a time: threaded, they ran slower (23.6 ms against
16.6 for the layer in bench_conv.py) while numpy's two BLAS threads spin after
each product, and each parallel version added about 5 s to the first call's
compile time. The products are numpy's matmul, as in im2col.
"""

from __future__ import annotations

import numpy as np

from tinygrad_bn.functional.conv import Window
from tinygrad_bn.kernels.compiled._jit import jit, row_sum

# G, for the filter transforms done in numpy (they are small).
G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])

# Channels x filters from which the 2.25x fewer multiplications outweigh the transforms
# (float32 fwd+bwd, batch 32, 16x16, this 2-core machine): C = F = 8 ran 1.7 ms Winograd
# vs 1.3 ms im2col, C = F = 16 3.5 vs 12 ms, C = F = 64 17 vs 22 ms; (64, 3, 32, 32) x
# (16, 3, 3, 3) ran 8.6 vs 4.7 ms (with 3 channels the products are a small part).
MIN_CHANNELS_X_FILTERS = 16 * 16


def worth_it(window: Window, groups: int, channels: int, filters: int) -> bool:
    """True when the convolution is 3x3, stride 1, dilation 1, one group and wide enough."""
    return (window.kernel == (3, 3) and window.stride == (1, 1) and window.dilation == (1, 1)
            and groups == 1 and channels * filters >= MIN_CHANNELS_X_FILTERS)


def tiles(window: Window) -> tuple[int, int]:
    """Tiles per column and per row: ceil(OH / 2), ceil(OW / 2)."""
    return -(-window.out[0] // 2), -(-window.out[1] // 2)


# G w Gᵀ of every filter at once: with row-major flattening, vec(G w Gᵀ) = (G ⊗ G) vec(w),
# one (16, 9) @ (9, F*C) product whose result is already U's (16, F, C) layout (the
# broadcast G @ w @ Gᵀ over the F*C filters ran 10x slower).
G_KRON = np.kron(G, G)


def filter_transform(w: np.ndarray) -> np.ndarray:
    """U (16, F, C) = G w Gᵀ of every (F, C, 3, 3) filter, in w's dtype (computed in float64)."""
    f, c = w.shape[:2]
    u = G_KRON @ w.reshape(f * c, 9).T.astype(np.float64)
    return u.astype(w.dtype).reshape(16, f, c)


def filter_gradient(du: np.ndarray) -> np.ndarray:
    """dw (F, C, 3, 3) = Gᵀ dU G from dU (16, F, C) (computed in float64)."""
    f, c = du.shape[1:]
    dw = G_KRON.T @ du.reshape(16, f * c).astype(np.float64)  # (9, F*C)
    return np.ascontiguousarray(dw.T).astype(du.dtype).reshape(f, c, 3, 3)


# Every transform works on whole tile rows: one loop over the tiles of a row per
# matrix entry. Tile b of a row covers columns 2b .. 2b+3, so planes are staged in
# local buffers split into even and odd columns (column 2b+k is even[b + k//2] or
# odd[b + k//2]): every loop is then unit-stride and runs as SIMD lanes (with
# stride-2 access the first versions ran at one element per cycle, 5x slower).
# Indexing is into flat arrays with unsigned offsets: a signed index costs a
# negative-index test per access. numba turns int64 mixed with uint64 into
# float64, so every constant in the index arithmetic is a uint64.
_0, _1, _2, _3, _4 = (np.uint64(k) for k in range(5))


@jit
def _split_columns(src, rows, cols, top, left, even, odd, span):
    """Copy src (rows, cols) to even/odd buffers (span columns each) at (top, left), by column parity."""
    for h in range(rows):
        to = np.uint64((top + h) * span)
        row = src[h]
        for k in range(cols):
            col = left + k
            if col % 2 == 0:
                even[to + np.uint64(col // 2)] = row[k]
            else:
                odd[to + np.uint64(col // 2)] = row[k]


@jit
def _input_task(x, top, left, th, tw, v, t):
    """Task t = (n, c): V[:, c, tiles of n] = Bᵀ d B of each 4x4 patch (zeros outside the input).

    The patches' 16 elements are first gathered into 16 rows of all the plane's
    tiles, so the transform is 32 unit-stride loops over every tile at once
    (loops over one row of 8 tiles were too short to gain from SIMD).
    """
    n_all, channels, height, width = x.shape
    c, n = t // n_all, t % n_all  # channel-major: V's rows fill in order
    rows, cols = min(height, 2 * th + 2 - top), min(width, 2 * tw + 2 - left)
    padded = np.zeros((2 * th + 2, 2 * tw + 2), dtype=x.dtype)
    padded[top:top + rows, left:left + cols] = x[n, c, :rows, :cols]
    count = np.uint64(th * tw)
    d = np.empty((16, th * tw), dtype=x.dtype)
    for i in range(4):
        for j in range(4):
            di = d[4 * i + j]
            for a in range(th):
                for b in range(tw):
                    di[a * tw + b] = padded[2 * a + i, 2 * b + j]
    df = d.reshape(-1)
    r = np.empty(16 * th * tw, dtype=x.dtype)
    for j in range(_4):  # r = Bᵀ d: rows d0 - d2, d1 + d2, d2 - d1, d1 - d3
        o0, o1, o2, o3 = j * count, (_4 + j) * count, (np.uint64(8) + j) * count, (np.uint64(12) + j) * count
        for k in range(count):
            d0, d1, d2, d3 = df[o0 + k], df[o1 + k], df[o2 + k], df[o3 + k]
            r[o0 + k], r[o1 + k], r[o2 + k], r[o3 + k] = d0 - d2, d1 + d2, d2 - d1, d1 - d3
    vf = v.reshape(-1)
    tiles_all = np.uint64(v.shape[2])
    stride = np.uint64(channels) * tiles_all  # from one xi to the next in V
    start = np.uint64(c) * tiles_all + np.uint64(n) * count
    for i in range(_4):  # V = r B: columns c0 - c2, c1 + c2, c2 - c1, c1 - c3
        ri = _4 * i * count
        o = start + _4 * i * stride
        for k in range(count):
            c0, c1, c2, c3 = r[ri + k], r[ri + count + k], r[ri + _2 * count + k], r[ri + _3 * count + k]
            vf[o + k] = c0 - c2
            vf[o + stride + k] = c1 + c2
            vf[o + _2 * stride + k] = c2 - c1
            vf[o + _3 * stride + k] = c1 - c3


@jit
def input_transform(x, top, left, th, tw, v):
    """V (16, C, T) of an (N, C, H, W) input."""
    for t in range(x.shape[0] * x.shape[1]):
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


@jit
def output_transform(m, bias, has_bias, th, tw, out):
    """out (N, F, OH, OW) from M (16, F, T), plus the bias."""
    for t in range(out.shape[0] * out.shape[1]):
        _output_task(m, bias, has_bias, th, tw, out, t)


@jit
def _grad_task(g, th, tw, e, db, t):
    """Task t = (n, f): E[:, f, tiles of n] = A e Aᵀ of each 2x2 tile of g (zeros past OH, OW); db part.

    Gathered first into 4 rows of all the plane's tiles, as in `_input_task`.
    """
    n_all, filters, oh, ow = g.shape
    f, n = t // n_all, t % n_all  # filter-major: rows of E fill in order
    plane = g[n, f]
    total = 0.0
    for p in range(oh):
        total += row_sum(plane[p])
    db[n, f] = total  # float64
    padded = np.zeros((2 * th, 2 * tw), dtype=g.dtype)
    padded[:oh, :ow] = plane
    count = np.uint64(th * tw)
    q = np.empty((4, th * tw), dtype=g.dtype)
    for i in range(2):
        for j in range(2):
            qi = q[2 * i + j]
            for a in range(th):
                for b in range(tw):
                    qi[a * tw + b] = padded[2 * a + i, 2 * b + j]
    qf = q.reshape(-1)
    s = np.empty(8 * th * tw, dtype=g.dtype)  # s = A e: (4 rows, 2 columns)
    for j in range(_2):  # rows e0, e0 + e1, e0 - e1, -e1
        o0, o1 = j * count, (_2 + j) * count
        for k in range(count):
            g0, g1 = qf[o0 + k], qf[o1 + k]
            s[j * count + k] = g0
            s[(_2 + j) * count + k] = g0 + g1
            s[(_4 + j) * count + k] = g0 - g1
            s[(np.uint64(6) + j) * count + k] = -g1
    ef = e.reshape(-1)
    tiles_all = np.uint64(e.shape[2])
    stride = np.uint64(filters) * tiles_all
    start = np.uint64(f) * tiles_all + np.uint64(n) * count
    for i in range(_4):  # E = s Aᵀ: columns x0, x0 + x1, x0 - x1, -x1
        si, o = _2 * i * count, start + _4 * i * stride
        for k in range(count):
            x0, x1 = s[si + k], s[si + count + k]
            ef[o + k] = x0
            ef[o + stride + k] = x0 + x1
            ef[o + _2 * stride + k] = x0 - x1
            ef[o + _3 * stride + k] = -x1


@jit
def grad_transform(g, th, tw, e, db):
    """E (16, F, T) from g (N, F, OH, OW), and db's per-example parts (N, F) in float64."""
    for t in range(g.shape[0] * g.shape[1]):
        _grad_task(g, th, tw, e, db, t)


@jit
def _dx_task(dv, top, left, th, tw, dx, t):
    """Task t = (n, c): dx[n, c] = Σ over tiles of B dV Bᵀ inside the input, added tile row by tile row."""
    n_all, channels, height, width = dx.shape
    c, n = t // n_all, t % n_all  # channel-major: dV's rows are read in order
    u_th, u_tw = np.uint64(th), np.uint64(tw)
    span = u_tw + _1
    acc_even = np.zeros((2 * th + 2) * (tw + 1), dtype=dx.dtype)
    acc_odd = np.zeros((2 * th + 2) * (tw + 1), dtype=dx.dtype)
    re = np.empty(4 * (tw + 1), dtype=dx.dtype)  # r = dV B of one tile row, even columns
    ro = np.empty(4 * (tw + 1), dtype=dx.dtype)
    df = dv.reshape(-1)
    tiles_all = np.uint64(dv.shape[2])
    stride = np.uint64(channels) * tiles_all
    start = np.uint64(c) * tiles_all + np.uint64(n) * u_th * u_tw
    for a in range(u_th):
        at = start + a * u_tw
        re[:] = 0
        ro[:] = 0
        for i in range(_4):  # r = dV B (the adjoint of · B); neighbouring tiles share 2 columns
            ri, o = i * span, at + _4 * i * stride
            # One sweep per column offset: inside a sweep no two tiles touch the same column.
            for b in range(u_tw):  # column 2b
                re[ri + b] += df[o + b]
            for b in range(u_tw):  # column 2b + 2
                re[ri + b + _1] += df[o + stride + b] + df[o + _2 * stride + b] - df[o + b]
            for b in range(u_tw):  # column 2b + 1
                ro[ri + b] += df[o + stride + b] - df[o + _2 * stride + b] + df[o + _3 * stride + b]
            for b in range(u_tw):  # column 2b + 3
                ro[ri + b + _1] -= df[o + _3 * stride + b]
        row = _2 * a * span
        for k in range(span):  # B r: rows r0, r1 - r2 + r3, r1 + r2 - r0, -r3
            y0, y1, y2, y3 = re[k], re[span + k], re[_2 * span + k], re[_3 * span + k]
            acc_even[row + k] += y0
            acc_even[row + span + k] += y1 - y2 + y3
            acc_even[row + _2 * span + k] += y1 + y2 - y0
            acc_even[row + _3 * span + k] -= y3
        for k in range(span):
            y0, y1, y2, y3 = ro[k], ro[span + k], ro[_2 * span + k], ro[_3 * span + k]
            acc_odd[row + k] += y0
            acc_odd[row + span + k] += y1 - y2 + y3
            acc_odd[row + _2 * span + k] += y1 + y2 - y0
            acc_odd[row + _3 * span + k] -= y3
    plane = dx[n, c]
    plane[:, :] = 0
    rows, cols = min(height, 2 * th + 2 - top), min(width, 2 * tw + 2 - left)
    for h in range(rows):
        at = (top + h) * (tw + 1)
        out = plane[h]
        for k in range(cols):
            col = left + k
            out[k] = acc_even[at + col // 2] if col % 2 == 0 else acc_odd[at + col // 2]


@jit
def dx_transform(dv, top, left, th, tw, dx):
    """dx (N, C, H, W) from dV (16, C, T)."""
    for t in range(dx.shape[0] * dx.shape[1]):
        _dx_task(dv, top, left, th, tw, dx, t)
