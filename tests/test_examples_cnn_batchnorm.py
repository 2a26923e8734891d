"""examples/cnn_batchnorm.py runs (reduced), learns, and its composed and fused CNNs train alike."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from tinygrad_bn import Tensor
from tinygrad_bn.data import DataNotFoundError, load_mnist5k

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "cnn_batchnorm.py"


def _load_example():
    spec = importlib.util.spec_from_file_location("cnn_batchnorm_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example = _load_example()


@pytest.fixture(scope="module")
def digits():
    try:
        load_mnist5k()
    except DataNotFoundError as err:
        pytest.skip(f"the embedded MNIST digits are unavailable: {err}")


def test_a_reduced_run_learns_and_reports_every_epoch(digits):
    lines = []
    history = example.main(epochs=2, train_size=400, test_size=200, log=lines.append)
    assert [r["epoch"] for r in history] == [1, 2] and len(lines) == 2
    assert all(set(r) == {"epoch", "loss", "train_acc", "test_acc", "seconds"} for r in history)
    assert history[-1]["test_acc"] > 0.5  # chance is 0.1
    assert "epoch 2: loss" in lines[-1]


@pytest.mark.parametrize("norm", ["batch", "group", "none"])
def test_composed_and_fused_networks_take_the_same_steps(digits, norm):
    runs = [example.main(epochs=1, norm=norm, impl=impl, train_size=150, test_size=100, log=lambda _: None)
            for impl in ("composed", "fused")]
    # float32, 3 steps: the two implementations round differently, nothing more
    assert runs[0][0]["loss"] == pytest.approx(runs[1][0]["loss"], rel=1e-3)
    assert abs(runs[0][0]["test_acc"] - runs[1][0]["test_acc"]) <= 0.02


def test_the_network_has_two_conv_norm_relu_pool_blocks():
    model = example.build_cnn("group")
    names = [type(m).__name__ for m in model]
    assert names == ["Conv2d", "GroupNorm", "ReLU", "MaxPool2d"] * 2 + ["Flatten", "Linear"]
    assert model(Tensor(np.zeros((2, 1, 28, 28), np.float32))).shape == (2, 10)
