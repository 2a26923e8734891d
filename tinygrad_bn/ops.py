"""The primitive ops: each one Function, forward and backward side by side.

Forward computes on numpy arrays; backward is written with Tensor ops, so the
gradient of a gradient is recorded when `create_graph=True`. The common ops also
have `fast_backward`, the same rule on arrays, which the walk uses when no graph
of the gradient is needed (an ordinary backward()): it skips building a Tensor
node per intermediate. tests/test_ops.py checks the two rules agree. Everything else
(mean, var, softmax, the composed norm layers, ...) is built from these in
`functional/`. `PRIMITIVES` is the one registry the tests loop over.

The rules read arrays through `Tensor._data` (the slot) rather than the `data`
property: they run on every op, and the property's version bookkeeping is only
for writes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinygrad_bn.autograd.function import Context, Function
from tinygrad_bn.tensor import Shape, Tensor

PRIMITIVES: dict[str, type[Function]] = {}


def register(name: str, fn: type[Function]) -> None:
    """Give `fn` its op name and list it in PRIMITIVES."""
    fn.name = name
    PRIMITIVES[name] = fn


def unbroadcast(grad: Tensor, shape: Shape) -> Tensor:
    """Sum `grad` back to `shape`: the adjoint of numpy broadcasting is a sum."""
    gshape = grad._data.shape
    if gshape == shape:
        return grad
    extra = len(gshape) - len(shape)
    kept = tuple(extra + i for i, n in enumerate(shape) if n == 1 and gshape[extra + i] != 1)
    if not kept:  # only leading axes were added (a bias): one sum, no reshape
        return grad.sum(axis=tuple(range(extra)))
    grad = grad.sum(axis=tuple(range(extra)) + kept, keepdims=True)
    return grad.reshape(shape)


def unbroadcast_array(grad: np.ndarray, shape: Shape) -> np.ndarray:
    """unbroadcast for fast_backward's arrays."""
    gshape = grad.shape
    if gshape == shape:
        return grad
    extra = len(gshape) - len(shape)
    kept = tuple(extra + i for i, n in enumerate(shape) if n == 1 and gshape[extra + i] != 1)
    return grad.sum(axis=tuple(range(extra)) + kept, keepdims=bool(kept)).reshape(shape)


def _zero_like(t: Tensor) -> Tensor:
    return Tensor._wrap(np.zeros((), dtype=t._data.dtype), False, None)


# ---------------------------------------------------------------- elementwise


class Add(Function):
    @staticmethod
    def forward(ctx: Context, x: Tensor, y: Tensor) -> np.ndarray:
        ctx.shapes = (x.shape, y.shape)
        return x._data + y._data

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        need_x, need_y = ctx.needs_input_grad
        return (unbroadcast(g, ctx.shapes[0]) if need_x else None,
                unbroadcast(g, ctx.shapes[1]) if need_y else None)

    @staticmethod
    def fast_backward(ctx: Context, g: np.ndarray) -> tuple:
        need_x, need_y = ctx.needs_input_grad
        return (unbroadcast_array(g, ctx.shapes[0]) if need_x else None,
                unbroadcast_array(g, ctx.shapes[1]) if need_y else None)


register("add", Add)


class Sub(Function):
    @staticmethod
    def forward(ctx: Context, x: Tensor, y: Tensor) -> np.ndarray:
        ctx.shapes = (x.shape, y.shape)
        return x._data - y._data

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        gx = unbroadcast(g, ctx.shapes[0]) if ctx.needs_input_grad[0] else None
        gy = unbroadcast(-g, ctx.shapes[1]) if ctx.needs_input_grad[1] else None
        return gx, gy


    @staticmethod
    def fast_backward(ctx: Context, g: np.ndarray) -> tuple:
        gx = unbroadcast_array(g, ctx.shapes[0]) if ctx.needs_input_grad[0] else None
        gy = unbroadcast_array(-g, ctx.shapes[1]) if ctx.needs_input_grad[1] else None
        return gx, gy

register("sub", Sub)


class Mul(Function):
    @staticmethod
    def forward(ctx: Context, x: Tensor, y: Tensor) -> np.ndarray:
        ctx.save_for_backward(x, y)
        return x._data * y._data

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        x, y = ctx.saved_tensors
        gx = unbroadcast(g * y, x.shape) if ctx.needs_input_grad[0] else None
        gy = unbroadcast(g * x, y.shape) if ctx.needs_input_grad[1] else None
        return gx, gy

    @staticmethod
    def fast_backward(ctx: Context, g: np.ndarray) -> tuple:
        x, y = ctx.saved_tensors
        gx = unbroadcast_array(g * y._data, x._data.shape) if ctx.needs_input_grad[0] else None
        gy = unbroadcast_array(g * x._data, y._data.shape) if ctx.needs_input_grad[1] else None
        return gx, gy


register("mul", Mul)


class Div(Function):
    @staticmethod
    def forward(ctx: Context, x: Tensor, y: Tensor) -> np.ndarray:
        ctx.save_for_backward(x, y)
        return x._data / y._data

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        x, y = ctx.saved_tensors
        g_over_y = g / y
        gx = unbroadcast(g_over_y, x.shape) if ctx.needs_input_grad[0] else None
        # d(x/y)/dy = -x / y**2
        gy = unbroadcast(-(g_over_y * x) / y, y.shape) if ctx.needs_input_grad[1] else None
        return gx, gy


    @staticmethod
    def fast_backward(ctx: Context, g: np.ndarray) -> tuple:
        x, y = (t._data for t in ctx.saved_tensors)
        g_over_y = g / y
        gx = unbroadcast_array(g_over_y, x.shape) if ctx.needs_input_grad[0] else None
        gy = unbroadcast_array(-(g_over_y * x) / y, y.shape) if ctx.needs_input_grad[1] else None
        return gx, gy

register("div", Div)


class Neg(Function):
    @staticmethod
    def forward(ctx: Context, x: Tensor) -> np.ndarray:
        return -x._data

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        return -g


    @staticmethod
    def fast_backward(ctx: Context, g: np.ndarray) -> tuple:
        return (-g,)

register("neg", Neg)


class Pow(Function):
    @staticmethod
    def forward(ctx: Context, x: Tensor, y: Tensor) -> np.ndarray:
        ctx.save_for_backward(x, y)
        return x._data ** y._data

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        x, y = ctx.saved_tensors
        gx = gy = None
        if ctx.needs_input_grad[0]:
            gx = unbroadcast(g * y * x ** (y - 1), x.shape)
        if ctx.needs_input_grad[1]:
            # d(x**y)/dy = x**y * log(x); only defined for x > 0.
            gy = unbroadcast(g * ctx.output * x.log(), y.shape)
        return gx, gy


register("pow", Pow)


class Exp(Function):
    @staticmethod
    def forward(ctx: Context, x: Tensor) -> np.ndarray:
        return np.exp(x._data)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        return g * ctx.output


    @staticmethod
    def fast_backward(ctx: Context, g: np.ndarray) -> tuple:
        return (g * ctx._out,)

register("exp", Exp)


class Log(Function):
    @staticmethod
    def forward(ctx: Context, x: Tensor) -> np.ndarray:
        ctx.save_for_backward(x)
        return np.log(x._data)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return g / x


    @staticmethod
    def fast_backward(ctx: Context, g: np.ndarray) -> tuple:
        return (g / ctx.saved_tensors[0]._data,)

register("log", Log)


class Sqrt(Function):
    @staticmethod
    def forward(ctx: Context, x: Tensor) -> np.ndarray:
        return np.sqrt(x._data)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        return g / (ctx.output * 2.0)


    @staticmethod
    def fast_backward(ctx: Context, g: np.ndarray) -> tuple:
        return (g / (ctx._out * 2.0),)

register("sqrt", Sqrt)


class ReLU(Function):
    @staticmethod
    def forward(ctx: Context, x: Tensor) -> np.ndarray:
        positive = x._data > 0
        # The mask is a constant: relu's second derivative is zero almost everywhere.
        ctx.save_for_backward(positive.astype(x._data.dtype))
        return np.maximum(x._data, 0)  # nan stays nan: non-finite values propagate

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        (mask,) = ctx.saved_tensors
        return g * mask


    @staticmethod
    def fast_backward(ctx: Context, g: np.ndarray) -> tuple:
        return (g * ctx.saved_tensors[0]._data,)

register("relu", ReLU)


class Tanh(Function):
    @staticmethod
    def forward(ctx: Context, x: Tensor) -> np.ndarray:
        return np.tanh(x._data)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        out = ctx.output
        return g * (1.0 - out * out)


    @staticmethod
    def fast_backward(ctx: Context, g: np.ndarray) -> tuple:
        out = ctx._out
        return (g * (1.0 - out * out),)

register("tanh", Tanh)


class Sin(Function):
    @staticmethod
    def forward(ctx: Context, x: Tensor) -> np.ndarray:
        ctx.save_for_backward(x)
        return np.sin(x._data)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return g * Cos.apply(x)


register("sin", Sin)


class Cos(Function):
    @staticmethod
    def forward(ctx: Context, x: Tensor) -> np.ndarray:
        ctx.save_for_backward(x)
        return np.cos(x._data)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return -(g * Sin.apply(x))


register("cos", Cos)


class Log1p(Function):
    """log(1 + x), accurate for tiny x (where 1 + x would round away x's digits)."""

    @staticmethod
    def forward(ctx: Context, x: Tensor) -> np.ndarray:
        ctx.save_for_backward(x)
        return np.log1p(x._data)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return g / (x + 1.0)


register("log1p", Log1p)


class Expm1(Function):
    """exp(x) - 1, accurate for tiny x."""

    @staticmethod
    def forward(ctx: Context, x: Tensor) -> np.ndarray:
        return np.expm1(x._data)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        return g * (ctx.output + 1.0)


register("expm1", Expm1)


# numpy has no erf; math.erf is libm's, correct to the last bit, one element at a time.
_erf = np.frompyfunc(math.erf, 1, 1)


class Erf(Function):
    """The error function; d erf(x)/dx = 2/sqrt(pi) exp(-x^2)."""

    @staticmethod
    def forward(ctx: Context, x: Tensor) -> np.ndarray:
        ctx.save_for_backward(x)
        return np.asarray(_erf(x._data), dtype=x._data.dtype)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return g * ((-(x * x)).exp() * (2.0 / math.sqrt(math.pi)))


register("erf", Erf)


class Sign(Function):
    """-1, 0 or 1; piecewise constant, so its gradient is zero (as PyTorch's)."""

    @staticmethod
    def forward(ctx: Context, x: Tensor) -> np.ndarray:
        return np.sign(x._data)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        return g * 0.0


register("sign", Sign)


class Where(Function):
    """where(condition, x, y); the condition is data, not differentiated."""

    @staticmethod
    def forward(ctx: Context, cond: Tensor, x: Tensor, y: Tensor) -> np.ndarray:
        ctx.save_for_backward(cond)
        ctx.shapes = (x.shape, y.shape)
        return np.where(cond._data, x._data, y._data)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        (cond,) = ctx.saved_tensors
        zero = _zero_like(g)
        gx = unbroadcast(Where.apply(cond, g, zero), ctx.shapes[0]) if ctx.needs_input_grad[1] else None
        gy = unbroadcast(Where.apply(cond, zero, g), ctx.shapes[1]) if ctx.needs_input_grad[2] else None
        return None, gx, gy


    @staticmethod
    def fast_backward(ctx: Context, g: np.ndarray) -> tuple:
        cond = ctx.saved_tensors[0]._data
        gx = unbroadcast_array(np.where(cond, g, 0), ctx.shapes[0]) if ctx.needs_input_grad[1] else None
        gy = unbroadcast_array(np.where(cond, 0, g), ctx.shapes[1]) if ctx.needs_input_grad[2] else None
        return None, gx, gy

register("where", Where)


class Cast(Function):
    @staticmethod
    def forward(ctx: Context, x: Tensor, dtype: np.dtype) -> np.ndarray:
        ctx.source_dtype = x._data.dtype
        return x._data.astype(dtype)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        return g if g._data.dtype == ctx.source_dtype else Cast.apply(g, dtype=ctx.source_dtype)


    @staticmethod
    def fast_backward(ctx: Context, g: np.ndarray) -> tuple:
        return (g.astype(ctx.source_dtype, copy=False),)

register("cast", Cast)


# ---------------------------------------------------------------- reduce


def _keepdims_shape(shape: Shape, axis: Any) -> Shape:
    """The shape a reduction over `axis` has with keepdims=True."""
    if axis is None:
        return (1,) * len(shape)
    if type(axis) is int and shape:
        axis %= len(shape)
        return shape[:axis] + (1,) + shape[axis + 1:]
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    axes = tuple(a % len(shape) for a in axes) if shape else ()
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def check_axis(op: str, axis: Any, ndim: int) -> Any:
    """`axis` (None, an int or a sequence of ints) validated for a `ndim`-d tensor.

    A 0-d tensor accepts axis 0 and -1, as numpy's reductions do.
    """
    if axis is None or (type(axis) is int and -ndim <= axis < ndim):
        return axis  # the common cases
    axes = (axis,) if isinstance(axis, int | np.integer) else tuple(axis)
    for a in axes:
        if not isinstance(a, int | np.integer) or not -max(ndim, 1) <= a < max(ndim, 1):
            raise ValueError(f"{op}: axis {axis!r} is out of range for a {ndim}-d tensor")
    return int(axis) if isinstance(axis, int | np.integer) else tuple(int(a) for a in axes)


class Sum(Function):
    @staticmethod
    def forward(ctx: Context, x: Tensor, axis: Any = None, keepdims: bool = False) -> np.ndarray:
        axis = check_axis("sum", axis, x._data.ndim)
        ctx.in_shape = x._data.shape
        ctx.kept_shape = _keepdims_shape(x._data.shape, axis)
        if x._data.dtype == np.float32:
            # numpy sums across rows (axis=0) one row at a time, so float32 error grows
            # with N; accumulating in float64 keeps e.g. a BatchNorm mean of values
            # near 1e4 within half a float32 ulp, at about one extra read pass.
            total = x._data.sum(axis=axis, keepdims=keepdims, dtype=np.float64)
            return np.asarray(total, dtype=np.float32)
        return np.asarray(x._data.sum(axis=axis, keepdims=keepdims))

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        return g.reshape(ctx.kept_shape).expand(ctx.in_shape)


    @staticmethod
    def fast_backward(ctx: Context, g: np.ndarray) -> tuple:
        g = g.reshape(ctx.kept_shape)
        # broadcast_to is a Python-level numpy function (~2 us): skip it when nothing was reduced
        return (g if g.shape == ctx.in_shape else np.broadcast_to(g, ctx.in_shape),)

register("sum", Sum)


class Max(Function):
    @staticmethod
    def forward(ctx: Context, x: Tensor, axis: Any = None, keepdims: bool = False) -> np.ndarray:
        axis = check_axis("max", axis, x.ndim)
        if x._data.size == 0:
            raise ValueError("max: cannot reduce an empty tensor")
        kept = np.max(x._data, axis=axis, keepdims=True)
        # Ties share the gradient equally; the weights are constants (max is
        # piecewise linear, so its second derivative is zero).
        hit = (x._data == kept).astype(x._data.dtype)
        ctx.save_for_backward(hit / hit.sum(axis=axis, keepdims=True))
        ctx.in_shape, ctx.kept_shape = x.shape, kept.shape
        return kept if keepdims else kept.reshape(np.max(x._data, axis=axis).shape)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        (weights,) = ctx.saved_tensors
        return g.reshape(ctx.kept_shape).expand(ctx.in_shape) * weights


    @staticmethod
    def fast_backward(ctx: Context, g: np.ndarray) -> tuple:
        return (g.reshape(ctx.kept_shape) * ctx.saved_tensors[0]._data,)

register("max", Max)


class Cumsum(Function):
    """Running sum along `dim`; its adjoint is the running sum from the other end."""

    @staticmethod
    def forward(ctx: Context, x: Tensor, dim: int) -> np.ndarray:
        ctx.dim = dim
        # float32 sums accumulate in float64, as Sum's do (the running error grows with n).
        return np.cumsum(x._data, axis=dim, dtype=np.float64 if x._data.dtype == np.float32 else None
                         ).astype(x._data.dtype, copy=False)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        flip = (slice(None),) * (ctx.dim % g.ndim) + (slice(None, None, -1),)
        return GetItem.apply(Cumsum.apply(GetItem.apply(g, index=flip), dim=ctx.dim), index=flip)


register("cumsum", Cumsum)


class Prod(Function):
    """Product over `axis`; d prod / dx_i = the product of the other elements."""

    @staticmethod
    def forward(ctx: Context, x: Tensor, axis: Any = None, keepdims: bool = False) -> np.ndarray:
        axis = check_axis("prod", axis, x._data.ndim)
        ctx.save_for_backward(x)
        ctx.axis, ctx.in_shape = axis, x.shape
        ctx.kept_shape = _keepdims_shape(x.shape, axis)
        ctx.has_zero = bool((x._data == 0).any())
        return np.asarray(np.prod(x._data, axis=axis, keepdims=keepdims))

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        g = g.reshape(ctx.kept_shape).expand(ctx.in_shape)
        if not ctx.has_zero:  # prod / x_i, written with Tensor ops: differentiable again
            return g * ctx.output.reshape(ctx.kept_shape) / x
        # With zeros, prod / x_i is 0/0: multiply the others instead, also with Tensor ops.
        return g * _product_of_others(x, ctx.axis)


def _product_of_others(x: Tensor, axis: Any) -> Tensor:
    """For each element, the product of the other elements of its reduction group.

    Row i of an n x n matrix holds the group with x_i replaced by 1; its product is
    what x_i's gradient needs. O(n^2) memory, so it is only used when a group has a 0.
    """
    ndim = x._data.ndim
    axes = tuple(range(ndim)) if axis is None else (axis,) if isinstance(axis, int) else tuple(axis)
    axes = tuple(a % max(ndim, 1) for a in axes) if ndim else ()
    rest = tuple(i for i in range(ndim) if i not in axes)
    moved = Permute.apply(x, dims=rest + axes) if ndim else x
    n = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    flat = moved.reshape(*moved.shape[:len(rest)], 1, n).expand(*moved.shape[:len(rest)], n, n)
    one = Tensor._wrap(np.ones((), dtype=x._data.dtype), False, None)
    others = Prod.apply(Where.apply(Tensor._wrap(np.eye(n, dtype=bool), False, None), one, flat), axis=-1)
    others = others.reshape(*moved.shape)
    return Permute.apply(others, dims=tuple(np.argsort(rest + axes).tolist())) if ndim else others


register("prod", Prod)


# ---------------------------------------------------------------- movement


class Reshape(Function):
    @staticmethod
    def forward(ctx: Context, x: Tensor, shape: Shape) -> np.ndarray:
        ctx.in_shape = x.shape
        try:
            return x._data.reshape(shape)
        except ValueError:
            raise ValueError(
                f"cannot reshape {x.shape} ({x._data.size} elements) into {shape}"
            ) from None

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        return g.reshape(ctx.in_shape)


    @staticmethod
    def fast_backward(ctx: Context, g: np.ndarray) -> tuple:
        return (g.reshape(ctx.in_shape),)

register("reshape", Reshape)


class Permute(Function):
    """Reorder the axes: output axis i is input axis dims[i]."""

    @staticmethod
    def forward(ctx: Context, x: Tensor, dims: Shape) -> np.ndarray:
        ndim = x._data.ndim
        if len(dims) != ndim or sorted(d % max(ndim, 1) for d in dims) != list(range(ndim)):
            raise ValueError(f"permute: dims {dims} are not a permutation of the {ndim} dims of {x.shape}")
        ctx.dims = dims
        return x._data.transpose(dims)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        inverse = tuple(np.argsort([d % g.ndim for d in ctx.dims]).tolist())
        return Permute.apply(g, dims=inverse)


    @staticmethod
    def fast_backward(ctx: Context, g: np.ndarray) -> tuple:
        return (g.transpose(np.argsort([d % g.ndim for d in ctx.dims])),)

register("permute", Permute)


class Expand(Function):
    """Broadcast to a larger shape; the gradient sums over the broadcast axes."""

    @staticmethod
    def forward(ctx: Context, x: Tensor, shape: Shape) -> np.ndarray:
        ctx.in_shape = x.shape
        try:
            return np.broadcast_to(x._data, shape)
        except ValueError:
            raise ValueError(f"cannot broadcast shape {x.shape} to {shape}") from None

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        return unbroadcast(g, ctx.in_shape)


    @staticmethod
    def fast_backward(ctx: Context, g: np.ndarray) -> tuple:
        return (unbroadcast_array(g, ctx.in_shape),)

register("expand", Expand)


def _is_basic_index(index: Any) -> bool:
    """True when numpy indexing with `index` is a view (no element repeated)."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, int | slice | np.integer) for p in parts)


class GetItem(Function):
    @staticmethod
    def forward(ctx: Context, x: Tensor, index: Any) -> np.ndarray:
        ctx.index, ctx.in_shape = index, x.shape
        return np.asarray(x._data[index])

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        return ScatterAdd.apply(g, index=ctx.index, shape=ctx.in_shape)


    @staticmethod
    def fast_backward(ctx: Context, g: np.ndarray) -> tuple:
        return (_scatter_add(g, ctx.index, ctx.in_shape),)

register("getitem", GetItem)


def _scatter_add(values: np.ndarray, index: Any, shape: Shape) -> np.ndarray:
    """zeros(shape) with `values` added at `index` (a plain assignment when no element repeats)."""
    out = np.zeros(shape, dtype=values.dtype)
    if _is_basic_index(index):
        out[index] = values
    else:
        np.add.at(out, index, values)
    return out


class ScatterAdd(Function):
    """zeros(shape) with `x` added at `index`; repeated indices accumulate.

    It is the backward of GetItem, and GetItem is its backward.
    """

    @staticmethod
    def forward(ctx: Context, x: Tensor, index: Any, shape: Shape) -> np.ndarray:
        ctx.index = index
        return _scatter_add(x._data, index, shape)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        return GetItem.apply(g, index=ctx.index)


register("scatter_add", ScatterAdd)


class Cat(Function):
    """Join tensors along `dim`; each input's gradient is its slice of the output's."""

    @staticmethod
    def forward(ctx: Context, *xs: Tensor, dim: int) -> np.ndarray:
        ctx.dim = dim
        ctx.sizes = [x._data.shape[dim] for x in xs]
        return np.concatenate([x._data for x in xs], axis=dim)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        lead = (slice(None),) * (ctx.dim % g.ndim)
        grads, start = [], 0
        for size, need in zip(ctx.sizes, ctx.needs_input_grad):
            grads.append(GetItem.apply(g, index=lead + (slice(start, start + size),)) if need else None)
            start += size
        return tuple(grads)


register("cat", Cat)


# ---------------------------------------------------------------- matmul


class MatMul(Function):
    """numpy's matmul: 1-D operands are promoted to matrices, batch axes broadcast."""

    @staticmethod
    def forward(ctx: Context, a: Tensor, b: Tensor) -> np.ndarray:
        a_shape, b_shape = a._data.shape, b._data.shape
        if not a_shape or not b_shape:
            raise ValueError(f"matmul needs operands with at least 1 dimension, got {a_shape} and {b_shape}")
        k_a, k_b = a_shape[-1], b_shape[-2] if len(b_shape) > 1 else b_shape[0]
        if k_a != k_b:
            raise ValueError(
                f"cannot multiply {a_shape} by {b_shape}: inner dimensions {k_a} and {k_b} differ"
            )
        ctx.save_for_backward(a, b)
        return np.asarray(a._data @ b._data)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        a, b = ctx.saved_tensors
        # Promote 1-D operands the way the forward did, so one rule covers all cases.
        a_ndim, b_ndim = a._data.ndim, b._data.ndim
        a2 = a.reshape(1, -1) if a_ndim == 1 else a
        b2 = b.reshape(-1, 1) if b_ndim == 1 else b
        g2 = g
        if a_ndim == 1:
            g2 = g2.reshape(*g2.shape[:-1], 1, g2.shape[-1]) if b_ndim > 1 else g2.reshape(1, 1)
        if b_ndim == 1:
            g2 = g2.reshape(*g2.shape, 1) if a_ndim > 1 else g2
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = unbroadcast(g2 @ _swap_last(b2), a2._data.shape).reshape(a._data.shape)
        if ctx.needs_input_grad[1]:
            gb = unbroadcast(_swap_last(a2) @ g2, b2._data.shape).reshape(b._data.shape)
        return ga, gb

    @staticmethod
    def fast_backward(ctx: Context, g: np.ndarray) -> tuple:
        a, b = (t._data for t in ctx.saved_tensors)
        a2 = a.reshape(1, -1) if a.ndim == 1 else a
        b2 = b.reshape(-1, 1) if b.ndim == 1 else b
        if a.ndim == 1:
            g = g.reshape(*g.shape[:-1], 1, g.shape[-1]) if b.ndim > 1 else g.reshape(1, 1)
        if b.ndim == 1:
            g = g.reshape(*g.shape, 1) if a.ndim > 1 else g
        ga = unbroadcast_array(g @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape) \
            if ctx.needs_input_grad[0] else None
        gb = unbroadcast_array(np.swapaxes(a2, -1, -2) @ g, b2.shape).reshape(b.shape) \
            if ctx.needs_input_grad[1] else None
        return ga, gb


register("matmul", MatMul)


def _swap_last(t: Tensor) -> Tensor:
    """Exchange the last two axes (the matrix transpose of a batch of matrices)."""
    dims = tuple(range(t._data.ndim - 2)) + (t._data.ndim - 1, t._data.ndim - 2)
    return Permute.apply(t, dims=dims)
