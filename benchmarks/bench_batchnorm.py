"""BatchNorm forward+backward: composed vs fused (numpy, numba) vs PyTorch CPU vs a memory floor.

    python benchmarks/bench_batchnorm.py [--quick] [--repeat N]
    tinygrad-bn bench batchnorm

Prints one row per case: the best time of a training-mode forward plus backward
(gradients for x, gamma and beta) through `functional.batch_norm` for the
composed graph and the numpy kernel (on the numpy backend whatever the default),
the compiled kernel's Function when numba is installed (the header names both),
and ratios: fused / torch, fused / floor, composed / fused. The floor is the time
of the minimum memory traffic a fwd+bwd needs — 6 full-array reads and 2
full-array writes of the input's size — measured in the same run on one thread.
Each library is timed in its own block: numpy's and torch's worker threads spin
after each call and slow each other down when interleaved.
benchmarks/bench_kernels.py has every kernel, thread settings and the floor on
numba's threads.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np

from tinygrad_bn import Tensor, keep_freed_memory
from tinygrad_bn.functional import batch_norm
from tinygrad_bn.kernel_registry import KERNELS, use_backend

CASES = [
    ((100, 500), np.float64),
    ((256, 1024), np.float32),
    ((4096, 1024), np.float32),
    ((64, 64, 32, 32), np.float32),
]


def best_time(fn: Callable[[], object], repeat: int, min_time: float = 0.2) -> float:
    """The best of `repeat` timings, each averaged over enough calls to last ~min_time/repeat."""
    fn()  # warm up: first-touch page faults, caches
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-6)
    number = max(1, int(min_time / repeat / once))
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def ours(shape: tuple[int, ...], dtype: type, impl: str) -> Callable[[], object]:
    """A closure running one fwd+bwd of our batch_norm."""
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True)
    w = Tensor(np.ones(shape[1], dtype), requires_grad=True)
    b = Tensor(np.zeros(shape[1], dtype), requires_grad=True)
    g = rng.standard_normal(shape).astype(dtype)

    def step() -> None:
        x.grad = w.grad = b.grad = None
        # The numpy kernel whatever the default backend (the numba column has the compiled one).
        with use_backend("numpy"):
            batch_norm(x, None, None, w, b, training=True, impl=impl).backward(g)

    return step


def numba_step(shape: tuple[int, ...], dtype: type) -> Callable[[], object] | None:
    """The same fwd+bwd through the compiled kernel, or None without numba."""
    from tinygrad_bn.kernels import compiled

    if not compiled.available():
        return None
    kernel = compiled.load()["batch_norm"]
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True)
    w = Tensor(np.ones(shape[1], dtype), requires_grad=True)
    b = Tensor(np.zeros(shape[1], dtype), requires_grad=True)
    g = rng.standard_normal(shape).astype(dtype)

    def step() -> None:
        x.grad = w.grad = b.grad = None
        kernel.apply(x, w, b, eps=1e-5, stats={}).backward(g)

    return step


def torch_step(
    shape: tuple[int, ...], dtype: type, threads: int | None = None
) -> Callable[[], object] | None:
    """The same fwd+bwd with torch.nn.functional.batch_norm (on `threads` threads), or None."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads or os.cpu_count() or 1)  # torch's default: one per core
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.standard_normal(shape), dtype=tdtype, requires_grad=True)
    w = torch.ones(shape[1], dtype=tdtype, requires_grad=True)
    b = torch.zeros(shape[1], dtype=tdtype, requires_grad=True)
    g = torch.tensor(rng.standard_normal(shape), dtype=tdtype)

    def step() -> None:
        x.grad = w.grad = b.grad = None
        torch.nn.functional.batch_norm(x, None, None, w, b, training=True).backward(g)

    return step


def floor_time(shape: tuple[int, ...], dtype: type, repeat: int) -> float:
    """6 full-array reads + 2 full-array writes, each timed on its own."""
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    out = np.empty_like(x)
    read = best_time(lambda: np.add.reduce(x, axis=None), repeat)
    write = best_time(lambda: out.fill(1.0), repeat)
    return 6 * read + 2 * write


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the two small cases, fewer repeats")
    parser.add_argument("--repeat", type=int, default=7, help="timings per measurement (best is kept)")
    parser.add_argument("--no-keep-memory", action="store_true",
                        help="leave malloc alone (default: tinygrad_bn.keep_freed_memory(), as the CLI does)")
    args = parser.parse_args(argv)
    memory_kept = False if args.no_keep_memory else keep_freed_memory()
    print(f"malloc keeps freed memory (tinygrad_bn.keep_freed_memory()): {memory_kept}")
    entry = KERNELS["batch_norm"]
    has_numba = numba_step((2, 2), np.float64) is not None
    compiled_name = entry.implementation("numba").__name__ if has_numba else "n/a (no numba)"
    print(f"columns: fused = {entry.kernel.__name__} [numpy], numba = {compiled_name} [numba]")
    cases = CASES[:2] if args.quick else CASES
    repeat = 3 if args.quick else args.repeat

    rows = []
    for shape, dtype in cases:
        composed = best_time(ours(shape, dtype, "composed"), repeat)
        fused = best_time(ours(shape, dtype, "fused"), repeat)
        compiled_step = numba_step(shape, dtype)
        compiled_t = best_time(compiled_step, repeat) if compiled_step else None
        floor = floor_time(shape, dtype, repeat)
        rows.append([shape, dtype, composed, fused, compiled_t, floor])
    # torch in its own block, after ours: default threads, then one thread (ours uses one).
    for threads in (None, 1):
        for row in rows:
            step = torch_step(row[0], row[1], threads)
            row.append(best_time(step, repeat) if step else None)

    print(f"{'shape':>18} {'dtype':>8} {'composed':>10} {'fused':>10} {'numba':>10} {'torch':>10} "
          f"{'torch 1t':>10} {'floor':>10} {'fused/torch':>12} {'numba/torch':>12} {'fused/floor':>12} "
          f"{'comp/fused':>11}")
    def cell(t: float | None, width: int = 10) -> str:
        return f"{t * 1e3:{width - 2}.3f}ms" if t else f"{'n/a':>{width}}"

    def ratio(fused: float, t: float | None, width: int) -> str:
        return f"{fused / t:{width}.2f}" if t else f"{'n/a':>{width}}"

    for shape, dtype, composed, fused, compiled_t, floor, torch_t, torch_1t in rows:
        numba_ratio = ratio(compiled_t, torch_t, 12) if compiled_t else f"{'n/a':>12}"
        print(f"{str(shape):>18} {np.dtype(dtype).name:>8} {cell(composed)} {cell(fused)} {cell(compiled_t)} "
              f"{cell(torch_t)} {cell(torch_1t)} {cell(floor)} {ratio(fused, torch_t, 12)} {numba_ratio} "
              f"{fused / floor:12.2f} {composed / fused:11.2f}")
    print("targets: fused (numpy) / torch <= 2 and numba / torch <= 0.8 on the float32 cases; "
          "composed/fused <= 3")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
