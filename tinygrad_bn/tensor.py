"""Tensor: a numpy array, the graph node that produced it, and its gradient.

This module is the bottom of the engine and imports nothing of it: it defines
the data container only (construction and dtype rules, shape properties,
conversions, the version counter that catches in-place changes). The ops
(operators, reductions, movement, ...) are functions in `ops.py` and
`functional/`; `tensor_methods.py` binds them onto Tensor as methods from one
table, so no module imports a module that imports it back.

Dtype rules, PyTorch's: `Tensor(data)` makes the default float dtype (float32,
see set_default_dtype) from Python numbers and lists, and `tensor(data)` infers
it (Python floats: the default float dtype; ints: int64; bools: bool); an
ndarray keeps its dtype either way. A Python scalar operand takes the float
dtype of the tensor it meets, so it never upcasts a float32 graph; two tensors
of different float dtypes promote elementwise (matmul-like and norm ops refuse).
"""

from __future__ import annotations

from typing import Any

import numpy as np

DIFFERENTIABLE_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_default_dtype = np.dtype(np.float32)


def get_default_dtype() -> np.dtype:
    """The float dtype Python floats and new float tensors get (float32 unless changed)."""
    return _default_dtype


def set_default_dtype(dtype: Any) -> None:
    """Make `dtype` (float32 or float64) the default float dtype, process-wide, as in PyTorch."""
    global _default_dtype
    dt = np.dtype(dtype) if not isinstance(dtype, str) or dtype in ("float32", "float64") else None
    if dt not in DIFFERENTIABLE_DTYPES:
        raise TypeError(f"set_default_dtype: expected float32 or float64, got {dtype!r}")
    _default_dtype = dt


# Array kinds a Tensor may hold: bool, signed/unsigned int, float. Object, string,
# datetime and complex arrays would fail later, deep inside numpy or a backward rule.
_DATA_KINDS = "biuf"

Shape = tuple[int, ...]

# Writes through the Tensor API, counted process-wide. A tensor's `_version` is the
# count at its last write (0: never written), so a Context that saved tensors at
# count k knows that one of them changed exactly when its _version is above k,
# and that none did whenever the count is still k (one comparison per backward step).
WRITES = [0]


def _check_dtype(dtype: Any) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"Tensor: dtype {dtype!r} is not a numpy dtype (e.g. np.float32)") from None
    if dt.kind not in _DATA_KINDS:
        raise TypeError(f"Tensor: dtype {dt} is not supported; use a float, int or bool dtype")
    return dt


def _to_array(data: Any, dtype: Any, infer: bool = False) -> np.ndarray:
    """The array a new Tensor holds; refuses what no op could compute with.

    Python data becomes the default float dtype, or with `infer` (the `tensor()`
    factory) keeps its kind: bool, int64 or the default float dtype.
    """
    if isinstance(data, Tensor):
        data = data._data
    if dtype is not None:
        dtype = _check_dtype(dtype)
    if isinstance(data, np.ndarray | np.generic):
        array = np.asarray(data)
    elif data is None:
        raise TypeError("Tensor: data is None; expected a number, a (nested) list or an ndarray")
    elif isinstance(data, list | tuple) and any(isinstance(d, Tensor) for d in data):
        raise TypeError("Tensor: got a list of Tensors; combine them with stack() or cat()")
    else:
        array = _python_data(data, dtype if dtype is not None or infer else _default_dtype)
        if dtype is None and infer:
            kind = array.dtype.kind
            dtype = _default_dtype if kind == "f" else np.dtype(np.int64) if kind in "iu" else None
    if array.dtype.kind not in _DATA_KINDS:
        raise TypeError(f"Tensor: data of dtype {array.dtype} is not supported; "
                        "expected float, int or bool values")
    return array if dtype is None else array.astype(dtype, copy=False)


def _python_data(data: Any, dtype: Any) -> np.ndarray:
    try:
        return np.asarray(data, dtype=dtype)
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"Tensor: cannot make an array of {type(data).__name__} data ({err}); expected "
            "a number, a rectangular (nested) list of numbers or an ndarray"
        ) from None


class Tensor:
    """An n-dimensional array that records the ops applied to it for backward."""

    # Set only when used, so read with getattr(t, name, default): _hooks (register_hook on a
    # leaf) and _rebased (the nodes an in-place op moved this tensor off, with when).
    __slots__ = ("_data", "grad", "_rg", "_ctx", "name", "_version", "_hooks", "_rebased", "__weakref__")

    def __init__(
        self, data: Any, requires_grad: bool = False, dtype: Any = None, name: str | None = None
    ):
        self._data = _to_array(data, dtype)
        self.grad: Tensor | None = None
        self._ctx = None
        self.name = name
        self._rg = False
        self._version = 0
        if requires_grad is not False:
            self.requires_grad = requires_grad

    @classmethod
    def _wrap(cls, data: np.ndarray, requires_grad: bool, ctx: Any) -> Tensor:
        """Fast constructor for op outputs: no conversion, no checks."""
        t = object.__new__(Tensor)
        t._data = data
        t.grad = None
        t._rg = requires_grad
        t._ctx = ctx
        t.name = None
        t._version = 0
        return t

    # ------------------------------------------------------------ data and versions

    @property
    def data(self) -> np.ndarray:
        """The underlying array; assigning a new one counts as an in-place change."""
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        array = value._data if isinstance(value, Tensor) else value
        if not isinstance(array, np.ndarray):
            array = _to_array(array, self._data.dtype)
        if self._rg and (array.shape != self._data.shape or array.dtype != self._data.dtype):
            raise ValueError(
                f"Tensor.data: cannot assign an array of shape {array.shape} and dtype {array.dtype} "
                f"to a tensor that requires grad (shape {self._data.shape}, dtype {self._data.dtype}); "
                "make a new Tensor instead"
            )
        self._data = array
        self._bump_version()

    def _bump_version(self) -> None:
        """Record an in-place change, so a backward that saved the old values can refuse."""
        WRITES[0] += 1
        self._version = WRITES[0]

    # ------------------------------------------------------------ basic properties

    @property
    def requires_grad(self) -> bool:
        """Whether gradients flow to (leaf) or through (op output) this tensor."""
        return self._rg

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if not isinstance(value, bool | np.bool_):
            raise TypeError(f"requires_grad must be True or False, got {value!r}")
        if value and self._data.dtype not in DIFFERENTIABLE_DTYPES:
            raise TypeError(
                f"requires_grad=True needs a float32 or float64 tensor; got dtype {self._data.dtype}"
                " (integer and bool tensors are plain data, e.g. labels or masks)"
            )
        if not value and self._ctx is not None:
            raise RuntimeError("requires_grad: cannot turn off on an op output; use .detach()")
        self._rg = bool(value)

    def requires_grad_(self, value: bool = True) -> Tensor:
        """Set requires_grad in place and return self."""
        self.requires_grad = value
        return self

    @property
    def is_leaf(self) -> bool:
        """True for tensors created by the user rather than by an op."""
        return self._ctx is None

    @property
    def grad_fn(self) -> Any:
        """The recorded op (Context) that produced this tensor, or None for leaves."""
        return self._ctx

    @property
    def shape(self) -> Shape:
        """The array's shape."""
        return self._data.shape

    @property
    def dtype(self) -> np.dtype:
        """The array's numpy dtype."""
        return self._data.dtype

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return self._data.ndim

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    # ------------------------------------------------------------ conversions

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied)."""
        return self._data

    def item(self) -> float | int | bool:
        """The value of a one-element tensor as a Python number."""
        if self._data.size != 1:
            raise ValueError(f"item: only one-element tensors convert to a number, got shape {self.shape}")
        return self._data.item()

    def detach(self) -> Tensor:
        """A new tensor sharing the data, cut from the graph."""
        return Tensor._wrap(self._data, False, None)

    def zero_grad(self) -> None:
        """Forget the accumulated gradient."""
        self.grad = None

    def __repr__(self) -> str:
        extra = ", requires_grad=True" if self._rg else ""
        if self._ctx is not None:
            extra += f", op={self._ctx.fn.name}"
        if self.name:
            extra += f", name={self.name!r}"
        body = np.array2string(self._data, precision=4, threshold=20, separator=", ")
        return f"Tensor({body}, dtype={self._data.dtype}{extra})"

    __hash__ = object.__hash__  # by identity (== is elementwise, as in PyTorch)

    # ------------------------------------------------------------ operand coercion

    def _operand(self, other: Any) -> Tensor:
        """Turn a scalar/array operand into a constant tensor; scalars take our float dtype."""
        # Ordered by how often each kind of operand occurs: this runs on every binary op.
        if isinstance(other, Tensor):
            return other
        kind = type(other)
        if kind is float or kind is int:
            dtype = self._data.dtype if self._data.dtype.kind == "f" else _scalar_dtype(other)
            return Tensor._wrap(np.asarray(other, dtype=dtype), False, None)
        if kind is np.ndarray:
            return Tensor._wrap(other, False, None)
        if isinstance(other, bool | np.generic):
            dtype = self._data.dtype if self._data.dtype.kind == "f" else _scalar_dtype(other)
            return Tensor._wrap(np.asarray(other, dtype=dtype), False, None)
        if isinstance(other, np.ndarray | list | tuple):
            return Tensor(other)
        raise TypeError(f"unsupported operand type for Tensor op: {type(other).__name__}")


def _scalar_dtype(value: Any) -> np.dtype:
    """The dtype a scalar meeting an integer or bool tensor gets: int64 for ints, else the default float."""
    if isinstance(value, bool | np.bool_):
        return np.dtype(np.bool_)
    return np.dtype(np.int64) if isinstance(value, int | np.integer) else _default_dtype


def normalize_shape(shape: tuple) -> Shape:
    """A shape given as ints or as one tuple/list of ints, as a tuple of Python ints."""
    if len(shape) == 1 and isinstance(shape[0], tuple | list):
        shape = tuple(shape[0])
    for s in shape:
        if type(s) is not int:
            return tuple(int(s) for s in shape)
    return shape


def tensor(data: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False,
           name: str | None = None) -> Tensor:
    """A new tensor holding a copy of `data`, its dtype inferred as torch.tensor does.

    Python floats get the default float dtype, ints int64, bools bool; an
    ndarray or Tensor keeps its dtype. `device` may only be "cpu".
    """
    check_device("tensor", device)
    array = _to_array(data, dtype, infer=True)
    if array is _data_of(data):  # tensor() always copies, as torch.tensor does
        array = array.copy()
    return Tensor(array, requires_grad=requires_grad, name=name)


def _data_of(data: Any) -> Any:
    return data._data if isinstance(data, Tensor) else data


def check_device(op: str, device: Any) -> None:
    """Accept device=None or "cpu" (the only device here), so PyTorch code runs unchanged."""
    if device is not None and str(device) != "cpu":
        raise ValueError(f"{op}: device {device!r} is not available; tinygrad_bn computes on the CPU only")
