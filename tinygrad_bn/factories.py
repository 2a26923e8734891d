"""Tensor factories with PyTorch's names and signatures: zeros, ones, arange, randn, ...

Sizes are given as ints or one sequence (`zeros(2, 3)` or `zeros((2, 3))`).
Float factories make the default float dtype (see set_default_dtype); random
ones draw from `generator` or the default generator (see tinygrad_bn.random).
`device` may only be "cpu".
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinygrad_bn.random import numpy_generator
from tinygrad_bn.tensor import Tensor, check_device, get_default_dtype, tensor


def _sizes(op: str, size: tuple) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], list | tuple):
        size = tuple(size[0])
    for s in size:
        if isinstance(s, bool) or not isinstance(s, int | np.integer) or s < 0:
            raise ValueError(f"{op}: sizes must be non-negative ints, got {size!r}")
    return tuple(int(s) for s in size)


def _make(op: str, array: np.ndarray, dtype: Any, requires_grad: bool, device: Any) -> Tensor:
    check_device(op, device)
    if dtype is not None:
        array = array.astype(dtype, copy=False)
    return Tensor(array, requires_grad=requires_grad)


def _float(dtype: Any) -> Any:
    return get_default_dtype() if dtype is None else dtype


def zeros(*size: Any, dtype: Any = None, requires_grad: bool = False, device: Any = None) -> Tensor:
    """A tensor of zeros."""
    return _make("zeros", np.zeros(_sizes("zeros", size), _float(dtype)), None, requires_grad, device)


def ones(*size: Any, dtype: Any = None, requires_grad: bool = False, device: Any = None) -> Tensor:
    """A tensor of ones."""
    return _make("ones", np.ones(_sizes("ones", size), _float(dtype)), None, requires_grad, device)


def empty(*size: Any, dtype: Any = None, requires_grad: bool = False, device: Any = None) -> Tensor:
    """A tensor whose values are not set (here: zeros, so nothing is read uninitialised)."""
    return _make("empty", np.zeros(_sizes("empty", size), _float(dtype)), None, requires_grad, device)


def full(size: Any, fill_value: Any, *, dtype: Any = None, requires_grad: bool = False,
         device: Any = None) -> Tensor:
    """A tensor filled with `fill_value` (int64 for an int, bool for a bool, else the float dtype)."""
    if dtype is None:
        dtype = (np.bool_ if isinstance(fill_value, bool) else np.int64 if isinstance(fill_value, int)
                 else get_default_dtype())
    size = _sizes("full", size if isinstance(size, tuple | list) else (size,))
    return _make("full", np.full(size, fill_value, dtype), None, requires_grad, device)


def arange(start: Any, end: Any = None, step: Any = 1, *, dtype: Any = None, requires_grad: bool = False,
           device: Any = None) -> Tensor:
    """start, start + step, ... up to (not including) end; int64 when all three are ints."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    if dtype is None:
        ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end, step))
        dtype = np.int64 if ints else get_default_dtype()
    # The count is computed as PyTorch does, from the float quotient, not numpy's own rule.
    count = max(0, math.ceil((end - start) / step))
    values = start + step * np.arange(count, dtype=np.float64 if np.dtype(dtype).kind == "f" else np.int64)
    return _make("arange", values, dtype, requires_grad, device)


def linspace(start: float, end: float, steps: int, *, dtype: Any = None, requires_grad: bool = False,
             device: Any = None) -> Tensor:
    """`steps` evenly spaced values from start to end, both included."""
    if steps < 0:
        raise ValueError(f"linspace: steps must be non-negative, got {steps}")
    return _make("linspace", np.linspace(start, end, steps), _float(dtype), requires_grad, device)


def eye(n: int, m: int | None = None, *, dtype: Any = None, requires_grad: bool = False,
        device: Any = None) -> Tensor:
    """The n x m identity matrix (m = n by default)."""
    return _make("eye", np.eye(n, n if m is None else m), _float(dtype), requires_grad, device)


def rand(*size: Any, generator: Any = None, dtype: Any = None, requires_grad: bool = False,
         device: Any = None) -> Tensor:
    """Uniform samples from [0, 1)."""
    values = numpy_generator(generator, "rand").random(_sizes("rand", size))
    return _make("rand", values, _float(dtype), requires_grad, device)


def randn(*size: Any, generator: Any = None, dtype: Any = None, requires_grad: bool = False,
          device: Any = None) -> Tensor:
    """Standard normal samples."""
    values = numpy_generator(generator, "randn").standard_normal(_sizes("randn", size))
    return _make("randn", values, _float(dtype), requires_grad, device)


def randint(low: int, high: Any = None, size: Any = None, *, generator: Any = None, dtype: Any = None,
            requires_grad: bool = False, device: Any = None) -> Tensor:
    """Integers uniform in [low, high): randint(high, size) or randint(low, high, size); int64."""
    if size is None:
        if high is None or not isinstance(high, tuple | list):
            raise TypeError("randint: expected randint(high, size) or randint(low, high, size)")
        low, high, size = 0, low, high
    values = numpy_generator(generator, "randint").integers(low, high, _sizes("randint", tuple(size)))
    return _make("randint", values, np.int64 if dtype is None else dtype, requires_grad, device)


def randperm(n: int, *, generator: Any = None, dtype: Any = None, device: Any = None) -> Tensor:
    """A random permutation of 0..n-1 (int64)."""
    values = numpy_generator(generator, "randperm").permutation(n)
    return _make("randperm", values, np.int64 if dtype is None else dtype, False, device)


def normal(mean: Any = 0.0, std: Any = 1.0, size: Any = None, *, generator: Any = None,
           dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Normal samples: normal(mean, std, size) with numbers, or elementwise with Tensors of means/stds."""
    m = mean._data if isinstance(mean, Tensor) else mean
    s = std._data if isinstance(std, Tensor) else std
    shape = _sizes("normal", tuple(size)) if size is not None else np.broadcast(m, s).shape
    if np.any(np.asarray(s) < 0):
        raise ValueError("normal: std must be non-negative")
    values = numpy_generator(generator, "normal").normal(m, s, shape)
    like = mean if isinstance(mean, Tensor) else std if isinstance(std, Tensor) else None
    if dtype is None and like is not None and like.dtype.kind == "f":
        dtype = like.dtype
    return _make("normal", values, _float(dtype), requires_grad, None)


def from_numpy(ndarray: np.ndarray) -> Tensor:
    """A tensor sharing the array's memory and keeping its dtype (writes show through both ways)."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"from_numpy: expected an np.ndarray, got {type(ndarray).__name__}")
    return Tensor(ndarray)


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """data as a tensor, not copied when it can be (a Tensor or ndarray of that dtype), else tensor(data)."""
    check_device("as_tensor", device)
    if isinstance(data, Tensor) and (dtype is None or np.dtype(dtype) == data.dtype):
        return data
    if isinstance(data, np.ndarray) and (dtype is None or np.dtype(dtype) == data.dtype):
        return Tensor(data)
    return tensor(data, dtype=dtype)


# ---------------------------------------------------------------- *_like


def _like_dtype(input: Tensor, dtype: Any) -> Any:
    return input.dtype if dtype is None else dtype


def zeros_like(input: Tensor, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """zeros of input's shape and dtype."""
    return Tensor(np.zeros(input.shape, _like_dtype(input, dtype)), requires_grad=requires_grad)


def ones_like(input: Tensor, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """ones of input's shape and dtype."""
    return Tensor(np.ones(input.shape, _like_dtype(input, dtype)), requires_grad=requires_grad)


def empty_like(input: Tensor, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """An unset tensor of input's shape and dtype (zeros here)."""
    return zeros_like(input, dtype=dtype, requires_grad=requires_grad)


def full_like(input: Tensor, fill_value: Any, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """fill_value in input's shape and dtype."""
    return Tensor(np.full(input.shape, fill_value, _like_dtype(input, dtype)), requires_grad=requires_grad)


def rand_like(input: Tensor, *, generator: Any = None, dtype: Any = None,
              requires_grad: bool = False) -> Tensor:
    """rand of input's shape and dtype."""
    return rand(input.shape, generator=generator, dtype=_like_dtype(input, dtype),
                requires_grad=requires_grad)


def randn_like(input: Tensor, *, generator: Any = None, dtype: Any = None,
               requires_grad: bool = False) -> Tensor:
    """randn of input's shape and dtype."""
    return randn(input.shape, generator=generator, dtype=_like_dtype(input, dtype),
                 requires_grad=requires_grad)


def randint_like(input: Tensor, low: int, high: int | None = None, *, generator: Any = None,
                 dtype: Any = None) -> Tensor:
    """randint of input's shape (randint_like(input, high) or (input, low, high))."""
    if high is None:
        low, high = 0, low
    return randint(low, high, input.shape, generator=generator, dtype=_like_dtype(input, dtype))
