"""CS231n's convolution and max-pooling layers (naive and "fast"), on compat's conv module.

The course's naive layers are loops a student writes and its fast layers are
im2col/stride tricks; here both run the engine's fused convolution and pooling
kernels through `tinygrad_bn.compat._conv`, which keeps the course's conventions.

conv_param holds 'stride' and 'pad' (zero padding on each side); pool_param
holds 'pool_height', 'pool_width' and 'stride'. Every cache made by a conv
forward works with every conv backward, likewise for pooling.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_bn.compat import _cast, _leaf
from tinygrad_bn.compat._conv import conv2d, max_pool2d
from tinygrad_bn.compat.cs231n._cache import GraphCache, graph_backward

__all__ = [
    "conv_forward_naive", "conv_backward_naive", "max_pool_forward_naive", "max_pool_backward_naive",
    "conv_forward", "conv_backward", "max_pool_forward", "max_pool_backward",
]


def _int_param(op: str, params: Any, params_name: str, key: str, minimum: int) -> int:
    """params[key] as an int >= minimum, or an error naming the dict and the key."""
    if not isinstance(params, dict) or key not in params:
        raise ValueError(f"{op}: {params_name} must be a dict with {key!r}, got {params!r}")
    value = params[key]
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{op}: {params_name}[{key!r}] must be an int >= {minimum}, got {value!r}")
    return int(value)


def conv_forward(
    op: str, x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict
) -> tuple[np.ndarray, Any]:
    """Convolution of x (N, C, H, W) with w (F, C, HH, WW) plus b (F,): (out, cache)."""
    stride = _int_param(op, conv_param, "conv_param", "stride", 1)
    pad = _int_param(op, conv_param, "conv_param", "pad", 0)
    x_t, w_t, b_t = _leaf(op, "x", x), _leaf(op, "w", w), _leaf(op, "b", b)
    dtype = np.result_type(x_t.dtype, w_t.dtype, b_t.dtype)
    out = conv2d(_cast(x_t, dtype), _cast(w_t, dtype), _cast(b_t, dtype), stride, pad)
    return out.data, GraphCache("conv", (x_t, w_t, b_t), {"default": out})


def conv_backward(op: str, dout: np.ndarray, cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) for a conv forward's cache."""
    return graph_backward(op, dout, cache, "conv")


def max_pool_forward(op: str, x: np.ndarray, pool_param: dict) -> tuple[np.ndarray, Any]:
    """Max pooling of x (N, C, H, W) over pool_height x pool_width windows: (out, cache)."""
    kh = _int_param(op, pool_param, "pool_param", "pool_height", 1)
    kw = _int_param(op, pool_param, "pool_param", "pool_width", 1)
    stride = _int_param(op, pool_param, "pool_param", "stride", 1)
    x_t = _leaf(op, "x", x)
    out = max_pool2d(x_t, kh, kw, stride)
    return out.data, GraphCache("max_pool", (x_t,), {"default": out})


def max_pool_backward(op: str, dout: np.ndarray, cache: Any) -> np.ndarray:
    """dx for a max-pool forward's cache: each window's gradient goes to its (first) maximum."""
    return graph_backward(op, dout, cache, "max_pool")[0]


def conv_forward_naive(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict
) -> tuple[np.ndarray, Any]:
    """Convolution forward: out of shape (N, F, H', W'), H' = 1 + (H + 2 pad - HH) // stride."""
    return conv_forward("conv_forward_naive", x, w, b, conv_param)


def conv_backward_naive(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) for conv_forward_naive."""
    return conv_backward("conv_backward_naive", dout, cache)


def max_pool_forward_naive(x: np.ndarray, pool_param: dict) -> tuple[np.ndarray, Any]:
    """Max pooling forward: out of shape (N, C, H', W'), H' = 1 + (H - pool_height) // stride."""
    return max_pool_forward("max_pool_forward_naive", x, pool_param)


def max_pool_backward_naive(dout: np.ndarray, cache: Any) -> np.ndarray:
    """dx for max_pool_forward_naive."""
    return max_pool_backward("max_pool_backward_naive", dout, cache)
