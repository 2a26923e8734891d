"""The drawing's model of an autodiff graph: nodes in graph order, edges, module clusters.

Built only from public graph fields (`Tensor.grad_fn`, `Context.parents`,
`.scope`, `Module.named_*`) and the gradients `trace.py` reads, walked in a fixed
order, so the same program always gives the same node ids and the same DOT text.
`id()` is used only to look objects up while drawing, never in the output.

Clusters are the boxes of a drawing: one per nn.Module call, one per call of a
functional composite (`cross_entropy`, `softmax`, ...: the `Composite` markers
in an op's scope), and, when a graph is folded to fit `max_nodes`, one per long
chain of ops.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tinygrad_bn.autograd import Context
from tinygrad_bn.autograd.grad_mode import Composite
from tinygrad_bn.nn.module import Module, Parameter
from tinygrad_bn.tensor import Tensor
from tinygrad_bn.viz import trace


@dataclass(eq=False)
class Node:
    """One drawn tensor: an op's output (with the op) or a leaf."""

    index: int  # position in graph order: inputs before the ops that use them, root last
    tensor: Tensor  # the op's output as its consumers see it, or the leaf itself
    ctx: Context | None  # None for leaves
    kind: str = "op"  # op | fused | parameter | input | constant
    name: str | None = None
    step: int | None = None  # when backward() runs this op: 1 is the root
    cluster: Cluster | None = None
    inline: bool = False  # a scalar constant written inside its consumer's label
    consumers: list[Node] = field(default_factory=list)

    @property
    def id(self) -> str:
        """The DOT node id."""
        return f"n{self.index}"


@dataclass(eq=False)
class Edge:
    """Operand `operand` of `child`'s op is `parent`'s tensor."""

    parent: Node
    child: Node
    operand: int


@dataclass(eq=False)
class Cluster:
    """The ops one call of an nn.Module or a composite recorded (nested calls are child
    clusters), or a chain of ops folded to fit max_nodes (`module` None)."""

    index: int
    module: Any  # a Module, a Composite marker, or None for a folded chain
    name: str | None  # dotted module name under the naming root ('' is the root), composite name
    parent: Cluster | None
    call: int = 1  # which call of this module, when it ran more than once
    calls: int = 1
    children: list[Cluster] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)  # nodes placed directly inside
    n_ops: int = 0  # ops inside, nested clusters included
    folded: bool = False

    @property
    def kind(self) -> str:
        """'module', 'composite' or 'chain'."""
        if self.module is None:
            return "chain"
        return "composite" if isinstance(self.module, Composite) else "module"

    @property
    def id(self) -> str:
        """The DOT subgraph name (Graphviz draws a box only for names starting 'cluster')."""
        return f"cluster_{self.index}"

    @property
    def node_id(self) -> str:
        """The DOT node id of this cluster when folded."""
        return f"m{self.index}"

    @property
    def depth(self) -> int:
        """0 for a top-level cluster."""
        return 0 if self.parent is None else self.parent.depth + 1

    def ancestors(self) -> list[Cluster]:
        """This cluster and its enclosing ones, innermost first."""
        chain, c = [], self
        while c is not None:
            chain.append(c)
            c = c.parent
        return chain

    def title(self) -> str:
        """'bn1 · BatchNorm1d (composed)' (the module's impl in parentheses when it has one),
        'F.cross_entropy' for a composite, 'exp … tanh' for a folded chain."""
        if self.kind == "composite":
            return f"F.{self.name}"
        if self.kind == "chain":
            ops = [n.ctx.fn.name for n in self.nodes if n.ctx is not None]
            return f"{ops[0]} … {ops[-1]}"
        type_name = type(self.module).__name__
        text = f"{self.name} · {type_name}" if self.name else type_name
        impl = getattr(self.module, "impl", None)
        if isinstance(impl, str):
            text += f" ({impl})"
        if self.calls > 1:
            text += f" · call {self.call} of {self.calls}"
        return text


@dataclass(eq=False)
class GraphModel:
    """Everything a drawing needs, in graph order."""

    root: Tensor
    nodes: list[Node]
    edges: list[Edge]
    clusters: list[Cluster]
    node_of_ctx: dict[Context, Node]
    node_of_leaf: dict[int, Node]
    has_grads: bool
    auto_folded: int = 0  # clusters folded to fit max_nodes
    folded_chains: int = 0  # chains of ops folded to fit max_nodes, after the clusters
    zero_reasons: dict[Node, str] = field(default_factory=dict)  # see zeros.py

    @property
    def ops(self) -> list[Node]:
        """The op nodes, in graph order."""
        return [n for n in self.nodes if n.ctx is not None]

    def node_of(self, t: Tensor) -> Node:
        """The node drawing tensor `t`."""
        ctx = t.grad_fn
        return self.node_of_ctx[ctx] if ctx is not None else self.node_of_leaf[id(t)]

    @property
    def top_clusters(self) -> list[Cluster]:
        """Clusters not nested in another one."""
        return [c for c in self.clusters if c.parent is None]


# ---------------------------------------------------------------- building


def build(root: Any, params: Any = None, api: str = "draw_graph") -> GraphModel:
    """Walk the graph behind `root` and name, classify and cluster its nodes."""
    if not isinstance(root, Tensor):
        raise TypeError(f"{api}: root must be a Tensor, got {type(root).__name__}")
    if root.grad_fn is None:
        raise ValueError(
            f"{api}: the tensor (shape {root.shape}, dtype {root.dtype}) has no graph to draw: "
            "it is a leaf, not the output of an op. Draw a tensor computed from inputs with "
            "requires_grad=True, outside no_grad()."
        )
    nodes, node_of_ctx, node_of_leaf = _walk(root)
    edges = []
    for node in nodes:
        if node.ctx is not None:
            for i, parent in enumerate(node.ctx.parents):
                pnode = node_of_ctx[parent.grad_fn] if parent.grad_fn is not None else node_of_leaf[
                    id(parent)
                ]
                edges.append(Edge(pnode, node, i))
                if not pnode.consumers or pnode.consumers[-1] is not node:
                    pnode.consumers.append(node)
    for ctx, step in trace.backward_steps(root, node_of_ctx).items():
        node_of_ctx[ctx].step = step
    namer = _Namer(nodes, params, api)
    for node in nodes:
        namer.classify(node)
    clusters = _cluster(nodes, namer)
    has_grads = any(trace.received(n.ctx) is not None if n.ctx is not None
                    else n.tensor.grad is not None for n in nodes)
    return GraphModel(root, nodes, edges, clusters, node_of_ctx, node_of_leaf, has_grads)


def _walk(root: Tensor) -> tuple[list[Node], dict[Context, Node], dict[int, Node]]:
    """Iterative post-order walk from the root, parents in operand order."""
    nodes: list[Node] = []
    node_of_ctx: dict[Context, Node] = {}
    node_of_leaf: dict[int, Node] = {}
    stack: list[list[Any]] = [[root, 0]]
    while stack:
        frame = stack[-1]
        tensor, i = frame
        ctx = tensor.grad_fn
        if i < len(ctx.parents):
            frame[1] = i + 1
            parent = ctx.parents[i]
            pctx = parent.grad_fn
            if pctx is None:
                if id(parent) not in node_of_leaf:
                    node = Node(len(nodes), parent, None)
                    nodes.append(node)
                    node_of_leaf[id(parent)] = node
            elif pctx not in node_of_ctx:
                # The graph is a DAG, so a node is never pushed while it is on the stack.
                stack.append([parent, 0])
            continue
        stack.pop()
        if ctx not in node_of_ctx:
            kind = "fused" if getattr(ctx.fn, "fused", False) else "op"
            node = Node(len(nodes), tensor, ctx, kind=kind)
            nodes.append(node)
            node_of_ctx[ctx] = node
    return nodes, node_of_ctx, node_of_leaf


class _Namer:
    """Leaf names and kinds, module names: from `params`, Tensor.name, and the modules in scope."""

    def __init__(self, nodes: list[Node], params: Any, api: str):
        self.explicit: dict[int, str] = {}
        self.param_names: dict[int, str] = {}
        self.buffer_names: dict[int, str] = {}
        self.module_names: dict[int, str] = {}
        # Eval-mode BatchNorm uses running_mean.detach().reshape(...): a new leaf whose
        # array is a view of the buffer's, so buffers are also found by their array.
        self.buffer_arrays: dict[int, str] = {}
        roots: list[tuple[str, Module]] = []
        if isinstance(params, Module):
            roots.append(("", params))
        elif params is not None:
            if not isinstance(params, Mapping):
                raise TypeError(
                    f"{api}: params must be a mapping {{name: Tensor}} or an nn.Module, "
                    f"got {type(params).__name__}"
                )
            for name, t in params.items():
                if not isinstance(name, str) or not isinstance(t, Tensor):
                    raise TypeError(
                        f"{api}: params must map str names to Tensors, got "
                        f"{type(name).__name__} -> {type(t).__name__}"
                    )
                self.explicit[id(t)] = name
        if not roots:
            roots = self._outermost_modules(nodes)
        for prefix, module in roots:
            for name, m in module.named_modules(prefix):
                self.module_names.setdefault(id(m), name)
            for name, p in module.named_parameters(prefix):
                self.param_names.setdefault(id(p), name)
            for name, b in module.named_buffers(prefix):
                self.buffer_names.setdefault(id(b), name)
                self.buffer_arrays.setdefault(id(b.data), name)

    @staticmethod
    def _outermost_modules(nodes: list[Node]) -> list[tuple[str, Module]]:
        """The modules at the bottom of every op's scope; one is the unnamed root, several get
        their lower-cased class name (numbered when repeated) so their parameters differ."""
        outer: dict[int, Module] = {}
        for node in nodes:
            if node.ctx is not None:
                first = next((m for m in node.ctx.scope if isinstance(m, Module)), None)
                if first is not None:
                    outer.setdefault(id(first), first)
        if len(outer) <= 1:
            return [("", m) for m in outer.values()]
        seen: dict[str, int] = {}
        roots = []
        for m in outer.values():
            base = type(m).__name__.lower()
            seen[base] = seen.get(base, 0) + 1
            roots.append((base if seen[base] == 1 else f"{base}{seen[base]}", m))
        return roots

    def classify(self, node: Node) -> None:
        """Set a leaf's name, kind and whether it is a scalar constant drawn inline."""
        if node.ctx is not None:
            node.name = node.tensor.name
            return
        t, key = node.tensor, id(node.tensor)
        buffer_name = self.buffer_names.get(key) or self.buffer_arrays.get(id(t.data))
        if buffer_name is None and t.data.base is not None:
            buffer_name = self.buffer_arrays.get(id(t.data.base))
        node.name = self.explicit.get(key) or t.name or self.param_names.get(key) or buffer_name
        if key in self.explicit or isinstance(t, Parameter) or key in self.param_names:
            node.kind = "parameter"
        elif buffer_name is not None:
            node.kind = "constant"  # running statistics: state, but no gradient
        elif t.requires_grad or node.name:
            node.kind = "input"
        else:
            node.kind = "constant"
            # 1/n in a mean, eps, the -0.5 of an inverse sqrt: clearer as text in the op.
            node.inline = t.numel() == 1 and node.name is None

    def module_name(self, entry: Any) -> str | None:
        """A module's dotted name (None when not under the naming root), a composite's name."""
        if isinstance(entry, Composite):
            return entry.name
        return self.module_names.get(id(entry))


def _cluster(nodes: list[Node], namer: _Namer) -> list[Cluster]:
    """One cluster per module call and composite call, nested as the calls were; leaves go
    where they are used."""
    # A module that never has another module inside it (a layer) gets one cluster per
    # call: each call pushes a fresh scope tuple, which identifies the call. Modules with
    # modules inside (containers) get one cluster, however often they ran.
    containers = {
        id(m) for n in nodes if n.ctx is not None
        for m in [e for e in n.ctx.scope if not isinstance(e, Composite)][:-1]
    }
    by_key: dict[tuple, Cluster] = {}
    clusters: list[Cluster] = []
    for node in nodes:
        if node.ctx is None:
            continue
        scope, parent = node.ctx.scope, None
        for depth, entry in enumerate(scope):
            key = _cluster_key(scope, depth, containers)
            cluster = by_key.get(key)
            if cluster is None:
                cluster = Cluster(len(clusters), entry, namer.module_name(entry), parent)
                by_key[key] = cluster
                clusters.append(cluster)
                if parent is not None:
                    parent.children.append(cluster)
            parent = cluster
        node.cluster = parent
    clusters = _simplify(nodes, clusters)
    calls: dict[int, list[Cluster]] = {}
    for c in clusters:
        if c.kind == "module":
            calls.setdefault(id(c.module), []).append(c)
    for group in calls.values():
        for i, c in enumerate(group):
            c.call, c.calls = i + 1, len(group)
    place_nodes(nodes, clusters)
    return clusters


def _cluster_key(scope: tuple, depth: int, containers: set[int]) -> tuple:
    """What identifies the cluster of scope[depth]: one call of a layer or composite, or a
    container module at its place in the module tree."""
    entry = scope[depth]
    if isinstance(entry, Composite):
        return ("composite", id(entry))  # a fresh marker per call
    if id(entry) in containers:
        return ("module",) + tuple(id(m) for m in scope[: depth + 1])
    # The call's own scope tuple: the op's, or the one a composite inside the call extended.
    below = scope[depth + 1] if depth + 1 < len(scope) else None
    call = below.parent if isinstance(below, Composite) else scope
    return ("call", id(call))


def _simplify(nodes: list[Node], clusters: list[Cluster]) -> list[Cluster]:
    """Drop composite boxes that say nothing: one op only, or everything a module call did
    (BatchNorm1d's box already says what F.batch_norm would)."""
    counts = {c: 0 for c in clusters}
    for node in nodes:
        c = node.cluster
        while c is not None:
            counts[c] += 1
            c = c.parent
    removed: set[Cluster] = set()

    def dissolve(c: Cluster) -> None:
        parent = c.parent
        for node in nodes:
            if node.cluster is c:
                node.cluster = parent
        for child in c.children:
            child.parent = parent
        if parent is not None:
            i = parent.children.index(c)
            parent.children[i:i + 1] = c.children
        removed.add(c)

    for c in reversed(clusters):  # children were created after their parents
        if c.kind == "composite" and counts[c] < 2:
            dissolve(c)
    for c in clusters:
        if c in removed or c.kind != "module" or len(c.children) != 1:
            continue
        (child,) = c.children
        if child.kind == "composite" and not any(n.cluster is c for n in nodes):
            dissolve(child)
    kept = [c for c in clusters if c not in removed]
    for i, c in enumerate(kept):
        c.index = i
    return kept


def place_nodes(nodes: list[Node], clusters: list[Cluster]) -> None:
    """Fill each cluster's node list (graph order) and op count; parameters and constants go
    to the innermost cluster enclosing all their consumers, inputs stay outside."""
    for c in clusters:
        c.nodes, c.n_ops = [], 0
    for node in nodes:
        if node.ctx is not None:
            for c in node.cluster.ancestors() if node.cluster is not None else ():
                c.n_ops += 1
        elif node.kind != "input" and not node.inline:
            node.cluster = _common_cluster([c.cluster for c in node.consumers])
        if not node.inline and node.cluster is not None:
            node.cluster.nodes.append(node)


def _common_cluster(clusters: list[Cluster | None]) -> Cluster | None:
    """The innermost cluster enclosing all of `clusters` (None is the top level)."""
    if not clusters or any(c is None for c in clusters):
        return None
    common = clusters[0].ancestors()[::-1]  # outermost first
    for c in clusters[1:]:
        chain = c.ancestors()[::-1]
        k = 0
        while k < min(len(common), len(chain)) and common[k] is chain[k]:
            k += 1
        common = common[:k]
    return common[-1] if common else None


# ---------------------------------------------------------------- folding


def resolve_collapse(model: GraphModel, collapse: Any, api: str = "draw_graph") -> list[Cluster]:
    """The clusters `collapse` asks to fold (see draw_graph's docstring for the forms)."""
    clusters = model.clusters
    if collapse is None:
        return []
    if isinstance(collapse, str):
        if collapse != "all":
            raise ValueError(
                f"{api}: collapse must be 'all', an int, or a list of module names / Modules; "
                f"got the string {collapse!r} (to fold one module pass a list: [{collapse!r}])"
            )
        return [c for c in clusters if _is_unit(c)]
    if isinstance(collapse, bool):
        raise TypeError(f"{api}: collapse must be 'all', an int or a list, got a bool")
    if isinstance(collapse, int):
        if collapse < 0:
            raise ValueError(f"{api}: collapse={collapse}: an op count must be >= 0")
        big = [c for c in clusters if c.n_ops > collapse]
        # fold the innermost big modules, so the structure around them stays visible
        return [c for c in big if not any(d in big for d in _descendants(c))]
    if isinstance(collapse, Module):
        collapse = [collapse]
    if not isinstance(collapse, list | tuple | set | frozenset):
        raise TypeError(
            f"{api}: collapse must be 'all', an int, or a list of module names / Modules; "
            f"got {type(collapse).__name__}"
        )
    chosen: list[Cluster] = []
    names = sorted({c.name for c in clusters if c.name and c.kind == "module"})
    composites = sorted({c.name for c in clusters if c.kind == "composite"})
    for item in collapse:
        if isinstance(item, Module):
            hits = [c for c in clusters if c.module is item]
            what = f"the {type(item).__name__} module"
        elif isinstance(item, str):
            hits = [c for c in clusters if c.name == item]
            what = f"name {item!r}"
        else:
            raise TypeError(
                f"{api}: collapse list items must be module or composite names, or Modules, got "
                f"{type(item).__name__}"
            )
        if not hits:
            raise ValueError(
                f"{api}: collapse: {what} ran no op in this graph; modules in the graph: "
                f"{', '.join(names) or '(none have names)'}"
                + (f"; composites: {', '.join(composites)}" if composites else "")
            )
        chosen.extend(h for h in hits if h not in chosen)
    return chosen


def _is_unit(c: Cluster) -> bool:
    """What collapse="all" folds: layers (modules without sub-modules) and the outermost
    composites outside them (a loss function, a softmax)."""
    if c.kind == "module":
        return not any(d.kind == "module" for d in _descendants(c))
    if c.kind == "composite":
        return not any(a.kind == "composite" or (a.kind == "module" and _is_unit(a))
                       for a in c.ancestors()[1:])
    return False


def _descendants(cluster: Cluster) -> list[Cluster]:
    out, stack = [], list(cluster.children)
    while stack:
        c = stack.pop()
        out.append(c)
        stack.extend(c.children)
    return out


def is_hidden(cluster: Cluster) -> bool:
    """True when an enclosing cluster is folded (so this one is not drawn at all)."""
    c = cluster.parent
    while c is not None:
        if c.folded:
            return True
        c = c.parent
    return False


def element_id(node: Node) -> str:
    """The DOT id that stands for `node`: its own, or its outermost folded module's."""
    target = node.id
    c = node.cluster
    while c is not None:
        if c.folded:
            target = c.node_id
        c = c.parent
    return target


def _visible(model: GraphModel) -> tuple[int, dict[Cluster, int]]:
    """Total visible nodes and, per cluster, the nodes it contributes to its parent."""
    seen: dict[Cluster, int] = {}
    for c in reversed(model.clusters):  # children are created after their parents
        inside = len(c.nodes) + sum(seen[ch] for ch in c.children)
        seen[c] = 1 if c.folded else inside
    top = sum(1 for n in model.nodes if n.cluster is None and not n.inline)
    return top + sum(seen[c] for c in model.top_clusters), seen


def auto_fold(model: GraphModel, max_nodes: int) -> int:
    """Fold clusters, innermost level first and largest first, until at most `max_nodes` show;
    then, if still too many, long chains of ops (`model.folded_chains` says how many)."""
    total, contributes = _visible(model)
    folded = 0
    while total > max_nodes:
        candidates = [
            c for c in model.clusters
            if not c.folded and not is_hidden(c) and all(ch.folded for ch in c.children)
        ]
        if not candidates:
            break
        best = max(candidates, key=lambda c: (c.n_ops, -c.index))
        saved = contributes[best] - 1
        best.folded = True
        contributes[best] = 1
        for a in best.ancestors()[1:]:
            contributes[a] -= saved
        total -= saved
        folded += 1
    if total > max_nodes:
        model.folded_chains = _fold_chains(model, total, max_nodes)
    return folded


# A box standing for two ops saves one node and says less than the two ops did.
MIN_CHAIN = 3


def _fold_chains(model: GraphModel, total: int, max_nodes: int) -> int:
    """Fold the longest chains of ops (each op the only user of the one before) into boxes."""
    chains = sorted(_chains(model), key=lambda ch: (-len(ch), ch[0].index))
    folded = 0
    for chain in chains:
        if total <= max_nodes:
            break
        parent = chain[0].cluster
        box = Cluster(len(model.clusters), None, None, parent, folded=True)
        model.clusters.append(box)
        if parent is not None:
            parent.children.append(box)
        inside = set(chain)
        # parameters and constants only the chain uses disappear into the box with it
        swallowed = {
            model.node_of(p) for n in chain for p in n.ctx.parents
            if p.grad_fn is None and not model.node_of(p).inline
            and model.node_of(p).kind != "input"
            and all(c in inside for c in model.node_of(p).consumers)
        }
        for n in chain:
            n.cluster = box
        total -= len(chain) - 1 + len(swallowed)
        folded += 1
    if folded:
        place_nodes(model.nodes, model.clusters)
    return folded


def _chains(model: GraphModel) -> list[list[Node]]:
    """Maximal runs of drawn ops u1 -> u2 -> ... where each is the only op input of the next
    and the next its only user, inside one cluster, the root excluded."""
    ops = [n for n in model.nodes
           if n.ctx is not None and n.tensor is not model.root and element_id(n) == n.id]
    drawn = set(ops)

    def op_inputs(n: Node) -> list[Node]:
        found: list[Node] = []
        for p in n.ctx.parents:
            if p.grad_fn is not None and model.node_of(p) not in found:
                found.append(model.node_of(p))
        return found

    following: dict[Node, Node] = {}
    for u in ops:
        if len(u.consumers) == 1:
            v = u.consumers[0]
            if v in drawn and v.cluster is u.cluster and op_inputs(v) == [u]:
                following[u] = v
    followers = set(following.values())
    starts = [u for u in ops if u not in followers]
    chains = []
    for u in starts:
        chain = [u]
        while chain[-1] in following:
            chain.append(following[chain[-1]])
        if len(chain) >= MIN_CHAIN:
            chains.append(chain)
    return chains
