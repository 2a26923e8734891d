"""Argument handling shared by the functional ops: PyTorch's dims and numpy's aliases.

PyTorch spells reduction arguments `dim=` and `keepdim=`, and accepts numpy's
`axis=` and `keepdims=` as aliases with the same meaning; these helpers take
either spelling and refuse both at once.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_bn.ops import check_axis


def pick(op: str, name: str, value: Any, alias: str, alias_value: Any, default: Any) -> Any:
    """The argument given as `name` or as its alias `alias` (not both), else `default`."""
    if alias_value is not None:
        if value is not None:
            raise TypeError(f"{op}: pass {name}= or its alias {alias}=, not both")
        return alias_value
    return default if value is None else value


def reduce_dims(op: str, ndim: int, dim: Any, keepdim: Any, axis: Any = None, keepdims: Any = None) -> tuple:
    """(dims, keepdim) of a reduction: dims None (all), an int or a tuple, validated."""
    dim = pick(op, "dim", dim, "axis", axis, None)
    keepdim = bool(keepdim if keepdims is None else keepdims)
    if isinstance(dim, list | tuple) and len(dim) == 0:
        dim = None  # PyTorch: an empty dim list reduces over every dim
    return check_axis(op, dim, ndim), keepdim


def one_dim(op: str, dim: Any, ndim: int) -> int:
    """A single dim, validated and made non-negative (a 0-d tensor accepts 0 and -1)."""
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}")
    span = max(ndim, 1)
    if not -span <= dim < span:
        raise IndexError(f"{op}: dim {dim} is out of range for a {ndim}-d tensor "
                         f"(expected a dim in [{-span}, {span - 1}])")
    return int(dim) % span


def int_sizes(op: str, sizes: tuple) -> tuple[int, ...]:
    """Sizes given as ints or as one tuple/list/torch.Size-like sequence of ints."""
    if len(sizes) == 1 and isinstance(sizes[0], list | tuple):
        sizes = tuple(sizes[0])
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, int | np.integer):
            raise TypeError(f"{op}: sizes must be ints, got {sizes!r}")
    return tuple(int(s) for s in sizes)
