"""Tensor: a numpy array plus the graph node that produced it.

Operators and methods are thin calls into `ops` (primitives) and `functional`
(composites); `backward` hands the graph to `autograd`. Dtype rules: Python
scalars and lists become float32 (the default dtype); a Python scalar operand
takes the dtype of the tensor it meets, so it never upcasts a float32 graph;
two tensors of different float dtypes promote as numpy does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

DEFAULT_DTYPE = np.float32
DIFFERENTIABLE_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

Shape = tuple[int, ...]


def _to_array(data: Any, dtype: Any) -> np.ndarray:
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.ndarray):
        return data if dtype is None else data.astype(dtype, copy=False)
    if isinstance(data, np.generic):
        return np.asarray(data, dtype=dtype)
    # Python scalars and (nested) lists take the default dtype, like the design says.
    return np.asarray(data, dtype=DEFAULT_DTYPE if dtype is None else dtype)


def _normalize_shape(shape: tuple) -> Shape:
    if len(shape) == 1 and isinstance(shape[0], tuple | list):
        shape = tuple(shape[0])
    for s in shape:
        if type(s) is not int:
            return tuple(int(s) for s in shape)
    return shape


class Tensor:
    """An n-dimensional array that records the ops applied to it for backward."""

    __slots__ = ("data", "grad", "_rg", "_ctx", "name", "__weakref__")
    __array_ufunc__ = None  # make `ndarray + Tensor` call Tensor.__radd__

    def __init__(
        self, data: Any, requires_grad: bool = False, dtype: Any = None, name: str | None = None
    ):
        self.data = _to_array(data, dtype)
        self.grad: Tensor | None = None
        self._ctx = None
        self.name = name
        self._rg = False
        if requires_grad:
            self.requires_grad = True

    @classmethod
    def _wrap(cls, data: np.ndarray, requires_grad: bool, ctx: Any) -> Tensor:
        """Fast constructor for op outputs: no conversion, no checks."""
        t = object.__new__(Tensor)
        t.data = data
        t.grad = None
        t._rg = requires_grad
        t._ctx = ctx
        t.name = None
        return t

    # ------------------------------------------------------------ basic properties

    @property
    def requires_grad(self) -> bool:
        """Whether gradients flow to (leaf) or through (op output) this tensor."""
        return self._rg

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if value and self.data.dtype not in DIFFERENTIABLE_DTYPES:
            raise TypeError(
                f"requires_grad=True needs a float32 or float64 tensor; got dtype {self.data.dtype}"
                " (integer and bool tensors are plain data, e.g. labels or masks)"
            )
        if not value and self._ctx is not None:
            raise RuntimeError("requires_grad: cannot turn off on an op output; use .detach()")
        self._rg = bool(value)

    def requires_grad_(self, value: bool = True) -> Tensor:
        """Set requires_grad in place and return self."""
        self.requires_grad = value
        return self

    @property
    def is_leaf(self) -> bool:
        """True for tensors created by the user rather than by an op."""
        return self._ctx is None

    @property
    def grad_fn(self) -> Any:
        """The recorded op (Context) that produced this tensor, or None for leaves."""
        return self._ctx

    @property
    def shape(self) -> Shape:
        """The array's shape."""
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        """The array's numpy dtype."""
        return self.data.dtype

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return self.data.ndim

    @property
    def size(self) -> int:
        """Number of elements."""
        return self.data.size

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied)."""
        return self.data

    def item(self) -> float | int | bool:
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item: only one-element tensors convert to a number, got shape {self.shape}")
        return self.data.item()

    def detach(self) -> Tensor:
        """A new tensor sharing the data, cut from the graph."""
        return Tensor._wrap(self.data, False, None)

    def __repr__(self) -> str:
        extra = ", requires_grad=True" if self._rg else ""
        if self._ctx is not None:
            extra += f", op={self._ctx.fn.name}"
        if self.name:
            extra += f", name={self.name!r}"
        body = np.array2string(self.data, precision=4, threshold=20, separator=", ")
        return f"Tensor({body}, dtype={self.data.dtype}{extra})"

    def __bool__(self) -> bool:
        return bool(self.data)

    __hash__ = object.__hash__

    # ------------------------------------------------------------ constructors

    @staticmethod
    def zeros(*shape: Any, dtype: Any = DEFAULT_DTYPE, requires_grad: bool = False) -> Tensor:
        """A tensor of zeros."""
        return Tensor(np.zeros(_normalize_shape(shape), dtype=dtype), requires_grad=requires_grad)

    @staticmethod
    def ones(*shape: Any, dtype: Any = DEFAULT_DTYPE, requires_grad: bool = False) -> Tensor:
        """A tensor of ones."""
        return Tensor(np.ones(_normalize_shape(shape), dtype=dtype), requires_grad=requires_grad)

    @staticmethod
    def randn(
        *shape: Any,
        dtype: Any = DEFAULT_DTYPE,
        requires_grad: bool = False,
        rng: np.random.Generator | int | None = None,
    ) -> Tensor:
        """Standard normal samples from `rng` (a Generator or a seed; fresh entropy if None)."""
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        data = gen.standard_normal(_normalize_shape(shape)).astype(dtype)
        return Tensor(data, requires_grad=requires_grad)

    # ------------------------------------------------------------ operand coercion

    def _operand(self, other: Any) -> Tensor:
        """Turn a scalar/array operand into a constant tensor; scalars take our float dtype."""
        if isinstance(other, Tensor):
            return other
        if type(other) is float or type(other) is int:  # the common case, checked first
            dtype = self.data.dtype if self.data.dtype.kind == "f" else DEFAULT_DTYPE
            return Tensor._wrap(np.asarray(other, dtype=dtype), False, None)
        if isinstance(other, int | float | bool | np.generic):
            dtype = self.data.dtype if self.data.dtype.kind == "f" else DEFAULT_DTYPE
            return Tensor._wrap(np.asarray(other, dtype=dtype), False, None)
        if isinstance(other, np.ndarray):
            return Tensor._wrap(other, False, None)
        if isinstance(other, list | tuple):
            return Tensor(other)
        raise TypeError(f"unsupported operand type for Tensor op: {type(other).__name__}")

    # ------------------------------------------------------------ arithmetic

    def __add__(self, other: Any) -> Tensor:
        return ops.Add.apply(self, self._operand(other))

    def __radd__(self, other: Any) -> Tensor:
        return ops.Add.apply(self._operand(other), self)

    def __sub__(self, other: Any) -> Tensor:
        return ops.Sub.apply(self, self._operand(other))

    def __rsub__(self, other: Any) -> Tensor:
        return ops.Sub.apply(self._operand(other), self)

    def __mul__(self, other: Any) -> Tensor:
        return ops.Mul.apply(self, self._operand(other))

    def __rmul__(self, other: Any) -> Tensor:
        return ops.Mul.apply(self._operand(other), self)

    def __truediv__(self, other: Any) -> Tensor:
        return ops.Div.apply(self, self._operand(other))

    def __rtruediv__(self, other: Any) -> Tensor:
        return ops.Div.apply(self._operand(other), self)

    def __pow__(self, other: Any) -> Tensor:
        return ops.Pow.apply(self, self._operand(other))

    def __rpow__(self, other: Any) -> Tensor:
        return ops.Pow.apply(self._operand(other), self)

    def __matmul__(self, other: Any) -> Tensor:
        return ops.MatMul.apply(self, self._operand(other))

    def __rmatmul__(self, other: Any) -> Tensor:
        return ops.MatMul.apply(self._operand(other), self)

    def __neg__(self) -> Tensor:
        return ops.Neg.apply(self)

    def __pos__(self) -> Tensor:
        return self

    # Comparisons are not differentiable: they return plain boolean tensors.
    def __lt__(self, other: Any) -> Tensor:
        return Tensor._wrap(self.data < self._operand(other).data, False, None)

    def __le__(self, other: Any) -> Tensor:
        return Tensor._wrap(self.data <= self._operand(other).data, False, None)

    def __gt__(self, other: Any) -> Tensor:
        return Tensor._wrap(self.data > self._operand(other).data, False, None)

    def __ge__(self, other: Any) -> Tensor:
        return Tensor._wrap(self.data >= self._operand(other).data, False, None)

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return Tensor._wrap(self.data == self._operand(other).data, False, None)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return Tensor._wrap(self.data != self._operand(other).data, False, None)

    # ------------------------------------------------------------ elementwise

    def exp(self) -> Tensor:
        """e ** x."""
        return ops.Exp.apply(self)

    def log(self) -> Tensor:
        """Natural logarithm."""
        return ops.Log.apply(self)

    def sqrt(self) -> Tensor:
        """Square root."""
        return ops.Sqrt.apply(self)

    def relu(self) -> Tensor:
        """max(x, 0); the gradient at exactly 0 is taken as 0."""
        return ops.ReLU.apply(self)

    def tanh(self) -> Tensor:
        """Hyperbolic tangent."""
        return ops.Tanh.apply(self)

    def astype(self, dtype: Any) -> Tensor:
        """Cast to `dtype`; the gradient is cast back."""
        if np.dtype(dtype) == self.data.dtype:
            return self
        return ops.Cast.apply(self, dtype=np.dtype(dtype))

    def sigmoid(self) -> Tensor:
        """Logistic function (composite)."""
        return functional.sigmoid(self)

    def square(self) -> Tensor:
        """x * x (composite)."""
        return self * self

    def rsqrt(self) -> Tensor:
        """1 / sqrt(x) (composite: a pow by -0.5)."""
        return self ** -0.5

    def abs(self) -> Tensor:
        """|x| (composite)."""
        return functional.abs(self)

    # ------------------------------------------------------------ reductions

    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Sum over `axis` (all axes if None), numpy-style."""
        return ops.Sum.apply(self, axis=axis, keepdims=keepdims)

    def max(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Maximum over `axis`; ties share the gradient equally."""
        return ops.Max.apply(self, axis=axis, keepdims=keepdims)

    def min(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Minimum over `axis` (composite: -max(-x))."""
        return -((-self).max(axis=axis, keepdims=keepdims))

    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Arithmetic mean (composite)."""
        return functional.mean(self, axis=axis, keepdims=keepdims)

    def var(
        self, axis: int | Sequence[int] | None = None, ddof: int = 0, keepdims: bool = False
    ) -> Tensor:
        """Variance with `ddof` like numpy (composite, two-pass)."""
        return functional.var(self, axis=axis, ddof=ddof, keepdims=keepdims)

    def argmax(self, axis: int | None = None) -> Tensor:
        """Indices of the maxima (not differentiable)."""
        return Tensor._wrap(np.argmax(self.data, axis=axis), False, None)

    def softmax(self, axis: int = -1) -> Tensor:
        """Softmax along `axis` (composite)."""
        return functional.softmax(self, axis=axis)

    def log_softmax(self, axis: int = -1) -> Tensor:
        """Log of softmax along `axis` (composite)."""
        return functional.log_softmax(self, axis=axis)

    # ------------------------------------------------------------ movement

    def reshape(self, *shape: Any) -> Tensor:
        """Same data, new shape (numpy semantics, one -1 allowed)."""
        shape = _normalize_shape(shape)
        if shape == self.data.shape:
            return self
        return ops.Reshape.apply(self, shape=shape)

    def transpose(self, *axes: Any) -> Tensor:
        """Permute axes; no arguments reverses them, as numpy does."""
        axes = _normalize_shape(axes) if axes else tuple(reversed(range(self.data.ndim)))
        return ops.Transpose.apply(self, axes=axes)

    permute = transpose

    @property
    def T(self) -> Tensor:  # noqa: N802 - numpy's name
        """Axes reversed."""
        return self.transpose()

    def swapaxes(self, a: int, b: int) -> Tensor:
        """Exchange two axes."""
        axes = list(range(self.data.ndim))
        axes[a], axes[b] = axes[b], axes[a]
        return self.transpose(*axes)

    def expand(self, *shape: Any) -> Tensor:
        """Broadcast to `shape` (numpy broadcasting rules)."""
        shape = _normalize_shape(shape)
        if shape == self.data.shape:
            return self
        return ops.Expand.apply(self, shape=shape)

    broadcast_to = expand

    def flatten(self, start_axis: int = 0) -> Tensor:
        """Collapse axes from `start_axis` on into one."""
        keep = self.data.shape[:start_axis]
        return self.reshape(*keep, -1)

    def __getitem__(self, index: Any) -> Tensor:
        return ops.GetItem.apply(self, index=_index_data(index))

    # ------------------------------------------------------------ autograd

    def backward(
        self, grad: Any = None, retain_graph: bool | None = None, create_graph: bool = False
    ) -> None:
        """Accumulate gradients of this tensor into `.grad` of the leaves it depends on."""
        autograd.backward(self, grad, retain_graph=retain_graph, create_graph=create_graph)

    def zero_grad(self) -> None:
        """Forget the accumulated gradient."""
        self.grad = None


def _index_data(index: Any) -> Any:
    """Replace Tensors in an index with their arrays (indices are never differentiated)."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    if isinstance(index, list):
        return np.asarray(index)
    return index


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None, name: str | None = None) -> Tensor:
    """Make a Tensor (float32 for Python scalars and lists unless `dtype` says otherwise)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, name=name)


# Tensor's methods call into these modules, which import Tensor themselves; so they
# are imported once the class exists.
from tinygrad_bn import autograd, functional, ops  # noqa: E402
