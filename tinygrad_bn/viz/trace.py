"""What backward() did at each op, read from the engine in this one place.

Drawings and the HTML viewer need, for every recorded op: its place in the
order backward() ran the ops (`backward_steps`), the gradient it received
(`received`), and the gradient it sent to each of its inputs (`sent`). The
engine of this release keeps only the last gradient an op received
(`Context.out_grad`), so:

- the order is recomputed with the scheduling rule of `autograd.run_backward`
  (pending-count topological order, last ready op first);
- what an op sent is recomputed by calling its backward again on the gradient
  it received, when its saved tensors are still there (`backward(retain_graph=True)`);
  after a plain backward, the gradient sent to an input that has no other use is
  that input's own gradient; any other is reported as not recorded (None).

An engine that records a backward trace per op (step index, gradient received,
gradients sent to each input) replaces these three functions' bodies and nothing else.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_bn.autograd import Context, no_grad
from tinygrad_bn.tensor import Tensor


def received(ctx: Context) -> np.ndarray | None:
    """The gradient the op's output received in the last backward (None if none reached it)."""
    return ctx.out_grad


def backward_steps(root: Tensor, contexts: Any) -> dict[Context, int]:
    """Step of each op in `contexts` (every op behind `root`): 1 is the root, as backward() ran."""
    pending: dict[Context, int] = {}
    for ctx in contexts:
        for parent in ctx.parents:
            if parent.grad_fn is not None:
                pending[parent.grad_fn] = pending.get(parent.grad_fn, 0) + 1
    ready = [root.grad_fn]
    steps: dict[Context, int] = {}
    while ready:
        ctx = ready.pop()
        steps[ctx] = len(steps) + 1
        for parent in ctx.parents:
            pctx = parent.grad_fn
            if pctx is not None:
                pending[pctx] -= 1
                if pending[pctx] == 0:
                    ready.append(pctx)
    return steps


def sent(ctx: Context, uses: list[int]) -> list[np.ndarray | None]:
    """The gradient the op sent to each input in the last backward (None where unknown or none).

    `uses[i]` is how many edges of the graph lead out of input i's tensor (its uses
    as an operand anywhere), for inferring what a released op sent.
    """
    g = received(ctx)
    if g is None:
        return [None] * len(ctx.parents)
    if not ctx.released:
        recomputed = _rerun_backward(ctx, g)
        if recomputed is not None:
            return recomputed
    out: list[np.ndarray | None] = []
    for parent, need, n_uses in zip(ctx.parents, ctx.needs_input_grad, uses, strict=True):
        if not need or n_uses != 1:
            out.append(None)
        elif parent.grad_fn is not None:
            out.append(received(parent.grad_fn))
        else:
            out.append(parent.grad.data if parent.grad is not None else None)
    return out


def _rerun_backward(ctx: Context, g: np.ndarray) -> list[np.ndarray | None] | None:
    """Call the op's backward on a copy of `g` without recording; None if it cannot run."""
    try:
        with no_grad():
            results = ctx.fn.backward(ctx, Tensor._wrap(g.copy(), False, None))
    except Exception:  # noqa: BLE001 - a rule that cannot run twice just means "not recorded"
        return None
    if not isinstance(results, tuple | list):
        results = (results,)
    if len(results) != len(ctx.parents):
        return None
    out: list[np.ndarray | None] = []
    for r, parent, need in zip(results, ctx.parents, ctx.needs_input_grad, strict=True):
        if r is None or not need:
            out.append(None)
            continue
        a = np.asarray(r.data if isinstance(r, Tensor) else r)
        out.append(a.astype(parent.dtype, copy=False) if a.shape == parent.shape else None)
    return out
