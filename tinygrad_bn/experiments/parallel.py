"""Where tasks run: the executor protocol, and the two executors of this machine.

An executor takes task specs (small picklable objects: a preset's config, which
holds its parameters and seed, plus the task's index) with the module-level
function that runs one, and yields each outcome as it finishes:

    executor.submit(key, fn, spec)      # as many as you like, also while iterating
    for outcome in executor.results():  # until nothing is pending
        ...

`SerialExecutor` runs them here, one after another; `ProcessExecutor` in
local worker processes; `dask_executor.DaskExecutor` on a Dask cluster. A
task's exception never escapes its worker: `call_task` turns it into a failed
`Outcome` carrying the error line and traceback, so executors only have to
report the other failure, a worker process that died.

Results do not depend on the executor or the number of workers: every task
seeds its own Generator from (seed, task index) (see `common.task_rng`), and
every task runs with its BLAS library limited to one thread. That last part
matters twice: a matrix product can round differently with a different thread
count (so --jobs 1 and --jobs 2 would disagree in the last bits, and chaotic
training runs amplify that), and N processes each running N BLAS threads on N
cores fight over them, which on a busy machine costs far more than it gains.
Local workers are started with the "spawn" method (no inherited threads or
locks, the same on every OS) with the BLAS thread variables set to 1; inside a
task the limit also comes from threadpoolctl (installed with scikit-learn, e.g.
by mlxtend), and without it one-job runs use one worker process.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Protocol

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


# ---------------------------------------------------------------- one BLAS thread


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


# ---------------------------------------------------------------- one task, in a worker


@dataclass
class Outcome:
    """How one submitted task ended: its result, or an error line and the traceback."""

    key: int
    result: Any = None
    error: str | None = None
    details: str = ""
    seconds: float = 0.0  # wall time in the worker
    cpu_seconds: float = 0.0  # CPU time of the worker process meanwhile (all its threads)

    @property
    def ok(self) -> bool:
        """True when the task returned a result."""
        return self.error is None


# A worker process runs one task at a time even if its pool gives it several
# threads (a Dask worker started with --nthreads 4): the BLAS limit and the
# engine's grad mode are process-wide, and two tasks sharing them would not
# reproduce a one-job run.
_ONE_TASK_AT_A_TIME = threading.Lock()


def call_task(fn: Callable[[Any], Any], spec: Any) -> tuple[bool, Any, float, float]:
    """Run fn(spec) here: (True, result, seconds, CPU seconds), or (False, (error, traceback), ...)."""
    with _ONE_TASK_AT_A_TIME, single_threaded_blas():
        start, cpu_start = time.perf_counter(), time.process_time()
        try:
            ok, value = True, fn(spec)
        except Exception as err:  # reported with the task's parameters, then retried
            ok, value = False, (error_line(err), traceback.format_exc())
        return ok, value, time.perf_counter() - start, time.process_time() - cpu_start


def error_line(err: BaseException) -> str:
    """`TypeName: message`, on one line."""
    message = " ".join(str(err).split())
    return f"{type(err).__name__}: {message}" if message else type(err).__name__


def outcome_of(key: int, returned: tuple[bool, Any, float, float]) -> Outcome:
    """The Outcome of what `call_task` returned for task `key`."""
    ok, value, seconds, cpu_seconds = returned
    if ok:
        return Outcome(key, result=value, seconds=seconds, cpu_seconds=cpu_seconds)
    error, details = value
    return Outcome(key, error=error, details=details, seconds=seconds, cpu_seconds=cpu_seconds)


# ---------------------------------------------------------------- executors


class Executor(Protocol):
    """Runs submitted specs somewhere and yields each Outcome as it finishes."""

    description: str  # for the log: where the tasks run
    runs_here: bool  # True when the workers see this machine's files (data, caches)

    def submit(self, key: int, fn: Callable[[Any], Any], spec: Any) -> None:
        """Queue fn(spec); its Outcome will carry `key`."""

    def results(self) -> Iterator[Outcome]:
        """Outcomes as tasks finish, until nothing is pending (submitting more is allowed)."""

    def running(self) -> int:
        """How many tasks are running now (for progress displays)."""

    def close(self) -> None:
        """Stop everything still running and free the workers."""


class SerialExecutor:
    """Runs every task in this process, one after another, in submission order."""

    runs_here = True

    def __init__(self) -> None:
        self.description = "this process"
        self._queue: deque[tuple[int, Callable[[Any], Any], Any]] = deque()

    def submit(self, key: int, fn: Callable[[Any], Any], spec: Any) -> None:
        """Queue fn(spec)."""
        self._queue.append((key, fn, spec))

    def results(self) -> Iterator[Outcome]:
        """Run the queued tasks one by one."""
        while self._queue:
            key, fn, spec = self._queue.popleft()
            yield outcome_of(key, call_task(fn, spec))

    def running(self) -> int:
        """The next task runs as soon as the caller asks for it."""
        return min(1, len(self._queue))

    def close(self) -> None:
        """Forget the queued tasks."""
        self._queue.clear()


class ProcessExecutor:
    """Runs tasks in `workers` local processes ("spawn"), at most one task per process at a time.

    Keeping no more tasks in flight than workers means a worker that dies takes
    down only the tasks that were running: the pool cannot say which of them
    killed it, so each of those is reported failed (and retried by the runner),
    and a fresh pool takes the remaining tasks.
    """

    runs_here = True

    def __init__(self, workers: int) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"ProcessExecutor: workers must be a positive integer, got {workers!r}")
        self.workers = workers
        self.description = f"{workers} local worker process{'es' if workers > 1 else ''}"
        self._pool: ProcessPoolExecutor | None = None
        self._queue: deque[tuple[int, Callable[[Any], Any], Any]] = deque()
        self._in_flight: dict[Future, int] = {}

    def submit(self, key: int, fn: Callable[[Any], Any], spec: Any) -> None:
        """Queue fn(spec); it starts when a worker is free."""
        self._queue.append((key, fn, spec))

    def _start_queued(self) -> None:
        while self._queue and len(self._in_flight) < self.workers:
            key, fn, spec = self._queue.popleft()
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self.workers,
                                                 mp_context=multiprocessing.get_context("spawn"))
            # The pool spawns its workers inside submit: they copy this environment.
            with _single_threaded_blas_env():
                self._in_flight[self._pool.submit(call_task, fn, spec)] = key

    def results(self) -> Iterator[Outcome]:
        """Outcomes as workers finish; a dead worker fails the tasks that were running."""
        while self._queue or self._in_flight:
            self._start_queued()
            done, _ = wait(list(self._in_flight), return_when=FIRST_COMPLETED)
            outcomes = []
            for future in done:
                key = self._in_flight.pop(future)
                try:
                    outcomes.append(outcome_of(key, future.result()))
                except BrokenProcessPool:
                    self._discard_pool()
                    outcomes.append(Outcome(key, error="a worker process died while this task "
                                                       "was running (killed, out of memory, or "
                                                       "crashed)"))
            self._start_queued()  # keep the workers busy while the caller handles these
            yield from outcomes

    def running(self) -> int:
        """Tasks handed to a worker and not yet finished."""
        return len(self._in_flight)

    def _discard_pool(self) -> None:
        """Drop a broken pool (its futures have all failed); the next task starts a new one."""
        if self._pool is not None:
            _terminate(self._pool)
            self._pool = None

    def close(self) -> None:
        """Terminate the workers (a running task is abandoned) and forget queued tasks."""
        self._queue.clear()
        self._in_flight.clear()
        if self._pool is not None:
            _terminate(self._pool)
            self._pool = None


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Shut `pool` down now: cancel what has not started, terminate the workers, reap them."""
    # ProcessPoolExecutor has no public way to stop a running task before Python 3.14;
    # its worker processes are in `_processes` (pid -> Process) on every version we support.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=10)
