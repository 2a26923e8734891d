"""Run a sweep's tasks on an executor: skip the finished ones, save each result, retry failures once.

    with open_executor(executor, jobs, len(tasks)) as ex:
        outcome = run_sweep(fn, tasks, ex, store=store, params=..., log=print)

`open_executor` turns what the caller asked for into an executor: None (local
processes, `jobs` of them, or this process for one job), "local" (a Dask
LocalCluster started for the run), a scheduler address ("tcp://host:8786"), a
`distributed.Client`, or any object with the `parallel.Executor` methods.
`run_sweep` never hangs on a failed task: it reports the task with its
parameters, retries it once, and returns the failures for the caller to list.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from tinygrad_bn.experiments.parallel import (
    Executor,
    ProcessExecutor,
    SerialExecutor,
    can_limit_blas_in_process,
    resolve_jobs,
)
from tinygrad_bn.experiments.progress import Progress
from tinygrad_bn.experiments.records import json_safe
from tinygrad_bn.experiments.store import RunStore

RETRIES = 1  # a failed task runs once more before it is listed as failed


@contextlib.contextmanager
def open_executor(executor: Any = None, jobs: int | None = 1, n_tasks: int = 1) -> Iterator[Executor]:
    """The executor for `executor` (see the module docstring); closed afterwards if we opened it."""
    if _is_executor(executor):
        yield executor
        return
    if _is_dask_client(executor):
        from tinygrad_bn.experiments.dask_executor import DaskExecutor

        yield DaskExecutor(executor)  # the caller's client: left open
        return
    if executor is None:
        workers = resolve_jobs(jobs, n_tasks)
        opened: Executor = (SerialExecutor() if workers == 1 and can_limit_blas_in_process()
                            else ProcessExecutor(workers))
    elif isinstance(executor, str) and executor.strip():
        from tinygrad_bn.experiments.dask_executor import DaskExecutor

        if executor.strip() == "local":
            opened = DaskExecutor.start_local(resolve_jobs(jobs, n_tasks))
        else:
            opened = DaskExecutor.connect(executor.strip())
    else:
        raise TypeError(
            "executor must be None (local processes), 'local' (a Dask LocalCluster), a Dask "
            "scheduler address like 'tcp://host:8786', a distributed.Client or an Executor; "
            f"got {executor!r}"
        )
    try:
        yield opened
    finally:
        opened.close()


def _is_executor(obj: Any) -> bool:
    return all(callable(getattr(obj, name, None)) for name in ("submit", "results", "running", "close"))


def _is_dask_client(obj: Any) -> bool:
    return type(obj).__module__.startswith("distributed") and hasattr(obj, "scheduler_info")


# ---------------------------------------------------------------- the loop


@dataclass
class Failure:
    """A task that failed on every attempt."""

    key: int
    params: dict[str, Any]
    error: str
    attempts: int

    def line(self) -> str:
        """One line: the task, its parameters, the last error."""
        return f"task {self.key} ({describe_params(self.params)}): {self.error}"


@dataclass
class SweepOutcome:
    """What `run_sweep` ends with: results by task key (JSON form), skipped count, failures."""

    results: dict[int, Any]
    skipped: int
    failures: list[Failure] = field(default_factory=list)


class SweepFailed(RuntimeError):
    """Some tasks failed twice; the others are saved and a rerun retries only the failed ones."""

    def __init__(self, failures: list[Failure], total: int, where: str) -> None:
        self.failures = failures
        lines = [f"{len(failures)} of {total} tasks failed (each tried {1 + RETRIES} times); the "
                 f"others are saved in {where}, and running the same command again retries only "
                 "the failed ones:"]
        super().__init__("\n".join(lines + [f"  {f.line()}" for f in failures]))


def describe_params(params: dict[str, Any]) -> str:
    """'scale=0.01, seed=0': a task's parameters for log lines."""
    def value(v: Any) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    return ", ".join(f"{k}={value(v)}" for k, v in params.items()) or "no parameters"


def run_sweep(
    fn: Callable[[Any], Any],
    tasks: Sequence[Any],
    executor: Executor,
    *,
    store: RunStore | None = None,
    params: Callable[[int], dict[str, Any]] = lambda i: {},
    on_result: Callable[[int, Any], str | None] | None = None,
    log: Callable[[str], None] | None = None,
    bar: bool | None = None,
) -> SweepOutcome:
    """Run fn(tasks[i]) for every task not already in `store`; save each result as it arrives.

    `on_result(i, result)` returns the log line of a finished task. Results are
    kept in JSON form (NaN as None, tuples as lists), the same whether a task ran
    now or was read back from the store.
    """
    results = store.finished() if store is not None else {}
    for warning in store.warnings if store is not None else ():
        if log:
            log(warning)
    skipped = len(results)
    if store is not None and log and skipped:
        log(f"resuming {store.path}: {skipped} of {len(tasks)} tasks already done, "
            f"{len(tasks) - skipped} to run")
    elif store is not None and log:
        log(f"saving each task's result in {store.path} as it finishes")
    progress = Progress(len(tasks), skipped, log, executor.running, bar)
    attempts: Counter[int] = Counter()
    failures: list[Failure] = []
    try:
        for i in range(len(tasks)):
            if i not in results:
                executor.submit(i, fn, tasks[i])
        progress.refresh()
        for outcome in executor.results():
            i = outcome.key
            if outcome.ok:
                results[i] = json_safe(outcome.result)
                if store is not None:
                    store.save(i, params(i), results[i], outcome.seconds, outcome.cpu_seconds)
                progress.task_done(on_result(i, outcome.result) if on_result else None)
                continue
            attempts[i] += 1
            retry = attempts[i] <= RETRIES
            if store is not None:
                store.save_failure(i, params(i), outcome.error, outcome.details)
            progress.task_failed(f"task {i} ({describe_params(params(i))}) failed: {outcome.error}"
                                 f"{'; retrying it' if retry else ''}", final=not retry)
            if retry:
                executor.submit(i, fn, tasks[i])
            else:
                failures.append(Failure(i, params(i), outcome.error, attempts[i]))
    except KeyboardInterrupt:
        if store is not None:
            progress.say(f"interrupted: {len(results)} of {len(tasks)} tasks are saved in "
                         f"{store.path}; run the same command again to resume")
        raise
    finally:
        progress.close()
    return SweepOutcome(results, skipped, sorted(failures, key=lambda f: f.key))


def run_tasks(
    fn: Callable[[Any], Any],
    tasks: Sequence[Any],
    jobs: int | None = 1,
    on_result: Callable[[int, Any], None] | None = None,
    executor: Any = None,
) -> list[Any]:
    """[fn(t) for t in tasks] on an executor (default `jobs` local processes); raise if any fails.

    `fn` must be a module-level function and the tasks picklable (they travel to
    the workers). `on_result(i, r)` is called as each one finishes. Results are
    returned as `fn` returned them, in task order.
    """
    results: list[Any] = [None] * len(tasks)
    failures: list[str] = []
    with open_executor(executor, jobs, len(tasks)) as ex:
        for i, task in enumerate(tasks):
            ex.submit(i, fn, task)
        for outcome in ex.results():
            if not outcome.ok:
                failures.append(f"task {outcome.key}: {outcome.error}")
                continue
            results[outcome.key] = outcome.result
            if on_result is not None:
                on_result(outcome.key, outcome.result)
    if failures:
        raise RuntimeError(f"{len(failures)} of {len(tasks)} tasks failed: " + "; ".join(failures))
    return results
