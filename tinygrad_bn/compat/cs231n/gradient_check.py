"""CS231n's numerical gradient checks: central differences, perturbing x in place.

Replaces ``from cs231n.gradient_check import ...``. Elements are visited in
C order and f is called in the same order as the course's helpers (including
the initial, unused f(x) of `eval_numerical_gradient`), so a function that
draws random numbers or updates running statistics sees the same sequence of
calls. `rel_error` is the course's max elementwise relative error.
`eval_numerical_gradient_blobs` / `_net` work on "blobs", objects with
``vals`` and ``diffs`` arrays; `grad_check_sparse` prints a few random entries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from random import randrange
from typing import Any

import numpy as np

from tinygrad_bn.gradcheck import rel_error as _rel_error

__all__ = ["np",
    "eval_numerical_gradient", "eval_numerical_gradient_array", "eval_numerical_gradient_blobs",
    "eval_numerical_gradient_net", "grad_check_sparse", "rel_error",
]


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


def eval_numerical_gradient_blobs(
    f: Callable[..., Any], inputs: Sequence[Any], output: Any, h: float = 1e-5
) -> list[np.ndarray]:
    """For each input blob, the gradient of sum(output.vals * output.diffs) w.r.t. its vals.

    f(*inputs, output) writes its result into output.vals; blobs are objects with
    ``vals`` and ``diffs`` arrays. Each input's vals are perturbed in place.
    """
    inputs = tuple(inputs)
    numeric = []
    for blob in inputs:
        vals = _check_x("eval_numerical_gradient_blobs", blob.vals)
        diff = np.zeros_like(np.asarray(blob.diffs))
        for ix in np.ndindex(*vals.shape):
            old = vals[ix]
            vals[ix] = old + h
            f(*inputs, output)
            plus = np.array(output.vals, copy=True)
            vals[ix] = old - h
            f(*inputs, output)
            minus = np.array(output.vals, copy=True)
            vals[ix] = old
            diff[ix] = np.sum((plus - minus) * output.diffs) / (2.0 * h)
        numeric.append(diff)
    return numeric


def eval_numerical_gradient_net(net: Any, inputs: Sequence[Any], output: Any, h: float = 1e-5) -> list:
    """eval_numerical_gradient_blobs for a net whose forward() reads inputs and writes output."""
    return eval_numerical_gradient_blobs(lambda *args: net.forward(), inputs, output, h=h)


def grad_check_sparse(
    f: Callable[[np.ndarray], Any], x: np.ndarray, analytic_grad: np.ndarray, num_checks: int = 10,
    h: float = 1e-5,
) -> None:
    """Print numerical vs analytic gradient at num_checks random entries of x (Python's random)."""
    x = _check_x("grad_check_sparse", x)
    for _ in range(num_checks):
        ix = tuple(randrange(m) for m in x.shape)
        old = x[ix]
        x[ix] = old + h
        plus = f(x)
        x[ix] = old - h
        minus = f(x)
        x[ix] = old
        numerical = (plus - minus) / (2 * h)
        analytic = analytic_grad[ix]
        error = abs(numerical - analytic) / (abs(numerical) + abs(analytic))
        print(f"numerical: {numerical:f} analytic: {analytic:f}, relative error: {error:e}")
