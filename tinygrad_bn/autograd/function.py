"""Function and Context: how one op runs forward and what it keeps for backward.

A `Function` is one node type of the graph. `Function.apply` runs its forward on
Tensors, and when a gradient is needed it records a `Context` on the output: the
inputs (parents), what the backward needs (`save_for_backward`) and the module
scope the op ran in. Primitives, fused kernels and users' own ops are all
written this way.
"""

from __future__ import annotations

import itertools
import operator
import os
import traceback
import zlib
from typing import Any, NamedTuple

import numpy as np

from tinygrad_bn.autograd.grad_mode import STATE, AnomalyError
from tinygrad_bn.tensor import WRITES, Tensor


class BackwardTrace(NamedTuple):
    """What one node saw in the last backward through it (`Context.trace`); viewers read it."""

    step: int  # 1 for the first node backward ran, then 2, 3, ...
    received: np.ndarray  # the gradient of the node's output
    sent: tuple[np.ndarray | None, ...]  # the gradient it sent to each input (None: not needed)


class Context:
    """What one recorded op keeps for its backward: inputs, saved tensors, scope."""

    # Class-level defaults: a Context is made for every op call, so __init__ only
    # sets what always differs.
    needs_input_grad: tuple[bool, ...] = ()
    serial = 0  # recorded ops are numbered in the order they ran (rebases compare them)
    scope: tuple = ()
    released = False
    site: str | None = None  # the user code that created the op (anomaly mode)
    _trace_step = 0  # set by the backward walk, with _trace_received and _trace_sent
    _hooks: dict | None = None  # register_hook on the op's output
    _retained: Any = None  # a weakref to the output, after retain_grad()
    _saved: tuple[Tensor, ...] = ()
    _writes = 0  # tensor.WRITES when the tensors were saved
    _check_always = False  # released, or anomaly checksums to compare: no fast path
    _checksums: tuple[int, ...] | None = None  # anomaly mode: checksums of the saved arrays
    _out: np.ndarray | None = None

    def __init__(self, fn: type[Function], parents: tuple[Tensor, ...]):
        self.fn = fn
        self.parents = parents

    def save_for_backward(self, *tensors: Tensor | np.ndarray) -> None:
        """Keep tensors for backward; arrays are saved as constants (no gradient)."""
        for t in tensors:
            if not isinstance(t, Tensor):
                tensors = tuple(t if isinstance(t, Tensor) else Tensor._wrap(np.asarray(t), False, None)
                                for t in tensors)
                break
        self._saved = tensors
        self._writes = WRITES[0]  # backward refuses tensors written through the Tensor API after this

    @property
    def saved_tensors(self) -> tuple[Tensor, ...]:
        """The saved tensors, after checking that none was changed in place since forward."""
        if self._writes == WRITES[0] and not self._check_always:  # nothing written since: common case
            return self._saved
        if self.released:
            raise RuntimeError(released_message(self))
        for t in self._saved:
            if t._version > self._writes:
                _raise_modified(self, t, "an in-place op or an assignment to .data")
        if self._checksums is not None:
            for t, crc in zip(self._saved, self._checksums):
                if _checksum(t._data) != crc:
                    _raise_modified(self, t, "its values changed through numpy")
        return self._saved

    @property
    def output(self) -> Tensor:
        """The op's output as a graph tensor, for rules like d exp(x) = exp(x) dx.

        Saving the output Tensor itself would make a reference cycle (output ->
        ctx -> output); rebuilding it from the array keeps the graph acyclic.
        """
        if self._out is None:
            raise RuntimeError(f"{self.fn.name}: the output is only available during backward")
        return Tensor._wrap(self._out, True, self)

    @property
    def trace(self) -> Any:
        """What the last backward through this node did (a graph.BackwardTrace), or None."""
        if not self._trace_step:
            return None
        sent = tuple(None if t is None else t._data for t in self._trace_sent)
        return BackwardTrace(self._trace_step, self._trace_received._data, sent)

    def release(self) -> None:
        """Drop saved tensors; a later backward through this node raises."""
        self._saved = ()
        self._out = None
        self.released = True
        self._check_always = True

    def __repr__(self) -> str:
        return f"<Context {self.fn.name}>"


def node_of(parent: Tensor, consumer: Context) -> Context | None:
    """The node `parent` had when `consumer` ran: its current one, unless an in-place op
    rebased it since, in which case the one before (kept in `parent._rebased`)."""
    node = parent._ctx
    if node is None or node.serial < consumer.serial:
        return node
    for before, since in reversed(getattr(parent, "_rebased", ())):
        if since > consumer.serial:
            node = before
    return node


class Function:
    """Base class of every op: `forward(ctx, *tensors, **kw)` and `backward(ctx, grad)`.

    forward receives Tensors, computes on their `.data` with numpy and returns an
    ndarray. backward receives the output gradient as a Tensor and returns one
    gradient per input (a Tensor, an ndarray or None), written with Tensor ops
    when the op should support double backward.
    """

    name = "function"  # subclasses get their class name unless they set one
    # Optional: the same rule on arrays, used when no graph of the gradient is needed
    # (create_graph=False): it skips building a Tensor per intermediate (fast_backward(ctx, g_array)).
    fast_backward: Any = None
    fused = False  # True for hand-derived kernels in tinygrad_bn/kernels (drawn differently)
    backend = "numpy"  # what computes it: "numpy", or "numba" for the compiled kernels

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__

    @staticmethod
    def forward(ctx: Context, *inputs: Tensor, **kwargs: Any) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, grad_out: Tensor) -> Any:
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Tensor, **kwargs: Any) -> Tensor:
        """Run forward on `inputs` and record the op when a gradient is needed."""
        state = STATE
        if state.anomaly:
            return _apply_in_anomaly_mode(cls, inputs, kwargs)
        try:
            needs = tuple(map(_requires_grad, inputs)) if state.grad_enabled else ()
        except AttributeError:
            _raise_not_tensors(cls, inputs)
        record = True in needs
        # forward rules stash things on ctx; an op that records nothing gets a bare
        # scratch context (no parents, keeps nothing), which is much cheaper to make.
        ctx = Context(cls, inputs) if record else object.__new__(_Scratch)
        try:
            out = cls.forward(ctx, *inputs, **kwargs)
        except (ValueError, IndexError) as err:
            _raise_with_shapes(cls, inputs, err)
        if type(out) is not np.ndarray or out.dtype.kind == "O":
            out = _checked_output(cls, out)
        if not record:
            return Tensor._wrap(out, False, None)
        ctx.needs_input_grad = needs
        # When this op ran, so the walk can tell an input later moved onto a new node by an
        # in-place op (graph rebase) and still send this op's gradient to the old one.
        ctx.serial = next(_SERIALS)
        ctx.scope = state.scope
        ctx._out = out
        return Tensor._wrap(out, True, ctx)


_requires_grad = operator.attrgetter("_rg")
_SERIALS = itertools.count(1)


class _Scratch(Context):
    """What forward writes into when nothing is recorded: saving is a no-op."""

    def save_for_backward(self, *tensors: Tensor | np.ndarray) -> None:
        pass


def _apply_in_anomaly_mode(cls: type[Function], inputs: tuple, kwargs: dict) -> Tensor:
    """apply, plus: a finite forward output, checksums of what was saved, the user's line."""
    STATE.anomaly = False  # the checks below judge this op as a whole
    try:
        out = cls.apply(*inputs, **kwargs)
    finally:
        STATE.anomaly = True
    if out._data.dtype.kind == "f" and not np.isfinite(out._data).all():
        raise AnomalyError(f"{cls.name}: forward produced a non-finite value (inf or nan) at {_user_site()}")
    ctx = out._ctx
    if ctx is not None:
        ctx._checksums = tuple(_checksum(t._data) for t in ctx._saved)
        ctx._check_always = True  # saved_tensors must compare the checksums
        ctx.site = _user_site()
    return out


# ---------------------------------------------------------------- messages and checks


def _raise_with_shapes(fn: type[Function], inputs: tuple, err: Exception) -> None:
    shapes = ", ".join(str(getattr(t, "shape", type(t).__name__)) for t in inputs)
    raise type(err)(f"{fn.name}: invalid input(s) with shape(s) {shapes}: {err}") from err


def _raise_not_tensors(fn: type[Function], inputs: tuple) -> None:
    bad = next(i for i, t in enumerate(inputs) if not isinstance(t, Tensor))
    raise TypeError(
        f"{fn.name}.apply: input {bad} is a {type(inputs[bad]).__name__}, not a Tensor; pass "
        "non-tensor arguments by keyword (they reach forward as keyword arguments)"
    )


def _checked_output(fn: type[Function], out: Any) -> np.ndarray:
    """forward's result as an ndarray, or a TypeError that says what was returned."""
    if isinstance(out, np.generic):
        out = np.asarray(out)
    elif isinstance(out, Tensor):
        raise TypeError(f"forward of {fn.name} must return an ndarray, got Tensor; use x.data")
    elif not isinstance(out, np.ndarray):
        raise TypeError(f"forward of {fn.name} must return an ndarray, got {type(out).__name__}")
    if out.dtype.kind not in "biuf":
        raise TypeError(f"forward of {fn.name} must return a numeric ndarray, got dtype {out.dtype}")
    return out


def _checksum(a: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(a).view(np.uint8)) if a.size else 0


def _raise_modified(ctx: Context, t: Tensor, what: str) -> None:
    index = next(i for i, s in enumerate(ctx._saved) if s is t)
    label = f"'{t.name}'" if t.name else f"{index} (shape {t.shape}, dtype {t.dtype})"
    raise RuntimeError(
        f"{ctx.fn.name}: saved tensor {label} was modified in place after the op ran ({what}); "
        "its backward would use the new values. Compute on a copy (x.clone() / x.data.copy()) "
        "or run backward before changing it."
    )


def released_message(ctx: Context) -> str:
    return (
        f"{ctx.fn.name}: trying to backward through the graph a second time; its saved tensors "
        "were freed by the first backward. Pass retain_graph=True to the first backward() to keep them."
    )


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _user_site() -> str:
    """The innermost stack frame outside this package, as 'file:line in func: code'."""
    for frame in reversed(traceback.extract_stack()[:-1]):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR):
            return f"{frame.filename}:{frame.lineno} in {frame.name}: {frame.line}"
    return "<inside tinygrad_bn>"
