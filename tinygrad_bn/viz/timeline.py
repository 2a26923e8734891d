"""The viewer's step-through: the order backward() ran the ops, synchronised across two graphs.

For one graph a tick is one op, in backward order. For two (composed vs fused),
the graphs are matched where they hold the same tensors, and the ticks move both
sides together through those shared ops; between them each side walks its own
ops (the 13 primitives of a composed BatchNorm on one side while the other stays
on its single fused node). Every op of each side is visited, in its own order.

Two nodes match when they compute the same thing: bottom-up, leaves with the
same name and shape (or the same values, for unnamed ones) and ops with the
same name over matched inputs; top-down from the roots, ops with the same name
in the same operand position of matched ops.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from tinygrad_bn.viz.model import GraphModel, Node

# Unnamed leaves are matched by their values; hashing bigger arrays costs more than it helps.
_MAX_HASHED_ELEMENTS = 1 << 20


def backward_order(model: GraphModel) -> list[Node]:
    """The ops in the order backward() ran them."""
    return sorted((n for n in model.ops if n.step is not None), key=lambda n: n.step)


def match(a: GraphModel, b: GraphModel) -> dict[Node, Node]:
    """Nodes of `a` paired with the nodes of `b` holding the same tensor."""
    pairs: dict[Node, Node] = {}
    taken: set[Node] = set()
    keys: dict[tuple, int] = {}
    key_a, key_b = _keys(a, keys), _keys(b, keys)
    by_key: dict[int, list[Node]] = {}
    for n in b.nodes:
        by_key.setdefault(key_b[n], []).append(n)
    count_a: dict[int, int] = {}
    for n in a.nodes:
        count_a[key_a[n]] = count_a.get(key_a[n], 0) + 1
    for n in a.nodes:
        found = by_key.get(key_a[n], [])
        if len(found) == 1 and count_a[key_a[n]] == 1:
            pairs[n] = found[0]
            taken.add(found[0])
    ra, rb = a.node_of(a.root), b.node_of(b.root)
    if ra.ctx.fn.name != rb.ctx.fn.name:
        return pairs
    pairs.setdefault(ra, rb)
    taken.add(rb)
    queue = deque([(ra, rb)])
    while queue:
        u, v = queue.popleft()
        if u.ctx is None or v.ctx is None or u.ctx.fn.name != v.ctx.fn.name:
            continue
        if len(u.ctx.parents) != len(v.ctx.parents):
            continue
        for pu, pv in zip(u.ctx.parents, v.ctx.parents, strict=True):
            nu, nv = a.node_of(pu), b.node_of(pv)
            if nu in pairs or nv in taken or not _alike(nu, nv):
                continue
            pairs[nu] = nv
            taken.add(nv)
            queue.append((nu, nv))
    return pairs


def _alike(u: Node, v: Node) -> bool:
    if (u.ctx is None) != (v.ctx is None) or u.tensor.shape != v.tensor.shape:
        return False
    if u.ctx is not None:
        return u.ctx.fn.name == v.ctx.fn.name
    return u.name == v.name


def _keys(model: GraphModel, interned: dict[tuple, int]) -> dict[Node, int]:
    """A structural key per node, equal for nodes computing the same thing (interned ints)."""
    out: dict[Node, int] = {}
    for n in model.nodes:  # graph order: inputs first
        t = n.tensor
        if n.ctx is not None:
            key: tuple = ("op", n.ctx.fn.name, tuple(out[model.node_of(p)] for p in n.ctx.parents))
        elif n.name is not None:
            key = ("leaf", n.name, t.shape)
        elif t.numel() <= _MAX_HASHED_ELEMENTS:
            key = ("values", t.shape, str(t.dtype), hash(np.ascontiguousarray(t.data).tobytes()))
        else:
            key = ("object", id(t))
        out[n] = interned.setdefault(key, len(interned))
    return out


def ticks(orders: list[list[str]], pairs: list[tuple[int, int]] | None = None,
          ) -> list[list[str | None]]:
    """The viewer's ticks: per tick, the current op id on each side (None: not started).

    `orders` are the sides' op ids in backward order; `pairs` the positions (i in
    side 0, j in side 1) of matched ops, increasing in both.
    """
    if len(orders) == 1:
        return [[op] for op in orders[0]]
    a, b = orders
    out: list[list[str | None]] = []
    ia = ib = -1
    for ja, jb in [*(pairs or []), (len(a), len(b))]:
        gap_a, gap_b = a[ia + 1:ja], b[ib + 1:jb]
        n = max(len(gap_a), len(gap_b))
        for t in range(n):
            # the shorter side spreads its ops over the gap, or stays where it was
            cur_a = gap_a[t * len(gap_a) // n] if gap_a else (a[ia] if ia >= 0 else None)
            cur_b = gap_b[t * len(gap_b) // n] if gap_b else (b[ib] if ib >= 0 else None)
            out.append([cur_a, cur_b])
        if ja < len(a):
            out.append([a[ja], b[jb]])
        ia, ib = ja, jb
    return out


def synchronised(a: GraphModel, b: GraphModel, prefixes: tuple[str, str],
                 ) -> list[list[str | None]]:
    """Ticks through both graphs' backward, together wherever they share tensors."""
    order_a, order_b = backward_order(a), backward_order(b)
    position_b = {n: j for j, n in enumerate(order_b)}
    pairs, last = [], -1
    matched = match(a, b)
    for i, n in enumerate(order_a):
        j = position_b.get(matched.get(n))
        if j is not None and j > last:
            pairs.append((i, j))
            last = j
    ids = [[prefixes[0] + n.id for n in order_a], [prefixes[1] + n.id for n in order_b]]
    return ticks(ids, pairs)
