"""conv2d and max_pool2d forward+backward: composed vs fused (numpy, numba) vs PyTorch CPU vs a floor.

    python benchmarks/bench_conv.py [--quick] [--repeat N] [--no-compile-time]

One row per case, float32: the best and median time of a forward plus backward
(gradients for input, weight and bias) of each implementation: composed, the
fused kernel on the numpy backend and on the numba backend, each fused one
also on one thread (numpy's BLAS limited with threadpoolctl, numba's loops run
serially; torch with set_num_threads(1)), and the ratios to torch (default
threads, then one thread each) and composed / fused. For convolution the floor
is the three matrix products an im2col convolution cannot avoid (forward, dW,
dX) timed alone on ready-made matrices (the numba kernel's Winograd path does
fewer multiplications than that floor); for pooling, one read of the input and
one write of its gradient. Each library runs in its own block, ours first:
numpy's and torch's worker threads spin after each call and slow each other
down when interleaved. The compiled kernels' first-call time (compiling from
scratch, in a fresh process with an empty numba cache) is printed first.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator

import numpy as np

from tinygrad_bn import Tensor, keep_freed_memory
from tinygrad_bn import functional as F
from tinygrad_bn.kernel_registry import numba_available, use_backend

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


def ours(case: tuple, impl: str, backend: str = "numpy") -> Callable[[], object]:
    """A closure running one fwd+bwd of our op (the fused one on `backend`)."""
    step = _ours(case, impl)

    def on_backend() -> None:
        with use_backend(backend):
            step()

    return on_backend


def _ours(case: tuple, impl: str) -> Callable[[], object]:
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


@contextlib.contextmanager
def one_thread(backend: str) -> Iterator[None]:
    """One BLAS thread, and for numba its loops run serially."""
    with one_blas_thread():
        if backend != "numba":
            yield
            return
        from tinygrad_bn.kernels.compiled import _jit

        with _jit.force_threads(False):
            yield


COMPILE_SCRIPT = """
import time, numpy as np
start = time.perf_counter()
from tinygrad_bn import Tensor
from tinygrad_bn import functional as F
from tinygrad_bn.kernel_registry import use_backend
rng = np.random.default_rng(0)
times = {}
with use_backend("numba"):
    for label, c, f in (("conv2d im2col", 3, 16), ("conv2d winograd", 64, 64)):
        x = Tensor(rng.standard_normal((2, c, 8, 8)).astype(np.float32), requires_grad=True)
        w = Tensor(rng.standard_normal((f, c, 3, 3)).astype(np.float32), requires_grad=True)
        t = time.perf_counter()
        F.conv2d(x, w, padding=1).sum().backward()
        times[label] = time.perf_counter() - t
    x = Tensor(rng.standard_normal((2, 3, 8, 8)).astype(np.float32), requires_grad=True)
    t = time.perf_counter()
    F.max_pool2d(x, 2).sum().backward()
    times["max_pool2d"] = time.perf_counter() - t
    t = time.perf_counter()
    F.max_pool2d(x, 2).sum().backward()
    times["max_pool2d, second call"] = time.perf_counter() - t
print(" ".join(f"{k.replace(' ', '_')}={v:.3f}" for k, v in times.items()))
"""


def compile_times(cache_dir: str | None) -> dict[str, float]:
    """First fwd+bwd of each compiled kernel (float32) in a fresh process, numba caching in `cache_dir`."""
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", COMPILE_SCRIPT], capture_output=True, text=True, env=env,
                         check=True).stdout.split()
    return {k.replace("_", " "): float(v) for k, v in (item.split("=") for item in out)}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one conv and one pool case, fewer repeats")
    parser.add_argument("--repeat", type=int, default=25, help="single-call timings per measurement")
    parser.add_argument("--no-compile-time", action="store_true", help="skip the compile-time run")
    args = parser.parse_args(argv)
    keep_freed_memory()
    cases = [CONV_CASES[0], POOL_CASES[0]] if args.quick else CONV_CASES + POOL_CASES
    repeat = 5 if args.quick else args.repeat
    backends = ["numpy"] + (["numba"] if numba_available() else [])

    if "numba" in backends and not args.no_compile_time:
        with tempfile.TemporaryDirectory() as empty:
            cold = compile_times(empty)
        warm = compile_times(None)
        print("numba first fwd+bwd call, s (compiling from scratch / loading the disk cache): "
              + ", ".join(f"{k} {cold[k]:.1f} / {warm[k]:.2f}" for k in cold))

    rows = []
    for case in cases:
        row = {"case": case, "composed": timings(ours(case, "composed"), repeat)}
        for backend in backends:
            row[backend] = timings(ours(case, "fused", backend), repeat)
            with one_thread(backend):
                row[f"{backend} 1t"] = timings(ours(case, "fused", backend), repeat)
        row["floor"] = floor_time(case, repeat)
        rows.append(row)
    for threads, key in ((None, "torch"), (1, "torch 1t")):  # torch in its own block, after ours
        for row in rows:
            step = torch_step(row["case"], threads)
            row[key] = timings(step, repeat) if step else None

    def cell(t: tuple[float, float] | None) -> str:
        return f"{t[0] * 1e3:7.2f}/{t[1] * 1e3:<7.2f}" if t else f"{'n/a':>15}"

    def ratio(a: tuple[float, float] | None, b: tuple[float, float] | None) -> str:
        return f"{a[0] / b[0]:8.2f}" if a and b else f"{'n/a':>8}"

    timed = ["composed"] + [k for b in backends for k in (b, f"{b} 1t")] + ["torch", "torch 1t"]
    print("best/median of single calls, ms; '1t': one thread (BLAS via threadpoolctl, numba loops serial, "
          "torch.set_num_threads)")
    print(f"{'op':<11} {'input':>17} {'weight/kernel':>14} {'s,p':>4} "
          + " ".join(f"{k:>15}" for k in timed) + f" {'floor':>7} "
          + " ".join(f"{b[:5] + '/t':>8} {b[:5] + '1t/t1t':>8}" for b in backends) + f" {'comp/np':>8}")
    for row in rows:
        name, shape, second, stride, padding = row["case"]
        print(f"{name:<11} {str(shape):>17} {str(second):>14} {f'{stride},{padding}':>4} "
              + " ".join(cell(row[k]) for k in timed) + f" {row['floor'] * 1e3:7.2f} "
              + " ".join(f"{ratio(row[b], row['torch'])} {ratio(row[f'{b} 1t'], row['torch 1t'])}"
                         for b in backends)
              + f" {ratio(row['composed'], row['numpy'])}")
    print("ratios from the bests; targets: fused numpy / torch <= 3; fused numba (compiled) / torch <= 1.5")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
