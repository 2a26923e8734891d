"""Graph drawings: DOT structure per view, module clusters, folding, colours, rendering, CLI."""

from __future__ import annotations

import importlib.util
import inspect
import re
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_bn import Tensor, cli, nn, viz
from tinygrad_bn import functional as F
from tinygrad_bn.viz.examples import Model

ROOT = Path(__file__).resolve().parents[1]
needs_dot = pytest.mark.skipif(not viz.dot_available(), reason="Graphviz `dot` is not installed")

BATCH, FEATURES = 8, 4


# ---------------------------------------------------------------- a small DOT reader


@dataclass
class DotNode:
    id: str
    title: str  # the bold first line of the label
    label: str
    attrs: str
    clusters: tuple[str, ...]  # labels of the enclosing clusters, outermost first


@dataclass
class Dot:
    nodes: dict[str, DotNode] = field(default_factory=dict)
    legend: dict[str, DotNode] = field(default_factory=dict)  # the legend's sample nodes
    edges: list[tuple[str, str, str]] = field(default_factory=list)  # (tail, head, attrs)
    cluster_labels: list[str] = field(default_factory=list)

    def titled(self, title: str) -> list[DotNode]:
        return [n for n in self.nodes.values() if n.title == title]

    def one(self, title: str) -> DotNode:
        found = self.titled(title)
        assert len(found) == 1, f"expected one node titled {title!r}, found {len(found)}"
        return found[0]

    def ops_in(self, cluster_label: str) -> list[DotNode]:
        """Op nodes (those numbered #k or drawn as ops) directly or nested inside a cluster."""
        return [n for n in self.nodes.values() if cluster_label in n.clusters and _is_op(n)]

    def edge_titles(self) -> Counter:
        return Counter((self.nodes[t].title, self.nodes[h].title) for t, h, _ in self.edges
                       if t in self.nodes and h in self.nodes)


def _is_op(node: DotNode) -> bool:
    return 'style="rounded,filled"' in node.attrs or "peripheries=2" in node.attrs


_SUBGRAPH = re.compile(r"^\s*subgraph (\w+) \{$")
_NODE = re.compile(r"^\s*(\w+) \[label=(<.*>|\"[^\"]*\"|\S+)(.*)\]$")
_EDGE = re.compile(r"^\s*(\w+) -> (\w+)(?: \[(.*)\])?$")
_CLUSTER_LABEL = re.compile(r"label=(\"[^\"]*\"|<.*?>(?= \w+=|$)|\S+)")


def parse_dot(source: str) -> Dot:
    dot, stack = Dot(), []
    for line in source.splitlines():
        if m := _SUBGRAPH.match(line):
            stack.append([m.group(1), ""])
        elif line.strip() == "}":
            if stack:
                stack.pop()
        elif m := _EDGE.match(line):
            dot.edges.append((m.group(1), m.group(2), m.group(3) or ""))
        elif m := _NODE.match(line):
            label = m.group(2)
            bold = re.search(r"<b>(.*?)</b>", label)
            title = bold.group(1) if bold else label.strip('"')
            title = title.split(" → ")[0]  # "mul → xhat": the op, then the tensor's name
            labels = tuple(s[1] for s in stack if s[0].startswith("cluster"))
            node = DotNode(m.group(1), title, label, m.group(3), labels)
            (dot.legend if node.id.startswith("legend_") else dot.nodes)[node.id] = node
        elif stack and stack[-1][1] == "" and (m := _CLUSTER_LABEL.search(line)):
            stack[-1][1] = m.group(1).strip('"')
            dot.cluster_labels.append(stack[-1][1])
    return dot


# ---------------------------------------------------------------- graphs to draw


def bn_loss(impl: str, backward: bool = True, seed: int = 0) -> tuple[Tensor, Model]:
    """mse loss of one BatchNorm1d layer, x requiring grad (as inside a network)."""
    rng = np.random.default_rng(seed)
    model = Model(bn=nn.BatchNorm1d(FEATURES, impl=impl))
    x = Tensor(rng.standard_normal((BATCH, FEATURES)).astype(np.float32), requires_grad=True,
               name="x")
    target = Tensor(rng.standard_normal((BATCH, FEATURES)).astype(np.float32))
    loss = F.mse_loss(model(x), target)
    if backward:
        loss.backward()
    return loss, model


def mlp_loss(layers: int = 2, impl: str | None = "composed", weight_scale: float | None = None,
             seed: int = 0, width: int = 6) -> tuple[Tensor, Model]:
    """Cross-entropy of an MLP fc1, bn1, relu1, ..., fcN (no BatchNorm when impl is None)."""
    rng = np.random.default_rng(seed)
    mods: dict[str, nn.Module] = {}
    for i in range(1, layers + 1):
        fc = nn.Linear(FEATURES if i == 1 else width, width, rng=rng)
        if weight_scale is not None:
            fc.weight.data[...] = weight_scale * rng.standard_normal(fc.weight.shape)
        mods[f"fc{i}"] = fc
        if impl is not None:
            mods[f"bn{i}"] = nn.BatchNorm1d(width, impl=impl)
        mods[f"relu{i}"] = nn.ReLU()
    mods[f"fc{layers + 1}"] = nn.Linear(width, 3, rng=rng)
    model = Model(**mods)
    x = Tensor(rng.standard_normal((BATCH, FEATURES)).astype(np.float32), name="x")
    loss = F.cross_entropy(model(x), rng.integers(0, 3, BATCH))
    loss.backward()
    return loss, model


# The composed BatchNorm's steps, as the design lists them, and how each one is labelled.
COMPOSED_BN_STEPS = Counter({
    ("sum", "over axis 0"): 2,  # the two means ...
    ("mul", f"a × {1 / BATCH:.3g}"): 2,  # ... are sums times 1/n
    ("sub", "a − b"): 1,  # centre
    ("mul", "a × a"): 1,  # square
    ("add", "a + 1e-05"): 1,  # eps
    ("pow", "a ** -0.5"): 1,  # inverse square root
    ("mul", "a × b"): 2,  # normalise, then scale by weight
    ("add", "a + b"): 1,  # shift by bias
    ("reshape", "from (4,)"): 2,  # weight and bias to (1, C)
})


def _step(node: DotNode) -> tuple[str, str]:
    lines = re.findall(r'<font point-size="9">([^<]*)</font>', node.label)
    return node.title, lines[0] if lines else ""


# ---------------------------------------------------------------- structure


def test_composed_batchnorm_graph_shows_every_primitive_step_inside_its_module_box():
    loss, _ = bn_loss("composed")
    dot = parse_dot(viz.draw_graph(loss).source)
    assert "bn · BatchNorm1d (composed)" in dot.cluster_labels
    steps = Counter(_step(n) for n in dot.ops_in("bn · BatchNorm1d (composed)"))
    assert steps == COMPOSED_BN_STEPS
    for name in ("mu", "xc", "var", "r", "xhat"):  # the derivation's names (docs/batchnorm.md)
        assert sum(f"→ {name}</b>" in n.label for n in dot.nodes.values()) == 1, name
    for name, shape in (("bn.weight", "(4,) float32"), ("bn.bias", "(4,) float32"),
                        ("x", "(8, 4) float32")):
        assert shape in dot.one(name).label
    assert "(1, 4) float32" in dot.one("pow").label
    # parameters are drawn in their module's box; the input is outside it
    assert dot.one("bn.weight").clusters[-1] == "bn · BatchNorm1d (composed)"
    assert dot.one("x").clusters == ()


def test_backward_edges_run_from_each_op_to_its_inputs_labelled_with_gradient_shapes():
    loss, _ = bn_loss("composed")
    dot = parse_dot(viz.draw_graph(loss, view="backward").source)
    edges = dot.edge_titles()
    assert edges[("pow", "add")] == 1  # d/d(var + eps) comes out of pow's backward
    assert edges[("reshape", "bn.weight")] == 1
    assert edges[("sub", "x")] == 1 and edges[("sum", "x")] == 1
    assert edges[("x", "sub")] == 0
    pow_id, add_id = dot.one("pow").id, [n.id for n in dot.titled("add") if "1e-05" in n.label][0]
    (attrs,) = [a for t, h, a in dot.edges if (t, h) == (pow_id, add_id)]
    assert 'label="(1, 4)"' in attrs
    # the square x*x gets the gradient twice: two edges into the centring sub
    mul_sq = [n for n in dot.titled("mul") if "a × a" in n.label and n.clusters][0]
    sub_in_bn = [n for n in dot.titled("sub") if n.clusters][0]
    assert sum(1 for t, h, _ in dot.edges if (t, h) == (mul_sq.id, sub_in_bn.id)) == 2


def test_forward_edges_run_from_inputs_to_the_ops_that_use_them():
    loss, _ = bn_loss("composed")
    dot = parse_dot(viz.draw_graph(loss, view="forward").source)
    edges = dot.edge_titles()
    assert edges[("add", "pow")] == 1 and edges[("pow", "add")] == 0
    assert edges[("bn.weight", "reshape")] == 1
    assert edges[("x", "sub")] == 1 and edges[("x", "sum")] == 1
    assert "<i>#1</i>" not in viz.draw_graph(loss, view="forward").source  # a backward notion


def test_backward_steps_follow_the_order_backward_runs_the_ops():
    loss, _ = bn_loss("composed")
    dot = parse_dot(viz.draw_graph(loss).source)
    step = {n.id: int(m.group(1)) for n in dot.nodes.values()
            if (m := re.search(r"<i>#(\d+)</i>", n.label))}
    assert sorted(step.values()) == list(range(1, len(step) + 1))
    root = [n for n in dot.nodes.values() if "root: backward() starts here" in n.label]
    assert len(root) == 1 and step[root[0].id] == 1
    for tail, head, _ in dot.edges:
        if tail in step and head in step:
            assert step[tail] < step[head]  # an op runs after every op that uses its output


def test_fused_batchnorm_is_one_kernel_node_with_its_own_style():
    loss, _ = bn_loss("fused")
    dot = parse_dot(viz.draw_graph(loss).source)
    ops = dot.ops_in("bn · BatchNorm1d (fused)")
    assert [n.title for n in ops] == ["batch_norm_fused"]
    kernel = ops[0]
    assert "fused kernel" in kernel.label and "peripheries=2" in kernel.attrs
    assert "peripheries=2" not in dot.one("sub").attrs
    edges = dot.edge_titles()
    for leaf in ("x", "bn.weight", "bn.bias"):
        assert edges[("batch_norm_fused", leaf)] == 1
    assert "legend_fused" in dot.legend


def test_same_program_gives_byte_identical_dot():
    for view in ("backward", "forward"):
        first = viz.draw_graph(mlp_loss(3)[0], view=view, show_values=True, show_saved=True).source
        second = viz.draw_graph(mlp_loss(3)[0], view=view, show_values=True, show_saved=True).source
        assert first == second
    a = viz.draw_comparison(bn_loss("composed")[0], bn_loss("fused")[0]).source
    b = viz.draw_comparison(bn_loss("composed")[0], bn_loss("fused")[0]).source
    assert a == b


def test_mlp_ops_are_boxed_per_module_and_nested_under_the_model():
    loss, _ = mlp_loss(2)
    dot = parse_dot(viz.draw_graph(loss).source)
    for label in ("Model", "fc1 · Linear (composed)", "bn1 · BatchNorm1d (composed)", "relu1 · ReLU",
                  "fc2 · Linear (composed)", "bn2 · BatchNorm1d (composed)", "fc3 · Linear (composed)"):
        assert label in dot.cluster_labels
    assert [n.title for n in dot.ops_in("relu2 · ReLU")] == ["relu"]
    assert dot.one("bn2.weight").clusters == ("Model", "bn2 · BatchNorm1d (composed)")
    assert Counter(n.title for n in dot.ops_in("fc1 · Linear (composed)")) == Counter(
        {"permute": 1, "matmul": 1, "add": 1}
    )
    # the loss is computed outside the model: not in its box, but in cross_entropy's
    assert [n.clusters for n in dot.titled("log")] == [("F.cross_entropy", "F.log_softmax")]


def test_a_module_called_twice_gets_one_box_per_call():
    relu, fc = nn.ReLU(), nn.Linear(4, 4, rng=0)
    x = Tensor(np.ones((2, 4), np.float32), requires_grad=True)
    out = relu(fc(relu(x))).sum()
    labels = parse_dot(viz.draw_graph(out).source).cluster_labels
    assert "relu · ReLU · call 1 of 2" in labels and "relu · ReLU · call 2 of 2" in labels


def test_params_mapping_names_hand_written_tensors_and_styles_them_as_parameters():
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((5, 3)), requires_grad=True)
    gamma, beta = Tensor(np.ones(3), requires_grad=True), Tensor(np.zeros(3), requires_grad=True)
    out = F.batch_norm(x, None, None, gamma, beta, training=True, impl="composed")
    dot = parse_dot(viz.draw_graph(out.sum(), params={"gamma": gamma, "beta": beta}).source)
    assert 'color="#1b7837"' in dot.one("gamma").attrs  # the parameter border
    assert "float64" in dot.one("gamma").label
    assert dot.one("input").title == "input"  # an unnamed leaf requiring grad
    # no module ran: no module boxes, only the composite's
    assert dot.cluster_labels == ["F.batch_norm", "legend"]


def test_eval_mode_batchnorm_names_its_running_statistics():
    _, model = bn_loss("composed")
    model.eval()
    x = Tensor(np.ones((BATCH, FEATURES), np.float32), requires_grad=True)
    dot = parse_dot(viz.draw_graph(model(x).sum(), view="forward").source)
    assert "dashed" in dot.one("bn.running_mean").attrs  # a constant, drawn by its buffer name


def test_gradient_colours_and_norms_appear_only_after_backward():
    loss, _ = bn_loss("composed", backward=False)
    before = viz.draw_graph(loss).source
    assert "‖g‖" not in before and "legend_colours" not in before
    assert "no backward() has run yet" in before
    def node_fills(source):
        return {re.search(r'fillcolor="(#[0-9a-f]{6})"', n.attrs).group(1)
                for n in parse_dot(source).nodes.values()}

    assert node_fills(before) <= {"#ffffff", "#f2f2f2"}  # white ops, grey constants
    loss.backward()
    after = viz.draw_graph(loss).source
    assert "‖g‖" in after and "legend_colours" in after and "no backward()" not in after
    assert len(node_fills(after)) > 4
    assert "‖g‖" not in viz.draw_graph(loss, show_grads=False).source


def test_gradient_colour_scale_is_logarithmic_blue_to_red():
    from tinygrad_bn.viz import style

    assert style.grad_colour(1e-12) == "#313695"  # vanishing: darkest blue
    assert style.grad_colour(1e9) == "#a50026"  # exploding: darkest red
    assert style.grad_colour(0.0) == style.ZERO_GRAD_FILL
    assert style.grad_colour(float("nan")) == style.NONFINITE_FILL
    # equal ratios give equal steps along the scale: the middle of 1e-8..1e6 is 1e-1
    assert style.grad_colour(10.0 ** ((style.SCALE_LOW + style.SCALE_HIGH) / 2)) == "#ffffbf"


def test_vanishing_gradients_of_a_deep_plain_mlp_show_blue_and_batchnorm_keeps_them_warm():
    from tinygrad_bn.viz import style

    def first_layer_weight_fill(impl):
        loss, _ = mlp_loss(6, impl=impl, weight_scale=1e-3, width=16)
        node = parse_dot(viz.draw_graph(loss, max_nodes=None).source).one("fc1.weight")
        return re.search(r'fillcolor="(#[0-9a-f]{6})"', node.attrs).group(1)

    plain, with_bn = first_layer_weight_fill(None), first_layer_weight_fill("composed")
    blue = style.grad_colour(1e-9)
    assert plain == blue and with_bn != blue


def test_show_saved_lists_saved_tensors_then_says_released():
    loss, _ = bn_loss("composed", backward=False)
    before = parse_dot(viz.draw_graph(loss, show_saved=True).source)
    # pow keeps its base (4 float32 = 16 B) and its exponent (a float32 scalar = 4 B)
    assert "saved: (1, 4), scalar · 20 B" in before.one("pow").label
    assert "saved: nothing" in [n for n in before.titled("add") if "1e-05" in n.label][0].label
    loss.backward()
    after = viz.draw_graph(loss, show_saved=True).source
    assert "released by backward()" in after and "saved: (" not in after


def test_show_values_adds_value_summaries():
    loss, _ = bn_loss("composed")
    dot = parse_dot(viz.draw_graph(loss, show_values=True).source)
    assert "mean 1 std 0 [1, 1]" in dot.one("bn.weight").label
    assert "mean" not in parse_dot(viz.draw_graph(loss).source).one("bn.weight").label


def test_draw_comparison_puts_two_labelled_graphs_in_one_picture():
    a, b = bn_loss("composed")[0], bn_loss("fused")[0]
    source = viz.draw_comparison(a, b, labels=("composed", "fused")).source
    dot = parse_dot(source)
    assert "subgraph cluster_a {" in source and "subgraph cluster_b {" in source
    assert any("composed" in s and "17 ops" in s for s in dot.cluster_labels)
    assert any("fused" in s and "5 ops" in s for s in dot.cluster_labels)
    assert len(dot.titled("batch_norm_fused")) == 1 and len(dot.titled("pow")) == 1
    assert all(n.startswith(("a_", "b_")) for n in dot.nodes)
    assert source.count("subgraph cluster_legend") == 1


# ---------------------------------------------------------------- folding


def test_collapse_by_name_or_module_folds_a_module_into_one_node():
    loss, model = mlp_loss(2)
    for collapse in (["bn1"], [model.bn1]):
        dot = parse_dot(viz.draw_graph(loss, collapse=collapse).source)
        folded = dot.one("bn1 · BatchNorm1d (composed)")
        assert "box3d" in folded.attrs and "13 ops folded" in folded.label
        assert "weight (6,)" in folded.label  # its parameters are listed, not drawn
        assert not dot.titled("bn1.weight")
        assert "bn1 · BatchNorm1d (composed)" not in dot.cluster_labels
        assert "bn2 · BatchNorm1d (composed)" in dot.cluster_labels
        edges = dot.edge_titles()
        # one edge, though the module's input feeds two of its ops
        assert edges[("relu", "bn1 · BatchNorm1d (composed)")] == 1
        assert edges[("bn1 · BatchNorm1d (composed)", "add")] == 1


def test_collapse_all_folds_every_layer_and_an_int_folds_the_big_ones():
    loss, _ = mlp_loss(2)
    dot = parse_dot(viz.draw_graph(loss, collapse="all").source)
    folded = {n.title for n in dot.nodes.values() if "box3d" in n.attrs}
    assert folded == {"fc1 · Linear (composed)", "bn1 · BatchNorm1d (composed)", "relu1 · ReLU",
                      "fc2 · Linear (composed)", "bn2 · BatchNorm1d (composed)", "relu2 · ReLU",
                      "fc3 · Linear (composed)", "F.cross_entropy"}
    assert "Model" in dot.cluster_labels
    dot = parse_dot(viz.draw_graph(loss, collapse=5).source)
    folded = {n.title for n in dot.nodes.values() if "box3d" in n.attrs}
    # the innermost boxes of more than 5 ops (cross_entropy's log_softmax has exactly 5)
    assert folded == {"bn1 · BatchNorm1d (composed)", "bn2 · BatchNorm1d (composed)",
                      "F.cross_entropy"}


def test_big_graphs_fold_their_largest_modules_automatically_and_say_so():
    loss, _ = mlp_loss(20, width=8)  # 20 layers of Linear + composed BatchNorm + ReLU
    source = viz.draw_graph(loss).source
    dot = parse_dot(source)
    assert len(dot.nodes) <= viz.DEFAULT_MAX_NODES
    assert "auto-folded" in source and "max_nodes=None" in source
    folded = [n.title for n in dot.nodes.values() if "box3d" in n.attrs]
    assert folded and all("BatchNorm1d" in t for t in folded)  # the largest modules go first
    full = parse_dot(viz.draw_graph(loss, max_nodes=None).source)
    assert not any("box3d" in n.attrs for n in full.nodes.values())
    assert len(full.titled("pow")) == 20
    small = parse_dot(viz.draw_graph(loss, max_nodes=40).source)
    assert len(small.nodes) <= 40


# ---------------------------------------------------------------- random programs


_UNARY = ("exp", "tanh", "relu", "sum0", "neg")
_BINARY = ("add", "sub", "mul")


@st.composite
def programs(draw):
    """A random straight-line program over (3, 2) tensors: (op, operand indices) steps."""
    steps = []
    for k in range(draw(st.integers(1, 12))):
        available = 2 + k
        if draw(st.booleans()):
            steps.append((draw(st.sampled_from(_UNARY)), (draw(st.integers(0, available - 1)),)))
        else:
            i, j = draw(st.integers(0, available - 1)), draw(st.integers(0, available - 1))
            steps.append((draw(st.sampled_from(_BINARY)), (i, j)))
    return steps


def run_program(steps):
    rng = np.random.default_rng(0)
    values = [Tensor(rng.standard_normal((3, 2)), requires_grad=True, name=f"in{i}")
              for i in range(2)]
    for op, args in steps:
        a = values[args[0]]
        if op == "sum0":
            out = a.sum(axis=0, keepdims=True) * np.ones((3, 2))
        elif op in _UNARY:
            out = -a if op == "neg" else getattr(a, op)()
        else:
            b = values[args[1]]
            out = a + b if op == "add" else a - b if op == "sub" else a * b
        values.append(out)
    root = values[-1].sum()
    root.backward()
    return root


@given(programs())
def test_any_program_draws_deterministically_with_each_op_once_and_steps_in_order(steps):
    source = viz.draw_graph(run_program(steps), max_nodes=None).source
    assert source == viz.draw_graph(run_program(steps), max_nodes=None).source
    dot = parse_dot(source)
    step = {n.id: int(m.group(1)) for n in dot.nodes.values()
            if (m := re.search(r"<i>#(\d+)</i>", n.label))}
    assert sorted(step.values()) == list(range(1, len(step) + 1))
    for tail, head, _ in dot.edges:
        if tail in step and head in step:
            assert step[tail] < step[head]


# ---------------------------------------------------------------- rendering


@needs_dot
@pytest.mark.parametrize("fmt, magic", [("svg", b"<svg"), ("png", b"\x89PNG"), ("pdf", b"%PDF")])
def test_render_writes_a_real_image_with_dot(tmp_path, fmt, magic):
    loss, _ = bn_loss("composed")
    path = viz.render(viz.draw_graph(loss), tmp_path / f"bn.{fmt}")
    data = path.read_bytes()
    assert magic in data[:400]
    if fmt == "svg":
        assert "bn · BatchNorm1d (composed)" in data.decode()
    assert [p.name for p in tmp_path.iterdir()] == [f"bn.{fmt}"]  # no temp file left behind


def test_without_dot_rendering_says_how_to_install_graphviz_but_dot_text_still_works(
    tmp_path, monkeypatch
):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert not viz.dot_available()
    graph = viz.draw_graph(bn_loss("composed")[0])
    with pytest.raises(viz.DotNotFoundError) as err:
        viz.render(graph, tmp_path / "bn.svg")
    message = str(err.value)
    assert "apt-get install graphviz" in message and "brew install graphviz" in message
    assert "conda" in message and "format='dot'" in message
    assert not (tmp_path / "bn.svg").exists()
    written = viz.render(graph, tmp_path / "bn.dot")
    assert written.read_text() == graph.source and "digraph" in graph.source


def test_cli_without_dot_says_how_to_install_it_and_how_to_get_dot_text(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert cli.main(["graph", "-o", str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err
    assert "apt-get install graphviz" in err and "--format dot" in err
    assert cli.main(["graph", "-o", str(tmp_path / "g.dot")]) == 0


def test_render_format_comes_from_the_suffix_unless_given(tmp_path):
    graph = viz.draw_graph(bn_loss("fused")[0])
    path = viz.render(graph, tmp_path / "graph.txt", format="dot")
    assert path.read_text().startswith("digraph")


# ---------------------------------------------------------------- bad input


def test_bad_input_gets_clear_errors(tmp_path):
    loss, _ = bn_loss("composed")
    with pytest.raises(TypeError, match="root must be a Tensor, got list"):
        viz.draw_graph([1.0, 2.0])
    leaf = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match=r"shape \(3,\).*no graph to draw: it is a leaf"):
        viz.draw_graph(leaf)
    with pytest.raises(ValueError, match="view must be 'forward' or 'backward', got 'sideways'"):
        viz.draw_graph(loss, view="sideways")
    with pytest.raises(ValueError, match="rankdir must be one of TB, LR, BT, RL, got 'up'"):
        viz.draw_graph(loss, rankdir="up")
    with pytest.raises(ValueError, match="max_nodes must be a positive int or None, got 0"):
        viz.draw_graph(loss, max_nodes=0)
    with pytest.raises(TypeError, match="params must be a mapping"):
        viz.draw_graph(loss, params=[1, 2])
    with pytest.raises(ValueError, match="'bn9' ran no op in this graph; modules in the graph: "
                                         "bn; composites: mean, mse_loss"):
        viz.draw_graph(loss, collapse=["bn9"])
    with pytest.raises(ValueError, match="got the string 'bn'"):
        viz.draw_graph(loss, collapse="bn")
    with pytest.raises(TypeError, match="collapse must be 'all', an int, or a list"):
        viz.draw_graph(loss, collapse=2.5)
    graph = viz.draw_graph(loss)
    with pytest.raises(ValueError, match="format must be one of svg, png, pdf, dot, html, got 'gif'"):
        viz.render(graph, tmp_path / "g.gif", format="gif")
    with pytest.raises(ValueError, match="cannot tell the format from the file name"):
        viz.render(graph, tmp_path / "g.jpeg")
    missing = tmp_path / "no" / "such" / "dir"
    with pytest.raises(FileNotFoundError, match=f"directory '{missing}' does not exist"):
        viz.render(graph, missing / "g.svg")
    with pytest.raises(TypeError, match="graph must be a graphviz.Digraph"):
        viz.render(graph.source, tmp_path / "g.dot")
    with pytest.raises(TypeError, match="labels must be two strings"):
        viz.draw_comparison(loss, loss, labels=("one",))
    with pytest.raises(ValueError, match=r"has no graph.*\(graph 'b'\)"):
        viz.draw_comparison(loss, leaf)


# ---------------------------------------------------------------- command line


@pytest.mark.parametrize("model", ["batchnorm", "layernorm", "mlp", "mlp-bn"])
def test_cli_graph_writes_the_file_for_each_model(tmp_path, capsys, model):
    out = tmp_path / f"{model}.dot"
    assert cli.main(["graph", "--model", model, "--impl", "both", "-o", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    dot = parse_dot(out.read_text())
    kernels = {"batchnorm": "batch_norm_fused", "layernorm": "layer_norm_fused",
               "mlp-bn": "batch_norm_fused"}
    if model in kernels:
        assert dot.titled(kernels[model]) and dot.titled("pow")  # fused and composed side by side
    else:
        assert dot.titled("matmul")


@needs_dot
def test_cli_graph_renders_svg_by_default_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["graph", "--model", "mlp-bn", "--impl", "fused", "--view", "forward",
                     "--seed", "3"]) == 0
    written = tmp_path / "graph-mlp-bn-fused-forward.svg"
    assert written.read_bytes().lstrip().startswith(b"<?xml")
    assert "graph-mlp-bn-fused-forward.svg" in capsys.readouterr().out


def test_cli_graph_help_and_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["graph", "--help"])
    assert exit_.value.code == 0
    assert "--model {batchnorm,layernorm,mlp,mlp-bn}" in capsys.readouterr().out
    assert cli.main(["graph", "-o", str(tmp_path / "missing" / "g.dot")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["graph", "-o", str(tmp_path / "g.svg"), "--format", "png"]) == 2
    assert "suffix .svg but --format is png" in capsys.readouterr().err


# ---------------------------------------------------------------- docs


def _load_gallery():
    spec = importlib.util.spec_from_file_location("make_gallery", ROOT / "docs" / "make_gallery.py")
    gallery = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gallery)
    return gallery


def test_gallery_code_in_the_docs_is_the_code_that_drew_each_picture():
    gallery = _load_gallery()
    doc = (ROOT / "docs" / "visualising.md").read_text()
    for name, make in gallery.GALLERY.items():
        lines = inspect.getsource(make).splitlines()
        assert lines[-1].strip() == "return graph"
        body = textwrap.dedent("\n".join(lines[2:-1]))  # without def, docstring and return
        assert f"```python\n{body}\n```\n\n![" in doc, f"docs/visualising.md: {name} code differs"
        assert f"(images/{name}.svg)" in doc
        assert (ROOT / "docs" / "images" / f"{name}.svg").is_file()


def test_gallery_script_builds_every_picture():
    for name, graph in _load_gallery().build_gallery().items():
        assert graph.source.startswith("digraph"), name


# ---------------------------------------------------------------- composites, scalars, folding


def test_cross_entropy_primitives_sit_in_a_box_named_after_it_and_fold_like_a_module():
    logits = Tensor(np.random.default_rng(0).standard_normal((4, 3)), requires_grad=True,
                    name="logits")
    loss = F.cross_entropy(logits, np.array([0, 2, 1, 1]))
    loss.backward()
    dot = parse_dot(viz.draw_graph(loss).source)
    inside = dot.ops_in("F.cross_entropy")
    assert len(inside) == 9  # log_softmax's sub, exp, sum, log, sub; getitem; neg; mean's sum, mul
    assert Counter(n.title for n in inside) == Counter(
        {"sub": 2, "sum": 2, "exp": 1, "log": 1, "getitem": 1, "neg": 1, "mul": 1})
    assert len(dot.ops_in("F.log_softmax")) == 5 and len(dot.ops_in("F.mean")) == 2
    assert all(n.clusters[0] == "F.cross_entropy" for n in inside)
    assert 'style="rounded,dashed,filled"' in viz.draw_graph(loss).source  # not a module's frame
    folded = parse_dot(viz.draw_graph(loss, collapse=["cross_entropy"]).source)
    box = folded.one("F.cross_entropy")
    assert "box3d" in box.attrs and "9 ops folded" in box.label
    assert not folded.titled("exp")


def test_one_op_composites_get_no_box_and_a_layer_does_not_box_its_own_function_twice():
    x = Tensor(np.ones((3, 2)), requires_grad=True)
    labels = parse_dot(viz.draw_graph(F.relu(x).sum() + F.softmax(x).sum()).source).cluster_labels
    assert "F.softmax" in labels and "F.relu" not in labels
    loss, _ = bn_loss("composed")
    labels = parse_dot(viz.draw_graph(loss).source).cluster_labels
    assert "bn · BatchNorm1d (composed)" in labels and "F.batch_norm" not in labels


def test_composite_scopes_are_per_thread():
    import threading

    from tinygrad_bn.autograd.grad_mode import STATE, composite

    entered, release = threading.Event(), threading.Event()

    @composite("slow")
    def slow(t):
        entered.set()
        release.wait(5)
        return t * 2.0

    x = Tensor(np.ones(2), requires_grad=True)
    worker = threading.Thread(target=slow, args=(x,))
    worker.start()
    entered.wait(5)
    try:
        here = x * 3.0  # recorded while the other thread is inside its composite
        assert STATE.scope == () and here.grad_fn.scope == ()
    finally:
        release.set()
        worker.join()
    inside = slow(x)
    assert [e.name for e in inside.grad_fn.scope] == ["slow"]


def test_scalar_nodes_show_their_signed_value_and_gradient_like_micrograd():
    a = Tensor(np.array(2.0), requires_grad=True, name="a")
    b = Tensor(np.array(-3.0), requires_grad=True, name="b")
    c = a * b
    c.name = "c"
    d = c + a
    d.backward()  # dd/da = b + 1 = -2, dd/db = a = 2, dd/dc = 1
    dot = parse_dot(viz.draw_graph(d).source)
    assert "data 2 | grad -2" in dot.one("a").label
    assert "data -3 | grad 2" in dot.one("b").label
    mul = dot.one("mul")
    assert "data -6 | grad 1" in mul.label and "‖g‖" not in mul.label
    assert "data 2 |" not in parse_dot(viz.draw_graph(d, show_grads=False).source).one("a").label
    assert "data -4" in parse_dot(viz.draw_graph(d, show_grads=False).source).one("add").label


def tanh_chain(length):
    """x -> tanh -> tanh -> ... (no modules), root a sum."""
    h = Tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True, name="x")
    for _ in range(length):
        h = h.tanh()
    loss = h.sum()
    loss.backward()
    return loss


def test_max_nodes_folds_long_chains_of_a_graph_without_modules_and_the_title_says_so():
    loss = tanh_chain(200)
    source = viz.draw_graph(loss, max_nodes=30).source
    dot = parse_dot(source)
    assert len(dot.nodes) <= 30
    boxes = [n for n in dot.nodes.values() if "box3d" in n.attrs]
    folded = [int(re.search(r"(\d+) ops folded", n.label).group(1)) for n in boxes]
    assert boxes and sum(folded) + len([n for n in dot.nodes.values() if _is_op(n)]) == 201
    assert all(n.title == "tanh … tanh" for n in boxes)
    assert re.search(r"folded \d+ chains? of ops \(\d+ ops\)", source) and "max_nodes=None" in source
    assert dot.one("x") and dot.one("sum")  # the ends stay visible
    full = parse_dot(viz.draw_graph(loss, max_nodes=None).source)
    assert len(full.titled("tanh")) == 200 and not any("box3d" in n.attrs for n in full.nodes.values())


def test_tall_graphs_get_the_compact_layout_by_default_and_short_ones_do_not():
    from tinygrad_bn.viz import COMPACT_ABOVE_RANKS

    tall = viz.draw_graph(tanh_chain(COMPACT_ABOVE_RANKS + 5), max_nodes=None).source
    assert "ranksep=0.18" in tall and "compact layout (46 ops deep)" in tall
    # edge labels outside the ranking (xlabel) and one detail line per node
    assert "xlabel=" in tall and not re.search(r" label=\"\(2, 3\)\"", tall)
    assert "(2, 3) float64 · ‖g‖" in tall and "max|g|" not in tall
    short = viz.draw_graph(tanh_chain(COMPACT_ABOVE_RANKS - 5), max_nodes=None).source
    assert "ranksep=0.4" in short and "compact layout" not in short and "xlabel" not in short
    normal = viz.draw_graph(tanh_chain(COMPACT_ABOVE_RANKS + 5), max_nodes=None, layout="normal")
    assert "rankdir=TB" in normal.source and "ranksep=0.4" in normal.source
    forced = viz.draw_graph(tanh_chain(5), layout="compact", rankdir="LR").source
    assert "rankdir=LR" in forced and "ranksep=0.18" in forced
    with pytest.raises(ValueError, match="layout must be one of auto, normal, compact, got 'tiny'"):
        viz.draw_graph(tanh_chain(2), layout="tiny")


@needs_dot
def test_the_compact_layout_makes_a_tall_graph_much_shorter():
    def height(drawing):
        svg = drawing.pipe(format="svg").decode()
        return float(re.search(r'<svg width="[\d.]+pt" height="([\d.]+)pt"', svg).group(1))

    loss = tanh_chain(60)
    roomy = height(viz.draw_graph(loss, max_nodes=None, layout="normal"))
    assert height(viz.draw_graph(loss, max_nodes=None)) < 0.7 * roomy


def _fill(node):
    return re.search(r'fillcolor="(#[0-9a-f]{6})"', node.attrs).group(1)


@pytest.mark.parametrize("linear_impl", ["composed", "fused"])
@pytest.mark.parametrize("bn_impl", ["composed", "fused"])
def test_a_bias_just_before_batchnorm_is_zero_by_structure_not_a_vanishing_gradient(
    linear_impl, bn_impl
):
    from tinygrad_bn.viz import style

    rng = np.random.default_rng(0)
    net = Model(fc=nn.Linear(4, 5, rng=rng, impl=linear_impl), bn=nn.BatchNorm1d(5, impl=bn_impl),
                relu=nn.ReLU(), out=nn.Linear(5, 3, rng=rng, impl=linear_impl))
    x = Tensor(rng.standard_normal((8, 4)).astype(np.float32), name="x")
    loss = F.cross_entropy(net(x), rng.integers(0, 3, 8))
    loss.backward()
    g = net.fc.bias.grad.data
    assert 0 < np.abs(g).max() < 1e-5  # rounding noise, where the exact gradient is 0
    source = viz.draw_graph(loss).source
    dot = parse_dot(source)
    bias = dot.one("fc.bias")
    assert "≈0 by structure: BatchNorm cancels it" in bias.label
    assert _fill(bias) == style.ZERO_GRAD_FILL != style.grad_colour(float(np.abs(g).max()))
    assert "≈0 by structure" not in dot.one("out.bias").label  # after the ReLU: a real gradient
    assert "≈0 by structure" in dot.legend["legend_colours"].label


def test_no_structural_zero_without_the_centring():
    # the same Linear before an eval-mode BatchNorm (fixed statistics) or a LayerNorm
    rng = np.random.default_rng(0)
    for norm in (nn.BatchNorm1d(5, impl="composed").eval(), nn.LayerNorm(5, impl="composed")):
        net = Model(fc=nn.Linear(4, 5, rng=rng), norm=norm)
        loss = (net(Tensor(rng.standard_normal((8, 4)).astype(np.float32))) ** 2).sum()
        loss.backward()
        source = viz.draw_graph(loss).source
        assert "≈0 by structure" not in source, type(norm).__name__
    # a hand-written x - mean(x) over the batch cancels a bias just as BatchNorm does
    w = Tensor(rng.standard_normal((4, 5)), requires_grad=True, name="w")
    b = Tensor(np.zeros(5), requires_grad=True, name="b")
    h = Tensor(rng.standard_normal((8, 4))) @ w + b
    loss = ((h - h.mean(axis=0, keepdims=True)) ** 3).sum()
    loss.backward()
    assert "≈0 by structure: mean subtraction cancels it" in parse_dot(
        viz.draw_graph(loss).source).one("b").label


def test_inline_display_without_dot_raises_the_projects_error(tmp_path, monkeypatch):
    graph = viz.draw_graph(bn_loss("composed")[0])
    assert isinstance(graph, viz.Drawing)
    if viz.dot_available():
        bundle = graph._repr_mimebundle_()
        assert bundle["image/svg+xml"].lstrip().startswith(("<?xml", "<svg"))
    monkeypatch.setenv("PATH", str(tmp_path))
    for show in (graph._repr_mimebundle_, graph._repr_svg_):
        with pytest.raises(viz.DotNotFoundError, match="apt-get install graphviz"):
            show()
    assert graph._repr_mimebundle_(include=["text/plain"]) == {}


def test_the_micrograd_picture_shows_the_gradients_micrograd_prints():
    # micrograd's README: g = 24.7041, a.grad = 138.8338, b.grad = 645.5773
    dot = parse_dot(_load_gallery().micrograd_scalars().source)
    assert "data -4 | grad 139" in dot.one("a").label
    assert "data 2 | grad 646" in dot.one("b").label
    assert "data 24.7 | grad 1" in [n for n in dot.nodes.values() if "→ g</b>" in n.label][0].label
