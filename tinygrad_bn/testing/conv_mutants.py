"""Wrong versions of the convolution, pooling and GroupNorm kernels, for the mutant catalogue.

Each class is the real kernel with one mistake a person writing its backward by
hand makes; `testing.mutants` lists them (with where the bug lives) next to the
BatchNorm, LayerNorm, Linear and cross-entropy mutants. The protocol's examples
use overlapping windows (kernel 2, stride 1, padding 1 for convolution and max
pooling), so the mistakes that only matter when windows overlap are visible.

The formulas the mutants get wrong (see kernels/conv.py, pool.py, groupnorm.py):

    conv     db = sum of G_y over (n, p, q)   dW = G_y X^T   dx = col2im(W^T G_y), col2im *adds*
    pools    max: each output's gradient to its window's first maximum
             avg: g * (1 / divisor) copied to every element of the window, overlaps added
    group    dx = r (d - mean_g(d) - xhat mean_g(d xhat)), d = g gamma, means over each group
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from tinygrad_bn.autograd import Context, is_grad_enabled
from tinygrad_bn.functional.conv import Window
from tinygrad_bn.functional.pool import first_input_element, input_index
from tinygrad_bn.kernels.conv import (
    ConvFused,
    FoldFused,
    UnfoldFused,
    _as_2d,
    _conv_backward_differentiable,
    crop_array,
)
from tinygrad_bn.kernels.groupnorm import GroupNormFused
from tinygrad_bn.kernels.pool import (
    AdaptiveAvgPool2dFused,
    AvgPool2dFused,
    MaxPool2dFused,
    _avg_backward_differentiable,
)
from tinygrad_bn.tensor import Tensor


def col2im_assigning(cols: np.ndarray, window: Window, n: int, c: int) -> np.ndarray:
    """col2im written with `=` instead of `+=`: where windows overlap, the last one wins."""
    (kh, kw), (oh, ow) = window.kernel, window.out
    acc = np.zeros((c, n) + window.padded, dtype=cols.dtype)
    slabs = cols.reshape(c, kh, kw, n, oh, ow)
    for i, j in window.positions():
        rows, columns = window.offsets(i, j)
        acc[:, :, rows, columns] = slabs[:, i, j]
    return np.ascontiguousarray(crop_array(acc, window).transpose(1, 0, 2, 3))


@contextlib.contextmanager
def _replaced(ctx: Context, name: str, value: Any) -> Iterator[None]:
    """Run the real backward with one thing it reads from ctx replaced (restored after)."""
    real = getattr(ctx, name)
    setattr(ctx, name, value)
    try:
        yield
    finally:
        setattr(ctx, name, real)


# ---------------------------------------------------------------- convolution


class ConvCol2imAssigns(ConvFused):
    """Fast path: dx's col2im assigns each window's share instead of adding it."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        grads = ConvFused.backward(ctx, g)
        if is_grad_enabled():
            return grads
        x, weight, _ = ctx.saved_tensors
        wd, gd = _as_2d(weight.data), _as_2d(g.data)
        n, f = gd.shape[:2]
        gy = np.ascontiguousarray(gd.reshape(n, f, -1).transpose(1, 0, 2)).reshape(f, -1)
        dcols = wd.reshape(f, -1).T @ gy  # the protocol's examples have one group
        dx = col2im_assigning(dcols, ctx.window, n, wd.shape[1]).reshape(x.data.shape)
        return (dx,) + tuple(grads[1:])


class ConvDbiasMean(ConvFused):
    """db = the mean of G_y over (n, p, q) instead of the sum."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        grads = ConvFused.backward(ctx, g)
        positions = int(np.prod(g.shape)) // g.shape[1]
        return tuple(grads[:2]) + (grads[2] * (1.0 / positions),)


class ConvDweightFirstImageOnly(ConvFused):
    """Fast path: dW = G_y X^T over the first image's columns only (the batch sum forgotten)."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        grads = ConvFused.backward(ctx, g)
        if is_grad_enabled():
            return grads
        _, weight, cols = ctx.saved_tensors
        gd = _as_2d(g.data)
        f, per_image = gd.shape[1], gd.shape[2] * gd.shape[3]
        gy = gd[0].reshape(f, per_image)
        dw = (gy @ cols.data[:, :per_image].T).reshape(weight.data.shape)
        return (grads[0], dw) + tuple(grads[2:])


class ConvDifferentiablePathDetachedWeight(ConvFused):
    """Differentiable path only: dx computed from weight.detach(), so d(dx)/dW is lost."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        if not is_grad_enabled():
            return ConvFused.backward(ctx, g)
        x, weight, _ = ctx.saved_tensors
        # Only dx reads the weight (dW and db are built from x and g), so one call does it.
        return _conv_backward_differentiable(ctx, g, x, weight.detach())


class UnfoldBackwardAssigns(UnfoldFused):
    """Fast path: im2col's adjoint assigns overlapping windows' gradients instead of adding them."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Any:
        if is_grad_enabled():
            return UnfoldFused.backward(ctx, g)
        flat = np.ascontiguousarray(g.data.transpose(1, 0, 2)).reshape(ctx.channels * ctx.window.count, -1)
        return col2im_assigning(flat, ctx.window, g.shape[0], ctx.channels)


class FoldBackwardFlippedKernel(FoldFused):
    """col2im's adjoint reads the kernel elements in reverse order (convolution vs correlation)."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Any:
        cols = UnfoldFused.apply(g, window=ctx.window)
        n, rows, positions = cols.shape
        count = ctx.window.count
        flipped = cols.reshape(n, rows // count, count, positions)[:, :, ::-1, :]
        return flipped.reshape(n, rows, positions)


# ---------------------------------------------------------------- pooling


class MaxPoolFirstElement(MaxPool2dFused):
    """Each window's gradient goes to its first element, as if the argmax ran over the wrong axis."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Any:
        with _replaced(ctx, "chosen", np.broadcast_to(first_input_element(ctx.window), ctx.chosen.shape)):
            return MaxPool2dFused.backward(ctx, g)


class MaxPoolOverlapsAssigned(MaxPool2dFused):
    """Fast path: the gradient scattered with `dx[idx] = g`, so a maximum shared by windows gets one share."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Any:
        if is_grad_enabled():
            return MaxPool2dFused.backward(ctx, g)
        window, chosen = ctx.window, ctx.chosen
        planes, (h, w) = chosen.shape[0], window.size
        flat = input_index(chosen, window) + (np.arange(planes) * (h * w))[:, None, None]
        dx = np.zeros(planes * h * w, dtype=g.dtype)
        dx[flat.ravel()] = g.data.reshape(planes, -1).ravel()
        return dx.reshape(ctx.in_shape)


class AvgPoolFastPathWithoutDivisor(AvgPool2dFused):
    """Fast path: g copied to every window element without the 1 / divisor."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Any:
        if is_grad_enabled():
            return AvgPool2dFused.backward(ctx, g)
        with _replaced(ctx, "scale", np.ones_like(ctx.scale)):
            return AvgPool2dFused.backward(ctx, g)


class AvgPoolDifferentiablePathWithoutDivisor(AvgPool2dFused):
    """Differentiable path only: the Tensor-op copy of g forgets the 1 / divisor."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Any:
        if not is_grad_enabled():
            return AvgPool2dFused.backward(ctx, g)
        return _avg_backward_differentiable(g, ctx.window, np.ones_like(ctx.scale), ctx.in_shape)


class AdaptivePoolWithoutAverage(AdaptiveAvgPool2dFused):
    """Fast path: each output's gradient copied to its window without dividing by the window's size."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Any:
        if is_grad_enabled():
            return AdaptiveAvgPool2dFused.backward(ctx, g)
        rows, cols = (ctx.rows != 0).astype(g.dtype), (ctx.cols != 0).astype(g.dtype)
        planes = g.data.reshape((-1,) + g.shape[-2:])
        return np.ascontiguousarray(rows.T @ planes @ cols).reshape(ctx.in_shape)


# ---------------------------------------------------------------- GroupNorm


def _group_parts(ctx: Context, g: Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Fast-path arrays (d = g gamma, xhat, r), grouped (N, G, M), and the group size M."""
    x, weight, xhat, inv_std = ctx.saved_tensors
    n, c = x.shape[:2]
    d = (g.data.reshape(n, c, -1) * weight.data[:, None]).reshape(n, ctx.groups, -1)
    return d, xhat.data.reshape(d.shape), inv_std.data, d.shape[2]


class GroupNormStatsPerChannel(GroupNormFused):
    """Fast path: dx's two means taken per channel (InstanceNorm's formula) instead of per group."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        grads = GroupNormFused.backward(ctx, g)
        if is_grad_enabled():
            return grads
        d, xhat, r, _ = _group_parts(ctx, g)
        n, c = g.shape[:2]
        dc, xc = d.reshape(n, c, -1), xhat.reshape(n, c, -1)
        dxhat = dc - dc.mean(axis=2, keepdims=True) - xc * (dc * xc).mean(axis=2, keepdims=True)
        return (dxhat.reshape(d.shape) * r).reshape(g.shape), grads[1], grads[2]


class GroupNormDxMissingXhatTerm(GroupNormFused):
    """Fast path: dx = r (d - mean_g(d)), forgetting that the variance depends on x."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        grads = GroupNormFused.backward(ctx, g)
        if is_grad_enabled():
            return grads
        d, _, r, _ = _group_parts(ctx, g)
        return ((d - d.mean(axis=2, keepdims=True)) * r).reshape(g.shape), grads[1], grads[2]


class GroupNormDifferentiablePathUnbiasedVar(GroupNormFused):
    """Differentiable path only: r recomputed with the unbiased variance (M - 1)."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        if not is_grad_enabled():
            return GroupNormFused.backward(ctx, g)
        x, weight = ctx.saved_tensors[:2]
        n, c = x.shape[:2]
        grouped = x.reshape(n, ctx.groups, -1)
        m = grouped.shape[2]
        xc = grouped - grouped.sum(axis=2, keepdims=True) * (1.0 / m)
        r = ((xc * xc).sum(axis=2, keepdims=True) * (1.0 / (m - 1)) + ctx.eps) ** -0.5
        xhat = xc * r
        g3 = g.reshape(n, c, -1)
        d = (g3 * weight.reshape(1, c, 1)).reshape(*grouped.shape)
        mean = d.sum(axis=2, keepdims=True) * (1.0 / m)
        dx = r * (d - mean - xhat * (d * xhat).sum(axis=2, keepdims=True) * (1.0 / m))
        dgamma = (g3 * xhat.reshape(*g3.shape)).sum(axis=(0, 2))
        return dx.reshape(*x.shape), dgamma, g3.sum(axis=(0, 2))


class InstanceNormDgammaWithoutInvStd(GroupNormFused):
    """Fast path: dgamma = sum(g (x - mean)), the centred input instead of xhat."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        grads = GroupNormFused.backward(ctx, g)
        if is_grad_enabled():
            return grads
        _, xhat, r, _ = _group_parts(ctx, g)
        n, c = g.shape[:2]
        centred = (xhat / r).reshape(n, c, -1)
        return grads[0], (g.data.reshape(n, c, -1) * centred).sum(axis=(0, 2)), grads[2]
