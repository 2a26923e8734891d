"""tinygrad_bn.compat.dlfs: the book's layers, network and optimizers against its formulas.

The references here are plain numpy written from the book's formulas (forward
passes and update rules), so the compat API, whose gradients come from
autograd, is compared with an independent implementation.
"""

import importlib.util
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_bn.compat.dlfs import (
    SGD,
    AdaGrad,
    Adam,
    Affine,
    BatchNormalization,
    Dropout,
    Momentum,
    MultiLayerNetExtend,
    Nesterov,
    Relu,
    RMSprop,
    Sigmoid,
    SoftmaxWithLoss,
    load_mnist,
    numerical_gradient,
)
from tinygrad_bn.data import DataNotFoundError
from tinygrad_bn.testing import strategies as tst

# Two float64 evaluations of one formula in a different order of operations.
SAME_FORMULA = 1e-12
BOOK_EPS = 10e-7


# ---------------------------------------------------------------- plain-numpy references


def ref_bn(x, gamma, beta, running_mean, running_var, train, momentum=0.9):
    """The book's BatchNormalization forward; returns (out, running_mean, running_var)."""
    shape = x.shape
    x = x.reshape(shape[0], -1)
    if train:
        mu = x.mean(axis=0)
        xc = x - mu
        var = np.mean(xc**2, axis=0)
        out = gamma * (xc / np.sqrt(var + BOOK_EPS)) + beta
        running_mean = momentum * running_mean + (1 - momentum) * mu
        running_var = momentum * running_var + (1 - momentum) * var
    else:
        out = gamma * ((x - running_mean) / np.sqrt(running_var + BOOK_EPS)) + beta
    return out.reshape(shape), running_mean, running_var


def ref_softmax_ce(scores, t, delta=1e-7):
    """The book's cross_entropy_error of softmax(scores); delta=0 is the exact cross-entropy."""
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    y = e / e.sum(axis=1, keepdims=True)
    return -np.sum(np.log(y[np.arange(len(t)), t] + delta)) / len(t), y


def ref_net_loss(net, x, t, train, delta=1e-7, activation="relu"):
    """MultiLayerNetExtend's loss from its params, with running stats copied from its layers."""
    p, h = net.params, x
    for i in range(1, net.hidden_layer_num + 1):
        h = h @ p[f"W{i}"] + p[f"b{i}"]
        if net.use_batchnorm:
            bn = net.layers[f"BatchNorm{i}"]
            h = ref_bn(h, p[f"gamma{i}"], p[f"beta{i}"], bn.running_mean, bn.running_var, train)[0]
        h = np.maximum(0, h) if activation == "relu" else 1 / (1 + np.exp(-h))
    last = net.hidden_layer_num + 1
    loss, _ = ref_softmax_ce(h @ p[f"W{last}"] + p[f"b{last}"], t, delta)
    return loss + sum(0.5 * net.weight_decay_lambda * np.sum(p[f"W{i}"] ** 2)
                      for i in range(1, last + 1))


def numeric(f, x, dout):
    """Gradient of sum(f(x) * dout) with the book's numerical_gradient."""
    return numerical_gradient(lambda _: np.sum(f(x) * dout), x)


# ---------------------------------------------------------------- MultiLayerNetExtend


@pytest.mark.parametrize("weight_init_std, scale", [
    ("relu", lambda fan_in: np.sqrt(2.0 / fan_in)), ("he", lambda fan_in: np.sqrt(2.0 / fan_in)),
    ("sigmoid", lambda fan_in: np.sqrt(1.0 / fan_in)), ("Xavier", lambda fan_in: np.sqrt(1.0 / fan_in)),
    (0.01, lambda fan_in: 0.01),
])
def test_weights_are_drawn_layer_by_layer_in_the_books_order(weight_init_std, scale):
    np.random.seed(0)
    net = MultiLayerNetExtend(6, [5, 4], 3, weight_init_std=weight_init_std, use_batchnorm=True,
                              use_dropout=True)
    after = np.random.rand()
    np.random.seed(0)
    sizes = [6, 5, 4, 3]
    expected = {}
    for i in range(1, 4):
        expected[f"W{i}"] = scale(sizes[i - 1]) * np.random.randn(sizes[i - 1], sizes[i])
        expected[f"b{i}"] = np.zeros(sizes[i])
    for i in (1, 2):
        expected[f"gamma{i}"], expected[f"beta{i}"] = np.ones(sizes[i]), np.zeros(sizes[i])
    assert after == np.random.rand()  # nothing else drew from the RNG
    assert list(net.params) == list(expected)
    for k, v in expected.items():
        np.testing.assert_array_equal(net.params[k], v)
    assert list(net.layers) == ["Affine1", "BatchNorm1", "Activation_function1", "Dropout1",
                                "Affine2", "BatchNorm2", "Activation_function2", "Dropout2", "Affine3"]


@pytest.mark.parametrize("use_batchnorm", [False, True])
def test_loss_matches_the_books_formulas_in_train_and_test_mode(use_batchnorm):
    np.random.seed(1)
    net = MultiLayerNetExtend(8, [6, 5], 4, use_batchnorm=use_batchnorm, weight_decay_lambda=0.1)
    x, t = np.random.randn(10, 8).astype(np.float32), np.random.randint(4, size=10)
    for _ in range(3):  # move the running statistics away from zero
        net.loss(x + np.random.randn(*x.shape).astype(np.float32), t, train_flg=True)
    for train in (True, False):
        expected = ref_net_loss(net, x.astype(np.float64), t, train)
        assert abs(net.loss(x, t, train_flg=train) - expected) <= SAME_FORMULA * expected


@pytest.mark.parametrize("use_batchnorm, activation", [(False, "relu"), (True, "relu"), (True, "sigmoid")])
def test_gradient_matches_numerical_gradient(use_batchnorm, activation):
    np.random.seed(2)
    net = MultiLayerNetExtend(5, [6, 4], 3, activation=activation, use_batchnorm=use_batchnorm,
                              weight_decay_lambda=0.05)
    for key, value in net.params.items():
        if key.startswith("b"):
            value += 0.1 * np.random.randn(*value.shape)  # keep units off relu's kink
    x, t = np.random.randn(7, 5), np.random.randint(3, size=7)
    grads = net.gradient(x, t)
    assert list(grads) == list(net.numerical_gradient(x, t))
    # The gradient is the book's backward, (y - t) / N at the loss: the gradient of the
    # exact cross-entropy (the 1e-7 inside the log only guards it), so compare with
    # central differences (the book's h = 1e-4, agreeing to ~1e-8) of that loss.
    exact = lambda _: ref_net_loss(net, x, t, train=True, delta=0.0, activation=activation)  # noqa: E731
    for key in grads:
        assert np.max(np.abs(grads[key] - numerical_gradient(exact, net.params[key]))) < 1e-7, key


def test_accuracy_takes_labels_or_one_hot():
    np.random.seed(3)
    net = MultiLayerNetExtend(4, [5], 3)
    x, t = np.random.randn(20, 4), np.random.randint(3, size=20)
    expected = np.mean(np.argmax(net.predict(x), axis=1) == t)
    assert net.accuracy(x, t) == expected == net.accuracy(x, np.eye(3)[t])


def test_training_with_sgd_updates_the_layers_shared_arrays():
    np.random.seed(4)
    net = MultiLayerNetExtend(4, [8], 2, use_batchnorm=True)
    W1 = net.params["W1"]
    x = np.random.randn(40, 4)
    t = (x[:, 0] > 0).astype(int)
    loss_before = net.loss(x, t)
    optimizer = SGD(lr=0.1)
    for _ in range(30):
        optimizer.update(net.params, net.gradient(x, t))
    assert net.params["W1"] is W1 and net.layers["Affine1"].W is W1
    assert net.loss(x, t) < 0.5 * loss_before


# ---------------------------------------------------------------- layers


def test_batchnorm_layer_follows_the_book_for_2d_input():
    rng = np.random.default_rng(5)
    x, dout = rng.normal(3, 2, (6, 4)), rng.normal(size=(6, 4))
    gamma, beta = rng.normal(size=4), rng.normal(size=4)
    bn = BatchNormalization(gamma, beta)
    out = bn.forward(x, train_flg=True)
    expected, mean, var = ref_bn(x, gamma, beta, np.zeros(4), np.zeros(4), True)
    assert rel_diff(out, expected) < SAME_FORMULA
    np.testing.assert_array_equal(bn.running_mean, mean)  # the book's update, bit for bit
    np.testing.assert_array_equal(bn.running_var, var)
    assert bn.running_mean.dtype == np.float64
    test_out = bn.forward(x + 1, train_flg=False)
    assert rel_diff(test_out, ref_bn(x + 1, gamma, beta, mean, var, False)[0]) < SAME_FORMULA

    bn.forward(x, train_flg=True)
    dx = bn.backward(dout)
    assert np.max(np.abs(dx - numeric(lambda v: bn.forward(v, True), x, dout))) < 1e-6
    g_num = numeric(lambda v: BatchNormalization(v, beta).forward(x, True), gamma.copy(), dout)
    assert np.max(np.abs(bn.dgamma - g_num)) < 1e-7
    np.testing.assert_allclose(bn.dbeta, dout.sum(axis=0), rtol=1e-12)


def test_batchnorm_layer_flattens_4d_input_so_statistics_are_per_activation():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(5, 2, 3, 3))
    gamma, beta = rng.normal(size=18), rng.normal(size=18)
    bn = BatchNormalization(gamma, beta)
    out = bn.forward(x)
    assert out.shape == x.shape
    expected = ref_bn(x, gamma, beta, np.zeros(18), np.zeros(18), True)[0]
    assert rel_diff(out, expected) < SAME_FORMULA
    assert bn.running_mean.shape == (18,)
    dout = rng.normal(size=x.shape)
    assert bn.backward(dout).shape == x.shape


@given(n=st.integers(2, 8), d=st.integers(1, 5), data=st.data())
def test_batchnorm_layer_fused_and_composed_give_the_same_gradients(n, d, data):
    x = data.draw(tst.arrays((n, d), min_value=-20, max_value=20))
    gamma, beta = data.draw(tst.arrays((d,))), data.draw(tst.arrays((d,)))
    dout = data.draw(tst.arrays((n, d)))
    results = []
    for impl in ("fused", "composed"):
        bn = BatchNormalization(gamma, beta, impl=impl)
        out = bn.forward(x)
        results.append((out, bn.backward(dout), bn.dgamma, bn.dbeta, bn.running_var))
    for a, b in zip(*results, strict=True):
        assert np.max(np.abs(a - b)) <= 1e-9 * max(1.0, np.max(np.abs(a)))


def test_affine_restores_the_input_shape_and_sets_dW_db():
    rng = np.random.default_rng(7)
    x, W, b = rng.normal(size=(3, 2, 2)), rng.normal(size=(4, 5)), rng.normal(size=5)
    dout = rng.normal(size=(3, 5))
    layer = Affine(W, b)
    assert rel_diff(layer.forward(x), x.reshape(3, 4) @ W + b) < SAME_FORMULA
    dx = layer.backward(dout)
    assert dx.shape == x.shape
    np.testing.assert_allclose(dx, (dout @ W.T).reshape(x.shape), rtol=1e-12)
    np.testing.assert_allclose(layer.dW, x.reshape(3, 4).T @ dout, rtol=1e-12)
    np.testing.assert_allclose(layer.db, dout.sum(axis=0), rtol=1e-12)


def test_relu_and_sigmoid_backward():
    x = np.array([[-1.0, 0.0, 2.0]])
    relu = Relu()
    np.testing.assert_array_equal(relu.forward(x), [[0.0, 0.0, 2.0]])
    np.testing.assert_array_equal(relu.backward(np.ones_like(x)), [[0.0, 0.0, 1.0]])
    sig = Sigmoid()
    y = sig.forward(x)
    np.testing.assert_allclose(y, 1 / (1 + np.exp(-x)), rtol=1e-12)
    np.testing.assert_allclose(sig.backward(np.ones_like(x)), y * (1 - y), rtol=1e-12)


def test_dropout_masks_with_rand_greater_than_ratio_and_scales_at_test_time():
    x = np.random.default_rng(8).normal(size=(50, 40))
    layer = Dropout(0.3)
    np.random.seed(5)
    out = layer.forward(x, train_flg=True)
    np.random.seed(5)
    mask = np.random.rand(*x.shape) > 0.3
    np.testing.assert_array_equal(out, x * mask)
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), mask.astype(float))
    np.testing.assert_allclose(layer.forward(x, train_flg=False), x * 0.7, rtol=1e-15)


def test_softmax_with_loss_takes_labels_or_one_hot_and_matches_the_book():
    rng = np.random.default_rng(9)
    x, t = rng.normal(size=(6, 4)), rng.integers(0, 4, size=6)
    layer = SoftmaxWithLoss()
    loss = layer.forward(x, t)
    expected, y = ref_softmax_ce(x, t)
    assert abs(loss - expected) <= SAME_FORMULA * expected
    assert SoftmaxWithLoss().forward(x, np.eye(4)[t]) == loss
    dx = layer.backward()
    # The book's backward is (y - t) / N: the gradient of the loss without the 1e-7 in the log.
    np.testing.assert_allclose(dx, (y - np.eye(4)[t]) / 6, rtol=SAME_FORMULA, atol=SAME_FORMULA)
    exact = numerical_gradient(lambda _: ref_softmax_ce(x, t, delta=0.0)[0], x)
    assert np.max(np.abs(dx - exact)) < 1e-8


# ---------------------------------------------------------------- optimizers


def reference_updates(name, params, grads_seq, **kw):
    """The book's update formulas, applied to copies."""
    p = {k: v.copy() for k, v in params.items()}
    state = {k: np.zeros_like(v) for k, v in params.items()}
    state2 = {k: np.zeros_like(v) for k, v in params.items()}
    for it, grads in enumerate(grads_seq, start=1):
        for k in p:
            g = grads[k]
            if name == "SGD":
                p[k] -= kw["lr"] * g
            elif name == "Momentum":
                state[k] = kw["momentum"] * state[k] - kw["lr"] * g
                p[k] += state[k]
            elif name == "Nesterov":
                state[k] *= kw["momentum"]
                state[k] -= kw["lr"] * g
                p[k] += kw["momentum"] * kw["momentum"] * state[k]
                p[k] -= (1 + kw["momentum"]) * kw["lr"] * g
            elif name == "AdaGrad":
                state[k] += g * g
                p[k] -= kw["lr"] * g / (np.sqrt(state[k]) + 1e-7)
            elif name == "RMSprop":
                state[k] *= kw["decay_rate"]
                state[k] += (1 - kw["decay_rate"]) * g * g
                p[k] -= kw["lr"] * g / (np.sqrt(state[k]) + 1e-7)
            elif name == "Adam":
                lr_t = kw["lr"] * np.sqrt(1.0 - kw["beta2"] ** it) / (1.0 - kw["beta1"] ** it)
                state[k] += (1 - kw["beta1"]) * (g - state[k])
                state2[k] += (1 - kw["beta2"]) * (g**2 - state2[k])
                p[k] -= lr_t * state[k] / (np.sqrt(state2[k]) + 1e-7)
    return p


@pytest.mark.parametrize("cls, defaults", [
    (SGD, dict(lr=0.01)), (Momentum, dict(lr=0.01, momentum=0.9)),
    (Nesterov, dict(lr=0.01, momentum=0.9)), (AdaGrad, dict(lr=0.01)),
    (RMSprop, dict(lr=0.01, decay_rate=0.99)), (Adam, dict(lr=0.001, beta1=0.9, beta2=0.999)),
])
def test_every_optimizer_follows_its_textbook_update_in_place(cls, defaults):
    rng = np.random.default_rng(10)
    params = {"W": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}
    arrays = dict(params)
    grads_seq = [{k: rng.normal(size=v.shape) for k, v in params.items()} for _ in range(3)]
    expected = reference_updates(cls.__name__, params, grads_seq, **defaults)
    optimizer = cls()  # the book's default hyperparameters
    for grads in grads_seq:
        optimizer.update(params, grads)
    for k in params:
        assert params[k] is arrays[k]  # in place: the layers share these arrays
        np.testing.assert_array_equal(params[k], expected[k])


# ---------------------------------------------------------------- load_mnist


def idx_file(path, magic, array):
    path.write_bytes(struct.pack(">i", magic) + struct.pack(f">{array.ndim}I", *array.shape)
                     + array.astype(np.uint8).tobytes())


def test_load_mnist_reads_full_mnist_when_the_idx_files_exist(tmp_path, capsys):
    rng = np.random.default_rng(11)
    folder = tmp_path / "mnist"
    folder.mkdir()
    for prefix, n in (("train", 7), ("t10k", 3)):
        idx_file(folder / f"{prefix}-images-idx3-ubyte", 2051, rng.integers(0, 256, (n, 28, 28)))
        idx_file(folder / f"{prefix}-labels-idx1-ubyte", 2049, rng.integers(0, 10, n))
    (x, t), (x_test, t_test) = load_mnist(data_dir=tmp_path)
    assert x.shape == (7, 784) and x.dtype == np.float32 and x.max() <= 1.0
    assert t.dtype == np.uint8 and x_test.shape == (3, 784)
    assert "full MNIST" in capsys.readouterr().err
    (x, t), _ = load_mnist(normalize=False, flatten=False, one_hot_label=True, data_dir=tmp_path)
    assert x.shape == (7, 1, 28, 28) and x.dtype == np.uint8
    assert t.shape == (7, 10) and t.dtype == np.float64 and np.all(t.sum(axis=1) == 1)


def test_load_mnist_falls_back_to_the_embedded_subset_with_a_notice(tmp_path, capsys):
    try:
        (x, t), (x_test, t_test) = load_mnist(one_hot_label=True, data_dir=tmp_path)
    except DataNotFoundError as err:
        pytest.skip(f"embedded MNIST subset unavailable: {err}")
    assert x.shape == (4000, 784) and x_test.shape == (1000, 784) and x.dtype == np.float32
    assert t.shape == (4000, 10) and t.dtype == np.float64
    assert "embedded 5k subset" in capsys.readouterr().err


# ---------------------------------------------------------------- bad input


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match=r"BatchNormalization.forward: expected input of shape \(N, D\) or"):
        BatchNormalization(np.ones(3), np.zeros(3)).forward(np.ones((2, 3, 1)))
    with pytest.raises(ValueError, match=r"BatchNormalization.forward: gamma has shape \(3,\), expected"):
        BatchNormalization(np.ones(3), np.zeros(3)).forward(np.ones((2, 4)))
    with pytest.raises(ValueError, match="SoftmaxWithLoss.forward: labels must lie in 0..2"):
        SoftmaxWithLoss().forward(np.ones((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="weight_init_std must be a number or 'relu'"):
        MultiLayerNetExtend(4, [3], 2, weight_init_std="glorot")
    with pytest.raises(ValueError, match="activation must be 'relu' or 'sigmoid'"):
        MultiLayerNetExtend(4, [3], 2, activation="tanh")
    with pytest.raises(KeyError, match=r"SGD.update: grads has no entry for \['b'\]"):
        SGD().update({"W": np.ones(2), "b": np.ones(2)}, {"W": np.ones(2)})
    with pytest.raises(ValueError, match=r"Affine.forward: x of shape \(2, 3\) has 3 values"):
        Affine(np.ones((4, 2)), np.ones(2)).forward(np.ones((2, 3)))
    with pytest.raises(RuntimeError, match="Relu.backward: call forward first"):
        Relu().backward(np.ones(2))


def rel_diff(a, b):
    return float(np.max(np.abs(a - b)) / max(1e-300, np.max(np.abs(b))))


# ---------------------------------------------------------------- the example script


def test_dlfs_example_runs_quick_and_prints_the_books_lines(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = Path(__file__).resolve().parents[1] / "examples" / "dlfs_batchnorm_test.py"
    spec = importlib.util.spec_from_file_location("dlfs_batchnorm_test_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    try:
        assert example.main(["--quick", "--out", str(tmp_path)]) == 0
    except DataNotFoundError as err:
        pytest.skip(f"no MNIST available: {err}")
    assert (tmp_path / "dlfs_batchnorm_test.png").read_bytes().startswith(b"\x89PNG")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "============== 1/4 =============="
    assert all(re.fullmatch(r"epoch:[0-2] \| [0-9.e-]+ - [0-9.e-]+", ln) for ln in lines[1:4])
