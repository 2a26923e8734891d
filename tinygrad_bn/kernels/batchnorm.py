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

Memory traffic. numpy runs one elementwise op per pass over memory, so a naive
version reads and writes the whole array ~20 times. Here every elementwise
chain runs on blocks of rows small enough to stay in the CPU cache, so only the
block's first read and last write reach memory: forward = 3 reads + 1 write
(column sums; centred squares; the output), backward = 4 reads + 1 write (the
two sums; dx), close to the 6 reads + 2 writes any fwd+bwd needs.

Accuracy. The first column sum is float32 for float32 input, so its mean can be
off by a few ulps of a large offset (values near 1e4); the second pass measures
the centred values' own sum and corrects the mean (and the variance) by it,
accumulating in float64. Then x - mu is exact to half an ulp of mu, as if mu
had been computed in float64.

Double backward: when backward runs with grad recording on (create_graph=True)
the same formula is evaluated with Tensor ops from the saved input, so autograd
differentiates the closed form itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from tinygrad_bn.autograd import Context, Function, is_grad_enabled
from tinygrad_bn.tensor import Tensor

# Rows per block are chosen so a block of one array is about this many bytes:
# a few such blocks (input, output, scratch) fit in a typical 1-2 MiB L2 cache.
BLOCK_BYTES = 256 * 1024
# Arrays at least this big are split across threads (numpy releases the GIL inside
# each op on a block); below it, starting threads costs more than it saves.
PARALLEL_MIN_BYTES = 4 * 1024 * 1024
MAX_THREADS = 4
_pool: ThreadPoolExecutor | None = None


def channel_layout(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(N, C, L): batch, channels, and the size of the spatial axes folded together."""
    n, c = shape[0], shape[1]
    spatial = int(np.prod(shape[2:], dtype=np.int64)) if len(shape) > 2 else 1
    return n, c, spatial


def _block_rows(a: np.ndarray) -> int:
    """How many rows of `a` make a block of about BLOCK_BYTES."""
    return max(1, BLOCK_BYTES // max(1, a[:1].nbytes))


def _row_blocks(a: np.ndarray, rows: slice) -> Iterator[slice]:
    """Slices of `rows` whose blocks of `a` are about BLOCK_BYTES each."""
    step = _block_rows(a)
    for start in range(rows.start, rows.stop, step):
        yield slice(start, min(start + step, rows.stop))


def _over_row_ranges(a: np.ndarray, work: Callable[[slice], Any]) -> list[Any]:
    """Run work(rows) over a split of a's rows: one range per thread for big arrays."""
    global _pool
    threads = min(os.cpu_count() or 1, MAX_THREADS, a.shape[0])
    if a.nbytes < PARALLEL_MIN_BYTES or threads < 2:
        return [work(slice(0, a.shape[0]))]
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=MAX_THREADS, thread_name_prefix="tinygrad_bn")
    bounds = np.linspace(0, a.shape[0], threads + 1).astype(int)
    return list(_pool.map(work, [slice(b0, b1) for b0, b1 in zip(bounds[:-1], bounds[1:])]))


def _blocked_view(a: np.ndarray, layout: tuple[int, int, int]) -> np.ndarray:
    """(N, C) when there are no spatial axes, else (N, C, L).

    numpy's inner loop runs over the last axis, so a trailing axis of length 1
    would make every broadcast op crawl one element at a time.
    """
    n, c, spatial = layout
    return np.ascontiguousarray(a).reshape((n, c) if spatial == 1 else layout)


def _column_sum(a: np.ndarray) -> np.ndarray:
    """Sum over every axis but axis 1 of an (N, C) or (N, C, L) array, as (C,)."""
    # A matrix-vector product with ones is the fastest column sum numpy has (BLAS).
    sums = np.ones(a.shape[0], dtype=a.dtype) @ a.reshape(a.shape[0], -1)
    return sums.reshape(a.shape[1], -1).sum(axis=1) if a.ndim == 3 else sums


def _channel_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """sum(a * b) over every axis but axis 1, without materialising a * b."""
    return np.einsum("ncl,ncl->c" if a.ndim == 3 else "nc,nc->c", a, b)


def _per_channel(v: np.ndarray, ndim: int) -> np.ndarray:
    """A (C,) array shaped to broadcast against (rows, C) or (rows, C, L) blocks."""
    return v.reshape((1, -1, 1) if ndim == 3 else (1, -1))


class BatchNormFused(Function):
    """Training-mode batch norm of (N, C, ...) input with batch statistics, in one op."""

    fused = True

    @staticmethod
    def forward(
        ctx: Context, x: Tensor, weight: Tensor, bias: Tensor, eps: float, stats: dict | None = None
    ) -> np.ndarray:
        dtype = x.data.dtype
        layout = channel_layout(x.data.shape)
        count = layout[0] * layout[2]
        xs = _blocked_view(x.data, layout)
        mu0 = (_column_sum(xs) / count).astype(dtype)

        # Pass 2: centred sums, one cache-sized block at a time.
        mu0_c = _per_channel(mu0, xs.ndim)

        def centred_sums(part: slice) -> tuple[np.ndarray, np.ndarray]:
            dev, sq = np.zeros(layout[1]), np.zeros(layout[1])
            scratch = np.empty_like(xs[: _block_rows(xs)])
            for rows in _row_blocks(xs, part):
                centred = np.subtract(xs[rows], mu0_c, out=scratch[: rows.stop - rows.start])
                dev += _column_sum(centred)
                sq += _channel_dot(centred, centred)
            return dev, sq

        partial = _over_row_ranges(xs, centred_sums)
        dev_sum, sq_sum = sum(p[0] for p in partial), sum(p[1] for p in partial)
        shift = dev_sum / count  # how far mu0 is from the mean of the data
        mean = mu0 + shift
        var = np.maximum(sq_sum / count - shift * shift, 0.0)
        mu = mean.astype(dtype)
        inv_std = (1.0 / np.sqrt(var + eps)).astype(dtype)

        # Pass 3: y = (x - mu) * (gamma * r) + beta, block by block.
        scale = _per_channel(weight.data * inv_std, xs.ndim)
        mu_c, beta = _per_channel(mu, xs.ndim), _per_channel(bias.data, xs.ndim)
        out = np.empty_like(xs)

        def normalise(part: slice) -> None:
            for rows in _row_blocks(xs, part):
                block = np.subtract(xs[rows], mu_c, out=out[rows])
                block *= scale
                block += beta

        _over_row_ranges(xs, normalise)
        if stats is not None:
            stats["mean"], stats["var"], stats["count"] = mean.astype(dtype), var.astype(dtype), count
        ctx.save_for_backward(x, weight, mu, inv_std)
        ctx.eps, ctx.layout = eps, layout
        return out.reshape(x.data.shape)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        x, weight, mu, inv_std = ctx.saved_tensors
        if is_grad_enabled():
            return _backward_differentiable(ctx, g, x, weight)
        layout = ctx.layout
        count = layout[0] * layout[2]
        xs, gs = _blocked_view(x.data, layout), _blocked_view(g.data, layout)
        mu_c, r = _per_channel(mu.data, xs.ndim), inv_std.data

        # Pass 1: dbeta = sum(g), sum(g * (x - mu)).
        dbeta = _column_sum(gs)

        def g_dot_centred(part: slice) -> np.ndarray:
            total = np.zeros(layout[1], dtype=g.data.dtype)
            scratch = np.empty_like(xs[: _block_rows(xs)])
            for rows in _row_blocks(xs, part):
                centred = np.subtract(xs[rows], mu_c, out=scratch[: rows.stop - rows.start])
                total += _channel_dot(gs[rows], centred)
            return total

        dgamma = sum(_over_row_ranges(xs, g_dot_centred)) * r

        dx = None
        if ctx.needs_input_grad[0]:
            # Pass 2: dx = k*g - (x - mu) * (k*r*dgamma/n) - k*dbeta/n, with k = gamma*r.
            k = weight.data * r
            along_xc = _per_channel(-k * r * dgamma / count, xs.ndim)
            constant = _per_channel(-k * dbeta / count, xs.ndim)
            k = _per_channel(k, xs.ndim)
            dx = np.empty_like(xs)

            def input_gradient(part: slice) -> None:
                scratch = np.empty_like(xs[: _block_rows(xs)])
                for rows in _row_blocks(xs, part):
                    block = np.subtract(xs[rows], mu_c, out=dx[rows])
                    block *= along_xc
                    block += np.multiply(gs[rows], k, out=scratch[: rows.stop - rows.start])
                    block += constant

            _over_row_ranges(xs, input_gradient)
            dx = dx.reshape(x.data.shape)
        return dx, dgamma.reshape(weight.data.shape), dbeta.reshape(weight.data.shape)


BatchNormFused.name = "batch_norm_fused"


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
