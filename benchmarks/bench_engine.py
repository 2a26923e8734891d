"""Engine overhead: per-op cost of tiny ops and an MLP training step, vs PyTorch CPU eager.

    python benchmarks/bench_engine.py [--quick] [--repeat N] [--profile]

Workloads (each run forward + backward, timed best-of and median-of `repeat`):
  chain     N alternating `y * 1.0001` / `y + 0.5` on a tiny tensor, then
            y.sum().backward(); reported per op (total / N). On tensors this
            small the arithmetic is free, so this is the engine's bookkeeping.
  per op    a chain of N of one op (add, mul with a constant tensor; matmul by a
            constant (10, 10) matrix; sum(axis=1, keepdims=True)): forward alone,
            forward + backward, and backward as their difference, per op.
  mlp       one SGD step of a 784-100-10 MLP on a batch of 100 (float32): linear,
            relu, linear, cross_entropy, backward, in-place update. Per step.
Ratios are ours / torch: below 1 means we are faster. The issue's target is a
chain per-op ratio <= 1. Each library runs in its own block (interleaving lets
one library's worker threads slow the other). torch is limited to one thread;
numpy's BLAS threads are fixed at import (set OMP_NUM_THREADS/OPENBLAS_NUM_THREADS
before starting Python to change them), so the header reports them.
`--profile` adds a cProfile of our chain: where the time per op goes.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import platform
import pstats
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import tinygrad_bn as tg
from tinygrad_bn import Tensor, functional, nn

THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


# ---------------------------------------------------------------- timing

# Every workload is a closure returning the seconds its phases took, timed inside
# with perf_counter: (forward, backward). Timing the phases directly rather than
# subtracting two runs keeps the backward column meaningful on a noisy machine.
Phases = tuple[float, float]
Workload = Callable[[], Phases]


@dataclass
class Timing:
    """Best and median, over repeats, of the forward, backward and total time of one call."""

    best: Phases
    median: Phases
    best_total: float
    median_total: float


def measure(fn: Workload, repeat: int, min_time: float = 0.05) -> Timing:
    """Time `fn` `repeat` times, each time over enough calls to last ~min_time."""
    fn()  # warm up: allocator, caches, lazy imports
    once = max(sum(fn()), 1e-7)
    number = max(1, int(min_time / once))
    runs = []
    for _ in range(repeat):
        fwd = bwd = 0.0
        for _ in range(number):
            f, b = fn()
            fwd += f
            bwd += b
        runs.append((fwd / number, bwd / number))
    totals = [f + b for f, b in runs]
    return Timing(
        best=(min(f for f, _ in runs), min(b for _, b in runs)),
        median=(statistics.median(f for f, _ in runs), statistics.median(b for _, b in runs)),
        best_total=min(totals),
        median_total=statistics.median(totals),
    )


# ---------------------------------------------------------------- workloads: ours


def ours_chain(n_ops: int, shape: tuple[int, ...]) -> Workload:
    """n_ops alternating mul/add with Python scalars, then sum and backward."""
    x = Tensor(np.full(shape, 0.5, dtype=np.float32), requires_grad=True)

    def run() -> Phases:
        x.grad = None
        start = time.perf_counter()
        y = x
        for _ in range(n_ops // 2):
            y = y * 1.0001
            y = y + 0.5
        loss = y.sum()
        mid = time.perf_counter()
        loss.backward()
        return mid - start, time.perf_counter() - mid

    return run


def minimal_chain(n_ops: int, shape: tuple[int, ...]) -> Workload:
    """The same chain on benchmarks/minimal_engine.py: the least an engine can cost per op."""
    from minimal_engine import MiniTensor

    x = MiniTensor(np.full(shape, 0.5, dtype=np.float32))

    def run() -> Phases:
        start = time.perf_counter()
        y = x
        for _ in range(n_ops // 2):
            y = y * np.float32(1.0001)
            y = y + np.float32(0.5)
        loss = y.sum()
        mid = time.perf_counter()
        loss.backward()
        return mid - start, time.perf_counter() - mid

    return run


def _ours_single_op(op: str) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((10, 10)).astype(np.float32), requires_grad=True)
    c = Tensor(np.full((10, 10), 0.999, dtype=np.float32))
    w = Tensor((np.eye(10) * 0.999).astype(np.float32))
    steps: dict[str, Callable[[Tensor], Tensor]] = {
        "add": lambda y: y + c,
        "mul": lambda y: y * c,
        "matmul": lambda y: y @ w,
        "sum": lambda y: y.sum(axis=1, keepdims=True),
    }
    return x, steps[op]


def ours_op(op: str, n_ops: int) -> Workload:
    """A chain of n_ops of one op on a (10, 10) tensor, then sum and backward."""
    x, step = _ours_single_op(op)

    def run() -> Phases:
        x.grad = None
        start = time.perf_counter()
        y = x
        for _ in range(n_ops):
            y = step(y)
        loss = y.sum()
        mid = time.perf_counter()
        loss.backward()
        return mid - start, time.perf_counter() - mid

    return run


def ours_mlp(batch: int = 100, impl: str = "composed") -> Workload:
    """One SGD step of a 784-100-10 float32 MLP (the update is counted with backward)."""
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(784, 100, rng=1, impl=impl), nn.ReLU(),
                          nn.Linear(100, 10, rng=2, impl=impl))
    x = Tensor(rng.standard_normal((batch, 784)).astype(np.float32))
    labels = rng.integers(0, 10, batch)
    params = model.parameters()

    def run() -> Phases:
        start = time.perf_counter()
        model.zero_grad()
        loss = functional.cross_entropy(model(x), labels, impl=impl)
        mid = time.perf_counter()
        loss.backward()
        with tg.no_grad():
            for p in params:
                p.data -= 0.01 * p.grad.data
        return mid - start, time.perf_counter() - mid

    return run


def numpy_mlp(batch: int = 100) -> Workload:
    """The same MLP step written by hand in numpy: the floor under our MLP row.

    Same shapes, dtype, matmuls and update; what is left between this and ours is
    the engine's bookkeeping (graph recording, the walk, gradient checks).
    """
    rng = np.random.default_rng(0)
    w1 = rng.uniform(-0.03, 0.03, (100, 784)).astype(np.float32)
    b1 = np.zeros(100, np.float32)
    w2 = rng.uniform(-0.1, 0.1, (10, 100)).astype(np.float32)
    b2 = np.zeros(10, np.float32)
    x = rng.standard_normal((batch, 784)).astype(np.float32)
    labels = rng.integers(0, 10, batch)
    rows = np.arange(batch)

    def run() -> Phases:
        start = time.perf_counter()
        h = x @ w1.T + b1
        a = np.maximum(h, 0)
        z = a @ w2.T + b2
        shifted = z - z.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        total = e.sum(axis=1, keepdims=True)
        _loss = np.mean(np.log(total[:, 0]) - shifted[rows, labels])
        mid = time.perf_counter()
        dz = e / total
        dz[rows, labels] -= 1.0
        dz /= batch
        dw2, db2 = dz.T @ a, dz.sum(axis=0)
        dh = (dz @ w2) * (h > 0)
        dw1, db1 = dh.T @ x, dh.sum(axis=0)
        for p, g in ((w1, dw1), (b1, db1), (w2, dw2), (b2, db2)):
            p -= 0.01 * g
        return mid - start, time.perf_counter() - mid

    return run


def count_mlp_ops(batch: int = 100) -> int:
    """How many recorded ops one MLP step's forward makes (for a per-op view of the step)."""
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(784, 100, rng=1), nn.ReLU(), nn.Linear(100, 10, rng=2))
    loss = functional.cross_entropy(
        model(Tensor(rng.standard_normal((batch, 784)).astype(np.float32))),
        rng.integers(0, 10, batch),
    )
    seen, stack = set(), [loss._ctx]
    while stack:
        ctx = stack.pop()
        if ctx is None or id(ctx) in seen:
            continue
        seen.add(id(ctx))
        stack.extend(p._ctx for p in ctx.parents)
    return len(seen)


# ---------------------------------------------------------------- workloads: torch


def torch_workloads(n_ops: int, chain_shapes: list[tuple[int, ...]]) -> dict | None:
    """The same workloads written for torch (same shapes, dtypes and op counts), or None."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    F = torch.nn.functional  # noqa: N806 - the usual alias

    def timed(forward: Callable[[], object]) -> Workload:
        def run() -> Phases:
            start = time.perf_counter()
            loss = forward()
            mid = time.perf_counter()
            loss.backward()
            return mid - start, time.perf_counter() - mid

        return run

    def chain(shape: tuple[int, ...]) -> Workload:
        x = torch.full(shape, 0.5, dtype=torch.float32, requires_grad=True)

        def forward() -> object:
            x.grad = None
            y = x
            for _ in range(n_ops // 2):
                y = y * 1.0001
                y = y + 0.5
            return y.sum()

        return timed(forward)

    def single(op: str) -> Workload:
        gen = torch.Generator().manual_seed(0)
        x = torch.randn((10, 10), generator=gen, dtype=torch.float32, requires_grad=True)
        c = torch.full((10, 10), 0.999, dtype=torch.float32)
        w = torch.eye(10, dtype=torch.float32) * 0.999
        step = {
            "add": lambda y: y + c,
            "mul": lambda y: y * c,
            "matmul": lambda y: y @ w,
            "sum": lambda y: y.sum(dim=1, keepdim=True),
        }[op]

        def forward() -> object:
            x.grad = None
            y = x
            for _ in range(n_ops):
                y = step(y)
            return y.sum()

        return timed(forward)

    def mlp(batch: int = 100) -> Workload:
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(784, 100), torch.nn.ReLU(),
                                    torch.nn.Linear(100, 10))
        x = torch.randn(batch, 784)
        labels = torch.randint(0, 10, (batch,))
        params = list(model.parameters())

        def run() -> Phases:
            start = time.perf_counter()
            for p in params:
                p.grad = None
            loss = F.cross_entropy(model(x), labels)
            mid = time.perf_counter()
            loss.backward()
            with torch.no_grad():
                for p in params:
                    p -= 0.01 * p.grad
            return mid - start, time.perf_counter() - mid

        return run

    return {
        "version": torch.__version__,
        "threads": torch.get_num_threads(),
        "chain": {shape: chain(shape) for shape in chain_shapes},
        "single": single,
        "mlp": mlp,
    }


# ---------------------------------------------------------------- the table


@dataclass
class Row:
    """One line of the table: times per unit for us and (optionally) torch."""

    name: str
    unit: str  # "us/op" or "ms/step"
    ours: tuple[float, float]
    torch: tuple[float, float] | None = None

    def cells(self) -> list[str]:
        scale = 1e6 if self.unit == "us/op" else 1e3
        ours = [f"{v * scale:9.2f}" for v in self.ours]
        if self.torch is None:
            theirs, ratios = [f"{'n/a':>9}"] * 2, [f"{'n/a':>7}"] * 2
        else:
            theirs = [f"{v * scale:9.2f}" for v in self.torch]
            ratios = [f"{a / b:7.2f}" if b > 0 else f"{'n/a':>7}" for a, b in zip(self.ours, self.torch)]
        return [f"{self.name:<36}", f"{self.unit:>7}", *ours, *theirs, *ratios]


def print_table(rows: list[Row]) -> None:
    """Print the rows with a header."""
    header = [f"{'workload':<36}", f"{'unit':>7}", f"{'ours best':>9}", f"{'ours med':>9}",
              f"{'torch best':>9}", f"{'torch med':>9}", f"{'ratio b':>7}", f"{'ratio m':>7}"]
    print(" ".join(header))
    print("-" * len(" ".join(header)))
    for row in rows:
        print(" ".join(row.cells()))


def describe_environment(torch_info: dict | None, skipped: bool) -> str:
    """One line: versions and thread settings, so numbers can be compared across machines."""
    threads = ", ".join(f"{k}={os.environ.get(k, 'unset')}" for k in THREAD_ENV)
    if torch_info:
        torch_part = f"torch {torch_info['version']} ({torch_info['threads']} thread)"
    else:
        torch_part = "torch skipped (--no-torch)" if skipped else "torch not installed"
    return (f"python {platform.python_version()}, numpy {np.__version__} ({threads}), "
            f"{torch_part}, {os.cpu_count()} CPUs")


def profile_chain(n_ops: int, shape: tuple[int, ...], top: int = 25) -> str:
    """cProfile of our chain workload, sorted by own time, with the per-op cost of each line."""
    run = ours_chain(n_ops, shape)
    run()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(5):
        run()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).sort_stats("tottime")
    print(f"cProfile of 5 runs of the chain ({n_ops} ops on {shape}); "
          f"tottime / {5 * n_ops} = own microseconds per op:", file=out)
    total = 0.0
    rows = []
    for (filename, line, func), (_cc, nc, tt, ct, _) in stats.stats.items():  # type: ignore[attr-defined]
        total += tt
        rows.append((tt, ct, nc, f"{os.path.basename(filename)}:{line}({func})"))
    rows.sort(reverse=True)
    print(f"{'us/op own':>10} {'us/op cum':>10} {'calls/op':>9}  function", file=out)
    per = 1e6 / (5 * n_ops)
    for tt, ct, nc, where in rows[:top]:
        print(f"{tt * per:10.2f} {ct * per:10.2f} {nc / (5 * n_ops):9.2f}  {where}", file=out)
    print(f"{total * per:10.2f} {'':>10} {'':>9}  total (profiled; cProfile inflates it)", file=out)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter chains, fewer repeats")
    parser.add_argument("--repeat", type=int, default=7, help="timings per measurement")
    parser.add_argument("--ops", type=int, default=1000, help="ops per chain (default 1000)")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of the chain")
    parser.add_argument("--no-keep-memory", action="store_true",
                        help="leave malloc alone (default: tinygrad_bn.keep_freed_memory(), as the CLI does)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch columns")
    args = parser.parse_args(argv)
    memory_kept = False if args.no_keep_memory else tg.keep_freed_memory()
    repeat = 3 if args.quick else args.repeat
    n_ops = 200 if args.quick else args.ops
    min_time = 0.02 if args.quick else 0.1
    chain_shapes = [(4,), (10, 10)]
    single_ops = ["add", "mul", "matmul", "sum"]

    def rows_for(timings: list[Timing]) -> list[tuple[float, float]]:
        """Flatten timings into the table's rows: (best, median) per row."""
        out = []
        n_mlp = 2  # the last two timings are MLP steps (composed, fused): per step
        for i, t in enumerate(timings):
            mlp = i >= len(timings) - n_mlp
            scale = 1.0 if mlp else 1.0 / n_ops
            if i < len(chain_shapes) or mlp:
                out.append((t.best_total * scale, t.median_total * scale))
            else:
                out += [(t.best[0] * scale, t.median[0] * scale),
                        (t.best[1] * scale, t.median[1] * scale),
                        (t.best_total * scale, t.median_total * scale)]
        return out

    names = [(f"chain of {n_ops} mul/add, {shape}", "us/op") for shape in chain_shapes]
    for op in single_ops:
        names += [(f"{op} (10, 10): forward", "us/op"), (f"{op} (10, 10): backward", "us/op"),
                  (f"{op} (10, 10): forward + backward", "us/op")]
    names.append(("MLP 784-100-10 step, batch 100", "ms/step"))
    names.append(("same MLP, impl='fused' (Linear, CE)", "ms/step"))

    # Ours, in one block.
    ours = [measure(ours_chain(n_ops, shape), repeat, min_time) for shape in chain_shapes]
    ours += [measure(ours_op(op, n_ops), repeat, min_time) for op in single_ops]
    ours.append(measure(ours_mlp(), repeat, min_time))
    ours.append(measure(ours_mlp(impl="fused"), repeat, min_time))
    floor = measure(numpy_mlp(), repeat, min_time)  # right after ours: same machine state
    minimal = [measure(minimal_chain(n_ops, shape), repeat, min_time) for shape in chain_shapes]
    rows = [Row(name, unit, t) for (name, unit), t in zip(names, rows_for(ours), strict=True)]

    # torch, in its own block, filling the same rows in the same order.
    torch_info = None if args.no_torch else torch_workloads(n_ops, chain_shapes)
    if torch_info is not None:
        theirs = [measure(torch_info["chain"][shape], repeat, min_time) for shape in chain_shapes]
        theirs += [measure(torch_info["single"](op), repeat, min_time) for op in single_ops]
        theirs.append(measure(torch_info["mlp"](), repeat, min_time))
        theirs.append(theirs[-1])  # torch has one MLP; both of our rows compare with it
        for row, t in zip(rows, rows_for(theirs), strict=True):
            row.torch = t

    print(describe_environment(torch_info, args.no_torch))
    print(f"malloc keeps freed memory (tinygrad_bn.keep_freed_memory()): {memory_kept}")
    if not any(os.environ.get(k) for k in THREAD_ENV):
        print("note: numpy's BLAS uses every core while torch uses 1 thread; for a like-for-like "
              "MLP row run with OPENBLAS_NUM_THREADS=1")
    print_table(rows)
    for shape, t in zip(chain_shapes, minimal, strict=True):
        row = rows[chain_shapes.index(shape)]
        print(f"chain {shape} on the minimal engine (benchmarks/minimal_engine.py): "
              f"{t.best_total / n_ops * 1e6:.2f} us/op best; ours / minimal = "
              f"{row.ours[0] / (t.best_total / n_ops):.2f}")
    n_mlp_ops = count_mlp_ops()
    overhead = rows[-2].ours[0] - floor.best_total
    print(f"MLP step records {n_mlp_ops} ops in its forward graph. The same step hand-written "
          f"in numpy takes {floor.best_total * 1e3:.2f} ms (best): ours - numpy = "
          f"{overhead * 1e3:.2f} ms, {overhead * 1e6 / n_mlp_ops:.1f} us per recorded op "
          "(forward + backward).")
    print(f"MLP step / hand-written numpy: composed {rows[-2].ours[0] / floor.best_total:.2f}, "
          f"fused {rows[-1].ours[0] / floor.best_total:.2f}")
    print("ratio = ours / torch (b = best, m = median); target: chain rows <= 1.")
    if args.profile:
        print()
        print(profile_chain(n_ops, (4,)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
