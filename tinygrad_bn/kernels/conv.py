"""ConvFused, UnfoldFused, FoldFused: convolution as im2col + one matrix product, backward by col2im.

Notation (2-d; a 1-d convolution is the same with H = 1). Input x (N, C, H, W),
zero-padded to xp (N, C, Hp, Wp); filters w (F, C/G, kh, kw) in G groups; bias
b (F,); output y (N, F, OH, OW), L = OH*OW positions, K = C*kh*kw rows. With
stride s and dilation d, kernel element (i, j) of output position (p, q) reads
xp[:, :, s*p + d*i, s*q + d*j]. im2col lays those reads out as a matrix

    X[(c, i, j), (n, p, q)] = xp[n, c, s*p + d*i, s*q + d*j]       (K, N*L)

and the convolution is one product per group (W_g = w's filters of group g,
reshaped (F/G, K/G); X_g = the rows of group g's channels):

    Y_g = W_g @ X_g + b_g                                              (F/G, N*L)

Backward, given gy = dL/dy rearranged the same way as Y (G_y, (F, N*L)):

    db    = sum of G_y over its columns        (over n, p, q)
    dW_g  = G_y,g @ X_gᵀ                       (the product rule for a matrix product)
    dX_g  = W_gᵀ @ G_y,g                       (K/G, N*L)
    dx    = col2im(dX)

col2im is im2col's adjoint: im2col copies xp[n, c, s*p + d*i, s*q + d*j] to
entry ((c, i, j), (n, p, q)), so every entry of dX is *added* back to the one
position it was copied from. A position read by several windows (when the
stride is smaller than the kernel's span) collects the sum; the padding's
share is then cropped. The kernel loops over the kh*kw kernel elements and
adds, for each, a strided slab of dX into a strided slice of the padded
gradient: kh*kw vectorised adds instead of a scatter of K*N*L single elements.

Cost: im2col is one copy of K*N*L elements from a strided view (no index
array); the matrix products run in BLAS; the backward makes one transposed
copy of gy and the kh*kw adds of col2im. X is kept from forward for dW.

Double backward: with create_graph=True, backward evaluates the same formulas
with Tensor ops, im2col and col2im being UnfoldFused and FoldFused: each is
the other's backward, so gradients of gradients go through the same kernels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from tinygrad_bn import functional as F
from tinygrad_bn.autograd import Context, Function, is_grad_enabled
from tinygrad_bn.functional.conv import Window
from tinygrad_bn.kernel_registry import FusedKernel, register_kernel
from tinygrad_bn.tensor import Tensor


def pad_array(x: np.ndarray, pads: tuple[int, int, int, int], value: float = 0.0) -> np.ndarray:
    """x (..., H, W) with `value` added around it: (top, bottom, left, right)."""
    top, bottom, left, right = pads
    if not any(pads):
        return x
    h, w = x.shape[-2:]
    out = np.full(x.shape[:-2] + (h + top + bottom, w + left + right), value, dtype=x.dtype)
    out[..., top:top + h, left:left + w] = x
    return out


def crop_array(xp: np.ndarray, window: Window) -> np.ndarray:
    """The input region of a padded (..., Hp, Wp) array (a view)."""
    top, _, left, _ = window.pads
    h, w = window.size
    return xp[..., top:top + h, left:left + w]


def im2col(x: np.ndarray, window: Window) -> np.ndarray:
    """X (C*kh*kw, N*OH*OW) of a batched (N, C, H, W) array, rows (c, i, j), columns (n, p, q)."""
    xp = pad_array(x, window.pads)
    n, c = xp.shape[:2]
    (kh, kw), (dh, dw), (sh, sw), (oh, ow) = window.kernel, window.dilation, window.stride, window.out
    s_n, s_c, s_h, s_w = xp.strides
    view = as_strided(xp, (c, kh, kw, n, oh, ow), (s_c, dh * s_h, dw * s_w, s_n, sh * s_h, sw * s_w),
                      writeable=False)
    return view.reshape(c * kh * kw, n * oh * ow)  # the one copy


def col2im(cols: np.ndarray, window: Window, n: int, c: int) -> np.ndarray:
    """im2col's adjoint: X (C*kh*kw, N*OH*OW) added back into a batched (N, C, H, W) array."""
    hp, wp = window.padded
    (kh, kw), (oh, ow) = window.kernel, window.out
    # Accumulate as (C, N, Hp, Wp): each slab cols[c, i, j] is then contiguous per channel.
    acc = np.zeros((c, n, hp, wp), dtype=cols.dtype)
    slabs = cols.reshape(c, kh, kw, n, oh, ow)
    for i, j in window.positions():
        rows, columns = window.offsets(i, j)
        acc[:, :, rows, columns] += slabs[:, i, j]
    return np.ascontiguousarray(crop_array(acc, window).transpose(1, 0, 2, 3))


def _as_2d(a: np.ndarray) -> np.ndarray:
    """A 1-d convolution's (N, C, L) arrays as (N, C, 1, L) images."""
    return a[:, :, None, :] if a.ndim == 3 else a


class ConvFused(Function):
    """Convolution of (N, C, L) or (N, C, H, W) input: inputs (x, weight) or (x, weight, bias)."""

    name = "conv_fused"
    fused = True

    @staticmethod
    def forward(ctx: Context, x: Tensor, weight: Tensor, *bias: Tensor, window: Window,
                groups: int) -> np.ndarray:
        xd, wd = _as_2d(x.data), _as_2d(weight.data)
        n, f = xd.shape[0], wd.shape[0]
        oh, ow = window.out
        cols = im2col(xd, window)
        if groups == 1:
            y = wd.reshape(f, -1) @ cols
        else:
            y = wd.reshape(groups, f // groups, -1) @ cols.reshape(groups, -1, cols.shape[1])
        y = y.reshape(f, n, oh, ow).transpose(1, 0, 2, 3)
        out = np.empty((n, f, oh, ow), dtype=y.dtype)
        if bias:
            np.add(y, bias[0].data.reshape(1, f, 1, 1), out=out)
        else:
            np.copyto(out, y)
        ctx.save_for_backward(x, weight, cols)
        ctx.window, ctx.groups, ctx.has_bias = window, groups, bool(bias)
        return out.reshape((n, f, ow) if x.data.ndim == 3 else out.shape)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        x, weight, cols = ctx.saved_tensors
        if is_grad_enabled():
            return _conv_backward_differentiable(ctx, g, x, weight)
        groups, window = ctx.groups, ctx.window
        wd, gd = _as_2d(weight.data), _as_2d(g.data)
        n, f = gd.shape[:2]
        # G_y: (F, N*L), columns (n, p, q) as in X
        gy = np.ascontiguousarray(gd.reshape(n, f, -1).transpose(1, 0, 2)).reshape(f, -1)
        need_x, need_w = ctx.needs_input_grad[:2]
        dx = dw = None
        if need_x:
            if groups == 1:
                dcols = wd.reshape(f, -1).T @ gy
            else:
                dcols = (wd.reshape(groups, f // groups, -1).transpose(0, 2, 1)
                         @ gy.reshape(groups, f // groups, -1)).reshape(-1, gy.shape[1])
            dx = col2im(dcols, window, n, wd.shape[1] * groups).reshape(x.data.shape)
        if need_w:
            cd = cols.data
            if groups == 1:
                dw = gy @ cd.T
            else:
                dw = (gy.reshape(groups, f // groups, -1)
                      @ cd.reshape(groups, -1, cd.shape[1]).transpose(0, 2, 1))
            dw = dw.reshape(weight.data.shape)
        grads = (dx, dw)
        if ctx.has_bias:
            grads += (gy.sum(axis=1) if ctx.needs_input_grad[2] else None,)
        return grads


def _conv_backward_differentiable(ctx: Context, g: Tensor, x: Tensor, weight: Tensor) -> tuple:
    """The same formulas with Tensor ops (im2col/col2im as UnfoldFused/FoldFused): differentiable again."""
    groups, window = ctx.groups, ctx.window
    one_d = x.ndim == 3
    x4 = x.unsqueeze(2) if one_d else x
    w4 = weight.unsqueeze(2) if one_d else weight
    g4 = g.unsqueeze(2) if one_d else g
    n, c = x4.shape[:2]
    f = w4.shape[0]
    length = window.out[0] * window.out[1]
    k_group = c * window.count // groups
    gy = g4.reshape(n, groups, f // groups, length)
    w_groups = w4.reshape(groups, f // groups, k_group)
    dcols = (w_groups.permute(0, 2, 1) @ gy).reshape(n, c * window.count, length)
    dx = FoldFused.apply(dcols, window=window, channels=c).reshape(*x.shape)
    cols = UnfoldFused.apply(x4, window=window).reshape(n, groups, k_group, length)
    dw = (gy @ cols.permute(0, 1, 3, 2)).sum(axis=0).reshape(*weight.shape)
    grads = (dx, dw)
    if ctx.has_bias:
        grads += (g4.sum(axis=(0, 2, 3)),)
    return grads


class UnfoldFused(Function):
    """im2col of (N, C, H, W) input, as (N, C*kh*kw, L); backward is FoldFused."""

    name = "unfold_fused"
    fused = True

    @staticmethod
    def forward(ctx: Context, x: Tensor, window: Window) -> np.ndarray:
        n, c = x.data.shape[:2]
        cols = im2col(x.data, window).reshape(c * window.count, n, -1)
        ctx.window, ctx.channels = window, c
        return np.ascontiguousarray(cols.transpose(1, 0, 2))

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        return FoldFused.apply(g, window=ctx.window, channels=ctx.channels)


class FoldFused(Function):
    """col2im of (N, C*kh*kw, L) columns into (N, C, H, W); backward is UnfoldFused."""

    name = "fold_fused"
    fused = True

    @staticmethod
    def forward(ctx: Context, cols: Tensor, window: Window, channels: int) -> np.ndarray:
        n = cols.data.shape[0]
        ctx.window = window
        flat = np.ascontiguousarray(cols.data.transpose(1, 0, 2)).reshape(channels * window.count, -1)
        return col2im(flat, window, n, channels)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        return UnfoldFused.apply(g, window=ctx.window)


# ---------------------------------------------------------------- registration


def _conv(impl: str, nd: int) -> Any:
    fn = F.conv1d if nd == 1 else F.conv2d
    return lambda x, w, b, stride, padding, dilation, groups: fn(x, w, b, stride, padding, dilation,
                                                                  groups, impl=impl)


def _spatial(shape: tuple[int, ...], nd: int) -> tuple[int, ...]:
    """The spatial size of an example: the shape's own trailing dims, else 3 per dim."""
    given = tuple(shape[2:2 + nd])
    return given + (3,) * (nd - len(given))


def _conv_example(nd: int) -> Any:
    def example(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> list[Any]:
        n, c = shape[:2]
        x = rng.normal(0.0, 1.0, (n, c) + _spatial(shape, nd)).astype(dtype)
        w = rng.normal(0.0, 0.5, (2, c) + (2,) * nd).astype(dtype)
        return [x, w, rng.normal(0.0, 0.5, 2).astype(dtype), 1, 1, 1, 1]

    return example


def _conv_strategy(nd: int) -> Any:
    def strategy(dtype: str) -> Any:
        from tinygrad_bn.testing import conv_strategies  # hypothesis loads only when a check asks

        return conv_strategies.conv_args(dtype, nd)

    return strategy


def _unfold(impl: str) -> Any:
    return lambda x, kernel, dilation, padding, stride: F.unfold(x, kernel, dilation, padding, stride,
                                                                   impl=impl)


def _fold(impl: str) -> Any:
    return lambda cols, size, kernel, dilation, padding, stride: F.fold(cols, size, kernel, dilation, padding,
                                                                        stride, impl=impl)


def _unfold_example(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> list[Any]:
    x = rng.normal(0.0, 1.0, tuple(shape[:2]) + _spatial(shape, 2)).astype(dtype)
    return [x, 2, 1, 1, 1]


def _fold_example(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> list[Any]:
    n, c = shape[:2]
    h, w = _spatial(shape, 2)
    cols = rng.normal(0.0, 1.0, (n, c * 4, (h + 1) * (w + 1))).astype(dtype)  # 2x2 windows, padding 1
    return [cols, (h, w), 2, 1, 1, 1]


def _window_strategy(kind: str) -> Any:
    def strategy(dtype: str) -> Any:
        from tinygrad_bn.testing import conv_strategies

        return conv_strategies.unfold_args(dtype) if kind == "unfold" else conv_strategies.fold_args(dtype)

    return strategy


_NUMBA_CONV = {"numba": "tinygrad_bn.kernels.compiled.conv:NumbaConvFused"}
register_kernel(FusedKernel("conv2d", ConvFused, _conv("composed", 2), _conv("fused", 2),
                            _conv_example(2), _conv_strategy(2), backends=_NUMBA_CONV))
register_kernel(FusedKernel("conv1d", ConvFused, _conv("composed", 1), _conv("fused", 1),
                            _conv_example(1), _conv_strategy(1), backends=_NUMBA_CONV))
register_kernel(FusedKernel("unfold", UnfoldFused, _unfold("composed"), _unfold("fused"),
                            _unfold_example, _window_strategy("unfold")))
register_kernel(FusedKernel("fold", FoldFused, _fold("composed"), _fold("fused"),
                            _fold_example, _window_strategy("fold")))
