"""The book's helpers (``common.util``): smoothing a loss curve, shuffling, im2col / col2im.

`im2col(input_data, filter_h, filter_w, stride=1, pad=0)` turns (N, C, H, W)
into (N*OH*OW, C*filter_h*filter_w), one row per output position; `col2im`
is its adjoint, adding overlapping windows back up. Both are numpy-level, as in
the book; the layers build their graphs from `tinygrad_bn.compat._conv`.
"""

from __future__ import annotations

import numpy as np

from tinygrad_bn.compat._conv import col2im_array, im2col_array

__all__ = ["np", "smooth_curve", "shuffle_dataset", "conv_output_size", "im2col", "col2im"]

SMOOTH_WINDOW = 11  # the book's Kaiser window length and beta
SMOOTH_BETA = 2


def smooth_curve(x: np.ndarray) -> np.ndarray:
    """x smoothed by an 11-point Kaiser window (beta 2), the ends mirrored; same length as x."""
    x = np.asarray(x, dtype=float)
    k = SMOOTH_WINDOW
    # Mirror k-1 points on each side: the left mirror skips x[0], the right one repeats x[-1].
    left, right = x[k - 1:0:-1], x[::-1][:k - 1]
    window = np.kaiser(k, SMOOTH_BETA)
    smoothed = np.convolve(window / window.sum(), np.concatenate([left, x, right]), mode="valid")
    half = k // 2
    return smoothed[half:len(smoothed) - half]


def shuffle_dataset(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x and t reordered by one np.random.permutation of the examples."""
    x, t = np.asarray(x), np.asarray(t)
    if len(t) != x.shape[0]:
        raise ValueError(f"shuffle_dataset: x has {x.shape[0]} examples but t has {len(t)}")
    permutation = np.random.permutation(x.shape[0])
    return x[permutation], t[permutation]


def conv_output_size(input_size: int, filter_size: int, stride: int = 1, pad: int = 0) -> float:
    """(input_size + 2 pad - filter_size) / stride + 1, a float as in the book."""
    return (input_size + 2 * pad - filter_size) / stride + 1


def im2col(input_data: np.ndarray, filter_h: int, filter_w: int, stride: int = 1, pad: int = 0) -> np.ndarray:
    """(N, C, H, W) -> (N*OH*OW, C*filter_h*filter_w); padding is zeros."""
    return im2col_array(np.asarray(input_data), filter_h, filter_w, stride, pad)


def col2im(
    col: np.ndarray, input_shape: tuple[int, ...], filter_h: int, filter_w: int, stride: int = 1, pad: int = 0
) -> np.ndarray:
    """The adjoint of im2col: (N*OH*OW, C*filter_h*filter_w) -> float64 input_shape, overlaps summed."""
    return col2im_array(np.asarray(col), input_shape, filter_h, filter_w, stride, pad)
