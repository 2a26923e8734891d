"""NumbaConvFused: tinygrad_bn.kernels.conv's convolution with compiled gathers around BLAS products.

The maths and notation are the numpy kernel's docstring. Two paths:

- 3x3 filters, stride 1, dilation 1, one group and enough channels: Winograd's
  F(2x2, 3x3) (winograd.py), 2.25x fewer multiplications in the products.
- everything else: im2col as in the numpy kernel, but laid out per example,
  X (N, K, L), so that the products are one (F, K) @ (K, L) per example (for
  few input channels K is small, and these ran 1.7x faster than one
  (F, K) @ (K, N*L) product) and their results already have the output's
  layout (N, F, L), as g has:

    forward    im2col: read x once, write X (the padding's zeros written in the
               same pass, no padded copy of x); Y = W @ X[n]; + bias in place
    backward   dX[n] = Wᵀ @ g[n] straight from g (no transposed copy);
               col2im: read dX once, write dx once (each (n, c) plane adds its
               kh*kw slabs while it sits in cache, no padded buffer, no crop);
               dW = Σ_n g[n] @ X[n]ᵀ (the N parts summed in float64, in order);
               db in float64 from one read of g

The matrix products are numpy's matmul (BLAS), which no loop written here
could match. Determinism: the loops only copy, except col2im's adds and the
sums, which run in a fixed order inside one task (one (n, c) plane, one filter).
Threads only decide who runs a task, so results are bit-identical for any numba
thread count (tests/test_compiled_conv.py checks it).

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
    """Task t = (example n, row r = (c, i, j)): cols[n, r] = that kernel element's reads (L of them).

    Flat arrays and unsigned offsets: numba's negative-index check on signed
    indices, and a view per output row, made the first version 6x slower than
    numpy's strided copy.
    """
    kh, kw, sh, sw, dh, dw, top, left, oh, ow = unpack(geo)
    n_all, channels, height, width = x.shape
    rows = channels * kh * kw
    n, r = t // rows, t % rows
    c, ij = r // (kh * kw), r % (kh * kw)
    i, j = ij // kw, ij % kw
    length = oh * ow
    dst = cols.reshape(-1)
    src = x.reshape(-1)
    base = np.uint64(t * length)
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
    tasks = cols.shape[0] * cols.shape[1]
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
            slab = np.uint64(((n * channels + c) * kh * kw + i * kw + j) * length + q_lo)
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


# ---------------------------------------------------------------- bias


@jit
def _add_bias_task(out, bias, t):
    """Task t = (n, f): out[n, f] += b[f]."""
    row, b = out[t // out.shape[1], t % out.shape[1]], bias[t % out.shape[1]]
    for q in range(row.shape[0]):
        row[q] += b


@jit(parallel=True)
def _add_bias(out, bias, threaded):
    tasks = out.shape[0] * out.shape[1]
    if threaded:
        for t in prange(tasks):
            _add_bias_task(out, bias, t)
    else:
        for t in range(tasks):
            _add_bias_task(out, bias, t)


@jit
def _bias_grad_task(g, db, f):
    """db[f] = the sum of g[:, f] (float64, examples in order)."""
    total = 0.0
    for n in range(g.shape[0]):
        total += row_sum(g[n, f])
    db[f] = total


@jit(parallel=True)
def _bias_grad(g, db, threaded):
    if threaded:
        for f in prange(g.shape[1]):
            _bias_grad_task(g, db, f)
    else:
        for f in range(g.shape[1]):
            _bias_grad_task(g, db, f)


# ---------------------------------------------------------------- the Function


def _grouped(a: np.ndarray, groups: int) -> np.ndarray:
    """(..., rows, cols) as (..., groups, rows / groups, cols): a view."""
    return a.reshape(a.shape[:-2] + (groups, a.shape[-2] // groups, a.shape[-1]))


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
        b = np.ascontiguousarray(bias[0].data) if bias else None
        ctx.winograd = winograd.worth_it(window, groups, c, f)
        if ctx.winograd:
            out = _winograd_forward(ctx, x, weight, xd, wd, b)
        else:
            cols = np.empty((n, c * window.count, oh * ow), dtype=xd.dtype)
            launch(_im2col, xd.nbytes + cols.nbytes, xd, geo, cols)
            w2 = wd.reshape(f, -1)
            if groups == 1:
                out = w2 @ cols  # (N, F, L): one product per example, already the output's layout
            else:
                out = (_grouped(w2, groups) @ _grouped(cols, groups)).reshape(n, f, -1)
            if b is not None:
                launch(_add_bias, 2 * out.nbytes, out, b)
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
        f = wd.shape[0]
        gd = np.ascontiguousarray(g.data, dtype=wd.dtype)
        gd = gd.reshape(gd.shape[0], f, -1)  # (N, F, L)
        need_x, need_w = ctx.needs_input_grad[:2]
        dx = dw = None
        w2 = wd.reshape(f, -1)
        if need_x:
            if groups == 1:
                dcols = w2.T @ gd  # (N, K, L)
            else:
                dcols = _grouped(w2, groups).transpose(0, 2, 1) @ _grouped(gd, groups)
                dcols = dcols.reshape(gd.shape[0], -1, gd.shape[2])
            x4 = numpy_kernel._as_2d(x.data)
            dx4 = np.empty(x4.shape, dtype=gd.dtype)
            launch(_col2im, dcols.nbytes + dx4.nbytes, dcols, geometry(window), dx4)
            dx = dx4.reshape(x.data.shape)
        if need_w:
            cd = cols.data
            if groups == 1:
                parts = gd @ cd.transpose(0, 2, 1)  # (N, F, K): one product per example
            else:
                parts = _grouped(gd, groups) @ _grouped(cd, groups).transpose(0, 1, 3, 2)
            # summed over examples in float64, in order: no dependence on BLAS's blocking
            dw = parts.sum(axis=0, dtype=np.float64).astype(gd.dtype).reshape(weight.data.shape)
        grads = (dx, dw)
        if ctx.has_bias:
            db = None
            if ctx.needs_input_grad[2]:
                db = np.empty(f)
                launch(_bias_grad, gd.nbytes, gd, db)
                db = db.astype(gd.dtype)
            grads += (db,)
        return grads


def _winograd_forward(ctx: Context, x: Tensor, weight: Tensor, xd: np.ndarray, wd: np.ndarray,
                      bias: np.ndarray | None) -> np.ndarray:
    """forward by F(2x2, 3x3) (see winograd.py); saves V and U for backward."""
    window = ctx.window
    n, c = xd.shape[:2]
    f = wd.shape[0]
    th, tw = winograd.tiles(window)
    top, left = window.pads[0], window.pads[2]
    v = np.empty((16, c, n * th * tw), dtype=xd.dtype)
    winograd.input_transform(xd, top, left, th, tw, v)
    u = winograd.filter_transform(wd)
    m = u @ v  # 16 products (F, C) @ (C, T)
    out = np.empty((n, f) + window.out, dtype=xd.dtype)
    b = bias if bias is not None else np.zeros(1, dtype=xd.dtype)
    winograd.output_transform(m, b, bias is not None, th, tw, out)
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
    winograd.grad_transform(gd, th, tw, e, db_parts)
    need_x, need_w = ctx.needs_input_grad[:2]
    dx = dw = None
    if need_x:
        dv = u.transpose(0, 2, 1) @ e  # 16 products (C, F) @ (F, T)
        dx = np.empty(x.data.shape, dtype=vd.dtype)
        winograd.dx_transform(dv, window.pads[0], window.pads[2], th, tw, dx)
    if need_w:
        dw = winograd.filter_gradient(e @ vd.transpose(0, 2, 1)).reshape(weight.data.shape)
    grads = (dx, dw)
    if ctx.has_bias:
        grads += (db_parts.sum(axis=0).astype(vd.dtype) if ctx.needs_input_grad[2] else None,)
    return grads
