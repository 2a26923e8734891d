"""The everyday ops: thin calls into the primitives, and composites built from them.

These are the functions `tensor_methods.py` binds onto Tensor (`x.sum(...)` is
`sum(x, ...)`). A function here either applies one primitive from `ops.py` or
combines primitives, so its gradient is whatever autograd derives from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_bn import ops
from tinygrad_bn.tensor import Tensor, normalize_shape

Axis = int | Sequence[int] | None


# ---------------------------------------------------------------- elementwise primitives


def add(input: Tensor, other: Any) -> Tensor:
    """input + other (broadcasting)."""
    return ops.Add.apply(input, input._operand(other))


def sub(input: Tensor, other: Any) -> Tensor:
    """input - other (broadcasting)."""
    return ops.Sub.apply(input, input._operand(other))


def mul(input: Tensor, other: Any) -> Tensor:
    """input * other (broadcasting)."""
    return ops.Mul.apply(input, input._operand(other))


def div(input: Tensor, other: Any) -> Tensor:
    """input / other (broadcasting)."""
    return ops.Div.apply(input, input._operand(other))


def pow(input: Tensor, exponent: Any) -> Tensor:  # noqa: A001 - PyTorch's name
    """input ** exponent (broadcasting)."""
    return ops.Pow.apply(input, input._operand(exponent))


def matmul(input: Tensor, other: Any) -> Tensor:
    """numpy's matmul: 1-D operands are promoted to matrices, batch axes broadcast."""
    return ops.MatMul.apply(input, input._operand(other))


def neg(input: Tensor) -> Tensor:
    """-input."""
    return ops.Neg.apply(input)


def exp(input: Tensor) -> Tensor:
    """e ** input."""
    return ops.Exp.apply(input)


def log(input: Tensor) -> Tensor:
    """Natural logarithm."""
    return ops.Log.apply(input)


def sqrt(input: Tensor) -> Tensor:
    """Square root."""
    return ops.Sqrt.apply(input)


def relu(input: Tensor) -> Tensor:
    """max(input, 0); the gradient at exactly 0 is taken as 0."""
    return ops.ReLU.apply(input)


def tanh(input: Tensor) -> Tensor:
    """Hyperbolic tangent."""
    return ops.Tanh.apply(input)


def astype(input: Tensor, dtype: Any) -> Tensor:
    """Cast to `dtype`; the gradient is cast back."""
    if np.dtype(dtype) == input._data.dtype:
        return input
    return ops.Cast.apply(input, dtype=np.dtype(dtype))


def where(condition: Any, x: Any, y: Any) -> Tensor:
    """Elementwise choice: x where condition is true, else y (condition not differentiated)."""
    cond = condition if isinstance(condition, Tensor) else Tensor(np.asarray(condition, dtype=bool))
    if cond._data.dtype != np.bool_:
        cond = Tensor._wrap(cond._data.astype(bool), False, None)
    like = x if isinstance(x, Tensor) else y if isinstance(y, Tensor) else Tensor(x)
    return ops.Where.apply(cond, like._operand(x), like._operand(y))


# ---------------------------------------------------------------- elementwise composites


def abs(input: Tensor) -> Tensor:  # noqa: A001 - the natural name
    """|x| = x * sign(x); the sign is a constant, so |x|'' = 0 away from 0."""
    return input * Tensor._wrap(np.sign(input._data), False, None)


def rsqrt(input: Tensor) -> Tensor:
    """1 / sqrt(x) (a pow by -0.5)."""
    return input ** -0.5


def sigmoid(input: Tensor) -> Tensor:
    """1 / (1 + exp(-x)), evaluated so that neither side overflows or loses digits.

    With e = exp(-|x|) <= 1: 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0.
    (tanh(x/2) + 1) / 2 would underflow to 0 below x ~ -37, making log(sigmoid) -inf.
    """
    nonnegative = input._data >= 0
    # -|x| with the sign taken as +1 at 0, so the x >= 0 branch is differentiated there.
    sign = Tensor._wrap(np.where(nonnegative, 1, -1).astype(input.dtype), False, None)
    e = (-(input * sign)).exp()
    one_plus_e = e + 1.0
    return where(nonnegative, 1.0 / one_plus_e, e / one_plus_e)


# ---------------------------------------------------------------- reductions


def sum(input: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Sum over `axis` (all axes if None)."""
    return ops.Sum.apply(input, axis=axis, keepdims=keepdims)


def max(input: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Maximum over `axis`; ties share the gradient equally."""
    return ops.Max.apply(input, axis=axis, keepdims=keepdims)


def min(input: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Minimum over `axis` (-max(-x))."""
    return -((-input).max(axis=axis, keepdims=keepdims))


def reduced_count(shape: tuple[int, ...], axis: Axis, op: str) -> int:
    """How many elements a reduction over `axis` combines (`op` names the caller in errors)."""
    axis = ops.check_axis(op, axis, len(shape))
    if axis is None:
        return int(np.prod(shape, dtype=np.int64))
    if not shape:
        return 1
    axes = (axis,) if isinstance(axis, int) else axis
    return int(np.prod([shape[a] for a in axes], dtype=np.int64))


def mean(input: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Arithmetic mean: sum times 1/n."""
    n = reduced_count(input.shape, axis, "mean")
    if n == 0:
        raise ValueError(f"mean: cannot average over an empty axis of a tensor of shape {input.shape}")
    return input.sum(axis=axis, keepdims=keepdims) * (1.0 / n)


def var(input: Tensor, axis: Axis = None, ddof: int = 0, keepdims: bool = False) -> Tensor:
    """Variance, two-pass (centre first, then square): no E[x^2] - E[x]^2 cancellation."""
    n = reduced_count(input.shape, axis, "var")
    if n - ddof <= 0:
        raise ValueError(f"var: need more than ddof={ddof} values, got {n} (shape {input.shape})")
    centred = input - mean(input, axis=axis, keepdims=True)
    return (centred * centred).sum(axis=axis, keepdims=keepdims) * (1.0 / (n - ddof))


def argmax(input: Tensor, axis: int | None = None) -> Tensor:
    """Indices of the maxima (not differentiable)."""
    return Tensor._wrap(np.argmax(input._data, axis=axis), False, None)


# ---------------------------------------------------------------- movement


def reshape(input: Tensor, *shape: Any) -> Tensor:
    """Same data, new shape (numpy semantics, one -1 allowed)."""
    shape = normalize_shape(shape)
    if shape == input._data.shape:
        return input
    return ops.Reshape.apply(input, shape=shape)


def transpose(input: Tensor, *axes: Any) -> Tensor:
    """Permute axes; no arguments reverses them, as numpy does."""
    axes = normalize_shape(axes) if axes else tuple(reversed(range(input._data.ndim)))
    return ops.Transpose.apply(input, axes=axes)


def swapaxes(input: Tensor, axis0: int, axis1: int) -> Tensor:
    """Exchange two axes."""
    axes = list(range(input._data.ndim))
    axes[axis0], axes[axis1] = axes[axis1], axes[axis0]
    return ops.Transpose.apply(input, axes=tuple(axes))


def expand(input: Tensor, *shape: Any) -> Tensor:
    """Broadcast to `shape` (numpy broadcasting rules)."""
    shape = normalize_shape(shape)
    if shape == input._data.shape:
        return input
    return ops.Expand.apply(input, shape=shape)


def flatten(input: Tensor, start_axis: int = 0) -> Tensor:
    """Collapse axes from `start_axis` on into one."""
    return input.reshape(*input._data.shape[:start_axis], -1)


def getitem(input: Tensor, index: Any) -> Tensor:
    """input[index]: numpy basic and advanced indexing (indices are never differentiated)."""
    return ops.GetItem.apply(input, index=_index_data(index))


def _index_data(index: Any) -> Any:
    """Replace Tensors in an index with their arrays."""
    if isinstance(index, Tensor):
        return index._data
    if isinstance(index, tuple):
        return tuple(i._data if isinstance(i, Tensor) else i for i in index)
    if isinstance(index, list):
        return np.asarray(index)
    return index

