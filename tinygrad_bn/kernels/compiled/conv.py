"""NumbaConvFused: tinygrad_bn.kernels.conv's im2col convolution with its gathers as compiled loops.

The maths, notation and layout are the numpy kernel's docstring: X (K, N*L)
from im2col, one matrix product per group for the output, dW and dX, col2im for
dx. The matrix products stay in BLAS (numpy's matmul), which no loop written
here could match; what numba replaces is everything around them, each a single
pass that numpy needed two or three for:

    forward    im2col: read x once, write X (zeros for the padding written
               in the same pass, no padded copy of x);
               Y (F, N*L) -> output (N, F, L) and + bias: one pass
    backward   g (N, F, L) -> G_y (F, N*L) and db (float64 row sums): one pass;
               col2im: read dX once, write dx once (each (n, c) plane
               accumulates its kh*kw slabs while it sits in cache, no padded
               buffer and no cropping copy)

Determinism: the loops only copy, except col2im's adds and db's sums, which
run in a fixed order inside one task (one (n, c) plane, one filter). Threads
only decide who runs a task, so results are bit-identical for any numba thread
count (tests/test_compiled_conv.py checks it). The matrix products are numpy's,
as in the numpy kernel.

Double backward (create_graph=True) uses the numpy kernel's Tensor-op formula.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from tinygrad_bn.autograd import Context, Function, is_grad_enabled
from tinygrad_bn.functional.conv import Window
from tinygrad_bn.kernels import conv as numpy_kernel
from tinygrad_bn.kernels.compiled import winograd
from tinygrad_bn.kernels.compiled._jit import jit, launch, row_sum
from tinygrad_bn.tensor import Tensor


def geometry(window: Window) -> np.ndarray:
    """The window as the int64 array the loops take: kh, kw, sh, sw, dh, dw, top, left, oh, ow."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = window.kernel, window.stride, window.dilation, window.out
    return np.array([kh, kw, sh, sw, dh, dw, window.pads[0], window.pads[2], oh, ow], dtype=np.int64)


@jit
def inside(start: int, step: int, count: int, size: int) -> tuple[int, int]:
    """[lo, hi): the k in [0, count) with 0 <= start + k*step < size (lo == hi when none)."""
    lo = 0 if start >= 0 else min(count, (-start + step - 1) // step)
    hi = 0 if size - start <= 0 else min(count, (size - start + step - 1) // step)
    return lo, max(lo, hi)


@jit
def unpack(geo):
    """`geometry`'s ten numbers as a tuple."""
    return geo[0], geo[1], geo[2], geo[3], geo[4], geo[5], geo[6], geo[7], geo[8], geo[9]


# ---------------------------------------------------------------- im2col


@jit
def _im2col_task(x, geo, cols, t):
    """Task t = (row r = (c, i, j), example n): cols[r, n*L:(n+1)*L] = that kernel element's reads.

    Flat arrays and unsigned offsets: numba's negative-index check on signed
    indices, and a view per output row, made the first version 6x slower than
    numpy's strided copy.
    """
    kh, kw, sh, sw, dh, dw, top, left, oh, ow = unpack(geo)
    n_all, channels, height, width = x.shape
    r, n = t // n_all, t % n_all
    c, ij = r // (kh * kw), r % (kh * kw)
    i, j = ij // kw, ij % kw
    length = oh * ow
    dst = cols.reshape(-1)
    src = x.reshape(-1)
    base = np.uint64(r * n_all * length + n * length)
    plane = np.uint64((n * channels + c) * height * width)
    w0 = j * dw - left
    q_lo, q_hi = inside(w0, sw, ow, width)
    p_lo, p_hi = inside(i * dh - top, sh, oh, height)
    zero = dst.dtype.type(0)
    for k in range(np.uint64(p_lo * ow)):
        dst[base + k] = zero
    for k in range(np.uint64(p_hi * ow), np.uint64(length)):
        dst[base + k] = zero
    ustep = np.uint64(sw)
    for p in range(p_lo, p_hi):
        row = base + np.uint64(p * ow)
        for q in range(np.uint64(q_lo)):
            dst[row + q] = zero
        for q in range(np.uint64(q_hi), np.uint64(ow)):
            dst[row + q] = zero
        at = plane + np.uint64((p * sh + i * dh - top) * width + q_lo * sw + w0)  # >= 0
        out = row + np.uint64(q_lo)
        for q in range(np.uint64(q_hi - q_lo)):
            dst[out + q] = src[at + q * ustep]


@jit(parallel=True)
def _im2col(x, geo, cols, threaded):
    tasks = cols.shape[0] * x.shape[0]
    if threaded:
        for t in prange(tasks):
            _im2col_task(x, geo, cols, t)
    else:
        for t in range(tasks):
            _im2col_task(x, geo, cols, t)


# ---------------------------------------------------------------- col2im


@jit
def _col2im_task(dcols, geo, dx, t):
    """Task t = plane (n, c) of dx: zero it, then add its kh*kw slabs of dcols in kernel order."""
    kh, kw, sh, sw, dh, dw, top, left, oh, ow = unpack(geo)
    n_all, channels, height, width = dx.shape
    n, c = t // channels, t % channels
    length = oh * ow
    dst = dx.reshape(-1)
    src = dcols.reshape(-1)
    plane = np.uint64(t * height * width)
    zero = dst.dtype.type(0)
    for k in range(np.uint64(height * width)):
        dst[plane + k] = zero
    ustep = np.uint64(sw)
    for i in range(kh):
        p_lo, p_hi = inside(i * dh - top, sh, oh, height)
        for j in range(kw):
            w0 = j * dw - left
            q_lo, q_hi = inside(w0, sw, ow, width)
            slab = np.uint64((((c * kh + i) * kw + j) * n_all + n) * length + q_lo)
            for p in range(p_lo, p_hi):
                at = plane + np.uint64((p * sh + i * dh - top) * width + q_lo * sw + w0)  # >= 0
                row = slab + np.uint64(p * ow)
                for q in range(np.uint64(q_hi - q_lo)):
                    dst[at + q * ustep] += src[row + q]


@jit(parallel=True)
def _col2im(dcols, geo, dx, threaded):
    tasks = dx.shape[0] * dx.shape[1]
    if threaded:
        for t in prange(tasks):
            _col2im_task(dcols, geo, dx, t)
    else:
        for t in range(tasks):
            _col2im_task(dcols, geo, dx, t)


# ---------------------------------------------------------------- layout changes around the products


@jit
def _output_task(y, bias, has_bias, out, t):
    """Task t = (n, f): out[n, f] = Y[f, n*L:(n+1)*L] (+ b[f])."""
    filters, length = out.shape[1], out.shape[2]
    n, f = t // filters, t % filters
    src, dst = y[f, n * length:(n + 1) * length], out[n, f]
    if has_bias:
        b = bias[f]
        for q in range(length):
            dst[q] = src[q] + b
    else:
        dst[:] = src


@jit(parallel=True)
def _output(y, bias, has_bias, out, threaded):
    tasks = out.shape[0] * out.shape[1]
    if threaded:
        for t in prange(tasks):
            _output_task(y, bias, has_bias, out, t)
    else:
        for t in range(tasks):
            _output_task(y, bias, has_bias, out, t)


@jit
def _grad_rows_task(g, gy, db, f):
    """Task f: G_y[f] = g[:, f] laid end to end, and db[f] = their sum (float64, examples in order)."""
    n_all, length = g.shape[0], g.shape[2]
    dst = gy[f]
    total = 0.0
    for n in range(n_all):
        src = g[n, f]
        dst[n * length:(n + 1) * length] = src
        total += row_sum(src)
    db[f] = total


@jit(parallel=True)
def _grad_rows(g, gy, db, threaded):
    if threaded:
        for f in prange(g.shape[1]):
            _grad_rows_task(g, gy, db, f)
    else:
        for f in range(g.shape[1]):
            _grad_rows_task(g, gy, db, f)


# ---------------------------------------------------------------- the Function


def _grouped(a: np.ndarray, groups: int) -> np.ndarray:
    """(rows, cols) as (groups, rows / groups, cols): a view."""
    return a.reshape(groups, a.shape[0] // groups, a.shape[1])


class NumbaConvFused(Function):
    """Convolution of (N, C, L) or (N, C, H, W) input, compiled gathers: inputs (x, weight[, bias])."""

    name = "conv_fused"
    backend = "numba"
    fused = True

    @staticmethod
    def forward(ctx: Context, x: Tensor, weight: Tensor, *bias: Tensor, window: Window,
                groups: int) -> np.ndarray:
        xd = np.ascontiguousarray(numpy_kernel._as_2d(x.data))
        wd = numpy_kernel._as_2d(weight.data)
        n, c = xd.shape[:2]
        f = wd.shape[0]
        (oh, ow), geo = window.out, geometry(window)
        ctx.window, ctx.groups, ctx.has_bias = window, groups, bool(bias)
        b = np.ascontiguousarray(bias[0].data) if bias else np.zeros(1, dtype=xd.dtype)
        ctx.winograd = winograd.worth_it(window, groups, c, f)
        if ctx.winograd:
            return _winograd_forward(ctx, x, weight, xd, wd, b)
        cols = np.empty((c * window.count, n * oh * ow), dtype=xd.dtype)
        launch(_im2col, xd.nbytes + cols.nbytes, xd, geo, cols)
        w2 = wd.reshape(f, -1)
        y = w2 @ cols if groups == 1 else (_grouped(w2, groups) @ _grouped(cols, groups)).reshape(f, -1)
        out = np.empty((n, f, oh * ow), dtype=xd.dtype)
        launch(_output, 2 * out.nbytes, y, b, bool(bias), out)
        ctx.save_for_backward(x, weight, cols)
        return out.reshape((n, f, ow) if x.data.ndim == 3 else (n, f, oh, ow))

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        x, weight, cols = ctx.saved_tensors
        if is_grad_enabled():  # create_graph=True: the numpy kernel's Tensor-op formula
            return numpy_kernel._conv_backward_differentiable(ctx, g, x, weight)
        if ctx.winograd:
            return _winograd_backward(ctx, g, x, weight, cols)
        groups, window = ctx.groups, ctx.window
        wd = numpy_kernel._as_2d(weight.data)
        gd = np.ascontiguousarray(g.data, dtype=wd.dtype)
        n, f = gd.shape[:2]
        gd = gd.reshape(n, f, -1)
        gy = np.empty((f, gd.shape[0] * gd.shape[2]), dtype=gd.dtype)
        db = np.empty(f)
        launch(_grad_rows, 2 * gd.nbytes, gd, gy, db)
        need_x, need_w = ctx.needs_input_grad[:2]
        dx = dw = None
        w2 = wd.reshape(f, -1)
        if need_x:
            if groups == 1:
                dcols = w2.T @ gy
            else:
                dcols = _grouped(w2, groups).transpose(0, 2, 1) @ _grouped(gy, groups)
                dcols = dcols.reshape(-1, gy.shape[1])
            x4 = numpy_kernel._as_2d(x.data)
            dx4 = np.empty(x4.shape, dtype=gd.dtype)
            launch(_col2im, dcols.nbytes + dx4.nbytes, dcols, geometry(window), dx4)
            dx = dx4.reshape(x.data.shape)
        if need_w:
            cd = cols.data
            dw = gy @ cd.T if groups == 1 else _grouped(gy, groups) @ _grouped(cd, groups).transpose(0, 2, 1)
            dw = dw.reshape(weight.data.shape)
        grads = (dx, dw)
        if ctx.has_bias:
            grads += (db.astype(gd.dtype) if ctx.needs_input_grad[2] else None,)
        return grads


def _winograd_forward(ctx: Context, x: Tensor, weight: Tensor, xd: np.ndarray, wd: np.ndarray,
                      bias: np.ndarray) -> np.ndarray:
    """forward by F(2x2, 3x3) (see winograd.py); saves V and U for backward."""
    window = ctx.window
    n, c = xd.shape[:2]
    f = wd.shape[0]
    th, tw = winograd.tiles(window)
    top, left = window.pads[0], window.pads[2]
    v = np.empty((16, c, n * th * tw), dtype=xd.dtype)
    launch(winograd.input_transform, xd.nbytes + v.nbytes, xd, top, left, th, tw, v)
    u = winograd.filter_transform(wd)
    m = u @ v  # 16 products (F, C) @ (C, T)
    out = np.empty((n, f) + window.out, dtype=xd.dtype)
    launch(winograd.output_transform, m.nbytes + out.nbytes, m, bias, ctx.has_bias, th, tw, out)
    ctx.save_for_backward(x, weight, v)
    ctx.u = u
    return out


def _winograd_backward(ctx: Context, g: Tensor, x: Tensor, weight: Tensor, v: Tensor) -> tuple:
    """dx, dw, db by the adjoint of F(2x2, 3x3) (see winograd.py)."""
    window, u, vd = ctx.window, ctx.u, v.data
    gd = np.ascontiguousarray(g.data, dtype=vd.dtype)
    n, f = gd.shape[:2]
    th, tw = winograd.tiles(window)
    e = np.empty((16, f, vd.shape[2]), dtype=vd.dtype)
    db_parts = np.empty((n, f))
    launch(winograd.grad_transform, gd.nbytes + e.nbytes, gd, th, tw, e, db_parts)
    need_x, need_w = ctx.needs_input_grad[:2]
    dx = dw = None
    if need_x:
        dv = u.transpose(0, 2, 1) @ e  # 16 products (C, F) @ (F, T)
        dx = np.empty(x.data.shape, dtype=vd.dtype)
        launch(winograd.dx_transform, dv.nbytes + dx.nbytes, dv, window.pads[0], window.pads[2], th, tw, dx)
    if need_w:
        dw = winograd.filter_gradient(e @ vd.transpose(0, 2, 1)).reshape(weight.data.shape)
    grads = (dx, dw)
    if ctx.has_bias:
        grads += (db_parts.sum(axis=0).astype(vd.dtype) if ctx.needs_input_grad[2] else None,)
    return grads
