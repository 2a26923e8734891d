"""The gradient-flow preset: per-layer weight-gradient norms over training, BN vs plain."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tinygrad_bn import cli
from tinygrad_bn.data import DataNotFoundError
from tinygrad_bn.experiments import common, gradient_flow, run_preset


@pytest.fixture(scope="module")
def digits():
    try:
        return common.load_dataset("mnist5k")
    except DataNotFoundError as err:
        pytest.skip(f"the embedded MNIST digits are unavailable: {err}")


def check_gradient_flow(config, results):
    """What every gradient-flow run holds (also used by tests/test_experiments.py)."""
    runs = {run["net"]: run for run in results["runs"]}
    assert set(runs) == {"plain", "bn"}
    steps = config.epochs * -(-config.train_size // config.batch_size)
    for run in runs.values():
        assert run["layers"] == [f"W{i + 1}" for i in range(config.depth + 1)]
        assert run["iterations"] == list(range(1, steps + 1, config.record_every))
        assert np.array(run["norms"], dtype=float).shape == (config.depth + 1,
                                                             len(run["iterations"]))
        assert len(run["loss"]) == steps


def test_small_weights_make_every_plain_gradient_vanish_and_batchnorm_keeps_them(digits, tmp_path):
    config = gradient_flow.Config.quick()
    result = run_preset("gradient-flow", quick=True, out_dir=tmp_path, log=None)
    check_gradient_flow(config, result.results)
    runs = {run["net"]: np.array(run["norms"], dtype=float) for run in result.results["runs"]}
    # weights 0.01 * randn shrink the signal each layer: orders of magnitude below BN's
    assert np.nanmax(runs["plain"]) < 1e-3 * np.nanmin(runs["bn"])
    assert np.all((runs["bn"] > 1e-2) & (runs["bn"] < 1e2))
    png = tmp_path / "gradient-flow.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((tmp_path / "gradient-flow.json").read_text())["results"]
    assert saved == result.results


def test_the_figure_redraws_from_the_json_alone_with_zero_gradients(tmp_path):
    results = {"title": "t", "runs": [
        {"net": "plain", "layers": ["W1", "W2"], "iterations": [1, 3],
         "norms": [[1e-9, 0.0], [1e-8, 0.0]]},  # a dead net: exact zeros have no logarithm
        {"net": "bn", "layers": ["W1", "W2"], "iterations": [1, 3], "norms": [[0.5, 0.4], [1, None]]},
    ]}
    path = gradient_flow.plot_gradient_flow(results, tmp_path / "f.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_sweep_command_runs_the_preset(digits, tmp_path, capsys):
    assert cli.main(["sweep", "gradient-flow", "--quick", "--epochs", "1", "--jobs", "1", "-q",
                     "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "|dW| first step" in out and "gradient-flow.png" in out


def test_bad_gradient_flow_options_name_the_field():
    with pytest.raises(ValueError, match="weight_scale must be a positive number, got -1"):
        gradient_flow.Config(weight_scale=-1)
    with pytest.raises(ValueError, match="record_every must be a positive integer"):
        gradient_flow.Config(record_every=0)
