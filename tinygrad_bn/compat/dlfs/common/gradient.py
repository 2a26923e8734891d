"""The book's numerical gradients (``common.gradient``): central differences with h = 1e-4.

x is perturbed in place one element at a time (C order) and restored, so f
must read the array it is given (or the network parameters that alias it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["np", "numerical_gradient", "numerical_gradient_2d"]

H = 1e-4  # the book's step


def _float_array(op: str, x: Any) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        raise TypeError(f"{op}: x must be a float numpy array (it is perturbed in place), got "
                        + (f"dtype {x.dtype}" if isinstance(x, np.ndarray) else type(x).__name__))
    return x


def numerical_gradient(f: Callable[[np.ndarray], Any], x: np.ndarray) -> np.ndarray:
    """(f(x + h e_i) - f(x - h e_i)) / 2h for every element i of x, any shape."""
    x = _float_array("numerical_gradient", x)
    grad = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        old = x[idx]
        x[idx] = float(old) + H
        plus = f(x)
        x[idx] = old - H
        minus = f(x)
        grad[idx] = (plus - minus) / (2 * H)
        x[idx] = old
    return grad


def numerical_gradient_2d(f: Callable[[np.ndarray], Any], X: np.ndarray) -> np.ndarray:
    """Row by row: the gradient of f at each row of X (f sees one row), or at X if it is 1-D."""
    X = _float_array("numerical_gradient_2d", X)
    if X.ndim == 1:
        return numerical_gradient(f, X)
    grad = np.zeros_like(X)
    for i, row in enumerate(X):
        grad[i] = numerical_gradient(f, row)
    return grad
