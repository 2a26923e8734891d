"""Convolution and pooling for the textbook APIs, on the engine's convolution and pooling ops.

Everything convolution-shaped in `compat` (CS231n's conv/pool layers, naive and
"fast", ThreeLayerConvNet; the book's im2col/col2im, Convolution, Pooling,
SimpleConvNet) goes through the four functions here:

    conv2d(x, w, b, stride, pad)          -> functional.conv2d(x, w, b, stride, pad)
    max_pool2d(x, kh, kw, stride, pad)    -> functional.max_pool2d of the zero-padded x
    im2col_array / col2im_array (numpy)   -> kernels.conv's im2col / col2im

They run the fused kernels (kernels/conv.py, kernels/pool.py); the courses'
conventions are kept here. Shapes follow numpy/CS231n: x (N, C, H, W), w
(F, C, HH, WW), output (N, F, H', W') with H' = (H + 2 pad - HH) // stride + 1;
a scalar bias broadcasts over the filters (the book's apply_filter passes 0).
Max pooling pads with zeros, as the book's im2col does (PyTorch pads with
-inf), and sends each window's gradient to its first maximum, as the book's
argmax does; PyTorch's rule is the same except for NaN (the first NaN for
argmax, the last for PyTorch's scan, which is what the engine follows).
"""

from __future__ import annotations

import numpy as np

from tinygrad_bn import functional as F
from tinygrad_bn.functional.conv import unfold_window
from tinygrad_bn.kernels.conv import col2im, im2col
from tinygrad_bn.tensor import Tensor

__all__ = ["output_size", "conv2d", "max_pool2d", "im2col_array", "col2im_array"]


def output_size(op: str, size: int, window: int, stride: int, pad: int) -> int:
    """Positions a window of `window` takes along an axis of `size` padded by `pad` on each side."""
    if stride < 1 or pad < 0 or window < 1:
        raise ValueError(
            f"{op}: need stride >= 1, pad >= 0 and a window of at least 1, got stride={stride}, "
            f"pad={pad}, window={window}"
        )
    if size + 2 * pad < window:
        raise ValueError(
            f"{op}: a window of {window} does not fit an axis of {size} padded by {pad} on each side"
        )
    return (size + 2 * pad - window) // stride + 1


def _check_images(op: str, x: Tensor, name: str = "x") -> None:
    if x.ndim != 4:
        raise ValueError(f"{op}: {name} must have shape (N, C, H, W), got shape {x.shape}")


def conv2d(x: Tensor, w: Tensor, b: Tensor | None, stride: int = 1, pad: int = 0) -> Tensor:
    """Cross-correlation of x (N, C, H, W) with filters w (F, C, HH, WW), plus bias b (F,) or ()."""
    op = "conv2d"
    _check_images(op, x)
    _check_images(op, w, "w")
    if w.shape[1] != x.shape[1]:
        raise ValueError(
            f"{op}: w of shape {w.shape} expects {w.shape[1]} input channels, x of shape {x.shape} "
            f"has {x.shape[1]}"
        )
    if b is not None and b.shape not in ((w.shape[0],), ()):
        raise ValueError(
            f"{op}: b has shape {b.shape}, expected ({w.shape[0]},) (or one scalar for every filter) "
            f"for w of shape {w.shape}"
        )
    output_size(op, x.shape[2], w.shape[2], stride, pad)  # the course's message when it does not fit
    output_size(op, x.shape[3], w.shape[3], stride, pad)
    if b is not None and b.ndim == 0:  # a scalar b broadcasts over the filters, as numpy would
        return F.conv2d(x, w, None, stride, pad) + b
    return F.conv2d(x, w, b, stride, pad)


def max_pool2d(x: Tensor, kh: int, kw: int, stride: int, pad: int = 0) -> Tensor:
    """Max over each kh x kw window of x (N, C, H, W); padding counts as 0, as the book's im2col."""
    _check_images("max_pool2d", x)
    output_size("max_pool2d", x.shape[2], kh, stride, pad)  # the course's message when it does not fit
    output_size("max_pool2d", x.shape[3], kw, stride, pad)
    if pad:
        x = F.pad(x, (pad, pad, pad, pad))
    return F.max_pool2d(x, (kh, kw), stride)


def im2col_array(x: np.ndarray, kh: int, kw: int, stride: int = 1, pad: int = 0) -> np.ndarray:
    """The book's im2col: (N, C, H, W) -> (N*OH*OW, C*kh*kw), one row per output position."""
    if x.ndim != 4:
        raise ValueError(f"im2col: input_data must have shape (N, C, H, W), got shape {x.shape}")
    window = unfold_window("im2col", x.shape[2:], (kh, kw), 1, pad, stride)
    return np.ascontiguousarray(im2col(x, window).T)  # im2col's columns are (n, oh, ow): the book's rows


def col2im_array(
    col: np.ndarray, input_shape: tuple[int, ...], kh: int, kw: int, stride: int = 1, pad: int = 0
) -> np.ndarray:
    """The book's col2im, im2col's adjoint: each row's values added back where they came from (float64)."""
    if len(input_shape) != 4:
        raise ValueError(f"col2im: input_shape must be (N, C, H, W), got {tuple(input_shape)}")
    n, c, h, w = (int(s) for s in input_shape)
    window = unfold_window("col2im", (h, w), (kh, kw), 1, pad, stride)
    expected = (n * window.out[0] * window.out[1], c * kh * kw)
    if col.size != expected[0] * expected[1]:
        raise ValueError(f"col2im: col has shape {col.shape}, expected {expected} for {tuple(input_shape)}")
    cols = np.ascontiguousarray(col.reshape(expected).T, dtype=np.result_type(col.dtype, np.float64))
    return col2im(cols, window, n, c)
