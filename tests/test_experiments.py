"""The seed experiments: each preset's files and contents, reproducibility, the numpy cross-check."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from test_cnn_bn import check_cnn_bn  # the cnn-bn preset's contents check
from test_gradient_flow import check_gradient_flow  # the gradient-flow preset's contents check

from tinygrad_bn import cli, nn
from tinygrad_bn.data import DataNotFoundError
from tinygrad_bn.experiments import (
    PRESETS,
    build_mlp,
    common,
    dlfs_init_sweep,
    get_preset,
    plots,
    run_preset,
    task_rng,
)
from tinygrad_bn.experiments.parallel import resolve_jobs
from tinygrad_bn.experiments.runner import run_tasks

ROOT = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def digits() -> None:
    """Skip (with the reason) when the embedded digits cannot be loaded."""
    try:
        common.load_dataset("mnist5k")
    except DataNotFoundError as err:
        pytest.skip(f"the embedded MNIST digits are unavailable: {err}")


def _load_numpy_reference():
    name = "tinygrad_bn_numpy_reference"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "numpy_reference.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _in_unit_interval(values) -> bool:
    return all(v is not None and 0.0 <= v <= 1.0 for v in values)


# ---------------------------------------------------------------- per-preset contents


def _check_dlfs(config, results) -> None:
    runs = results["runs"]
    assert len(runs) == config.num_scales
    assert [r["scale"] for r in runs] == pytest.approx(np.logspace(0, -4, config.num_scales))
    assert results["eval_steps"] == [k * config.eval_every for k in range(config.evaluations)]
    for run in runs:
        for key in ("bn", "plain"):
            assert len(run[key]["train_acc"]) == config.evaluations
            assert _in_unit_interval(run[key]["train_acc"])
            # The book's loop: a step, then an evaluation every eval_every steps.
            assert len(run[key]["loss"]) == run["steps"] == (config.evaluations - 1) * config.eval_every + 1


def _check_cs231n_deep(config, results) -> None:
    steps_per_epoch = config.train_size // config.batch_size
    for key in ("bn", "plain"):
        run = results["runs"][key]
        assert len(run["loss"]) == run["steps"] == config.epochs * steps_per_epoch
        # Measured at the first step and at every epoch's end (the last step is one).
        assert len(run["train_acc"]) == len(run["val_acc"]) == config.epochs + 1
        assert _in_unit_interval(run["train_acc"] + run["val_acc"])
        assert run["best_val_acc"] == max(run["val_acc"])
        assert run["best_train_acc"] == max(run["train_acc"])


def _check_cs231n_init_sweep(config, results) -> None:
    assert results["scales"] == pytest.approx(np.logspace(-4, 0, config.num_scales))
    for key in ("bn", "plain"):
        runs = results["runs"][key]
        assert [r["scale"] for r in runs] == pytest.approx(results["scales"])
        for run in runs:
            assert _in_unit_interval([run["best_val_acc"], run["best_train_acc"]])
            window = run["loss"][-config.loss_window:]
            if None not in window:
                assert run["final_loss"] == pytest.approx(np.mean(window))


def _check_init_diagnostics(config, results) -> None:
    assert len(results["runs"]) == config.num_scales
    for run in results["runs"]:
        for key in ("bn", "plain"):
            acts = run[key]["activations"]
            assert len(acts) == len(dlfs_init_sweep.HIDDEN_SIZES)
            for hist, width in zip(acts, dlfs_init_sweep.HIDDEN_SIZES):
                assert len(hist["counts"]) == config.bins
                assert len(hist["log10_edges"]) == config.bins + 1
                assert sum(hist["counts"]) <= config.train_size * width
                assert 0.0 <= hist["zero_fraction"] <= 1.0
            norms = np.array(run[key]["grad_norms"], dtype=float)
            assert norms.shape == (config.iterations, len(dlfs_init_sweep.HIDDEN_SIZES) + 1)
        # BatchNorm keeps every layer's activations at a unit-ish spread at any scale.
        assert all(0.1 < h["std"] < 10 for h in run["bn"]["activations"])


CHECKS = {
    "dlfs-init-sweep": _check_dlfs,
    "cs231n-deep": _check_cs231n_deep,
    "cs231n-init-sweep": _check_cs231n_init_sweep,
    "init-diagnostics": _check_init_diagnostics,
    "gradient-flow": check_gradient_flow,
    "cnn-bn": check_cnn_bn,
}


def test_every_preset_has_a_contents_check():
    assert set(CHECKS) == set(PRESETS)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_quick_preset_writes_png_and_json_with_bn_and_plain_results(name, digits, tmp_path):
    preset = get_preset(name)
    config = preset.config(quick=True)
    result = preset.run(config, jobs=1, out_dir=tmp_path, log=None)

    pngs = [p for p in result.files if p.suffix == ".png"]
    (js,) = [p for p in result.files if p.suffix == ".json"]
    assert pngs and all(p.parent == tmp_path for p in result.files)
    for png in pngs:
        assert png.read_bytes()[:8] == PNG_SIGNATURE
    payload = json.loads(js.read_text())
    assert set(payload) == {"format", "preset", "config", "results", "wall_seconds"}
    assert payload["preset"] == name
    assert payload["config"] == config.to_dict()
    assert payload["results"] == result.results  # in memory == on disk
    CHECKS[name](config, payload["results"])
    assert result.summary.count("\n") >= 1  # a header and at least one row


@pytest.mark.parametrize("name", ["dlfs-init-sweep", "cs231n-init-sweep"])
def test_two_jobs_give_results_identical_to_one_job(name, digits, tmp_path):
    one = run_preset(name, quick=True, jobs=1, out_dir=tmp_path / "one", log=None)
    two = run_preset(name, quick=True, jobs=2, out_dir=tmp_path / "two", log=None)
    assert one.results == two.results


@pytest.mark.parametrize("bn_impl", ["fused", "composed"])
def test_dlfs_sweep_matches_the_hand_written_numpy_network(bn_impl, digits):
    # Same protocol, same random numbers: our autograd, nn layers and optimizer
    # must reproduce hand-written backprop. Losses agree to rounding (float64,
    # 21 steps: far too few for rounding differences to grow visibly).
    reference = _load_numpy_reference()
    config = dlfs_init_sweep.Config.quick(bn_impl=bn_impl)
    x, y = dlfs_init_sweep.training_digits(config)
    for index in range(config.num_scales):
        ours = dlfs_init_sweep.train_pair((config, index))
        with np.errstate(all="ignore"):
            theirs = reference.train_pair(
                x, y, float(config.scales[index]), task_rng(config.seed, index),
                evaluations=config.evaluations, eval_every=config.eval_every,
                batch_size=config.batch_size, lr=config.lr, bn_eps=config.bn_eps)
        for key in ("bn", "plain"):
            np.testing.assert_allclose(ours[key]["loss"], theirs[key]["loss"], rtol=1e-9)
            assert ours[key]["train_acc"] == theirs[key]["train_acc"]


# ---------------------------------------------------------------- building blocks


def test_task_rng_depends_only_on_seed_and_index():
    assert task_rng(3, 1).standard_normal(4) == pytest.approx(task_rng(3, 1).standard_normal(4))
    first = task_rng(3, 1).standard_normal(4)
    assert not np.allclose(first, task_rng(3, 2).standard_normal(4))
    assert not np.allclose(first, task_rng(4, 1).standard_normal(4))


def test_build_mlp_draws_textbook_init_layer_by_layer():
    model = build_mlp(6, [5, 4], 3, 0.5, True, np.random.default_rng(7), "float64")
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU", "Linear"]
    expected = np.random.default_rng(7)
    for layer, (fan_in, fan_out) in zip(common.linear_layers(model), [(6, 5), (5, 4), (4, 3)]):
        w = 0.5 * expected.standard_normal((fan_in, fan_out))
        np.testing.assert_array_equal(layer.weight.data, w.T)  # nn.Linear keeps (out, in)
        assert not layer.bias.data.any()
        assert layer.weight.dtype == np.float64
    for bn in (m for m in model if isinstance(m, nn.BatchNorm1d)):
        assert (bn.weight.data == 1).all() and not bn.bias.data.any()


def test_build_mlp_without_bn_has_no_norm_layers():
    model = build_mlp(6, [5], 3, 1.0, False, np.random.default_rng(0), "float32")
    assert [type(m).__name__ for m in model] == ["Linear", "ReLU", "Linear"]
    assert all(p.dtype == np.float32 for p in model.parameters())


@pytest.mark.parametrize(
    "overrides, field",
    [({"dataset": "imagenet"}, "dataset"), ({"dtype": "float16"}, "dtype"),
     ({"bn_impl": "magic"}, "bn_impl"), ({"num_scales": 0}, "num_scales"),
     ({"seed": -1}, "seed"), ({"evaluations": 2.5}, "evaluations")],
)
def test_bad_config_values_raise_naming_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        dlfs_init_sweep.Config(**overrides)


def test_unknown_option_for_a_preset_lists_its_options():
    with pytest.raises(ValueError, match="no option.*epochs.*its options are"):
        get_preset("dlfs-init-sweep").config(epochs=3)
    with pytest.raises(ValueError, match="unknown preset 'nope'.*dlfs-init-sweep"):
        get_preset("nope")


def _square(x: int) -> int:
    return x * x


def test_run_tasks_keeps_task_order_with_several_workers():
    seen = []
    assert run_tasks(_square, list(range(5)), jobs=2, on_result=lambda i, r: seen.append(i)) == [
        0, 1, 4, 9, 16]
    assert sorted(seen) == list(range(5))


def test_resolve_jobs_caps_at_task_count_and_rejects_negatives():
    assert resolve_jobs(8, 3) == 3
    assert resolve_jobs(0, 100) >= 1
    with pytest.raises(ValueError, match="jobs"):
        resolve_jobs(-1, 3)


def test_json_safe_turns_non_finite_values_into_null():
    out = common.json_safe({"a": np.float32(1.5), "b": [float("nan"), np.inf], "c": np.arange(2)})
    assert out == {"a": 1.5, "b": [None, None], "c": [0, 1]}
    json.dumps(out, allow_nan=False)


def test_dlfs_figure_draws_diverged_runs_as_gaps(tmp_path):
    run = {"scale": 1.0, "bn": {"train_acc": [0.1, 0.5]}, "plain": {"train_acc": [0.1, None]}}
    path = plots.plot_dlfs_init_sweep({"title": "t", "runs": [run, run, run]}, tmp_path / "f.png")
    assert path.read_bytes()[:8] == PNG_SIGNATURE


# ---------------------------------------------------------------- command line


def test_sweep_command_writes_files_and_prints_the_table(digits, tmp_path, capsys):
    rc = cli.main(["sweep", "dlfs-init-sweep", "--quick", "--scales", "1", "--jobs", "1",
                   "--out", str(tmp_path), "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "BN final" in out and str(tmp_path / "dlfs-init-sweep.png") in out
    payload = json.loads((tmp_path / "dlfs-init-sweep.json").read_text())
    assert payload["config"]["num_scales"] == 1


@pytest.mark.parametrize(
    "argv, message",
    [(["sweep", "dlfs-init-sweep", "--epochs", "3"], "--epochs does not apply to dlfs-init-sweep"),
     (["sweep", "dlfs-init-sweep", "--scales", "0"], "--scales"),
     (["sweep", "nope"], "unknown preset 'nope'"),
     (["sweep"], "name a preset")],
)
def test_sweep_command_errors_are_one_line(argv, message, capsys, tmp_path):
    assert cli.main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_sweep_list_names_every_preset(capsys):
    assert cli.main(["sweep", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in PRESETS)


def test_bench_sweep_runs_a_tiny_sweep_and_prints_ratios(digits, capsys):
    rc = cli.main(["bench", "sweep", "--scales", "1", "--evaluations", "1", "--dtype", "float64",
                   "--no-torch"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "tinygrad_bn" in out and "numpy" in out and "vs numpy" in out
    # Same protocol and random numbers: the accuracy curves agree exactly.
    numpy_row = next(line for line in out.splitlines() if line.startswith("float64  numpy"))
    assert numpy_row.split()[-1] == "0.000"


def test_bench_without_a_name_lists_the_benchmarks(capsys):
    assert cli.main(["bench"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("engine", "batchnorm", "sweep"))


def _write_idx(path: Path, magic: int, array: np.ndarray) -> None:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def tiny_mnist_dir(tmp_path) -> Path:
    """Four IDX files in MNIST's format holding 300 training and 50 test images."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    for stem, n in (("train", 300), ("t10k", 50)):
        _write_idx(folder / f"{stem}-images-idx3-ubyte", 2051, rng.integers(0, 256, (n, 28, 28)))
        _write_idx(folder / f"{stem}-labels-idx1-ubyte", 2049, np.arange(n) % 10)
    return tmp_path / "data"


@pytest.mark.parametrize("name", ["dlfs-init-sweep", "cs231n-deep"])
def test_sweep_reads_full_mnist_files_from_the_data_dir(name, tiny_mnist_dir, tmp_path, capsys):
    rc = cli.main(["sweep", name, "--dataset", "mnist", "--data-dir", str(tiny_mnist_dir),
                   "--quick", "--train-size", "100", "--jobs", "1", "--quiet",
                   "--out", str(tmp_path / "out")])
    assert rc == 0, capsys.readouterr().err
    payload = json.loads((tmp_path / "out" / f"{name}.json").read_text())
    assert payload["config"]["dataset"] == "mnist" and payload["config"]["train_size"] == 100


def test_missing_cifar10_is_a_one_line_error_saying_where_it_looked(tmp_path, capsys):
    rc = cli.main(["sweep", "cs231n-deep", "--dataset", "cifar10", "--data-dir",
                   str(tmp_path / "empty"), "--quick", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err
    assert "CIFAR-10" in err and str(tmp_path / "empty") in err
