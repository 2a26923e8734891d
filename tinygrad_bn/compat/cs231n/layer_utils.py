"""CS231n's convenience "sandwich" layers: affine followed by ReLU.

Replaces ``from cs231n.layer_utils import *``. The cache is the pair of the two
layers' caches, as in the course, so your own sandwiches (affine - batchnorm -
relu, ...) can be written the same way from the functions in `layers`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_bn.compat.cs231n.layers import affine_backward, affine_forward, relu_backward, relu_forward

__all__ = ["affine_relu_forward", "affine_relu_backward"]


def affine_relu_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, Any]:
    """relu(x.reshape(N, D) @ w + b) and the cache (affine cache, relu cache)."""
    a, fc_cache = affine_forward(x, w, b)
    out, relu_cache = relu_forward(a)
    return out, (fc_cache, relu_cache)


def affine_relu_backward(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) for affine_relu_forward."""
    if not isinstance(cache, tuple) or len(cache) != 2:
        raise TypeError(
            "affine_relu_backward: cache must be the (affine cache, relu cache) pair returned by "
            f"affine_relu_forward, got {type(cache).__name__}"
        )
    fc_cache, relu_cache = cache
    return affine_backward(relu_backward(dout, relu_cache), fc_cache)
