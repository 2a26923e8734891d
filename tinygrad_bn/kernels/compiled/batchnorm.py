"""NumbaBatchNormFused: tinygrad_bn.kernels.batchnorm's kernel as compiled loops.

The maths and its notation are the numpy kernel's (see its docstring and
docs/batchnorm.md); this module changes how memory is traversed.

Passes over memory (the minimum: the statistics must be complete before the
first output value, and backward's two sums before the first dx value):

    forward    1. read x: per-channel sums of (x - k) and (x - k)^2
               2. read x, write y = (x - k) * gamma r + (beta - (mu - k) gamma r)
    backward   1. read g and x: per-channel sums of g and g (x - k)
               2. read g and x, write dx = g gamma r + a (x - k) + e

so a forward + backward reads six arrays of x's size and writes two. Nothing of
x's size is saved for backward: it rereads x itself.

Accuracy. Sums are float64 whatever the input dtype. Each channel is centred on
k = its first value (x[0, c] or x[0, c, 0]), the numpy kernel's shift correction
with the estimate taken from the data instead of from an extra pass: with
shift = mean(x - k), mu = k + shift and var = mean((x - k)^2) - shift^2. A sample
lies within sqrt(n) standard deviations of its channel mean, so the cancellation
in var costs at most a factor n of float64 resolution, far below float32's; and
for values near a large offset (1e4) x - k is exact in float32. The elementwise
passes compute in the input's dtype, as the numpy kernel does.

Determinism: see `_jit` (fixed blocks, fixed order, no fastmath).
"""

from __future__ import annotations

import numpy as np
from numba import prange

from tinygrad_bn.autograd import Context, Function, is_grad_enabled
from tinygrad_bn.kernels import batchnorm as numpy_kernel
from tinygrad_bn.kernels.batchnorm import channel_layout
from tinygrad_bn.kernels.compiled._jit import (
    COLUMN_BLOCK,
    MIN_BLOCK_ROWS,
    ROW_BLOCKS,
    block_size,
    jit,
    launch,
    row_sum,
)
from tinygrad_bn.tensor import Tensor

# Every inner loop runs over 1-D contiguous views with indices from 0: numba then
# knows no index is negative and the loop vectorises. Indexing x[n, c0 + j] made
# the statistics pass 4-8x slower (a wraparound check on every access).

# ---------------------------------------------------------------- (N, C): channels along rows


@jit
def _sums_tile_2d(x, k, g, s1, s2, r0, r1, c0, c1):
    """Rows r0:r1, columns c0:c1 of (N, C) x: s1 = sum(u), s2 = sum(u (x - k)), per column.

    u = x - k in forward (g is None) and u = g in backward. k is float64, so every
    difference and product here is float64.
    """
    w = c1 - c0
    kk, a1, a2 = k[c0:c1], s1[c0:c1], s2[c0:c1]
    for j in range(w):
        a1[j] = 0.0
        a2[j] = 0.0
    n = r0
    # Four rows per sweep: a quarter of the accumulator loads and stores.
    while n + 4 <= r1:
        x0, x1, x2, x3 = x[n, c0:c1], x[n + 1, c0:c1], x[n + 2, c0:c1], x[n + 3, c0:c1]
        if g is None:
            for j in range(w):
                d0, d1, d2, d3 = x0[j] - kk[j], x1[j] - kk[j], x2[j] - kk[j], x3[j] - kk[j]
                a1[j] += (d0 + d1) + (d2 + d3)
                a2[j] += (d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3)
        else:
            g0, g1, g2, g3 = g[n, c0:c1], g[n + 1, c0:c1], g[n + 2, c0:c1], g[n + 3, c0:c1]
            for j in range(w):
                u0, u1, u2, u3 = np.float64(g0[j]), np.float64(g1[j]), np.float64(g2[j]), np.float64(g3[j])
                a1[j] += (u0 + u1) + (u2 + u3)
                a2[j] += (u0 * (x0[j] - kk[j]) + u1 * (x1[j] - kk[j])) + (
                    u2 * (x2[j] - kk[j]) + u3 * (x3[j] - kk[j]))
        n += 4
    while n < r1:
        xn = x[n, c0:c1]
        for j in range(w):
            d = xn[j] - kk[j]
            u = d if g is None else np.float64(g[n, c0 + j])
            a1[j] += u
            a2[j] += u * d
        n += 1


@jit
def _sums_task_2d(x, k, g, p1, p2, t, rows, col_blocks):
    """Task t of _sums_2d: one (row block b, column block) tile into p1[b], p2[b]."""
    b, cb = t // col_blocks, t % col_blocks
    n, c = x.shape
    _sums_tile_2d(x, k, g, p1[b], p2[b], b * rows, min(n, (b + 1) * rows),
                  cb * COLUMN_BLOCK, min(c, (cb + 1) * COLUMN_BLOCK))


@jit(parallel=True)
def _sums_2d(x, k, g, threaded):
    """Per-channel (sum(u), sum(u (x - k))) of (N, C) x over fixed tiles, combined in order."""
    n, c = x.shape
    rows = block_size(n, ROW_BLOCKS, MIN_BLOCK_ROWS)
    row_blocks, col_blocks = -(-n // rows), -(-c // COLUMN_BLOCK)
    p1 = np.empty((row_blocks, c))
    p2 = np.empty((row_blocks, c))
    tasks = row_blocks * col_blocks
    if threaded:
        for t in prange(tasks):
            _sums_task_2d(x, k, g, p1, p2, np.int64(t), rows, col_blocks)
    else:
        for t in range(tasks):
            _sums_task_2d(x, k, g, p1, p2, t, rows, col_blocks)
    s1, s2 = p1[0].copy(), p2[0].copy()
    for b in range(1, row_blocks):
        q1, q2 = p1[b], p2[b]
        for j in range(c):
            s1[j] += q1[j]
            s2[j] += q2[j]
    return s1, s2


@jit
def _affine_rows_2d(x, k, a, g, kg, e, out, r0, r1):
    """out = (x - k) a + e (+ g kg when g is given) on rows r0:r1, parameters per column."""
    for n in range(r0, r1):
        xn, on = x[n], out[n]
        if g is None:
            for j in range(xn.shape[0]):
                on[j] = (xn[j] - k[j]) * a[j] + e[j]
        else:
            gn = g[n]
            for j in range(xn.shape[0]):
                on[j] = gn[j] * kg[j] + (xn[j] - k[j]) * a[j] + e[j]


@jit(parallel=True)
def _affine_2d(x, k, a, g, kg, e, out, threaded):
    """The elementwise pass over (N, C) in row blocks (no reduction: any split gives the same bits)."""
    n = x.shape[0]
    rows = max(1, (256 * 1024) // max(1, x.shape[1] * x.itemsize))  # ~256 KiB of x per block
    blocks = -(-n // rows)
    if threaded:
        for b in prange(blocks):
            r0 = np.int64(b) * rows
            _affine_rows_2d(x, k, a, g, kg, e, out, r0, min(n, r0 + rows))
    else:
        for b in range(blocks):
            _affine_rows_2d(x, k, a, g, kg, e, out, b * rows, min(n, (b + 1) * rows))


# ---------------------------------------------------------------- (N, C, L): channels of contiguous runs


@jit
def _sums_tile_3d(x, c, k, g, acc1, acc2, r0, r1, l0, l1):
    """Rows r0:r1, positions l0:l1 of channel c: (sum(u), sum(u (x - k))), u as in _sums_tile_2d."""
    w = l1 - l0
    for j in range(w):
        acc1[j] = 0.0
        acc2[j] = 0.0
    n = r0
    while n + 4 <= r1:  # four rows per sweep, as in _sums_tile_2d
        x0, x1, x2, x3 = x[n, c, l0:l1], x[n + 1, c, l0:l1], x[n + 2, c, l0:l1], x[n + 3, c, l0:l1]
        if g is None:
            for j in range(w):
                d0, d1, d2, d3 = x0[j] - k, x1[j] - k, x2[j] - k, x3[j] - k
                acc1[j] += (d0 + d1) + (d2 + d3)
                acc2[j] += (d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3)
        else:
            g0, g1, g2, g3 = g[n, c, l0:l1], g[n + 1, c, l0:l1], g[n + 2, c, l0:l1], g[n + 3, c, l0:l1]
            for j in range(w):
                u0, u1, u2, u3 = np.float64(g0[j]), np.float64(g1[j]), np.float64(g2[j]), np.float64(g3[j])
                acc1[j] += (u0 + u1) + (u2 + u3)
                acc2[j] += (u0 * (x0[j] - k) + u1 * (x1[j] - k)) + (u2 * (x2[j] - k) + u3 * (x3[j] - k))
        n += 4
    while n < r1:
        xn = x[n, c, l0:l1]
        for j in range(w):
            d = xn[j] - k
            u = d if g is None else np.float64(g[n, c, l0 + j])
            acc1[j] += u
            acc2[j] += u * d
        n += 1
    return row_sum(acc1[:w]), row_sum(acc2[:w])


@jit
def _sums_task_3d(x, k, g, p1, p2, t, rows, row_blocks, col_blocks):
    """Task t of _sums_3d: one (channel, row block, column block) tile into p1/p2[c, b, cb]."""
    c, rest = t // (row_blocks * col_blocks), t % (row_blocks * col_blocks)
    b, cb = rest // col_blocks, rest % col_blocks
    n, length = x.shape[0], x.shape[2]
    acc1 = np.empty(min(length, COLUMN_BLOCK))
    acc2 = np.empty_like(acc1)
    p1[c, b, cb], p2[c, b, cb] = _sums_tile_3d(
        x, c, k[c], g, acc1, acc2, b * rows, min(n, (b + 1) * rows),
        cb * COLUMN_BLOCK, min(length, (cb + 1) * COLUMN_BLOCK),
    )


@jit(parallel=True)
def _sums_3d(x, k, g, threaded):
    """Per-channel (sum(u), sum(u (x - k))) of (N, C, L) x over fixed tiles, combined in order."""
    n, channels, length = x.shape
    # Split the batch only as far as needed for ROW_BLOCKS tasks in all.
    rows = block_size(n, max(1, -(-ROW_BLOCKS // channels)), 1)
    row_blocks, col_blocks = -(-n // rows), -(-length // COLUMN_BLOCK)
    p1 = np.empty((channels, row_blocks, col_blocks))
    p2 = np.empty_like(p1)
    tasks = channels * row_blocks * col_blocks
    if threaded:
        for t in prange(tasks):
            _sums_task_3d(x, k, g, p1, p2, np.int64(t), rows, row_blocks, col_blocks)
    else:
        for t in range(tasks):
            _sums_task_3d(x, k, g, p1, p2, t, rows, row_blocks, col_blocks)
    s1, s2 = np.empty(channels), np.empty(channels)
    for c in range(channels):
        s1[c] = row_sum(p1[c].ravel())
        s2[c] = row_sum(p2[c].ravel())
    return s1, s2


@jit
def _affine_rows_3d(x, k, a, g, kg, e, out, i0, i1):
    """_affine_rows_2d for (N*C, L) views: row i is channel i % C."""
    channels = k.shape[0]
    for i in range(i0, i1):
        c = i % channels
        kc, ac, ec = k[c], a[c], e[c]
        xi, oi = x[i], out[i]
        if g is None:
            for j in range(xi.shape[0]):
                oi[j] = (xi[j] - kc) * ac + ec
        else:
            gi, kgc = g[i], kg[c]
            for j in range(xi.shape[0]):
                oi[j] = gi[j] * kgc + (xi[j] - kc) * ac + ec


@jit(parallel=True)
def _affine_3d(x, k, a, g, kg, e, out, threaded):
    """The elementwise pass over an (N*C, L) view in blocks of rows."""
    n = x.shape[0]
    rows = max(1, (256 * 1024) // max(1, x.shape[1] * x.itemsize))
    blocks = -(-n // rows)
    if threaded:
        for b in prange(blocks):
            r0 = np.int64(b) * rows
            _affine_rows_3d(x, k, a, g, kg, e, out, r0, min(n, r0 + rows))
    else:
        for b in range(blocks):
            _affine_rows_3d(x, k, a, g, kg, e, out, b * rows, min(n, (b + 1) * rows))


# ---------------------------------------------------------------- one call per direction

# Each direction is one compiled call: the per-channel arithmetic between the two
# passes runs in it too (as numpy calls it cost ~100 us per step at (256, 1024)).


@jit
def _forward_constants(s1, s2, count, eps, w, b, k, x):
    """shift = mean(x - k), biased var, 1/std (float64), and y's (k, scale, offset) in x's dtype."""
    c = s1.shape[0]
    shift, var, inv_std = np.empty(c), np.empty(c), np.empty(c)
    k_x, scale_x, offset_x = np.empty(c, x.dtype), np.empty(c, x.dtype), np.empty(c, x.dtype)
    for j in range(c):
        shift[j] = s1[j] / count
        var[j] = max(s2[j] / count - shift[j] * shift[j], 0.0)
        inv_std[j] = 1.0 / np.sqrt(var[j] + eps)
        scale = w[j] * inv_std[j]
        k_x[j], scale_x[j], offset_x[j] = k[j], scale, b[j] - shift[j] * scale
    return shift, var, inv_std, k_x, scale_x, offset_x


@jit
def _backward_constants(sum_g, sum_gxk, count, w, k, shift, inv_std, x):
    """dgamma (float64) and dx's (k, kg, a, e) in x's dtype: dx = kg g + a (x - k) + e."""
    c = sum_g.shape[0]
    dgamma = np.empty(c)
    k_x, kg_x = np.empty(c, x.dtype), np.empty(c, x.dtype)
    a_x, e_x = np.empty(c, x.dtype), np.empty(c, x.dtype)
    for j in range(c):
        r = inv_std[j]
        dgamma[j] = r * (sum_gxk[j] - shift[j] * sum_g[j])  # sum(g (x - mu)) r, x - mu = (x - k) - shift
        kg = w[j] * r
        a = -kg * r * dgamma[j] / count
        k_x[j], kg_x[j], a_x[j] = k[j], kg, a
        e_x[j] = -kg * sum_g[j] / count - a * shift[j]
    return dgamma, k_x, kg_x, a_x, e_x


@jit
def _forward_2d(x, w, b, eps, out, threaded):
    k = x[0].astype(np.float64)  # each channel's first value
    s1, s2 = _sums_2d(x, k, None, threaded)
    shift, var, inv_std, k_x, scale, offset = _forward_constants(s1, s2, x.shape[0], eps, w, b, k, x)
    _affine_2d(x, k_x, scale, None, None, offset, out, threaded)
    return k, shift, var, inv_std


@jit
def _forward_3d(x, w, b, eps, out, threaded):
    n, c, length = x.shape
    k = x[0, :, 0].astype(np.float64)
    s1, s2 = _sums_3d(x, k, None, threaded)
    shift, var, inv_std, k_x, scale, offset = _forward_constants(s1, s2, n * length, eps, w, b, k, x)
    _affine_3d(x.reshape((n * c, length)), k_x, scale, None, None, offset, out.reshape((n * c, length)),
               threaded)
    return k, shift, var, inv_std


@jit
def _backward_2d(x, g, w, k, shift, inv_std, dx, want_dx, threaded):
    sum_g, sum_gxk = _sums_2d(x, k, g, threaded)
    dgamma, k_x, kg, a, e = _backward_constants(sum_g, sum_gxk, x.shape[0], w, k, shift, inv_std, x)
    if want_dx:
        _affine_2d(x, k_x, a, g, kg, e, dx, threaded)
    return dgamma, sum_g


@jit
def _backward_3d(x, g, w, k, shift, inv_std, dx, want_dx, threaded):
    n, c, length = x.shape
    sum_g, sum_gxk = _sums_3d(x, k, g, threaded)
    dgamma, k_x, kg, a, e = _backward_constants(sum_g, sum_gxk, n * length, w, k, shift, inv_std, x)
    if want_dx:
        rows = (n * c, length)
        _affine_3d(x.reshape(rows), k_x, a, g.reshape(rows), kg, e, dx.reshape(rows), threaded)
    return dgamma, sum_g


# ---------------------------------------------------------------- the Function


class NumbaBatchNormFused(Function):
    """Training-mode batch norm of (N, C, ...) input, compiled: two passes forward, two backward."""

    name = "batch_norm_fused"
    backend = "numba"
    fused = True

    @staticmethod
    def forward(
        ctx: Context, x: Tensor, weight: Tensor, bias: Tensor, eps: float, stats: dict | None = None
    ) -> np.ndarray:
        layout = channel_layout(x.data.shape)
        xs = np.ascontiguousarray(x.data).reshape(layout[:2] if layout[2] == 1 else layout)
        out = np.empty_like(xs)
        kernel = _forward_2d if xs.ndim == 2 else _forward_3d
        k, shift, var, inv_std = launch(kernel, 3 * xs.nbytes, xs, weight.data, bias.data, float(eps), out)
        if stats is not None:
            stats["mean"], stats["var"] = (k + shift).astype(xs.dtype), var.astype(xs.dtype)
            stats["count"] = layout[0] * layout[2]
        ctx.save_for_backward(x, weight)
        ctx.eps, ctx.layout = eps, layout
        ctx.k, ctx.shift, ctx.inv_std = k, shift, inv_std
        return out.reshape(x.data.shape)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        x, weight = ctx.saved_tensors
        if is_grad_enabled():  # create_graph=True: the numpy kernel's Tensor-op formula
            return numpy_kernel._backward_differentiable(ctx, g, x, weight)
        layout = ctx.layout
        xs = np.ascontiguousarray(x.data).reshape(layout[:2] if layout[2] == 1 else layout)
        gs = np.ascontiguousarray(g.data, dtype=xs.dtype).reshape(xs.shape)
        want_dx = bool(ctx.needs_input_grad[0])
        dx = np.empty_like(xs) if want_dx else xs[:1]
        kernel = _backward_2d if xs.ndim == 2 else _backward_3d
        dgamma, dbeta = launch(kernel, 5 * xs.nbytes, xs, gs, weight.data, ctx.k, ctx.shift, ctx.inv_std,
                               dx, want_dx)
        wshape, dtype = weight.data.shape, weight.data.dtype
        return (dx.reshape(x.data.shape) if want_dx else None,
                dgamma.astype(dtype).reshape(wshape), dbeta.astype(dtype).reshape(wshape))
