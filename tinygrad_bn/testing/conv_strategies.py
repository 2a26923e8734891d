"""Hypothesis strategies of convolution, pooling and group-norm arguments (the kernels' `strategy`).

Shapes stay small (a few dozen input elements): the registry's checks run
gradcheck and gradgradcheck over every input element of every drawn example.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from tinygrad_bn.testing.strategies import arrays


def _fitting_size(draw: Any, span: int, lo: int, hi: int, extra: int = 2) -> int:
    """An input size the dilated kernel (span) fits once padded by lo + hi."""
    smallest = max(1, span - lo - hi)
    return draw(st.integers(smallest, smallest + extra))


@st.composite
def _conv_args(draw: Any, dtype: str, nd: int) -> list[Any]:
    groups = draw(st.sampled_from([1, 1, 2]))
    per_group_in = draw(st.integers(1, 2)) if groups == 1 else 1
    per_group_out = draw(st.integers(1, 2))
    channels, filters = groups * per_group_in, groups * per_group_out
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    choices = [st.integers(0, 2), st.just("valid")] + ([st.just("same")] if set(stride) == {1} else [])
    padding = draw(st.one_of(*choices))
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    if padding == "same":
        pads = [((s - 1) // 2, s - 1 - (s - 1) // 2) for s in spans]
    else:
        p = 0 if padding == "valid" else padding
        pads = [(p, p)] * nd
    size = tuple(_fitting_size(draw, s, lo, hi) for s, (lo, hi) in zip(spans, pads))
    n = draw(st.integers(1, 2))
    x = draw(arrays((n, channels, *size), dtype))
    w = draw(arrays((filters, per_group_in, *kernel), dtype))
    b = draw(arrays((filters,), dtype))
    unpack = (lambda t: t[0]) if nd == 1 else (lambda t: t)
    return [x, w, b, unpack(stride), padding, unpack(dilation), groups]


def conv_args(dtype: str = "float64", nd: int = 2) -> st.SearchStrategy:
    """[x, weight, bias, stride, padding, dilation, groups] of a 1-d or 2-d convolution."""
    return _conv_args(dtype, nd)


@st.composite
def _window(draw: Any, pad_limit: Any = None, with_dilation: bool = True) -> dict[str, Any]:
    """kernel_size, dilation, padding and stride (pairs) with an input size they fit."""
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if with_dilation else (1, 1)
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    limit = pad_limit or (lambda k, d: 1)
    padding = tuple(draw(st.integers(0, limit(k, d))) for k, d in zip(kernel, dilation))
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    size = tuple(_fitting_size(draw, s, p, p) for s, p in zip(spans, padding))
    return {"kernel": kernel, "dilation": dilation, "stride": stride, "padding": padding, "size": size}


def _out(size: int, kernel: int, dilation: int, padding: int, stride: int) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


@st.composite
def _unfold_args(draw: Any, dtype: str) -> list[Any]:
    win = draw(_window())
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    x = draw(arrays((n, c, *win["size"]), dtype))
    return [x, win["kernel"], win["dilation"], win["padding"], win["stride"]]


def unfold_args(dtype: str = "float64") -> st.SearchStrategy:
    """[x, kernel_size, dilation, padding, stride] of unfold."""
    return _unfold_args(dtype)


@st.composite
def _fold_args(draw: Any, dtype: str) -> list[Any]:
    win = draw(_window())
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    length = int(np.prod([_out(*args) for args in zip(win["size"], win["kernel"], win["dilation"],
                                                       win["padding"], win["stride"])]))
    cols = draw(arrays((n, c * win["kernel"][0] * win["kernel"][1], length), dtype))
    return [cols, win["size"], win["kernel"], win["dilation"], win["padding"], win["stride"]]


def fold_args(dtype: str = "float64") -> st.SearchStrategy:
    """[columns, output_size, kernel_size, dilation, padding, stride] of fold."""
    return _fold_args(dtype)


@st.composite
def _distinct_images(draw: Any, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """Values 0.1 apart in a drawn order: no two elements of a window tie, even after a nudge of h."""
    size = int(np.prod(shape))
    order = draw(st.permutations(range(size)))
    offset = draw(st.sampled_from([0.0, -1.0, 3.0]))
    return (np.asarray(order, dtype=np.float64).reshape(shape) * 0.1 + offset).astype(dtype)


def _every_window_has_input(win: dict[str, Any]) -> bool:
    for size, k, d, p, s in zip(win["size"], win["kernel"], win["dilation"], win["padding"], win["stride"]):
        for start in range(-p, size + p - d * (k - 1), s):
            if not any(0 <= start + i * d < size for i in range(k)):
                return False
    return True


@st.composite
def _max_pool_args(draw: Any, dtype: str) -> list[Any]:
    # Windows holding no input element (-inf, see functional/pool.py) are tested on their own.
    win = draw(_window(pad_limit=lambda k, d: k // 2).filter(_every_window_has_input))
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    x = draw(_distinct_images((n, c, *win["size"]), dtype))
    return [x, win["kernel"], win["stride"], win["padding"], win["dilation"], draw(st.booleans())]


def max_pool_args(dtype: str = "float64") -> st.SearchStrategy:
    """[x, kernel_size, stride, padding, dilation, ceil_mode] of max_pool2d, values without ties."""
    return _max_pool_args(dtype)


@st.composite
def _avg_pool_args(draw: Any, dtype: str) -> list[Any]:
    win = draw(_window(pad_limit=lambda k, d: k // 2, with_dilation=False))
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    x = draw(arrays((n, c, *win["size"]), dtype))
    return [x, win["kernel"], win["stride"], win["padding"], draw(st.booleans()), draw(st.booleans())]


def avg_pool_args(dtype: str = "float64") -> st.SearchStrategy:
    """[x, kernel_size, stride, padding, ceil_mode, count_include_pad] of avg_pool2d."""
    return _avg_pool_args(dtype)


@st.composite
def _adaptive_avg_pool_args(draw: Any, dtype: str) -> list[Any]:
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    out = (draw(st.integers(1, h + 1)), draw(st.integers(1, w + 1)))
    return [draw(arrays((n, c, h, w), dtype)), out]


def adaptive_avg_pool_args(dtype: str = "float64") -> st.SearchStrategy:
    """[x, output_size] of adaptive_avg_pool2d (outputs up to one larger than the input)."""
    return _adaptive_avg_pool_args(dtype)


@st.composite
def _group_norm_args(draw: Any, dtype: str, instance: bool) -> list[Any]:
    n = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    channels = groups if instance else groups * draw(st.integers(1, 2))
    # float32: at least 4 values per group (with 2, xhat = +-1 and dx is rounding noise).
    choices = [(4,), (2, 2), (2, 3)] if dtype == "float32" else [(2,), (3,), (2, 2)]
    if not instance and dtype != "float32":
        choices = choices + [()]
    spatial = draw(st.sampled_from(choices))
    if n * (channels // groups) * int(np.prod(spatial)) == 1:
        n = 2  # one value per group in one example: refused, as PyTorch does
    shape = (n, channels, *spatial)
    scale, offset = draw(st.sampled_from([0.1, 1.0, 10.0])), draw(st.sampled_from([0.0, 2.0, -5.0]))
    x = draw(arrays(shape, "float64", -2.0, 2.0)) * scale + offset
    grouped = x.reshape(n, groups, -1)
    spread = grouped.std(axis=2)
    # A (nearly) constant group normalises rounding noise (see strategies.norm_kernel_args): spread it.
    if np.any(spread <= 1e-2 * np.maximum(np.abs(grouped).max(axis=2), 1e-3)):
        x = x + np.linspace(-1.0, 1.0, x.size).reshape(shape) * max(scale, 1.0)
    w = draw(arrays((channels,), dtype, -2.0, 2.0))
    b = draw(arrays((channels,), dtype, -2.0, 2.0))
    eps = draw(st.sampled_from([1e-5, 1e-3, 0.1]))
    return [x.astype(dtype), w, b, eps] if instance else [x.astype(dtype), w, b, groups, eps]


def group_norm_args(dtype: str = "float64", instance: bool = False) -> st.SearchStrategy:
    """[x, weight, bias, num_groups, eps] of group_norm ([x, weight, bias, eps] for instance_norm)."""
    return _group_norm_args(dtype, instance)
