"""Sweeps on a real Dask cluster on this machine: same results as --jobs 1, a killed worker, resume.

One LocalCluster for the module: two single-threaded worker processes on the
loopback interface (its HTTP server too, on a free port), scratch files under pytest's tmp dir. Every
sweep here is a few tiny tasks; a watchdog ends the run with a traceback if
anything hangs, and the cluster is always closed.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import threading
import time

import psutil
import pytest

distributed = pytest.importorskip("distributed", reason="the cluster tests need dask[distributed]")

from tinygrad_bn import cli  # noqa: E402
from tinygrad_bn.data import DataNotFoundError  # noqa: E402
from tinygrad_bn.experiments import Grid, common, dlfs_init_sweep, run_grid  # noqa: E402
from tinygrad_bn.experiments.dask_executor import DaskExecutor  # noqa: E402

WATCHDOG_SECONDS = 240  # far above the ~20 s the module takes; only a hang gets there
WORKERS = 2
QUICK = dlfs_init_sweep.Config.quick(num_scales=4)
# Tasks long enough (about 0.4 s each on an idle core) to kill a worker in the middle of one.
SLOWER = dlfs_init_sweep.Config(num_scales=3, evaluations=9, train_size=1000)


@pytest.fixture(scope="module", autouse=True)
def watchdog():
    """Dump every thread's traceback and exit if the module runs far too long."""
    faulthandler.dump_traceback_later(WATCHDOG_SECONDS, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(scope="module")
def digits() -> None:
    """Skip (with the reason) when the embedded digits cannot be loaded."""
    try:
        common.load_dataset("mnist5k")
    except DataNotFoundError as err:
        pytest.skip(f"the embedded MNIST digits are unavailable: {err}")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """A client of a 2-worker LocalCluster on 127.0.0.1; closed (and its processes gone) after."""
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    cluster = distributed.LocalCluster(
        n_workers=WORKERS, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address="127.0.0.1:0", memory_limit="1GiB",
        local_directory=str(tmp_path_factory.mktemp("dask")),
    )
    try:
        with distributed.Client(cluster) as c:
            yield c
    finally:
        cluster.close()
    left = [p for p in psutil.Process().children(recursive=True)
            if p.pid not in before and "resource_tracker" not in " ".join(p.cmdline())]
    _, alive = psutil.wait_procs(left, timeout=15)
    assert not alive, f"cluster processes left running: {[p.pid for p in alive]}"


@pytest.fixture
def ready(client):
    """The client, once both workers are up (a test may have killed one)."""
    client.wait_for_workers(WORKERS, timeout=60)
    return client


@pytest.fixture(scope="module")
def one_job(digits, tmp_path_factory):
    """The --jobs 1 results every cluster run must reproduce, by config."""
    out = tmp_path_factory.mktemp("one-job")
    return {name: dlfs_init_sweep.run(config, jobs=1, out_dir=out / name, log=None)
            for name, config in (("quick", QUICK), ("slower", SLOWER))}


def test_cluster_sweep_gives_exactly_the_one_job_results(ready, one_job, tmp_path):
    result = dlfs_init_sweep.run(QUICK, executor=ready, out_dir=tmp_path, log=None)
    assert result.results == one_job["quick"].results
    assert result.summary == one_job["quick"].summary
    csv_name = "dlfs-init-sweep.csv"
    assert (tmp_path / csv_name).read_text() == (one_job["quick"].run_dir.parents[1] / csv_name).read_text()


def test_grid_on_the_scheduler_address_matches_one_job(ready, digits, tmp_path):
    g = Grid("dlfs", {"weight_scale": [1.0, 0.01], "norm": ["batch", "none"]}, seeds=2, quick=True)
    local = run_grid(g, jobs=1, out_dir=tmp_path / "one", log=None)
    remote = run_grid(g, executor=ready.scheduler.address, out_dir=tmp_path / "cluster", log=None)
    assert remote.results == local.results
    tables = [(tmp_path / run / "results.csv").read_text() for run in ("one", "cluster")]
    assert tables[0] == tables[1]


def _kill_a_worker_mid_task(client: distributed.Client, killed: list) -> None:
    """Wait until a worker is running one of our tasks, then SIGKILL its process."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for address, keys in client.processing().items():
            if any(str(k).startswith("tinygrad_bn-task") for k in keys):
                pid = client.run(os.getpid, workers=[address])[address]
                os.kill(pid, signal.SIGKILL)
                killed.append((pid, list(keys)))
                return
        time.sleep(0.02)


def test_killed_worker_is_replaced_and_the_results_are_identical(ready, one_job, tmp_path):
    killed: list = []
    killer = threading.Thread(target=_kill_a_worker_mid_task, args=(ready, killed), daemon=True)
    killer.start()
    result = dlfs_init_sweep.run(SLOWER, executor=ready, out_dir=tmp_path, log=None)
    killer.join(timeout=60)
    (pid, keys), = killed
    assert keys, "the worker was killed while it held a task"
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert result.results == one_job["slower"].results
    ready.wait_for_workers(WORKERS, timeout=60)  # the nanny restarted it


def test_interrupted_cluster_sweep_resumes_to_the_same_table(ready, one_job, tmp_path):
    finished: list[str] = []

    def interrupt_after_two(line: str) -> None:
        if "train accuracy" in line:
            finished.append(line)
            if len(finished) == 2:
                raise KeyboardInterrupt  # what Ctrl-C does in the middle of the loop

    with pytest.raises(KeyboardInterrupt):
        dlfs_init_sweep.run(QUICK, executor=ready, out_dir=tmp_path, log=interrupt_after_two)
    lines: list[str] = []
    resumed = dlfs_init_sweep.run(QUICK, executor=ready, out_dir=tmp_path, log=lines.append)
    assert resumed.skipped == 2 and any("2 of 4 tasks already done, 2 to run" in x for x in lines)
    assert resumed.results == one_job["quick"].results
    assert resumed.summary == one_job["quick"].summary
    csv_name = "dlfs-init-sweep.csv"
    assert (tmp_path / csv_name).read_text() == (one_job["quick"].run_dir.parents[1] / csv_name).read_text()


def test_scheduler_local_command_starts_and_closes_its_own_cluster(digits, one_job, tmp_path, capsys):
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    rc = cli.main(["sweep", "dlfs-init-sweep", "--quick", "--scales", "4", "--scheduler", "local",
                   "--jobs", "2", "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "Dask cluster at tcp://127.0.0.1:" in captured.err and "2 workers" in captured.err
    assert one_job["quick"].summary in captured.out
    left = [p for p in psutil.Process().children(recursive=True)
            if p.pid not in before and "resource_tracker" not in " ".join(p.cmdline())]
    _, alive = psutil.wait_procs(left, timeout=15)
    assert not alive


def test_executor_wrapping_a_callers_client_leaves_it_open(ready):
    executor = DaskExecutor(ready)
    executor.close()
    assert ready.status == "running"


def _listening_addresses() -> set[str]:
    processes = [psutil.Process(), *psutil.Process().children(recursive=True)]
    return {conn.laddr.ip for p in processes for conn in p.net_connections(kind="inet")
            if conn.status == psutil.CONN_LISTEN}


def test_local_cluster_listens_on_loopback_only(tmp_path):
    executor = DaskExecutor.start_local(1, local_directory=str(tmp_path))
    try:
        assert executor.runs_here and "1 worker" in executor.description
        assert _listening_addresses() <= {"127.0.0.1"}
    finally:
        executor.close()


def test_bench_sweep_executors_reports_identical_results(digits, capsys):
    rc = cli.main(["bench", "sweep", "--executors", "--scales", "2", "--evaluations", "2"])
    out = capsys.readouterr().out
    assert rc == 0
    rows = [line for line in out.splitlines() if line.startswith("--")][1:]  # after the rule
    assert [row.split()[:2] for row in rows] == [["--jobs", "1"], ["--jobs", "2"],
                                                 ["--scheduler", "local"]]
    assert all(row.split()[-1] == "yes" for row in rows)


def test_cluster_without_workers_fails_the_tasks_instead_of_waiting(tmp_path, monkeypatch):
    from tinygrad_bn.experiments import dask_executor

    monkeypatch.setattr(dask_executor, "POLL_SECONDS", 0.1)
    cluster = distributed.LocalCluster(n_workers=0, processes=True, host="127.0.0.1",
                                       dashboard_address="127.0.0.1:0",
                                       local_directory=str(tmp_path))
    try:
        with distributed.Client(cluster) as c:
            executor = DaskExecutor(c, no_worker_timeout=0.5)
            executor.submit(0, abs, -1)
            executor.submit(1, abs, -2)
            outcomes = list(executor.results())
            executor.close()
    finally:
        cluster.close()
    assert sorted(o.key for o in outcomes) == [0, 1]
    assert all(not o.ok and "no worker connected to the scheduler" in o.error for o in outcomes)
