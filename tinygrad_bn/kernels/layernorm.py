"""LayerNormFused: layer normalisation as one op with a closed-form backward.

Statistics are taken per row over the trailing `k` axes (the normalised shape,
of size m); gamma and beta have the normalised shape. With xhat = (x - mu) * r
and r = 1 / sqrt(var + eps) per row, and dxhat = g * gamma:

    dbeta   = sum over rows of g
    dgamma  = sum over rows of g * xhat
    dx      = r * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))   (means per row)

It is BatchNorm's formula with the roles of the axes swapped; gamma now varies
along the normalised axes, so it stays inside the projection as dxhat.
Double backward works as in BatchNormFused: with create_graph=True the formula
is evaluated with Tensor ops.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_bn import functional as F
from tinygrad_bn.autograd import Context, Function, is_grad_enabled
from tinygrad_bn.kernel_registry import FusedKernel, register_kernel
from tinygrad_bn.tensor import Tensor


class LayerNormFused(Function):
    """Layer norm over the trailing `k` axes of x, in one op."""

    name = "layer_norm_fused"
    fused = True

    @staticmethod
    def forward(ctx: Context, x: Tensor, weight: Tensor, bias: Tensor, k: int, eps: float) -> np.ndarray:
        xd = x.data
        m = int(np.prod(xd.shape[xd.ndim - k:], dtype=np.int64))
        rows = xd.reshape(-1, m)
        mean = rows.mean(axis=1, keepdims=True)
        xc = rows - mean
        var = np.einsum("rm,rm->r", xc, xc)[:, None] / xd.dtype.type(m)
        inv_std = (1.0 / np.sqrt(var + xd.dtype.type(eps))).astype(xd.dtype, copy=False)
        xhat = np.multiply(xc, inv_std, out=xc)
        out = xhat * weight.data.reshape(1, m)
        out += bias.data.reshape(1, m)
        ctx.save_for_backward(x, weight, xhat, inv_std)
        ctx.k, ctx.eps, ctx.m = k, eps, m
        return out.reshape(xd.shape)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        x, weight, xhat, inv_std = ctx.saved_tensors
        if is_grad_enabled():
            return _backward_differentiable(ctx, g, x, weight)
        m = ctx.m
        gd = g.data.reshape(-1, m)
        xh = xhat.data
        dbeta = gd.sum(axis=0).reshape(weight.shape)
        dgamma = np.einsum("rm,rm->m", gd, xh).reshape(weight.shape)
        dx = None
        if ctx.needs_input_grad[0]:
            dxhat = gd * weight.data.reshape(1, m)
            mean_dxhat = dxhat.mean(axis=1, keepdims=True)
            mean_proj = np.einsum("rm,rm->r", dxhat, xh)[:, None] / g.dtype.type(m)
            dxhat -= mean_dxhat
            dxhat -= xh * mean_proj
            dxhat *= inv_std.data
            dx = dxhat.reshape(x.shape)
        return dx, dgamma, dbeta




def _backward_differentiable(ctx: Context, g: Tensor, x: Tensor, weight: Tensor) -> tuple:
    """The closed-form backward with Tensor ops, so create_graph=True can differentiate it."""
    axes = tuple(range(x.ndim - ctx.k, x.ndim))
    batch_axes = tuple(range(x.ndim - ctx.k))
    inv_m = 1.0 / ctx.m
    xc = x - x.sum(axis=axes, keepdims=True) * inv_m
    r = ((xc * xc).sum(axis=axes, keepdims=True) * inv_m + ctx.eps) ** -0.5
    xhat = xc * r
    dxhat = g * weight
    dx = r * (
        dxhat
        - dxhat.sum(axis=axes, keepdims=True) * inv_m
        - xhat * (dxhat * xhat).sum(axis=axes, keepdims=True) * inv_m
    )
    dgamma = (g * xhat).sum(axis=batch_axes) if batch_axes else g * xhat
    dbeta = g.sum(axis=batch_axes) if batch_axes else g
    return dx, dgamma, dbeta


# ---------------------------------------------------------------- registration


def _layer_norm(impl: str) -> Any:
    return lambda x, w, b, eps: F.layer_norm(x, w.shape, w, b, eps=eps, impl=impl)


def _example(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> list[Any]:
    x = rng.normal(1.0, 2.0, shape).astype(dtype)
    w = rng.normal(1.0, 0.5, shape[1:]).astype(dtype)
    b = rng.normal(0.0, 0.5, shape[1:]).astype(dtype)
    return [x, w, b, 1e-5]


def _strategy(dtype: str) -> Any:
    from tinygrad_bn.testing import strategies  # hypothesis loads only when a check asks

    return strategies.norm_kernel_args("layer_norm", dtype)


register_kernel(FusedKernel("layer_norm", LayerNormFused, _layer_norm("composed"), _layer_norm("fused"),
                            _example, _strategy,
                            backends={"numba": "tinygrad_bn.kernels.compiled.layernorm:NumbaLayerNormFused"}))
