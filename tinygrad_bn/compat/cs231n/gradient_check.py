"""CS231n's numerical gradient checks: central differences, perturbing x in place.

Replaces ``from cs231n.gradient_check import ...``. Elements are visited in
C order and f is called in the same order as the course's helpers (including
the initial, unused f(x) of `eval_numerical_gradient`), so a function that
draws random numbers or updates running statistics sees the same sequence of
calls. `rel_error` is the course's max elementwise relative error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tinygrad_bn.gradcheck import rel_error as _rel_error

__all__ = ["eval_numerical_gradient", "eval_numerical_gradient_array", "rel_error"]


def _check_x(op: str, x: Any) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{op}: x must be a numpy array (it is perturbed in place), got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: x must be a float array (it is perturbed by h), got dtype {x.dtype}")
    if not x.flags.writeable:
        raise ValueError(f"{op}: x must be writeable (it is perturbed in place)")
    return x


def eval_numerical_gradient(
    f: Callable[[np.ndarray], Any], x: np.ndarray, verbose: bool = True, h: float = 1e-5
) -> np.ndarray:
    """Gradient of the scalar f at x by central differences; prints each entry if verbose."""
    x = _check_x("eval_numerical_gradient", x)
    f(x)  # the course evaluates f once before probing; keep the call sequence identical
    grad = np.zeros_like(x)
    for ix in np.ndindex(*x.shape):
        old = x[ix]
        x[ix] = old + h
        plus = f(x)
        x[ix] = old - h
        minus = f(x)
        x[ix] = old
        grad[ix] = (plus - minus) / (2 * h)
        if verbose:
            print(ix, grad[ix])
    return grad


def eval_numerical_gradient_array(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, df: np.ndarray, h: float = 1e-5
) -> np.ndarray:
    """Gradient of sum(f(x) * df) at x by central differences, for an array-valued f."""
    x = _check_x("eval_numerical_gradient_array", x)
    grad = np.zeros_like(x)
    for ix in np.ndindex(*x.shape):
        old = x[ix]
        x[ix] = old + h
        plus = np.array(f(x), copy=True)
        x[ix] = old - h
        minus = np.array(f(x), copy=True)
        x[ix] = old
        if plus.shape != np.shape(df):
            raise ValueError(
                f"eval_numerical_gradient_array: f(x) has shape {plus.shape} but df has shape "
                f"{np.shape(df)}; expected equal"
            )
        grad[ix] = np.sum((plus - minus) * df) / (2 * h)
    return grad


def rel_error(x: Any, y: Any) -> float:
    """max |x - y| / max(1e-8, |x| + |y|), elementwise."""
    return _rel_error(x, y)
