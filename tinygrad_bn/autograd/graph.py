"""The backward walk: from the roots to the leaves in topological order.

`run_backward` is Kahn's algorithm over the recorded Contexts (no recursion, so
a 100,000-op chain is fine): count how many consumers each node has, run a
node's backward once every consumer has delivered its gradient, and hand the
gradients of leaves to a sink (`.grad`, or the results of `grad()`). Backward
rules are written with Tensor ops, so with grad mode on (`create_graph=True`)
the gradients are themselves differentiable.

References: PyTorch's autograd semantics (accumulation into `.grad`,
retain_graph/create_graph, `torch.autograd.grad`), HIPS autograd, early tinygrad.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_bn.autograd.function import Context, node_of, released_message
from tinygrad_bn.autograd.grad_mode import STATE, AnomalyError, set_grad_enabled
from tinygrad_bn.autograd.hooks import hooked_grad, node_hooks
from tinygrad_bn.tensor import Tensor

# ---------------------------------------------------------------- the walk


def run_backward(
    roots: Sequence[Tensor],
    root_grads: Sequence[Tensor],
    retain_graph: bool,
    create_graph: bool,
    capture: Sequence[Tensor] | None = None,
    only: Sequence[Tensor] | None = None,
) -> list[Tensor | None] | None:
    """Propagate `root_grads` from `roots` to every leaf that requires grad.

    With `capture=None` leaf gradients accumulate into `.grad` (of the `only`
    leaves, when given); otherwise the gradients of the `capture` tensors are
    returned and `.grad` is untouched.
    """
    pending = _count_consumers(roots)
    sink = _GradSink(capture, only)
    grads: dict[Context, Tensor] = {}
    with set_grad_enabled(create_graph):
        ready = _seed_roots(roots, root_grads, pending, grads, sink)
        step, trace = 0, STATE.trace and not create_graph
        arrays_only = not create_graph and not STATE.anomaly  # fast_backward rules may run
        while ready:
            node = ready.pop()
            g = grads.pop(node, None)
            if g is None:  # nothing reached this node (e.g. only through unused outputs)
                results: Sequence[Tensor | None] = (None,) * len(node.parents)
            else:
                step += 1
                if node._hooks is not None or node._retained is not None:
                    g = node_hooks(node, g)
                if sink.watches_nodes:
                    sink.node(node, g)
                results = _run_node(node, g, retain_graph, arrays_only)
                if trace:  # what viewers draw later: three references, no new containers
                    node._trace_step, node._trace_received, node._trace_sent = step, g, results
                elif create_graph and STATE.trace:
                    _record_detached_trace(node, step, g, results)
            _send_to_parents(node, results, grads, pending, ready, sink)
        sink.finish()
    return sink.captured


def _seed_roots(roots: Sequence[Tensor], root_grads: Sequence[Tensor], pending: dict[Context, int],
                grads: dict[Context, Tensor], sink: _GradSink) -> list[Context]:
    """Hand the roots their gradients; the roots no other root depends on are ready to run."""
    for root, g in zip(roots, root_grads):
        if root._ctx is None:
            sink.leaf(root, g)
        else:
            _accumulate(grads, root._ctx, g)
    return [c for c in dict.fromkeys(r._ctx for r in roots) if c is not None and c not in pending]


def _send_to_parents(
    node: Context, results: Sequence[Tensor | None], grads: dict[Context, Tensor],
    pending: dict[Context, int], ready: list[Context], sink: _GradSink,
) -> None:
    """Hand each input its gradient; an op input whose consumers have all delivered is ready."""
    serial = node.serial
    for parent, pg in zip(node.parents, results):
        pctx = parent._ctx
        if pctx is not None and pctx.serial > serial:  # rebased by an in-place op since
            pctx = node_of(parent, node)
        if pctx is None:
            if pg is not None:
                sink.leaf(parent, pg)
            continue
        if pg is not None:
            existing = grads.get(pctx)
            grads[pctx] = pg if existing is None else existing + pg
        left = pending[pctx] - 1
        pending[pctx] = left
        if left == 0:
            ready.append(pctx)


def _count_consumers(roots: Sequence[Tensor]) -> dict[Context, int]:
    """For each node reachable from the roots, how many edges from reachable nodes point at it."""
    pending: dict[Context, int] = {}
    stack = [r._ctx for r in roots if r._ctx is not None]
    seen = set(stack)
    while stack:
        node = stack.pop()
        for parent in node.parents:
            pctx = parent._ctx
            if pctx is not None and pctx.serial > node.serial:  # rebased by an in-place op since
                pctx = node_of(parent, node)
            if pctx is not None:
                pending[pctx] = pending.get(pctx, 0) + 1
                if pctx not in seen:
                    seen.add(pctx)
                    stack.append(pctx)
    return pending


def _accumulate(grads: dict[Context, Tensor], node: Context, g: Tensor) -> None:
    existing = grads.get(node)
    grads[node] = g if existing is None else existing + g


def _run_node(node: Context, g: Tensor, retain_graph: bool, arrays_only: bool) -> list[Tensor | None]:
    """Run one node's backward rule and check what it returned against its inputs."""
    if node.released:
        raise RuntimeError(released_message(node))
    fast = node.fn.fast_backward
    if fast is not None and arrays_only:
        return _checked_arrays(node, fast(node, g._data), retain_graph)
    results = node.fn.backward(node, g) if not STATE.anomaly else _backward_in_anomaly_mode(node, g)
    if type(results) is not tuple:
        results = tuple(results) if isinstance(results, list) else (results,)
    if len(results) != len(node.parents):
        raise RuntimeError(
            f"{node.fn.name}.backward returned {len(results)} gradients, "
            f"expected {len(node.parents)} (one per input)"
        )
    checked = _checked_grads(node, results)
    if not retain_graph:
        node.release()
    return checked


def _checked_arrays(node: Context, results: tuple, retain_graph: bool) -> list[Tensor | None]:
    """fast_backward's arrays as gradient Tensors, each in its input's dtype (mixed-dtype ops
    promote; shapes need no check, these rules are the engine's own and tested)."""
    out: list[Tensor | None] = []
    for r, parent, need in zip(results, node.parents, node.needs_input_grad):
        if r is None or not need:
            out.append(None)
            continue
        dtype = parent._data.dtype
        if r.dtype is not dtype and r.dtype != dtype:  # identity first: `!=` on dtypes is slow
            r = r.astype(dtype)
        out.append(Tensor._wrap(r, False, None))
    if not retain_graph:
        node.release()
    return out


def _record_detached_trace(node: Context, step: int, g: Tensor, results: list[Tensor | None]) -> None:
    """The trace of a create_graph backward: only the arrays, since these gradients carry
    graphs that lead back to this node and keeping them would make a reference cycle."""
    node._trace_step, node._trace_received = step, g.detach()
    node._trace_sent = [None if r is None else r.detach() for r in results]


class _GradSink:
    """Where gradients end: accumulated into leaves' `.grad`, or captured for `grad()`."""

    def __init__(self, capture: Sequence[Tensor] | None, only: Sequence[Tensor] | None = None):
        self.captured: list[Tensor | None] | None = None if capture is None else [None] * len(capture)
        self._leaf_slot = {id(t): i for i, t in enumerate(capture or ()) if t._ctx is None}
        self._node_slots: dict[Context, list[int]] = {}
        for i, t in enumerate(capture or ()):
            if t._ctx is not None:
                self._node_slots.setdefault(t._ctx, []).append(i)
        self.watches_nodes = bool(self._node_slots)  # grad() of a non-leaf tensor
        self._only = None if only is None else {id(t) for t in only}
        self._hooked: dict[int, tuple[Tensor, Tensor]] = {}  # leaves with hooks: their total so far

    def leaf(self, leaf: Tensor, g: Tensor) -> None:
        """Deliver a leaf's gradient (each operand's gradient has that operand's dtype)."""
        if self.captured is not None:
            i = self._leaf_slot.get(id(leaf))
            if i is not None:
                self.captured[i] = g if self.captured[i] is None else self.captured[i] + g
        elif leaf._rg and (self._only is None or id(leaf) in self._only):
            if getattr(leaf, "_hooks", None):  # hooks see the leaf's whole gradient: deliver at the end
                _, total = self._hooked.get(id(leaf), (leaf, None))
                self._hooked[id(leaf)] = (leaf, g if total is None else total + g)
                return
            _accumulate_into(leaf, g)

    def node(self, node: Context, g: Tensor) -> None:
        """A node's total gradient, once all of it has arrived: captured when asked for."""
        for i in self._node_slots.get(node, ()):
            self.captured[i] = g

    def finish(self) -> None:
        """Run the leaves' hooks on their total gradients and deliver what they return."""
        for leaf, total in self._hooked.values():
            for hook in list(leaf._hooks.values()):
                total = hooked_grad(hook, total, leaf)
            _accumulate_into(leaf, total)


def _accumulate_into(leaf: Tensor, g: Tensor) -> None:
    if g._data.dtype != leaf._data.dtype:
        g = g.to(leaf._data.dtype)
    leaf.grad = g if leaf.grad is None else leaf.grad + g


# ---------------------------------------------------------------- checks on backward results


def _checked_grads(node: Context, results: tuple) -> list[Tensor | None]:
    """One gradient per input: None where not needed, else a Tensor of the input's shape/dtype."""
    checked: list[Tensor | None] = []
    for r, parent, need in zip(results, node.parents, node.needs_input_grad):
        if r is None or not need:
            checked.append(None)
            continue
        expected = parent._data
        if type(r) is Tensor and r._data.shape == expected.shape and r._data.dtype == expected.dtype:
            checked.append(r)  # the common case, checked inline
        else:
            checked.append(_as_grad(r, parent, node, len(checked)))
    return checked


def _as_grad(value: Any, like: Tensor, node: Context, index: int) -> Tensor:
    """Check one backward result against its input: a Tensor of the input's shape and dtype."""
    if not isinstance(value, Tensor):
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise TypeError(
                f"{node.fn.name}.backward returned a {type(value).__name__} for input {index}, "
                "expected a Tensor, an ndarray or None"
            )
        value = Tensor._wrap(array, False, None)
    if value.shape != like.shape:
        raise RuntimeError(
            f"{node.fn.name}.backward returned a gradient of shape {value.shape} for input "
            f"{index}, expected the input's shape {like.shape}"
        )
    if value._data.dtype.kind != "f":
        raise TypeError(
            f"{node.fn.name}.backward returned a gradient of dtype {value.dtype} for input {index}, "
            f"expected a float gradient (the input is {like.dtype})"
        )
    if value._data.dtype != like._data.dtype:
        value = value.to(like._data.dtype)
    return value


def _backward_in_anomaly_mode(node: Context, g: Tensor) -> Any:
    """Run one rule with per-op anomaly checks off, then check the rule's results as a whole.

    A non-finite gradient is then reported against the op whose rule produced it
    and the user line that created that op, rather than against an op internal
    to the rule (the div inside sqrt's backward) and the backward() call.
    """
    STATE.anomaly = False
    try:
        results = node.fn.backward(node, g)
    finally:
        STATE.anomaly = True
    as_tuple = results if isinstance(results, tuple | list) else (results,)
    for i, r in enumerate(as_tuple):
        data = r._data if isinstance(r, Tensor) else r
        if isinstance(data, np.ndarray) and data.dtype.kind == "f" and not np.isfinite(data).all():
            raise AnomalyError(
                f"{node.fn.name}: backward produced a non-finite gradient for input {i}; "
                f"the op was created at {node.site or '<unknown>'}"
            )
    return results


# ---------------------------------------------------------------- the public entry points


def _seed_grads(outputs: Sequence[Tensor], grad_outputs: Sequence[Any] | None, api: str) -> list[Tensor]:
    """The gradient each output starts from: given, or 1 for a one-element output."""
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"{api}: got {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
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
            if out._data.size != 1:
                raise RuntimeError(
                    f"{api}: grad can be created implicitly only for scalar outputs; got an "
                    f"output of shape {out.shape}. Pass a gradient of that shape."
                )
            g = Tensor._wrap(np.ones_like(out._data), False, None)
        elif not isinstance(g, Tensor):
            g = Tensor._wrap(np.asarray(g, dtype=out._data.dtype), False, None)
        if g.shape != out.shape:
            raise ValueError(f"{api}: gradient has shape {g.shape}, expected the output's shape {out.shape}")
        seeds.append(g)
    return seeds


def backward(
    tensors: Tensor | Sequence[Tensor], grad_tensors: Any = None, retain_graph: bool | None = None,
    create_graph: bool = False, inputs: Any = None,
) -> None:
    """Accumulate d(tensors)/d(leaf) into `.grad` of every leaf that requires grad (or of `inputs`)."""
    if retain_graph is None:
        retain_graph = create_graph
    tensors = [tensors] if isinstance(tensors, Tensor) else _as_list(tensors, "tensors")
    if grad_tensors is not None and not isinstance(grad_tensors, list | tuple):
        grad_tensors = [grad_tensors]
    if isinstance(inputs, Tensor):
        inputs = [inputs]
    seeds = _seed_grads(tensors, grad_tensors, "backward")
    run_backward(tensors, seeds, retain_graph, create_graph, only=inputs)


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Any = None,
    create_graph: bool = False,
    retain_graph: bool | None = None,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """Gradients of `outputs` with respect to `inputs`, without touching `.grad`."""
    outputs = [outputs] if isinstance(outputs, Tensor) else _as_list(outputs, "outputs")
    inputs = [inputs] if isinstance(inputs, Tensor) else _as_list(inputs, "inputs")
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
        if g is not None and g._data.dtype != inputs[i]._data.dtype:
            result[i] = g.to(inputs[i]._data.dtype)
    return tuple(result)


def _as_list(value: Any, arg: str) -> list:
    if isinstance(value, list | tuple):
        return list(value)
    raise TypeError(f"grad: {arg} must be a Tensor or a sequence of Tensors, got {type(value).__name__}")
