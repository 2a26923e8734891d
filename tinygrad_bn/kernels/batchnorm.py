"""BatchNormFused: batch normalisation as one op with a closed-form backward.

Notation, per channel c over the n = N * (spatial size) values it normalises:

    mu      = sum(x) / n                    (batch mean)
    xc      = x - mu                        (centred input)
    var     = sum(xc^2) / n                 (biased variance: what normalises)
    r       = 1 / sqrt(var + eps)           (inverse standard deviation)
    xhat    = xc * r
    y       = gamma * xhat + beta

Backward, given g = dL/dy (derivation step by step in docs/batchnorm.md):

    dbeta   = sum(g)
    dgamma  = sum(g * xhat) = r * sum(g * xc)
    dx      = gamma * r * (g - dbeta / n - xhat * dgamma / n)

dx is g with two things projected out: its mean (moving every x by the same
amount changes nothing after centring) and its component along xhat (scaling x
changes nothing after dividing by the std). That is why an all-ones cotangent
gives dx = 0 for any kernel, right or wrong, and why checks use random ones.

Passes over memory (the same two each way as the compiled kernel):

    forward    1. read x: per-channel sums of (x - k) and (x - k)^2
               2. read x, write y = (x - k) * gamma r + (beta - (mu - k) gamma r)
    backward   1. read g and x: per-channel sums of g and g (x - k)
               2. read g and x, write dx = g gamma r + a (x - k) + e

six reads and two writes of x's size in all; nothing of x's size is saved for
backward (it recentres x block by block instead of reading a saved x - mu).
Each pass runs on blocks of rows that fit in the CPU cache, so a block's
intermediate results (x - k, g * gamma r) never travel to main memory. Column
sums are einsum loops, not BLAS: a matrix-vector product with a ones vector
is as fast on one BLAS thread, but with OpenBLAS's default two threads on a
busy 2-core machine it took 8.0 ms instead of 0.6 ms on (4096, 1024) float32.

Accuracy. Each channel is centred on k, the mean of the first block of rows
(an estimate, in the input's dtype): a block's sums are taken in the input's
dtype, the running totals across blocks in float64. The centred values' own
mean `shift = mean(x - k)` measures the estimate's error, so the kernel uses
mu = k + shift and var = mean((x - k)^2) - shift^2; since k lies within a few
standard errors of mu, the cancellation in var costs almost nothing, and for
values near a large offset (1e4) x - k is exact. `shift` is folded into the
output's bias and backward's constants at no extra pass.

Double backward: when backward runs with grad recording on (create_graph=True)
the same formula is evaluated with Tensor ops from the saved input, so autograd
differentiates the closed form itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_bn import functional as F
from tinygrad_bn.autograd import Context, Function, is_grad_enabled
from tinygrad_bn.kernel_registry import FusedKernel, register_kernel
from tinygrad_bn.tensor import Tensor


def channel_layout(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(N, C, L): batch, channels, and the size of the spatial axes folded together."""
    n, c = shape[0], shape[1]
    spatial = int(np.prod(shape[2:], dtype=np.int64)) if len(shape) > 2 else 1
    return n, c, spatial


def _channel_view(a: np.ndarray, layout: tuple[int, int, int]) -> np.ndarray:
    """(N, C) when there are no spatial axes, else (N, C, L).

    numpy's inner loop runs over the last axis, so a trailing axis of length 1
    would make every broadcast op crawl one element at a time.
    """
    n, c, spatial = layout
    return np.ascontiguousarray(a).reshape((n, c) if spatial == 1 else layout)


def _column_sum(a: np.ndarray) -> np.ndarray:
    """Sum over every axis but axis 1 of an (N, C) or (N, C, L) array, as (C,)."""
    # einsum's own loop (no BLAS threads); measured as fast as np.add.reduce or faster.
    return np.einsum("ncl->c" if a.ndim == 3 else "nc->c", a)


def _channel_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """sum(a * b) over every axis but axis 1, without materialising a * b."""
    return np.einsum("ncl,ncl->c" if a.ndim == 3 else "nc,nc->c", a, b)


# Rows per block are chosen so one block of one array is about this many bytes:
# the few blocks a pass touches (inputs, output, a scratch) fit in a 1-2 MiB L2.
BLOCK_BYTES = 256 * 1024


def _row_blocks(a: np.ndarray) -> list[slice]:
    """Slices of a's first axis whose blocks are about BLOCK_BYTES each."""
    step = max(1, BLOCK_BYTES // max(1, a[:1].nbytes))
    return [slice(start, min(start + step, a.shape[0])) for start in range(0, a.shape[0], step)]


def _centre_estimate(xs: np.ndarray, rows: slice) -> np.ndarray:
    """Per-channel mean of one block of rows (x's dtype), shaped to broadcast: the k in x - k."""
    block = xs[rows]
    mean = _column_sum(block) / (block.size // block.shape[1])
    return _per_channel(mean.astype(xs.dtype), xs.ndim)


def _per_channel(v: np.ndarray, ndim: int) -> np.ndarray:
    """A (C,) array shaped to broadcast against (N, C) or (N, C, L)."""
    return v.reshape((1, -1, 1) if ndim == 3 else (1, -1))


class BatchNormFused(Function):
    """Training-mode batch norm of (N, C, ...) input with batch statistics: two passes each way."""

    name = "batch_norm_fused"
    fused = True

    @staticmethod
    def forward(
        ctx: Context, x: Tensor, weight: Tensor, bias: Tensor, eps: float, stats: dict | None = None
    ) -> np.ndarray:
        dtype = x.data.dtype
        layout = channel_layout(x.data.shape)
        count = layout[0] * layout[2]
        xs = _channel_view(x.data, layout)
        blocks = _row_blocks(xs)
        k = _centre_estimate(xs, blocks[0])
        scratch = np.empty_like(xs[blocks[0]])
        xk_sum, xk_sq = np.zeros(layout[1]), np.zeros(layout[1])
        for rows in blocks:  # pass 1: both sums of x - k from one read of each block
            block = np.subtract(xs[rows], k, out=scratch[: rows.stop - rows.start])
            xk_sum += _column_sum(block)
            xk_sq += _channel_dot(block, block)
        shift = xk_sum / count  # mean(x - k): the error of k
        var = np.maximum(xk_sq / count - shift * shift, 0.0)
        inv_std = (1.0 / np.sqrt(var + eps)).astype(dtype)
        # y = (x - k - shift) * (gamma r) + beta, with the shift folded into the bias.
        scale = weight.data * inv_std
        scale_c = _per_channel(scale, xs.ndim)
        offset_c = _per_channel((bias.data - shift * scale).astype(dtype), xs.ndim)
        out = np.empty_like(xs)
        for rows in blocks:  # pass 2
            block = np.subtract(xs[rows], k, out=out[rows])
            block *= scale_c
            block += offset_c
        if stats is not None:
            stats["mean"], stats["var"] = (k.ravel() + shift).astype(dtype), var.astype(dtype)
            stats["count"] = count
        ctx.save_for_backward(x, weight, inv_std)
        ctx.eps, ctx.layout, ctx.k, ctx.shift = eps, layout, k, shift
        return out.reshape(x.data.shape)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        x, weight, inv_std = ctx.saved_tensors
        if is_grad_enabled():
            return _backward_differentiable(ctx, g, x, weight)
        count, k, shift = ctx.layout[0] * ctx.layout[2], ctx.k, ctx.shift
        xs = _channel_view(x.data, ctx.layout)
        gs = _channel_view(g.data, ctx.layout)
        r = inv_std.data
        blocks = _row_blocks(xs)
        scratch = np.empty_like(xs[blocks[0]])
        dbeta, g_xk = np.zeros(ctx.layout[1]), np.zeros(ctx.layout[1])
        for rows in blocks:  # pass 1: both sums from one read of each block of g and x
            dbeta += _column_sum(gs[rows])
            g_xk += _channel_dot(gs[rows], np.subtract(xs[rows], k, out=scratch[: rows.stop - rows.start]))
        # sum(g * (x - mu)) with x - mu = (x - k) - shift
        dgamma = ((g_xk - shift * dbeta) * r).astype(g.data.dtype)
        dx = None
        if ctx.needs_input_grad[0]:
            # dx = kg*g + a*(x - k - shift) + e0, with kg = gamma*r, a = -kg*r*dgamma/n, e0 = -kg*dbeta/n
            kg = weight.data * r
            a = -kg * r * dgamma / count
            e = -kg * dbeta / count - a * shift
            a_c = _per_channel(a.astype(g.data.dtype), xs.ndim)
            kg_c = _per_channel(kg, xs.ndim)
            e_c = _per_channel(e.astype(g.data.dtype), xs.ndim)
            dx = np.empty_like(xs)
            for rows in blocks:  # pass 2
                block = np.subtract(xs[rows], k, out=dx[rows])
                block *= a_c
                block += np.multiply(gs[rows], kg_c, out=scratch[: rows.stop - rows.start])
                block += e_c
            dx = dx.reshape(x.data.shape)
        return dx, dgamma.reshape(weight.data.shape), dbeta.astype(g.data.dtype).reshape(weight.data.shape)


def _backward_differentiable(ctx: Context, g: Tensor, x: Tensor, weight: Tensor) -> tuple:
    """The closed-form backward written with Tensor ops, so it can itself be differentiated."""
    axes = (0,) + tuple(range(2, x.ndim))
    count = ctx.layout[0] * ctx.layout[2]
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean = x.sum(axis=axes, keepdims=True) * (1.0 / count)
    xc = x - mean
    r = ((xc * xc).sum(axis=axes, keepdims=True) * (1.0 / count) + ctx.eps) ** -0.5
    xhat = xc * r
    dbeta = g.sum(axis=axes)
    dgamma = (g * xhat).sum(axis=axes)
    dx = (weight.reshape(*shape) * r) * (
        g - dbeta.reshape(*shape) * (1.0 / count) - xhat * dgamma.reshape(*shape) * (1.0 / count)
    )
    return dx, dgamma, dbeta


# ---------------------------------------------------------------- registration


def _batch_norm(impl: str) -> Any:
    return lambda x, w, b, eps: F.batch_norm(x, None, None, w, b, training=True, eps=eps, impl=impl)


def _example(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> list[Any]:
    x = rng.normal(1.0, 2.0, shape).astype(dtype)
    w = rng.normal(1.0, 0.5, shape[1]).astype(dtype)
    b = rng.normal(0.0, 0.5, shape[1]).astype(dtype)
    return [x, w, b, 1e-5]


def _strategy(dtype: str) -> Any:
    from tinygrad_bn.testing import strategies  # hypothesis loads only when a check asks

    return strategies.norm_kernel_args("batch_norm", dtype)


register_kernel(FusedKernel("batch_norm", BatchNormFused, _batch_norm("composed"), _batch_norm("fused"),
                            _example, _strategy,
                            backends={"numba": "tinygrad_bn.kernels.compiled.batchnorm:NumbaBatchNormFused"}))
