"""tinygrad_bn.compat.cs231n: the assignment's flows, checked against plain-numpy references.

The references below are written here from the course's formulas (forward
passes, and for the softmax/affine/relu net a hand-derived backward), so the
compat API, whose gradients come from autograd, is compared with an
independent implementation on seeded inputs.
"""

import doctest
import importlib.util
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_bn.autograd import Context
from tinygrad_bn.compat.cs231n import (
    FullyConnectedNet,
    Solver,
    adam,
    affine_backward,
    affine_forward,
    affine_relu_backward,
    affine_relu_forward,
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    dropout_backward,
    dropout_forward,
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    get_CIFAR10_data,
    get_mnist5k_data,
    layernorm_backward,
    layernorm_forward,
    rel_error,
    relu_backward,
    relu_forward,
    rmsprop,
    sgd,
    sgd_momentum,
    softmax_loss,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    svm_loss,
)
from tinygrad_bn.data import DataNotFoundError
from tinygrad_bn.ops import PRIMITIVES
from tinygrad_bn.testing import strategies as tst

# Agreement of two float64 computations of the same formula in a different order
# of operations: a few ulps of the values involved.
SAME_FORMULA = 1e-12
# The notebook's own bars for numerical vs analytic gradients (h = 1e-5, float64).
NUMERIC_GRAD = 1e-7


# ---------------------------------------------------------------- plain-numpy references


def ref_batchnorm(x, gamma, beta, eps=1e-5):
    mu, var = x.mean(axis=0), x.var(axis=0)
    return gamma * (x - mu) / np.sqrt(var + eps) + beta, mu, var


def ref_layernorm(x, gamma, beta, eps=1e-5):
    mu, var = x.mean(axis=1, keepdims=True), x.var(axis=1, keepdims=True)
    return gamma * (x - mu) / np.sqrt(var + eps) + beta


def ref_softmax_loss(s, y):
    n = len(y)
    shifted = s - s.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    ds = np.exp(logp)
    ds[np.arange(n), y] -= 1
    return -logp[np.arange(n), y].sum() / n, ds / n


def ref_svm_loss(s, y):
    n = len(y)
    margins = np.maximum(0, s - s[np.arange(n), y][:, None] + 1.0)
    margins[np.arange(n), y] = 0
    ds = (margins > 0).astype(float)
    ds[np.arange(n), y] = -ds.sum(axis=1)
    return margins.sum() / n, ds / n


def ref_init(dims, weight_scale, normalization=None):
    """The course's initialisation, drawn in its order."""
    params = {}
    for i in range(1, len(dims)):
        params[f"W{i}"] = weight_scale * np.random.randn(dims[i - 1], dims[i])
        params[f"b{i}"] = np.zeros(dims[i])
        if normalization and i < len(dims) - 1:
            params[f"gamma{i}"], params[f"beta{i}"] = np.ones(dims[i]), np.zeros(dims[i])
    return params


def ref_scores(params, X, n_layers, normalization=None, keep=None, seed=None):
    """Train-mode forward of the FullyConnectedNet architecture."""
    h = X.reshape(len(X), -1)
    for i in range(1, n_layers):
        h = h @ params[f"W{i}"] + params[f"b{i}"]
        if normalization == "batchnorm":
            h = ref_batchnorm(h, params[f"gamma{i}"], params[f"beta{i}"])[0]
        elif normalization == "layernorm":
            h = ref_layernorm(h, params[f"gamma{i}"], params[f"beta{i}"])
        h = np.maximum(0, h)
        if keep is not None:
            if seed is not None:
                np.random.seed(seed)
            h = h * ((np.random.rand(*h.shape) < keep) / keep)
    return h @ params[f"W{n_layers}"] + params[f"b{n_layers}"]


def ref_loss_and_grads(params, X, y, n_layers, reg):
    """affine-relu-...-affine-softmax loss with a hand-derived backward."""
    h, cache = X.reshape(len(X), -1), []
    for i in range(1, n_layers + 1):
        cache.append(h)
        h = h @ params[f"W{i}"] + params[f"b{i}"]
        if i < n_layers:
            h = np.maximum(0, h)
    loss, dh = ref_softmax_loss(h, y)
    grads = {}
    for i in range(n_layers, 0, -1):
        W, h_in = params[f"W{i}"], cache[i - 1]
        loss += 0.5 * reg * np.sum(W * W)
        grads[f"W{i}"], grads[f"b{i}"] = h_in.T @ dh + reg * W, dh.sum(axis=0)
        dh = (dh @ W.T) * (h_in > 0)
    return loss, grads


# ---------------------------------------------------------------- affine, relu, sandwich


def test_affine_forward_matches_numpy_and_backward_matches_numerical():
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(3, 2, 4)), rng.normal(size=(8, 5)), rng.normal(size=5)
    dout = rng.normal(size=(3, 5))
    out, cache = affine_forward(x, w, b)
    assert rel_error(out, x.reshape(3, 8) @ w + b) < SAME_FORMULA
    dx, dw, db = affine_backward(dout, cache)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == b.shape
    for got, f, arg in ((dx, lambda v: affine_forward(v, w, b)[0], x),
                        (dw, lambda v: affine_forward(x, v, b)[0], w),
                        (db, lambda v: affine_forward(x, w, v)[0], b)):
        assert rel_error(got, eval_numerical_gradient_array(f, arg, dout)) < NUMERIC_GRAD


def test_relu_backward_passes_gradient_only_where_input_is_positive():
    x = np.array([[-1.0, 0.0, 2.0], [3.0, -0.5, 0.25]])
    out, cache = relu_forward(x)
    np.testing.assert_array_equal(out, np.maximum(0, x))
    dout = np.arange(6.0).reshape(2, 3) + 1
    np.testing.assert_array_equal(relu_backward(dout, cache), dout * (x > 0))


def test_affine_relu_sandwich_equals_its_two_layers():
    rng = np.random.default_rng(1)
    x, w, b = rng.normal(size=(4, 3)), rng.normal(size=(3, 5)), rng.normal(size=5)
    dout = rng.normal(size=(4, 5))
    out, cache = affine_relu_forward(x, w, b)
    np.testing.assert_allclose(out, np.maximum(0, x @ w + b), rtol=SAME_FORMULA)
    dx, dw, db = affine_relu_backward(dout, cache)
    num = eval_numerical_gradient_array(lambda v: affine_relu_forward(v, w, b)[0], x, dout)
    assert rel_error(dx, num) < NUMERIC_GRAD


def test_backward_returns_fresh_writable_arrays():
    x = np.ones((2, 3))
    _, cache = affine_forward(x, np.ones((3, 2)), np.zeros(2))
    for g in affine_backward(np.ones((2, 2)), cache):
        g += 1  # would raise on a read-only broadcast view


# ---------------------------------------------------------------- batch normalisation


def notebook_activations(n=200):
    """The notebook's test input: a two-layer relu net's activations, seeded with 231."""
    np.random.seed(231)
    X, W1, W2 = np.random.randn(n, 50), np.random.randn(50, 60), np.random.randn(60, 3)
    return np.maximum(0, X.dot(W1)).dot(W2), (W1, W2)


def test_batchnorm_train_mode_output_matches_numpy_reference():
    a, _ = notebook_activations()
    gamma, beta = np.array([1.0, 2.0, 3.0]), np.array([11.0, 12.0, 13.0])
    out, _ = batchnorm_forward(a, gamma, beta, {"mode": "train"})
    assert rel_error(out, ref_batchnorm(a, gamma, beta)[0]) < SAME_FORMULA
    np.testing.assert_allclose(out.mean(axis=0), beta, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=0), gamma, rtol=1e-7)


def test_batchnorm_running_stats_keep_momentum_fraction_with_biased_variance():
    rng = np.random.default_rng(2)
    x = rng.normal(3.0, 2.0, size=(6, 4)).astype(np.float32)
    bn_param = {"mode": "train", "momentum": 0.8}
    batchnorm_forward(x, np.ones(4, np.float32), np.zeros(4, np.float32), bn_param)
    mean, var = bn_param["running_mean"], bn_param["running_var"]
    assert mean.dtype == var.dtype == np.float32  # zeros of x's dtype on first use
    np.testing.assert_array_equal(mean, 0.8 * np.zeros(4, np.float32) + (1 - 0.8) * x.mean(axis=0))
    np.testing.assert_array_equal(var, 0.8 * np.zeros(4, np.float32) + (1 - 0.8) * x.var(axis=0))
    batchnorm_forward(x, np.ones(4, np.float32), np.zeros(4, np.float32), bn_param)
    assert bn_param["running_mean"] is mean  # updated in place
    np.testing.assert_allclose(mean, (1 - 0.8**2) * x.mean(axis=0), rtol=1e-6)


def test_batchnorm_test_mode_after_warm_up_normalises_with_running_stats():
    _, (W1, W2) = notebook_activations()
    gamma, beta = np.ones(3), np.zeros(3)
    bn_param, running_mean, running_var = {"mode": "train"}, np.zeros(3), np.zeros(3)
    for _ in range(50):
        a = np.maximum(0, np.random.randn(200, 50).dot(W1)).dot(W2)
        batchnorm_forward(a, gamma, beta, bn_param)
        running_mean = 0.9 * running_mean + (1 - 0.9) * a.mean(axis=0)
        running_var = 0.9 * running_var + (1 - 0.9) * a.var(axis=0)
    # The course's update, bit for bit.
    np.testing.assert_array_equal(bn_param["running_mean"], running_mean)
    np.testing.assert_array_equal(bn_param["running_var"], running_var)
    bn_param["mode"] = "test"
    a = np.maximum(0, np.random.randn(200, 50).dot(W1)).dot(W2)
    out, _ = batchnorm_forward(a, gamma, beta, bn_param)
    assert rel_error(out, (a - running_mean) / np.sqrt(running_var + 1e-5)) < SAME_FORMULA
    # The notebook's sanity check: means near 0, stds near 1 (not exactly).
    assert np.all(np.abs(out.mean(axis=0)) < 0.2) and np.all(np.abs(out.std(axis=0) - 1) < 0.2)
    np.testing.assert_array_equal(bn_param["running_mean"], running_mean)  # test mode: no update


def notebook_gradient_check_inputs(n=4, d=5):
    np.random.seed(231)
    x = 5 * np.random.randn(n, d) + 12
    return x, np.random.randn(d), np.random.randn(d), np.random.randn(n, d)


@pytest.mark.parametrize("backward", [batchnorm_backward, batchnorm_backward_alt])
def test_batchnorm_backward_matches_numerical_gradients(backward):
    x, gamma, beta, dout = notebook_gradient_check_inputs()
    bn_param = {"mode": "train"}
    dx_num = eval_numerical_gradient_array(
        lambda v: batchnorm_forward(v, gamma, beta, bn_param)[0], x, dout)
    dg_num = eval_numerical_gradient_array(
        lambda v: batchnorm_forward(x, v, beta, bn_param)[0], gamma.copy(), dout)
    db_num = eval_numerical_gradient_array(
        lambda v: batchnorm_forward(x, gamma, v, bn_param)[0], beta.copy(), dout)
    _, cache = batchnorm_forward(x, gamma, beta, bn_param)
    dx, dgamma, dbeta = backward(dout, cache)
    # dx is the difference of nearly equal terms (x has mean 12, std 5): the
    # notebook expects ~1e-9 for it, ~1e-12 for gamma and beta.
    assert rel_error(dx_num, dx) < 1e-7
    assert rel_error(dg_num, dgamma) < 1e-10
    assert rel_error(db_num, dbeta) < 1e-10


@given(
    shape=st.tuples(st.integers(2, 12), st.integers(1, 6)),
    data=st.data(),
)
def test_batchnorm_backward_alt_equals_backward(shape, data):
    n, d = shape
    x = data.draw(tst.arrays((n, d), min_value=-50, max_value=50))
    gamma = data.draw(tst.arrays((d,)))
    beta = data.draw(tst.arrays((d,)))
    dout = data.draw(tst.arrays((n, d)))
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    for a, b in zip(batchnorm_backward(dout, cache), batchnorm_backward_alt(dout, cache), strict=True):
        # Two float64 evaluations of the same gradient in a different order: the
        # error scales with the largest entry (1/sqrt(eps) ~ 316 for a constant column).
        assert np.max(np.abs(a - b)) <= 1e-9 * max(1.0, np.max(np.abs(a)))


def test_batchnorm_cache_backpropagates_twice_with_the_same_result():
    x, gamma, beta, dout = notebook_gradient_check_inputs()
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    first = batchnorm_backward(dout, cache)
    batchnorm_backward_alt(dout, cache)
    for a, b in zip(first, batchnorm_backward(dout, cache), strict=True):
        np.testing.assert_array_equal(a, b)


def _graph_ops(root):
    ops, stack, seen = [], [root._ctx], set()
    while stack:
        ctx = stack.pop()
        if ctx is None or id(ctx) in seen:
            continue
        seen.add(id(ctx))
        ops.append(ctx.fn)
        stack.extend(p._ctx for p in ctx.parents)
    return ops


def test_batchnorm_backward_walks_primitives_and_alt_one_fused_node():
    x, gamma, beta, _ = notebook_gradient_check_inputs()
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    composed = _graph_ops(cache.outputs["composed"])
    assert len(composed) > 5 and all(PRIMITIVES.get(fn.name) is fn for fn in composed)
    fused = _graph_ops(cache.outputs["fused"])
    assert [fn.name for fn in fused] == ["batch_norm_fused"] and fused[0].fused
    assert isinstance(cache.outputs["fused"]._ctx, Context)


def test_batchnorm_mixed_float32_input_and_float64_gamma_computes_in_float64():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(5, 3)).astype(np.float32)
    gamma, beta = rng.normal(size=3), rng.normal(size=3)
    out, _ = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    assert out.dtype == np.float64
    assert rel_error(out, ref_batchnorm(x.astype(np.float64), gamma, beta)[0]) < SAME_FORMULA


def test_spatial_batchnorm_normalises_per_channel_over_n_h_w():
    rng = np.random.default_rng(4)
    x = rng.normal(5.0, 3.0, size=(2, 3, 4, 5))
    gamma, beta, dout = rng.normal(size=3), rng.normal(size=3), rng.normal(size=x.shape)
    bn_param = {"mode": "train"}
    out, cache = spatial_batchnorm_forward(x, gamma, beta, bn_param)
    flat = x.transpose(0, 2, 3, 1).reshape(-1, 3)
    expected, mu, var = ref_batchnorm(flat, gamma, beta)
    assert rel_error(out, expected.reshape(2, 4, 5, 3).transpose(0, 3, 1, 2)) < SAME_FORMULA
    np.testing.assert_allclose(bn_param["running_mean"], 0.1 * mu, rtol=1e-12)
    np.testing.assert_allclose(bn_param["running_var"], 0.1 * var, rtol=1e-12)
    dx, dgamma, dbeta = spatial_batchnorm_backward(dout, cache)
    check = {"mode": "train"}
    dx_num = eval_numerical_gradient_array(
        lambda v: spatial_batchnorm_forward(v, gamma, beta, check)[0], x, dout)
    assert rel_error(dx, dx_num) < NUMERIC_GRAD
    dg_num = eval_numerical_gradient_array(
        lambda v: spatial_batchnorm_forward(x, v, beta, check)[0], gamma.copy(), dout)
    assert rel_error(dgamma, dg_num) < NUMERIC_GRAD
    np.testing.assert_allclose(dbeta, dout.sum(axis=(0, 2, 3)), rtol=1e-12)


def test_layernorm_forward_and_backward_match_reference_and_numerical():
    np.random.seed(231)
    x = 5 * np.random.randn(4, 5) + 12
    gamma, beta, dout = np.random.randn(5), np.random.randn(5), np.random.randn(4, 5)
    ln_param = {}
    out, cache = layernorm_forward(x, gamma, beta, ln_param)
    assert rel_error(out, ref_layernorm(x, gamma, beta)) < SAME_FORMULA
    dx, dgamma, dbeta = layernorm_backward(dout, cache)
    for got, f, arg in ((dx, lambda v: layernorm_forward(v, gamma, beta, ln_param)[0], x),
                        (dgamma, lambda v: layernorm_forward(x, v, beta, ln_param)[0], gamma.copy()),
                        (dbeta, lambda v: layernorm_forward(x, gamma, v, ln_param)[0], beta.copy())):
        assert rel_error(got, eval_numerical_gradient_array(f, arg, dout)) < NUMERIC_GRAD


# ---------------------------------------------------------------- dropout


def test_dropout_train_mode_keeps_fraction_p_with_the_courses_mask():
    x = np.random.default_rng(5).normal(10, 1, size=(500, 50))
    for p in (0.25, 0.4, 0.7):
        np.random.seed(7)
        out, _ = dropout_forward(x, {"mode": "train", "p": p})
        np.random.seed(7)
        np.testing.assert_allclose(out, x * ((np.random.rand(*x.shape) < p) / p), rtol=1e-15)
        assert abs((out == 0).mean() - (1 - p)) < 0.01
        assert abs(out.mean() - x.mean()) < 0.2  # inverted dropout keeps the expectation


def test_dropout_test_mode_is_identity_and_backward_reuses_the_mask():
    x = np.random.default_rng(6).normal(size=(10, 10))
    out, cache = dropout_forward(x, {"mode": "test", "p": 0.3})
    np.testing.assert_array_equal(out, x)
    np.testing.assert_array_equal(dropout_backward(np.ones_like(x), cache), np.ones_like(x))
    param = {"mode": "train", "p": 0.6, "seed": 123}
    dout = np.random.default_rng(7).normal(size=x.shape)
    _, cache = dropout_forward(x, param)
    dx_num = eval_numerical_gradient_array(lambda v: dropout_forward(v, param)[0], x, dout)
    assert rel_error(dropout_backward(dout, cache), dx_num) < NUMERIC_GRAD


# ---------------------------------------------------------------- losses


@pytest.mark.parametrize("loss_fn, reference",
                         [(softmax_loss, ref_softmax_loss), (svm_loss, ref_svm_loss)])
def test_losses_and_gradients_match_reference_and_numerical(loss_fn, reference):
    np.random.seed(231)
    x, y = 0.001 * np.random.randn(50, 10), np.random.randint(10, size=50)
    loss, dx = loss_fn(x, y)
    ref_loss, ref_dx = reference(x, y)
    assert abs(loss - ref_loss) <= SAME_FORMULA * abs(ref_loss)
    assert np.max(np.abs(dx - ref_dx)) <= SAME_FORMULA
    dx_num = eval_numerical_gradient(lambda v: loss_fn(v, y)[0], x, verbose=False)
    assert rel_error(dx, dx_num) < 1e-7
    if loss_fn is softmax_loss:
        assert abs(loss - np.log(10)) < 0.01  # small random scores: loss ~ log(C)
    else:
        assert abs(loss - 9.0) < 0.01  # small random scores: every margin ~ 1


# ---------------------------------------------------------------- FullyConnectedNet


def test_fully_connected_net_draws_its_weights_in_the_courses_order():
    np.random.seed(0)
    model = FullyConnectedNet([3, 4], input_dim=5, num_classes=2, weight_scale=0.1, dropout=0.5,
                              normalization="batchnorm", dtype=np.float64, seed=1)
    after = np.random.rand()
    np.random.seed(0)
    expected = ref_init([5, 3, 4, 2], 0.1, "batchnorm")
    assert after == np.random.rand()  # nothing else drew from the RNG
    assert list(model.params) == list(expected)
    for k, v in expected.items():
        np.testing.assert_array_equal(model.params[k], v)


def test_fully_connected_net_casts_params_to_dtype():
    model = FullyConnectedNet([4], input_dim=3, num_classes=2)
    assert all(v.dtype == np.float32 for v in model.params.values())
    scores = model.loss(np.ones((2, 3)))
    assert scores.shape == (2, 2) and scores.dtype == np.float32


@pytest.mark.parametrize("normalization", [None, "batchnorm", "layernorm"])
@pytest.mark.parametrize("reg", [0.0, 3.14])
def test_fully_connected_net_loss_matches_numpy_reference_seeded(normalization, reg):
    np.random.seed(231)
    N, D, H1, H2, C = 2, 15, 20, 30, 10
    X, y = np.random.randn(N, D), np.random.randint(C, size=(N,))
    model = FullyConnectedNet([H1, H2], input_dim=D, num_classes=C, reg=reg, weight_scale=5e-2,
                              dtype=np.float64, normalization=normalization)
    loss, grads = model.loss(X, y)
    assert isinstance(loss, float) and set(grads) == set(model.params)
    expected, _ = ref_softmax_loss(ref_scores(model.params, X, 3, normalization), y)
    expected += sum(0.5 * reg * np.sum(model.params[f"W{i}"] ** 2) for i in (1, 2, 3))
    assert abs(loss - expected) <= SAME_FORMULA * expected


def test_fully_connected_net_prints_the_notebooks_initial_losses():
    # BatchNormalization.ipynb's check; the course's reference prints these values.
    np.random.seed(231)
    X, y = np.random.randn(2, 15), np.random.randint(10, size=(2,))
    losses = [FullyConnectedNet([20, 30], input_dim=15, num_classes=10, reg=reg, weight_scale=5e-2,
                                dtype=np.float64, use_batchnorm=True).loss(X, y)[0]
              for reg in (0, 3.14)]
    np.testing.assert_allclose(losses, [2.2611955101340957, 6.996533220108303], rtol=1e-12)


def test_fully_connected_net_with_seeded_dropout_matches_reference():
    np.random.seed(3)
    X, y = np.random.randn(4, 6), np.random.randint(3, size=4)
    model = FullyConnectedNet([5, 5], input_dim=6, num_classes=3, dropout_keep_ratio=0.75, dtype=np.float64,
                              seed=9)
    loss, _ = model.loss(X, y)
    expected, _ = ref_softmax_loss(ref_scores(model.params, X, 3, keep=0.75, seed=9), y)
    assert abs(loss - expected) <= SAME_FORMULA * expected
    keep_model = FullyConnectedNet([5, 5], input_dim=6, num_classes=3, dropout_keep_ratio=0.75,
                                   dtype=np.float64, seed=9)
    keep_model.params = model.params
    assert keep_model.loss(X, y)[0] == loss


@pytest.mark.parametrize("kwargs", [
    dict(reg=0.0), dict(reg=3.14), dict(reg=0.7, use_batchnorm=True),
    dict(normalization="layernorm"), dict(dropout=0.5, seed=123, impl="composed"),
])
def test_fully_connected_net_gradients_match_numerical(kwargs):
    np.random.seed(231)
    X, y = np.random.randn(3, 4), np.random.randint(3, size=(3,))
    model = FullyConnectedNet([5, 6], input_dim=4, num_classes=3, weight_scale=5e-2,
                              dtype=np.float64, **kwargs)
    for name, value in model.params.items():
        if name.startswith("b"):
            # Zero biases put units whose inputs were all dropped exactly on relu's kink.
            value += 0.1 * np.random.randn(*value.shape)
    _, grads = model.loss(X, y)
    for name in sorted(grads):
        # The course's check: perturb model.params[name] in place, call loss again.
        grad_num = eval_numerical_gradient(lambda _: model.loss(X, y)[0], model.params[name],
                                           verbose=False, h=1e-5)
        # float64 with h=1e-5 through batchnorm: the notebook sees up to ~1e-4 on W1. A
        # bias feeding batchnorm has a zero gradient: compare it in absolute terms.
        abs_err = np.max(np.abs(grad_num - grads[name]))
        assert rel_error(grad_num, grads[name]) < 1e-4 or abs_err < 1e-9, name


def test_fully_connected_net_test_mode_uses_running_stats_and_draws_no_dropout():
    np.random.seed(0)
    model = FullyConnectedNet([4], input_dim=3, num_classes=2, dropout=0.5, use_batchnorm=True,
                              dtype=np.float64)
    X = np.random.randn(6, 3)
    model.loss(X, np.zeros(6, dtype=int))
    state = np.random.get_state()[1].copy()
    scores = model.loss(X)
    np.testing.assert_array_equal(np.random.get_state()[1], state)
    p, bn = model.params, model.bn_params[0]
    assert bn["mode"] == "test"
    h = (X @ p["W1"] + p["b1"] - bn["running_mean"]) / np.sqrt(bn["running_var"] + 1e-5)
    expected = np.maximum(0, h * p["gamma1"] + p["beta1"]) @ p["W2"] + p["b2"]
    assert rel_error(scores, expected) < SAME_FORMULA


# ---------------------------------------------------------------- Solver and update rules


def toy_data(n_train=50, n_val=20, d=6, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, size=(classes, d))
    def split(n):
        y = rng.integers(0, classes, size=n)
        return centres[y] + rng.normal(size=(n, d)), y
    (X_train, y_train), (X_val, y_val) = split(n_train), split(n_val)
    return {"X_train": X_train, "y_train": y_train, "X_val": X_val, "y_val": y_val}


def test_solver_overfits_fifty_examples():
    np.random.seed(231)
    data = toy_data(seed=1)
    model = FullyConnectedNet([40, 40], input_dim=6, num_classes=4, weight_scale=5e-2, use_batchnorm=True)
    solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": 1e-2},
                    num_epochs=15, batch_size=25, verbose=False)
    solver.train()
    assert solver.train_acc_history[-1] == 1.0
    assert solver.loss_history[-1] < 0.2 * solver.loss_history[0]
    assert solver.best_val_acc == max(solver.val_acc_history)


def test_solver_prints_the_courses_progress_lines(capsys):
    np.random.seed(0)
    model = FullyConnectedNet([8], input_dim=6, num_classes=4)
    solver = Solver(model, toy_data(), num_epochs=2, batch_size=10, print_every=3)
    solver.train()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"(Iteration 1 / 10) loss: {solver.loss_history[0]:f}"
    assert lines[1] == (f"(Epoch 0 / 2) train acc: {solver.train_acc_history[0]:f}; "
                        f"val_acc: {solver.val_acc_history[0]:f}")
    assert re.fullmatch(r"\(Iteration 1 / 10\) loss: \d+\.\d{6}", lines[0])
    assert re.fullmatch(r"\(Epoch 0 / 2\) train acc: \d\.\d{6}; val_acc: \d\.\d{6}", lines[1])
    assert [ln.split(")")[0] for ln in lines] == [
        "(Iteration 1 / 10", "(Epoch 0 / 2", "(Iteration 4 / 10", "(Epoch 1 / 2",
        "(Iteration 7 / 10", "(Iteration 10 / 10", "(Epoch 2 / 2",
    ]


def test_solver_loss_history_equals_plain_numpy_training_with_the_same_seeds():
    data = toy_data(n_train=50, n_val=30)
    np.random.seed(11)
    model = FullyConnectedNet([7, 5], input_dim=6, num_classes=4, weight_scale=0.3, reg=0.01,
                              dtype=np.float64)
    solver = Solver(model, data, update_rule="sgd_momentum", optim_config={"learning_rate": 0.05},
                    lr_decay=0.5, num_epochs=3, batch_size=10, num_train_samples=20,
                    num_val_samples=None, verbose=False)
    solver.train()

    np.random.seed(11)
    params = ref_init([6, 7, 5, 4], 0.3)
    velocity = {k: np.zeros_like(v) for k, v in params.items()}
    lr, history = 0.05, []
    for t in range(15):
        mask = np.random.choice(50, 10)
        loss, grads = ref_loss_and_grads(params, data["X_train"][mask], data["y_train"][mask], 3, 0.01)
        history.append(loss)
        for k in params:
            velocity[k] = 0.9 * velocity[k] - lr * grads[k]
            params[k] = params[k] + velocity[k]
        epoch_end = (t + 1) % 5 == 0
        if epoch_end:
            lr *= 0.5
        if t == 0 or epoch_end:
            np.random.choice(50, 20)  # check_accuracy subsamples the training set
    np.testing.assert_allclose(solver.loss_history, history, rtol=1e-12)


def test_solver_checkpoints_are_npz_archives(tmp_path):
    np.random.seed(0)
    model = FullyConnectedNet([4], input_dim=6, num_classes=4)
    Solver(model, toy_data(), num_epochs=1, batch_size=25, verbose=False,
           checkpoint_name=str(tmp_path / "ck")).train()
    with np.load(tmp_path / "ck_epoch_1.npz", allow_pickle=False) as ck:
        assert ck["param_W1"].shape == (6, 4) and int(ck["epoch"]) == 1
        assert len(ck["loss_history"]) == 2


def test_sgd_updates_in_place_and_momentum_rmsprop_adam_follow_their_formulas():
    rng = np.random.default_rng(8)
    w0, dws = rng.normal(size=(4, 5)), [rng.normal(size=(4, 5)) for _ in range(3)]
    w = w0.copy()
    out, _ = sgd(w, dws[0], {"learning_rate": 0.1})
    assert out is w and np.allclose(w, w0 - 0.1 * dws[0])

    config, w = None, w0
    v = np.zeros_like(w0)
    expected = w0
    for dw in dws:
        w, config = sgd_momentum(w, dw, config)
        v = 0.9 * v - 1e-2 * dw
        expected = expected + v
    np.testing.assert_array_equal(w, expected)

    config, w, cache, expected = None, w0, np.zeros_like(w0), w0
    for dw in dws:
        w, config = rmsprop(w, dw, config)
        cache = 0.99 * cache + (1 - 0.99) * dw**2
        expected = expected - 1e-2 * dw / (np.sqrt(cache) + 1e-8)
    np.testing.assert_array_equal(w, expected)

    config, w, m, v2, expected = None, w0, np.zeros_like(w0), np.zeros_like(w0), w0
    for t, dw in enumerate(dws, start=1):
        w, config = adam(w, dw, config)
        m = 0.9 * m + (1 - 0.9) * dw
        v2 = 0.999 * v2 + (1 - 0.999) * dw**2
        expected = expected - 1e-3 * (m / (1 - 0.9**t)) / (np.sqrt(v2 / (1 - 0.999**t)) + 1e-8)
    assert config["t"] == 3
    np.testing.assert_array_equal(w, expected)


# ---------------------------------------------------------------- gradient check utilities


def test_eval_numerical_gradient_calls_f_in_the_courses_order_and_prints(capsys):
    calls = []
    def f(v):
        calls.append(v.copy())
        return float(np.sum(v**3))
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    g = eval_numerical_gradient(f, x, verbose=True)
    assert len(calls) == 1 + 2 * x.size and np.array_equal(calls[0], x)
    np.testing.assert_allclose(g, 3 * x**2, rtol=1e-8)
    assert capsys.readouterr().out.splitlines()[0].startswith("(0, 0) 3.0000")
    np.testing.assert_array_equal(x, [[1.0, 2.0], [3.0, 4.0]])  # restored


def test_eval_numerical_gradient_array_and_rel_error():
    x, df = np.array([1.0, -2.0, 0.5]), np.array([2.0, 1.0, -1.0])
    np.testing.assert_allclose(eval_numerical_gradient_array(lambda v: v**2, x, df), 2 * x * df, rtol=1e-8)
    assert rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.2])) == pytest.approx(0.2 / 4.2)


# ---------------------------------------------------------------- data


def write_fake_cifar(directory, n=6):
    directory.mkdir(parents=True)
    rng = np.random.default_rng(9)
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
                 "labels": rng.integers(0, 10, size=n).tolist()}
        (directory / name).write_bytes(pickle.dumps(batch, protocol=4))


def test_get_cifar10_data_splits_and_subtracts_the_training_mean(tmp_path):
    write_fake_cifar(tmp_path / "cifar-10-batches-py")
    data = get_CIFAR10_data(num_training=20, num_validation=5, num_test=4, data_dir=tmp_path)
    assert data["X_train"].shape == (20, 3, 32, 32) and data["X_train"].dtype == np.float64
    assert data["X_val"].shape == (5, 3, 32, 32) and data["X_test"].shape == (4, 3, 32, 32)
    np.testing.assert_allclose(data["X_train"].mean(axis=0), 0, atol=1e-10)
    raw = get_CIFAR10_data(num_training=20, num_validation=5, num_test=4, subtract_mean=False,
                           data_dir=tmp_path)
    assert raw["X_train"].max() <= 255 and raw["X_train"].min() >= 0
    np.testing.assert_allclose(raw["X_val"] - raw["X_train"].mean(axis=0), data["X_val"])


def test_get_cifar10_data_without_files_says_how_to_get_them(tmp_path):
    with pytest.raises(DataNotFoundError, match="get_CIFAR10_data: .*cifar-10-python.tar.gz"):
        get_CIFAR10_data(data_dir=tmp_path)


def test_get_mnist5k_data_has_the_cifar_layout():
    try:
        data = get_mnist5k_data(num_training=100, num_validation=50, num_test=20)
    except DataNotFoundError as err:
        pytest.skip(f"embedded MNIST subset unavailable: {err}")
    assert data["X_train"].shape == (100, 1, 28, 28) and data["y_val"].shape == (50,)
    assert data["X_test"].shape == (20, 1, 28, 28)


# ---------------------------------------------------------------- bad input


def test_bad_input_raises_clear_errors():
    x, g = np.ones((4, 3)), np.ones(3)
    with pytest.raises(ValueError, match="batchnorm_forward: invalid bn_param mode 'eval'"):
        batchnorm_forward(x, g, g, {"mode": "eval"})
    with pytest.raises(ValueError, match="batchnorm_forward: bn_param has no 'mode'"):
        batchnorm_forward(x, g, g, {})
    with pytest.raises(ValueError, match=r"batchnorm_forward: gamma has shape \(4,\), expected \(3,\)"):
        batchnorm_forward(x, np.ones(4), g, {"mode": "train"})
    with pytest.raises(ValueError, match=r"spatial_batchnorm_forward: x must have shape \(N, C, H, W\)"):
        spatial_batchnorm_forward(x, g, g, {"mode": "train"})
    with pytest.raises(ValueError, match=r"affine_forward: .*w must have shape \(3, M\)"):
        affine_forward(x, np.ones((4, 2)), np.ones(2))
    with pytest.raises(ValueError, match="softmax_loss: labels must lie in 0..2"):
        softmax_loss(x, np.array([0, 1, 3, 0]))
    with pytest.raises(ValueError, match="svm_loss: expected 4 labels"):
        svm_loss(x, np.array([0, 1]))
    with pytest.raises(ValueError, match="dropout_forward: dropout_param\\['p'\\] is the keep probability"):
        dropout_forward(x, {"mode": "train", "p": 0.0})
    with pytest.raises(ValueError, match="invalid dropout_param mode"):
        dropout_forward(x, {"mode": "predict", "p": 0.5})
    _, cache = relu_forward(x)
    with pytest.raises(ValueError, match="batchnorm_backward: got the cache of relu_forward"):
        batchnorm_backward(x, cache)
    with pytest.raises(ValueError, match=r"relu_backward: dout has shape \(2,\)"):
        relu_backward(np.ones(2), cache)
    with pytest.raises(ValueError, match="Solver: invalid update_rule 'sgdd'"):
        Solver(FullyConnectedNet([2], input_dim=6, num_classes=4), toy_data(), update_rule="sgdd")
    with pytest.raises(ValueError, match="Solver: data is missing \\['X_val', 'y_val'\\]"):
        Solver(FullyConnectedNet([2], input_dim=6, num_classes=4), {"X_train": x, "y_train": x[:, 0]})
    with pytest.raises(ValueError, match="normalization must be 'batchnorm', 'layernorm' or None"):
        FullyConnectedNet([2], normalization="groupnorm")
    model = FullyConnectedNet([2], input_dim=3, num_classes=2)
    with pytest.raises(ValueError, match="FullyConnectedNet.loss: labels must lie in 0..1"):
        model.loss(x, np.array([0, 1, 2, 0]))
    with pytest.raises(ValueError, match="does not have input_dim=3"):
        model.loss(np.ones((4, 5)), np.zeros(4, dtype=int))


# ---------------------------------------------------------------- the example script


def test_cs231n_example_runs_quick_and_writes_its_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = Path(__file__).resolve().parents[1] / "examples" / "cs231n_batchnorm.py"
    spec = importlib.util.spec_from_file_location("cs231n_batchnorm_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    try:
        assert example.main(["--quick", "--out", str(tmp_path)]) == 0
    except DataNotFoundError as err:
        pytest.skip(f"neither CIFAR-10 nor the embedded MNIST digits are available: {err}")
    assert (tmp_path / "cs231n_batchnorm.png").read_bytes().startswith(b"\x89PNG")
    out = capsys.readouterr().out
    assert re.search(r"dx error \d\.\d\de-(09|1\d)", out)  # the notebook expects ~1e-9
    assert re.search(r"\(\d+\.\dx faster\)", out) and "(Epoch 2 / 2) train acc:" in out
    assert re.search(r"^Data: (CIFAR-10|CIFAR-10 not found: the embedded MNIST digits)$", out, re.M)


def test_compat_docs_example_prints_what_it_says():
    result = doctest.testfile(str(Path(__file__).resolve().parents[1] / "docs" / "compat.md"),
                              module_relative=False, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted >= 10 and result.failed == 0
