"""draw_graph and draw_comparison: GraphModels turned into a graphviz.Digraph."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import graphviz

from tinygrad_bn.tensor import Tensor
from tinygrad_bn.viz import style, trace
from tinygrad_bn.viz.model import (
    Cluster,
    GraphModel,
    Node,
    auto_fold,
    build,
    element_id,
    resolve_collapse,
)
from tinygrad_bn.viz.output import pipe
from tinygrad_bn.viz.zeros import zero_by_structure

VIEWS = ("forward", "backward")
RANKDIRS = ("TB", "LR", "BT", "RL")
LAYOUTS = ("auto", "normal", "compact")
# A 10-layer MLP with composed BatchNorm has ~230 nodes and still reads in a browser;
# beyond ~300 the layout stops helping, so bigger graphs fold their largest modules.
DEFAULT_MAX_NODES = 300
# A chain of more than ~40 ops top to bottom is a picture several screens tall (each rank
# is ~0.6 inch); laid out left to right with tighter spacing it fits a landscape screen.
COMPACT_ABOVE_RANKS = 40

_SYMBOLS = {"add": "+", "sub": "−", "mul": "×", "div": "/", "pow": "**", "matmul": "@"}
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
OPTION_NAMES = ("view", "params", "show_grads", "show_values", "show_saved", "collapse",
                "rankdir", "layout", "max_nodes", "legend")


@dataclass(frozen=True)
class _Options:
    view: str
    show_grads: bool
    show_values: bool
    show_saved: bool
    prefix: str = ""
    compact: bool = False  # one detail line per node: shape · dtype · ‖g‖


class Drawing(graphviz.Digraph):
    """The graphviz.Digraph that draw_graph and draw_comparison return.

    Jupyter shows it inline as SVG; without Graphviz's `dot` that raises the
    project's DotNotFoundError (saying how to install it) instead of graphviz's
    own error. It remembers what it drew, so `render(drawing, "x.html")` can write
    the interactive viewer of the same graph.
    """

    drawn: tuple[tuple[Tensor, ...], tuple[str, ...] | None, dict[str, Any]] | None = None

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kwargs: Any) -> dict:
        wanted = set(include) if include is not None else {"image/svg+xml"}
        wanted -= set(exclude or ())
        return {"image/svg+xml": self._repr_svg_()} if "image/svg+xml" in wanted else {}

    def _repr_svg_(self) -> str:
        return pipe(self, "svg", api="display").decode("utf-8")


@dataclass
class Plan:
    """What a drawing is made of: the prepared models, options, and layout decisions."""

    models: list[GraphModel]
    labels: tuple[str, ...] | None
    view: str
    show_grads: bool
    show_values: bool
    show_saved: bool
    max_nodes: int | None
    rankdir: str
    compact: bool
    ranks: int
    legend: bool
    prefixes: list[str] = field(default_factory=list)
    roots: tuple[Tensor, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)  # as given, for render(..., "x.html")


def draw_graph(
    root: Tensor,
    *,
    view: str = "backward",
    params: Any = None,
    show_grads: bool = True,
    show_values: bool = False,
    show_saved: bool = False,
    collapse: Any = None,
    rankdir: str | None = None,
    layout: str = "auto",
    max_nodes: int | None = DEFAULT_MAX_NODES,
    legend: bool = True,
) -> Drawing:
    """Draw the graph that produced `root` as a graphviz.Digraph (DOT in `.source`).

    view: "backward" draws the gradient's path from the root to the leaves, edges
    labelled with the gradient's shape and ops numbered in the order backward()
    runs them; "forward" draws data flowing from the leaves to the root.
    params: {name: Tensor} naming tensors drawn as parameters, or an nn.Module whose
    parameter and module names to use (default: the outermost module that ran).
    show_grads: after a backward, print each tensor's gradient norm and max |g|
    (a scalar's signed value and gradient) and fill it by a log colour scale of
    max |g|. show_values: mean/std/min/max of each value. show_saved: what each op
    keeps for backward ("released" once freed).
    collapse: fold boxes into single nodes: a list of module or composite names, or
    Modules; "all" (every module with no sub-module and every outermost composite:
    one node per layer and per loss) or an int n (the innermost boxes with more than
    n ops). max_nodes: above this many nodes the largest innermost boxes fold
    automatically, then long chains of ops (None: never).
    layout: "normal", "compact" (tighter spacing, left to right unless `rankdir` is
    given) or "auto" (compact when the graph is more than COMPACT_ABOVE_RANKS ops
    deep). rankdir: "TB", "LR", "BT" or "RL" (default TB, LR when compact).
    """
    options = dict(view=view, params=params, show_grads=show_grads, show_values=show_values,
                   show_saved=show_saved, collapse=collapse, rankdir=rankdir, layout=layout,
                   max_nodes=max_nodes, legend=legend)
    return emit(plan([root], None, options, "draw_graph"))


def draw_comparison(
    a: Tensor,
    b: Tensor,
    labels: tuple[str, str] = ("composed", "fused"),
    **kwargs: Any,
) -> Drawing:
    """Two graphs side by side in one picture, each in a labelled box (e.g. composed vs fused).

    Keyword arguments are draw_graph's and apply to both sides, except that `params`
    may also be a pair (params for a, params for b).
    """
    return emit(plan([a, b], labels, kwargs, "draw_comparison"))


# ---------------------------------------------------------------- checks and setup


def plan(roots: list[Any], labels: Any, kwargs: dict[str, Any], api: str) -> Plan:
    """Check the options, build and fold the models, and decide the layout."""
    if labels is not None and not (
        isinstance(labels, tuple | list) and len(labels) == len(roots)
        and all(isinstance(s, str) for s in labels)
    ):
        raise TypeError(f"{api}: labels must be two strings, got {labels!r}")
    unknown = set(kwargs) - set(OPTION_NAMES)
    if unknown:
        raise TypeError(f"{api}: unexpected keyword argument(s) {sorted(unknown)}")
    view = kwargs.get("view", "backward")
    rankdir = kwargs.get("rankdir")
    layout = kwargs.get("layout", "auto")
    max_nodes = kwargs.get("max_nodes", DEFAULT_MAX_NODES)
    _check_options(api, view, rankdir, layout, max_nodes)
    params = kwargs.get("params")
    # a pair (params_a, params_b) names each side; anything else names both
    pair = len(roots) == 2 and isinstance(params, tuple) and len(params) == 2
    side_params = params if pair else (params,) * len(roots)
    models = []
    for side, root, p in zip("ab", roots, side_params, strict=False):
        try:
            models.append(_prepare(root, p, kwargs.get("collapse"), max_nodes, api))
        except (TypeError, ValueError) as err:
            if len(roots) == 1:
                raise
            raise type(err)(f"{err} (graph {side!r})") from None
    ranks = max(_ranks(m) for m in models)
    compact = layout == "compact" or (layout == "auto" and ranks > COMPACT_ABOVE_RANKS)
    return Plan(
        models, tuple(labels) if labels is not None else None, view,
        kwargs.get("show_grads", True), kwargs.get("show_values", False),
        kwargs.get("show_saved", False), max_nodes,
        rankdir or "TB", compact, ranks, kwargs.get("legend", True),
        prefixes=[""] if len(roots) == 1 else [f"{side}_" for side in "ab"],
        roots=tuple(roots), options=dict(kwargs),
    )


def emit(p: Plan, view: str | None = None) -> Drawing:
    """The Drawing of a plan, in its own view or in `view`."""
    view = view or p.view
    options_used = dict(p.options, view=view)
    single = p.labels is None
    g = _new_digraph(("backward" if view == "backward" else "forward") if single else "comparison",
                     p.rankdir, p.compact)
    title_opts = _Options(view, p.show_grads, p.show_values, p.show_saved, compact=p.compact)
    header = "" if single else f"{p.labels[0]} vs {p.labels[1]}"
    g.attr(label=_title(p, title_opts, header=header), labelloc="t", labeljust="l")
    for model, label, prefix in zip(p.models, p.labels or (None,), p.prefixes, strict=True):
        options = _Options(view, p.show_grads, p.show_values, p.show_saved, prefix=prefix,
                           compact=p.compact)
        if single:
            _emit_model(g, model, options)
            continue
        sub = graphviz.Digraph(name=f"cluster_{prefix.rstrip('_')}")
        n_ops = len(model.ops)
        sub.attr(
            label=f"<<b>{style.esc(label)}</b> · {n_ops} op{'s' * (n_ops != 1)}>",
            style="rounded", color="#404040", penwidth="1.5", fontsize="14", labeljust="l",
        )
        _emit_model(sub, model, options)
        g.subgraph(sub)
    if p.legend:
        _emit_legend(g, p.models, title_opts)
    g.drawn = (p.roots, p.labels, options_used)
    return g


def _check_options(api: str, view: Any, rankdir: Any, layout: Any, max_nodes: Any) -> None:
    if view not in VIEWS:
        raise ValueError(f"{api}: view must be 'forward' or 'backward', got {view!r}")
    if rankdir is not None and rankdir not in RANKDIRS:
        raise ValueError(f"{api}: rankdir must be one of {', '.join(RANKDIRS)}, got {rankdir!r}")
    if layout not in LAYOUTS:
        raise ValueError(f"{api}: layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if max_nodes is not None and (
        isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1
    ):
        raise ValueError(f"{api}: max_nodes must be a positive int or None, got {max_nodes!r}")


def _prepare(root: Any, params: Any, collapse: Any, max_nodes: int | None, api: str) -> GraphModel:
    model = build(root, params, api)
    for c in resolve_collapse(model, collapse, api):
        c.folded = True
    if max_nodes is not None:
        model.auto_folded = auto_fold(model, max_nodes)
    if model.has_grads:
        for node in model.nodes:
            reason = zero_by_structure(node, model)
            if reason is not None:
                model.zero_reasons[node] = reason
    return model


def _ranks(model: GraphModel) -> int:
    """How many ops deep the drawing is: the longest path of drawn ops (folds count once)."""
    depth: dict[str, int] = {}
    for e in model.edges:  # in graph order: an op's inputs come before it
        if e.parent.ctx is None:
            continue
        src, dst = element_id(e.parent), element_id(e.child)
        if src != dst:
            depth[dst] = max(depth.get(dst, 1), depth.get(src, 1) + 1)
    return max(depth.values(), default=1)


def _new_digraph(name: str, rankdir: str, compact: bool) -> Drawing:
    g = Drawing(name=name)
    if compact:
        g.attr(rankdir=rankdir, fontname=style.FONT, fontsize="12", nodesep="0.12",
               ranksep="0.18")
        g.attr("node", fontname=style.FONT, fontsize="9", margin="0.05,0.01", height="0.3")
    else:
        g.attr(rankdir=rankdir, fontname=style.FONT, fontsize="12", nodesep="0.25",
               ranksep="0.4")
        g.attr("node", fontname=style.FONT, fontsize="10", margin="0.1,0.04")
    g.attr("edge", fontname=style.FONT, fontsize="8", arrowsize="0.7")
    return g


def _title(p: Plan, options: _Options, header: str = "") -> str:
    if options.view == "backward":
        lines = ["<b>backward graph</b>: the gradient flows from the root to the leaves",
                 "#k on an op: the order backward() runs it · edge labels: gradient shapes"]
    else:
        lines = ["<b>forward graph</b>: data flows from the leaves to the root"]
    if header:
        lines.insert(0, f"<b>{style.esc(header)}</b>")
    model = p.models[0]
    if not header:
        n_ops = len(model.ops)
        n_leaves = sum(1 for n in model.nodes if n.ctx is None and not n.inline)
        lines.append(f"{n_ops} ops, {n_leaves} leaves")
    if options.show_grads and not model.has_grads:
        lines.append("no backward() has run yet: call it to see gradient sizes and colours")
    chosen = sum(sum(1 for c in m.clusters if c.folded) - m.auto_folded - m.folded_chains
                 for m in p.models)
    if chosen:
        lines.append(f"{chosen} box{'es' * (chosen != 1)} folded by collapse= (purple)")
    auto = sum(m.auto_folded for m in p.models)
    chains = sum(m.folded_chains for m in p.models)
    if auto:
        lines.append(
            f"auto-folded {auto} module{'s' * (auto != 1)} (largest first) to stay under "
            f"max_nodes={p.max_nodes}; pass max_nodes=None to draw every op"
        )
    if chains:
        folded_ops = sum(c.n_ops for m in p.models for c in m.clusters if c.kind == "chain")
        lines.append(
            f"folded {chains} chain{'s' * (chains != 1)} of ops ({folded_ops} ops) into "
            f"'k ops folded' boxes to stay under max_nodes={p.max_nodes}; "
            "pass max_nodes=None to draw every op"
        )
    if p.compact:
        lines.append(f"compact layout ({p.ranks} ops deep): pass layout='normal' for the "
                     "roomy one")
    return "<" + "<br align='left'/>".join(lines) + "<br align='left'/>>"


# ---------------------------------------------------------------- nodes


def operand_texts(node: Node, model: GraphModel) -> tuple[list[str], int]:
    """Operand text for `node`'s op (a letter per drawn input, the value of an inline
    constant) and how many distinct drawn inputs it has."""
    letters: dict[int, str] = {}
    texts = []
    for p in node.ctx.parents:
        pn = model.node_of(p)
        if pn.inline:
            texts.append(style.fmt_num(float(p.data.reshape(-1)[0])))
        else:
            texts.append(letters.setdefault(pn.index, _LETTERS[len(letters) % 26]))
    return texts, len(letters)


def formula_text(node: Node, model: GraphModel) -> str | None:
    """A short line saying what the op computed: 'a − b', 'a ** -0.5', 'over axis 0'."""
    ctx, name = node.ctx, node.ctx.fn.name
    texts, _ = operand_texts(node, model)
    if name in _SYMBOLS and len(texts) == 2:
        return f"{texts[0]} {_SYMBOLS[name]} {texts[1]}"
    if name == "where" and len(texts) == 3:
        return f"where({', '.join(texts)})"
    in_shape = ctx.parents[0].shape if ctx.parents else ()
    out_shape = node.tensor.shape
    if name in ("sum", "max"):
        kept = getattr(ctx, "kept_shape", out_shape)
        # kept_shape is Sum/Max's keepdims shape; without it, a keepdims output serves
        axes = [i for i, (n, k) in enumerate(zip(in_shape, kept, strict=False))
                if k == 1 and n != 1]
        if len(out_shape) == 0 or len(axes) == len(in_shape):
            return "over all axes"
        if axes:
            return f"over axis {', '.join(map(str, axes))}"
    if name in ("reshape", "expand"):
        return f"from {style.fmt_shape(in_shape)}"
    if name == "transpose" and hasattr(ctx, "axes"):
        return f"axes {tuple(int(a) for a in ctx.axes)}"
    if name == "cast":
        return f"from {ctx.parents[0].dtype}"
    return None


def _grad_line(g: Any) -> tuple[str, str]:
    """('‖g‖ 0.12 · max|g| 0.03', fill colour) for a gradient array."""
    norm, max_abs = style.grad_stats(g)
    text = f"‖g‖ {style.fmt_num(norm)} · max|g| {style.fmt_num(max_abs)}"
    return text, style.grad_colour(max_abs)


def _saved_line(node: Node) -> str:
    ctx = node.ctx
    if ctx.released:
        return "saved: released by backward()"
    try:
        saved = ctx.saved_tensors
    except RuntimeError:  # a saved tensor was modified in place; backward would refuse
        return "saved: modified in place since forward"
    if not saved:
        return "saved: nothing"
    shapes = ", ".join(style.fmt_shape(t.shape) for t in saved)
    return f"saved: {shapes} · {style.fmt_bytes(sum(t.data.nbytes for t in saved))}"


def _node_attrs(node: Node, model: GraphModel, options: _Options) -> dict[str, str]:
    t = node.tensor
    lines: list[str] = []
    note = None
    fill = "#f2f2f2" if node.kind == "constant" else style.NO_GRAD_FILL
    if node.ctx is not None:
        title = style.esc(node.ctx.fn.name)
        if node.name:
            title += f" → {style.esc(node.name)}"
        if options.view == "backward" and node.step is not None:
            note = f"#{node.step}"
        if node.kind == "fused":
            lines.append("fused kernel · hand-derived backward")
        formula = formula_text(node, model)
        if formula:
            lines.append(style.esc(formula))
        grad = trace.received(node.ctx)
    else:
        title = style.esc(node.name or node.kind)
        grad = t.grad.data if t.grad is not None else None
    lines.append(f"{style.fmt_shape(t.shape)} {t.dtype}")
    scalar = t.numel() == 1 and t.dtype.kind in "fiub"
    show_grad = options.show_grads and grad is not None
    if show_grad:
        text, fill = _grad_line(grad)
        if options.compact:
            # one line fewer per node; the fill already says how big the gradient is
            text = f"‖g‖ {style.fmt_num(style.grad_stats(grad)[0])}"
            if not scalar:
                lines[-1] += " · " + text
        elif not scalar:
            lines.append(text)
        if node in model.zero_reasons:
            fill = style.ZERO_GRAD_FILL
            lines.append(f"≈0 by structure: {style.esc(model.zero_reasons[node])} cancels it")
    if scalar:
        # micrograd's "data | grad": a scalar's own signed numbers say more than norms
        value = f"data {style.fmt_num(float(t.data.reshape(-1)[0]))}"
        if show_grad:
            value += f" | grad {style.fmt_num(float(grad.reshape(-1)[0]))}"
        lines.append(value)
    elif options.show_values:
        lines.append(style.esc(style.value_summary(t.data)))
    if options.show_saved and node.ctx is not None:
        lines.append(_saved_line(node))
    if t is model.root:
        scalar = t.numel() == 1
        lines.append(
            "<i>root: backward() starts here" + (" with gradient 1</i>" if scalar else "</i>")
            if options.view == "backward" else "<i>root (output)</i>"
        )
    attrs = dict(style.KIND_STYLE[node.kind])
    attrs["label"] = style.html_label(title, lines, note, size=8 if options.compact else 9)
    attrs["fillcolor"] = fill
    if "fontcolor" not in attrs or fill != "#f2f2f2":
        attrs["fontcolor"] = style.text_colour(fill)
    return attrs


def _fold_attrs(cluster: Cluster, model: GraphModel, options: _Options) -> dict[str, str]:
    inside = [n for n in model.nodes if _inside(n, cluster)]
    ops = [n for n in inside if n.ctx is not None]
    lines = [f"{len(ops)} op{'s' * (len(ops) != 1)} folded"]
    # the module's output: the last op whose result is used outside it (or the root)
    outputs = [
        n for n in ops
        if n.tensor is model.root or any(not _inside(c, cluster) for c in n.consumers)
    ]
    out = outputs[-1] if outputs else ops[-1]
    lines.append(f"out {style.fmt_shape(out.tensor.shape)} {out.tensor.dtype}")
    fill = style.NO_GRAD_FILL
    out_grad = trace.received(out.ctx)
    if options.show_grads and out_grad is not None:
        text, fill = _grad_line(out_grad)
        lines.append("out " + text)
    for p in [n for n in inside if n.kind == "parameter"][:4]:
        short = (p.name or "parameter").rsplit(".", 1)[-1]
        text = f"{style.esc(short)} {style.fmt_shape(p.tensor.shape)}"
        if options.show_grads and p.tensor.grad is not None:
            text += f" · max|g| {style.fmt_num(style.grad_stats(p.tensor.grad.data)[1])}"
            if p in model.zero_reasons:
                text += " (≈0 by structure)"
        lines.append(text)
    note = None
    steps = [n.step for n in ops if n.step is not None]
    if options.view == "backward" and steps:
        note = f"#{min(steps)}" if min(steps) == max(steps) else f"#{min(steps)}–{max(steps)}"
    attrs = dict(style.KIND_STYLE["folded"])
    attrs["label"] = style.html_label(style.esc(cluster.title()), lines, note)
    attrs["fillcolor"] = fill
    attrs["fontcolor"] = style.text_colour(fill)
    return attrs


def _inside(node: Node, cluster: Cluster) -> bool:
    c = node.cluster
    while c is not None:
        if c is cluster:
            return True
        c = c.parent
    return False


# ---------------------------------------------------------------- emission


# Ops that only re-view one tensor: a parameter's reshape or transpose sits beside
# the op that uses it rather than a rank below, so a module's box stays short.
_VIEW_OPS = ("reshape", "transpose", "expand", "cast")


def _side_rows(model: GraphModel) -> dict[Node, list[Node]]:
    """For each op, the parameters / constants (and their view ops) to draw on its rank."""
    side: set[Node] = set()
    for node in model.nodes:  # graph order: inputs before the ops that use them
        if node.inline or len(node.consumers) != 1:
            continue
        if node.ctx is None:
            if node.kind in ("parameter", "constant"):
                side.add(node)
        elif node.ctx.fn.name in _VIEW_OPS and all(
            model.node_of(p) in side for p in node.ctx.parents
        ):
            side.add(node)
    rows: dict[Node, list[Node]] = {}
    for node in model.nodes:
        if node not in side:
            continue
        anchor = node.consumers[0]
        while anchor in side:
            anchor = anchor.consumers[0]
        # rank=same holds only inside one subgraph, and means nothing once folded away
        if anchor.cluster is node.cluster and element_id(anchor) == anchor.id:
            rows.setdefault(anchor, []).append(node)
    return rows


def _emit_model(g: graphviz.Digraph, model: GraphModel, options: _Options) -> None:
    """Add the model's nodes, module clusters and edges to `g` (ids prefixed per side)."""
    pre = options.prefix
    rows = _side_rows(model)
    for node in model.nodes:
        if node.cluster is None and not node.inline:
            g.node(pre + node.id, **_node_attrs(node, model, options))
    _emit_rows(g, [n for n in model.nodes if n.cluster is None and n in rows], rows, pre)
    for cluster in model.top_clusters:
        _emit_cluster(g, cluster, model, options, rows)
    _emit_edges(g, model, options)


def _emit_rows(
    g: graphviz.Digraph, anchors: list[Node], rows: dict[Node, list[Node]], pre: str
) -> None:
    for anchor in anchors:
        ids = " ".join(pre + n.id for n in [anchor, *rows[anchor]])
        g.body.append(f"\t{{rank=same; {ids}}}\n")


def _emit_cluster(
    g: graphviz.Digraph, cluster: Cluster, model: GraphModel, options: _Options,
    rows: dict[Node, list[Node]],
) -> None:
    pre = options.prefix
    if cluster.folded:
        g.node(pre + cluster.node_id, **_fold_attrs(cluster, model, options))
        return
    # Graphviz boxes only subgraphs whose name starts with "cluster", so the side's
    # prefix goes after it.
    sub = graphviz.Digraph(name=cluster.id.replace("cluster_", f"cluster_{pre}", 1))
    fill = style.CLUSTER_FILLS[min(cluster.depth, len(style.CLUSTER_FILLS) - 1)]
    if cluster.kind == "composite":
        # a function's box: dashed, so it does not read as a module (which owns parameters)
        sub.attr(label=cluster.title(), style="rounded,dashed,filled", color="#7a7a7a",
                 fillcolor=style.COMPOSITE_FILL, fontname=style.FONT, fontsize="10",
                 fontcolor="#505050", labeljust="l")
    else:
        sub.attr(label=cluster.title(), style="rounded,filled", color="#9e9e9e", fillcolor=fill,
                 fontname=style.FONT, fontsize="11", labeljust="l")
    for node in cluster.nodes:
        sub.node(pre + node.id, **_node_attrs(node, model, options))
    _emit_rows(sub, [n for n in cluster.nodes if n in rows], rows, pre)
    for child in cluster.children:
        _emit_cluster(sub, child, model, options, rows)
    g.subgraph(sub)


def _emit_edges(g: graphviz.Digraph, model: GraphModel, options: _Options) -> None:
    pre = options.prefix
    seen: set[tuple[str, str]] = set()
    operand_cache: dict[int, tuple[list[str], int]] = {}
    for e in model.edges:
        if e.parent.inline:
            continue
        src, dst = element_id(e.parent), element_id(e.child)
        if src == dst:
            continue  # both ends inside one folded module
        if src != e.parent.id or dst != e.child.id:
            # several edges into or out of a folded module say the same thing once
            if (src, dst) in seen:
                continue
            seen.add((src, dst))
            letter = ""
        else:
            if e.child.index not in operand_cache:
                operand_cache[e.child.index] = operand_texts(e.child, model)
            texts, n_drawn = operand_cache[e.child.index]
            # letters only where the op's label has a formula that uses them
            uses_letters = e.child.ctx.fn.name in _SYMBOLS or e.child.ctx.fn.name == "where"
            letter = texts[e.operand] if n_drawn > 1 and uses_letters else ""
        attrs: dict[str, str] = {}
        # dot gives an edge label a rank of its own, doubling a chain's height; an
        # external label (xlabel) is placed after the layout and costs none
        label_key = "xlabel" if options.compact else "label"
        if e.parent.ctx is not None:
            # op-to-op edges are the main path: keeping them short and straight makes
            # the chain read top to bottom, with the leaves hanging off to the side
            attrs["weight"] = "3"
        if options.view == "forward":
            attrs["color"] = style.FORWARD_EDGE
            if letter:
                attrs[label_key] = letter
            g.edge(pre + src, pre + dst, **attrs)
            continue
        if e.parent.tensor.requires_grad:
            shape = style.fmt_shape(e.parent.tensor.shape)
            attrs.update(color=style.GRADIENT_EDGE, fontcolor=style.GRADIENT_EDGE)
            # compact: a leaf's own box says its shape, and its short edge has no room
            if not (options.compact and e.parent.ctx is None):
                attrs[label_key] = f"{letter}: {shape}" if letter else shape
        else:
            # no gradient flows into a constant or an input without requires_grad
            attrs.update(color=style.NO_GRADIENT_EDGE, style="dotted", arrowhead="none")
        g.edge(pre + dst, pre + src, **attrs)


def _emit_legend(g: graphviz.Digraph, models: list[GraphModel], options: _Options) -> None:
    """Sample nodes for the kinds present, and the colour scale once gradients exist."""
    kinds = set()
    for model in models:
        for node in model.nodes:
            if node.inline:
                continue
            c, hidden = node.cluster, False
            while c is not None:
                hidden = hidden or c.folded
                c = c.parent
            if not hidden:
                kinds.add(node.kind)
        if any(c.folded for c in model.clusters):
            kinds.add("folded")
    sub = graphviz.Digraph(name="cluster_legend")
    sub.attr(label="legend", style="rounded", color="#bdbdbd", fontsize="10", labeljust="l")
    for kind in style.KIND_ORDER:
        if kind in kinds:
            attrs = dict(style.KIND_STYLE[kind])
            attrs["fillcolor"] = "#f2f2f2" if kind == "constant" else style.NO_GRAD_FILL
            attrs["fontsize"] = "9"
            sub.node(f"legend_{kind}", label=style.KIND_CAPTION[kind], **attrs)
    if options.show_grads and any(m.has_grads for m in models):
        structural = any(m.zero_reasons for m in models)
        sub.node("legend_colours", label=_colour_bar(structural), shape="plaintext",
                 fontsize="9")
    g.subgraph(sub)


def _colour_bar(structural_zeros: bool = False) -> str:
    decades = range(style.SCALE_LOW, style.SCALE_HIGH + 1)
    swatches = "".join(
        f'<td bgcolor="{style.grad_colour(10.0 ** d)}" width="26" height="14"></td>'
        for d in decades
    )
    ticks = "".join(f'<td><font point-size="8">1e{d}</font></td>' for d in decades)
    n = len(decades)
    extras = (
        f'<td bgcolor="{style.ZERO_GRAD_FILL}" border="1"> 0 </td>'
        f'<td bgcolor="{style.NONFINITE_FILL}" border="1">'
        '<font color="#ffffff"> nan/inf </font></td>'
        f'<td bgcolor="{style.NO_GRAD_FILL}" border="1"> none </td>'
    )
    # A bias before BatchNorm gets rounding noise (~1e-8) where the exact gradient is 0:
    # grey and named, so it does not read as a vanishing gradient.
    note = (
        f'<tr><td colspan="{n}" align="left" bgcolor="{style.ZERO_GRAD_FILL}">'
        "<b>≈0 by structure</b>: exactly 0 in exact arithmetic (a bias just before "
        "BatchNorm,<br align='left'/>whose mean subtraction cancels any shift); "
        "the tiny value left is rounding, not a vanishing gradient<br align='left'/></td></tr>"
        if structural_zeros else ""
    )
    return (
        '<<table border="0" cellborder="0" cellspacing="0" cellpadding="2">'
        f'<tr><td colspan="{n}" align="left"><b>fill: max |gradient|</b> (log scale)</td></tr>'
        f"<tr>{swatches}</tr><tr>{ticks}</tr>"
        f'<tr><td colspan="{n // 2}" align="left">← vanishing</td>'
        f'<td colspan="{n - n // 2}" align="right">exploding →</td></tr>'
        f'<tr><td colspan="{n}"><table border="0" cellspacing="3" cellpadding="1"><tr>'
        f"{extras}</tr></table></td></tr>"
        f"{note}</table>>"
    )


__all__ = [
    "COMPACT_ABOVE_RANKS", "DEFAULT_MAX_NODES", "LAYOUTS", "RANKDIRS", "VIEWS", "Drawing",
    "draw_comparison", "draw_graph",
]
