"""CS231n's "fast" convolution and pooling layers, and the im2col helpers they star-export.

Replaces ``from cs231n.fast_layers import *``. The course ships these ready-made
(im2col with Cython, stride tricks); here every variant is the graph built by
`tinygrad_bn.compat._conv`, the same as the naive layers, with gradients from
autograd, so the notebook's naive-vs-fast differences print 0 and its speedups
are about 1x. The variants keep the course's preconditions: the im2col
convolution and im2col/reshape pooling raise when the windows do not tile the
padded input exactly (the course asserts). Caches are interchangeable.

`im2col_indices(x, field_height, field_width, padding=1, stride=1)` returns the
course's layout, rows (channel, kernel row, kernel column) and columns
(output row, output column, example); `col2im_indices` is its adjoint (overlaps
summed); `get_im2col_indices` gives the (k, i, j) index arrays into the padded input.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_bn.compat._conv import col2im_array, im2col_array, output_size
from tinygrad_bn.compat.cs231n._conv_layers import (
    _int_param,
    conv_backward,
    conv_forward,
    max_pool_backward,
    max_pool_forward,
)

__all__ = ["np",
    "conv_forward_fast", "conv_backward_fast", "conv_forward_im2col", "conv_backward_im2col",
    "conv_forward_strides", "conv_backward_strides",
    "max_pool_forward_fast", "max_pool_backward_fast", "max_pool_forward_reshape",
    "max_pool_backward_reshape", "max_pool_forward_im2col", "max_pool_backward_im2col",
    "get_im2col_indices", "im2col_indices", "col2im_indices",
]


def _check_tiles(op: str, what: str, size: int, window: int, stride: int, pad: int) -> None:
    """The course's assert that windows tile the padded axis exactly, as a ValueError."""
    if (size + 2 * pad - window) % stride:
        raise ValueError(
            f"{op}: {what} does not work: ({size} + 2*{pad} - {window}) is not a multiple of stride {stride}"
        )


def conv_forward_strides(x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict) -> tuple:
    """Convolution forward (the course's stride-tricks version): (out, cache)."""
    return conv_forward("conv_forward_strides", x, w, b, conv_param)


def conv_backward_strides(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) for conv_forward_strides."""
    return conv_backward("conv_backward_strides", dout, cache)


def conv_forward_im2col(x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict) -> tuple:
    """Convolution forward (the course's im2col version; windows must tile the padded input)."""
    op = "conv_forward_im2col"
    stride = _int_param(op, conv_param, "conv_param", "stride", 1)
    pad = _int_param(op, conv_param, "conv_param", "pad", 0)
    x_shape, w_shape = np.shape(x), np.shape(w)
    if len(x_shape) == 4 and len(w_shape) == 4:
        _check_tiles(op, "height", x_shape[2], w_shape[2], stride, pad)
        _check_tiles(op, "width", x_shape[3], w_shape[3], stride, pad)
    return conv_forward(op, x, w, b, conv_param)


def conv_backward_im2col(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) for conv_forward_im2col."""
    return conv_backward("conv_backward_im2col", dout, cache)


conv_forward_fast = conv_forward_strides
conv_backward_fast = conv_backward_strides


def _check_pool_tiles(op: str, x: Any, pool_param: dict, square: bool) -> None:
    """The reshape variant needs pool_height == pool_width == stride dividing H and W."""
    kh = _int_param(op, pool_param, "pool_param", "pool_height", 1)
    kw = _int_param(op, pool_param, "pool_param", "pool_width", 1)
    stride = _int_param(op, pool_param, "pool_param", "stride", 1)
    shape = np.shape(x)
    if len(shape) != 4:
        return  # the shared forward reports the bad shape
    if square and not (kh == kw == stride and shape[2] % kh == 0 and shape[3] % kw == 0):
        raise ValueError(
            f"{op}: Invalid pool params: needs pool_height == pool_width == stride dividing H and W, "
            f"got {pool_param} for x of shape {shape}"
        )
    _check_tiles(op, "height", shape[2], kh, stride, 0)
    _check_tiles(op, "width", shape[3], kw, stride, 0)


def max_pool_forward_reshape(x: np.ndarray, pool_param: dict) -> tuple:
    """Max pooling forward for square, non-overlapping windows that tile x (the course's reshape trick)."""
    op = "max_pool_forward_reshape"
    _check_pool_tiles(op, x, pool_param, square=True)
    return max_pool_forward(op, x, pool_param)


def max_pool_backward_reshape(dout: np.ndarray, cache: Any) -> np.ndarray:
    """dx for max_pool_forward_reshape."""
    return max_pool_backward("max_pool_backward_reshape", dout, cache)


def max_pool_forward_im2col(x: np.ndarray, pool_param: dict) -> tuple:
    """Max pooling forward whose windows tile x exactly (the course's im2col version)."""
    op = "max_pool_forward_im2col"
    _check_pool_tiles(op, x, pool_param, square=False)
    return max_pool_forward(op, x, pool_param)


def max_pool_backward_im2col(dout: np.ndarray, cache: Any) -> np.ndarray:
    """dx for max_pool_forward_im2col."""
    return max_pool_backward("max_pool_backward_im2col", dout, cache)


def max_pool_forward_fast(x: np.ndarray, pool_param: dict) -> tuple:
    """Max pooling forward, any window and stride."""
    return max_pool_forward("max_pool_forward_fast", x, pool_param)


def max_pool_backward_fast(dout: np.ndarray, cache: Any) -> np.ndarray:
    """dx for max_pool_forward_fast."""
    return max_pool_backward("max_pool_backward_fast", dout, cache)


# ---------------------------------------------------------------- the course's im2col helpers (numpy)


def get_im2col_indices(
    x_shape: tuple[int, ...], field_height: int, field_width: int, padding: int = 1, stride: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(k, i, j): channel (K, 1), row (K, L) and column (K, L) of each window element in the padded x."""
    n, c, h, w = x_shape
    op = "get_im2col_indices"
    out_h = output_size(op, h, field_height, stride, padding)
    out_w = output_size(op, w, field_width, stride, padding)
    kernel_rows = np.tile(np.repeat(np.arange(field_height), field_width), c)
    kernel_cols = np.tile(np.arange(field_width), field_height * c)
    out_rows = stride * np.repeat(np.arange(out_h), out_w)
    out_cols = stride * np.tile(np.arange(out_w), out_h)
    i = kernel_rows[:, None] + out_rows[None, :]
    j = kernel_cols[:, None] + out_cols[None, :]
    k = np.repeat(np.arange(c), field_height * field_width)[:, None]
    return k, i, j


def im2col_indices(
    x: np.ndarray, field_height: int, field_width: int, padding: int = 1, stride: int = 1
) -> np.ndarray:
    """Columns of shape (C*fh*fw, OH*OW*N): one column per (output position, example)."""
    n = x.shape[0]
    rows = im2col_array(x, field_height, field_width, stride, padding)  # (N*L, K), example-major
    k = rows.shape[1]
    return rows.reshape(n, -1, k).transpose(2, 1, 0).reshape(k, -1)


def col2im_indices(
    cols: np.ndarray, x_shape: tuple[int, ...], field_height: int = 3, field_width: int = 3,
    padding: int = 1, stride: int = 1,
) -> np.ndarray:
    """The adjoint of im2col_indices: (C*fh*fw, OH*OW*N) back to x_shape, overlaps summed."""
    n = x_shape[0]
    k = cols.shape[0]
    rows = cols.reshape(k, -1, n).transpose(2, 1, 0).reshape(-1, k)
    return col2im_array(rows, x_shape, field_height, field_width, stride, padding).astype(cols.dtype)
