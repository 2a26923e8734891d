"""What backward() did at each op, read from the engine in this one place.

Drawings and the HTML viewer need, for every recorded op: its place in the
order backward() ran the ops, the gradient it received, and the gradient it
sent to each of its inputs. The engine records exactly that on every node it
runs (`Context.trace`, a `BackwardTrace(step, received, sent)`), so these are
thin readers of it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_bn.autograd import Context
from tinygrad_bn.tensor import Tensor


def received(ctx: Context) -> np.ndarray | None:
    """The gradient the op's output received in the last backward (None if none reached it)."""
    trace = ctx.trace
    return None if trace is None else trace.received


def backward_steps(root: Tensor, contexts: Any) -> dict[Context, int]:
    """Step of each op in `contexts` that the last backward ran: 1 is the first (the root)."""
    steps = {ctx: ctx.trace.step for ctx in contexts if ctx.trace is not None}
    if not steps:
        return {}
    # A graph can take part in several backward calls (retain_graph); number its own ops 1..n.
    order = sorted(steps, key=steps.get)
    return {ctx: i + 1 for i, ctx in enumerate(order)}


def sent(ctx: Context, uses: list[int]) -> list[np.ndarray | None]:
    """The gradient the op sent to each input in the last backward (None where none was needed)."""
    trace = ctx.trace
    if trace is None:
        return [None] * len(ctx.parents)
    return list(trace.sent)
