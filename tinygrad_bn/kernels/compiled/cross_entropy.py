"""NumbaCrossEntropyFused: tinygrad_bn.kernels.cross_entropy's kernel as compiled loops.

The maths is the numpy kernel's docstring: loss_i = logsumexp(z_i) - z_i[y_i] and
dz_i = (softmax(z_i) - onehot(y_i)) * scale_i. Passes over memory, the minimum:

    forward    1 pass: read z (per row: max, then sum of exp(z - max) from cache);
               only logsumexp per row is kept, no (N, C) array is written
    backward   1 pass: read z, write dz = exp(z - logsumexp) - onehot, scaled

The numpy kernel writes and keeps the (N, C) probabilities instead.

Accuracy. exp is `_exp.exp` in the logits' dtype (a few ulps); each row's sum of
exponentials and its logsumexp are float64. Rows are independent, so the result
does not depend on the thread count; the loss total is summed by numpy in float64.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from tinygrad_bn.autograd import Context, Function, is_grad_enabled
from tinygrad_bn.kernels import cross_entropy as numpy_kernel
from tinygrad_bn.kernels.compiled._exp import exp
from tinygrad_bn.kernels.compiled._jit import (
    ROW_BLOCKS,
    block_size,
    fixed_order_max,
    fixed_order_sum,
    jit,
    launch,
)
from tinygrad_bn.tensor import Tensor


@jit
def _forward_rows(z, labels, lse, loss, r0, r1):
    """Rows r0:r1: logsumexp (float64) and loss = logsumexp - z[label]."""
    c = z.shape[1]
    e = np.empty(c, z.dtype)  # exp(z - max) for one row, summed from cache
    for i in range(r0, r1):
        zi = z[i]
        top = fixed_order_max(zi, 0, c)
        for j in range(c):
            e[j] = zi[j] - top  # exact, then rounded to z's dtype: exp runs in that precision
            e[j] = exp(e[j])
        lse[i] = top + math.log(fixed_order_sum(e, 0, c))
        loss[i] = lse[i] - zi[labels[i]]


@jit(parallel=True)
def _forward(z, labels, lse, loss, threaded):
    rows = z.shape[0]
    step = block_size(rows, ROW_BLOCKS, 1)
    blocks = -(-rows // step)
    if threaded:
        for b in prange(blocks):
            r0 = np.int64(b) * step
            _forward_rows(z, labels, lse, loss, r0, min(rows, r0 + step))
    else:
        for b in range(blocks):
            _forward_rows(z, labels, lse, loss, b * step, min(rows, (b + 1) * step))


@jit
def _backward_rows(z, labels, lse, scale, dz, r0, r1):
    """Rows r0:r1: dz = (exp(z - logsumexp) - onehot(label)) * scale (per row)."""
    for i in range(r0, r1):
        zi, di = z[i], dz[i]
        top, s = lse[i], scale[i]
        for j in range(zi.shape[0]):
            di[j] = zi[j] - top  # rounded to z's dtype, as in forward
            di[j] = exp(di[j]) * s
        j = labels[i]
        di[j] = zi[j] - top
        di[j] = (exp(di[j]) - 1.0) * s


@jit(parallel=True)
def _backward(z, labels, lse, scale, dz, threaded):
    rows = z.shape[0]
    step = block_size(rows, ROW_BLOCKS, 1)
    blocks = -(-rows // step)
    if threaded:
        for b in prange(blocks):
            r0 = np.int64(b) * step
            _backward_rows(z, labels, lse, scale, dz, r0, min(rows, r0 + step))
    else:
        for b in range(blocks):
            _backward_rows(z, labels, lse, scale, dz, b * step, min(rows, (b + 1) * step))


class NumbaCrossEntropyFused(Function):
    """Softmax cross-entropy of logits (N, C) against integer labels (N,), compiled."""

    name = "cross_entropy_fused[numba]"
    fused = True

    @staticmethod
    def forward(ctx: Context, logits: Tensor, labels: np.ndarray, reduction: str) -> np.ndarray:
        z = np.ascontiguousarray(logits.data)
        n = z.shape[0]
        index = np.ascontiguousarray(labels, dtype=np.int64)
        lse, loss = np.empty(n), np.empty(n)
        launch(_forward, z.nbytes, z, index, lse, loss)
        ctx.save_for_backward(logits)
        ctx.labels, ctx.reduction, ctx.lse = index, reduction, lse
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
        launch(_backward, 2 * z.nbytes, z, ctx.labels, ctx.lse, scale, dz)
        return dz
