"""numba settings shared by the compiled kernels, and the rule for when threads pay.

Determinism: every reduction is split into blocks fixed by the array's shape,
each block summed in an order fixed by the compiled code, and the blocks combined
in a fixed order. Threads only decide *who* computes a block, so results are
bit-identical for any thread count and between the serial and the threaded path
(tests/test_compiled_kernels.py checks it). Kernels use no fastmath, except the
small helpers that say so (`jit`'s reassociate and fma flags).
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numba
import numpy as np

# Threads pay once a pass reads this many bytes. Measured on a 2-core VM (numba
# 0.68, omp layer): a (128, 1024) float32 statistics pass (512 KiB) ran 26 us on
# one thread and 22-29 us on two; from 1 MiB up two threads ran 1.4-2x faster;
# at 256 KiB one thread won (15 us vs 16-22 us). benchmarks/bench_kernels.py
# prints both paths per shape.
PARALLEL_MIN_BYTES = 512 * 1024

# Statistics passes cut the batch axis into at most this many row blocks of at least
# MIN_BLOCK_ROWS rows: enough blocks to keep two to eight threads busy, few enough
# that the per-block partial sums (float64, one row of them per block) stay small.
ROW_BLOCKS = 16
MIN_BLOCK_ROWS = 64
# Columns per statistics tile: two float64 accumulator rows of 8 KiB stay in L1.
COLUMN_BLOCK = 1024


def jit(fn: Callable | None = None, *, parallel: bool = False, reassociate: bool = False,
        fma: bool = False) -> Any:
    """numba.njit with the disk cache on, the GIL released and numpy's float semantics.

    The cache lives next to the source (__pycache__), else where NUMBA_CACHE_DIR
    says, else in the user's cache directory (numba's own fallbacks); when none is
    writable the kernels compile without a cache, with one warning.

    parallel=True turns only explicit `prange` loops into threads; numba would
    otherwise also turn array expressions into parallel reductions, whose order of
    summation depends on the thread count. reassociate=True lets a small reduction
    helper's loop run as SIMD lanes (its order is then fixed by the compiled code,
    the same on every thread); fma=True lets multiply-adds fuse. Both are kept off
    everywhere else, so that no expression like (x - k) - shift is rewritten.
    """
    options: dict[str, Any] = {"cache": True, "nogil": True, "error_model": "numpy"}
    flags = ({"reassoc"} if reassociate else set()) | ({"contract"} if fma else set())
    if flags:
        options["fastmath"] = flags
    if parallel:
        # A fresh dict each time: numba consumes the one it is given.
        options["parallel"] = {
            "comprehension": False, "reduction": False, "inplace_binop": False, "setitem": False,
            "numpy": False, "stencil": False, "fusion": False, "prange": True,
        }
    def decorate(py_func: Callable) -> Any:
        try:
            return numba.njit(**options)(py_func)
        except RuntimeError as err:  # "cannot cache function ...: no locator available"
            if "cannot cache" not in str(err):
                raise
            _warn_no_cache(err)
            return numba.njit(**{**options, "cache": False})(py_func)

    return decorate if fn is None else decorate(fn)


_warned_no_cache = False


def _warn_no_cache(err: RuntimeError) -> None:
    """Say once that compiled code cannot be kept on disk (every process then compiles again)."""
    global _warned_no_cache
    if not _warned_no_cache:
        _warned_no_cache = True
        warnings.warn(f"tinygrad_bn's compiled kernels run without a disk cache ({err}); each new "
                      "process compiles them again (~1 min). Set NUMBA_CACHE_DIR to a writable directory "
                      "to keep them.", RuntimeWarning, stacklevel=3)


# One threaded kernel at a time: numba's fallback threading layer (workqueue)
# aborts the process when two Python threads launch parallel loops at once. A
# second caller runs serially instead, with bit-identical results.
_threads_in_use = threading.Lock()

# Threads lose badly on a busy machine: with one other process spinning on the
# 2-core VM, a threaded (4096, 1024) statistics pass took 7.9 ms against 0.84 ms
# serial, and with both cores busy a (1024, 256) float64 one took 5.0 ms against
# 0.066 ms (the pass waits for a thread the OS has not scheduled). So each kernel
# keeps the last measured speed of both paths per size class, runs the faster
# one, and retries the other one once the time spent since the last try is
# PROBE_BUDGET times what that try cost: a slow try is repeated rarely, a cheap
# one often. The results are the same bits either way. Each try costs the
# difference between the paths (and wakes the other path's threads): on an idle
# machine a (256, 1024) float32 batch-norm step ran 0.195 ms forced threaded,
# 0.212 ms with a budget of 20, 0.203 ms with 100 and 0.201 ms with 300. With 100,
# a kernel whose threaded try took 8 ms on a busy machine tries threads again
# after 0.8 s of serial calls.
PROBE_BUDGET = 100


class _PathStats:
    """Measured speeds (bytes/s) of one kernel's serial and threaded path at one size class."""

    __slots__ = ("speed", "calls", "spent", "probe_cost")

    def __init__(self) -> None:
        self.speed = [0.0, 0.0]  # [serial, threaded]; 0 = not measured yet
        self.calls = 0
        self.spent = 0.0  # seconds in this size class since the last try of the slower path
        self.probe_cost = 0.0

    def choose(self) -> bool:
        """True for the threaded path: the faster one, or the other one when a try is due."""
        self.calls += 1
        if self.calls <= 2:  # call 1 may compile (not measured), call 2 times the threaded path
            return True
        if self.speed[0] == 0.0:  # call 3 times the serial path
            return False
        faster = self.speed[1] >= self.speed[0]
        if self.spent >= PROBE_BUDGET * self.probe_cost:
            return not faster
        return faster

    def record(self, threaded: bool, seconds: float, nbytes: int) -> None:
        if self.calls == 1:  # the first call includes compiling or loading the kernel
            return
        speed = nbytes / max(seconds, 1e-9)
        was_faster = (self.speed[1] >= self.speed[0]) == threaded
        if was_faster and self.speed[threaded] > 0.0:
            # The path in use: smoothed, so that one slow call does not flip the choice.
            self.speed[threaded] = 0.5 * (self.speed[threaded] + speed)
            self.spent += seconds
        else:  # a try of the other path
            self.speed[threaded] = speed
            self.spent, self.probe_cost = 0.0, seconds


_paths: dict[tuple[Callable, int], _PathStats] = {}


_forced: bool | None = None  # set by force_threads()


@contextlib.contextmanager
def force_threads(threaded: bool) -> Iterator[None]:
    """Run every compiled kernel threaded (True) or serially (False) inside the block.

    For benchmarks (each path timed on its own) and tests (both give the same bits).
    """
    global _forced
    previous, _forced = _forced, threaded
    try:
        yield
    finally:
        _forced = previous


def launch(kernel: Callable[..., Any], nbytes: int, *args: Any) -> Any:
    """Call kernel(*args, threaded), threaded where `nbytes` of traffic make threads pay (measured)."""
    if _forced is not None:
        return kernel(*args, _forced)
    if nbytes < PARALLEL_MIN_BYTES:
        return kernel(*args, False)
    key = (kernel, nbytes.bit_length())  # size classes by powers of two
    stats = _paths.get(key)
    if stats is None:
        stats = _paths[key] = _PathStats()
    threaded = stats.choose()
    if threaded and not _threads_in_use.acquire(blocking=False):
        return kernel(*args, False)
    start = time.perf_counter()
    try:
        result = kernel(*args, threaded)
    finally:
        if threaded:
            _threads_in_use.release()
    stats.record(threaded, time.perf_counter() - start, nbytes)
    return result


def reset_path_stats() -> None:
    """Forget every measured path speed (as in a fresh process)."""
    _paths.clear()


def path_speeds() -> dict[str, dict[str, float]]:
    """What `launch` has measured: {"kernel@size class": {"serial": GB/s, "threaded": GB/s}}."""
    return {
        f"{kernel.__name__}@{2 ** (size - 1)}B": {"serial": s.speed[0] / 1e9, "threaded": s.speed[1] / 1e9}
        for (kernel, size), s in _paths.items()
    }


@jit
def block_size(n: int, blocks: int, minimum: int) -> int:
    """Length of the pieces that cut n items into at most `blocks` pieces of >= `minimum` items."""
    return max(minimum, -(-n // blocks))


# The row helpers take whole 1-d arrays (callers pass slices): a loop from a
# variable start cannot be proven non-negative, and numba's negative-index check
# on every access made them 3x slower.


@jit(reassociate=True)
def row_sum(a: Any) -> float:
    """sum(a) of a 1-d array in float64, as SIMD lanes (see `jit`)."""
    total = 0.0
    for j in range(a.shape[0]):
        total += a[j]
    return total


@jit(reassociate=True)
def row_dot(a: Any, b: Any) -> float:
    """sum(a * b) of two 1-d arrays in float64, as SIMD lanes."""
    total = 0.0
    for j in range(a.shape[0]):
        total += np.float64(a[j]) * b[j]
    return total


@jit(reassociate=True)
def row_sum_and_dot(a: Any, b: Any) -> tuple[float, float]:
    """(sum(a), sum(a * b)) of two 1-d arrays in float64, in one sweep as SIMD lanes."""
    total, dot = 0.0, 0.0
    for j in range(a.shape[0]):
        v = np.float64(a[j])
        total += v
        dot += v * b[j]
    return total, dot
