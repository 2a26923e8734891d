"""Gradients that are zero by the graph's structure, not because they vanished.

A bias added just before a BatchNorm (in training) shifts every example of a
channel by the same amount, and BatchNorm subtracts the batch mean, so the loss
does not depend on that bias at all: its gradient is exactly zero in exact
arithmetic, and what a float computation leaves is rounding error (~1e-8 in
float32). Coloured by size, that looks like a vanishing gradient. This module
recognises the pattern in the graph, so drawings can say what it is.

The pattern: a leaf broadcast-added (directly, after reshapes, or as the bias of
a fused linear) to a tensor whose only uses centre it over every axis the leaf is
broadcast along: a fused batch norm, or `x - mean(x)` made of primitives
(`sum` over those axes, `mul` by 1/n, `sub`).
"""

from __future__ import annotations

from tinygrad_bn.viz.model import GraphModel, Node

_VIEW_OPS = ("reshape", "expand")


def zero_by_structure(node: Node, model: GraphModel) -> str | None:
    """Why `node`'s gradient is zero in exact arithmetic ('BatchNorm', 'mean subtraction'),
    or None when it is not (or `node` is not a leaf that gets a gradient)."""
    if node.ctx is not None or not node.tensor.requires_grad or not node.consumers:
        return None
    reasons = set()
    for consumer in node.consumers:
        reason = _shift_cancelled(node, consumer, model)
        if reason is None:
            return None
        reasons.add(reason)
    return " and ".join(sorted(reasons))


def _shift_cancelled(src: Node, op: Node, model: GraphModel) -> str | None:
    """The reason when `op`'s use of `src` is a per-channel shift that is centred away."""
    while op.ctx.fn.name in _VIEW_OPS and len(op.consumers) == 1:
        src, op = op, op.consumers[0]
    parents = op.ctx.parents
    out_shape = op.tensor.shape
    if op.ctx.fn.name == "add" and len(parents) == 2 and parents[0] is not parents[1]:
        shape = src.tensor.shape
        aligned = (1,) * (len(out_shape) - len(shape)) + tuple(shape)
        axes = {i for i, (a, b) in enumerate(zip(aligned, out_shape, strict=True))
                if a == 1 and b != 1}
    elif op.ctx.fn.name == "linear_fused" and len(parents) == 3 and parents[2] is src.tensor:
        axes = set(range(len(out_shape) - 1))
    else:
        return None
    if not axes:
        return None  # an offset of the output's own shape is not a shift
    centred = _centring(op, model)
    if centred is None or not axes <= centred[0]:
        return None
    return centred[1]


def _centring(x: Node, model: GraphModel) -> tuple[set[int], str] | None:
    """(axes, what) when every use of `x` centres it over `axes`; None otherwise."""
    uses = x.consumers
    ndim = x.tensor.ndim
    if len(uses) == 1 and uses[0].ctx.fn.name == "batch_norm_fused":
        if uses[0].ctx.parents[0] is x.tensor:
            return set(range(ndim)) - {1}, "BatchNorm"
        return None
    if len(uses) != 2:
        return None
    names = {u.ctx.fn.name: u for u in uses}
    total, sub = names.get("sum"), names.get("sub")
    if total is None or sub is None:
        return None
    minuend, subtrahend = sub.ctx.parents
    mean = subtrahend.grad_fn
    if minuend is not x.tensor or mean is None or mean.fn.name != "mul":
        return None
    # mean = sum(x) * (1/n): one operand is the sum, the other a constant
    others = [p for p in mean.parents if p.grad_fn is not total.ctx]
    if len(others) != 1 or others[0].requires_grad:
        return None
    kept = total.tensor.shape
    if len(kept) != ndim:
        return None  # a sum without keepdims: not the broadcast mean of x - mean(x)
    axes = {i for i, (n, k) in enumerate(zip(x.tensor.shape, kept, strict=True)) if k == 1 and n != 1}
    in_bn = any(
        c.kind == "composite" and c.name == "batch_norm"
        or c.kind == "module" and "BatchNorm" in type(c.module).__name__
        for c in (sub.cluster.ancestors() if sub.cluster is not None else ())
    )
    return axes, "BatchNorm" if in_bn else "mean subtraction"
