"""Run independent training tasks one after another or in parallel worker processes.

Results do not depend on the number of workers: every task seeds its own
Generator from (seed, task index) (see `common.task_rng`), results come back in
task order, and every task runs with its BLAS library limited to one thread.
That last part matters twice: a matrix product can round differently with a
different thread count (so --jobs 1 and --jobs 2 would disagree in the last
bits, and chaotic training runs amplify that), and N processes each running N
BLAS threads on N cores fight over them, which on a busy machine costs far
more than it gains. Workers are started with the "spawn" method (no inherited
threads or locks, the same on every OS) with the BLAS thread variables set to
1; in this process the limit comes from threadpoolctl (installed with
scikit-learn, e.g. by mlxtend), and without it one-job runs use one worker.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Environment variables the common BLAS builds read when they start.
_BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                     "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def resolve_jobs(jobs: int | None, n_tasks: int) -> int:
    """Worker count: `jobs` (0 or None means one per CPU), at most one per task."""
    if jobs is None or jobs == 0:
        jobs = os.cpu_count() or 1
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 0:
        raise ValueError(f"jobs must be a non-negative integer (0 = one per CPU), got {jobs!r}")
    return max(1, min(jobs, n_tasks))


def _threadpoolctl_limits() -> Any:
    """threadpoolctl's `threadpool_limits`, or None when it is not installed."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits


def can_limit_blas_in_process() -> bool:
    """True when BLAS can be made single-threaded inside this process (threadpoolctl)."""
    return _threadpoolctl_limits() is not None


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limit BLAS to one thread in this process for the block (a no-op without threadpoolctl)."""
    limits = _threadpoolctl_limits()
    if limits is None:
        yield
        return
    with limits(limits=1, user_api="blas"):
        yield


@contextlib.contextmanager
def _single_threaded_blas_env() -> Iterator[None]:
    """Set the BLAS thread variables to 1 while workers start (they copy the environment)."""
    saved = {k: os.environ.get(k) for k in _BLAS_THREAD_VARS}
    os.environ.update({k: "1" for k in _BLAS_THREAD_VARS})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_tasks(
    fn: Callable[[T], R],
    tasks: Sequence[T],
    jobs: int | None = 1,
    on_result: Callable[[int, R], None] | None = None,
) -> list[R]:
    """[fn(t) for t in tasks], in `jobs` processes; `on_result(i, r)` as each one finishes.

    `fn` must be a module-level function and the tasks picklable (they travel to
    the workers). With one job everything runs in this process when BLAS can be
    limited here, else in one worker.
    """
    n_workers = resolve_jobs(jobs, len(tasks))
    results: list[Any] = [None] * len(tasks)
    if n_workers == 1 and can_limit_blas_in_process():
        with single_threaded_blas():
            for i, task in enumerate(tasks):
                results[i] = fn(task)
                if on_result is not None:
                    on_result(i, results[i])
        return results
    context = multiprocessing.get_context("spawn")
    with _single_threaded_blas_env():
        pool = context.Pool(n_workers)
    try:
        indexed = [(fn, i, task) for i, task in enumerate(tasks)]
        for i, result in pool.imap_unordered(_call_indexed, indexed, chunksize=1):
            results[i] = result
            if on_result is not None:
                on_result(i, result)
        pool.close()
    finally:
        pool.terminate()
        pool.join()
    return results


def _call_indexed(item: tuple[Callable[[Any], Any], int, Any]) -> tuple[int, Any]:
    fn, i, task = item
    return i, fn(task)
