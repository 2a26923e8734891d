"""NumbaLayerNormFused: tinygrad_bn.kernels.layernorm's kernel as compiled loops.

The maths and notation are the numpy kernel's docstring. Each row (one example's
m normalised values) is finished while it sits in the L1/L2 cache, so memory is
touched once per direction, the minimum:

    forward    1 pass: read x, write y (per row: centre, moments, then y from cache)
    backward   1 pass: read g and x, write dx (per row: xhat, dxhat and their two
               row sums, then dx from cache; dgamma and dbeta accumulate per column)

Accuracy. Each row is centred on its first value k (x - k is exact in the input's
dtype for values near k, e.g. around a large offset) with the same shift
correction as the batch-norm kernels; all sums are float64, the elementwise
arithmetic is in the input's dtype (SIMD twice as wide for float32), as in the
numpy kernel. dgamma/dbeta are summed per fixed block of rows, the
blocks then in order, so results do not depend on the thread count (see `_jit`).
"""

from __future__ import annotations

import numpy as np
from numba import prange

from tinygrad_bn.autograd import Context, Function, is_grad_enabled
from tinygrad_bn.kernels import layernorm as numpy_kernel
from tinygrad_bn.kernels.compiled._jit import (
    MIN_BLOCK_ROWS,
    ROW_BLOCKS,
    block_size,
    jit,
    launch,
    row_sum_and_dot,
)
from tinygrad_bn.tensor import Tensor


@jit
def _forward_rows(x, gamma, beta, eps, out, shift, inv_std, r0, r1):
    """Rows r0:r1: shift = mean - x[i, 0] and 1/std (float64), and y = xhat gamma + beta."""
    m = x.shape[1]
    t = x.dtype.type
    d = np.empty(m, x.dtype)  # x - k of one row, reused from cache
    for i in range(r0, r1):
        xi, oi = x[i], out[i]
        k = xi[0]
        for j in range(m):
            d[j] = xi[j] - k  # exact for values near k (within a factor 2)
        sum_d, sum_dd = row_sum_and_dot(d, d)
        mean_d = sum_d / m
        var = max(sum_dd / m - mean_d * mean_d, 0.0)
        r = 1.0 / np.sqrt(var + eps)
        shift[i], inv_std[i] = mean_d, r
        sh, rt = t(mean_d), t(r)
        for j in range(m):
            oi[j] = (d[j] - sh) * rt * gamma[j] + beta[j]


@jit(parallel=True)
def _forward(x, gamma, beta, eps, out, shift, inv_std, threaded):
    rows = x.shape[0]
    step = block_size(rows, ROW_BLOCKS, 1)
    blocks = -(-rows // step)
    if threaded:
        for b in prange(blocks):
            r0 = np.int64(b) * step
            _forward_rows(x, gamma, beta, eps, out, shift, inv_std, r0, min(rows, r0 + step))
    else:
        for b in range(blocks):
            _forward_rows(x, gamma, beta, eps, out, shift, inv_std, b * step, min(rows, (b + 1) * step))


@jit
def _backward_rows(g, x, gamma, shift, inv_std, dx, dgamma, dbeta, want_dx, r0, r1):
    """Rows r0:r1: dx (when wanted), and this block's column sums dgamma, dbeta (float64)."""
    m = x.shape[1]
    t = x.dtype.type
    xhat, dxhat = np.empty((4, m), x.dtype), np.empty(m, x.dtype)
    for j in range(m):
        dgamma[j] = 0.0
        dbeta[j] = 0.0
    for i0 in range(r0, r1, 4):
        rows = min(4, r1 - i0)
        for q in range(rows):
            i = i0 + q
            xi, gi, xh = x[i], g[i], xhat[q]
            k, sh, r = xi[0], t(shift[i]), t(inv_std[i])
            for j in range(m):
                xh[j] = ((xi[j] - k) - sh) * r
                dxhat[j] = gi[j] * gamma[j]
            if want_dx:
                sum_dxhat, sum_proj = row_sum_and_dot(dxhat, xh)
                mean_dxhat, mean_proj = t(sum_dxhat / m), t(sum_proj / m)
                di = dx[i]
                for j in range(m):
                    di[j] = r * (dxhat[j] - mean_dxhat - xh[j] * mean_proj)
        # The column sums four rows per sweep: a quarter of the float64 accumulator
        # loads and stores, as in the batch-norm statistics tiles.
        if rows == 4:
            g0, g1, g2, g3 = g[i0], g[i0 + 1], g[i0 + 2], g[i0 + 3]
            h0, h1, h2, h3 = xhat[0], xhat[1], xhat[2], xhat[3]
            for j in range(m):
                u0, u1, u2, u3 = np.float64(g0[j]), np.float64(g1[j]), np.float64(g2[j]), np.float64(g3[j])
                dgamma[j] += (u0 * h0[j] + u1 * h1[j]) + (u2 * h2[j] + u3 * h3[j])
                dbeta[j] += (u0 + u1) + (u2 + u3)
        else:
            for q in range(rows):
                gi, xh = g[i0 + q], xhat[q]
                for j in range(m):
                    gij = np.float64(gi[j])
                    dgamma[j] += gij * xh[j]
                    dbeta[j] += gij


@jit(parallel=True)
def _backward(g, x, gamma, shift, inv_std, dx, want_dx, threaded):
    rows, m = x.shape
    step = block_size(rows, ROW_BLOCKS, MIN_BLOCK_ROWS)
    blocks = -(-rows // step)
    pg, pb = np.empty((blocks, m)), np.empty((blocks, m))
    if threaded:
        for b in prange(blocks):
            r0 = np.int64(b) * step
            _backward_rows(g, x, gamma, shift, inv_std, dx, pg[b], pb[b], want_dx, r0, min(rows, r0 + step))
    else:
        for b in range(blocks):
            _backward_rows(g, x, gamma, shift, inv_std, dx, pg[b], pb[b], want_dx,
                           b * step, min(rows, (b + 1) * step))
    dgamma, dbeta = pg[0].copy(), pb[0].copy()
    for b in range(1, blocks):
        qg, qb = pg[b], pb[b]
        for j in range(m):
            dgamma[j] += qg[j]
            dbeta[j] += qb[j]
    return dgamma, dbeta


class NumbaLayerNormFused(Function):
    """Layer norm over the trailing `k` axes of x, compiled: one pass forward, one backward."""

    name = "layer_norm_fused"
    backend = "numba"
    fused = True

    @staticmethod
    def forward(ctx: Context, x: Tensor, weight: Tensor, bias: Tensor, k: int, eps: float) -> np.ndarray:
        xd = x.data
        m = int(np.prod(xd.shape[xd.ndim - k:], dtype=np.int64))
        rows = np.ascontiguousarray(xd).reshape(-1, m)
        gamma = np.ascontiguousarray(weight.data, dtype=rows.dtype).reshape(m)
        beta = np.ascontiguousarray(bias.data, dtype=rows.dtype).reshape(m)
        out = np.empty_like(rows)
        shift, inv_std = np.empty(rows.shape[0]), np.empty(rows.shape[0])
        launch(_forward, 2 * rows.nbytes, rows, gamma, beta, float(eps), out, shift, inv_std)
        ctx.save_for_backward(x, weight)
        ctx.k, ctx.eps, ctx.m = k, eps, m
        ctx.shift, ctx.inv_std = shift, inv_std
        return out.reshape(xd.shape)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        x, weight = ctx.saved_tensors
        if is_grad_enabled():  # create_graph=True: the numpy kernel's Tensor-op formula
            return numpy_kernel._backward_differentiable(ctx, g, x, weight)
        m = ctx.m
        rows = np.ascontiguousarray(x.data).reshape(-1, m)
        gs = np.ascontiguousarray(g.data, dtype=rows.dtype).reshape(rows.shape)
        gamma = np.ascontiguousarray(weight.data, dtype=rows.dtype).reshape(m)
        want_dx = bool(ctx.needs_input_grad[0])
        dx = np.empty_like(rows) if want_dx else np.empty((1, m), rows.dtype)
        dgamma, dbeta = launch(_backward, 3 * rows.nbytes, gs, rows, gamma, ctx.shift, ctx.inv_std, dx,
                               want_dx)
        dtype, wshape = weight.data.dtype, weight.data.shape
        return (dx.reshape(x.data.shape) if want_dx else None,
                dgamma.astype(dtype).reshape(wshape), dbeta.astype(dtype).reshape(wshape))
