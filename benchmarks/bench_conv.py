"""conv2d and max_pool2d forward+backward: composed vs fused vs PyTorch CPU vs a GEMM floor.

    python benchmarks/bench_conv.py [--quick] [--repeat N]

One row per case, float32: the best and median time of a forward plus backward
(gradients for input, weight and bias) of each implementation, the fused one
also on one thread (numpy's BLAS limited with threadpoolctl; torch with
set_num_threads(1)), and the ratios fused / torch (default threads, then one
thread each) and composed / fused. For convolution the floor is the three
matrix products an im2col convolution cannot avoid (forward, dW, dX) timed
alone on ready-made matrices; for pooling, one read of the input and one write
of its gradient. Each library runs in its own block, ours first: numpy's and torch's
worker threads spin after each call and slow each other down when interleaved.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import Callable, Iterator

import numpy as np

from tinygrad_bn import Tensor, keep_freed_memory
from tinygrad_bn import functional as F

# (name, input shape, weight shape or pool kernel, stride, padding)
CONV_CASES = [
    ("conv2d", (64, 3, 32, 32), (16, 3, 3, 3), 1, 1),
    ("conv2d", (32, 64, 16, 16), (64, 64, 3, 3), 1, 1),
]
POOL_CASES = [
    ("max_pool2d", (64, 16, 32, 32), 2, 2, 0),
    ("max_pool2d", (32, 64, 16, 16), 2, 2, 0),
    ("max_pool2d", (32, 64, 16, 16), 3, 2, 1),
]


def timings(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(best, median) of `repeat` single calls after two warm-up calls.

    Single calls, many of them: on a shared machine the best of many short
    samples is the quiet-machine time, where an average over a long loop is not.
    """
    fn()  # warm up: first-touch page faults, caches, cached window indices
    fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return min(samples), float(np.median(samples))


def _data(case: tuple) -> dict[str, np.ndarray]:
    name, shape, second, stride, padding = case
    rng = np.random.default_rng(0)
    data = {"x": rng.standard_normal(shape).astype(np.float32)}
    if name == "conv2d":
        data["w"] = (rng.standard_normal(second) * 0.1).astype(np.float32)
        data["b"] = rng.standard_normal(second[0]).astype(np.float32)
        out = (shape[2] + 2 * padding - second[2]) // stride + 1
        data["g"] = rng.standard_normal((shape[0], second[0], out, out)).astype(np.float32)
    else:
        out = (shape[2] + 2 * padding - second) // stride + 1
        data["g"] = rng.standard_normal((*shape[:2], out, out)).astype(np.float32)
    return data


def ours(case: tuple, impl: str) -> Callable[[], object]:
    """A closure running one fwd+bwd of our op."""
    name, _, second, stride, padding = case
    d = _data(case)
    x = Tensor(d["x"], requires_grad=True)
    g = Tensor(d["g"])
    if name == "conv2d":
        w, b = Tensor(d["w"], requires_grad=True), Tensor(d["b"], requires_grad=True)

        def step() -> None:
            x.grad = w.grad = b.grad = None
            F.conv2d(x, w, b, stride, padding, impl=impl).backward(g)
    else:
        def step() -> None:
            x.grad = None
            F.max_pool2d(x, second, stride, padding, impl=impl).backward(g)

    return step


def torch_step(case: tuple, threads: int | None = None) -> Callable[[], object] | None:
    """The same fwd+bwd in PyTorch on `threads` threads (default: one per core), or None."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads or os.cpu_count() or 1)
    name, _, second, stride, padding = case
    d = {k: torch.tensor(v) for k, v in _data(case).items()}
    x = d["x"].requires_grad_(True)
    if name == "conv2d":
        w, b = d["w"].requires_grad_(True), d["b"].requires_grad_(True)

        def step() -> None:
            x.grad = w.grad = b.grad = None
            torch.nn.functional.conv2d(x, w, b, stride, padding).backward(d["g"])
    else:
        def step() -> None:
            x.grad = None
            torch.nn.functional.max_pool2d(x, second, stride, padding).backward(d["g"])

    return step


def floor_time(case: tuple, repeat: int) -> float:
    """Convolution: its three im2col matrix products alone; pooling: one read and one write."""
    name, shape, second, stride, padding = case
    rng = np.random.default_rng(0)
    if name != "conv2d":
        x = rng.standard_normal(shape).astype(np.float32)
        out = np.empty_like(x)
        read = timings(lambda: np.add.reduce(x, axis=None), repeat)[0]
        return read + timings(lambda: out.fill(1.0), repeat)[0]
    n, f = shape[0], second[0]
    k = int(np.prod(second[1:]))
    length = n * ((shape[2] + 2 * padding - second[2]) // stride + 1) ** 2
    w = rng.standard_normal((f, k)).astype(np.float32)
    cols = rng.standard_normal((k, length)).astype(np.float32)
    gy = rng.standard_normal((f, length)).astype(np.float32)
    return timings(lambda: (w @ cols, gy @ cols.T, w.T @ gy), repeat)[0]


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """numpy's BLAS on one thread inside the block (unchanged without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one conv and one pool case, fewer repeats")
    parser.add_argument("--repeat", type=int, default=25, help="single-call timings per measurement")
    args = parser.parse_args(argv)
    keep_freed_memory()
    cases = [CONV_CASES[0], POOL_CASES[0]] if args.quick else CONV_CASES + POOL_CASES
    repeat = 5 if args.quick else args.repeat

    rows = []
    for case in cases:
        row = [case, timings(ours(case, "composed"), repeat), timings(ours(case, "fused"), repeat)]
        with one_blas_thread():
            row.append(timings(ours(case, "fused"), repeat))
        rows.append(row + [floor_time(case, repeat)])
    for threads in (None, 1):  # torch in its own block, after ours: its threads, then one
        for row in rows:
            step = torch_step(row[0], threads)
            row.append(timings(step, repeat) if step else None)

    def cell(t: tuple[float, float] | None) -> str:
        return f"{t[0] * 1e3:7.2f}/{t[1] * 1e3:<7.2f}" if t else f"{'n/a':>15}"

    def ratio(a: tuple[float, float], b: tuple[float, float] | None) -> str:
        return f"{a[0] / b[0]:9.2f}" if b else f"{'n/a':>9}"

    print("best/median of single calls, ms; '1t': one thread (BLAS via threadpoolctl, torch.set_num_threads)")
    print(f"{'op':<11} {'input':>17} {'weight/kernel':>14} {'s,p':>4} {'composed':>15} {'fused':>15} "
          f"{'fused 1t':>15} {'torch':>15} {'torch 1t':>15} {'floor':>7} {'f/torch':>9} {'f1t/t1t':>9} "
          f"{'comp/f':>7}")
    for (name, shape, second, stride, padding), composed, fused, fused_1t, floor, torch_t, torch_1t in rows:
        print(f"{name:<11} {str(shape):>17} {str(second):>14} {f'{stride},{padding}':>4} {cell(composed)} "
              f"{cell(fused)} {cell(fused_1t)} {cell(torch_t)} {cell(torch_1t)} {floor * 1e3:7.2f} "
              f"{ratio(fused, torch_t)} {ratio(fused_1t, torch_1t)} {composed[0] / fused[0]:7.2f}")
    print("ratios from the bests; targets: fused (numpy) / torch <= 3; compiled / torch <= 1.5 "
          "(no compiled conv/pool kernels yet)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
