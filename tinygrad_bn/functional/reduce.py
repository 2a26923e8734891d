"""Reductions with PyTorch's signatures: dim= / keepdim= (numpy's axis= / keepdims= also work).

Conventions that differ from numpy: var/std are unbiased by default
(correction=1); max/min with a dim return (values, indices), without one the
maximum over everything; amax/amin reduce over dims and share the gradient
between ties.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from tinygrad_bn import ops
from tinygrad_bn.autograd.grad_mode import composite
from tinygrad_bn.functional._args import one_dim, pick, reduce_dims
from tinygrad_bn.functional.elementwise import abs, cast, maximum, minimum, where
from tinygrad_bn.tensor import Tensor, get_default_dtype


class ValuesIndices(NamedTuple):
    """What max/min/sort/topk with a dim return: the values (differentiable) and their indices."""

    values: Tensor
    indices: Tensor


def _as_float(input: Tensor) -> Tensor:
    return input if input._data.dtype.kind == "f" else cast(input, get_default_dtype())


def _count(shape: tuple[int, ...], dims: Any) -> int:
    """How many elements a reduction over `dims` combines."""
    if dims is None:
        return int(np.prod(shape, dtype=np.int64))
    if not shape:
        return 1
    dims = (dims,) if isinstance(dims, int) else dims
    return int(np.prod([shape[d] for d in dims], dtype=np.int64))


def sum(input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None,  # noqa: A001
        axis: Any = None, keepdims: bool | None = None) -> Tensor:
    """Sum over `dim` (every dim if None)."""
    dims, keep = reduce_dims("sum", input.ndim, dim, keepdim, axis, keepdims)
    if dtype is not None:
        input = cast(input, dtype)
    return ops.Sum.apply(input, axis=dims, keepdims=keep)


@composite("mean")
def mean(input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None,
         axis: Any = None, keepdims: bool | None = None) -> Tensor:
    """Arithmetic mean: sum times 1/n."""
    dims, keep = reduce_dims("mean", input.ndim, dim, keepdim, axis, keepdims)
    input = _as_float(input if dtype is None else cast(input, dtype))
    n = _count(input.shape, dims)
    # The mean of nothing is nan, as in PyTorch.
    return ops.Sum.apply(input, axis=dims, keepdims=keep) * (1.0 / n if n else math.nan)


def _correction(op: str, unbiased: Any, correction: Any) -> float:
    if unbiased is not None and correction is not None:
        raise TypeError(f"{op}: pass unbiased= or correction=, not both")
    if unbiased is not None:
        return 1.0 if unbiased else 0.0
    return 1.0 if correction is None else float(correction)


@composite("var")
def var(input: Tensor, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction: float | None = None, axis: Any = None, keepdims: bool | None = None) -> Tensor:
    """Variance: sum((x - mean)^2) / (n - correction); correction=1 (unbiased) by default, as PyTorch.

    Two-pass (centre first, then square): no E[x^2] - E[x]^2 cancellation.
    """
    if isinstance(unbiased, int | tuple | list) and not isinstance(unbiased, bool):
        raise TypeError("var: the second positional argument is `unbiased` (a bool); pass dims as dim=")
    dims, keep = reduce_dims("var", input.ndim, dim, keepdim, axis, keepdims)
    input = _as_float(input)
    n, c = _count(input.shape, dims), _correction("var", unbiased, correction)
    centred = input - ops.Sum.apply(input, axis=dims, keepdims=True) * (1.0 / n if n else math.nan)
    # PyTorch returns nan (not an error) when n <= correction, e.g. the unbiased variance of one value.
    scale = 1.0 / (n - c) if n - c > 0 else math.nan
    return ops.Sum.apply(centred * centred, axis=dims, keepdims=keep) * scale


@composite("std")
def std(input: Tensor, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction: float | None = None, axis: Any = None, keepdims: bool | None = None) -> Tensor:
    """Standard deviation: sqrt(var), with var's correction (1 by default)."""
    return ops.Sqrt.apply(var(input, dim, unbiased, keepdim, correction=correction, axis=axis,
                              keepdims=keepdims))


def amax(input: Tensor, dim: Any = None, keepdim: bool = False, *, axis: Any = None,
         keepdims: bool | None = None) -> Tensor:
    """Maximum over `dim` (every dim by default); ties share the gradient equally."""
    dims, keep = reduce_dims("amax", input.ndim, dim, keepdim, axis, keepdims)
    return ops.Max.apply(input, axis=dims, keepdims=keep)


def amin(input: Tensor, dim: Any = None, keepdim: bool = False, *, axis: Any = None,
         keepdims: bool | None = None) -> Tensor:
    """Minimum over `dim` (every dim by default); ties share the gradient equally."""
    dims, keep = reduce_dims("amin", input.ndim, dim, keepdim, axis, keepdims)
    return -ops.Max.apply(-input, axis=dims, keepdims=keep)


def _extreme(op: str, input: Tensor, dim: Any, keepdim: bool, axis: Any, keepdims: Any, largest: bool) -> Any:
    if isinstance(dim, Tensor):  # torch.max(a, b): the elementwise maximum
        return maximum(input, dim) if largest else minimum(input, dim)
    dim = pick(op, "dim", dim, "axis", axis, None)
    keep = bool(keepdim if keepdims is None else keepdims)
    if dim is None:
        return amax(input) if largest else amin(input)
    d = one_dim(op, dim, input.ndim)
    if input.shape and input.shape[d] == 0:
        raise IndexError(f"{op}: cannot reduce over dim {d} of size 0 (shape {input.shape})")
    pick_index = np.argmax if largest else np.argmin
    indices = np.expand_dims(pick_index(input._data, axis=d), d) if input.ndim else np.zeros((), np.int64)
    values = gather(input, d, indices) if input.ndim else input
    if not keep and input.ndim:
        values, indices = values.squeeze(d), indices.squeeze(d)
    return ValuesIndices(values, Tensor._wrap(np.asarray(indices, dtype=np.int64), False, None))


def max(input: Tensor, dim: Any = None, keepdim: bool = False, *, axis: Any = None,  # noqa: A001
        keepdims: bool | None = None) -> Any:
    """max(): the maximum; max(dim): (values, indices), the gradient going to the index chosen."""
    return _extreme("max", input, dim, keepdim, axis, keepdims, largest=True)


def min(input: Tensor, dim: Any = None, keepdim: bool = False, *, axis: Any = None,  # noqa: A001
        keepdims: bool | None = None) -> Any:
    """min(): the minimum; min(dim): (values, indices), the gradient going to the index chosen."""
    return _extreme("min", input, dim, keepdim, axis, keepdims, largest=False)


def gather(input: Tensor, dim: int, index: Any) -> Tensor:
    """out[i][j][k] = input[i][index[i][j][k]][k] (for dim=1); repeated indices add their gradients."""
    index = index._data if isinstance(index, Tensor) else np.asarray(index)
    d = one_dim("gather", dim, input.ndim)
    if index.dtype.kind not in "iu":
        raise TypeError(f"gather: index must hold integers, got dtype {index.dtype}")
    if index.ndim != input.ndim:
        raise ValueError(f"gather: index has {index.ndim} dims, input has {input.ndim}; they must match")
    grids = list(np.ogrid[tuple(slice(n) for n in index.shape)])
    grids[d] = index
    return ops.GetItem.apply(input, index=tuple(grids))


def _arg(op: str, input: Tensor, dim: Any, keepdim: bool, largest: bool) -> Tensor:
    if dim is None:
        flat = np.argmax(input._data) if largest else np.argmin(input._data)
        out = np.asarray(flat, dtype=np.int64)
        return Tensor._wrap(out.reshape((1,) * input.ndim) if keepdim else out, False, None)
    d = one_dim(op, dim, input.ndim)
    out = (np.argmax if largest else np.argmin)(input._data, axis=d, keepdims=keepdim)
    return Tensor._wrap(np.asarray(out, dtype=np.int64), False, None)


def argmax(input: Tensor, dim: Any = None, keepdim: bool = False, *, axis: Any = None) -> Tensor:
    """Index of the maximum (over everything, flattened, when dim is None)."""
    return _arg("argmax", input, pick("argmax", "dim", dim, "axis", axis, None), keepdim, True)


def argmin(input: Tensor, dim: Any = None, keepdim: bool = False, *, axis: Any = None) -> Tensor:
    """Index of the minimum (over everything, flattened, when dim is None)."""
    return _arg("argmin", input, pick("argmin", "dim", dim, "axis", axis, None), keepdim, False)


def prod(input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None, axis: Any = None,
         keepdims: bool | None = None) -> Tensor:
    """Product over one dim (or everything); correct gradients also where an element is 0."""
    if dtype is not None:
        input = cast(input, dtype)
    dim = pick("prod", "dim", dim, "axis", axis, None)
    d = None if dim is None else one_dim("prod", dim, input.ndim)
    return ops.Prod.apply(input, axis=d, keepdims=bool(keepdim if keepdims is None else keepdims))


def cumsum(input: Tensor, dim: Any = None, *, dtype: Any = None, axis: Any = None) -> Tensor:
    """Running sum along `dim`."""
    if dtype is not None:
        input = cast(input, dtype)
    dim = pick("cumsum", "dim", dim, "axis", axis, None)
    if dim is None:
        raise TypeError("cumsum: missing the dim to sum along")
    d = one_dim("cumsum", dim, input.ndim)
    if input.ndim == 0:  # the running sum of one value is that value (PyTorch accepts dim 0 or -1)
        return input * 1
    return ops.Cumsum.apply(input, dim=d)


@composite("logsumexp")
def logsumexp(input: Tensor, dim: Any = None, keepdim: bool = False, *, axis: Any = None,
              keepdims: bool | None = None) -> Tensor:
    """log(sum(exp(x))) over `dim`, computed without overflow."""
    if dim is None and axis is None:
        raise TypeError("logsumexp: missing the dim(s) to reduce over")
    dims, keep = reduce_dims("logsumexp", input.ndim, dim, keepdim, axis, keepdims)
    peak = input.detach().amax(dim=dims, keepdim=True)
    peak = Tensor._wrap(np.where(np.isfinite(peak._data), peak._data, 0), False, None)  # all -inf rows
    out = ops.Sum.apply((input - peak).exp(), axis=dims, keepdims=True).log() + peak
    return out if keep else out.reshape(_reduced_shape(input.shape, dims))


def _reduced_shape(shape: tuple[int, ...], dims: Any) -> tuple[int, ...]:
    if dims is None:
        return ()
    dims = {d % len(shape) for d in ((dims,) if isinstance(dims, int) else dims)} if shape else set()
    return tuple(n for i, n in enumerate(shape) if i not in dims)


@composite("norm")
def norm(input: Tensor, p: Any = "fro", dim: Any = None, keepdim: bool = False, dtype: Any = None) -> Tensor:
    """The p-norm over `dim` (every dim if None): p = 'fro'/2, 1, inf, -inf or any other number."""
    if dtype is not None:
        input = cast(input, dtype)
    dims, keep = reduce_dims("norm", input.ndim, dim, keepdim)
    if p in ("fro", 2, 2.0, None):
        return _root(ops.Sum.apply(input * input, axis=dims, keepdims=keep), 2.0)
    if p in (math.inf, "inf"):
        return ops.Max.apply(abs(input), axis=dims, keepdims=keep)
    if p in (-math.inf, "-inf"):
        return -ops.Max.apply(-abs(input), axis=dims, keepdims=keep)
    if isinstance(p, int | float) and not isinstance(p, bool):
        if p == 0:
            return ops.Sum.apply(cast(input != 0, input.dtype), axis=dims, keepdims=keep)
        if p == 1:
            return ops.Sum.apply(abs(input), axis=dims, keepdims=keep)
        return _root(ops.Sum.apply(abs(input) ** p, axis=dims, keepdims=keep), float(p))
    raise ValueError(f"norm: p must be 'fro', a number, inf or -inf, got {p!r}")


def _root(total: Tensor, p: float) -> Tensor:
    """total ** (1/p), with gradient 0 where total is 0 (PyTorch's choice for the norm of zeros).

    The root's slope is infinite at 0 and inf * 0 = nan; the root is taken of 1 there
    instead, and the result replaced by 0, so neither branch sees an infinity.
    """
    zero = total._data == 0
    if not zero.any():
        return total.sqrt() if p == 2.0 else total ** (1.0 / p)
    safe = where(zero, Tensor._wrap(np.ones((), total.dtype), False, None), total)
    root = safe.sqrt() if p == 2.0 else safe ** (1.0 / p)
    return where(zero, Tensor._wrap(np.zeros((), total.dtype), False, None), root)


def any(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """Whether any element (over `dim`) is nonzero, as a bool tensor."""
    dims, keep = reduce_dims("any", input.ndim, dim, keepdim)
    return Tensor._wrap(np.asarray(np.any(input._data, axis=dims, keepdims=keep)), False, None)


def all(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """Whether every element (over `dim`) is nonzero, as a bool tensor."""
    dims, keep = reduce_dims("all", input.ndim, dim, keepdim)
    return Tensor._wrap(np.asarray(np.all(input._data, axis=dims, keepdims=keep)), False, None)
