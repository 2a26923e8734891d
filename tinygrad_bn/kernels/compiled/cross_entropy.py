"""NumbaCrossEntropyFused: tinygrad_bn.kernels.cross_entropy's kernel as compiled loops.

The maths is the numpy kernel's docstring: loss_i = logsumexp(z_i) - z_i[y_i] and
dz_i = (softmax(z_i) - onehot(y_i)) * scale_i. Passes over memory, the minimum:

    forward    1 pass: read z (per row: max, then sum of exp(z - max) from cache);
               only the max and the sum per row are kept, no (N, C) array is written
    backward   1 pass: read z, write dz = exp(z - max) / sum - onehot, scaled

The numpy kernel writes and keeps the (N, C) probabilities instead.

Accuracy. exp is `_simd.exp` in the logits' dtype (about 1 ulp) of z - max,
which is exact for logits near the max, as in the numpy kernel; each row's sum of
exponentials is float64. Rows are independent, so the result
does not depend on the thread count; the loss total is summed by numpy in float64.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from tinygrad_bn.autograd import Context, Function, is_grad_enabled
from tinygrad_bn.kernels import cross_entropy as numpy_kernel
from tinygrad_bn.kernels.compiled._jit import (
    ROW_BLOCKS,
    block_size,
    jit,
    launch,
    row_sum,
)
from tinygrad_bn.kernels.compiled._simd import exp, row_max
from tinygrad_bn.tensor import Tensor


@jit
def _forward_rows(z, labels, top, total, loss, r0, r1):
    """Rows r0:r1: the row max, sum(exp(z - max)) (float64) and loss = log(sum) - (z[label] - max)."""
    e = np.empty(z.shape[1], z.dtype)  # exp(z - max) of one row, summed from cache
    for i in range(r0, r1):
        zi = z[i]
        m = zi.dtype.type(row_max(zi))  # an element of z: z - m is exact for nearby values
        for j in range(zi.shape[0]):
            e[j] = exp(zi[j] - m)
        top[i], total[i] = m, row_sum(e)
        loss[i] = math.log(total[i]) - (zi[labels[i]] - m)


@jit(parallel=True)
def _forward(z, labels, top, total, loss, threaded):
    rows = z.shape[0]
    step = block_size(rows, ROW_BLOCKS, 1)
    blocks = -(-rows // step)
    if threaded:
        for b in prange(blocks):
            r0 = np.int64(b) * step
            _forward_rows(z, labels, top, total, loss, r0, min(rows, r0 + step))
    else:
        for b in range(blocks):
            _forward_rows(z, labels, top, total, loss, b * step, min(rows, (b + 1) * step))


@jit
def _backward_rows(z, labels, top, total, scale, dz, r0, r1):
    """Rows r0:r1: dz = (exp(z - max) / sum - onehot(label)) * scale, in z's dtype."""
    for i in range(r0, r1):
        zi, di = z[i], dz[i]
        m, coef = top[i], scale[i] / total[i]
        c = zi.dtype.type(coef)
        for j in range(zi.shape[0]):
            di[j] = exp(zi[j] - m) * c
        j = labels[i]
        di[j] = exp(zi[j] - m) * coef - scale[i]  # float64, rounded once


@jit(parallel=True)
def _backward(z, labels, top, total, scale, dz, threaded):
    rows = z.shape[0]
    step = block_size(rows, ROW_BLOCKS, 1)
    blocks = -(-rows // step)
    if threaded:
        for b in prange(blocks):
            r0 = np.int64(b) * step
            _backward_rows(z, labels, top, total, scale, dz, r0, min(rows, r0 + step))
    else:
        for b in range(blocks):
            _backward_rows(z, labels, top, total, scale, dz, b * step, min(rows, (b + 1) * step))


class NumbaCrossEntropyFused(Function):
    """Softmax cross-entropy of logits (N, C) against integer labels (N,), compiled."""

    name = "cross_entropy_fused"
    backend = "numba"
    fused = True

    @staticmethod
    def forward(ctx: Context, logits: Tensor, labels: np.ndarray, reduction: str) -> np.ndarray:
        z = np.ascontiguousarray(logits.data)
        n = z.shape[0]
        index = np.ascontiguousarray(labels, dtype=np.int64)
        top, total, loss = np.empty(n, z.dtype), np.empty(n), np.empty(n)
        launch(_forward, z.nbytes, z, index, top, total, loss)
        ctx.save_for_backward(logits)
        ctx.labels, ctx.reduction, ctx.top, ctx.total = index, reduction, top, total
        if reduction == "none":
            return loss.astype(z.dtype)
        total = loss.sum()
        if reduction == "mean":
            total /= n
        return np.asarray(total, dtype=z.dtype)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor | np.ndarray:
        (logits,) = ctx.saved_tensors
        if is_grad_enabled():  # create_graph=True: the numpy kernel's Tensor-op formula
            return numpy_kernel._backward_differentiable(ctx, g, logits)
        z = np.ascontiguousarray(logits.data)
        n = z.shape[0]
        if ctx.reduction == "none":
            scale = np.ascontiguousarray(g.data, dtype=np.float64).reshape(n)
        else:
            scale = np.full(n, float(g.data) / (n if ctx.reduction == "mean" else 1))
        dz = np.empty_like(z)
        launch(_backward, 2 * z.nbytes, z, ctx.labels, ctx.top, ctx.total, scale, dz)
        return dz
