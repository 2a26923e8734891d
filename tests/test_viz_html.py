"""The HTML viewer's page, written in Python: its content, its data, rendering and the CLI.

What happens in a browser is tested in test_viewer_browser.py.
"""

from __future__ import annotations

import html
import json
import re

import graphviz
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_bn import Tensor, cli, nn, viz
from tinygrad_bn import functional as F
from tinygrad_bn.viz import panels, timeline, trace
from tinygrad_bn.viz.examples import Model
from tinygrad_bn.viz.model import build, element_id

needs_dot = pytest.mark.skipif(not viz.dot_available(), reason="Graphviz `dot` is not installed")


def mlp(impl, width=6, batch=8, features=4, seed=0, retain_graph=True):
    """Linear -> BatchNorm1d(impl) -> ReLU -> Linear -> cross-entropy, after backward."""
    rng = np.random.default_rng(seed)
    net = Model(fc1=nn.Linear(features, width, rng=rng), bn1=nn.BatchNorm1d(width, impl=impl),
                relu1=nn.ReLU(), fc2=nn.Linear(width, 3, rng=rng))
    x = Tensor(np.random.default_rng(99).standard_normal((batch, features)).astype(np.float32),
               name="x")
    loss = F.cross_entropy(net(x), np.arange(batch) % 3)
    loss.name = "loss"
    loss.backward(retain_graph=retain_graph)
    return loss, net


def page_data(viewer):
    raw = re.search(r'<script type="application/json" id="tgbn-data">(.*?)</script>', viewer.html,
                    re.S).group(1)
    return json.loads(raw.replace("<\\/", "</"))


# ---------------------------------------------------------------- the page


@needs_dot
def test_the_page_is_self_contained_with_both_views_and_a_record_per_drawn_node():
    loss, _ = mlp("composed")
    viewer = viz.to_html(loss)
    text = viewer.html
    assert text.startswith("<!DOCTYPE html>") and text.count("<svg") >= 2
    assert 'data-view="backward"' in text and 'data-view="forward"' in text
    assert "<script src" not in text and "<link rel=\"stylesheet\"" not in text
    assert not re.search(r"https?://(?!www\.w3\.org/)", text)  # only XML namespace names
    assert not re.search(r' id="node\d+"', text)  # Graphviz's ids would repeat across the views
    data = page_data(viewer)
    model = build(loss)
    drawn = {element_id(n) for n in model.nodes if not n.inline}
    assert {n["el"] for n in data["nodes"] if n["drawn"]} == drawn
    assert viewer.n_nodes == len(drawn) and viewer.n_ticks == len(model.ops)
    # ticks: every op once, in backward order
    step = {n["id"]: n["step"] for n in data["nodes"]}
    assert [step[t[0]] for t in data["ticks"]] == list(range(1, len(model.ops) + 1))
    assert re.search(r"\d+ nodes, \d+ backward steps, \d+ kB", repr(viewer))


@needs_dot
def test_panel_records_hold_summaries_of_values_gradients_sends_and_saved_tensors():
    loss, net = mlp("composed")
    data = page_data(viz.to_html(loss))
    nodes = {n["name"]: n for n in data["nodes"] if n["name"]}
    xhat = nodes["xhat"]
    assert xhat["op"] == "mul" and xhat["formula"] == "a × b"
    assert xhat["path"] == "Model › bn1 · BatchNorm1d (composed)"
    assert xhat["shape"] == [8, 6] and xhat["dtype"] == "float32"
    g = xhat["grad"]
    ctx = next(n.ctx for n in build(loss).nodes if n.name == "xhat")
    assert g["norm"] == pytest.approx(float(np.linalg.norm(ctx.trace.received)), rel=1e-3)
    assert sum(g["hist"]["counts"]) == 48
    assert [s["letter"] for s in xhat["sends"]] == ["a", "b"]
    assert xhat["saved"]["released"] is False  # backward(retain_graph=True)
    assert xhat["saved"]["bytes"] == sum(i["bytes"] for i in xhat["saved"]["items"]) > 0
    weight = nodes["fc1.weight"]
    assert weight["kind"] == "parameter"
    assert weight["grad"]["max"] == pytest.approx(float(net.fc1.weight.grad.data.max()), rel=1e-3)
    assert nodes["fc1.bias"]["zero"] == "BatchNorm"


@needs_dot
def test_page_size_does_not_grow_with_the_tensors():
    small = viz.to_html(mlp("composed", batch=8, features=4)[0]).nbytes
    big = viz.to_html(mlp("composed", batch=512, features=256)[0]).nbytes
    # 512*256 float32 inputs would be 512 kB as raw bytes, more as JSON numbers
    assert big < 1.2 * small


@needs_dot
def test_the_comparison_steps_both_sides_together_where_they_share_tensors():
    (a, net_a), (b, net_b) = mlp("composed"), mlp("fused")
    viewer = viz.to_html_comparison(a, b, params=(net_a, net_b))
    data = page_data(viewer)
    nodes = {n["id"]: n for n in data["nodes"]}
    for side, model in ((0, build(a)), (1, build(b))):
        seen = []
        for tick in data["ticks"]:
            if tick[side] is not None and (not seen or seen[-1] != tick[side]):
                seen.append(tick[side])
        assert [nodes[i]["step"] for i in seen] == list(range(1, len(model.ops) + 1))
    fused_on = {nodes[t[1]]["op"] for t in data["ticks"]
                if "BatchNorm1d" in nodes[t[0]]["path"]}
    # while the composed side walks BatchNorm's primitives, the fused side is on its kernel
    assert fused_on == {"batch_norm_fused"}
    together = [t for t in data["ticks"] if (nodes[t[0]]["op"], nodes[t[0]]["path"])
                == (nodes[t[1]]["op"], nodes[t[1]]["path"])]
    assert len(together) == 3 + 1 + 3 + 9  # fc1, relu1, fc2 and the loss move together
    assert len(data["ticks"]) == len(together) + 13  # plus the composed BatchNorm's 13 ops


def test_ticks_visit_every_op_of_each_side_in_order():
    @given(st.integers(0, 12), st.integers(0, 12), st.data())
    def check(n_a, n_b, draw):
        a, b = [f"a{i}" for i in range(n_a)], [f"b{j}" for j in range(n_b)]
        k = draw.draw(st.integers(0, min(n_a, n_b)))
        ia = sorted(draw.draw(st.lists(st.integers(0, max(n_a - 1, 0)), min_size=k, max_size=k,
                                       unique=True))) if n_a else []
        jb = sorted(draw.draw(st.lists(st.integers(0, max(n_b - 1, 0)), min_size=len(ia),
                                       max_size=len(ia), unique=True))) if n_b else []
        pairs = list(zip(ia, jb))
        ticks = timeline.ticks([a, b], pairs)
        for side, order in ((0, a), (1, b)):
            seen = []
            for t in ticks:
                if t[side] is not None and (not seen or seen[-1] != t[side]):
                    seen.append(t[side])
            assert seen == order
        for i, j in pairs:
            assert [a[i], b[j]] in ticks
        if not pairs:
            assert len(ticks) == max(n_a, n_b)

    check()


def test_matching_pairs_the_shared_layers_and_not_the_two_batchnorms():
    (a, net_a), (b, net_b) = mlp("composed"), mlp("fused")
    ma, mb = build(a, net_a), build(b, net_b)
    pairs = timeline.match(ma, mb)
    names = {(u.name, v.name) for u, v in pairs.items() if u.ctx is None}
    assert ("fc1.weight", "fc1.weight") in names and ("x", "x") in names
    assert ("bn1.weight", "bn1.weight") in names  # the leaves match, the ops around them not
    ops = [(u.ctx.fn.name, v.ctx.fn.name) for u, v in pairs.items() if u.ctx is not None]
    assert all(p == q for p, q in ops)
    assert not any(u.ctx is not None and "BatchNorm" in (u.cluster.title() if u.cluster else "")
                   for u in pairs)
    assert len(ops) == 3 + 1 + 3 + 9  # fc1, relu, fc2, cross-entropy


# ---------------------------------------------------------------- what backward sent


def test_recomputed_sends_add_up_to_each_inputs_gradient():
    loss, _ = mlp("composed")
    model = build(loss)
    uses = {n: 0 for n in model.nodes}
    for e in model.edges:
        uses[e.parent] += 1
    arriving: dict = {}
    for node in model.ops:
        for p, g in zip(node.ctx.parents, trace.sent(node.ctx, [uses[model.node_of(p)]
                                                               for p in node.ctx.parents])):
            if g is not None:
                arriving[model.node_of(p)] = arriving.get(model.node_of(p), 0) + g
    for node, total in arriving.items():
        expected = trace.received(node.ctx) if node.ctx is not None else node.tensor.grad.data
        np.testing.assert_allclose(total, expected, rtol=1e-5, atol=1e-7)
    assert len(arriving) > 20


def test_after_a_plain_backward_every_send_is_known_from_the_engines_trace():
    loss, _ = mlp("composed", retain_graph=False)
    model = build(loss)
    xc = next(n for n in model.nodes if n.name == "xc")  # used by the square and the normalise
    sq = next(n for n in model.ops if n.ctx.fn.name == "mul" and
              n.ctx.parents[0] is n.ctx.parents[1] is xc.tensor)
    sent = trace.sent(sq.ctx, [2, 2])  # d(xc * xc) sends g * xc to each operand
    for s in sent:
        np.testing.assert_allclose(s, trace.received(sq.ctx) * xc.tensor.data, rtol=1e-6)
    relu = next(n for n in model.ops if n.ctx.fn.name == "relu")
    (sent,) = trace.sent(relu.ctx, [1])
    np.testing.assert_array_equal(sent, trace.received(relu.ctx.parents[0].grad_fn))


def test_summaries_count_and_bin_the_finite_values():
    a = np.array([[1.0, -2.0, np.nan], [0.0, 4.0, np.inf]], dtype=np.float32)
    s = panels.summarise(a, bins=4)
    assert s["shape"] == [2, 3] and s["dtype"] == "float32" and s["size"] == 6
    assert s["nonfinite"] == 2 and s["zeros"] == 1
    assert (s["min"], s["max"]) == (-2.0, 4.0)
    assert s["norm"] == pytest.approx(np.sqrt(1 + 4 + 16), rel=1e-3)
    assert sum(s["hist"]["counts"]) == 4 and len(s["hist"]["counts"]) == 4
    assert panels.summarise(np.array(-0.125))["value"] == -0.125
    assert panels.summarise(None) is None
    assert panels.summarise(np.full(5, 3.0))["hist"]["counts"] == [5]


# ---------------------------------------------------------------- jupyter, render, CLI, errors


@needs_dot
def test_jupyter_shows_the_page_in_an_iframe():
    viewer = viz.to_html(mlp("fused")[0])
    shown = viewer._repr_html_()
    assert shown.startswith("<iframe srcdoc=")
    assert html.unescape(re.search(r'srcdoc="(.*?)" style', shown, re.S).group(1)) == viewer.html


@needs_dot
def test_render_writes_the_viewer_from_a_drawing_a_root_or_a_viewer(tmp_path):
    loss, _ = mlp("composed")
    drawing = viz.draw_graph(loss, view="forward", max_nodes=40)
    from_drawing = viz.render(drawing, tmp_path / "a.html").read_text()
    assert from_drawing == viz.to_html(loss, view="forward", max_nodes=40).html
    assert viz.render(loss, tmp_path / "b.html").read_text() == viz.to_html(loss).html
    viewer = viz.to_html(loss)
    assert viz.render(viewer, tmp_path / "c.html").read_text() == viewer.html
    assert viewer.save(tmp_path / "d.html").read_text() == viewer.html
    both = viz.draw_comparison(loss, mlp("fused")[0], labels=("left", "right"))
    assert "left vs right" in viz.render(both, tmp_path / "e.html").read_text()
    with pytest.raises(TypeError, match="hand-made graphviz graph"):
        viz.render(graphviz.Digraph(), tmp_path / "f.html")
    with pytest.raises(TypeError, match="writing svg needs a graphviz.Digraph"):
        viz.render(viewer, tmp_path / "g.svg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.html", "b.html", "c.html", "d.html",
                                                          "e.html"]


@needs_dot
def test_cli_graph_writes_the_viewer(tmp_path, capsys):
    out = tmp_path / "bn.html"
    assert cli.main(["graph", "mlp-bn", "--impl", "both", "-o", str(out)]) == 0
    assert "html" in capsys.readouterr().out
    data = page_data(viz.Viewer(out.read_text(), 0, 0))
    assert data["sides"] == ["composed", "fused"]
    # the command keeps the graph, so the page knows what every op sent
    sends = [s for n in data["nodes"] for s in n.get("sends", []) if s["needs"]]
    assert sends and all(s["grad"] is not None for s in sends)


def test_without_dot_the_viewer_says_how_to_install_graphviz(tmp_path, monkeypatch):
    loss, _ = mlp("fused")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(viz.DotNotFoundError, match="to_html: writing SVG needs Graphviz"):
        viz.to_html(loss)


def test_bad_viewer_arguments_get_clear_errors():
    loss, _ = mlp("fused")
    with pytest.raises(ValueError, match="bins must be a positive int, got 0"):
        viz.to_html(loss, bins=0)
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        viz.to_html(loss, colour="red")
    with pytest.raises(TypeError, match="root must be a Tensor"):
        viz.to_html("loss")
    with pytest.raises(TypeError, match="labels must be two strings"):
        viz.to_html_comparison(loss, loss, labels="ab")
