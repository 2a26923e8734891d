"""In-place array arithmetic for the update rules, named after PyTorch's in-place Tensor methods.

An optimizer's update is a handful of these calls, each one term of the rule
as its paper writes it: `scale_add_(m, beta1, g, 1 - beta1, tmp)` is
m <- beta1 m + (1 - beta1) g.
Each writes into its first argument with numpy ufuncs (`out=`), keeping
intermediate values in `tmp`, a scratch array shaped like it, so a step
allocates nothing and every array keeps its dtype.

Scalars reach the ufuncs as read-only 0-d arrays of the array's dtype: numpy
combines an array with those about twice as fast as with a Python float (the
NEP 50 weak-scalar path), with the same result, since the float is rounded to
the array's dtype either way. That is a few tenths of a microsecond per call,
a large part of a step on small layers.
"""

from __future__ import annotations

import numpy as np

Array = np.ndarray


class _Scalars(dict):
    """(value, dtype) -> read-only 0-d array; a plain dict is the cheapest cache to look up."""

    def __missing__(self, key: tuple[float, np.dtype]) -> Array:
        if len(self) > 4096:  # step-dependent scalars (bias corrections, schedules) never repeat
            self.clear()
        out = self[key] = np.array(key[0], dtype=key[1])
        out.flags.writeable = False
        return out


_SCALARS = _Scalars()


def mul_(x: Array, c: float) -> Array:
    """x <- c x."""
    return np.multiply(x, _SCALARS[c, x.dtype], out=x)


def mul(x: Array, c: float, out: Array) -> Array:
    """out <- c x."""
    return np.multiply(x, _SCALARS[c, x.dtype], out=out)


def add_(x: Array, y: Array, alpha: float = 1.0, tmp: Array | None = None) -> Array:
    """x <- x + alpha y; `tmp` is needed when alpha != 1."""
    if alpha != 1.0:
        y = np.multiply(y, _SCALARS[alpha, x.dtype], out=tmp)
    return np.add(x, y, out=x)


def scale_add_(x: Array, a: float, y: Array, b: float, tmp: Array) -> Array:
    """x <- a x + b y."""
    np.multiply(x, _SCALARS[a, x.dtype], out=x)
    return np.add(x, y if b == 1.0 else np.multiply(y, _SCALARS[b, x.dtype], out=tmp), out=x)


def addcmul_(x: Array, a: Array, b: Array, value: float, tmp: Array) -> Array:
    """x <- x + value a b."""
    return np.add(x, _product(a, b, value, tmp), out=x)


def addcmul(x: Array, a: Array, b: Array, value: float, out: Array) -> Array:
    """out <- x + value a b, into a third array `out`."""
    return np.add(x, _product(a, b, value, out), out=out)


def addcdiv_(x: Array, a: Array, b: Array, value: float, tmp: Array) -> Array:
    """x <- x + value a / b; `tmp` may be `b` itself (its values are used up)."""
    term = np.divide(a, b, out=tmp)
    return np.add(x, np.multiply(term, _SCALARS[value, x.dtype], out=term), out=x)


def _product(a: Array, b: Array, value: float, out: Array) -> Array:
    """out <- value a b."""
    np.multiply(a, b, out=out)
    return out if value == 1.0 else np.multiply(out, _SCALARS[value, out.dtype], out=out)


def maximum_(x: Array, y: Array) -> Array:
    """x <- max(x, y), elementwise."""
    return np.maximum(x, y, out=x)


def sqrt_plus(x: Array, eps: float, out: Array) -> Array:
    """out <- sqrt(x) + eps (the denominators of the adaptive methods)."""
    return np.add(np.sqrt(x, out=out), _SCALARS[eps, out.dtype], out=out)


def square(x: Array, out: Array) -> Array:
    """out <- x^2."""
    return np.multiply(x, x, out=out)


class Scratch:
    """`count` work arrays for each parameter shape, shared by all parameters of a dtype.

    They are views into `count` flat buffers per dtype, sized for the largest
    parameter, so scratch memory is that of one parameter (not of the model),
    and it stays in cache from one parameter to the next.
    """

    def __init__(self, count: int):
        self.count = count
        self._flat: dict[np.dtype, list[Array]] = {}
        self.views: dict[object, tuple[Array, ...]] = {}  # key -> (its array, the scratch arrays...)

    def make(self, key: object, x: Array) -> tuple[Array, ...]:
        """(x, then `count` scratch arrays with x's shape and dtype), remembered as `views[key]`.

        A caller finds them again in `views` while its array is still `x`; a
        parameter given a new array (Module.to) asks for new ones.
        """
        entry = self.views[key] = (x, *self._make(x.shape, x.dtype))
        return entry

    def _make(self, shape: tuple[int, ...], dtype: np.dtype) -> tuple[Array, ...]:
        size = int(np.prod(shape))
        flat = self._flat.get(dtype)
        if flat is None or flat[0].size < size:
            # Growing replaces the buffers; the views into the old ones are dropped (and
            # rebuilt on their next use), so the old buffers are freed.
            flat = self._flat[dtype] = [np.empty(size, dtype) for _ in range(self.count)]
            for key in [k for k, v in self.views.items() if v[1].dtype == dtype]:
                del self.views[key]
        return tuple(f[:size].reshape(shape) for f in flat)
