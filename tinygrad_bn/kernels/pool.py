"""MaxPool2dFused, AvgPool2dFused, AdaptiveAvgPool2dFused: pooling on strided views, backward by hand.

Every (n, c) plane is pooled on its own. The kernels lay the P planes out
innermost, (Hp, Wp, P) padded, so that kernel element (i, j) of every window
is one strided view `xp[i*d : ... : s, j*d : ... : s]` of shape (OH, OW, P)
whose rows are P contiguous values: a window reduction is kh*kw elementwise
passes over output-sized arrays, with no gathered copy of the windows. (With
the planes first, the same views run numpy's loops over rows of OW values at
stride s, measured 10x slower.)

Max pooling. Forward scans the views in window order and keeps, per output,
the maximum and the scan position k that holds it (PyTorch's rule, see
functional/pool.py: strictly greater, or NaN, replaces). y depends on x only
through the chosen element, y[p, q] = xp[chosen position], so

    dx[h, w] = sum of g[p, q] over the windows (p, q) whose chosen element is (h, w)

Overlapping windows that chose the same element add up. Backward is a scatter
of g to the chosen flat positions: an assignment when windows cannot overlap,
else an accumulating one. Max pooling is piecewise linear: its second
derivative is zero and its backward is linear in g, so with create_graph=True
the backward is the same scatter-add as a primitive, differentiable in g.

Average pooling. y[p, q] = scale[p, q] * sum over the window of xp, with
scale = 1 / divisor, so every element of window (p, q) receives
scale[p, q] * g[p, q]:

    dx = crop(sum over kernel elements k of view_kᵀ (scale * g))

i.e. kh*kw strided adds of the same (OH, OW, P) array. Linear in both x and g;
create_graph=True evaluates it with a gather/scatter-add of primitives.

Adaptive average pooling is y = A_h x A_wᵀ per plane with constant averaging
matrices, so dx = A_hᵀ g A_w. When the output divides the input, the windows
tile the plane exactly, and forward is a reshape and a mean, backward a
broadcast; otherwise the two matrix products.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_bn import functional as F
from tinygrad_bn import ops
from tinygrad_bn.autograd import Context, Function, is_grad_enabled
from tinygrad_bn.functional.conv import Window, window_rows
from tinygrad_bn.functional.pool import empty_windows, first_input_element, input_index, scan_max
from tinygrad_bn.kernel_registry import FusedKernel, register_kernel
from tinygrad_bn.tensor import Tensor


def _planes(a: np.ndarray) -> np.ndarray:
    """(..., H, W) as (P, H, W)."""
    return a.reshape((-1,) + a.shape[-2:])


# Planes moved per copy when laying (P, H, W) out as (H, W, P): numpy's transposing
# copy is not cache-blocked, and blocks of 32 planes measured 2-3x faster than one copy.
TRANSPOSE_BLOCK = 32


def _planes_last(x: np.ndarray, window: Window, fill: float) -> np.ndarray:
    """(..., H, W) padded with `fill` and laid out (Hp, Wp, P), the P planes innermost.

    numpy's elementwise loops crawl over short strided rows (a 2x2 window's view
    of a (P, 16, 16) plane runs 8 elements at stride 2: measured 10x slower than
    contiguous); with the planes innermost every view is (OH, OW, P) with
    contiguous rows of P elements.
    """
    planes = _planes(x)
    top, left = window.pads[0], window.pads[2]
    h, w = window.size
    out = np.full(window.padded + (planes.shape[0],), fill, dtype=x.dtype)
    region = out[top:top + h, left:left + w]
    for start in range(0, planes.shape[0], TRANSPOSE_BLOCK):
        block = slice(start, start + TRANSPOSE_BLOCK)
        region[:, :, block] = planes[block].transpose(1, 2, 0)
    return out


def _back_to_planes(acc: np.ndarray, window: Window, shape: tuple[int, ...]) -> np.ndarray:
    """The input region of an (Hp, Wp, P) array, as an array of `shape` (..., H, W)."""
    top, left = window.pads[0], window.pads[2]
    h, w = window.size
    out = np.empty((acc.shape[2], h, w), dtype=acc.dtype)
    for row in range(h):  # one (W, P) -> (P, W) transpose per row: 3x faster than one copy
        out[:, row] = acc[top + row, left:left + w].T
    return out.reshape(shape)


def _views(xp: np.ndarray, window: Window) -> list[np.ndarray]:
    """The view (OH, OW, P) of an (Hp, Wp, P) array for each kernel element, in scan order."""
    return [xp[window.offsets(i, j)] for i, j in window.positions()]


def _to_output(a: np.ndarray, lead: tuple[int, ...]) -> np.ndarray:
    """(OH, OW, P) as (..., OH, OW)."""
    return np.ascontiguousarray(a.transpose(2, 0, 1)).reshape(lead + a.shape[:2])


class MaxPool2dFused(Function):
    """Max pooling of (..., H, W); `info`, when a dict, receives the chosen flat indices."""

    name = "max_pool2d_fused"
    fused = True

    @staticmethod
    def forward(ctx: Context, x: Tensor, window: Window, info: dict | None = None) -> np.ndarray:
        xd, lead = x.data, x.data.shape[:-2]
        xp = _planes_last(xd, window, -np.inf)
        first = first_input_element(window)[:, :, None]
        best, chosen = scan_max(_views(xp, window), first, window.out + (xp.shape[2],), xd.dtype,
                                bool(np.isnan(xd).any()))
        chosen = np.ascontiguousarray(chosen.transpose(2, 0, 1))  # (P, OH, OW)
        if info is not None:
            info["indices"] = input_index(chosen, window).reshape(lead + window.out)
        ctx.chosen, ctx.window, ctx.in_shape = chosen, window, xd.shape
        return _to_output(best, lead)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        window, chosen = ctx.window, ctx.chosen
        planes = chosen.shape[0]
        h, w = window.size
        if is_grad_enabled():
            return max_backward_differentiable(g, input_index(chosen, window), window, ctx.in_shape)
        # Each output's gradient goes to one input element: a scatter of output-sized arrays,
        # an assignment when windows cannot overlap (no element is chosen twice).
        gd = _planes(g.data)
        flat = input_index(chosen, window) + (np.arange(planes) * (h * w))[:, None, None]
        empty = empty_windows(window)
        if empty is not None:  # windows without input elements pass nothing back
            flat, gd = np.where(empty, 0, flat), np.where(empty, gd.dtype.type(0), gd)
        spans = [d * (k - 1) + 1 for k, d in zip(window.kernel, window.dilation)]
        dx = np.zeros(planes * h * w, dtype=gd.dtype)
        if empty is None and all(s >= span for s, span in zip(window.stride, spans)):
            dx[flat.ravel()] = gd.ravel()
        else:
            np.add.at(dx, flat.ravel(), gd.ravel())
        return dx.reshape(ctx.in_shape)


def max_backward_differentiable(g: Tensor, flat: np.ndarray, window: Window, in_shape: tuple) -> Tensor:
    """g scattered to the chosen flat positions `flat` (P, OH, OW) by a primitive: differentiable in g."""
    planes = flat.shape[0]
    h, w = window.size
    empty = empty_windows(window)
    if empty is not None:  # windows without input elements pass nothing back
        flat = np.where(empty, 0, flat)
        g = ops.Where.apply(Tensor._wrap(~empty, False, None), g, g * 0.0)
    dx = ops.ScatterAdd.apply(g.reshape(planes, -1), shape=(planes, h * w),
                              index=(np.arange(planes)[:, None], flat.reshape(planes, -1)))
    return dx.reshape(*in_shape)


class AvgPool2dFused(Function):
    """Average pooling of (..., H, W): window sums times `scale` (OH, OW), 1 / each divisor."""

    name = "avg_pool2d_fused"
    fused = True

    @staticmethod
    def forward(ctx: Context, x: Tensor, window: Window, scale: np.ndarray) -> np.ndarray:
        xp = _planes_last(x.data, window, 0.0)
        views = _views(xp, window)
        acc = views[0].copy()
        for view in views[1:]:
            acc += view
        acc *= scale[:, :, None]
        ctx.window, ctx.scale, ctx.in_shape = window, scale, x.data.shape
        return _to_output(acc, x.data.shape[:-2])

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        window, scale = ctx.window, ctx.scale
        if is_grad_enabled():
            return _avg_backward_differentiable(g, window, scale, ctx.in_shape)
        # what each element of window (p, q) receives, (OH, OW, P)
        share = _planes(g.data).transpose(1, 2, 0) * scale[:, :, None]
        acc = np.zeros(window.padded + (share.shape[2],), dtype=share.dtype)
        for view in _views(acc, window):
            view += share
        return _back_to_planes(acc, window, ctx.in_shape)


def _avg_backward_differentiable(g: Tensor, window: Window, scale: np.ndarray, in_shape: tuple) -> Tensor:
    """The same spread with primitives: scale * g copied to every window element, scatter-added."""
    (oh, ow), (hp, wp), (h, w) = window.out, window.padded, window.size
    share = g.reshape(-1, oh * ow).permute(1, 0) * Tensor._wrap(scale.reshape(-1, 1), False, None)
    planes = share.shape[1]
    spread = share.reshape(1, oh * ow, planes).expand(window.count, oh * ow, planes)
    padded = ops.ScatterAdd.apply(spread, index=window_rows(1, window), shape=(hp * wp, planes))
    top, left = window.pads[0], window.pads[2]
    region = (slice(None), slice(top, top + h), slice(left, left + w))
    return ops.GetItem.apply(padded.permute(1, 0).reshape(planes, hp, wp), index=region).reshape(*in_shape)


class AdaptiveAvgPool2dFused(Function):
    """Adaptive average pooling of (..., H, W) with averaging matrices rows (OH, H), cols (OW, W)."""

    name = "adaptive_avg_pool2d_fused"
    fused = True

    @staticmethod
    def forward(ctx: Context, x: Tensor, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        xd = _planes(x.data)
        (oh, h), (ow, w) = rows.shape, cols.shape
        ctx.rows, ctx.cols, ctx.in_shape = rows, cols, x.data.shape
        if h % oh == 0 and w % ow == 0:  # the windows tile the plane
            out = xd.reshape(-1, oh, h // oh, ow, w // ow).mean(axis=(2, 4))
        else:
            out = rows @ xd @ cols.T
        return out.reshape(x.data.shape[:-2] + (oh, ow))

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        rows, cols = ctx.rows, ctx.cols
        if is_grad_enabled():
            return (Tensor._wrap(np.ascontiguousarray(rows.T), False, None) @ g
                    @ Tensor._wrap(cols, False, None)).reshape(*ctx.in_shape)
        (oh, h), (ow, w) = rows.shape, cols.shape
        gd = _planes(g.data)
        if h % oh == 0 and w % ow == 0:
            kh, kw = h // oh, w // ow
            share = gd * gd.dtype.type(1.0 / (kh * kw))
            dx = np.broadcast_to(share[:, :, None, :, None], (gd.shape[0], oh, kh, ow, kw))
        else:
            dx = rows.T @ gd @ cols
        return np.ascontiguousarray(dx).reshape(ctx.in_shape)


# ---------------------------------------------------------------- registration


def _spatial(shape: tuple[int, ...]) -> tuple[int, ...]:
    given = tuple(shape[2:4])
    return given + (4,) * (2 - len(given))


def _images(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    size = tuple(shape[:2]) + _spatial(shape)
    # A permutation: distinct values, so no window has a tie a numerical gradient would straddle.
    return (rng.permutation(int(np.prod(size))).reshape(size) * 0.1).astype(dtype)


def _max_pool(impl: str) -> Any:
    return lambda x, kernel, stride, padding, dilation, ceil_mode: F.max_pool2d(
        x, kernel, stride, padding, dilation, ceil_mode, impl=impl)


def _avg_pool(impl: str) -> Any:
    return lambda x, kernel, stride, padding, ceil_mode, count_include_pad: F.avg_pool2d(
        x, kernel, stride, padding, ceil_mode, count_include_pad, impl=impl)


def _adaptive(impl: str) -> Any:
    return lambda x, output_size: F.adaptive_avg_pool2d(x, output_size, impl=impl)


def _strategy(kind: str) -> Any:
    def strategy(dtype: str) -> Any:
        from tinygrad_bn.testing import conv_strategies  # hypothesis loads only when a check asks

        return getattr(conv_strategies, f"{kind}_args")(dtype)

    return strategy


register_kernel(FusedKernel(
    "max_pool2d", MaxPool2dFused, _max_pool("composed"), _max_pool("fused"),
    lambda rng, shape, dtype: [_images(rng, shape, dtype), 2, 1, 1, 1, False], _strategy("max_pool"),
    backends={"numba": "tinygrad_bn.kernels.compiled.pool:NumbaMaxPool2dFused"}))
register_kernel(FusedKernel(
    "avg_pool2d", AvgPool2dFused, _avg_pool("composed"), _avg_pool("fused"),
    lambda rng, shape, dtype: [_images(rng, shape, dtype), 3, 2, 1, True, False], _strategy("avg_pool"),
    backends={"numba": "tinygrad_bn.kernels.compiled.pool:NumbaAvgPool2dFused"}))
register_kernel(FusedKernel(
    "adaptive_avg_pool2d", AdaptiveAvgPool2dFused, _adaptive("composed"), _adaptive("fused"),
    lambda rng, shape, dtype: [_images(rng, shape, dtype), (3, 2)], _strategy("adaptive_avg_pool")))
