"""CS231n's convenience "sandwich" layers, and everything `layers` and `fast_layers` export.

Replaces ``from cs231n.layer_utils import *``, which in the course also
star-imports `layers` and `fast_layers`; so does this module. Each sandwich's
cache is the tuple of its layers' caches, in order, as in the course, so your
own sandwiches (affine - batchnorm - relu, ...) compose the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_bn.compat.cs231n import fast_layers as _fast_layers
from tinygrad_bn.compat.cs231n import layers as _layers
from tinygrad_bn.compat.cs231n.fast_layers import *
from tinygrad_bn.compat.cs231n.layers import *

__all__ = ["np",
    "affine_relu_forward", "affine_relu_backward", "conv_relu_forward", "conv_relu_backward",
    "conv_bn_relu_forward", "conv_bn_relu_backward", "conv_relu_pool_forward", "conv_relu_pool_backward",
    *_layers.__all__, *_fast_layers.__all__,
]


def _unpack(op: str, cache: Any, parts: tuple[str, ...]) -> tuple:
    """A sandwich's tuple of caches, checked for its length."""
    if not isinstance(cache, tuple) or len(cache) != len(parts):
        forward = op.replace("_backward", "_forward")
        raise TypeError(
            f"{op}: cache must be the ({', '.join(parts)}) tuple returned by {forward}, "
            f"got {type(cache).__name__}"
        )
    return cache


def affine_relu_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, Any]:
    """relu(x.reshape(N, D) @ w + b) and the cache (affine cache, relu cache)."""
    a, fc_cache = affine_forward(x, w, b)
    out, relu_cache = relu_forward(a)
    return out, (fc_cache, relu_cache)


def affine_relu_backward(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) for affine_relu_forward."""
    fc_cache, relu_cache = _unpack("affine_relu_backward", cache, ("affine cache", "relu cache"))
    return affine_backward(relu_backward(dout, relu_cache), fc_cache)


def conv_relu_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict) -> tuple:
    """relu(conv(x, w, b)) and the cache (conv cache, relu cache)."""
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    out, relu_cache = relu_forward(a)
    return out, (conv_cache, relu_cache)


def conv_relu_backward(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) for conv_relu_forward."""
    conv_cache, relu_cache = _unpack("conv_relu_backward", cache, ("conv cache", "relu cache"))
    return conv_backward_fast(relu_backward(dout, relu_cache), conv_cache)


def conv_bn_relu_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
    conv_param: dict, bn_param: dict,
) -> tuple:
    """relu(spatial_batchnorm(conv(x, w, b))) and the cache (conv, batchnorm, relu caches)."""
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    an, bn_cache = spatial_batchnorm_forward(a, gamma, beta, bn_param)
    out, relu_cache = relu_forward(an)
    return out, (conv_cache, bn_cache, relu_cache)


def conv_bn_relu_backward(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, ...]:
    """(dx, dw, db, dgamma, dbeta) for conv_bn_relu_forward."""
    conv_cache, bn_cache, relu_cache = _unpack(
        "conv_bn_relu_backward", cache, ("conv cache", "batchnorm cache", "relu cache")
    )
    dan = relu_backward(dout, relu_cache)
    da, dgamma, dbeta = spatial_batchnorm_backward(dan, bn_cache)
    dx, dw, db = conv_backward_fast(da, conv_cache)
    return dx, dw, db, dgamma, dbeta


def conv_relu_pool_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict, pool_param: dict
) -> tuple:
    """max_pool(relu(conv(x, w, b))) and the cache (conv, relu, pool caches)."""
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    s, relu_cache = relu_forward(a)
    out, pool_cache = max_pool_forward_fast(s, pool_param)
    return out, (conv_cache, relu_cache, pool_cache)


def conv_relu_pool_backward(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) for conv_relu_pool_forward."""
    conv_cache, relu_cache, pool_cache = _unpack(
        "conv_relu_pool_backward", cache, ("conv cache", "relu cache", "pool cache")
    )
    ds = max_pool_backward_fast(dout, pool_cache)
    da = relu_backward(ds, relu_cache)
    return conv_backward_fast(da, conv_cache)
