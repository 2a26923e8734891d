"""Elementwise ops: arithmetic, comparisons, math functions, clamping, where.

Each one applies a primitive from `ops.py` or combines primitives, so its
gradient is whatever autograd derives from them. Python scalars take the float
dtype of the tensor they meet (they never upcast a float32 graph), and an
integer or bool operand meeting a float one takes the float dtype (PyTorch's
rule: numpy would widen int64 with float32 to float64).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinygrad_bn import ops
from tinygrad_bn.autograd.grad_mode import composite
from tinygrad_bn.tensor import Tensor, get_default_dtype

# ---------------------------------------------------------------- arithmetic


def _check_input(op: str, input: Any) -> Tensor:
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
    return input


def promote(input: Tensor, other: Tensor) -> tuple[Tensor, Tensor]:
    """The operands of a binary op with PyTorch's promotion: a float beats an integer or
    bool (int64 + float32 is float32), and between floats a 0-d tensor takes the dtype of
    a dimensioned one (float32 (3,) * float64 0-d is float32); otherwise numpy's rule."""
    a, b = input._data.dtype, other._data.dtype
    if a == b:  # the common case
        return input, other
    if a.kind == "f" and b.kind == "f":
        if other._data.ndim == 0 and input._data.ndim:
            return input, cast(other, a)
        if input._data.ndim == 0 and other._data.ndim:
            return cast(input, b), other
        return input, other
    if a.kind != "f" and b.kind != "f":
        return input, other
    return (input, cast(other, a)) if a.kind == "f" else (cast(input, b), other)


def add(input: Tensor, other: Any, *, alpha: float = 1) -> Tensor:
    """input + alpha * other (broadcasting)."""
    other = input._operand(other)
    if input._data.dtype is not other._data.dtype:  # the common case needs no promotion call
        input, other = promote(input, other)
    return ops.Add.apply(input, other if alpha == 1 else other * alpha)


def sub(input: Tensor, other: Any, *, alpha: float = 1) -> Tensor:
    """input - alpha * other (broadcasting)."""
    other = input._operand(other)
    if input._data.dtype is not other._data.dtype:
        input, other = promote(input, other)
    return ops.Sub.apply(input, other if alpha == 1 else other * alpha)


def mul(input: Tensor, other: Any) -> Tensor:
    """input * other (broadcasting)."""
    other = input._operand(other)
    if input._data.dtype is not other._data.dtype:
        input, other = promote(input, other)
    return ops.Mul.apply(input, other)


def div(input: Tensor, other: Any, *, rounding_mode: str | None = None) -> Tensor:
    """input / other; integer operands divide to the default float dtype, as in PyTorch.

    rounding_mode "trunc" or "floor" rounds the quotient (its gradient is zero).
    """
    other = input._operand(other)
    if input._data.dtype.kind in "biu" and other._data.dtype.kind in "biu" and rounding_mode is None:
        input = cast(input, get_default_dtype())
    if rounding_mode is None:
        return ops.Div.apply(*promote(input, other))
    if rounding_mode not in ("trunc", "floor"):
        raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")
    quotient = np.floor_divide if rounding_mode == "floor" else _trunc_divide
    return Tensor._wrap(np.asarray(quotient(input._data, other._data)), False, None)


def _trunc_divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    q = np.trunc(np.true_divide(a, b))
    return q.astype(np.result_type(a, b), copy=False)


def pow(input: Any, exponent: Any) -> Tensor:  # noqa: A001 - PyTorch's name
    """input ** exponent (broadcasting); input may be a number when exponent is a Tensor."""
    if not isinstance(input, Tensor):
        return ops.Pow.apply(*promote(exponent._operand(input), exponent))
    return ops.Pow.apply(*promote(input, input._operand(exponent)))


def neg(input: Tensor) -> Tensor:
    """-input."""
    return ops.Neg.apply(input)


def reciprocal(input: Tensor) -> Tensor:
    """1 / input."""
    return ops.Div.apply(input._operand(1.0), input)


def square(input: Tensor) -> Tensor:
    """input * input."""
    return ops.Mul.apply(input, input)


def cast(input: Tensor, dtype: Any) -> Tensor:
    """input converted to `dtype`; the gradient is converted back."""
    dtype = np.dtype(dtype)
    if dtype == input._data.dtype:
        return input
    return ops.Cast.apply(input, dtype=dtype)


# ---------------------------------------------------------------- math functions


def exp(input: Tensor) -> Tensor:
    """e ** input."""
    return ops.Exp.apply(input)


def log(input: Tensor) -> Tensor:
    """Natural logarithm."""
    return ops.Log.apply(input)


def log2(input: Tensor) -> Tensor:
    """Base-2 logarithm."""
    return ops.Log.apply(input) * (1.0 / math.log(2.0))


def log10(input: Tensor) -> Tensor:
    """Base-10 logarithm."""
    return ops.Log.apply(input) * (1.0 / math.log(10.0))


def log1p(input: Tensor) -> Tensor:
    """log(1 + input), accurate for tiny input."""
    return ops.Log1p.apply(input)


def expm1(input: Tensor) -> Tensor:
    """exp(input) - 1, accurate for tiny input."""
    return ops.Expm1.apply(input)


def sqrt(input: Tensor) -> Tensor:
    """Square root."""
    return ops.Sqrt.apply(input)


def rsqrt(input: Tensor) -> Tensor:
    """1 / sqrt(input) (a pow by -0.5)."""
    return ops.Pow.apply(input, input._operand(-0.5))


def sin(input: Tensor) -> Tensor:
    """Sine."""
    return ops.Sin.apply(input)


def cos(input: Tensor) -> Tensor:
    """Cosine."""
    return ops.Cos.apply(input)


def tanh(input: Tensor) -> Tensor:
    """Hyperbolic tangent."""
    return ops.Tanh.apply(input)


def erf(input: Tensor) -> Tensor:
    """The error function."""
    return ops.Erf.apply(input)


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(input, 0); the gradient at exactly 0 is 0, as in PyTorch. (inplace is accepted, not used.)"""
    return ops.ReLU.apply(input)


@composite("sigmoid")
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


def abs(input: Tensor) -> Tensor:  # noqa: A001 - the natural name
    """|x| = x * sign(x); the sign is a constant, so the gradient at 0 is 0 (PyTorch's choice)."""
    return input * Tensor._wrap(np.sign(input._data), False, None)


def sign(input: Tensor) -> Tensor:
    """-1, 0 or 1 elementwise (zero gradient)."""
    return ops.Sign.apply(input)


def _rounding(name: str, fn: Any, doc: str) -> Any:
    def rounded(input: Tensor) -> Tensor:
        out = Tensor._wrap(np.asarray(fn(input._data)), False, None)
        if not input._rg:
            return out
        # Piecewise constant: PyTorch keeps the output in the graph with a zero gradient.
        # A where() that never picks input gives exactly that (0 * input would make inf * 0 = nan).
        return ops.Where.apply(Tensor._wrap(np.zeros(out.shape, bool), False, None), input, out)

    rounded.__name__, rounded.__doc__ = name, doc
    return rounded


floor = _rounding("floor", np.floor, "The largest integer <= x, elementwise (zero gradient).")
ceil = _rounding("ceil", np.ceil, "The smallest integer >= x, elementwise (zero gradient).")
trunc = _rounding("trunc", np.trunc, "x rounded towards zero, elementwise (zero gradient).")


def round(input: Tensor, *, decimals: int = 0) -> Tensor:  # noqa: A001 - PyTorch's name
    """x rounded to `decimals` places, halves to even as in PyTorch (zero gradient)."""
    return _rounding("round", lambda a: np.round(a, decimals), round.__doc__)(input)


# ---------------------------------------------------------------- choosing and clamping


def where(condition: Any, input: Any, other: Any) -> Tensor:
    """input where condition is true, else other (condition not differentiated)."""
    cond = condition if isinstance(condition, Tensor) else Tensor(np.asarray(condition, dtype=bool))
    if cond._data.dtype != np.bool_:
        cond = Tensor._wrap(cond._data.astype(bool), False, None)
    like = input if isinstance(input, Tensor) else other if isinstance(other, Tensor) else Tensor(input)
    return ops.Where.apply(cond, *promote(like._operand(input), like._operand(other)))


def maximum(input: Tensor, other: Any) -> Tensor:
    """Elementwise max; at ties each side gets half the gradient, as in PyTorch."""
    other = input._operand(other)
    a, b = input._data, other._data
    # (a + b) / 2 is exactly a where a == b, so the values are exact; NaN propagates.
    return where(a > b, input, where(a < b, other, (input + other) * 0.5))


def minimum(input: Tensor, other: Any) -> Tensor:
    """Elementwise min; at ties each side gets half the gradient, as in PyTorch."""
    other = input._operand(other)
    a, b = input._data, other._data
    return where(a < b, input, where(a > b, other, (input + other) * 0.5))


def clamp(input: Tensor, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002 - PyTorch's names
    """Limit values to [min, max]; the gradient passes where min <= x <= max, as in PyTorch."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    out = input
    if min is not None:
        low = input._operand(min)
        out = where(input._data < low._data, low, out)
    if max is not None:
        high = input._operand(max)
        out = where(input._data > high._data, high, out)
    return out


clip = clamp


def clamp_min(input: Tensor, min: Any) -> Tensor:  # noqa: A002 - PyTorch's name
    """clamp(input, min=min)."""
    return clamp(input, min=min)


def clamp_max(input: Tensor, max: Any) -> Tensor:  # noqa: A002 - PyTorch's name
    """clamp(input, max=max)."""
    return clamp(input, max=max)


# ---------------------------------------------------------------- comparisons (no gradient)


def _compare(fn: Any) -> Any:
    def compare(input: Tensor, other: Any) -> Tensor:
        return Tensor._wrap(np.asarray(fn(input._data, input._operand(other)._data)), False, None)

    compare.__name__ = fn.__name__
    compare.__doc__ = f"Elementwise {fn.__name__} as a bool tensor (not differentiable)."
    return compare


eq, ne = _compare(np.equal), _compare(np.not_equal)
lt, le = _compare(np.less), _compare(np.less_equal)
gt, ge = _compare(np.greater), _compare(np.greater_equal)
logical_and, logical_or = _compare(np.logical_and), _compare(np.logical_or)
logical_xor = _compare(np.logical_xor)


def logical_not(input: Tensor) -> Tensor:
    """Elementwise not, as a bool tensor."""
    return Tensor._wrap(np.logical_not(input._data), False, None)


def isnan(input: Tensor) -> Tensor:
    """Where input is NaN."""
    return Tensor._wrap(np.isnan(input._data), False, None)


def isinf(input: Tensor) -> Tensor:
    """Where input is +-inf."""
    return Tensor._wrap(np.isinf(input._data), False, None)


def isfinite(input: Tensor) -> Tensor:
    """Where input is neither inf nor NaN."""
    return Tensor._wrap(np.isfinite(input._data), False, None)


def isclose(input: Tensor, other: Any, rtol: float = 1e-5, atol: float = 1e-8,
            equal_nan: bool = False) -> Tensor:
    """|input - other| <= atol + rtol * |other|, elementwise."""
    close = np.isclose(input._data, input._operand(other)._data, rtol, atol, equal_nan)
    return Tensor._wrap(np.asarray(close), False, None)


def allclose(input: Tensor, other: Any, rtol: float = 1e-5, atol: float = 1e-8,
             equal_nan: bool = False) -> bool:
    """True when every element isclose."""
    return bool(np.allclose(input._data, input._operand(other)._data, rtol, atol, equal_nan))


def equal(input: Tensor, other: Tensor) -> bool:
    """True when both have the same shape and elements."""
    return input.shape == other.shape and bool(np.array_equal(input._data, other._data))
