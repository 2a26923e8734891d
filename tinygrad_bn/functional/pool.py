"""Pooling with PyTorch's signatures: max_pool2d, avg_pool2d and adaptive_avg_pool2d.

Each pools the last two dims of (N, C, H, W) or unbatched (C, H, W) input, every
(n, c) plane on its own. Output sizes follow PyTorch: with span d(k - 1) + 1,
OH = (H + 2p - span) // s + 1, rounded up instead with ceil_mode, except that
a last window starting beyond the input's right padding is dropped; padding at
most half the kernel size.

Max pooling picks, in each window, the element PyTorch's CPU kernel picks: it
scans the window's input elements row by row, starting from the first one, and
moves to an element that is strictly greater, or NaN. Ties go to the first
maximum in scan order, a NaN beats everything (the last NaN wins), padding is
never chosen (a window of -inf values picks its first input element), and the
gradient goes to the chosen element only. The choice is data, not
differentiated; the composed op is one `getitem` of the chosen elements, whose
backward scatters the gradient back.

Average pooling divides each window's sum by its size: counting the zero
padding inside the padded input (count_include_pad=True) or only input
elements; ceil_mode's overhang beyond the padding never counts. Composed:
windows gathered as in convolution, summed, scaled. Adaptive average pooling
averages window o of [floor(o S / O), ceil((o + 1) S / O)) along each axis: two
products with constant averaging matrices, A_h @ x @ A_wᵀ.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from tinygrad_bn import ops
from tinygrad_bn.autograd.grad_mode import composite
from tinygrad_bn.functional.conv import (
    Window,
    check_float_input,
    int_tuple,
    pad_zeros,
    window_rows,
)
from tinygrad_bn.kernel_registry import check_impl, fused_kernel
from tinygrad_bn.tensor import Tensor

IMAGES = "(N, C, H, W) or unbatched (C, H, W)"

# ---------------------------------------------------------------- geometry


def pooled_length(op: str, size: int, kernel: int, stride: int, pad: int, dilation: int,
                  ceil_mode: bool) -> int:
    """PyTorch's pooling output size along one axis (an error when no window fits)."""
    span = dilation * (kernel - 1) + 1
    room = size + 2 * pad - span
    if room < 0:
        dilated = f" dilated by {dilation} spans {span}" if dilation > 1 else ""
        raise ValueError(f"{op}: kernel size {kernel}{dilated}, larger than the padded input size "
                         f"{size + 2 * pad} (input {size} + padding {pad} on each side)")
    out = (room + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1  # the last window would start in the right padding
    return out


def pool_window(op: str, size: tuple[int, int], kernel_size: Any, stride: Any, padding: Any,
                dilation: Any, ceil_mode: bool) -> Window:
    """Validate pooling arguments and return the Window; pads cover ceil_mode's overhang."""
    kernel = int_tuple(op, "kernel_size", kernel_size, 2, 1)
    no_stride = stride is None or (isinstance(stride, tuple | list) and len(stride) == 0)
    stride_t = kernel if no_stride else int_tuple(op, "stride", stride, 2, 1)
    pad = int_tuple(op, "padding", padding, 2, 0)
    dilation_t = int_tuple(op, "dilation", dilation, 2, 1)
    spans = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation_t))
    limits = tuple(k // 2 for k in kernel)
    if any(p > m for p, m in zip(pad, limits)):
        raise ValueError(f"{op}: padding {pad} must be at most half of kernel_size {kernel}, "
                         f"i.e. at most {limits}")
    out = tuple(pooled_length(op, s, k, st, p, d, ceil_mode)
                for s, k, st, p, d in zip(size, kernel, stride_t, pad, dilation_t))
    # After the input and the left padding, what the last window still needs (>= 0).
    tail = tuple(max(0, (o - 1) * st + sp - s - p)
                 for o, st, sp, s, p in zip(out, stride_t, spans, size, pad))
    return Window(tuple(size), kernel, stride_t, dilation_t, (pad[0], tail[0], pad[1], tail[1]), out)


def _planes(x: Tensor) -> tuple[int, tuple[int, ...]]:
    """(number of (H, W) planes, the leading dims)."""
    lead = tuple(x.shape[:-2])
    return int(np.prod(lead, dtype=np.int64)), lead


# ---------------------------------------------------------------- max pooling: the choice


def _first_steps(window: Window, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output position along `axis`: the first kernel step inside the input, and whether it is."""
    start = np.arange(window.out[axis]) * window.stride[axis] - window.pads[2 * axis]
    d = window.dilation[axis]
    step = np.where(start < 0, (-start + d - 1) // d, 0)
    inside = (step < window.kernel[axis]) & (start + step * d < window.size[axis])
    return step, inside


@lru_cache(maxsize=128)
def first_input_element(window: Window) -> np.ndarray:
    """(OH, OW): the scan position (i * kw + j) of each window's first element inside the input.

    A window can hold no input element at all (dilation stepping over a small
    input): PyTorch gives it -inf and no gradient; its "first element" is then
    where the next one would be, outside the input, as PyTorch's index is.
    """
    (rows, _), (cols, _) = _first_steps(window, 0), _first_steps(window, 1)
    first = rows[:, None] * window.kernel[1] + cols[None, :]
    first.setflags(write=False)
    return first


@lru_cache(maxsize=128)
def empty_windows(window: Window) -> np.ndarray | None:
    """(OH, OW) mask of the windows holding no input element, or None when there are none."""
    (_, rows), (_, cols) = _first_steps(window, 0), _first_steps(window, 1)
    empty = ~(rows[:, None] & cols[None, :])
    if not empty.any():
        return None
    empty.setflags(write=False)
    return empty


def scan_max(candidates: Sequence[np.ndarray], first: np.ndarray, shape: tuple[int, ...],
             dtype: np.dtype, has_nan: bool) -> tuple[np.ndarray, np.ndarray]:
    """(max, scan position chosen) of candidates given in scan order, by PyTorch's max-pool rule.

    Padding holds -inf. The rule "replace when strictly greater, or NaN" picks
    the first maximum, or the last NaN, or, in a window whose input is all -inf
    (or that holds no input), its first input element (`first`). Computed as:
    the maximum, then the first position equal to it (scanning backwards, each
    match overwrites), then those two exceptions. Branch-free arithmetic only:
    with a mask of random bits, np.where and masked copies were measured 5x and
    10x slower than `chosen -= match * (chosen - k)`.
    """
    best = np.full(shape, -np.inf, dtype=dtype)
    for values in candidates:
        np.maximum(best, values, out=best)
    chosen = np.empty(shape, dtype=np.int32)
    chosen[...] = first
    for k in range(len(candidates) - 1, -1, -1):
        chosen -= (candidates[k] == best) * (chosen - np.int32(k))
    minus_inf = best == -np.inf
    if minus_inf.any():  # padding equals -inf too: the first input element wins instead
        chosen = np.where(minus_inf, first, chosen)
    if has_nan:
        for k, values in enumerate(candidates):
            chosen -= np.isnan(values) * (chosen - np.int32(k))
    return best, chosen


def input_index(chosen: np.ndarray, window: Window) -> np.ndarray:
    """Flat (H*W) input positions of the scan positions chosen, `chosen` shaped (..., OH, OW)."""
    (sh, sw), (dh, dw), (oh, ow) = window.stride, window.dilation, window.out
    i, j = np.divmod(chosen, window.kernel[1])
    h = (np.arange(oh) * sh - window.pads[0])[:, None] + i * dh
    w = (np.arange(ow) * sw - window.pads[2])[None, :] + j * dw
    return (h * window.size[1] + w).astype(np.int64)


# ---------------------------------------------------------------- max_pool2d


@composite("max_pool2d")
def max_pool2d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False, return_indices: bool = False, *, impl: str = "fused") -> Any:
    """Max over each window of (N, C, H, W) input; with return_indices, also each max's flat H*W index."""
    op = "max_pool2d"
    check_impl(op, impl)
    check_float_input(op, input, (3, 4), IMAGES)
    window = pool_window(op, input.shape[-2:], kernel_size, stride, padding, dilation, ceil_mode)
    if impl == "fused":
        info: dict[str, np.ndarray] = {}
        out = fused_kernel(op).apply(input, window=window, info=info if return_indices else None)
        indices = info.get("indices")
    else:
        out, indices = _max_pool2d_composed(input, window)
    if not return_indices:
        return out
    return out, Tensor._wrap(indices, False, None)


def _max_pool2d_composed(x: Tensor, window: Window) -> tuple[Tensor, np.ndarray]:
    """Windows gathered (numpy) to choose each max; the op recorded is one getitem of the chosen."""
    planes, lead = _planes(x)
    h, w = window.size
    oh, ow = window.out
    xd = x.data.reshape(planes, h, w)
    padded = np.full((planes,) + window.padded, -np.inf, dtype=xd.dtype)
    top, left = window.pads[0], window.pads[2]
    padded[:, top:top + h, left:left + w] = xd
    windows = padded.reshape(planes, -1).T[window_rows(1, window)]  # (kh*kw, OH*OW, planes)
    first = first_input_element(window).reshape(oh * ow, 1)
    _, chosen = scan_max(windows, first, (oh * ow, planes), xd.dtype, bool(np.isnan(xd).any()))
    flat = input_index(chosen.T.reshape(planes, oh, ow), window)  # (planes, OH, OW)
    empty = empty_windows(window)
    inside = flat if empty is None else np.where(empty, 0, flat)  # an empty window reads element 0 ...
    picked = ops.GetItem.apply(x.reshape(planes, h * w),
                               index=(np.arange(planes)[:, None], inside.reshape(planes, oh * ow)))
    picked = picked.reshape(*lead, oh, ow)
    if empty is not None:  # ... and shows -inf instead, passing no gradient back
        minus_inf = Tensor._wrap(np.array(-np.inf, dtype=x.dtype), False, None)
        picked = ops.Where.apply(Tensor._wrap(~empty, False, None), picked, minus_inf)
    return picked, flat.reshape(*lead, oh, ow)


# ---------------------------------------------------------------- avg_pool2d


def avg_divisor(window: Window, count_include_pad: bool, divisor_override: Any) -> np.ndarray:
    """(OH, OW): what each window's sum is divided by (PyTorch's rule)."""
    if divisor_override is not None:
        return np.full(window.out, float(divisor_override))
    sizes = []
    for axis, pad in ((0, window.pads[0]), (1, window.pads[2])):
        start = np.arange(window.out[axis]) * window.stride[axis] - pad
        end = np.minimum(start + window.kernel[axis], window.size[axis] + pad)  # padding counts, overhang not
        inside = np.minimum(end, window.size[axis]) - np.maximum(start, 0)
        sizes.append(end - start if count_include_pad else inside)
    return (sizes[0][:, None] * sizes[1][None, :]).astype(np.float64)


@composite("avg_pool2d")
def avg_pool2d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None, *,
               impl: str = "fused") -> Tensor:
    """Mean over each window of (N, C, H, W) input (PyTorch's divisor rules)."""
    op = "avg_pool2d"
    check_impl(op, impl)
    check_float_input(op, input, (3, 4), IMAGES)
    if divisor_override is not None and (isinstance(divisor_override, bool) or
                                         not isinstance(divisor_override, int | np.integer)
                                         or divisor_override < 1):
        raise ValueError(f"{op}: divisor_override must be a positive int or None, got {divisor_override!r}")
    window = pool_window(op, input.shape[-2:], kernel_size, stride, padding, 1, ceil_mode)
    scale = (1.0 / avg_divisor(window, bool(count_include_pad), divisor_override)).astype(input.dtype)
    if impl == "fused":
        return fused_kernel(op).apply(input, window=window, scale=scale)
    planes, lead = _planes(input)
    hp, wp = window.padded
    padded = pad_zeros(input.reshape(planes, *window.size), window.pads)
    windows = ops.GetItem.apply(padded.reshape(planes, hp * wp).permute(1, 0), index=window_rows(1, window))
    means = windows.sum(axis=0) * Tensor._wrap(scale.reshape(-1, 1), False, None)  # (OH*OW, planes)
    return means.permute(1, 0).reshape(*lead, *window.out)


# ---------------------------------------------------------------- adaptive_avg_pool2d


@lru_cache(maxsize=128)
def averaging_matrix(size: int, out: int) -> np.ndarray:
    """(out, size): row o averages the inputs [floor(o size / out), ceil((o + 1) size / out))."""
    matrix = np.zeros((out, size))
    for o in range(out):
        start, end = (o * size) // out, -((-(o + 1) * size) // out)
        matrix[o, start:end] = 1.0 / (end - start)
    matrix.setflags(write=False)
    return matrix


def adaptive_output_size(op: str, size: tuple[int, int], output_size: Any) -> tuple[int, int]:
    """output_size as (OH, OW): an int, or a pair whose None entries keep the input's size."""
    pair = (output_size, output_size) if not isinstance(output_size, tuple | list) else tuple(output_size)
    if len(pair) != 2:
        raise ValueError(f"{op}: output_size must be an int or a pair, got {output_size!r}")
    pair = tuple(s if o is None else o for o, s in zip(pair, size))
    return int_tuple(op, "output_size", pair, 2, 1)


@composite("adaptive_avg_pool2d")
def adaptive_avg_pool2d(input: Tensor, output_size: Any, *, impl: str = "fused") -> Tensor:
    """Average (N, C, H, W) input down to output_size (OH, OW) with PyTorch's adaptive windows."""
    op = "adaptive_avg_pool2d"
    check_impl(op, impl)
    check_float_input(op, input, (3, 4), IMAGES)
    (h, w), (oh, ow) = input.shape[-2:], adaptive_output_size(op, input.shape[-2:], output_size)
    rows = averaging_matrix(h, oh).astype(input.dtype)
    cols = averaging_matrix(w, ow).astype(input.dtype)
    if impl == "fused":
        return fused_kernel(op).apply(input, rows=rows, cols=cols)
    return (Tensor._wrap(rows, False, None) @ input) @ Tensor._wrap(np.ascontiguousarray(cols.T), False, None)
