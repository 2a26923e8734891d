"""What the HTML viewer's side panel shows for each node, computed when the page is written.

Only summaries travel into the page (statistics, a small histogram, shapes and
byte counts), never whole arrays, so a page stays small whatever the tensors'
sizes. Numbers are rounded to 4 significant digits.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinygrad_bn.viz import trace
from tinygrad_bn.viz.draw import formula_text, operand_texts
from tinygrad_bn.viz.model import Cluster, GraphModel, Node, element_id

HISTOGRAM_BINS = 16


def _num(x: float) -> float | None:
    """4 significant digits; None for nan/inf (JSON has neither)."""
    if not math.isfinite(x):
        return None
    return float(f"{x:.4g}")


def summarise(a: np.ndarray | None, bins: int = HISTOGRAM_BINS) -> dict[str, Any] | None:
    """Shape, dtype, norm, mean, std, min, max, counts of zeros and non-finite values, and a
    histogram of the finite values; None for no array."""
    if a is None:
        return None
    a = np.asarray(a)
    out: dict[str, Any] = {"shape": list(a.shape), "dtype": str(a.dtype), "size": int(a.size)}
    if a.size == 0 or a.dtype.kind not in "fiub":
        return out
    x = a.astype(np.float64, copy=False).ravel()
    finite = x[np.isfinite(x)]
    out["nonfinite"] = int(x.size - finite.size)
    out["zeros"] = int(np.count_nonzero(x == 0))
    if x.size == 1:
        out["value"] = _num(float(x[0])) if finite.size else None
    if finite.size == 0:
        return out
    out.update(
        norm=_num(float(np.sqrt(np.sum(finite * finite)))),
        mean=_num(float(finite.mean())), std=_num(float(finite.std())),
        min=_num(float(finite.min())), max=_num(float(finite.max())),
    )
    if finite.size > 1:
        lo, hi = float(finite.min()), float(finite.max())
        if lo == hi:
            counts = [int(finite.size)]
        else:
            counts = np.histogram(finite, bins=bins, range=(lo, hi))[0].tolist()
        out["hist"] = {"lo": _num(lo), "hi": _num(hi), "counts": counts}
    return out


def cluster_path(node: Node) -> list[Cluster]:
    """The boxes around `node`, outermost first."""
    return node.cluster.ancestors()[::-1] if node.cluster is not None else []


def svg_cluster_id(cluster: Cluster, prefix: str) -> str:
    """The subgraph name Graphviz writes as the cluster's SVG <title>."""
    return cluster.id.replace("cluster_", f"cluster_{prefix}", 1)


def node_record(node: Node, model: GraphModel, prefix: str, side: int, uses: dict[Node, int],
                bins: int) -> dict[str, Any]:
    """Everything the panel shows for one node."""
    t, ctx = node.tensor, node.ctx
    boxes = cluster_path(node)
    record: dict[str, Any] = {
        "id": prefix + node.id,
        "el": prefix + element_id(node),
        "side": side,
        "kind": node.kind,
        "op": ctx.fn.name if ctx is not None else None,
        "name": node.name,
        "drawn": not node.inline,
        "shape": list(t.shape),
        "dtype": str(t.dtype),
        "step": node.step,
        "boxes": [svg_cluster_id(c, prefix) for c in boxes],
        "path": " › ".join(c.title() for c in boxes),
        "value": summarise(t.data, bins),
        "consumers": [prefix + c.id for c in node.consumers],
        "root": t is model.root,
    }
    if node in model.zero_reasons:
        record["zero"] = model.zero_reasons[node]
    if ctx is None:
        record["grad"] = summarise(t.grad.data if t.grad is not None else None, bins)
        return record
    record["fused"] = node.kind == "fused"
    record["formula"] = formula_text(node, model)
    record["grad"] = summarise(trace.received(ctx), bins)
    letters, n_drawn = operand_texts(node, model)
    parents = [model.node_of(p) for p in ctx.parents]
    sent = trace.sent(ctx, [uses[p] for p in parents])
    record["sends"] = [
        {"to": prefix + p.id, "operand": i, "letter": letters[i] if n_drawn > 1 else None,
         "needs": bool(ctx.needs_input_grad[i]) if i < len(ctx.needs_input_grad) else False,
         "grad": summarise(g, bins)}
        for i, (p, g) in enumerate(zip(parents, sent, strict=True))
    ]
    saved = ctx.saved_tensors
    if saved is None or ctx.released:
        record["saved"] = {"released": True, "items": [], "bytes": 0}
    else:
        items = [{"shape": list(s.shape), "dtype": str(s.dtype), "bytes": int(s.data.nbytes)}
                 for s in saved]
        record["saved"] = {"released": False, "items": items,
                           "bytes": sum(i["bytes"] for i in items)}
    return record


def model_records(model: GraphModel, prefix: str, side: int, bins: int) -> list[dict[str, Any]]:
    """A record per node, in graph order."""
    uses: dict[Node, int] = {n: 0 for n in model.nodes}
    for e in model.edges:
        uses[e.parent] += 1
    return [node_record(n, model, prefix, side, uses, bins) for n in model.nodes]


def cluster_records(model: GraphModel, prefix: str) -> list[dict[str, Any]]:
    """Every box: those drawn unfolded the page can fold and unfold; folded ones are nodes."""
    out = []
    for c in model.clusters:
        out.append({
            "id": svg_cluster_id(c, prefix), "title": c.title(), "kind": c.kind,
            "ops": c.n_ops, "folded": c.folded,
            "parent": svg_cluster_id(c.parent, prefix) if c.parent is not None else None,
            "el": prefix + c.node_id,
        })
    return out
