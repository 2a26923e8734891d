"""NumbaMaxPool2dFused, NumbaAvgPool2dFused: tinygrad_bn.kernels.pool's kernels as compiled loops.

The maths and PyTorch's max-pool rule are the numpy kernels' docstring and
functional/pool.py's: each window is scanned row by row from its first input
element, and an element that is strictly greater, or NaN, replaces the
current choice (ties go to the first maximum, the last NaN wins, padding is
never chosen, a window without input elements is -inf and passes nothing back).
Every (n, c) plane is one task, and each loop visits only the window elements
inside the input, so no padded copy and no transposed layout is needed:

    max forward    read x once, write y and the chosen flat index (int64)
    max backward   write dx once: zeros, then g added at each chosen index
    avg forward    read x once, write y (window sums in float64, times 1/divisor)
    avg backward   write dx once: zeros, then scale * g added to each window

Determinism: one thread per plane and a fixed order inside it, so results are
bit-identical for any numba thread count. Double backward (create_graph=True)
uses the numpy kernels' primitive formulas.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from tinygrad_bn.autograd import Context, Function, is_grad_enabled
from tinygrad_bn.functional.conv import Window
from tinygrad_bn.functional.pool import empty_windows
from tinygrad_bn.kernels import pool as numpy_kernel
from tinygrad_bn.kernels.compiled._jit import jit, launch
from tinygrad_bn.kernels.compiled.conv import geometry, inside, unpack
from tinygrad_bn.tensor import Tensor


@jit
def _first_step(start: int, step: int) -> int:
    """The first kernel step at or after the input's start (unclipped, as PyTorch's index is)."""
    return 0 if start >= 0 else (-start + step - 1) // step


@jit
def _max_plane(x, geo, out, index, t):
    """Plane t: each window's maximum by PyTorch's rule, and its flat (H*W) input index."""
    kh, kw, sh, sw, dh, dw, top, left, oh, ow = unpack(geo)
    height, width = x.shape[1], x.shape[2]
    plane, best_out, index_out = x[t], out[t], index[t]
    for p in range(oh):
        h0 = p * sh - top
        i_lo, i_hi = inside(h0, dh, kh, height)
        for q in range(ow):
            w0 = q * sw - left
            j_lo, j_hi = inside(w0, dw, kw, width)
            # The first input element's scan position, wrapped by kw as the numpy kernel's is.
            first = _first_step(h0, dh) * kw + _first_step(w0, dw)
            chosen = (h0 + (first // kw) * dh) * width + w0 + (first % kw) * dw
            best = -np.inf
            for i in range(i_lo, i_hi):
                h = h0 + i * dh
                for j in range(j_lo, j_hi):
                    v = plane[h, w0 + j * dw]
                    if v > best or v != v:
                        best, chosen = v, h * width + w0 + j * dw
            best_out[p, q] = best
            index_out[p, q] = chosen


@jit(parallel=True)
def _max_forward(x, geo, out, index, threaded):
    if threaded:
        for t in prange(x.shape[0]):
            _max_plane(x, geo, out, index, t)
    else:
        for t in range(x.shape[0]):
            _max_plane(x, geo, out, index, t)


@jit
def _max_back_plane(g, index, empty, dx, t):
    """Plane t of dx: zeros, then each non-empty window's g added at its chosen index."""
    dst, gp, ip = dx[t], g[t], index[t]
    dst[:] = 0
    for p in range(gp.shape[0]):
        for q in range(gp.shape[1]):
            if not empty[p, q]:
                dst[ip[p, q]] += gp[p, q]


@jit(parallel=True)
def _max_backward(g, index, empty, dx, threaded):
    if threaded:
        for t in prange(g.shape[0]):
            _max_back_plane(g, index, empty, dx, t)
    else:
        for t in range(g.shape[0]):
            _max_back_plane(g, index, empty, dx, t)


@jit
def _avg_plane(x, geo, scale, out, t):
    """Plane t: each window's sum of input elements (float64) times its scale."""
    kh, kw, sh, sw, dh, dw, top, left, oh, ow = unpack(geo)
    height, width = x.shape[1], x.shape[2]
    plane, dst = x[t], out[t]
    for p in range(oh):
        h0 = p * sh - top
        i_lo, i_hi = inside(h0, dh, kh, height)
        for q in range(ow):
            w0 = q * sw - left
            j_lo, j_hi = inside(w0, dw, kw, width)
            total = 0.0
            for i in range(i_lo, i_hi):
                row = plane[h0 + i * dh]
                for j in range(j_lo, j_hi):
                    total += row[w0 + j * dw]
            dst[p, q] = total * scale[p, q]


@jit(parallel=True)
def _avg_forward(x, geo, scale, out, threaded):
    if threaded:
        for t in prange(x.shape[0]):
            _avg_plane(x, geo, scale, out, t)
    else:
        for t in range(x.shape[0]):
            _avg_plane(x, geo, scale, out, t)


@jit
def _avg_back_plane(g, geo, scale, dx, t):
    """Plane t of dx: zeros, then scale * g of each window added to its input elements."""
    kh, kw, sh, sw, dh, dw, top, left, oh, ow = unpack(geo)
    height, width = dx.shape[1], dx.shape[2]
    dst, gp = dx[t], g[t]
    dst[:, :] = 0
    for p in range(oh):
        h0 = p * sh - top
        i_lo, i_hi = inside(h0, dh, kh, height)
        for q in range(ow):
            w0 = q * sw - left
            j_lo, j_hi = inside(w0, dw, kw, width)
            share = gp[p, q] * dst.dtype.type(scale[p, q])  # the numpy kernel's product, in g's dtype
            for i in range(i_lo, i_hi):
                row = dst[h0 + i * dh]
                for j in range(j_lo, j_hi):
                    row[w0 + j * dw] += share


@jit(parallel=True)
def _avg_backward(g, geo, scale, dx, threaded):
    if threaded:
        for t in prange(g.shape[0]):
            _avg_back_plane(g, geo, scale, dx, t)
    else:
        for t in range(g.shape[0]):
            _avg_back_plane(g, geo, scale, dx, t)


def _planes(a: np.ndarray) -> np.ndarray:
    """(..., H, W) as a contiguous (P, H, W)."""
    return np.ascontiguousarray(a).reshape((-1,) + a.shape[-2:])


class NumbaMaxPool2dFused(Function):
    """Max pooling of (..., H, W), compiled; `info`, when a dict, receives the chosen flat indices."""

    name = "max_pool2d_fused"
    backend = "numba"
    fused = True

    @staticmethod
    def forward(ctx: Context, x: Tensor, window: Window, info: dict | None = None) -> np.ndarray:
        xd = _planes(x.data)
        out = np.empty((xd.shape[0],) + window.out, dtype=xd.dtype)
        index = np.empty(out.shape, dtype=np.int64)
        launch(_max_forward, xd.nbytes + 3 * out.nbytes, xd, geometry(window), out, index)
        lead = x.data.shape[:-2]
        if info is not None:
            info["indices"] = index.reshape(lead + window.out)
        ctx.index, ctx.window, ctx.in_shape = index, window, x.data.shape
        return out.reshape(lead + window.out)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        window, index = ctx.window, ctx.index
        if is_grad_enabled():  # create_graph=True: the same scatter as a primitive
            return numpy_kernel.max_backward_differentiable(g, index, window, ctx.in_shape)
        gd = _planes(g.data)
        empty = empty_windows(window)
        mask = np.zeros(window.out, dtype=np.bool_) if empty is None else empty
        dx = np.empty((gd.shape[0], window.size[0] * window.size[1]), dtype=gd.dtype)
        launch(_max_backward, dx.nbytes + 3 * gd.nbytes, gd, index, mask, dx)
        return dx.reshape(ctx.in_shape)


class NumbaAvgPool2dFused(Function):
    """Average pooling of (..., H, W), compiled: window sums times `scale` (OH, OW), 1 / each divisor."""

    name = "avg_pool2d_fused"
    backend = "numba"
    fused = True

    @staticmethod
    def forward(ctx: Context, x: Tensor, window: Window, scale: np.ndarray) -> np.ndarray:
        xd = _planes(x.data)
        out = np.empty((xd.shape[0],) + window.out, dtype=xd.dtype)
        scale64 = np.ascontiguousarray(scale, dtype=np.float64)
        launch(_avg_forward, xd.nbytes + out.nbytes, xd, geometry(window), scale64, out)
        ctx.window, ctx.scale, ctx.in_shape = window, scale, x.data.shape
        return out.reshape(x.data.shape[:-2] + window.out)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        window, scale = ctx.window, ctx.scale
        if is_grad_enabled():
            return numpy_kernel._avg_backward_differentiable(g, window, scale, ctx.in_shape)
        gd = _planes(g.data)
        dx = np.empty((gd.shape[0],) + window.size, dtype=gd.dtype)
        launch(_avg_backward, dx.nbytes + gd.nbytes, gd, geometry(window),
               np.ascontiguousarray(scale, dtype=np.float64), dx)
        return dx.reshape(ctx.in_shape)
