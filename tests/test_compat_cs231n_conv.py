"""tinygrad_bn.compat.cs231n's convolution, pooling, group norm and ThreeLayerConvNet.

References are plain-numpy loops written here from the course's definitions
(cross-correlation with zero padding, max over windows); gradients are checked
against the course's central differences in float64.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_bn.compat.cs231n.classifiers.cnn import ThreeLayerConvNet
from tinygrad_bn.compat.cs231n.fast_layers import (
    col2im_indices,
    conv_backward_fast,
    conv_backward_im2col,
    conv_forward_fast,
    conv_forward_im2col,
    get_im2col_indices,
    im2col_indices,
    max_pool_backward_fast,
    max_pool_backward_reshape,
    max_pool_forward_fast,
    max_pool_forward_im2col,
    max_pool_forward_reshape,
)
from tinygrad_bn.compat.cs231n.gradient_check import (
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    rel_error,
)
from tinygrad_bn.compat.cs231n.layer_utils import (
    conv_bn_relu_backward,
    conv_bn_relu_forward,
    conv_relu_pool_backward,
    conv_relu_pool_forward,
)
from tinygrad_bn.compat.cs231n.layers import (
    conv_backward_naive,
    conv_forward_naive,
    max_pool_backward_naive,
    max_pool_forward_naive,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
)

# Two float64 evaluations of one formula in a different order of operations.
SAME_FORMULA = 1e-12
# Central differences (h = 1e-5) against exact float64 gradients of smooth functions.
NUMERIC_GRAD = 1e-7


def ref_conv(x, w, b, stride, pad):
    n, c, h, wd = x.shape
    f, _, hh, ww = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - hh) // stride + 1, (wd + 2 * pad - ww) // stride + 1
    out = np.zeros((n, f, oh, ow))
    for i in range(oh):
        for j in range(ow):
            window = xp[:, :, i * stride:i * stride + hh, j * stride:j * stride + ww]
            out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out


def ref_pool(x, ph, pw, stride):
    n, c, h, w = x.shape
    oh, ow = (h - ph) // stride + 1, (w - pw) // stride + 1
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = x[:, :, i * stride:i * stride + ph, j * stride:j * stride + pw].max(axis=(2, 3))
    return out


conv_cases = st.tuples(
    st.integers(1, 3), st.integers(1, 3), st.integers(4, 7), st.integers(4, 7),  # N, C, H, W
    st.integers(1, 3), st.integers(1, 3), st.integers(1, 3),  # F, HH, WW
    st.integers(1, 2), st.integers(0, 2), st.integers(0, 2**31 - 1),  # stride, pad, seed
)


@settings(max_examples=25, deadline=None)
@given(conv_cases)
def test_conv_forward_naive_matches_the_loop_definition(case):
    n, c, h, w, f, hh, ww, stride, pad, seed = case
    rng = np.random.default_rng(seed)
    x, wt, b = rng.normal(size=(n, c, h, w)), rng.normal(size=(f, c, hh, ww)), rng.normal(size=f)
    out, _ = conv_forward_naive(x, wt, b, {"stride": stride, "pad": pad})
    np.testing.assert_allclose(out, ref_conv(x, wt, b, stride, pad), rtol=SAME_FORMULA, atol=SAME_FORMULA)


def test_conv_backward_naive_matches_numerical_gradients():
    np.random.seed(231)
    x, w, b = np.random.randn(2, 3, 5, 5), np.random.randn(2, 3, 3, 3), np.random.randn(2)
    dout = np.random.randn(2, 2, 3, 3)
    conv_param = {"stride": 2, "pad": 1}
    _, cache = conv_forward_naive(x, w, b, conv_param)
    dx, dw, db = conv_backward_naive(dout, cache)
    assert rel_error(dx, eval_numerical_gradient_array(lambda v: conv_forward_naive(v, w, b, conv_param)[0],
                                                       x, dout)) < NUMERIC_GRAD
    assert rel_error(dw, eval_numerical_gradient_array(lambda v: conv_forward_naive(x, v, b, conv_param)[0],
                                                       w, dout)) < NUMERIC_GRAD
    assert rel_error(db, dout.sum(axis=(0, 2, 3))) < SAME_FORMULA


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 2), st.integers(1, 3), st.integers(2, 7), st.integers(2, 7), st.integers(1, 3),
       st.integers(1, 3), st.integers(1, 3), st.integers(0, 2**31 - 1))
def test_max_pool_forward_naive_matches_the_loop_definition(n, c, h, w, ph, pw, stride, seed):
    x = np.random.default_rng(seed).normal(size=(n, c, h, w))
    ph, pw = min(ph, h), min(pw, w)
    out, _ = max_pool_forward_naive(x, {"pool_height": ph, "pool_width": pw, "stride": stride})
    np.testing.assert_array_equal(out, ref_pool(x, ph, pw, stride))


def test_max_pool_backward_routes_each_gradient_to_its_window_maximum():
    np.random.seed(231)
    x, dout = np.random.randn(3, 2, 8, 8), np.random.randn(3, 2, 4, 4)
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    _, cache = max_pool_forward_naive(x, pool_param)
    dx = max_pool_backward_naive(dout, cache)
    num = eval_numerical_gradient_array(lambda v: max_pool_forward_naive(v, pool_param)[0], x, dout)
    assert rel_error(dx, num) < NUMERIC_GRAD
    # Ties: the whole gradient goes to the first maximum of the window, as np.argmax picks it.
    _, cache = max_pool_forward_naive(np.ones((1, 1, 2, 2)), pool_param)
    np.testing.assert_array_equal(max_pool_backward_naive(np.full((1, 1, 1, 1), 5.0), cache),
                                  [[[[5.0, 0.0], [0.0, 0.0]]]])


def test_fast_layers_equal_the_naive_ones_and_share_caches():
    np.random.seed(0)
    x, w, b = np.random.randn(3, 2, 7, 7), np.random.randn(4, 2, 3, 3), np.random.randn(4)
    conv_param = {"stride": 2, "pad": 1}
    out, cache = conv_forward_fast(x, w, b, conv_param)
    out_naive, cache_naive = conv_forward_naive(x, w, b, conv_param)
    np.testing.assert_array_equal(out, out_naive)
    dout = np.random.randn(*out.shape)
    for a, c in zip(conv_backward_fast(dout, cache), conv_backward_naive(dout, cache_naive)):
        np.testing.assert_array_equal(a, c)
    out_im2col, cache_im2col = conv_forward_im2col(x, w, b, conv_param)
    np.testing.assert_array_equal(out_im2col, out)
    np.testing.assert_array_equal(conv_backward_im2col(dout, cache_im2col)[0],
                                  conv_backward_fast(dout, cache)[0])
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    x = np.random.randn(2, 3, 6, 6)
    fast, cache = max_pool_forward_fast(x, pool_param)
    reshape, _ = max_pool_forward_reshape(x, pool_param)
    np.testing.assert_array_equal(fast, max_pool_forward_naive(x, pool_param)[0])
    np.testing.assert_array_equal(reshape, fast)
    g = np.random.randn(*fast.shape)
    np.testing.assert_array_equal(max_pool_backward_fast(g, cache), max_pool_backward_reshape(g, cache))


def test_fast_variants_keep_the_courses_preconditions():
    x, w, b = np.zeros((1, 1, 6, 6)), np.zeros((1, 1, 3, 3)), np.zeros(1)
    with pytest.raises(ValueError, match="conv_forward_im2col: height does not work"):
        conv_forward_im2col(x, w, b, {"stride": 2, "pad": 0})
    conv_forward_fast(x, w, b, {"stride": 2, "pad": 0})  # the strides version floors, as the course's
    with pytest.raises(ValueError, match="max_pool_forward_reshape: Invalid pool params"):
        max_pool_forward_reshape(np.zeros((1, 1, 6, 6)), {"pool_height": 3, "pool_width": 3, "stride": 2})
    with pytest.raises(ValueError, match="max_pool_forward_im2col: height does not work"):
        max_pool_forward_im2col(np.zeros((1, 1, 6, 6)), {"pool_height": 3, "pool_width": 3, "stride": 2})
    with pytest.raises(ValueError, match=r"conv_param\['stride'\] must be an int >= 1"):
        conv_forward_naive(x, w, b, {"stride": 0, "pad": 0})
    with pytest.raises(ValueError, match="pool_param must be a dict with 'pool_height'"):
        max_pool_forward_naive(x, {"pool_width": 2, "stride": 2})
    with pytest.raises(ValueError, match="expects 1 input channels"):
        conv_forward_naive(np.zeros((1, 2, 6, 6)), w, b, {"stride": 1, "pad": 0})


def test_im2col_indices_has_the_courses_layout_and_col2im_is_its_adjoint():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 5, 5))
    cols = im2col_indices(x, 3, 3, padding=1, stride=2)
    k, i, j = get_im2col_indices(x.shape, 3, 3, padding=1, stride=2)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    # Rows (channel, kernel row, kernel col); columns (output position, example), example fastest.
    expected = xp[:, k, i, j].transpose(1, 2, 0).reshape(27, -1)
    np.testing.assert_array_equal(cols, expected)
    c = rng.normal(size=cols.shape)
    back = col2im_indices(c, x.shape, 3, 3, padding=1, stride=2)
    assert abs(np.sum(cols * c) - np.sum(x * back)) < SAME_FORMULA * np.sum(np.abs(cols * c))


def test_sandwich_layers_match_numerical_gradients():
    np.random.seed(231)
    x, w, b = np.random.randn(2, 3, 8, 8), np.random.randn(3, 3, 3, 3), np.random.randn(3)
    conv_param, pool_param = {"stride": 1, "pad": 1}, {"pool_height": 2, "pool_width": 2, "stride": 2}
    dout = np.random.randn(2, 3, 4, 4)
    out, cache = conv_relu_pool_forward(x, w, b, conv_param, pool_param)
    expected = ref_pool(np.maximum(ref_conv(x, w, b, 1, 1), 0), 2, 2, 2)
    np.testing.assert_allclose(out, expected, rtol=SAME_FORMULA, atol=SAME_FORMULA)
    dx, dw, db = conv_relu_pool_backward(dout, cache)
    f = lambda v: conv_relu_pool_forward(v, w, b, conv_param, pool_param)[0]  # noqa: E731
    assert rel_error(dx, eval_numerical_gradient_array(f, x, dout)) < 1e-6
    gamma, beta, bn_param = np.random.randn(3), np.random.randn(3), {"mode": "train"}
    dout = np.random.randn(2, 3, 8, 8)
    _, cache = conv_bn_relu_forward(x, w, b, gamma, beta, conv_param, bn_param)
    grads = conv_bn_relu_backward(dout, cache)
    assert len(grads) == 5 and grads[4].shape == (3,)
    g = lambda v: conv_bn_relu_forward(x, w, b, v, beta, conv_param, {"mode": "train"})[0]  # noqa: E731
    assert rel_error(grads[3], eval_numerical_gradient_array(g, gamma, dout)) < 1e-6


def ref_groupnorm(x, gamma, beta, groups, eps=1e-5):
    n, c, h, w = x.shape
    xg = x.reshape(n, groups, -1)
    xhat = (xg - xg.mean(axis=2, keepdims=True)) / np.sqrt(xg.var(axis=2, keepdims=True) + eps)
    return xhat.reshape(n, c, h, w) * gamma + beta


def test_spatial_groupnorm_matches_the_formula_and_numerical_gradients():
    np.random.seed(231)
    x = 5 * np.random.randn(2, 6, 4, 5) + 12
    gamma, beta = np.random.randn(1, 6, 1, 1), np.random.randn(1, 6, 1, 1)
    dout = np.random.randn(2, 6, 4, 5)
    out, cache = spatial_groupnorm_forward(x, gamma, beta, 2, {})
    np.testing.assert_allclose(out, ref_groupnorm(x, gamma, beta, 2), rtol=1e-10, atol=1e-10)
    dx, dgamma, dbeta = spatial_groupnorm_backward(dout, cache)
    assert dgamma.shape == dbeta.shape == (1, 6, 1, 1)
    f = lambda v: spatial_groupnorm_forward(v, gamma, beta, 2, {})[0]  # noqa: E731
    num = eval_numerical_gradient_array(f, x, dout)
    assert rel_error(dx, num) < 1e-6
    np.testing.assert_allclose(dbeta, dout.sum(axis=(0, 2, 3), keepdims=True), rtol=SAME_FORMULA)
    with pytest.raises(ValueError, match="G must be a positive int dividing C=6"):
        spatial_groupnorm_forward(x, gamma, beta, 4, {})
    with pytest.raises(ValueError, match=r"gamma has shape \(6,\), expected \(1, 6, 1, 1\)"):
        spatial_groupnorm_forward(x, np.ones(6), beta, 2, {})


def test_three_layer_convnet_draws_weights_in_the_courses_order():
    np.random.seed(5)
    model = ThreeLayerConvNet(input_dim=(3, 8, 8), num_filters=4, filter_size=3, hidden_dim=6,
                              weight_scale=0.1, dtype=np.float64)
    np.random.seed(5)
    assert np.array_equal(model.params["W1"], 0.1 * np.random.randn(4, 3, 3, 3))
    assert np.array_equal(model.params["W2"], 0.1 * np.random.randn(4 * 4 * 4, 6))
    assert np.array_equal(model.params["W3"], 0.1 * np.random.randn(6, 10))
    assert all(not model.params[k].any() for k in ("b1", "b2", "b3"))
    assert ThreeLayerConvNet().params["W1"].dtype == np.float32


def test_three_layer_convnet_loss_and_gradients():
    np.random.seed(231)
    X, y = np.random.randn(2, 3, 8, 8), np.random.randint(10, size=2)
    model = ThreeLayerConvNet(input_dim=(3, 8, 8), num_filters=3, filter_size=3, hidden_dim=7,
                              weight_scale=0.3, dtype=np.float64, reg=0.3)
    scores = model.loss(X)
    p = model.params
    h = np.maximum(ref_conv(X, p["W1"], p["b1"], 1, 1), 0)
    h = np.maximum(ref_pool(h, 2, 2, 2).reshape(2, -1) @ p["W2"] + p["b2"], 0)
    np.testing.assert_allclose(scores, h @ p["W3"] + p["b3"], rtol=1e-10, atol=1e-12)
    loss, grads = model.loss(X, y)
    shifted = scores - scores.max(axis=1, keepdims=True)
    ce = -np.mean(shifted[np.arange(2), y] - np.log(np.exp(shifted).sum(axis=1)))
    penalty = 0.15 * sum(np.sum(p[k] ** 2) for k in ("W1", "W2", "W3"))
    assert abs(loss - (ce + penalty)) < SAME_FORMULA * loss
    for name in ("W1", "b1", "W3"):
        num = eval_numerical_gradient(lambda _: model.loss(X, y)[0], p[name], verbose=False)
        assert rel_error(num, grads[name]) < 1e-6, name
