"""Indexing ops: getitem, gather and scatter_add, index_select, masked_fill, tril/triu, sort and topk.

Selecting is GetItem (its gradient scatters back, repeated indices adding up);
the indices themselves are integer data and are never differentiated.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_bn import ops
from tinygrad_bn.functional._args import one_dim
from tinygrad_bn.functional.elementwise import where
from tinygrad_bn.functional.reduce import ValuesIndices, gather
from tinygrad_bn.tensor import Tensor


def index_data(index: Any) -> Any:
    """An index with Tensors replaced by their arrays (and lists by arrays, as PyTorch reads them)."""
    if isinstance(index, Tensor):
        return index._data
    if isinstance(index, tuple):
        return tuple(index_data(i) if isinstance(i, Tensor | list) else i for i in index)
    if isinstance(index, list):
        return np.asarray([i._data if isinstance(i, Tensor) else i for i in index])
    return index


def getitem(input: Tensor, index: Any) -> Tensor:
    """input[index]: basic and advanced indexing, as numpy (and PyTorch) define it."""
    return ops.GetItem.apply(input, index=index_data(index))


def _int_index(op: str, index: Any) -> np.ndarray:
    index = index._data if isinstance(index, Tensor) else np.asarray(index)
    if index.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must hold integers, got dtype {index.dtype}")
    return index


def index_select(input: Tensor, dim: int, index: Any) -> Tensor:
    """The entries `index` (1-D) of dim `dim`."""
    index = _int_index("index_select", index)
    if index.ndim > 1:
        raise ValueError(f"index_select: index must be 1-D, got shape {index.shape}")
    d = one_dim("index_select", dim, input.ndim)
    return ops.GetItem.apply(input, index=(slice(None),) * d + (index.reshape(-1),))


def take_along_dim(input: Tensor, indices: Any, dim: int) -> Tensor:
    """gather with broadcasting of `indices` (numpy's take_along_axis)."""
    indices = _int_index("take_along_dim", indices)
    d = one_dim("take_along_dim", dim, input.ndim)
    return gather(input, d, indices)


def scatter_add(input: Tensor, dim: int, index: Any, src: Tensor) -> Tensor:
    """input with src[i][j] added at [i][index[i][j]] (for dim=1); repeated indices add up."""
    index = _int_index("scatter_add", index)
    d = one_dim("scatter_add", dim, input.ndim)
    if index.ndim != input.ndim or src.ndim != input.ndim:
        raise ValueError(f"scatter_add: input {input.shape}, index {index.shape} and src {src.shape} "
                         "must have the same number of dims")
    src = ops.GetItem.apply(src, index=tuple(slice(0, n) for n in index.shape))  # PyTorch reads index's shape
    grids = list(np.ogrid[tuple(slice(n) for n in index.shape)])
    grids[d] = index
    return input + ops.ScatterAdd.apply(src, index=tuple(grids), shape=input.shape)


def masked_fill(input: Tensor, mask: Any, value: Any) -> Tensor:
    """value where mask is true, else input (value gets no gradient from the masked places)."""
    mask = mask._data if isinstance(mask, Tensor) else np.asarray(mask)
    if mask.dtype != np.bool_:
        raise TypeError(f"masked_fill: mask must be a bool tensor, got dtype {mask.dtype}")
    return where(mask, value, input)


def _triangle(op: str, input: Tensor, diagonal: int, lower: bool) -> Tensor:
    if input.ndim < 2:
        raise ValueError(f"{op}: expects a tensor with >= 2 dims, got shape {input.shape}")
    n, m = input.shape[-2:]
    keep = np.tri(n, m, diagonal, dtype=bool) if lower else ~np.tri(n, m, diagonal - 1, dtype=bool)
    return where(keep, input, Tensor._wrap(np.zeros((), input.dtype), False, None))


def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two dims (on and below `diagonal`), zeros elsewhere."""
    return _triangle("tril", input, diagonal, lower=True)


def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two dims (on and above `diagonal`), zeros elsewhere."""
    return _triangle("triu", input, diagonal, lower=False)


def sort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> ValuesIndices:
    """(values, indices) sorted along `dim`; equal values keep their order (stable)."""
    d = one_dim("sort", dim, input.ndim)
    if input.ndim == 0:
        return ValuesIndices(input, Tensor._wrap(np.zeros((), np.int64), False, None))
    keys = -input._data if descending and input._data.dtype.kind != "b" else input._data
    order = np.argsort(keys, axis=d, kind="stable")
    return ValuesIndices(gather(input, d, order), Tensor._wrap(order.astype(np.int64), False, None))


def argsort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """The indices that sort `input` along `dim`."""
    return sort(input, dim, descending, stable).indices


def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> ValuesIndices:
    """The k largest (or smallest) entries along `dim`, as (values, indices)."""
    d = one_dim("topk", dim, input.ndim)
    size = input.shape[d] if input.ndim else 1
    if not 0 <= k <= size:
        raise ValueError(f"topk: k={k} is out of range for dim {d} of size {size}")
    if input.ndim == 0:  # PyTorch returns the value itself (for k = 0 too)
        return sort(input)
    values, indices = sort(input, d, descending=largest)
    first = (slice(None),) * d + (slice(0, k),)
    kept = Tensor._wrap(indices._data[first], False, None)
    return ValuesIndices(ops.GetItem.apply(values, index=first), kept)
