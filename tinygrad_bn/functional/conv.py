"""Convolution with PyTorch's signatures: conv1d, conv2d, unfold (im2col) and fold (col2im).

Composed (`impl="composed"`): the (padded) input is permuted to rows, one row
per position (C, H, W), holding that position for every example, shape
(C*H*W, N). One integer-array `getitem` gathers the rows every window touches,
giving columns of shape (C*kh*kw, OH*OW, N), and one `matmul` applies the
filters. Autograd derives the backward: the adjoint of the gather is the
overlapping scatter-add (col2im) and the adjoint of the matmul two matmuls.
With the batch innermost the columns come out contiguous and the whole layer is
a single (F, K) @ (K, OH*OW*N) product, one BLAS call rather than N small ones.

Fused (`impl="fused"`, the default): kernels/conv.py's ConvFused, the same
maths on strided views with a hand-written col2im (derivation in its docstring
and docs/convolution.md).

The window geometry (`Window`) is shared with pooling and with the kernels.
Rows of an unfolded window are ordered (channel, kernel row, kernel column),
PyTorch's unfold layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from tinygrad_bn import ops
from tinygrad_bn.autograd.grad_mode import composite
from tinygrad_bn.kernel_registry import check_impl, fused_kernel
from tinygrad_bn.tensor import DIFFERENTIABLE_DTYPES, Tensor

# ---------------------------------------------------------------- window geometry


@dataclass(frozen=True)
class Window:
    """A sliding window over the last two dims of an input: where it goes and what comes out.

    `pads` = (top, bottom, left, right) values added around the input (zeros for
    convolution; for pooling with ceil_mode, bottom/right also cover the last
    window's overhang), so every window lies inside the padded input.
    """

    size: tuple[int, int]  # (H, W) of the input
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pads: tuple[int, int, int, int]
    out: tuple[int, int]  # (OH, OW)

    @property
    def padded(self) -> tuple[int, int]:
        """(H, W) of the padded input."""
        top, bottom, left, right = self.pads
        return self.size[0] + top + bottom, self.size[1] + left + right

    @property
    def count(self) -> int:
        """Elements per window (kh * kw)."""
        return self.kernel[0] * self.kernel[1]

    def offsets(self, i: int, j: int) -> tuple[slice, slice]:
        """The slices of the padded input that kernel element (i, j) sees, one per output position."""
        (dh, dw), (sh, sw), (oh, ow) = self.dilation, self.stride, self.out
        return (slice(i * dh, i * dh + sh * (oh - 1) + 1, sh), slice(j * dw, j * dw + sw * (ow - 1) + 1, sw))

    def positions(self) -> list[tuple[int, int]]:
        """Kernel elements (i, j) in scan order (row-major), the order of unfold's rows."""
        return [(i, j) for i in range(self.kernel[0]) for j in range(self.kernel[1])]


@lru_cache(maxsize=256)
def window_rows(channels: int, window: Window) -> np.ndarray:
    """Flat positions in the padded (C, Hp, Wp) input of every window element: (C*kh*kw, OH*OW).

    Row (c, i, j), column (oh, ow) holds the position kernel element (i, j) of
    channel c covers at output position (oh, ow). Read-only (it is cached).
    """
    (kh, kw), (dh, dw), (sh, sw), (oh, ow) = window.kernel, window.dilation, window.stride, window.out
    hp, wp = window.padded
    rows = np.arange(kh)[:, None] * dh + np.arange(oh)[None, :] * sh  # (kh, OH)
    cols = np.arange(kw)[:, None] * dw + np.arange(ow)[None, :] * sw  # (kw, OW)
    within = rows[:, None, :, None] * wp + cols[None, :, None, :]  # (kh, kw, OH, OW)
    index = (np.arange(channels) * (hp * wp))[:, None, None, None, None] + within[None]
    index = np.ascontiguousarray(index.reshape(channels * kh * kw, oh * ow), dtype=np.intp)
    index.setflags(write=False)
    return index


# ---------------------------------------------------------------- argument checks


def int_tuple(op: str, name: str, value: Any, n: int, minimum: int) -> tuple[int, ...]:
    """An int or a sequence of `n` ints, each >= minimum, as a tuple of n ints."""
    items = (value,) * n if isinstance(value, int | np.integer) and not isinstance(value, bool) else value
    ok = isinstance(items, tuple | list) and len(items) == n and all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= minimum for v in items)
    if not ok:
        kind = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{op}: {name} must be a {kind} int or a tuple of {n} {kind} ints, got {value!r}")
    return tuple(int(v) for v in items)


def check_float_input(op: str, x: Any, ranks: tuple[int, ...], layout: str) -> None:
    """x is a float32/float64 Tensor with one of `ranks` dims (`layout` names them for the error)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(x).__name__}")
    if x.ndim not in ranks:
        raise ValueError(f"{op}: expected input of {' or '.join(map(str, ranks))} dims ({layout}), "
                         f"got shape {x.shape}")
    if x.dtype not in DIFFERENTIABLE_DTYPES:
        raise TypeError(f"{op}: input must be float32 or float64, got dtype {x.dtype}")


def output_length(op: str, size: int, kernel: int, stride: int, dilation: int, lo: int, hi: int) -> int:
    """Window positions along one axis; an error when the dilated kernel exceeds the padded axis."""
    span = dilation * (kernel - 1) + 1
    if size + lo + hi < span:
        dilated = f" dilated by {dilation} spans {span}" if dilation > 1 else ""
        raise ValueError(f"{op}: kernel size {kernel}{dilated}, larger than the padded input size "
                         f"{size + lo + hi} (input {size} + padding {lo} + {hi})")
    return (size + lo + hi - span) // stride + 1


def _conv_padding(op: str, padding: Any, kernel: tuple[int, ...], dilation: tuple[int, ...],
                  stride: tuple[int, ...]) -> list[tuple[int, int]]:
    """(lo, hi) per spatial dim from an int, a tuple, 'valid' or 'same' (PyTorch's rule)."""
    n = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * n
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{op}: padding='same' needs stride 1, got stride={stride}")
            # PyTorch: half the total on each side, the odd one out at the end.
            totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
            return [(t // 2, t - t // 2) for t in totals]
        raise ValueError(f"{op}: padding must be 'same', 'valid', an int or a tuple of {n} ints, "
                         f"got {padding!r}")
    return [(p, p) for p in int_tuple(op, "padding", padding, n, 0)]


def conv_window(op: str, x: Tensor, weight: Any, bias: Any, stride: Any, padding: Any, dilation: Any,
                groups: Any, nd: int) -> Window:
    """Validate a convolution's arguments (x batched, nd spatial dims) and return its Window."""
    names = "(N, C, L)" if nd == 1 else "(N, C, H, W)"
    if not isinstance(weight, Tensor):
        raise TypeError(f"{op}: weight must be a Tensor, got {type(weight).__name__}")
    if weight.ndim != nd + 2:
        layout = "(out_channels, in_channels / groups, kernel_size)" if nd == 1 else \
            "(out_channels, in_channels / groups, kH, kW)"
        raise ValueError(f"{op}: weight must have {nd + 2} dims {layout}, got shape {weight.shape}")
    if weight.dtype != x.dtype:
        raise TypeError(f"{op}: input has dtype {x.dtype} and weight {weight.dtype}; they must match. "
                        "Convert one (x.float() / x.double(), or layer.float() / layer.double())")
    if isinstance(groups, bool) or not isinstance(groups, int | np.integer) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    channels, filters = x.shape[1], weight.shape[0]
    if channels % groups:
        raise ValueError(f"{op}: groups={groups} must divide the input's {channels} channels "
                         f"(input of shape {x.shape} {names})")
    if filters % groups:
        raise ValueError(f"{op}: groups={groups} must divide out_channels, but weight of shape "
                         f"{weight.shape} has {filters} filters")
    if weight.shape[1] * groups != channels:
        raise ValueError(
            f"{op}: weight of shape {weight.shape} expects {weight.shape[1] * groups} input channels "
            f"({weight.shape[1]} per group x groups={groups}), but input of shape {x.shape} has {channels}")
    if bias is not None:
        if not isinstance(bias, Tensor):
            raise TypeError(f"{op}: bias must be a Tensor or None, got {type(bias).__name__}")
        if bias.shape != (filters,):
            raise ValueError(f"{op}: bias has shape {bias.shape}, expected ({filters},) (one per filter)")
        if bias.dtype != x.dtype:
            raise TypeError(f"{op}: bias has dtype {bias.dtype} but input has dtype {x.dtype}; "
                            "they must match")
    kernel = tuple(weight.shape[2:])
    stride_t = int_tuple(op, "stride", stride, nd, 1)
    dilation_t = int_tuple(op, "dilation", dilation, nd, 1)
    pads = _conv_padding(op, padding, kernel, dilation_t, stride_t)
    size = tuple(x.shape[2:])
    if nd == 1:  # a 1-d convolution is a 2-d one over an image of height 1
        size, kernel, stride_t, dilation_t, pads = ((1,) + size, (1,) + kernel, (1,) + stride_t,
                                                    (1,) + dilation_t, [(0, 0)] + pads)
    out = tuple(output_length(op, s, k, st, d, lo, hi)
                for s, k, st, d, (lo, hi) in zip(size, kernel, stride_t, dilation_t, pads))
    return Window(size, kernel, stride_t, dilation_t, pads[0] + pads[1], out)


def _batched(x: Tensor, ndim: int) -> tuple[Tensor, bool]:
    """x with a batch dim of 1 added when it has none (PyTorch accepts unbatched input)."""
    return (x.unsqueeze(0), True) if x.ndim == ndim - 1 else (x, False)


# ---------------------------------------------------------------- composed building blocks


def pad_zeros(x: Tensor, pads: tuple[int, int, int, int]) -> Tensor:
    """x (..., H, W) with zeros added (top, bottom, left, right): a scatter into a zero tensor."""
    top, bottom, left, right = pads
    if not any(pads):
        return x
    shape = x.shape[:-2] + (x.shape[-2] + top + bottom, x.shape[-1] + left + right)
    place = (Ellipsis, slice(top, top + x.shape[-2]), slice(left, left + x.shape[-1]))
    return ops.ScatterAdd.apply(x, index=place, shape=shape)


def gather_windows(xp: Tensor, window: Window) -> Tensor:
    """Every window of a padded (N, C, Hp, Wp) input as columns (C*kh*kw, OH*OW, N), batch innermost."""
    n, c, hp, wp = xp.shape
    rows = xp.permute(1, 2, 3, 0).reshape(c * hp * wp, n)
    return ops.GetItem.apply(rows, index=window_rows(c, window))


def scatter_windows(cols: Tensor, window: Window, channels: int) -> Tensor:
    """gather_windows' adjoint: columns (C*kh*kw, OH*OW, N) added back into a padded (N, C, Hp, Wp)."""
    hp, wp = window.padded
    n = cols.shape[2]
    rows = ops.ScatterAdd.apply(cols, index=window_rows(channels, window), shape=(channels * hp * wp, n))
    return rows.reshape(channels, hp, wp, n).permute(3, 0, 1, 2)


def crop(xp: Tensor, window: Window) -> Tensor:
    """The input region of a padded (..., Hp, Wp) tensor."""
    top, _, left, _ = window.pads
    if not any(window.pads):
        return xp
    h, w = window.size
    return ops.GetItem.apply(xp, index=(Ellipsis, slice(top, top + h), slice(left, left + w)))


def conv2d_composed(x: Tensor, weight: Tensor, bias: Tensor | None, window: Window, groups: int) -> Tensor:
    """Convolution of batched x (N, C, H, W) with weight (F, C/groups, kh, kw), from primitives only."""
    n, c = x.shape[:2]
    f = weight.shape[0]
    (oh, ow), k = window.out, c * window.count
    cols = gather_windows(pad_zeros(x, window.pads), window)  # (K, L, N)
    if groups == 1:
        out = weight.reshape(f, k) @ cols.reshape(k, oh * ow * n)  # one (F, K) @ (K, L*N) product
    else:  # block-diagonal: group g's filters see only group g's channels
        out = (weight.reshape(groups, f // groups, k // groups)
               @ cols.reshape(groups, k // groups, oh * ow * n))
    out = out.reshape(f, oh, ow, n).permute(3, 0, 1, 2)
    return out if bias is None else out + bias.reshape(1, f, 1, 1)


# ---------------------------------------------------------------- public ops


@composite("conv2d")
def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1, *, impl: str = "fused") -> Tensor:
    """2-d cross-correlation of (N, C, H, W) or unbatched (C, H, W) input with (F, C/groups, kH, kW) filters.

    PyTorch's semantics: stride, padding (int, pair, 'valid' or 'same'), dilation
    and groups; output (N, F, OH, OW) with OH = (H + 2p - d(kH - 1) - 1) // s + 1.
    """
    check_impl("conv2d", impl)
    check_float_input("conv2d", input, (3, 4), "(N, C, H, W) or unbatched (C, H, W)")
    x, unbatched = _batched(input, 4)
    window = conv_window("conv2d", x, weight, bias, stride, padding, dilation, groups, 2)
    if impl == "fused":
        args = (x, weight) if bias is None else (x, weight, bias)
        out = fused_kernel("conv2d").apply(*args, window=window, groups=int(groups))
    else:
        out = conv2d_composed(x, weight, bias, window, int(groups))
    return out.squeeze(0) if unbatched else out


@composite("conv1d")
def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1, *, impl: str = "fused") -> Tensor:
    """1-d cross-correlation of (N, C, L) (or unbatched (C, L)) input with (F, C/groups, k) filters."""
    check_impl("conv1d", impl)
    check_float_input("conv1d", input, (2, 3), "(N, C, L) or unbatched (C, L)")
    x, unbatched = _batched(input, 3)
    window = conv_window("conv1d", x, weight, bias, stride, padding, dilation, groups, 1)
    if impl == "fused":  # the kernel takes 1-d input as it is
        args = (x, weight) if bias is None else (x, weight, bias)
        out = fused_kernel("conv1d").apply(*args, window=window, groups=int(groups))
    else:
        n, c, length = x.shape
        f, cg, k = weight.shape
        out = conv2d_composed(x.reshape(n, c, 1, length), weight.reshape(f, cg, 1, k),
                              bias, window, int(groups))
        out = out.reshape(n, f, window.out[1])
    return out.squeeze(0) if unbatched else out


def unfold_window(op: str, size: tuple[int, int], kernel_size: Any, dilation: Any, padding: Any,
                  stride: Any) -> Window:
    """The Window of unfold/fold's arguments (symmetric padding) over an input of `size` (H, W)."""
    kernel = int_tuple(op, "kernel_size", kernel_size, 2, 1)
    dilation_t = int_tuple(op, "dilation", dilation, 2, 1)
    pad = int_tuple(op, "padding", padding, 2, 0)
    stride_t = int_tuple(op, "stride", stride, 2, 1)
    out = tuple(output_length(op, s, k, st, d, p, p)
                for s, k, st, d, p in zip(size, kernel, stride_t, dilation_t, pad))
    return Window(tuple(size), kernel, stride_t, dilation_t, (pad[0], pad[0], pad[1], pad[1]), out)


@composite("unfold")
def unfold(input: Tensor, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1, *,
           impl: str = "fused") -> Tensor:
    """im2col: every kernel_size window of (N, C, H, W) input as a column, (N, C*kH*kW, L)."""
    check_impl("unfold", impl)
    check_float_input("unfold", input, (3, 4), "(N, C, H, W) or unbatched (C, H, W)")
    x, unbatched = _batched(input, 4)
    window = unfold_window("unfold", x.shape[2:], kernel_size, dilation, padding, stride)
    if impl == "fused":
        out = fused_kernel("unfold").apply(x, window=window)
    else:
        out = gather_windows(pad_zeros(x, window.pads), window).permute(2, 0, 1)
    return out.squeeze(0) if unbatched else out


@composite("fold")
def fold(input: Tensor, output_size: Any, kernel_size: Any, dilation: Any = 1, padding: Any = 0,
         stride: Any = 1, *, impl: str = "fused") -> Tensor:
    """col2im, unfold's adjoint: columns (N, C*kH*kW, L) summed back into (N, C, H, W); overlaps add."""
    op = "fold"
    check_impl(op, impl)
    check_float_input(op, input, (2, 3), "(N, C*kH*kW, L) or unbatched (C*kH*kW, L)")
    cols, unbatched = _batched(input, 3)
    size = int_tuple(op, "output_size", output_size, 2, 1)
    window = unfold_window(op, size, kernel_size, dilation, padding, stride)
    rows, length = cols.shape[1:]
    if rows % window.count:
        raise ValueError(f"{op}: input of shape {input.shape} has {rows} rows, expected a multiple of "
                         f"kernel_size {window.kernel} = {window.count} (C * kH * kW)")
    if length != window.out[0] * window.out[1]:
        raise ValueError(f"{op}: input of shape {input.shape} has {length} columns, expected "
                         f"{window.out[0]} x {window.out[1]} = {window.out[0] * window.out[1]} window "
                         f"positions for output_size {size}")
    channels = rows // window.count
    if impl == "fused":
        out = fused_kernel("fold").apply(cols, window=window, channels=channels)
    else:
        out = crop(scatter_windows(cols.permute(1, 2, 0), window, channels), window)
    return out.squeeze(0) if unbatched else out
