"""tinygrad_bn.compat.dlfs mirrors the book's common/ and dataset/ and ch07's simple_convnet.

Name lists are the public names of the book's files (and what each star-imports);
references are plain numpy written here from the book's formulas.
"""

import pickle

import numpy as np
import pytest

from tinygrad_bn.compat.dlfs.common.functions import (
    cross_entropy_error,
    relu_grad,
    sigmoid,
    sigmoid_grad,
    softmax,
    softmax_loss,
    step_function,
)
from tinygrad_bn.compat.dlfs.common.gradient import numerical_gradient, numerical_gradient_2d
from tinygrad_bn.compat.dlfs.common.layers import BatchNormalization, Convolution, Pooling
from tinygrad_bn.compat.dlfs.common.multi_layer_net import MultiLayerNet
from tinygrad_bn.compat.dlfs.common.trainer import Trainer
from tinygrad_bn.compat.dlfs.common.util import (
    col2im,
    conv_output_size,
    im2col,
    shuffle_dataset,
    smooth_curve,
)
from tinygrad_bn.compat.dlfs.simple_convnet import SimpleConvNet
from tinygrad_bn.data import ForbiddenGlobalError

FUNCTIONS = {"identity_function", "step_function", "sigmoid", "sigmoid_grad", "relu", "relu_grad", "softmax",
             "sum_squared_error", "cross_entropy_error", "softmax_loss"}
LAYERS = {"Relu", "Sigmoid", "Affine", "SoftmaxWithLoss", "Dropout", "BatchNormalization", "Convolution",
          "Pooling", "im2col", "col2im"} | FUNCTIONS
OPTIMIZERS = {"SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"}
BOOK_MODULES = {
    "common.functions": FUNCTIONS,
    "common.layers": LAYERS,
    "common.gradient": {"numerical_gradient", "numerical_gradient_2d"},
    "common.util": {"smooth_curve", "shuffle_dataset", "conv_output_size", "im2col", "col2im"},
    "common.optimizer": OPTIMIZERS,
    "common.trainer": {"Trainer"} | OPTIMIZERS,
    "common.multi_layer_net": {"MultiLayerNet", "numerical_gradient"} | LAYERS,
    "common.multi_layer_net_extend": {"MultiLayerNetExtend", "numerical_gradient"} | LAYERS,
    "dataset.mnist": {"load_mnist"},
    "simple_convnet": {"SimpleConvNet"},
}
SAME_FORMULA = 1e-12


@pytest.mark.parametrize("module", sorted(BOOK_MODULES))
def test_every_book_module_star_exports_what_the_books_file_does(module):
    namespace = {}
    exec(f"from tinygrad_bn.compat.dlfs.{module} import *", namespace)
    assert not BOOK_MODULES[module] - set(namespace), sorted(BOOK_MODULES[module] - set(namespace))
    # The book's files have no __all__, so their star-imports bring numpy along as np, and
    # ch06/optimizer_compare_mnist.py relies on it.
    assert namespace["np"] is np
    flat = {}
    exec("from tinygrad_bn.compat.dlfs import *", flat)
    assert not BOOK_MODULES[module] - set(flat)


def test_functions_follow_the_books_formulas():
    x = np.array([[-1.0, 0.0, 2.0], [3.0, -4.0, 0.5]])
    np.testing.assert_array_equal(step_function(x), [[0, 0, 1], [1, 0, 1]])
    np.testing.assert_allclose(sigmoid_grad(x), sigmoid(x) * (1 - sigmoid(x)))
    np.testing.assert_array_equal(relu_grad(x), [[0, 1, 1], [1, 0, 1]])  # the book counts 0 as active
    y = softmax(x)
    np.testing.assert_allclose(y.sum(axis=1), 1)
    t = np.array([2, 0])
    expected = -np.mean(np.log(y[[0, 1], t] + 1e-7))
    assert abs(cross_entropy_error(y, t) - expected) < SAME_FORMULA
    assert cross_entropy_error(y, np.eye(3)[t]) == cross_entropy_error(y, t)
    assert abs(cross_entropy_error(y[0], np.eye(3)[2]) + np.log(y[0, 2] + 1e-7)) < SAME_FORMULA
    assert softmax_loss(x, t) == cross_entropy_error(y, t)


def test_numerical_gradient_2d_differentiates_row_by_row():
    X = np.array([[1.0, 2.0], [3.0, -1.0]])
    np.testing.assert_allclose(numerical_gradient_2d(lambda v: np.sum(v ** 2), X), 2 * X, rtol=1e-8)
    np.testing.assert_allclose(numerical_gradient(lambda v: np.sum(v ** 3), X), 3 * X ** 2, rtol=1e-7)
    with pytest.raises(TypeError, match="float numpy array"):
        numerical_gradient(lambda v: 0, np.arange(3))


def test_smooth_curve_is_a_kaiser_weighted_average_of_the_mirrored_curve():
    x = np.random.default_rng(0).normal(size=40)
    window = np.kaiser(11, 2)
    window /= window.sum()
    padded = np.concatenate([x[10:0:-1], x, x[::-1][:10]])
    # Output i averages the 11 padded points centred on padded index i + 10 ... as the book's
    # 'valid' convolution trimmed by 5 on each side (the window is symmetric).
    expected = [np.dot(window, padded[i + 5:i + 16]) for i in range(40)]
    np.testing.assert_allclose(smooth_curve(x), expected, rtol=1e-12)


def test_shuffle_dataset_permutes_examples_and_labels_together():
    x, t = np.arange(20.0).reshape(10, 2), np.arange(10)
    np.random.seed(3)
    xs, ts = shuffle_dataset(x, t)
    np.testing.assert_array_equal(xs[:, 0] / 2, ts)
    np.random.seed(3)
    np.testing.assert_array_equal(ts, np.random.permutation(10))
    images = np.arange(2 * 1 * 2 * 2.0).reshape(2, 1, 2, 2)
    assert shuffle_dataset(images, np.arange(2))[0].shape == images.shape


def ref_im2col(x, fh, fw, stride, pad):
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - fh) // stride + 1, (w + 2 * pad - fw) // stride + 1
    rows = [xp[i, :, y * stride:y * stride + fh, z * stride:z * stride + fw].ravel()
            for i in range(n) for y in range(oh) for z in range(ow)]
    return np.array(rows)


@pytest.mark.parametrize("stride, pad", [(1, 0), (2, 1), (1, 2)])
def test_im2col_has_the_books_layout_and_col2im_is_its_adjoint(stride, pad):
    rng = np.random.default_rng(stride + pad)
    x = rng.normal(size=(2, 3, 6, 5))
    col = im2col(x, 3, 2, stride, pad)
    np.testing.assert_array_equal(col, ref_im2col(x, 3, 2, stride, pad))
    c = rng.normal(size=col.shape)
    back = col2im(c, x.shape, 3, 2, stride, pad)
    assert back.shape == x.shape and back.dtype == np.float64
    assert abs(np.sum(col * c) - np.sum(x * back)) < 1e-10
    assert conv_output_size(6, 3, stride, pad) == (6 + 2 * pad - 3) / stride + 1


def test_convolution_and_pooling_layers_follow_im2col_and_differentiate():
    rng = np.random.default_rng(7)
    x, W, b = rng.normal(size=(2, 2, 5, 5)), rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3)
    conv = Convolution(W, b, stride=1, pad=1)
    out = conv.forward(x)
    expected = im2col(x, 3, 3, 1, 1) @ W.reshape(3, -1).T + b
    expected = expected.reshape(2, 5, 5, 3).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    dout = rng.normal(size=out.shape)
    dx = conv.backward(dout)
    np.testing.assert_allclose(conv.db, dout.sum(axis=(0, 2, 3)), rtol=1e-12)
    num = numerical_gradient(lambda _: np.sum(Convolution(W, b, 1, 1).forward(x) * dout), W)
    np.testing.assert_allclose(conv.dW, num, rtol=1e-6, atol=1e-8)
    num_x = numerical_gradient(lambda v: np.sum(Convolution(W, b, 1, 1).forward(v) * dout), x.copy())
    np.testing.assert_allclose(dx, num_x, rtol=1e-6, atol=1e-8)
    # A scalar bias broadcasts over the filters, as the book's numpy addition does (ch07/apply_filter.py).
    np.testing.assert_allclose(Convolution(W, 0.5, 1, 1).forward(x) - 0.5, out - b[:, None, None], atol=1e-12)
    pool = Pooling(2, 2, stride=2)
    pooled = pool.forward(x[:, :, :4, :4])
    np.testing.assert_array_equal(pooled, x[:, :, :4, :4].reshape(2, 2, 2, 2, 2, 2).max(axis=(3, 5)))
    g = pool.backward(np.ones_like(pooled))
    assert g.sum() == pooled.size and set(np.unique(g)) <= {0.0, 1.0}


def test_batchnorm_with_a_batch_of_one_computes_what_the_book_computes():
    gamma, beta = np.array([2.0, 3.0]), np.array([0.5, -1.0])
    bn = BatchNormalization(gamma, beta)
    x = np.array([[4.0, -7.0]])
    out = bn.forward(x, train_flg=True)
    np.testing.assert_array_equal(out, [beta])  # the centred input is 0
    np.testing.assert_array_equal(bn.backward(np.array([[1.0, 1.0]])), [[0.0, 0.0]])
    np.testing.assert_array_equal(bn.dgamma, [0, 0])
    np.testing.assert_array_equal(bn.dbeta, [1, 1])
    np.testing.assert_allclose(bn.running_mean, 0.1 * x[0])  # momentum 0.9 kept
    np.testing.assert_array_equal(bn.running_var, [0, 0])


def test_multi_layer_net_is_the_books_net_with_weight_decay():
    np.random.seed(1)
    net = MultiLayerNet(6, [5, 4], 3, activation="sigmoid", weight_init_std=0.1, weight_decay_lambda=0.2)
    np.random.seed(1)
    assert np.array_equal(net.params["W1"], 0.1 * np.random.randn(6, 5))
    assert np.array_equal(net.params["W2"], 0.1 * np.random.randn(5, 4))
    assert list(net.params) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    x, t = np.random.randn(4, 6), np.array([0, 2, 1, 1])
    h = x
    for i in (1, 2):
        h = 1 / (1 + np.exp(-(h @ net.params[f"W{i}"] + net.params[f"b{i}"])))
    scores = h @ net.params["W3"] + net.params["b3"]
    np.testing.assert_allclose(net.predict(x), scores, rtol=1e-12)
    decay = 0.1 * sum(np.sum(net.params[f"W{i}"] ** 2) for i in (1, 2, 3))
    assert abs(net.loss(x, t) - (cross_entropy_error(softmax(scores), t) + decay)) < SAME_FORMULA
    grads = net.gradient(x, t)
    num = net.numerical_gradient(x, t)
    for key in grads:  # the 1e-7 in the log moves the numerical gradient by ~1e-7 / p
        np.testing.assert_allclose(grads[key], num[key], atol=1e-6)


def test_trainer_runs_the_books_loop_and_prints_its_lines(capsys):
    np.random.seed(0)
    x, t = np.random.randn(30, 4), np.random.randint(3, size=30)
    net = MultiLayerNet(4, [5], 3)
    trainer = Trainer(net, x, t, x[:10], t[:10], epochs=3, mini_batch_size=10, optimizer="Adam",
                      optimizer_param={"lr": 0.01}, evaluate_sample_num_per_epoch=5)
    trainer.train()
    out = capsys.readouterr().out.splitlines()
    assert trainer.max_iter == 9 and len(trainer.train_loss_list) == 9
    # Accuracy at iterations 0, 3 and 6 (multiples of the 3 iterations per epoch).
    assert len(trainer.train_acc_list) == 3 and out[1].startswith("=== epoch:1, train acc:")
    assert out[0].startswith("train loss:")
    assert out[-2] == "=============== Final Test Accuracy ==============="
    assert out[-1] == f"test acc:{net.accuracy(x[:10], t[:10])}"
    with pytest.raises(ValueError, match="optimizer must be one of"):
        Trainer(net, x, t, x, t, optimizer="lbfgs")


def test_simple_convnet_gradient_and_the_books_parameter_file(tmp_path):
    np.random.seed(2)
    conv_param = {"filter_num": 2, "filter_size": 3, "pad": 0, "stride": 1}
    net = SimpleConvNet(input_dim=(1, 6, 6), conv_param=conv_param, hidden_size=4, output_size=3,
                        weight_init_std=0.3)
    np.random.seed(2)
    assert np.array_equal(net.params["W1"], 0.3 * np.random.randn(2, 1, 3, 3))
    assert net.params["W2"].shape == (2 * 2 * 2, 4)
    x, t = np.random.rand(3, 1, 6, 6), np.array([[1], [0], [2]])  # labels in any shape, as the book indexes
    grads, num = net.gradient(x, t), net.numerical_gradient(x, t)
    for key in grads:
        np.testing.assert_allclose(grads[key], num[key], atol=1e-6)
    assert net.accuracy(x, t.ravel(), batch_size=2) in (0, 1 / 3, 2 / 3)  # only whole batches count
    path = tmp_path / "params.pkl"
    net.save_params(path)
    other = SimpleConvNet(input_dim=(1, 6, 6), conv_param=conv_param, hidden_size=4, output_size=3)
    other.load_params(path)
    for key in net.params:
        np.testing.assert_array_equal(other.params[key], net.params[key])
    assert other.layers["Conv1"].W is other.params["W1"]
    bad = tmp_path / "evil.pkl"
    bad.write_bytes(pickle.dumps({"W1": np.zeros(2), "f": print}))
    with pytest.raises(ForbiddenGlobalError):
        other.load_params(bad)
