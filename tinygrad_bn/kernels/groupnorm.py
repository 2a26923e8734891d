"""GroupNormFused: group normalisation as one op with a closed-form backward (instance norm is G = C).

Notation. x (N, C, *spatial) is split into G groups of C/G channels; one group
of one example holds m = (C/G) * (spatial size) values, and Σ sums over them.
gamma and beta have one value per channel c:

    mu   = Σ x / m                   per (example, group)
    xc   = x - mu
    var  = Σ xc² / m                 biased variance
    r    = (var + eps) ** -0.5
    xhat = xc * r
    y    = gamma_c * xhat + beta_c

Backward, given g = dL/dy. The parameters are per channel and shared by every
example and position, so their gradients sum over those:

    dbeta_c  = Σ over n and positions of g
    dgamma_c = Σ over n and positions of g * xhat

Within one (example, group), y depends on the group's x only through xhat, and
xhat is exactly the normalisation of BatchNorm's derivation (docs/batchnorm.md)
with the n values of a channel replaced by the m values of a group. So with
dxhat = gamma_c * g (gamma varies *inside* the group, from channel to channel,
so it cannot be pulled out of the sums, as in LayerNorm):

    dvar = -0.5 r³ Σ dxhat * xc
    dxc  = r dxhat + 2 xc dvar / m   = r (dxhat - xhat Σ(dxhat xhat) / m)
    dmu  = -Σ dxc                    = -r Σ dxhat       (Σ xhat = 0)
    dx   = dxc + dmu / m             = r (dxhat - mean(dxhat) - xhat mean(dxhat xhat))

with both means over the group. As in BatchNorm, dx is dxhat with its
components along 1 and xhat projected out, group by group: an all-ones
cotangent with gamma = 1 gives dx = 0 for any kernel, right or wrong.

Cost: forward reads x twice (mean, then centred squares) and writes xc, xhat
and y; backward reads g and xhat for the two parameter sums and makes three
passes for dx. Double backward: with create_graph=True the formula is evaluated
with Tensor ops from the saved input, so autograd differentiates it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_bn import functional as F
from tinygrad_bn.autograd import Context, Function, is_grad_enabled
from tinygrad_bn.kernel_registry import FusedKernel, register_kernel
from tinygrad_bn.tensor import Tensor


class GroupNormFused(Function):
    """Group norm of (N, C, ...) input with per-channel weight and bias, in one op."""

    name = "group_norm_fused"
    fused = True

    @staticmethod
    def forward(ctx: Context, x: Tensor, weight: Tensor, bias: Tensor, groups: int, eps: float,
                stats: dict | None = None) -> np.ndarray:
        xd = x.data
        n, c = xd.shape[:2]
        grouped = xd.reshape(n, groups, -1)
        count = grouped.shape[2]
        mean = grouped.mean(axis=2, keepdims=True)  # pairwise along the contiguous axis: accurate
        xc = grouped - mean
        var = np.square(xc).mean(axis=2, keepdims=True)
        inv_std = (1.0 / np.sqrt(var + eps)).astype(xd.dtype, copy=False)
        xhat = np.multiply(xc, inv_std, out=xc).reshape(n, c, -1)
        out = xhat * weight.data[:, None]
        out += bias.data[:, None]
        if stats is not None:
            stats["mean"], stats["var"], stats["count"] = mean[..., 0], var[..., 0], count
        ctx.save_for_backward(x, weight, xhat, inv_std)
        ctx.groups, ctx.eps = groups, eps
        return out.reshape(xd.shape)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        x, weight, xhat, inv_std = ctx.saved_tensors
        if is_grad_enabled():
            return _backward_differentiable(ctx, g, x, weight)
        xh = xhat.data  # (N, C, S)
        n, c = xh.shape[:2]
        gd = g.data.reshape(xh.shape)
        dbeta = gd.sum(axis=(0, 2))
        dgamma = np.einsum("ncs,ncs->c", gd, xh)
        dx = None
        if ctx.needs_input_grad[0]:
            dxhat = (gd * weight.data[:, None]).reshape(n, ctx.groups, -1)
            xh_g = xh.reshape(dxhat.shape)
            mean_dxhat = dxhat.mean(axis=2, keepdims=True)
            mean_proj = np.einsum("ngm,ngm->ng", dxhat, xh_g)[..., None] / g.dtype.type(dxhat.shape[2])
            dxhat -= mean_dxhat
            dxhat -= xh_g * mean_proj
            dxhat *= inv_std.data
            dx = dxhat.reshape(x.shape)
        return dx, dgamma, dbeta


def _backward_differentiable(ctx: Context, g: Tensor, x: Tensor, weight: Tensor) -> tuple:
    """The closed-form backward with Tensor ops, so create_graph=True can differentiate it."""
    n, c = x.shape[:2]
    grouped = x.reshape(n, ctx.groups, -1)
    inv_m = 1.0 / grouped.shape[2]
    xc = grouped - grouped.sum(axis=2, keepdims=True) * inv_m
    r = ((xc * xc).sum(axis=2, keepdims=True) * inv_m + ctx.eps) ** -0.5
    xhat = xc * r
    g3 = g.reshape(n, c, -1)
    dxhat = (g3 * weight.reshape(1, c, 1)).reshape(*grouped.shape)
    dx = r * (dxhat - dxhat.sum(axis=2, keepdims=True) * inv_m
              - xhat * (dxhat * xhat).sum(axis=2, keepdims=True) * inv_m)
    dgamma = (g3 * xhat.reshape(*g3.shape)).sum(axis=(0, 2))
    return dx.reshape(*x.shape), dgamma, g3.sum(axis=(0, 2))


# ---------------------------------------------------------------- registration


def _group_norm(impl: str) -> Any:
    return lambda x, w, b, groups, eps: F.group_norm(x, groups, w, b, eps, impl=impl)


def _instance_norm(impl: str) -> Any:
    return lambda x, w, b, eps: F.instance_norm(x, None, None, w, b, eps=eps, impl=impl)


def _example(rng: np.random.Generator, shape: tuple[int, ...], dtype: str, groups: bool) -> list[Any]:
    n, c = shape[:2]
    spatial = tuple(shape[2:]) or (3,)
    x = rng.normal(1.0, 2.0, (n, 2 * c) + spatial).astype(dtype)  # 2c channels: groups of 2
    w = rng.normal(1.0, 0.5, 2 * c).astype(dtype)
    b = rng.normal(0.0, 0.5, 2 * c).astype(dtype)
    return [x, w, b, c, 1e-5] if groups else [x, w, b, 1e-5]


def _strategy(kind: str) -> Any:
    def strategy(dtype: str) -> Any:
        from tinygrad_bn.testing import conv_strategies  # hypothesis loads only when a check asks

        return conv_strategies.group_norm_args(dtype, instance=kind == "instance_norm")

    return strategy


register_kernel(FusedKernel(
    "group_norm", GroupNormFused, _group_norm("composed"), _group_norm("fused"),
    lambda rng, shape, dtype: _example(rng, shape, dtype, True), _strategy("group_norm")))
register_kernel(FusedKernel(
    "instance_norm", GroupNormFused, _instance_norm("composed"), _instance_norm("fused"),
    lambda rng, shape, dtype: _example(rng, shape, dtype, False), _strategy("instance_norm")))
