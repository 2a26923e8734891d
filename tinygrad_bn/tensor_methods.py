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
from tinygrad_bn.autograd import graph
from tinygrad_bn.tensor import Tensor

# ---------------------------------------------------------------- operators


def _radd(self: Tensor, other: Any) -> Tensor:
    return ops.Add.apply(self._operand(other), self)


def _rsub(self: Tensor, other: Any) -> Tensor:
    return ops.Sub.apply(self._operand(other), self)


def _rmul(self: Tensor, other: Any) -> Tensor:
    return ops.Mul.apply(self._operand(other), self)


def _rtruediv(self: Tensor, other: Any) -> Tensor:
    return ops.Div.apply(self._operand(other), self)


def _rpow(self: Tensor, other: Any) -> Tensor:
    return ops.Pow.apply(self._operand(other), self)


def _rmatmul(self: Tensor, other: Any) -> Tensor:
    return ops.MatMul.apply(self._operand(other), self)


def _pos(self: Tensor) -> Tensor:
    return self


def _comparison(compare: Any) -> Any:
    """A comparison operator: a plain boolean tensor, outside the graph (not differentiable)."""

    def method(self: Tensor, other: Any) -> Tensor:
        return Tensor._wrap(compare(self._data, self._operand(other)._data), False, None)

    method.__name__ = compare.__name__
    return method


def _transposed(self: Tensor) -> Tensor:
    """Axes reversed."""
    return F.transpose(self)


OPERATORS = {
    "__add__": F.add, "__radd__": _radd, "__sub__": F.sub, "__rsub__": _rsub,
    "__mul__": F.mul, "__rmul__": _rmul, "__truediv__": F.div, "__rtruediv__": _rtruediv,
    "__pow__": F.pow, "__rpow__": _rpow, "__matmul__": F.matmul, "__rmatmul__": _rmatmul,
    "__neg__": F.neg, "__pos__": _pos, "__getitem__": F.getitem,
    "__lt__": _comparison(np.less), "__le__": _comparison(np.less_equal),
    "__gt__": _comparison(np.greater), "__ge__": _comparison(np.greater_equal),
    "__eq__": _comparison(np.equal), "__ne__": _comparison(np.not_equal),
}

# ---------------------------------------------------------------- methods: name -> function(self, ...)

METHODS = {
    # elementwise
    "exp": F.exp, "log": F.log, "sqrt": F.sqrt, "relu": F.relu, "tanh": F.tanh, "sigmoid": F.sigmoid,
    "abs": F.abs, "rsqrt": F.rsqrt, "astype": F.astype,
    # reductions
    "sum": F.sum, "max": F.max, "min": F.min, "mean": F.mean, "var": F.var, "argmax": F.argmax,
    "softmax": F.softmax, "log_softmax": F.log_softmax,
    # movement
    "reshape": F.reshape, "transpose": F.transpose, "permute": F.transpose, "swapaxes": F.swapaxes,
    "expand": F.expand, "broadcast_to": F.expand, "flatten": F.flatten,
    # autograd
    "backward": graph.backward,
}

PROPERTIES = {"T": _transposed}


def bind() -> None:
    """Attach OPERATORS, METHODS and PROPERTIES to Tensor."""
    for name, fn in {**OPERATORS, **METHODS}.items():
        setattr(Tensor, name, fn)
    for name, fn in PROPERTIES.items():
        setattr(Tensor, name, property(fn))


bind()
