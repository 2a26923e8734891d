"""Sweeps on this machine: executors, failures and retries, resumable run directories, grids, CLI."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from tinygrad_bn import cli
from tinygrad_bn.data import DataNotFoundError
from tinygrad_bn.experiments import Grid, common, dlfs_init_sweep, grid, run_grid, run_preset
from tinygrad_bn.experiments.parallel import ProcessExecutor, SerialExecutor
from tinygrad_bn.experiments.progress import Progress
from tinygrad_bn.experiments.runner import SweepFailed, open_executor, run_sweep
from tinygrad_bn.experiments.store import RunStore


@pytest.fixture(scope="module")
def digits() -> None:
    """Skip (with the reason) when the embedded digits cannot be loaded."""
    try:
        common.load_dataset("mnist5k")
    except DataNotFoundError as err:
        pytest.skip(f"the embedded MNIST digits are unavailable: {err}")


try:
    import psutil  # comes with dask[distributed]; without it the process check is skipped
except ImportError:
    psutil = None


@pytest.fixture
def no_leftover_processes():
    """Fail if the test leaves child processes of this one running (needs psutil)."""
    if psutil is None:
        yield
        return
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    # multiprocessing's resource tracker is one helper per interpreter, started on first use.
    left = [p for p in psutil.Process().children(recursive=True)
            if p.pid not in before and "resource_tracker" not in " ".join(p.cmdline())]
    gone, alive = psutil.wait_procs(left, timeout=10)
    assert not alive, f"left running: {[p.cmdline() for p in alive]}"


# ---------------------------------------------------------------- task functions (picklable)


def _square(x: int) -> int:
    return x * x


def _fail_on_three(x: int) -> int:
    if x == 3:
        raise ZeroDivisionError(f"task three always fails ({x})")
    return x * x


def _die_on_first_attempt(spec: tuple[str, int]) -> int:
    """Kill this worker process the first time task 1 runs (a marker file remembers)."""
    marker_dir, x = spec
    marker = Path(marker_dir) / f"attempted-{x}"
    if x == 1 and not marker.exists():
        marker.write_text("once")
        os._exit(17)  # no exception, no cleanup: what a segfault or the OOM killer looks like
    return x * x


def _always_die(x: int) -> int:
    if x == 0:
        os._exit(17)
    return x


# ---------------------------------------------------------------- executors and the loop


def _collect(executor, fn, specs):
    for key, spec in enumerate(specs):
        executor.submit(key, fn, spec)
    return {o.key: o for o in executor.results()}


@pytest.mark.parametrize("make", [SerialExecutor, lambda: ProcessExecutor(2)])
def test_executor_yields_every_outcome_and_keeps_errors_in_the_worker(make, no_leftover_processes):
    executor = make()
    try:
        outcomes = _collect(executor, _fail_on_three, range(5))
    finally:
        executor.close()
    assert {k: o.result for k, o in outcomes.items() if o.ok} == {0: 0, 1: 1, 2: 4, 4: 16}
    failed = outcomes[3]
    assert not failed.ok and failed.error == "ZeroDivisionError: task three always fails (3)"
    assert "_fail_on_three" in failed.details  # the worker's traceback travels back


def test_failed_task_is_reported_with_its_parameters_retried_once_and_listed():
    lines: list[str] = []
    calls: list[int] = []

    def counting(x: int) -> int:
        calls.append(x)
        return _fail_on_three(x)

    with open_executor(SerialExecutor()) as executor:
        outcome = run_sweep(counting, list(range(5)), executor,
                            params=lambda i: {"x": i, "seed": 7}, log=lines.append)
    assert calls.count(3) == 2 and sorted(set(calls)) == [0, 1, 2, 3, 4]
    assert outcome.results == {0: 0, 1: 1, 2: 4, 4: 16}
    (failure,) = outcome.failures
    assert failure.key == 3 and failure.attempts == 2 and failure.params == {"x": 3, "seed": 7}
    reports = [line for line in lines if "failed" in line]
    assert len(reports) == 2 and "x=3, seed=7" in reports[0] and "retrying" in reports[0]
    assert "retrying" not in reports[1]


def test_dead_local_worker_is_reported_and_the_tasks_it_took_down_are_retried(
    tmp_path, no_leftover_processes
):
    specs = [(str(tmp_path), x) for x in range(4)]
    lines: list[str] = []
    with open_executor(ProcessExecutor(2)) as executor:
        outcome = run_sweep(_die_on_first_attempt, specs, executor, log=lines.append)
    assert outcome.results == {0: 0, 1: 1, 2: 4, 3: 9} and not outcome.failures
    assert any("worker process died" in line and "retrying" in line for line in lines)


def test_a_task_that_always_kills_its_worker_ends_the_sweep_listed_not_hanging(no_leftover_processes):
    with open_executor(ProcessExecutor(1)) as executor:
        outcome = run_sweep(_always_die, [0, 1, 2], executor)
    assert outcome.results == {1: 1, 2: 2}
    assert [f.key for f in outcome.failures] == [0] and "worker process died" in outcome.failures[0].error


def test_run_tasks_raises_naming_the_failed_task():
    from tinygrad_bn.experiments import run_tasks

    with pytest.raises(RuntimeError, match="1 of 5 tasks failed: task 3: ZeroDivisionError"):
        run_tasks(_fail_on_three, list(range(5)), jobs=1)


def test_open_executor_rejects_what_it_cannot_run_on():
    with pytest.raises(TypeError, match="executor must be None.*got 3"):
        with open_executor(3):
            pass


# ---------------------------------------------------------------- the run directory


def _store(tmp_path, **config) -> RunStore:
    return RunStore.open(tmp_path, "demo", {"experiment": "demo", "config": config, "tasks": 3})


def test_store_resumes_only_its_own_run_and_a_changed_config_gets_a_fresh_directory(tmp_path):
    store = _store(tmp_path, lr=0.1)
    store.save(1, {"x": 1}, {"value": [1.5, None]}, 0.2)
    again = _store(tmp_path, lr=0.1)
    assert again.path == store.path and again.finished() == {1: {"value": [1.5, None]}}
    other = _store(tmp_path, lr=0.2)
    assert other.path != store.path and other.finished() == {}


def test_store_refuses_a_directory_recorded_for_another_run(tmp_path):
    store = _store(tmp_path, lr=0.1)
    payload = json.loads((store.path / "run.json").read_text())
    payload["record"]["config"]["lr"] = 0.5  # as if copied from another run
    (store.path / "run.json").write_text(json.dumps(payload))
    with pytest.raises(ValueError, match="holds a different run.*refusing to mix"):
        _store(tmp_path, lr=0.1)


def test_store_ignores_damaged_or_foreign_task_files_and_says_so(tmp_path):
    store = _store(tmp_path, lr=0.1)
    store.save(0, {}, {"ok": 1}, 0.1)
    store.task_file(1).write_text('{"format": 1, "run": "someone-else", "task": 1, "result": 2}')
    store.task_file(2).write_text('{"format": 1, "ru')  # truncated by hand
    assert store.finished() == {0: {"ok": 1}}
    assert len(store.warnings) == 2 and all("runs again" in w for w in store.warnings)


def test_failed_task_leaves_its_traceback_until_it_succeeds(tmp_path):
    store = _store(tmp_path, lr=0.1)
    store.save_failure(2, {"x": 2}, "ValueError: bad", "Traceback ...")
    assert "ValueError: bad" in store.error_file(2).read_text()
    store.save(2, {"x": 2}, 4, 0.1)
    assert not store.error_file(2).exists()


def test_preset_rerun_skips_finished_tasks_and_says_how_many(digits, tmp_path):
    first = run_preset("dlfs-init-sweep", quick=True, num_scales=3, out_dir=tmp_path, log=None)
    (first.run_dir / "task-00001.json").unlink()  # as if the run had been killed before it
    lines: list[str] = []
    second = run_preset("dlfs-init-sweep", quick=True, num_scales=3, out_dir=tmp_path,
                        log=lines.append)
    assert second.skipped == 2 and second.results == first.results
    assert any("2 of 3 tasks already done, 1 to run" in line for line in lines)
    assert sum("scale" in line and "train accuracy" in line for line in lines) == 1


def test_interrupted_local_sweep_resumes_to_the_same_results(digits, tmp_path):
    reference = run_preset("dlfs-init-sweep", quick=True, num_scales=4, out_dir=tmp_path / "ref",
                           log=None)
    finished = []

    def interrupt_after_two(line: str) -> None:
        if "train accuracy" in line:
            finished.append(line)
            if len(finished) == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_preset("dlfs-init-sweep", quick=True, num_scales=4, jobs=1, out_dir=tmp_path / "run",
                   log=interrupt_after_two)
    assert not (tmp_path / "run" / "dlfs-init-sweep.json").exists()
    resumed = run_preset("dlfs-init-sweep", quick=True, num_scales=4, jobs=2,
                         out_dir=tmp_path / "run", log=None)
    assert resumed.skipped == 2
    assert resumed.results == reference.results and resumed.summary == reference.summary
    tables = [(tmp_path / run / "dlfs-init-sweep.csv").read_text() for run in ("ref", "run")]
    assert tables[0] == tables[1]


def _broken_train_pair(task):
    if task[1] == 1:
        raise FloatingPointError("diverged beyond repair")
    return dlfs_init_sweep.train_pair(task)


def test_preset_with_a_failing_task_saves_the_others_and_raises_listing_it(digits, tmp_path):
    broken = dataclasses.replace(dlfs_init_sweep.EXPERIMENT, run_task=_broken_train_pair)
    config = dlfs_init_sweep.Config.quick(num_scales=3)
    with pytest.raises(SweepFailed, match=r"1 of 3 tasks failed.*\n  task 1 \(seed=0, scale=0.01\): "
                                          r"FloatingPointError: diverged beyond repair") as info:
        broken.run(config, out_dir=tmp_path, log=None)
    assert [f.key for f in info.value.failures] == [1]
    run_dir = next((tmp_path / "runs").iterdir())
    assert sorted(p.name for p in run_dir.glob("task-*")) == [
        "task-00000.json", "task-00001.error.txt", "task-00002.json"]
    fixed = dlfs_init_sweep.run(config, out_dir=tmp_path, log=None)  # the same run, resumed
    assert fixed.skipped == 2 and len(fixed.results["runs"]) == 3


def test_preset_csv_has_a_row_per_task_net_and_evaluation(digits, tmp_path):
    result = run_preset("dlfs-init-sweep", quick=True, out_dir=tmp_path, log=None)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "dlfs-init-sweep.csv").read_text())))
    config = dlfs_init_sweep.Config.quick()
    assert len(rows) == config.num_scales * 2 * config.evaluations
    for row in rows:
        run = result.results["runs"][int(row["task"])]
        curve = run[row["net"]]
        k = int(row["evaluation"])
        assert float(row["scale"]) == run["scale"] and int(row["seed"]) == 0
        assert float(row["train_acc"]) == curve["train_acc"][k]
        assert _number(row["loss"]) == curve["loss"][k * config.eval_every]  # None: diverged


def _number(text: str) -> float | None:
    return None if text == "" else float(text)


# ---------------------------------------------------------------- progress


def test_progress_counts_and_eta_prefix_the_log_lines():
    lines: list[str] = []
    progress = Progress(total=4, skipped=1, log=lines.append, running=lambda: 2, bar=False)
    progress.task_done("first")
    progress.task_failed("second broke; retrying", final=False)
    progress.task_failed("second broke", final=True)
    assert lines[0].startswith("[2/4, ETA ") and lines[0].endswith("] first")
    assert progress.failed == 1 and progress.eta_seconds() is not None


def test_progress_bar_shows_done_running_and_failed(capsys):
    pytest.importorskip("tqdm")
    progress = Progress(total=3, skipped=1, log=print, running=lambda: 2, bar=True)
    progress.task_done("one")
    progress.task_failed("two broke", final=True)
    progress.close()
    err = capsys.readouterr().err
    assert "2/3" in err and "running 2" in err and "failed 1" in err and "two broke" in err


# ---------------------------------------------------------------- grids


def test_parse_values_understands_spaces_ranges_and_lists():
    assert grid.parse_values("logspace:0:-4:16") == pytest.approx(np.logspace(0, -4, 16))
    assert grid.parse_values("linspace:0:1:3") == [0.0, 0.5, 1.0]
    assert grid.parse_values("range:1:7:2") == [1, 3, 5]
    assert grid.parse_values("batch,none") == ["batch", "none"]
    assert grid.parse_param("lr=0.01,0.1") == ("lr", ["0.01", "0.1"])


@pytest.mark.parametrize("text, message", [
    ("logspace:0:-4", "logspace:START:STOP:N"), ("linspace:a:1:3", "must be numbers"),
    ("range:0:1.5", "integers"), ("a,,b", "empty value"), ("range:5:1", "gives no values"),
])
def test_parse_values_errors_say_what_was_expected(text, message):
    with pytest.raises(ValueError, match=message):
        grid.parse_values(text)


@pytest.mark.parametrize("params, seeds, message", [
    ({"momentum": [0.9]}, 1, "no parameter 'momentum'.*its parameters are.*weight_scale"),
    ({"seed": [1, 2]}, 1, "seed is not a grid parameter.*--seeds"),
    ({"lr": ["fast"]}, 1, "lr takes a number, got 'fast'"),
    ({"width": [2.5]}, 1, "width takes an integer"),
    ({"norm": ["group"]}, 1, "norm must be one of batch, layer, none"),
    ({"weight_scale": [0.0]}, 1, "weight_scale must be a positive number"),
    ({"lr": []}, 1, "lr has no values"),
    ({}, 0, "seeds must be a positive count"),
])
def test_bad_grids_raise_naming_the_parameter(params, seeds, message):
    with pytest.raises(ValueError, match=message):
        Grid("dlfs", params, seeds=seeds)


def test_grid_tasks_cover_every_point_and_seed_with_their_own_streams():
    g = Grid("dlfs", {"weight_scale": [1.0, 0.1], "norm": "batch,none", "lr": 0.05}, seeds=[3, 4])
    tasks = g.tasks()
    assert len(tasks) == 2 * 2 * 2 and set(g.axes) == {"weight_scale", "norm"}
    assert [(t[0].weight_scale, t[0].norm, t[0].seed, t[1]) for t in tasks[:3]] == [
        (1.0, "batch", 3, 0), (1.0, "batch", 4, 0), (1.0, "none", 3, 1)]
    assert all(t[0].lr == 0.05 for t in tasks)


def test_grid_file_toml_and_json_give_the_same_grid_as_python(tmp_path):
    (tmp_path / "g.toml").write_text('preset = "cs231n"\nseeds = 2\n[params]\n'
                                     'weight_scale = "logspace:-3:-1:3"\nnorm = ["batch", "none"]\n'
                                     'epochs = 2\n')
    (tmp_path / "g.json").write_text(json.dumps({"preset": "cs231n", "seeds": 2, "params": {
        "weight_scale": "logspace:-3:-1:3", "norm": ["batch", "none"], "epochs": 2}}))
    direct = Grid("cs231n", {"weight_scale": np.logspace(-3, -1, 3), "norm": ["batch", "none"],
                             "epochs": 2}, seeds=2)
    assert Grid.from_file(tmp_path / "g.toml").to_dict() == direct.to_dict()
    assert Grid.from_file(tmp_path / "g.json").to_dict() == direct.to_dict()


def test_grid_file_with_an_unknown_key_is_refused(tmp_path):
    (tmp_path / "g.toml").write_text('preset = "dlfs"\nlearning_rates = [0.1]\n')
    with pytest.raises(ValueError, match="unknown key.*learning_rates"):
        Grid.from_file(tmp_path / "g.toml")


def test_grid_run_writes_one_tidy_row_per_task_and_evaluation(digits, tmp_path):
    g = Grid("dlfs", {"weight_scale": [1.0, 0.01], "norm": ["batch", "layer", "none"]}, seeds=2,
             quick=True)
    one = run_grid(g, jobs=1, out_dir=tmp_path / "one", log=None)
    two = run_grid(g, jobs=2, out_dir=tmp_path / "two", log=None)
    assert one.results == two.results  # independent of the worker count
    assert (tmp_path / "one" / "results.csv").read_text() == (tmp_path / "two" / "results.csv").read_text()
    rows = list(csv.DictReader(io.StringIO((tmp_path / "one" / "results.csv").read_text())))
    evaluations = dlfs_init_sweep.Config.quick().evaluations
    assert len(rows) == 2 * 3 * 2 * evaluations
    assert set(rows[0]) == {"task", "seed", "weight_scale", "norm", "evaluation", "step",
                            "train_acc", "loss"}
    by_task = {run["task"]: run for run in one.results["runs"]}
    for row in rows:
        run = by_task[int(row["task"])]
        assert row["norm"] == run["params"]["norm"] and int(row["seed"]) == run["seed"]
        assert float(row["train_acc"]) == run["train_acc"][int(row["evaluation"])]
    # Seeds are independent repetitions: the same point, different numbers.
    assert by_task[0]["loss"] != by_task[1]["loss"]
    assert "weight_scale" in one.summary and one.summary.count("\n") == 6
    assert (tmp_path / "one" / "grid-dlfs.png").read_bytes()[:4] == b"\x89PNG"


def test_grid_task_is_one_net_trained_with_the_presets_loop(digits):
    # A grid point with norm=batch draws its weights and batches exactly like the BN
    # half of a preset pair would if it trained alone: same builder, same loop.
    config = grid.DlfsNet.quick(weight_scale=0.1, seed=5)
    result = grid.train_dlfs_net((config, 2, {}))
    pair = dlfs_init_sweep.BookPair.build(config, 2, 0.1, {"net": "batch"})
    expected = pair.train(config.evaluations, config.eval_every, config.batch_size)
    assert [e["train_acc"] for e in result["evaluations"]] == expected["net"]["train_acc"]
    assert result["steps"] == expected["steps"] == (config.evaluations - 1) * config.eval_every + 1


def _grid_task_failing_for_layer_norm(task):
    if task[0].norm == "layer":
        raise MemoryError("pretend the layer-norm nets do not fit")
    return grid.train_dlfs_net(task)


def test_grid_with_failing_tasks_writes_the_others_and_lists_them(digits, tmp_path):
    g = Grid("dlfs", {"norm": ["batch", "layer"]}, seeds=2, quick=True)
    broken = dataclasses.replace(grid.EXPERIMENTS["dlfs"], run_task=_grid_task_failing_for_layer_norm)
    result = broken.run(g, out_dir=tmp_path, log=None)
    assert [(f.key, f.params["norm"], f.attempts) for f in result.failures] == [
        (2, "layer", 2), (3, "layer", 2)]
    assert "MemoryError: pretend" in result.failures[0].line()
    rows = list(csv.DictReader(io.StringIO((tmp_path / "results.csv").read_text())))
    assert {r["task"] for r in rows} == {"0", "1"} and {r["norm"] for r in rows} == {"batch"}
    assert [run["task"] for run in result.results["runs"]] == [0, 1]


def test_cs231n_grid_rows_hold_validation_accuracy(digits, tmp_path):
    g = Grid("cs231n", {"weight_scale": [0.02], "norm": ["batch", "none"]}, quick=True)
    result = run_grid(g, out_dir=tmp_path, log=None)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "results.csv").read_text())))
    assert len(rows) == 2 * (grid.Cs231nNet.quick().epochs + 1)
    assert all(0 <= float(r["val_acc"]) <= 1 for r in rows)
    assert result.results["metric"] == "val_acc"


# ---------------------------------------------------------------- command line


def test_sweep_grid_command_runs_the_grid_and_resumes(digits, tmp_path, capsys):
    argv = ["sweep", "grid", "--preset", "dlfs", "--param", "weight_scale=logspace:0:-2:2",
            "--param", "norm=batch,none", "--seeds", "2", "--seed", "10", "--quick", "--jobs", "1",
            "--out", str(tmp_path)]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "results.csv" in out and "norm" in out
    rows = list(csv.DictReader(io.StringIO((tmp_path / "results.csv").read_text())))
    assert {r["seed"] for r in rows} == {"10", "11"}
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert "8 of 8 tasks already done, 0 to run" in captured.err and "8 task(s) resumed" in captured.out


def test_sweep_grid_command_reads_a_grid_file_and_lets_options_override_it(digits, tmp_path, capsys):
    (tmp_path / "g.toml").write_text('preset = "dlfs"\nseeds = 3\n[params]\nlr = [0.01, 0.1]\n'
                                     'norm = "batch"\n')
    assert cli.main(["sweep", "grid", "--file", str(tmp_path / "g.toml"), "--param", "lr=0.05",
                     "--seeds", "1", "--quick", "--train-size", "100", "--jobs", "1", "--quiet",
                     "--out", str(tmp_path / "out")]) == 0
    payload = json.loads((tmp_path / "out" / "grid-dlfs.json").read_text())
    assert payload["config"]["params"] == {"lr": [0.05], "norm": ["batch"], "train_size": [100]}
    assert payload["config"]["seeds"] == [0]


@pytest.mark.parametrize("argv, message", [
    (["sweep", "grid", "--param", "lr=0.1"], "name the grid's training protocol"),
    (["sweep", "grid", "--preset", "dlfs", "--param", "lr"], "expected NAME=VALUES"),
    (["sweep", "grid", "--preset", "dlfs", "--param", "depthh=2"], "no parameter 'depthh'"),
    (["sweep", "grid", "--preset", "dlfs", "--scales", "3"], "--scales/--iterations are for presets"),
    (["sweep", "grid", "--preset", "dlfs", "--epochs", "3"], "no parameter 'epochs'"),
    (["sweep", "grid", "--file", "/nonexistent/g.toml"], "cannot read the grid file"),
    (["sweep", "dlfs-init-sweep", "--param", "lr=0.1"], "--param is for grids"),
    (["sweep", "dlfs-init-sweep", "--scheduler", "tcp://127.0.0.1:1", "--jobs", "2"],
     "--jobs does not apply to --scheduler ADDRESS"),
])
def test_sweep_grid_errors_are_one_line(argv, message, capsys, tmp_path):
    assert cli.main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_without_dask_scheduler_says_what_to_install(monkeypatch, capsys, tmp_path):
    # A None entry in sys.modules makes `import distributed` raise ImportError,
    # exactly as on a machine where it is not installed.
    monkeypatch.setitem(sys.modules, "distributed", None)
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    assert cli.main(["sweep", "dlfs-init-sweep", "--quick", "--scheduler", "local",
                     "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "needs dask.distributed" in err and "pip install 'tinygrad_bn[distributed]'" in err
    with pytest.raises(RuntimeError, match=r"pip install 'tinygrad_bn\[distributed\]'"):
        run_preset("dlfs-init-sweep", quick=True, executor="local", out_dir=tmp_path, log=None)
    assert not (tmp_path / "dlfs-init-sweep.json").exists()
