"""Convolution and pooling for the textbook APIs, as gathers and a matmul on existing primitives.

Everything convolution-shaped in `compat` (CS231n's conv/pool layers, naive and
"fast", ThreeLayerConvNet; the book's im2col/col2im, Convolution, Pooling,
SimpleConvNet) goes through the four functions here, so that swapping in the
engine's fused convolution kernels is a change to this one module:

    conv2d(x, w, b, stride, pad)          -> functional.conv2d(x, w, b, stride, padding)
    max_pool2d(x, kh, kw, stride, pad)    -> functional.max_pool2d(x, (kh, kw), stride, padding)
    im2col_array / col2im_array (numpy)   -> functional.unfold / fold

How: a window of every output position is gathered from the flattened input
with one integer index (`getitem`, whose backward is a scatter-add), positions
that fall in the zero padding point at element 0 and are multiplied by a 0/1
mask, and the filters are applied with one batched `matmul`. Max pooling finds
each window's first maximum in numpy and gathers that one element, so its
gradient goes to the first maximum of a window, as the book's argmax does.
Shapes follow numpy/CS231n: x (N, C, H, W), w (F, C, HH, WW), output
(N, F, H', W') with H' = (H + 2 pad - HH) // stride + 1.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

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


@lru_cache(maxsize=64)
def _window_index(
    shape: tuple[int, int, int], kh: int, kw: int, stride: int, pad: int
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Gather index and validity mask of every window of a (C, H, W) image.

    Returns (index, mask, OH, OW): index and mask have shape (C*kh*kw, OH*OW);
    row (c, i, j) of the index lists, for each output position, the flat position
    in (C, H, W) of that window element, 0 where it lies in the padding (mask 0).
    Rows are ordered (channel, kernel row, kernel column), the layout of both
    CS231n's im2col and the book's.
    """
    c, h, w = shape
    oh = output_size("conv", h, kh, stride, pad)
    ow = output_size("conv", w, kw, stride, pad)
    rows = (np.arange(kh)[:, None] + stride * np.arange(oh)[None, :]) - pad  # (kh, OH)
    cols = (np.arange(kw)[:, None] + stride * np.arange(ow)[None, :]) - pad  # (kw, OW)
    r = rows[:, None, :, None]  # (kh, 1, OH, 1)
    q = cols[None, :, None, :]  # (1, kw, 1, OW)
    valid = (r >= 0) & (r < h) & (q >= 0) & (q < w)  # (kh, kw, OH, OW)
    within = np.where(valid, r * w + q, 0)
    index = within[None] + (np.arange(c) * h * w)[:, None, None, None, None]
    index = np.where(valid[None], index, 0).reshape(c * kh * kw, oh * ow)
    mask = np.broadcast_to(valid[None], (c, kh, kw, oh, ow)).reshape(c * kh * kw, oh * ow)
    index.setflags(write=False)
    mask = mask.copy()
    mask.setflags(write=False)
    return index, mask, oh, ow


def _windows(x: Tensor, kh: int, kw: int, stride: int, pad: int) -> tuple[Tensor, int, int]:
    """Every window of x (N, C, H, W) as columns: (N, C*kh*kw, OH*OW), zeros in the padding."""
    n, c, h, w = x.shape
    index, mask, oh, ow = _window_index((c, h, w), kh, kw, stride, pad)
    cols = x.reshape(n, c * h * w)[:, index]
    if pad:
        cols = cols * Tensor(mask.astype(x.dtype))
    return cols, oh, ow


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
    f, _, kh, kw = w.shape
    n = x.shape[0]
    cols, oh, ow = _windows(x, kh, kw, stride, pad)
    out = w.reshape(f, -1) @ cols  # (F, K) @ (N, K, L) -> (N, F, L)
    if b is not None:  # a scalar b (the book's apply_filter passes 0) broadcasts as numpy would
        out = out + (b.reshape(1, f, 1) if b.ndim else b)
    return out.reshape(n, f, oh, ow)


def max_pool2d(x: Tensor, kh: int, kw: int, stride: int, pad: int = 0) -> Tensor:
    """Max over each kh x kw window of x (N, C, H, W); padding counts as 0, as the book's im2col."""
    _check_images("max_pool2d", x)
    n, c, h, w = x.shape
    index, mask, oh, ow = _window_index((1, h, w), kh, kw, stride, pad)
    flat = x.data.reshape(n, c, h * w)
    values = np.where(mask, flat[:, :, index], 0)  # (N, C, kh*kw, L)
    first_max = values.argmax(axis=2)  # (N, C, L): np.argmax picks the first maximum
    cols = np.arange(oh * ow)
    winner = index[first_max, cols]  # flat position (in H*W) of each window's winner
    images = np.arange(n)[:, None, None]
    channels = np.arange(c)[None, :, None]
    out = x.reshape(n, c, h * w)[images, channels, winner]
    won_in_padding = ~mask[first_max, cols]
    if won_in_padding.any():  # a window whose maximum is a padding zero
        out = out * Tensor((~won_in_padding).astype(x.dtype))
    return out.reshape(n, c, oh, ow)


def im2col_array(x: np.ndarray, kh: int, kw: int, stride: int = 1, pad: int = 0) -> np.ndarray:
    """The book's im2col: (N, C, H, W) -> (N*OH*OW, C*kh*kw), one row per output position."""
    if x.ndim != 4:
        raise ValueError(f"im2col: input_data must have shape (N, C, H, W), got shape {x.shape}")
    n, c, h, w = x.shape
    index, mask, oh, ow = _window_index((c, h, w), kh, kw, stride, pad)
    cols = np.where(mask, x.reshape(n, c * h * w)[:, index], 0)  # (N, K, L)
    return cols.transpose(0, 2, 1).reshape(n * oh * ow, c * kh * kw)


def col2im_array(
    col: np.ndarray, input_shape: tuple[int, ...], kh: int, kw: int, stride: int = 1, pad: int = 0
) -> np.ndarray:
    """The book's col2im, im2col's adjoint: each row's values added back where they came from."""
    if len(input_shape) != 4:
        raise ValueError(f"col2im: input_shape must be (N, C, H, W), got {tuple(input_shape)}")
    n, c, h, w = (int(s) for s in input_shape)
    index, mask, oh, ow = _window_index((c, h, w), kh, kw, stride, pad)
    expected = (n * oh * ow, c * kh * kw)
    if col.size != expected[0] * expected[1]:
        raise ValueError(f"col2im: col has shape {col.shape}, expected {expected} for {tuple(input_shape)}")
    cols = col.reshape(n, oh * ow, c * kh * kw).transpose(0, 2, 1) * mask  # (N, K, L)
    img = np.zeros((n, c * h * w), dtype=np.result_type(col.dtype, np.float64))
    for i in range(n):  # bincount sums repeated positions: the overlap of neighbouring windows
        img[i] = np.bincount(index.ravel(), weights=cols[i].ravel(), minlength=c * h * w)
    return img.reshape(n, c, h, w)
