"""Tensor's operators and op methods, bound onto the class from one table.

`tensor.py` is the bottom of the engine and knows no ops; `ops.py` and
`functional/` are written against Tensor. This module sits on top of both and
attaches the ops to Tensor, so `x.sum(0)` is `functional.sum(x, 0)` and `a + b`
is `functional.add(a, b)`. Binding from one place is what keeps the layering
one-way: nothing below imports a module that imports it back. `import
tinygrad_bn` runs this before anything else can use a Tensor.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_bn import functional as F
from tinygrad_bn import ops
from tinygrad_bn.autograd import graph, hooks
from tinygrad_bn.autograd.grad_mode import STATE
from tinygrad_bn.random import numpy_generator
from tinygrad_bn.tensor import Tensor, check_device

# ---------------------------------------------------------------- operators


def _reflected(fn: Any) -> Any:
    """other (op) self, for `2 - x` and `ndarray @ x`."""

    def method(self: Tensor, other: Any) -> Tensor:
        return fn(self._operand(other), self)

    return method


def _pos(self: Tensor) -> Tensor:
    return self


def _rpow(self: Tensor, other: Any) -> Tensor:
    return F.pow(self._operand(other), self)


def _rmatmul(self: Tensor, other: Any) -> Tensor:
    return F.matmul(self._operand(other), self)


def _floordiv(self: Tensor, other: Any) -> Tensor:
    return F.div(self, other, rounding_mode="floor")


def _bool_op(fn: Any) -> Any:
    def method(self: Tensor, other: Any) -> Tensor:
        return Tensor._wrap(np.asarray(fn(self._data, self._operand(other)._data)), False, None)

    return method


def _invert(self: Tensor) -> Tensor:
    return Tensor._wrap(np.invert(self._data), False, None)


OPERATORS = {
    "__add__": F.add, "__radd__": _reflected(F.add), "__sub__": F.sub, "__rsub__": _reflected(F.sub),
    "__mul__": F.mul, "__rmul__": _reflected(F.mul), "__truediv__": F.div,
    "__rtruediv__": _reflected(F.div), "__floordiv__": _floordiv, "__pow__": F.pow, "__rpow__": _rpow,
    "__matmul__": F.matmul, "__rmatmul__": _rmatmul, "__neg__": F.neg, "__pos__": _pos, "__abs__": F.abs,
    "__getitem__": F.getitem,
    "__lt__": F.lt, "__le__": F.le, "__gt__": F.gt, "__ge__": F.ge, "__eq__": F.eq, "__ne__": F.ne,
    "__and__": _bool_op(np.bitwise_and), "__or__": _bool_op(np.bitwise_or),
    "__xor__": _bool_op(np.bitwise_xor), "__invert__": _invert,
}

def _where(self: Tensor, condition: Any, other: Any) -> Tensor:
    """self where condition is true, else other (x.where(c, y) is where(c, x, y))."""
    return F.where(condition, self, other)


# ---------------------------------------------------------------- methods: name -> function(self, ...)

METHODS = {
    # elementwise
    "add": F.add, "sub": F.sub, "mul": F.mul, "div": F.div, "true_divide": F.div, "pow": F.pow,
    "neg": F.neg, "reciprocal": F.reciprocal, "square": F.square, "exp": F.exp, "log": F.log,
    "log2": F.log2, "log10": F.log10, "log1p": F.log1p, "expm1": F.expm1, "sqrt": F.sqrt,
    "rsqrt": F.rsqrt, "sin": F.sin, "cos": F.cos, "tanh": F.tanh, "erf": F.erf, "relu": F.relu,
    "sigmoid": F.sigmoid, "abs": F.abs, "sign": F.sign, "clamp": F.clamp, "clip": F.clip,
    "clamp_min": F.clamp_min, "clamp_max": F.clamp_max, "floor": F.floor, "ceil": F.ceil,
    "round": F.round, "trunc": F.trunc, "where": _where,
    "maximum": F.maximum, "minimum": F.minimum, "softmax": F.softmax, "log_softmax": F.log_softmax,
    # comparisons
    "eq": F.eq, "ne": F.ne, "lt": F.lt, "le": F.le, "gt": F.gt, "ge": F.ge, "isnan": F.isnan,
    "isinf": F.isinf, "isfinite": F.isfinite, "isclose": F.isclose, "allclose": F.allclose,
    "equal": F.equal, "logical_not": F.logical_not, "logical_and": F.logical_and,
    "logical_or": F.logical_or,
    # reductions
    "sum": F.sum, "mean": F.mean, "var": F.var, "std": F.std, "max": F.max, "min": F.min,
    "amax": F.amax, "amin": F.amin, "argmax": F.argmax, "argmin": F.argmin, "prod": F.prod,
    "cumsum": F.cumsum, "logsumexp": F.logsumexp, "norm": F.norm, "any": F.any, "all": F.all,
    # movement
    "reshape": F.reshape, "view": F.view, "view_as": F.view_as, "reshape_as": F.view_as, "permute": F.permute,
    "transpose": F.transpose, "swapaxes": F.swapaxes, "swapdims": F.swapdims, "t": F.t,
    "movedim": F.movedim, "expand": F.expand, "expand_as": F.expand_as, "broadcast_to": F.broadcast_to,
    "repeat": F.repeat, "repeat_interleave": F.repeat_interleave, "flip": F.flip, "narrow": F.narrow,
    "squeeze": F.squeeze, "unsqueeze": F.unsqueeze, "flatten": F.flatten, "unflatten": F.unflatten,
    "split": F.split, "chunk": F.chunk, "unbind": F.unbind,
    # indexing
    "gather": F.gather, "scatter_add": F.scatter_add, "index_select": F.index_select,
    "masked_fill": F.masked_fill, "take_along_dim": F.take_along_dim, "sort": F.sort,
    "argsort": F.argsort, "topk": F.topk, "tril": F.tril, "triu": F.triu,
    # products
    "matmul": F.matmul, "mm": F.mm, "bmm": F.bmm, "dot": F.dot, "outer": F.outer,
}

PROPERTIES = {"T": F.reversed_dims, "mT": F.matrix_transpose}


# ---------------------------------------------------------------- conversions


def _to(self: Tensor, *args: Any, dtype: Any = None, device: Any = None, copy: bool = False) -> Tensor:
    """to(dtype), to(device), to(other tensor) (its dtype) or to(device, dtype), as in PyTorch."""
    for a in args:
        if isinstance(a, Tensor):
            dtype = a.dtype
        elif isinstance(a, str) and a not in ("float32", "float64", "int64", "int32", "bool"):
            device = a
        else:
            dtype = a
    check_device("to", device)
    out = self if dtype is None else F.cast(self, dtype)
    return _clone(out) if copy and out is self else out


def _type_as(self: Tensor, other: Tensor) -> Tensor:
    """Convert to other's dtype."""
    return F.cast(self, other.dtype)


def _is_floating_point(self: Tensor) -> bool:
    """Whether the dtype is a float dtype."""
    return self._data.dtype.kind == "f"


def _new_full(self: Tensor, size: Any, fill_value: Any, *, dtype: Any = None, device: Any = None,
              requires_grad: bool = False) -> Tensor:
    """A tensor filled with fill_value, with this tensor's dtype unless dtype= is given."""
    check_device("new_full", device)
    array = np.full(tuple(size), fill_value, dtype=self.dtype if dtype is None else dtype)
    return Tensor(array, requires_grad=requires_grad)


def _new(fill: int) -> Any:
    def method(self: Tensor, *size: Any, **options: Any) -> Tensor:
        sizes = size[0] if len(size) == 1 and isinstance(size[0], list | tuple) else size
        return _new_full(self, sizes, fill, **options)

    method.__doc__ = f"A tensor of {fill}s with this tensor's dtype unless dtype= is given."
    return method


def _new_tensor(self: Tensor, data: Any, *, dtype: Any = None, device: Any = None,
                requires_grad: bool = False) -> Tensor:
    """A copy of data with this tensor's dtype unless dtype= is given (PyTorch's new_tensor)."""
    check_device("new_tensor", device)
    values = data._data if isinstance(data, Tensor) else data
    return Tensor(np.array(values, dtype=self.dtype if dtype is None else dtype), requires_grad=requires_grad)


def _clone(self: Tensor) -> Tensor:
    """A copy that stays in the graph (a cast to its own dtype, which copies)."""
    return ops.Cast.apply(self, dtype=self.dtype)


def _caster(dtype: Any) -> Any:
    def method(self: Tensor) -> Tensor:
        return F.cast(self, dtype)

    method.__doc__ = f"Convert to {np.dtype(dtype)}."
    return method


def _float(self: Tensor) -> Tensor:
    """Convert to float32."""
    return F.cast(self, np.float32)


def _type(self: Tensor, dtype: Any = None) -> Any:
    """The dtype's name with no argument, else a conversion to `dtype`."""
    return str(self.dtype) if dtype is None else F.cast(self, dtype)


def _size(self: Tensor, dim: int | None = None) -> Any:
    """The shape, or the size of one dim."""
    return self.shape if dim is None else self.shape[dim]


def _numel(self: Tensor) -> int:
    """Number of elements."""
    return self._data.size


def _dim(self: Tensor) -> int:
    """Number of dims."""
    return self._data.ndim


def _tolist(self: Tensor) -> Any:
    """Nested Python lists (a number for 0-d)."""
    return self._data.tolist()


def _scalar(kind: type) -> Any:
    def convert(self: Tensor) -> Any:
        if self._data.size != 1:
            raise ValueError(f"only one-element tensors convert to Python {kind.__name__}, "
                             f"got shape {self.shape}")
        return kind(self._data.reshape(()).item())

    return convert


def _index(self: Tensor) -> int:
    if self._data.size != 1 or self._data.dtype.kind not in "iub":
        raise TypeError(f"only integer tensors of one element can be used as an index, got {self.dtype} "
                        f"of shape {self.shape}")
    return int(self._data.reshape(()).item())


def _bool(self: Tensor) -> bool:
    if self._data.size != 1:
        raise RuntimeError(f"the truth value of a tensor with {self._data.size} elements is ambiguous; "
                           "use .any() or .all()")
    return bool(self._data.reshape(()).item())


def _array(self: Tensor, dtype: Any = None, copy: Any = None) -> np.ndarray:
    """np.asarray(t): the data (not a copy unless a dtype conversion asks for one)."""
    return self._data if dtype is None else self._data.astype(dtype, copy=False)


def _iter(self: Tensor) -> Any:
    if self._data.ndim == 0:
        raise TypeError("iteration over a 0-d tensor")
    return iter(F.unbind(self, 0))


def _device(self: Tensor) -> str:
    return "cpu"


# numpy functions applied to a Tensor run the differentiable op (np.exp(t) is t.exp());
# any other ufunc is refused rather than turning the tensor into an object array.
_UFUNCS = {
    np.add: F.add, np.subtract: F.sub, np.multiply: F.mul, np.true_divide: F.div, np.power: F.pow,
    np.negative: F.neg, np.exp: F.exp, np.log: F.log, np.log1p: F.log1p, np.expm1: F.expm1,
    np.sqrt: F.sqrt, np.sin: F.sin, np.cos: F.cos, np.tanh: F.tanh, np.absolute: F.abs,
    np.sign: F.sign, np.maximum: F.maximum, np.minimum: F.minimum, np.matmul: F.matmul,
    np.square: F.square, np.reciprocal: F.reciprocal, np.log2: F.log2, np.log10: F.log10,
    np.greater: F.gt, np.greater_equal: F.ge, np.less: F.lt, np.less_equal: F.le,
    np.equal: F.eq, np.not_equal: F.ne,
}


def _array_ufunc(self: Tensor, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
    fn = _UFUNCS.get(ufunc)
    if fn is None or method != "__call__" or kwargs:
        raise TypeError(
            f"numpy's {ufunc.__name__} ({method}) does not take Tensors: it would build an object "
            f"array. Use the Tensor op (e.g. x.exp()), or np.{ufunc.__name__}(x.numpy()) for plain data"
        )
    first = inputs[0] if isinstance(inputs[0], Tensor) else self._operand(inputs[0])
    return fn(first, *inputs[1:])


# ---------------------------------------------------------------- in-place ops


def _check_in_place(self: Tensor) -> None:
    if self._rg and self._ctx is None and STATE.grad_enabled:
        raise RuntimeError(
            "a leaf Tensor that requires grad is being used in an in-place operation; "
            "run it under no_grad() (e.g. a parameter update) or on x.detach()"
        )


def _in_place(self: Tensor, out: Any) -> Tensor:
    """Make `self` hold `out` (an op on self): in place on plain data, rebased in a graph.

    When the graph needs it, the old value stays in the graph as a node of its own
    and self continues from the new op (PyTorch's rebase); the old array is never
    overwritten, so what earlier ops saved stays valid.
    """
    _check_in_place(self)
    if STATE.grad_enabled and (self._rg or out._rg):
        # Ops recorded before keep their edge to the old node (see autograd.function.node_of).
        since = out._ctx.serial if out._ctx is not None else 0
        self._rebased = (*getattr(self, "_rebased", ()), (self._ctx, since))
        self._data, self._ctx, self._rg = out._data, out._ctx, out._rg
    else:
        np.copyto(self._data, out._data, casting="same_kind")
    self._bump_version()
    return self


def _graph_copy(self: Tensor) -> Tensor:
    """self as a separate graph node, so an op on it can be rebased onto self."""
    return Tensor._wrap(self._data, self._rg, self._ctx)


def _in_place_op(fn: Any) -> Any:
    def method(self: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        return _in_place(self, fn(_graph_copy(self), *args, **kwargs))

    method.__doc__ = f"In-place {fn.__name__}: self = {fn.__name__}(self, ...); returns self."
    return method


def _fill_(self: Tensor, value: Any) -> Tensor:
    """Set every element to `value`."""
    return _in_place(self, F.where(np.ones(self.shape, bool), self._operand(value), _graph_copy(self)))


def _zero_(self: Tensor) -> Tensor:
    """Set every element to 0."""
    return _fill_(self, 0)


def _copy_(self: Tensor, src: Any, non_blocking: bool = False) -> Tensor:
    """Copy src's values into self (broadcast, cast to self's dtype)."""
    src = self._operand(src)
    values = F.cast(F.expand(src, self.shape), self.dtype)
    return _in_place(self, F.where(np.ones(self.shape, bool), values, _graph_copy(self)))


def _setitem(self: Tensor, index: Any, value: Any) -> None:
    """self[index] = value: in place on plain data; in a graph, through a scatter (differentiable)."""
    index = F.indexing.index_data(index)
    value = self._operand(value)
    if not (STATE.grad_enabled and (self._rg or value._rg)):
        _check_in_place(self)
        self._data[index] = value._data
        self._bump_version()
        return
    old = _graph_copy(self)
    target = ops.GetItem.apply(old, index=index)
    change = F.cast(F.expand(value, target.shape), self.dtype) - target
    _in_place(self, old + ops.ScatterAdd.apply(change, index=index, shape=self.shape))


def _sampled(self: Tensor, values: np.ndarray) -> Tensor:
    """Overwrite self with random values (a new leaf value: no graph to rebase onto)."""
    return _in_place(self, Tensor._wrap(values.astype(self.dtype, copy=False), False, None))


def _uniform_(self: Tensor, a: float = 0.0, b: float = 1.0, *, generator: Any = None) -> Tensor:
    """Fill with samples uniform in [a, b) from `generator` (default: the default generator)."""
    return _sampled(self, numpy_generator(generator, "uniform_").uniform(a, b, self.shape))


def _normal_(self: Tensor, mean: float = 0.0, std: float = 1.0, *, generator: Any = None) -> Tensor:
    """Fill with normal samples N(mean, std^2) from `generator` (default: the default generator)."""
    return _sampled(self, numpy_generator(generator, "normal_").normal(mean, std, self.shape))


IN_PLACE = {
    "add_": _in_place_op(F.add), "sub_": _in_place_op(F.sub), "mul_": _in_place_op(F.mul),
    "div_": _in_place_op(F.div), "pow_": _in_place_op(F.pow), "clamp_": _in_place_op(F.clamp),
    "clip_": _in_place_op(F.clamp), "masked_fill_": _in_place_op(F.masked_fill),
    "exp_": _in_place_op(F.exp), "relu_": _in_place_op(F.relu), "neg_": _in_place_op(F.neg),
    "fill_": _fill_, "zero_": _zero_, "copy_": _copy_, "uniform_": _uniform_, "normal_": _normal_,
    # p -= lr * p.grad updates p itself, as in PyTorch; without these Python would rebind
    # the name to a new tensor and leave the parameter unchanged.
    "__iadd__": _in_place_op(F.add), "__isub__": _in_place_op(F.sub), "__imul__": _in_place_op(F.mul),
    "__itruediv__": _in_place_op(F.div),
}


# ---------------------------------------------------------------- autograd


def _backward(self: Tensor, gradient: Any = None, retain_graph: bool | None = None,
              create_graph: bool = False, inputs: Any = None) -> None:
    """Accumulate d(self)/d(leaf) into `.grad` of the leaves (or only of `inputs`)."""
    graph.backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph, inputs=inputs)


CONVERSIONS = {
    "to": _to, "clone": _clone, "contiguous": _pos, "cpu": _pos, "float": _float,
    "double": _caster(np.float64), "type_as": _type_as, "is_floating_point": _is_floating_point,
    "new_zeros": _new(0), "new_ones": _new(1), "new_empty": _new(0), "new_full": _new_full,
    "new_tensor": _new_tensor,
    "long": _caster(np.int64), "int": _caster(np.int32), "bool": _caster(np.bool_), "type": _type,
    "size": _size, "numel": _numel, "nelement": _numel, "dim": _dim, "tolist": _tolist,
    "__float__": _scalar(float), "__int__": _scalar(int), "__index__": _index, "__bool__": _bool,
    "__array__": _array, "__array_ufunc__": _array_ufunc, "__iter__": _iter, "__setitem__": _setitem,
    "backward": _backward, "register_hook": hooks.register_hook, "retain_grad": hooks.retain_grad,
}


def bind() -> None:
    """Attach every table to Tensor."""
    for table in (OPERATORS, METHODS, CONVERSIONS, IN_PLACE):
        for name, fn in table.items():
            setattr(Tensor, name, fn)
    for name, fn in {**PROPERTIES, "device": _device}.items():
        setattr(Tensor, name, property(fn))


bind()
