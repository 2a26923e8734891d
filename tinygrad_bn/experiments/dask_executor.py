"""Run sweep tasks on a Dask distributed cluster (`--scheduler ADDRESS` or `--scheduler local`).

dask.distributed is optional: it is imported only when one of these functions
runs, and without it the error says what to install. Every task is one
`client.submit(call_task, fn, spec)`: the spec is small (a preset's config and
a task index), the function is found by name on the worker, and the worker
loads the data itself, so workers need tinygrad_bn installed and the data
where their config says (the embedded digits need nothing).

Dask already replaces a worker process that dies and reruns its task
elsewhere; after `distributed.scheduler.allowed-failures` deaths (3 by
default) the task fails with KilledWorker, which the runner reports and
retries once more. If the cluster has no worker at all for
`no_worker_timeout` seconds, every pending task fails instead of waiting
forever.
"""

from __future__ import annotations

import queue
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from tinygrad_bn.experiments.parallel import Outcome, call_task, error_line, outcome_of

INSTALL_HINT = "pip install 'tinygrad_bn[distributed]'  (or: pip install 'dask[distributed]')"
POLL_SECONDS = 2.0  # how often a quiet cluster is checked for workers
NO_WORKER_TIMEOUT = 120.0


def import_distributed() -> Any:
    """The `distributed` module, or a RuntimeError saying how to install it."""
    try:
        import distributed
    except ImportError:
        raise RuntimeError(
            "running tasks on a Dask cluster (--scheduler, executor=...) needs dask.distributed, "
            f"which is not installed; install it with: {INSTALL_HINT}"
        ) from None
    return distributed


class DaskExecutor:
    """Submits tasks to a `distributed.Client`; yields outcomes as they finish.

    `cluster` (if given) is closed with the executor, and so is the client when
    `owns_client` is true; a client passed in by the caller stays open.
    """

    def __init__(self, client: Any, *, cluster: Any = None, owns_client: bool = False,
                 runs_here: bool = False, no_worker_timeout: float = NO_WORKER_TIMEOUT) -> None:
        self.client = client
        self.cluster = cluster
        self.owns_client = owns_client
        self.runs_here = runs_here
        self.no_worker_timeout = no_worker_timeout
        self.description = describe_cluster(client)
        self._futures: dict[Any, int] = {}  # pending future -> task key
        self._finished: queue.Queue = queue.Queue()

    @classmethod
    def start_local(cls, workers: int, **cluster_options: Any) -> DaskExecutor:
        """A LocalCluster of `workers` single-threaded processes on the loopback interface."""
        distributed = import_distributed()
        import dask

        options = {"n_workers": workers, "threads_per_worker": 1, "processes": True,
                   "host": "127.0.0.1",
                   # the scheduler serves HTTP even without a dashboard: loopback, any free port
                   "dashboard_address": "127.0.0.1:0", **cluster_options}
        # The workers' statistical profiler feeds a dashboard nobody opens here, and its
        # sampling every 10 ms costs our tasks about 4% (measured on dlfs-init-sweep).
        with dask.config.set({"distributed.worker.profile.enabled": False}):
            cluster = distributed.LocalCluster(**options)
        try:
            client = distributed.Client(cluster)
        except BaseException:
            cluster.close()
            raise
        return cls(client, cluster=cluster, owns_client=True, runs_here=True)

    @classmethod
    def connect(cls, address: str, timeout: float = 30.0) -> DaskExecutor:
        """Connect to a running scheduler, e.g. tcp://scheduler-host:8786."""
        distributed = import_distributed()
        try:
            client = distributed.Client(address, timeout=timeout)
        except OSError as err:  # includes the TimeoutError of an unreachable scheduler
            raise RuntimeError(f"cannot connect to the Dask scheduler at {address!r}: {err}") from None
        return cls(client, owns_client=True)

    def submit(self, key: int, fn: Callable[[Any], Any], spec: Any) -> None:
        """Send fn(spec) to the cluster."""
        future = self.client.submit(call_task, fn, spec, pure=False,
                                    key=f"tinygrad_bn-task{key}-{uuid.uuid4().hex[:10]}")
        self._futures[future] = key
        future.add_done_callback(self._finished.put)  # called from the client's thread

    def results(self) -> Iterator[Outcome]:
        """Outcomes as the cluster finishes tasks; fails them all if no worker is left."""
        no_workers_since: float | None = None
        while self._futures:
            try:
                future = self._finished.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if self._worker_count() > 0:
                    no_workers_since = None
                    continue
                no_workers_since = no_workers_since or time.monotonic()
                if time.monotonic() - no_workers_since < self.no_worker_timeout:
                    continue
                yield from self._fail_pending(f"no worker connected to the scheduler for "
                                              f"{self.no_worker_timeout:.0f} s")
                return
            key = self._futures.pop(future, None)
            if key is None:
                continue  # cancelled by close(), or already reported
            yield self._outcome(key, future)
            future.release()

    def _outcome(self, key: int, future: Any) -> Outcome:
        if future.status == "finished":
            return outcome_of(key, future.result())
        if future.status == "error":
            err = future.exception()
            if type(err).__name__ == "KilledWorker":
                return Outcome(key, error="the workers running this task died (Dask gave up "
                                          f"after its allowed failures): {error_line(err)}")
            return Outcome(key, error=error_line(err))
        return Outcome(key, error=f"the cluster dropped this task (status {future.status!r})")

    def _fail_pending(self, why: str) -> Iterator[Outcome]:
        pending, self._futures = self._futures, {}
        self.client.cancel(list(pending))
        for key in pending.values():
            yield Outcome(key, error=why)

    def _worker_count(self) -> int:
        try:
            return len(self.client.nthreads())
        except Exception:  # a lost scheduler connection counts as no workers
            return 0

    def running(self) -> int:
        """Our tasks a worker is processing right now."""
        try:
            processing = self.client.processing()
        except Exception:
            return 0
        ours = {future.key for future in self._futures}
        return sum(1 for keys in processing.values() for k in keys if k in ours)

    def close(self) -> None:
        """Cancel what is still pending; close the client and cluster we started."""
        pending, self._futures = list(self._futures), {}
        try:
            if pending:
                self.client.cancel(pending)
        finally:
            if self.owns_client:
                self.client.close()
            if self.cluster is not None:
                self.cluster.close()


def describe_cluster(client: Any) -> str:
    """'Dask cluster at ADDRESS: N workers, T threads', with a note when workers have >1 thread."""
    try:
        nthreads = client.nthreads()
        address = client.scheduler.address
    except Exception:
        return "a Dask cluster"
    text = (f"Dask cluster at {address}: {len(nthreads)} worker{'s' if len(nthreads) != 1 else ''}, "
            f"{sum(nthreads.values())} threads")
    if any(n > 1 for n in nthreads.values()):
        text += (" (a worker runs one of these tasks at a time: start workers with "
                 "--nthreads 1 --nworkers N to use N cores)")
    return text
