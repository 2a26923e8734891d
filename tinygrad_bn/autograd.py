"""Reverse-mode autodiff: Function/Context, the graph walk, grad modes, anomaly mode.

A `Function` is one node type of the graph. `Function.apply` runs its forward on
Tensors, and when a gradient is needed it records a `Context` on the output: the
inputs (parents), what the backward needs (`save_for_backward`), and the module
scope the op ran in. `run_backward` walks the recorded contexts from the roots
to the leaves in topological order (Kahn's algorithm, no recursion), calling each
`backward(ctx, grad_out)`. Backward rules are written with Tensor ops, so running
them with grad recording on (`create_graph=True`) gives differentiable gradients.

References: PyTorch's autograd semantics (accumulation into `.grad`,
retain_graph/create_graph, `torch.autograd.grad`), HIPS autograd, early tinygrad.
"""

from __future__ import annotations

import contextlib
import os
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from tinygrad_bn._scope import _state as _scope_state  # per thread; see _scope.py
from tinygrad_bn._scope import module_scope  # noqa: F401 - nn.Module imports it from here
from tinygrad_bn.tensor import Tensor

# ---------------------------------------------------------------- grad modes

_grad_enabled = True
_anomaly_enabled = False


def is_grad_enabled() -> bool:
    """True when ops record the graph for backward."""
    return _grad_enabled


@contextlib.contextmanager
def _set_grad_enabled(mode: bool) -> Iterator[None]:
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, mode
    try:
        yield
    finally:
        _grad_enabled = previous


def no_grad() -> contextlib.AbstractContextManager:
    """Context manager: ops inside it record nothing (inference, optimizer steps)."""
    return _set_grad_enabled(False)


def enable_grad() -> contextlib.AbstractContextManager:
    """Context manager: turn graph recording back on inside a `no_grad` block."""
    return _set_grad_enabled(True)


class AnomalyError(FloatingPointError):
    """A forward output or backward gradient became non-finite under detect_anomaly()."""


@contextlib.contextmanager
def detect_anomaly() -> Iterator[None]:
    """Raise at the first op whose forward output or backward gradient is non-finite.

    Costs a finiteness check per op and a stack capture per recorded op, so it is
    a debugging tool, off by default. Non-finite values otherwise propagate.
    """
    global _anomaly_enabled
    previous, _anomaly_enabled = _anomaly_enabled, True
    try:
        yield
    finally:
        _anomaly_enabled = previous


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _user_site() -> str:
    """The innermost stack frame outside this package, as 'file:line in func: code'."""
    for frame in reversed(traceback.extract_stack()[:-1]):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR):
            return f"{frame.filename}:{frame.lineno} in {frame.name}: {frame.line}"
    return "<inside tinygrad_bn>"


# ---------------------------------------------------------------- Function / Context


class Context:
    """What one recorded op keeps for its backward: inputs, saved tensors, scope."""

    # Class-level defaults: a Context is made for every op call, so __init__ only
    # sets what always differs.
    saved_tensors: tuple[Tensor, ...] | None = ()
    needs_input_grad: tuple[bool, ...] = ()
    scope: tuple = ()
    released = False
    out_grad: np.ndarray | None = None  # the last gradient that reached this node (for drawings)
    site: str | None = None  # the user code that created the op (anomaly mode)
    _out: np.ndarray | None = None

    def __init__(self, fn: type[Function], parents: tuple[Tensor, ...]):
        self.fn = fn
        self.parents = parents

    def save_for_backward(self, *tensors: Tensor | np.ndarray) -> None:
        """Keep tensors for backward; arrays are saved as constants (no gradient)."""
        for t in tensors:
            if not isinstance(t, Tensor):
                tensors = tuple(
                    t if isinstance(t, Tensor) else Tensor._wrap(np.asarray(t), False, None)
                    for t in tensors
                )
                break
        self.saved_tensors = tensors

    @property
    def output(self) -> Tensor:
        """The op's output as a graph tensor, for rules like d exp(x) = exp(x) dx.

        Saving the output Tensor itself would make a reference cycle (output ->
        ctx -> output); rebuilding it from the array keeps the graph acyclic.
        """
        if self._out is None:
            raise RuntimeError(f"{self.fn.name}: the output is only available during backward")
        return Tensor._wrap(self._out, True, self)

    def release(self) -> None:
        """Drop saved tensors; a later backward through this node raises."""
        self.saved_tensors = None
        self._out = None
        self.released = True

    def __repr__(self) -> str:
        return f"<Context {self.fn.name}>"


class Function:
    """Base class of every op: `forward(ctx, *tensors, **kw)` and `backward(ctx, grad)`.

    forward receives Tensors, computes on their `.data` with numpy and returns an
    ndarray. backward receives the output gradient as a Tensor and returns one
    gradient per input (a Tensor, an ndarray or None), written with Tensor ops
    when the op should support double backward.
    """

    name = "function"
    fused = False  # True for hand-derived kernels in tinygrad_bn/kernels (drawn differently)

    @staticmethod
    def forward(ctx: Context, *inputs: Tensor, **kwargs: Any) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, grad_out: Tensor) -> Any:
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Tensor, **kwargs: Any) -> Tensor:
        """Run forward on `inputs` and record the op when a gradient is needed."""
        ctx = Context(cls, inputs)
        try:
            out = cls.forward(ctx, *inputs, **kwargs)
        except (ValueError, IndexError) as err:
            shapes = ", ".join(str(t.shape) for t in inputs)
            raise type(err)(f"{cls.name}: invalid input(s) with shape(s) {shapes}: {err}") from err
        if _anomaly_enabled and out.dtype.kind == "f" and not np.isfinite(out).all():
            raise AnomalyError(
                f"{cls.name}: forward produced a non-finite value (inf or nan) at {_user_site()}"
            )
        if not _grad_enabled:
            return Tensor._wrap(out, False, None)
        needs = tuple([t._rg for t in inputs])
        if True not in needs:
            return Tensor._wrap(out, False, None)
        ctx.needs_input_grad = needs
        ctx.scope = _scope_state.scope
        ctx._out = out
        if _anomaly_enabled:
            ctx.site = _user_site()
        return Tensor._wrap(out, True, ctx)


# ---------------------------------------------------------------- the graph walk


def _as_grad(value: Any, like: Tensor, ctx: Context, index: int) -> Tensor:
    """Check one backward result against its input: a Tensor of the input's shape and dtype."""
    if not isinstance(value, Tensor):
        value = Tensor._wrap(np.asarray(value), False, None)
    if value.shape != like.shape:
        raise RuntimeError(
            f"{ctx.fn.name}.backward returned a gradient of shape {value.shape} for input "
            f"{index}, expected the input's shape {like.shape}"
        )
    if value.data.dtype != like.data.dtype:
        value = value.astype(like.data.dtype)
    return value


def _checked_grads(node: Context, results: tuple) -> list[Tensor | None]:
    """One gradient per input: None where not needed, else a Tensor of the input's shape/dtype."""
    checked: list[Tensor | None] = []
    for i, (r, parent, need) in enumerate(zip(results, node.parents, node.needs_input_grad)):
        if r is None or not need:
            checked.append(None)
        elif type(r) is Tensor and r.data.shape == parent.data.shape and r.data.dtype == parent.data.dtype:
            checked.append(r)  # the common case, checked inline
        else:
            checked.append(_as_grad(r, parent, node, i))
    return checked


def _check_finite(ctx: Context, grads: Sequence[Tensor | None]) -> None:
    for i, g in enumerate(grads):
        if g is not None and not np.isfinite(g.data).all():
            raise AnomalyError(
                f"{ctx.fn.name}: backward produced a non-finite gradient for input {i}; "
                f"the op was created at {ctx.site or '<unknown>'}"
            )


def _call_backward(node: Context, g: Tensor) -> Any:
    """Run one backward rule; in anomaly mode the ops inside it are not checked one by one.

    A non-finite gradient is then reported by `_check_finite` against the op whose
    rule produced it and the user line that created that op, rather than against
    an op internal to the rule (the div inside sqrt's backward) and the backward() call.
    """
    global _anomaly_enabled
    if not _anomaly_enabled:
        return node.fn.backward(node, g)
    _anomaly_enabled = False
    try:
        return node.fn.backward(node, g)
    finally:
        _anomaly_enabled = True


def run_backward(
    roots: Sequence[Tensor],
    root_grads: Sequence[Tensor],
    retain_graph: bool,
    create_graph: bool,
    capture: Sequence[Tensor] | None = None,
) -> list[Tensor | None] | None:
    """Propagate `root_grads` from `roots` to every leaf that requires grad.

    With `capture=None` leaf gradients accumulate into `.grad`; otherwise the
    gradients of the `capture` tensors are returned and `.grad` is untouched.
    """
    # Count, for each recorded node, how many edges from reachable nodes point at
    # it; a node runs its backward once all of them have delivered a gradient.
    pending: dict[Context, int] = {}
    stack = [r._ctx for r in roots if r._ctx is not None]
    seen = set(stack)
    while stack:
        node = stack.pop()
        for parent in node.parents:
            pctx = parent._ctx
            if pctx is not None:
                pending[pctx] = pending.get(pctx, 0) + 1
                if pctx not in seen:
                    seen.add(pctx)
                    stack.append(pctx)

    capture_leaf = {id(t): i for i, t in enumerate(capture or ()) if t._ctx is None}
    capture_node: dict[Context, list[int]] = {}
    for i, t in enumerate(capture or ()):
        if t._ctx is not None:
            capture_node.setdefault(t._ctx, []).append(i)
    captured: list[Tensor | None] = [None] * len(capture or ())

    def deliver_to_leaf(leaf: Tensor, g: Tensor) -> None:
        if capture is not None:
            i = capture_leaf.get(id(leaf))
            if i is not None:
                captured[i] = g if captured[i] is None else captured[i] + g
        elif leaf._rg:
            if g.data.dtype != leaf.data.dtype:
                g = g.astype(leaf.data.dtype)
            leaf.grad = g if leaf.grad is None else leaf.grad + g

    grads: dict[Context, Tensor] = {}
    with _set_grad_enabled(create_graph):
        for root, g in zip(roots, root_grads):
            if root._ctx is None:
                deliver_to_leaf(root, g)
            else:
                grads[root._ctx] = grads[root._ctx] + g if root._ctx in grads else g
        ready = [c for c in dict.fromkeys(r._ctx for r in roots) if c is not None and c not in pending]

        while ready:
            node = ready.pop()
            g = grads.pop(node, None)
            if g is not None:
                if node.released:
                    raise RuntimeError(
                        f"{node.fn.name}: trying to backward through the graph a second time; "
                        "its saved tensors were freed by the first backward. "
                        "Pass retain_graph=True to the first backward() to keep them."
                    )
                if capture_node:
                    for i in capture_node.get(node, ()):
                        captured[i] = g
                node.out_grad = g.data
                results = _call_backward(node, g) if _anomaly_enabled else node.fn.backward(node, g)
                if type(results) is not tuple:
                    results = tuple(results) if isinstance(results, list) else (results,)
                if len(results) != len(node.parents):
                    raise RuntimeError(
                        f"{node.fn.name}.backward returned {len(results)} gradients, "
                        f"expected {len(node.parents)} (one per input)"
                    )
                results = _checked_grads(node, results)
                if _anomaly_enabled:
                    _check_finite(node, results)
                if not retain_graph:
                    node.release()
            else:
                results = (None,) * len(node.parents)
            for parent, pg in zip(node.parents, results):
                pctx = parent._ctx
                if pctx is None:
                    if pg is not None:
                        deliver_to_leaf(parent, pg)
                    continue
                if pg is not None:
                    existing = grads.get(pctx)
                    grads[pctx] = pg if existing is None else existing + pg
                left = pending[pctx] - 1
                pending[pctx] = left
                if left == 0:
                    ready.append(pctx)
    return captured if capture is not None else None


def _seed_grads(outputs: Sequence[Tensor], grad_outputs: Sequence[Any] | None, api: str) -> list:
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(
            f"{api}: got {len(grad_outputs)} grad_outputs for {len(outputs)} outputs"
        )
    seeds = []
    for out, g in zip(outputs, grad_outputs):
        if not isinstance(out, Tensor):
            raise TypeError(f"{api}: outputs must be Tensors, got {type(out).__name__}")
        if not out._rg:
            raise RuntimeError(
                f"{api}: tensor of shape {out.shape} does not require grad and has no graph "
                "(was it computed under no_grad(), or from inputs without requires_grad=True?)"
            )
        if g is None:
            if out.data.size != 1:
                raise RuntimeError(
                    f"{api}: grad can be created implicitly only for scalar outputs; got an "
                    f"output of shape {out.shape}. Pass a gradient of that shape."
                )
            g = Tensor._wrap(np.ones_like(out.data), False, None)
        elif not isinstance(g, Tensor):
            g = Tensor._wrap(np.asarray(g, dtype=out.data.dtype), False, None)
        if g.shape != out.shape:
            raise ValueError(
                f"{api}: gradient has shape {g.shape}, expected the output's shape {out.shape}"
            )
        seeds.append(g)
    return seeds


def backward(
    tensor: Tensor, grad: Any = None, retain_graph: bool | None = None, create_graph: bool = False
) -> None:
    """Accumulate d(tensor)/d(leaf) into `.grad` of every leaf that requires grad."""
    if retain_graph is None:
        retain_graph = create_graph
    seeds = _seed_grads([tensor], None if grad is None else [grad], "backward")
    run_backward([tensor], seeds, retain_graph, create_graph)


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Any = None,
    create_graph: bool = False,
    retain_graph: bool | None = None,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """Gradients of `outputs` with respect to `inputs`, without touching `.grad`."""
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if isinstance(grad_outputs, Tensor | np.ndarray):
        grad_outputs = [grad_outputs]
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"grad: inputs[{i}] must be a Tensor, got {type(t).__name__}")
        if not t._rg:
            raise RuntimeError(f"grad: inputs[{i}] (shape {t.shape}) does not require grad")
    if retain_graph is None:
        retain_graph = create_graph
    seeds = _seed_grads(outputs, grad_outputs, "grad")
    result = run_backward(outputs, seeds, retain_graph, create_graph, capture=inputs)
    assert result is not None
    for i, g in enumerate(result):
        if g is None and not allow_unused:
            raise RuntimeError(
                f"grad: inputs[{i}] (shape {inputs[i].shape}) was not used to compute the "
                "outputs; pass allow_unused=True to get None for it"
            )
        if g is not None and g.data.dtype != inputs[i].data.dtype:
            result[i] = g.astype(inputs[i].data.dtype)
    return tuple(result)
