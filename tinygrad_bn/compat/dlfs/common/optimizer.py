"""The book's optimizers (``common.optimizer``): `update(params, grads)` changes params in place.

The networks' layers hold the very arrays in ``params``, so updating in place
is what makes the layers see the new values (as in the book). Plain numpy: an
update is arithmetic on arrays, not something to differentiate.
"""

from __future__ import annotations

import numpy as np

__all__ = ["np", "SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"]


class _Optimizer:
    """Shared check: params and grads are dicts with the same keys and shapes."""

    def _check(self, params: dict, grads: dict) -> None:
        name = type(self).__name__
        missing = [k for k in params if k not in grads]
        if missing:
            raise KeyError(f"{name}.update: grads has no entry for {missing}")
        for key, value in params.items():
            if np.shape(grads[key]) != np.shape(value):
                raise ValueError(
                    f"{name}.update: grads[{key!r}] has shape {np.shape(grads[key])}, expected "
                    f"params[{key!r}]'s shape {np.shape(value)}"
                )


class SGD(_Optimizer):
    """params -= lr * grads."""

    def __init__(self, lr: float = 0.01):
        self.lr = lr

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Update params in place."""
        self._check(params, grads)
        for key in params:
            params[key] -= self.lr * grads[key]


class Momentum(_Optimizer):
    """v = momentum * v - lr * grad; params += v."""

    def __init__(self, lr: float = 0.01, momentum: float = 0.9):
        self.lr, self.momentum = lr, momentum
        self.v: dict[str, np.ndarray] | None = None

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Update params in place."""
        self._check(params, grads)
        if self.v is None:
            self.v = {key: np.zeros_like(val) for key, val in params.items()}
        for key in params:
            self.v[key] = self.momentum * self.v[key] - self.lr * grads[key]
            params[key] += self.v[key]


class Nesterov(_Optimizer):
    """Nesterov momentum in the book's rearranged form (no look-ahead evaluation needed)."""

    def __init__(self, lr: float = 0.01, momentum: float = 0.9):
        self.lr, self.momentum = lr, momentum
        self.v: dict[str, np.ndarray] | None = None

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Update params in place."""
        self._check(params, grads)
        if self.v is None:
            self.v = {key: np.zeros_like(val) for key, val in params.items()}
        for key in params:
            self.v[key] *= self.momentum
            self.v[key] -= self.lr * grads[key]
            params[key] += self.momentum * self.momentum * self.v[key]
            params[key] -= (1 + self.momentum) * self.lr * grads[key]


class AdaGrad(_Optimizer):
    """h += grad**2; params -= lr * grad / (sqrt(h) + 1e-7)."""

    def __init__(self, lr: float = 0.01):
        self.lr = lr
        self.h: dict[str, np.ndarray] | None = None

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Update params in place."""
        self._check(params, grads)
        if self.h is None:
            self.h = {key: np.zeros_like(val) for key, val in params.items()}
        for key in params:
            self.h[key] += grads[key] * grads[key]
            params[key] -= self.lr * grads[key] / (np.sqrt(self.h[key]) + 1e-7)


class RMSprop(_Optimizer):
    """h = decay_rate * h + (1 - decay_rate) * grad**2; params -= lr * grad / (sqrt(h) + 1e-7)."""

    def __init__(self, lr: float = 0.01, decay_rate: float = 0.99):
        self.lr, self.decay_rate = lr, decay_rate
        self.h: dict[str, np.ndarray] | None = None

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Update params in place."""
        self._check(params, grads)
        if self.h is None:
            self.h = {key: np.zeros_like(val) for key, val in params.items()}
        for key in params:
            self.h[key] *= self.decay_rate
            self.h[key] += (1 - self.decay_rate) * grads[key] * grads[key]
            params[key] -= self.lr * grads[key] / (np.sqrt(self.h[key]) + 1e-7)


class Adam(_Optimizer):
    """Adam with the bias correction folded into the step size, as the book writes it."""

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999):
        self.lr, self.beta1, self.beta2 = lr, beta1, beta2
        self.iter = 0
        self.m: dict[str, np.ndarray] | None = None
        self.v: dict[str, np.ndarray] | None = None

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Update params in place."""
        self._check(params, grads)
        if self.m is None:
            self.m = {key: np.zeros_like(val) for key, val in params.items()}
            self.v = {key: np.zeros_like(val) for key, val in params.items()}
        self.iter += 1
        lr_t = self.lr * np.sqrt(1.0 - self.beta2**self.iter) / (1.0 - self.beta1**self.iter)
        for key in params:
            self.m[key] += (1 - self.beta1) * (grads[key] - self.m[key])
            self.v[key] += (1 - self.beta2) * (grads[key] ** 2 - self.v[key])
            params[key] -= lr_t * self.m[key] / (np.sqrt(self.v[key]) + 1e-7)


# ---------------------------------------------------------------- data

