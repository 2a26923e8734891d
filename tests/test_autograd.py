"""The graph walk: accumulation, retain/release, higher order, grad(), grad modes, anomaly mode.

Gradients are compared with central differences in float64. The property test
at the top draws random expression DAGs (nodes reused by later nodes, some
inputs unused), which is where accumulation bugs in a topological walk hide.
"""

import doctest
import gc
import os
import re
import sys
import tracemalloc
import weakref
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import tinygrad_bn as tg
from tinygrad_bn import AnomalyError, Function, Tensor, functional, nn
from tinygrad_bn.gradcheck import gradgradcheck, numerical_gradient
from tinygrad_bn.testing import strategies as tst

# Central differences with h = 1e-6 on float64 values of size <= ~100 are good to
# ~1e-8 absolute (rounding ~1e-16 * 100 / 1e-6, truncation ~h^2); these leave margin.
ATOL = 1e-6
RTOL = 1e-5
THIS_FILE = os.path.basename(__file__)


def assert_close(actual, expected, atol=ATOL, rtol=RTOL):
    actual = actual.data if isinstance(actual, Tensor) else actual
    np.testing.assert_allclose(actual, expected, atol=atol, rtol=rtol)


# ---------------------------------------------------------------- random expression DAGs

# Elementwise ops keep every node broadcastable to the inputs' common shape;
# reductions keep their axes (keepdims=True) so that stays true.
_UNARY = {
    "neg": lambda a: -a,
    "tanh": lambda a: a.tanh(),
    "sigmoid": functional.sigmoid,
    "square": lambda a: a * a,
    "affine": lambda a: a * 0.7 + 0.3,
    "exp_tanh": lambda a: a.tanh().exp(),
}
_BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "safe_div": lambda a, b: a / (b * b + 1.0),
}
_REDUCE = {
    "sum": lambda a, axis: a.sum(axis=axis, keepdims=True),
    "mean": lambda a, axis: a.mean(axis=axis, keepdims=True),
    "max": lambda a, axis: a.amax(dim=axis, keepdim=True),
}


@st.composite
def programs(draw):
    """(input arrays, ops, projection): a random DAG whose nodes are reused.

    Each op reads earlier nodes (inputs included) by index, so a node can feed
    several later ones; the output is sum_j <w_j, node_j> over a few nodes.
    """
    n_inputs = draw(st.integers(1, 3))
    shapes = list(draw(tst.broadcastable_shapes(n_inputs, max_dims=2, max_side=3)))
    arrays = [draw(tst.arrays(s, min_value=-1.5, max_value=1.5)) for s in shapes]
    ops = []
    for _ in range(draw(st.integers(1, 7))):
        kind = draw(st.sampled_from(["unary", "binary", "binary", "reduce"]))
        pick = st.integers(0, len(shapes) - 1)
        if kind == "unary":
            name, args = draw(st.sampled_from(sorted(_UNARY))), (draw(pick),)
            shape = shapes[args[0]]
        elif kind == "binary":
            name, args = draw(st.sampled_from(sorted(_BINARY))), (draw(pick), draw(pick))
            shape = np.broadcast_shapes(shapes[args[0]], shapes[args[1]])
        else:
            src = draw(pick)
            if not shapes[src]:
                continue
            axis = draw(st.integers(0, len(shapes[src]) - 1))
            name, args = draw(st.sampled_from(sorted(_REDUCE))), (src, axis)
            shape = tuple(1 if i == axis else n for i, n in enumerate(shapes[src]))
        ops.append((kind, name, args))
        shapes.append(tuple(shape))
    outputs = draw(st.lists(st.integers(0, len(shapes) - 1), min_size=1, max_size=3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    projection = [(j, rng.standard_normal(shapes[j])) for j in outputs]
    return arrays, ops, projection


def run_program(inputs, ops, projection):
    """Evaluate a drawn program on Tensors; returns (loss, every node)."""
    nodes = list(inputs)
    for kind, name, args in ops:
        if kind == "unary":
            nodes.append(_UNARY[name](nodes[args[0]]))
        elif kind == "binary":
            nodes.append(_BINARY[name](nodes[args[0]], nodes[args[1]]))
        else:
            nodes.append(_REDUCE[name](nodes[args[0]], args[1]))
    loss = None
    for j, w in projection:
        term = (nodes[j] * Tensor(w)).sum()
        loss = term if loss is None else loss + term
    return loss, nodes


def numerical_program_grads(inputs, ops, projection):
    def value(_):
        with tg.no_grad():
            return run_program(inputs, ops, projection)[0].data

    return [numerical_gradient(value, x.data) for x in inputs]


def _well_conditioned(inputs, ops, projection) -> bool:
    """Values stay moderate and max has no near-ties (so central differences are exact enough)."""
    with tg.no_grad():
        _, nodes = run_program(inputs, ops, projection)
    if not all(np.all(np.abs(n.data) < 100) for n in nodes):
        return False
    for _kind, name, args in ops:
        if name == "max":
            v = np.sort(nodes[args[0]].data, axis=args[1])
            if v.shape[args[1]] > 1 and np.min(np.abs(np.diff(v, axis=args[1]))) < 1e-3:
                return False
    return True


@given(program=programs())
def test_random_dag_gradients_match_numerical_and_a_retained_second_backward_doubles_them(program):
    arrays, ops, projection = program
    inputs = [Tensor(a, requires_grad=True) for a in arrays]
    assume(_well_conditioned(inputs, ops, projection))
    expected = numerical_program_grads(inputs, ops, projection)

    loss, _ = run_program(inputs, ops, projection)
    loss.backward(retain_graph=True)
    for x, e in zip(inputs, expected, strict=True):
        if x.grad is None:  # an input the program never read
            assert np.all(e == 0.0)
        else:
            assert_close(x.grad, e)
    # PyTorch semantics: a second backward through a retained graph adds to .grad.
    loss.backward()
    for x, e in zip(inputs, expected, strict=True):
        if x.grad is not None:
            assert_close(x.grad, 2 * e)


@given(program=programs())
def test_random_dag_grad_function_matches_numerical_without_touching_dot_grad(program):
    arrays, ops, projection = program
    inputs = [Tensor(a, requires_grad=True) for a in arrays]
    assume(_well_conditioned(inputs, ops, projection))
    expected = numerical_program_grads(inputs, ops, projection)
    loss, _ = run_program(inputs, ops, projection)
    grads = tg.grad(loss, inputs, allow_unused=True)
    for x, g, e in zip(inputs, grads, expected, strict=True):
        assert x.grad is None
        assert_close(np.zeros(x.shape) if g is None else g, e)


# ---------------------------------------------------------------- accumulation


def test_gradient_accumulates_through_a_reused_non_leaf_node():
    a = Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    b = a + a
    c = b * b  # c = 4a^2, dc/da = 8a: both uses of b and both uses of a must add up
    c.sum().backward()
    np.testing.assert_array_equal(a.grad.data, 8 * a.data)


def test_gradient_accumulates_across_separate_backward_calls():
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (a * 3.0).sum().backward()
    (a * a).sum().backward()
    np.testing.assert_array_equal(a.grad.data, 3.0 + 2 * a.data)


def test_second_backward_after_retain_graph_accumulates_like_pytorch():
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (a * a * a).sum()
    y.backward(retain_graph=True)
    np.testing.assert_array_equal(a.grad.data, 3 * a.data**2)
    y.backward()
    np.testing.assert_array_equal(a.grad.data, 6 * a.data**2)


def test_second_backward_after_retain_graph_matches_torch():
    torch = pytest.importorskip("torch")
    values = np.array([0.5, -1.5, 2.0])
    a = Tensor(values, requires_grad=True)
    ta = torch.tensor(values, requires_grad=True)
    for x, lib_tanh in ((a, lambda t: t.tanh()), (ta, torch.tanh)):
        b = x * x
        y = (lib_tanh(b) * b + b).sum()
        y.backward(retain_graph=True)
        y.backward()
    np.testing.assert_allclose(a.grad.data, ta.grad.numpy(), rtol=1e-12)


def test_backward_records_what_each_node_received_and_sent_and_when_it_ran():
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = a * 3.0
    square = h * h
    loss = square.sum()
    loss.backward()
    assert h._ctx.fn.name == "mul" and h._ctx.parents[0] is a
    # backward runs sum, then h * h, then a * 3
    assert [t._ctx.trace.step for t in (loss, square, h)] == [1, 2, 3]
    np.testing.assert_array_equal(h._ctx.trace.received, 2 * h.data)
    np.testing.assert_array_equal(h._ctx.trace.sent[0], 3 * 2 * h.data)
    assert h._ctx.trace.sent[1] is None  # the constant 3.0 needs no gradient


def test_the_backward_trace_can_be_switched_off():
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    loss = (a * a).sum()
    with tg.autograd.backward_trace(False):
        loss.backward()
    assert loss._ctx.trace is None and a.grad is not None


# ---------------------------------------------------------------- release and retain


def test_saved_tensors_are_released_after_backward():
    x = Tensor(np.array([-1.0, 2.0, 3.0]), requires_grad=True)
    y = x.relu()  # relu saves a mask array that nothing else references
    loss = (y * 2.0).sum()
    ctx = y._ctx
    (mask,) = ctx.saved_tensors
    mask_tensor, mask_array = weakref.ref(mask), weakref.ref(mask.data)
    del mask
    loss.backward()
    gc.collect()
    assert ctx.released
    with pytest.raises(RuntimeError, match="relu: .*second time.*retain_graph=True"):
        _ = ctx.saved_tensors
    assert mask_tensor() is None and mask_array() is None  # freed although the graph is alive


def test_retain_graph_keeps_saved_tensors():
    x = Tensor(np.array([-1.0, 2.0]), requires_grad=True)
    y = x.relu()
    y.sum().backward(retain_graph=True)
    assert y._ctx.saved_tensors is not None and not y._ctx.released


def test_backward_through_a_released_graph_raises_and_says_how_to_fix_it():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x * x
    loss = y.sum()
    loss.backward()
    second_time = "trying to backward through the graph a second time"
    with pytest.raises(RuntimeError, match=rf"sum: {second_time}.*retain_graph=True"):
        loss.backward()
    # A new root that reaches the released part of the graph fails at the released op.
    with pytest.raises(RuntimeError, match=rf"^mul: {second_time}"):
        (y * 3.0).sum().backward()


def test_output_is_unavailable_after_release():
    x = Tensor(np.array([1.0]), requires_grad=True)
    y = x.exp()
    y.sum().backward()
    with pytest.raises(RuntimeError, match=r"exp: the output is only available during backward"):
        _ = y._ctx.output


def test_backward_walk_is_iterative_for_a_100000_op_chain():
    x = Tensor(np.array(0.5), requires_grad=True)
    one = Tensor(np.array(1.0))
    y = x
    for _ in range(100_000):
        y = y + one
    old_limit = sys.getrecursionlimit()
    # Far below the chain length (and below what any recursive walk would need),
    # yet comfortably above pytest's own stack depth.
    sys.setrecursionlimit(300)
    try:
        y.backward()
    finally:
        sys.setrecursionlimit(old_limit)
    assert x.grad.item() == 1.0
    assert y.item() == 100_000.5


def _train_steps(model, x, labels, steps, keep=None):
    for _ in range(steps):
        model.zero_grad()
        loss = functional.cross_entropy(model(x), labels)
        loss.backward()
        with tg.no_grad():
            for p in model.parameters():
                p.data -= 0.1 * p.grad.data
        if keep is not None:
            keep.append(loss)  # holding the graph: the leak the measurement must see


def _window_peaks(keep=None) -> tuple[int, int, int]:
    """Peak traced memory over steps 11-20 and 21-30, and the growth from step 10 to 30."""
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(20, 64, rng=0), nn.ReLU(), nn.Linear(64, 10, rng=1))
    x = Tensor(rng.standard_normal((32, 20)).astype(np.float32))
    labels = rng.integers(0, 10, 32)
    tracemalloc.start()
    try:
        _train_steps(model, x, labels, 10, keep)
        # gc.collect also empties CPython's tuple free lists, which otherwise fill up
        # over the first steps and look like growth to tracemalloc.
        gc.collect()
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        _train_steps(model, x, labels, 10, keep)
        peak_a = tracemalloc.get_traced_memory()[1] - base
        gc.collect()
        tracemalloc.reset_peak()
        _train_steps(model, x, labels, 10, keep)
        peak_b = tracemalloc.get_traced_memory()[1] - base
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    return peak_a, peak_b, growth


# One step of this MLP holds ~120 KiB at its peak; a retained graph per step adds
# ~70 KiB. 32 KiB is well under one leaked step and well over allocator noise.
MEMORY_MARGIN = 32 * 1024


def test_training_loop_memory_stays_flat():
    peak_a, peak_b, growth = _window_peaks()
    assert peak_b <= peak_a + MEMORY_MARGIN, (peak_a, peak_b)
    assert growth <= MEMORY_MARGIN, growth


def test_memory_measurement_detects_a_loop_that_keeps_its_graphs():
    peak_a, peak_b, growth = _window_peaks(keep=[])
    assert peak_b > peak_a + 10 * MEMORY_MARGIN
    assert growth > 10 * MEMORY_MARGIN


# ---------------------------------------------------------------- higher order


def test_double_backward_of_a_cube_gives_the_second_derivative():
    x = Tensor(np.array([1.0, -2.0, 0.5]), requires_grad=True)
    (x * x * x).sum().backward(create_graph=True)
    first = x.grad
    assert first.requires_grad
    np.testing.assert_allclose(first.data, 3 * x.data**2)
    x.grad = None
    first.sum().backward()
    np.testing.assert_allclose(x.grad.data, 6 * x.data)


def test_third_derivative_through_nested_grad_calls():
    x = Tensor(np.array([0.3, -1.2]), requires_grad=True)
    y = (x.tanh()).sum()
    (d1,) = tg.grad(y, x, create_graph=True)
    (d2,) = tg.grad(d1.sum(), x, create_graph=True)
    (d3,) = tg.grad(d2.sum(), x)
    t = np.tanh(x.data)
    np.testing.assert_allclose(d1.data, 1 - t**2, rtol=1e-12)
    np.testing.assert_allclose(d2.data, -2 * t * (1 - t**2), rtol=1e-12)
    np.testing.assert_allclose(d3.data, -2 * (1 - t**2) * (1 - 3 * t**2), rtol=1e-12)


def _hvp(f, x: Tensor, v: np.ndarray) -> np.ndarray:
    (g,) = tg.grad(f(x), x, create_graph=True)
    (hv,) = tg.grad((g * Tensor(v)).sum(), x)
    return hv.data


def _smooth_scalar(w: np.ndarray):
    wt = Tensor(w)

    def f(x: Tensor) -> Tensor:
        h = (wt @ x).tanh()
        return (h * h * x[: h.shape[0]]).sum() + functional.logsumexp(x * 2.0, axis=0)

    return f


@given(n=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_hessian_vector_product_matches_finite_differences_of_the_gradient(n, seed):
    rng = np.random.default_rng(seed)
    f = _smooth_scalar(rng.standard_normal((n, n)))
    x0, v = rng.standard_normal(n), rng.standard_normal(n)
    hv = _hvp(f, Tensor(x0, requires_grad=True), v)

    def gradient_at(point: np.ndarray) -> np.ndarray:
        t = Tensor(point, requires_grad=True)
        return tg.grad(f(t), t)[0].data

    # The first derivative is verified elsewhere; here only the second-order graph is tested.
    h = 1e-5
    numeric = (gradient_at(x0 + h * v) - gradient_at(x0 - h * v)) / (2 * h)
    np.testing.assert_allclose(hv, numeric, rtol=1e-6, atol=1e-8)


@given(n=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_hessian_of_a_quadratic_form_is_exact(n, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((n, n)), rng.standard_normal(n)
    at, bt = Tensor(a), Tensor(b)

    def f(x: Tensor) -> Tensor:
        return (x @ (at @ x)) * 0.5 + (bt * x).sum()

    x0 = rng.standard_normal(n)
    hessian = np.stack([_hvp(f, Tensor(x0, requires_grad=True), e) for e in np.eye(n)], axis=1)
    np.testing.assert_allclose(hessian, (a + a.T) / 2, rtol=1e-12, atol=1e-12)
    v = rng.standard_normal(n)
    np.testing.assert_allclose(_hvp(f, Tensor(x0, requires_grad=True), v), (a + a.T) / 2 @ v,
                               rtol=1e-12, atol=1e-12)


@given(x=tst.tensors(tst.shapes(1, 2)))
def test_second_derivative_of_a_composite_expression_matches_numerical(x):
    gradgradcheck(lambda t: (functional.sigmoid(t) * t.tanh()).sum(axis=-1), [x])


def test_create_graph_retains_the_graph_by_default():
    x = Tensor(np.array([2.0]), requires_grad=True)
    y = (x * x).sum()
    y.backward(create_graph=True)
    y.backward()  # would raise if create_graph had released the graph
    np.testing.assert_array_equal(x.grad.data, [8.0])


# ---------------------------------------------------------------- tinygrad_bn.grad


def test_grad_returns_gradients_without_touching_dot_grad():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    x.grad = Tensor(np.array([100.0, 100.0]))
    (g,) = tg.grad((x * x).sum(), x)
    np.testing.assert_array_equal(g.data, [2.0, 4.0])
    np.testing.assert_array_equal(x.grad.data, [100.0, 100.0])


def test_grad_for_an_unused_input_raises_unless_allow_unused():
    x = Tensor(np.array([1.0]), requires_grad=True)
    unused = Tensor(np.array([2.0, 3.0]), requires_grad=True)
    unused_message = r"inputs\[1\] \(shape \(2,\)\) was not used.*allow_unused=True"
    with pytest.raises(RuntimeError, match=unused_message):
        tg.grad((x * 2.0).sum(), [x, unused])
    gx, gu = tg.grad((x * 2.0).sum(), [x, unused], allow_unused=True)
    np.testing.assert_array_equal(gx.data, [2.0])
    assert gu is None


def test_grad_with_respect_to_non_leaf_tensors():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = x * 3.0
    out = (h * h).sum() + h.sum()
    gh, gx = tg.grad(out, [h, x])
    np.testing.assert_array_equal(gh.data, 2 * h.data + 1)
    np.testing.assert_array_equal(gx.data, 3 * (2 * h.data + 1))


def test_grad_outputs_weight_non_scalar_outputs():
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    v = np.array([1.0, 10.0, 100.0])
    (g,) = tg.grad(x * x, x, grad_outputs=v)
    np.testing.assert_array_equal(g.data, 2 * x.data * v)
    # Several outputs: their weighted gradients add.
    (g2,) = tg.grad([x * x, x * 5.0], x, grad_outputs=[Tensor(v), np.ones(3)])
    np.testing.assert_array_equal(g2.data, 2 * x.data * v + 5.0)


def test_grad_rejects_grad_outputs_of_the_wrong_shape_or_count():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    wrong_shape = r"grad: gradient has shape \(3,\), expected the output's shape \(2,\)"
    with pytest.raises(ValueError, match=wrong_shape):
        tg.grad(x * x, x, grad_outputs=np.ones(3))
    with pytest.raises(ValueError, match=r"grad: got 2 grad_outputs for 1 outputs"):
        tg.grad(x * x, x, grad_outputs=[np.ones(2), np.ones(2)])


def test_grad_of_an_input_that_does_not_require_grad_raises():
    x = Tensor(np.array([1.0]), requires_grad=True)
    c = Tensor(np.array([2.0]))
    message = r"grad: inputs\[1\] \(shape \(1,\)\) does not require grad"
    with pytest.raises(RuntimeError, match=message):
        tg.grad((x * c).sum(), [x, c])


def test_grad_releases_the_graph_unless_retained():
    x = Tensor(np.array([1.0]), requires_grad=True)
    y = (x * x).sum()
    tg.grad(y, x, retain_graph=True)
    tg.grad(y, x)
    with pytest.raises(RuntimeError, match="second time"):
        tg.grad(y, x)


# ---------------------------------------------------------------- bad roots


def test_backward_on_a_non_scalar_without_grad_names_the_shape():
    y = Tensor(np.ones((2, 3)), requires_grad=True) * 2.0
    message = r"only for scalar outputs; got an output of shape \(2, 3\)"
    with pytest.raises(RuntimeError, match=message):
        y.backward()


def test_backward_with_a_gradient_of_the_wrong_shape_raises():
    y = Tensor(np.ones((2, 3)), requires_grad=True) * 2.0
    message = r"backward: gradient has shape \(3,\), expected .* \(2, 3\)"
    with pytest.raises(ValueError, match=message):
        y.backward(np.ones(3))


def test_backward_on_a_tensor_without_a_graph_says_why():
    with pytest.raises(RuntimeError, match=r"does not require grad.*no_grad"):
        (Tensor(np.ones(2)) * 2.0).sum().backward()


# ---------------------------------------------------------------- grad modes


def test_no_grad_records_nothing_and_enable_grad_turns_it_back_on():
    x = Tensor(np.ones(2), requires_grad=True)
    assert tg.is_grad_enabled()
    with tg.no_grad():
        assert not tg.is_grad_enabled()
        y = x * 2.0
        with tg.enable_grad():
            z = x * 2.0
    assert tg.is_grad_enabled()
    assert not y.requires_grad and y._ctx is None
    assert z.requires_grad and z._ctx.fn.name == "mul"


def test_grad_mode_is_restored_after_an_exception():
    with pytest.raises(ZeroDivisionError):
        with tg.no_grad():
            raise ZeroDivisionError
    assert tg.is_grad_enabled()


def test_ops_on_tensors_without_requires_grad_record_no_graph():
    y = Tensor(np.ones(2)) * Tensor(np.ones(2))
    assert y._ctx is None and not y.requires_grad


# ---------------------------------------------------------------- non-finite values


def test_non_finite_values_propagate_without_clipping():
    x = Tensor(np.array([0.0, 1.0, np.nan]), requires_grad=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = x.log()
        y.sum().backward()
    assert y.data[0] == -np.inf and np.isnan(y.data[2])
    assert x.grad.data[0] == np.inf and np.isnan(x.grad.data[2])
    r = Tensor(np.array([np.nan, np.inf, -np.inf])).relu()
    assert np.isnan(r.data[0]) and r.data[1] == np.inf and r.data[2] == 0.0


def test_detect_anomaly_raises_at_the_forward_op_naming_it_and_the_user_line():
    x = Tensor(np.array([-1.0, 1.0]), requires_grad=True)
    with tg.detect_anomaly(), np.errstate(invalid="ignore"):
        doubled = x * 2.0
        with pytest.raises(AnomalyError, match=r"^log: forward produced a non-finite value") as err:
            doubled.log()
    message = str(err.value)
    assert THIS_FILE in message and "doubled.log()" in message


def test_detect_anomaly_raises_at_the_first_backward_op_with_a_non_finite_gradient():
    x = Tensor(np.array([0.0, 4.0]), requires_grad=True)
    with tg.detect_anomaly():
        inner = x.sqrt()
        outer = inner.sqrt()  # sqrt(0) = 0 is finite, but d sqrt / dx at 0 is inf
        loss = (outer * 3.0).sum()
        message = r"^sqrt: backward produced a non-finite gradient"
        with pytest.raises(AnomalyError, match=message) as err:
            with np.errstate(divide="ignore", invalid="ignore"):
                loss.backward()
    message = str(err.value)
    # The walk reaches `outer` first, so that is the op (and the line) reported.
    assert THIS_FILE in message and "outer = inner.sqrt()" in message


def test_anomaly_mode_is_off_outside_the_context():
    x = Tensor(np.array([0.0]), requires_grad=True)
    with tg.detect_anomaly():
        pass
    with np.errstate(divide="ignore"):
        assert x.log().item() == -np.inf
    assert issubclass(AnomalyError, FloatingPointError)


# ---------------------------------------------------------------- custom Functions


class Cube(Function):
    """x**3 with a backward written in Tensor ops, so it is twice differentiable."""

    name = "cube"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.data**3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3.0 * x * x


class ScaledExp(Function):
    """exp(x) * scale; uses ctx.output in backward and a keyword argument in forward."""

    name = "scaled_exp"

    @staticmethod
    def forward(ctx, x, scale):
        return np.exp(x.data) * scale

    @staticmethod
    def backward(ctx, g):
        return g * ctx.output  # d(s e^x)/dx = s e^x, the output itself


def test_custom_function_gradient_and_double_backward():
    x = Tensor(np.array([0.5, -1.0]), requires_grad=True)
    y = Cube.apply(x)
    assert y._ctx.fn is Cube and y._ctx.needs_input_grad == (True,)
    gradgradcheck(lambda t: Cube.apply(t), [x])
    z = ScaledExp.apply(x, scale=2.0)
    z.sum().backward()
    np.testing.assert_allclose(x.grad.data, 2.0 * np.exp(x.data))


def test_needs_input_grad_lists_which_inputs_want_a_gradient():
    seen = {}

    class Probe(Function):
        name = "probe"

        @staticmethod
        def forward(ctx, a, b):
            return a.data * b.data

        @staticmethod
        def backward(ctx, g):
            seen["needs"] = ctx.needs_input_grad
            return (g * 1.0 if ctx.needs_input_grad[0] else None), None

    Probe.apply(Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(2))).sum().backward()
    assert seen["needs"] == (True, False)


def test_custom_backward_returning_the_wrong_number_of_gradients_names_the_op():
    class TwoInOneOut(Function):
        name = "two_in"

        @staticmethod
        def forward(ctx, a, b):
            return a.data + b.data

        @staticmethod
        def backward(ctx, g):
            return g

    a, b = Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"two_in.backward returned 1 gradients, expected 2"):
        TwoInOneOut.apply(a, b).sum().backward()


def test_custom_backward_returning_the_wrong_shape_names_the_op_and_shapes():
    class BadShape(Function):
        name = "bad_shape"

        @staticmethod
        def forward(ctx, a):
            return a.data.copy()

        @staticmethod
        def backward(ctx, g):
            return np.ones(5)

    message = (r"bad_shape.backward returned a gradient of shape \(5,\) for input 0, "
               r"expected the input's shape \(2,\)")
    with pytest.raises(RuntimeError, match=message):
        BadShape.apply(Tensor(np.ones(2), requires_grad=True)).sum().backward()


# ---------------------------------------------------------------- docs/autograd.md

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.parametrize("page", ["autograd.md", "index.md"])
def test_docs_examples_print_what_they_say(page):
    result = doctest.testfile(str(DOCS / page), module_relative=False,
                              optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 5
    assert result.failed == 0


def test_autograd_docs_list_exactly_the_registered_primitives():
    text = (DOCS / "autograd.md").read_text()
    table = text.split("| primitive |", 1)[1].split("\n\n", 1)[0]
    listed = re.findall(r"^\| `(\w+)` \|", table, flags=re.M)
    assert sorted(listed) == sorted(tg.PRIMITIVES)


# ---------------------------------------------------------------- per-thread grad mode


def _train_pair(seed: int, steps: int) -> list[np.ndarray]:
    """A small model trained with plain SGD; its parameters after `steps` steps."""
    rng = np.random.default_rng(seed)
    model = nn.Sequential(nn.Linear(6, 8, rng=seed), nn.Tanh(), nn.Linear(8, 3, rng=seed + 1))
    x = rng.standard_normal((16, 6)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    for _ in range(steps):
        loss = functional.cross_entropy(model(Tensor(x)), y)
        model.zero_grad()
        loss.backward()
        with tg.no_grad():  # an update under no_grad, as every training loop does
            for p in model.parameters():
                p.data = p.data - 0.1 * p.grad.data
    return [p.data.copy() for p in model.parameters()]


def test_two_threads_training_at_once_get_the_parameters_of_training_one_after_the_other():
    import threading

    steps = 200
    alone = [_train_pair(seed, steps) for seed in (0, 1)]
    together: dict[int, list[np.ndarray]] = {}
    errors: list[BaseException] = []

    def run(seed: int) -> None:
        try:
            together[seed] = _train_pair(seed, steps)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(seed,)) for seed in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for seed in (0, 1):
        for a, b in zip(alone[seed], together[seed], strict=True):
            np.testing.assert_array_equal(a, b)


def test_no_grad_in_one_thread_leaves_recording_on_in_another():
    import threading

    inside, release = threading.Event(), threading.Event()

    def hold_no_grad() -> None:
        with tg.no_grad():
            inside.set()
            release.wait(5)

    worker = threading.Thread(target=hold_no_grad)
    worker.start()
    inside.wait(5)
    try:
        assert tg.is_grad_enabled()
        y = Tensor(np.ones(2), requires_grad=True) * 2.0
        assert y.requires_grad and y.grad_fn is not None
    finally:
        release.set()
        worker.join()
    assert tg.is_grad_enabled()


# ---------------------------------------------------------------- in-place changes


def test_assigning_data_of_a_saved_tensor_makes_backward_refuse_naming_op_and_tensor():
    x = Tensor(np.array([1.0, 2.0]), name="x")
    w = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    y = (x * w).sum()
    x.data = np.full(2, 100.0)  # the example, through the Tensor API
    with pytest.raises(RuntimeError, match=r"mul: saved tensor 'x' was modified in place after the op ran"):
        y.backward()


def test_an_in_place_op_on_a_saved_tensor_makes_backward_refuse():
    x = Tensor(np.array([1.0, 2.0]))
    w = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    y = (x * w).sum()
    x.add_(1.0)
    with pytest.raises(RuntimeError, match=r"mul: saved tensor 0 \(shape \(2,\), dtype float64\) was mod"):
        y.backward()


def test_a_numpy_write_to_a_saved_array_is_caught_under_detect_anomaly():
    x = Tensor(np.array([1.0, 2.0]))
    w = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    with tg.detect_anomaly():
        y = (x * w).sum()
        x.data[...] = 100.0  # bypasses the Tensor API: only the anomaly checksums see it
        with pytest.raises(RuntimeError, match=r"mul: saved tensor 0 .* modified in place .*numpy"):
            y.backward()


def test_writes_that_touch_nothing_saved_do_not_disturb_backward():
    x = Tensor(np.array([1.0, 2.0]))
    w = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    other = Tensor(np.zeros(2))
    y = (x * w).sum()
    other.add_(5.0)  # a write elsewhere: the version check looks, finds nothing of ours
    y.backward()
    np.testing.assert_array_equal(w.grad.data, [1.0, 2.0])


def test_in_place_on_a_leaf_that_requires_grad_is_refused_outside_no_grad():
    p = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Tensor that requires grad is being used in an in-place"):
        p.mul_(2.0)
    with tg.no_grad():
        p.mul_(2.0)  # a parameter update
    np.testing.assert_array_equal(p.data, [2.0, 2.0, 2.0])


def test_in_place_on_an_op_output_is_rebased_and_keeps_earlier_saved_values_valid():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = x.exp()  # exp's backward uses its output
    h.mul_(3.0)  # rebased: h is now 3 exp(x), and exp's node still has the old values
    h.sum().backward()
    np.testing.assert_allclose(x.grad.data, 3.0 * np.exp([1.0, 2.0]))


def test_assigning_data_of_another_shape_or_dtype_to_a_tensor_that_requires_grad_is_refused():
    p = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match=r"Tensor.data: cannot assign an array of shape \(4,\) and dtype"):
        p.data = np.ones(4)
    with pytest.raises(ValueError, match="dtype float32"):
        p.data = np.ones(3, np.float32)
    plain = Tensor(np.ones(3))
    plain.data = np.ones(5, np.float32)  # plain data may change shape, as in PyTorch
    assert plain.shape == (5,)


# ---------------------------------------------------------------- Function contracts


def test_a_forward_returning_a_tensor_says_so_at_apply():
    class Square(Function):
        @staticmethod
        def forward(ctx, x):
            return x * x

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(TypeError, match="forward of Square must return an ndarray, got Tensor; use x.data"):
        Square.apply(Tensor(np.ones(2), requires_grad=True))


@pytest.mark.parametrize("result, message", [
    ([1.0, 2.0], "forward of Bad must return an ndarray, got list"),
    (np.array(["a"], dtype=object), "forward of Bad must return a numeric ndarray, got dtype object"),
])
def test_a_forward_returning_a_list_or_an_object_array_says_so_at_apply(result, message):
    class Bad(Function):
        @staticmethod
        def forward(ctx, x):
            return result

    with pytest.raises(TypeError, match=message):
        Bad.apply(Tensor(np.ones(2)))


@pytest.mark.parametrize("returned, error, message", [
    (lambda g: (g, g), RuntimeError, r"Twice.backward returned 2 gradients, expected 1 \(one per input\)"),
    (lambda g: g.reshape(1, 2), RuntimeError,
     r"Twice.backward returned a gradient of shape \(1, 2\) for input 0, expected the input's shape \(2,\)"),
    (lambda g: Tensor(np.ones(2, dtype=np.int64)), TypeError,
     r"Twice.backward returned a gradient of dtype int64 for input 0, expected a float gradient"),
    (lambda g: "oops", TypeError, "Twice.backward returned a str for input 0"),
])
def test_a_backward_breaking_the_contract_names_the_function_and_the_input(returned, error, message):
    class Twice(Function):
        @staticmethod
        def forward(ctx, x):
            return x.data * 2

        @staticmethod
        def backward(ctx, g):
            return returned(g)

    y = Twice.apply(Tensor(np.ones(2), requires_grad=True))
    with pytest.raises(error, match=message):
        y.sum().backward()


def test_a_non_tensor_positional_input_to_apply_is_named():
    class Scale(Function):
        @staticmethod
        def forward(ctx, x, k):
            return x.data * 2

    with pytest.raises(TypeError, match="Scale.apply: input 1 is a float, not a Tensor; pass non-tensor"):
        Scale.apply(Tensor(np.ones(2), requires_grad=True), 3.0)


def test_grad_with_inputs_that_are_not_tensors_says_what_it_expected():
    loss = (Tensor(np.ones(2), requires_grad=True) * 2.0).sum()
    with pytest.raises(TypeError, match="grad: inputs must be a Tensor or a sequence of Tensors, got int"):
        tg.grad(loss, 5)


def test_ops_recorded_before_an_in_place_op_keep_their_edge_to_the_old_value():
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    y = x * 1.0
    z = y + 3.0  # recorded before the in-place op: dz/dx = 1
    y.mul_(2.0)  # y is rebased onto a new node: dy/dx = 2 from now on
    (z.sum() + y.sum()).backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 3.0, 3.0])


def test_setitem_reading_the_tensor_itself_differentiates_through_both_values():
    x = Tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    y = x * 1.0
    y[:, 1] = y[:, 1] * 5.0
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[1.0, 5.0]] * 3)
