"""The book's activation and loss functions (``common.functions``): plain numpy, no autograd.

The layers in `common.layers` record graphs; these are the formulas the book's
chapters 3-4 compute directly, with the book's conventions: `cross_entropy_error`
adds 1e-7 inside the log, takes labels or one-hot targets, and averages over the batch.
"""

from __future__ import annotations

import numpy as np

__all__ = ["np",
    "identity_function", "step_function", "sigmoid", "sigmoid_grad", "relu", "relu_grad", "softmax",
    "sum_squared_error", "cross_entropy_error", "softmax_loss",
]

CE_DELTA = 1e-7  # the book's guard against log(0)


def identity_function(x: np.ndarray) -> np.ndarray:
    """x itself."""
    return x


def step_function(x: np.ndarray) -> np.ndarray:
    """1 where x > 0, else 0, as ints."""
    return np.array(np.asarray(x) > 0, dtype=int)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x))."""
    return 1 / (1 + np.exp(-np.asarray(x)))


def sigmoid_grad(x: np.ndarray) -> np.ndarray:
    """d sigmoid / dx = (1 - sigmoid(x)) * sigmoid(x)."""
    s = sigmoid(x)
    return (1.0 - s) * s


def relu(x: np.ndarray) -> np.ndarray:
    """max(0, x)."""
    return np.maximum(0, x)


def relu_grad(x: np.ndarray) -> np.ndarray:
    """1 where x >= 0 (the book counts 0 as active here), else 0, in x's dtype."""
    x = np.asarray(x)
    return (x >= 0).astype(x.dtype if x.dtype.kind == "f" else np.float64)


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the max for overflow safety."""
    x = np.asarray(x)
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def sum_squared_error(y: np.ndarray, t: np.ndarray) -> float:
    """0.5 * sum((y - t)**2)."""
    return 0.5 * np.sum((np.asarray(y) - np.asarray(t)) ** 2)


def cross_entropy_error(y: np.ndarray, t: np.ndarray) -> float:
    """-sum(log(y[i, t_i] + 1e-7)) / N for probabilities y; one-hot t is turned into labels."""
    y, t = np.asarray(y), np.asarray(t)
    if y.ndim == 1:
        t, y = t.reshape(1, t.size), y.reshape(1, y.size)
    if t.size == y.size:
        t = t.argmax(axis=1)
    n = y.shape[0]
    return -np.sum(np.log(y[np.arange(n), t] + CE_DELTA)) / n


def softmax_loss(X: np.ndarray, t: np.ndarray) -> float:
    """cross_entropy_error(softmax(X), t)."""
    return cross_entropy_error(softmax(X), t)
