"""CS231n's update rules: `rule(w, dw, config) -> (next_w, config)`.

Replaces ``from cs231n.optim import *``. `config` holds the hyperparameters and
the rule's state (velocity, moment estimates); a missing entry gets the
course's default on the first call. The rules are plain numpy: an optimizer
step is arithmetic on arrays, not something to differentiate. `sgd` updates w
in place, as the course's does; the others return a new array.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["np", "sgd", "sgd_momentum", "rmsprop", "adam", "UPDATE_RULES"]

Config = dict[str, Any]


def _config(rule: str, w: Any, dw: Any, config: Config | None) -> tuple[np.ndarray, np.ndarray, Config]:
    """Check the arguments every rule shares; None means a fresh config."""
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise TypeError(f"{rule}: config must be a dict or None, got {type(config).__name__}")
    w, dw = np.asarray(w), np.asarray(dw)
    if w.shape != dw.shape:
        raise ValueError(f"{rule}: w has shape {w.shape} but dw has shape {dw.shape}; expected equal")
    return w, dw, config


def sgd(w: np.ndarray, dw: np.ndarray, config: Config | None = None) -> tuple[np.ndarray, Config]:
    """Vanilla SGD, w -= learning_rate * dw (in place). Default learning_rate 1e-2."""
    w, dw, config = _config("sgd", w, dw, config)
    config.setdefault("learning_rate", 1e-2)
    w -= config["learning_rate"] * dw
    return w, config


def sgd_momentum(w: np.ndarray, dw: np.ndarray, config: Config | None = None) -> tuple[np.ndarray, Config]:
    """SGD with momentum: v = momentum * v - learning_rate * dw; w + v.

    Defaults: learning_rate 1e-2, momentum 0.9, velocity zeros.
    """
    w, dw, config = _config("sgd_momentum", w, dw, config)
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = config.get("velocity", np.zeros_like(w))
    v = config["momentum"] * v - config["learning_rate"] * dw
    config["velocity"] = v
    return w + v, config


def rmsprop(w: np.ndarray, dw: np.ndarray, config: Config | None = None) -> tuple[np.ndarray, Config]:
    """RMSProp: cache = decay * cache + (1 - decay) * dw**2; w - lr * dw / (sqrt(cache) + eps).

    Defaults: learning_rate 1e-2, decay_rate 0.99, epsilon 1e-8, cache zeros.
    """
    w, dw, config = _config("rmsprop", w, dw, config)
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("decay_rate", 0.99)
    config.setdefault("epsilon", 1e-8)
    config.setdefault("cache", np.zeros_like(w))
    decay = config["decay_rate"]
    config["cache"] = decay * config["cache"] + (1 - decay) * dw**2
    next_w = w - config["learning_rate"] * dw / (np.sqrt(config["cache"]) + config["epsilon"])
    return next_w, config


def adam(w: np.ndarray, dw: np.ndarray, config: Config | None = None) -> tuple[np.ndarray, Config]:
    """Adam with bias correction; t is incremented before the update.

    Defaults: learning_rate 1e-3, beta1 0.9, beta2 0.999, epsilon 1e-8, m and v zeros, t 0.
    """
    w, dw, config = _config("adam", w, dw, config)
    config.setdefault("learning_rate", 1e-3)
    config.setdefault("beta1", 0.9)
    config.setdefault("beta2", 0.999)
    config.setdefault("epsilon", 1e-8)
    config.setdefault("m", np.zeros_like(w))
    config.setdefault("v", np.zeros_like(w))
    config.setdefault("t", 0)
    beta1, beta2 = config["beta1"], config["beta2"]
    config["t"] += 1
    config["m"] = beta1 * config["m"] + (1 - beta1) * dw
    config["v"] = beta2 * config["v"] + (1 - beta2) * dw**2
    m_hat = config["m"] / (1 - beta1 ** config["t"])
    v_hat = config["v"] / (1 - beta2 ** config["t"])
    next_w = w - config["learning_rate"] * m_hat / (np.sqrt(v_hat) + config["epsilon"])
    return next_w, config


UPDATE_RULES: dict[str, Callable[..., tuple[np.ndarray, Config]]] = {
    "sgd": sgd, "sgd_momentum": sgd_momentum, "rmsprop": rmsprop, "adam": adam,
}
