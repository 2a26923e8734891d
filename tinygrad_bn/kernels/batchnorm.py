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

Double backward: when backward runs with grad recording on (create_graph=True)
the same formula is evaluated with Tensor ops from the saved input, so autograd
differentiates the closed form itself. Otherwise it runs on numpy arrays in a
few passes over memory.
"""

from __future__ import annotations

import numpy as np

from tinygrad_bn.autograd import Context, Function, is_grad_enabled
from tinygrad_bn.tensor import Tensor


def channel_layout(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(N, C, L): batch, channels, and the size of the spatial axes folded together."""
    n, c = shape[0], shape[1]
    spatial = int(np.prod(shape[2:], dtype=np.int64)) if len(shape) > 2 else 1
    return n, c, spatial


def _channel_sum(a: np.ndarray, layout: tuple[int, int, int], dtype: np.dtype | None = None) -> np.ndarray:
    """Sum over every axis but the channel axis, as a (C,) array, accumulated in `dtype`."""
    n, c, spatial = layout
    if spatial == 1:
        return a.reshape(n, c).sum(axis=0, dtype=dtype)
    # Summing the contiguous spatial axis first is much faster than axis=(0, 2, 3).
    return a.reshape(n, c, spatial).sum(axis=2, dtype=dtype).sum(axis=0)


def _channel_dot(a: np.ndarray, b: np.ndarray, layout: tuple[int, int, int]) -> np.ndarray:
    """sum(a * b) per channel, without materialising a * b."""
    n, c, spatial = layout
    if spatial == 1:
        return np.einsum("nc,nc->c", a.reshape(n, c), b.reshape(n, c))
    return np.einsum("ncl,ncl->c", a.reshape(n, c, spatial), b.reshape(n, c, spatial))


def _per_channel(v: np.ndarray, ndim: int) -> np.ndarray:
    """A (C,) array shaped to broadcast against (N, C, ...)."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


class BatchNormFused(Function):
    """Training-mode batch norm of (N, C, ...) input with batch statistics, in one op."""

    fused = True

    @staticmethod
    def forward(
        ctx: Context, x: Tensor, weight: Tensor, bias: Tensor, eps: float, stats: dict | None = None
    ) -> np.ndarray:
        xd = x.data
        layout = channel_layout(xd.shape)
        count = layout[0] * layout[2]
        # The mean is accumulated in float64 (see ops.Sum): with a large offset its
        # error is what shifts every normalised value.
        mean = (_channel_sum(xd, layout, np.float64) / count).astype(xd.dtype)
        xc = xd - _per_channel(mean, xd.ndim)
        var = _channel_dot(xc, xc, layout) / xd.dtype.type(count)
        inv_std = (1.0 / np.sqrt(var + xd.dtype.type(eps))).astype(xd.dtype, copy=False)
        # y = xc * (gamma * r) + beta: two passes, xhat itself is never stored.
        out = np.multiply(xc, _per_channel(weight.data * inv_std, xd.ndim))
        out += _per_channel(bias.data, xd.ndim)
        if stats is not None:
            stats["mean"], stats["var"], stats["count"] = mean, var, count
        ctx.save_for_backward(x, weight, xc, inv_std)
        ctx.eps, ctx.layout = eps, layout
        return out

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        x, weight, xc, inv_std = ctx.saved_tensors
        if is_grad_enabled():
            return _backward_differentiable(ctx, g, x, weight)
        layout, gd = ctx.layout, g.data
        count = g.dtype.type(layout[0] * layout[2])
        r, gamma = inv_std.data, weight.data
        dbeta = _channel_sum(gd, layout)
        dgamma = _channel_dot(gd, xc.data, layout) * r
        dx = None
        if ctx.needs_input_grad[0]:
            # dx = gamma*r*g - gamma*r*dbeta/n - xc * gamma*r^2*dgamma/n
            scale = gamma * r
            dx = np.multiply(xc.data, _per_channel(-scale * r * dgamma / count, gd.ndim))
            dx += _per_channel(-scale * dbeta / count, gd.ndim)
            dx += gd * _per_channel(scale, gd.ndim)
        return dx, dgamma, dbeta


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
