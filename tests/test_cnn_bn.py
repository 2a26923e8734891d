"""The cnn-bn preset: its results' layout, its finding, its figure and table, and its command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tinygrad_bn import cli
from tinygrad_bn.data import DataNotFoundError
from tinygrad_bn.experiments import cnn_bn, common, run_preset


@pytest.fixture(scope="module")
def digits():
    try:
        return common.load_dataset("mnist5k")
    except DataNotFoundError as err:
        pytest.skip(f"the embedded MNIST digits are unavailable: {err}")


def check_cnn_bn(config, results):
    """What every cnn-bn run holds (also used by tests/test_experiments.py)."""
    assert results["norms"] == list(config.norms)
    assert results["scales"] == pytest.approx(np.logspace(1, -2, config.num_scales))
    assert results["lrs"] == pytest.approx(list(config.lrs))
    runs = results["runs"]
    assert len(runs) == config.num_scales * len(config.lrs) * len(config.norms)
    assert {(r["norm"], r["scale"], r["lr"]) for r in runs} == {
        (n, s, lr) for n in results["norms"] for s in results["scales"] for lr in results["lrs"]}
    steps = config.epochs * -(-config.train_size // config.batch_size)
    for run in runs:
        assert len(run["test_acc"]) == len(run["train_acc"]) == config.epochs + 1
        assert all(0.0 <= a <= 1.0 for a in run["test_acc"] + run["train_acc"])
        assert len(run["loss"]) == steps


def test_the_norms_of_one_grid_point_start_from_the_same_weights_and_batches(digits):
    config = cnn_bn.Config.quick()
    nets = {norm: cnn_bn.build_cnn(config, norm, 1.0, cnn_bn.task_rng(0, 0)) for norm in cnn_bn.NORMS}
    convs = {norm: [m.weight.data for m in net if type(m).__name__ == "Conv2d"] for norm, net in nets.items()}
    for a, b in zip(convs["batch"], convs["none"]):
        assert np.array_equal(a, b)
    assert [type(m).__name__ for m in nets["group"]][:4] == ["Conv2d", "GroupNorm", "ReLU", "MaxPool2d"]
    # He's standard deviation times the scale: sqrt(2 / 9) for the first convolution
    big = cnn_bn.build_cnn(config, "none", 10.0, cnn_bn.task_rng(0, 0))[0].weight.data
    assert big.std() == pytest.approx(10 * np.sqrt(2 / 9), rel=0.35)


def test_norm_layers_train_from_inits_where_the_plain_cnn_cannot(digits, tmp_path):
    # 10 x and 0.01 x He's init: without a norm layer the signal explodes or vanishes
    # through the two convolutions; BatchNorm2d and GroupNorm undo the scale.
    config = cnn_bn.Config(num_scales=2, lrs=(0.01,), epochs=1, train_size=1500, test_size=300,
                           dtype="float32")
    result = cnn_bn.run(config, jobs=1, out_dir=tmp_path, log=None)
    check_cnn_bn(config, result.results)
    final = {(r["norm"], r["scale"]): r["test_acc"][-1] for r in result.results["runs"]}
    for scale in (10.0, 0.01):
        assert final[("batch", scale)] > 0.6 and final[("group", scale)] > 0.6  # measured >= 0.72
        assert final[("none", scale)] < 0.3  # measured 0.10: chance
    assert (tmp_path / "cnn-bn.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((tmp_path / "cnn-bn.json").read_text())["results"]
    assert saved == result.results
    header, *rows = (tmp_path / "cnn-bn.csv").read_text().splitlines()
    assert {"norm", "scale", "lr", "epoch", "test_acc", "train_acc", "mean_loss"} <= set(header.split(","))
    assert len(rows) == len(result.results["runs"]) * (config.epochs + 1)
    assert "batch test acc" in result.summary and "none test acc" in result.summary


def test_bad_options_name_the_field():
    with pytest.raises(ValueError, match="groups=3 must divide both channel counts"):
        cnn_bn.Config(groups=3)
    with pytest.raises(ValueError, match="norms must be some of"):
        cnn_bn.Config(norms=("layer",))
    with pytest.raises(ValueError, match="lrs must be positive numbers"):
        cnn_bn.Config(lrs=(0.1, -1.0))


def test_sweep_command_runs_the_preset(digits, tmp_path, capsys):
    rc = cli.main(["sweep", "cnn-bn", "--quick", "--jobs", "1", "--quiet", "--dtype", "float32",
                   "--out", str(tmp_path)])
    assert rc == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "x He" in out and "cnn-bn" in out
    assert json.loads((tmp_path / "cnn-bn.json").read_text())["config"]["dtype"] == "float32"
    _ = run_preset  # the Python entry point the docs show
