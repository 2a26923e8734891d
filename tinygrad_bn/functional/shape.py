"""Movement ops with PyTorch's semantics: views, permutations, joining, splitting, padding.

Where numpy and PyTorch differ: transpose(d0, d1) swaps two dims (numpy's
transpose permutes them all: that is `permute`), repeat tiles (numpy's tile;
numpy's repeat is `repeat_interleave`), and expand takes -1 for "keep this size".
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_bn import ops
from tinygrad_bn.functional._args import int_sizes, one_dim
from tinygrad_bn.tensor import Tensor


def reshape(input: Tensor, *shape: Any) -> Tensor:
    """The same elements in a new shape (one size may be -1)."""
    shape = int_sizes("reshape", shape)
    if shape == input._data.shape:
        return input
    return ops.Reshape.apply(input, shape=shape)


view = reshape


def view_as(input: Tensor, other: Tensor) -> Tensor:
    """reshape to other's shape."""
    return reshape(input, other.shape)


def permute(input: Tensor, *dims: Any) -> Tensor:
    """Reorder the dims: output dim i is input dim dims[i]."""
    dims = int_sizes("permute", dims)
    if dims == tuple(range(input.ndim)):
        return input
    return ops.Permute.apply(input, dims=dims)


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap two dims (PyTorch's meaning; numpy's transpose is `permute`)."""
    d0, d1 = one_dim("transpose", dim0, input.ndim), one_dim("transpose", dim1, input.ndim)
    if d0 == d1 or input.ndim < 2:
        return input
    dims = list(range(input.ndim))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return ops.Permute.apply(input, dims=tuple(dims))


swapaxes = swapdims = transpose


def t(input: Tensor) -> Tensor:
    """Transpose of a matrix (0-d and 1-d tensors are returned as they are)."""
    if input.ndim > 2:
        raise ValueError(f"t: expects a tensor with <= 2 dims, got shape {input.shape}; use transpose or mT")
    return transpose(input, 0, 1) if input.ndim == 2 else input


def reversed_dims(input: Tensor) -> Tensor:
    """Every dim in reverse order (`.T`)."""
    return permute(input, *reversed(range(input.ndim)))


def matrix_transpose(input: Tensor) -> Tensor:
    """Swap the last two dims (`.mT`)."""
    if input.ndim < 2:
        raise ValueError(f"mT: expects a tensor with >= 2 dims, got shape {input.shape}")
    return transpose(input, -2, -1)


def movedim(input: Tensor, source: int, destination: int) -> Tensor:
    """Move one dim to a new position, keeping the others in order."""
    src, dst = one_dim("movedim", source, input.ndim), one_dim("movedim", destination, input.ndim)
    order = [d for d in range(input.ndim) if d != src]
    order.insert(dst, src)
    return permute(input, *order)


def expand(input: Tensor, *sizes: Any) -> Tensor:
    """Broadcast to `sizes`; -1 keeps a dim's size, new dims may be added in front."""
    sizes = int_sizes("expand", sizes)
    if len(sizes) < input.ndim:
        raise ValueError(f"expand: got {len(sizes)} sizes for a {input.ndim}-d tensor {input.shape}")
    lead = len(sizes) - input.ndim
    shape = tuple(input.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(sizes))
    if builtins.any(s < 0 for s in shape):
        raise ValueError(f"expand: -1 is only allowed for existing dims, got sizes {sizes} for {input.shape}")
    if shape == input._data.shape:
        return input
    return ops.Expand.apply(input, shape=shape)


broadcast_to = expand


def expand_as(input: Tensor, other: Tensor) -> Tensor:
    """expand to other's shape."""
    return expand(input, other.shape)


def repeat(input: Tensor, *repeats: Any) -> Tensor:
    """Tile the tensor `repeats[i]` times along dim i (numpy's tile)."""
    repeats = int_sizes("repeat", repeats)
    if len(repeats) < input.ndim:
        raise ValueError(f"repeat: needs at least {input.ndim} repeats for shape {input.shape}, "
                         f"got {repeats}")
    shape = (1,) * (len(repeats) - input.ndim) + input.shape
    # (a, b) -> (1, a, 1, b) -> expand (r0, a, r1, b) -> reshape (r0 a, r1 b)
    interleaved = tuple(n for size in shape for n in (1, size))
    expanded = tuple(n for r, size in zip(repeats, shape) for n in (r, size))
    out = reshape(input, interleaved).expand(expanded)
    return reshape(out, tuple(r * size for r, size in zip(repeats, shape)))


def repeat_interleave(input: Tensor, repeats: Any, dim: int | None = None) -> Tensor:
    """Repeat each element `repeats` times along `dim` (numpy's repeat); dim=None flattens first.

    `repeats` is an int or one count per element of that dim (a sequence or 1-D Tensor).
    """
    if dim is None:
        input, dim = reshape(input, (-1,)), 0
    d = one_dim("repeat_interleave", dim, input.ndim)
    counts = repeats._data if isinstance(repeats, Tensor) else np.asarray(repeats)
    if counts.dtype.kind not in "iu" or counts.ndim > 1 or np.any(counts < 0):
        raise ValueError(f"repeat_interleave: repeats must be a non-negative int or a 1-D sequence of them, "
                         f"got {repeats!r}")
    # which source element each output element copies (gradients of the copies add up)
    source = np.repeat(np.arange(input.shape[d]), counts)
    return ops.GetItem.apply(input, index=(slice(None),) * d + (source,))


def flip(input: Tensor, dims: Any) -> Tensor:
    """Reverse the order of elements along `dims`."""
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    wanted = {one_dim("flip", d, input.ndim) for d in dims}
    index = tuple(slice(None, None, -1) if d in wanted else slice(None) for d in range(input.ndim))
    return ops.GetItem.apply(input, index=index)


def narrow(input: Tensor, dim: int, start: int, length: int) -> Tensor:
    """The `length` elements of `dim` from `start` on."""
    d = one_dim("narrow", dim, input.ndim)
    size = input.shape[d]
    start = start + size if start < 0 else start
    if not (0 <= start <= size and 0 <= length and start + length <= size):
        raise IndexError(f"narrow: start {start} and length {length} fall outside dim {d} of size {size}")
    return ops.GetItem.apply(input, index=(slice(None),) * d + (slice(start, start + length),))


def squeeze(input: Tensor, dim: Any = None) -> Tensor:
    """Drop dims of size 1 (only those in `dim` when given; others are left alone, as PyTorch)."""
    if dim is None:
        dims = {d for d, n in enumerate(input.shape) if n == 1}
    else:
        dims = {one_dim("squeeze", d, input.ndim) for d in ((dim,) if isinstance(dim, int) else dim)}
        dims = {d for d in dims if input.ndim and input.shape[d] == 1}
    return reshape(input, tuple(n for d, n in enumerate(input.shape) if d not in dims))


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    """Insert a dim of size 1 at `dim` (negative counts from the end of the result)."""
    d = one_dim("unsqueeze", dim, input.ndim + 1)
    return reshape(input, input.shape[:d] + (1,) + input.shape[d:])


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims start_dim..end_dim into one."""
    if input.ndim == 0:
        return reshape(input, (1,))
    start, end = one_dim("flatten", start_dim, input.ndim), one_dim("flatten", end_dim, input.ndim)
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    merged = int(np.prod(input.shape[start:end + 1], dtype=np.int64))
    return reshape(input, input.shape[:start] + (merged,) + input.shape[end + 1:])


def unflatten(input: Tensor, dim: int, sizes: Sequence[int]) -> Tensor:
    """Split one dim into `sizes` (one may be -1)."""
    d = one_dim("unflatten", dim, input.ndim)
    return reshape(input, input.shape[:d] + tuple(sizes) + input.shape[d + 1:])


# ---------------------------------------------------------------- joining and splitting


def _tensors(op: str, tensors: Any) -> list[Tensor]:
    if isinstance(tensors, Tensor) or not isinstance(tensors, Sequence):
        raise TypeError(f"{op}: expected a sequence of Tensors, got {type(tensors).__name__}")
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty sequence of Tensors")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: element {i} is a {type(t).__name__}, not a Tensor")
    return list(tensors)


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors along an existing dim."""
    tensors = _tensors("cat", tensors)
    d = one_dim("cat", dim, tensors[0].ndim)
    for i, t in enumerate(tensors):
        first = tensors[0].shape
        if t.ndim != len(first) or t.shape[:d] + t.shape[d + 1:] != first[:d] + first[d + 1:]:
            raise ValueError(f"cat: tensor {i} has shape {t.shape}, expected {tensors[0].shape} "
                             f"except in dim {d}")
    return ops.Cat.apply(*tensors, dim=d)


concat = concatenate = cat


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors of one shape along a new dim."""
    tensors = _tensors("stack", tensors)
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: tensor {i} has shape {t.shape}, expected {tensors[0].shape}")
    d = one_dim("stack", dim, tensors[0].ndim + 1)
    return ops.Cat.apply(*[unsqueeze(t, d) for t in tensors], dim=d)


def split(input: Tensor, split_size_or_sections: Any, dim: int = 0) -> tuple[Tensor, ...]:
    """Pieces along `dim`: of `split_size` each (the last may be smaller), or of the given sizes."""
    d = one_dim("split", dim, input.ndim)
    size = input.shape[d]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0:
            raise ValueError(f"split: split_size must be positive, got {step}")
        sections = [builtins.min(step, size - start) for start in range(0, size, step)] or [0]
    else:
        sections = [int(s) for s in split_size_or_sections]
        if builtins.sum(sections) != size:
            raise ValueError(f"split: sections {sections} sum to {builtins.sum(sections)}, "
                             f"but dim {d} has size {size}")
    pieces, start = [], 0
    for n in sections:
        pieces.append(ops.GetItem.apply(input, index=(slice(None),) * d + (slice(start, start + n),)))
        start += n
    return tuple(pieces)


def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """At most `chunks` pieces of ceil(size / chunks) along `dim` (PyTorch's rule)."""
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    size = input.shape[one_dim("chunk", dim, input.ndim)]
    return split(input, builtins.max(1, -(-size // chunks)), dim)


def unbind(input: Tensor, dim: int = 0) -> tuple[Tensor, ...]:
    """The slices along `dim`, that dim removed."""
    d = one_dim("unbind", dim, input.ndim)
    return tuple(ops.GetItem.apply(input, index=(slice(None),) * d + (i,)) for i in range(input.shape[d]))


# ---------------------------------------------------------------- padding


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad the last len(pad) // 2 dims: pad = (left of last, right of last, left of the one before, ...).

    mode "constant" (value, default 0; negative pads crop), "reflect" (mirror
    without repeating the edge), "replicate" (repeat the edge) or "circular" (wrap).
    """
    pad = [int(p) for p in pad]
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: expected an even number of pads for at most {input.ndim} dims, got {pad}")
    widths = [(0, 0)] * (input.ndim - len(pad) // 2) + [(pad[2 * i], pad[2 * i + 1])
                                                         for i in reversed(range(len(pad) // 2))]
    if mode == "constant":
        return _pad_constant(input, widths, 0.0 if value is None else value)
    if mode not in ("reflect", "replicate", "circular"):
        raise ValueError(f"pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}")
    numpy_mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
    for (lo, hi), n in zip(widths, input.shape):
        if lo < 0 or hi < 0:
            raise ValueError(f"pad: mode {mode!r} needs non-negative pads, got {pad}")
        if mode == "reflect" and (lo >= n or hi >= n):
            raise ValueError(f"pad: reflect padding {pad} must be smaller than the padded dims {input.shape}")
    # Which source element each output element copies: pad an array of indices the same way.
    grids = tuple(np.pad(np.arange(n), w, mode=numpy_mode) for n, w in zip(input.shape, widths))
    return ops.GetItem.apply(input, index=np.ix_(*grids))


def _pad_constant(input: Tensor, widths: list[tuple[int, int]], value: float) -> Tensor:
    # Negative pads crop first; then the input is scattered into a zero tensor of the padded shape.
    crop = tuple(slice(builtins.max(-lo, 0), n - builtins.max(-hi, 0))
                 for (lo, hi), n in zip(widths, input.shape))
    x = ops.GetItem.apply(input, index=crop) if builtins.any(lo < 0 or hi < 0 for lo, hi in widths) else input
    pos = [(builtins.max(lo, 0), builtins.max(hi, 0)) for lo, hi in widths]
    shape = tuple(n + lo + hi for n, (lo, hi) in zip(x.shape, pos))
    place = tuple(slice(lo, lo + n) for n, (lo, _) in zip(x.shape, pos))
    out = ops.ScatterAdd.apply(x, index=place, shape=shape)
    if value == 0:
        return out
    fill = np.full(shape, value, dtype=input.dtype)
    fill[place] = 0
    return out + Tensor._wrap(fill, False, None)
