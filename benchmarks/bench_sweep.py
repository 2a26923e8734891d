"""Benchmark: the full dlfs-init-sweep in tinygrad_bn vs hand-written numpy vs PyTorch CPU.

The sweep is 16 weight scales x (BN net + plain net) x 191 SGD steps + 20
evaluations each on 1,000 digits (see tinygrad_bn/experiments/dlfs_init_sweep.py).
Three implementations run the same protocol with the same random numbers:

- tinygrad_bn: `dlfs_init_sweep.train_pair`, the code `tinygrad-bn sweep` runs;
- numpy: `benchmarks/numpy_reference.py`, every forward/backward written by hand;
- PyTorch CPU (if installed): torch.nn Linear/BatchNorm1d/ReLU, torch.optim.SGD,
  initialised from the same draws.

All three run in this process, single-threaded (one BLAS thread via
threadpoolctl, torch.set_num_threads(1)): the experiments run each training on
one thread and parallelise across trainings (--jobs), so one thread is the
like-for-like comparison, and it keeps a shared machine's noise down. Scales
are interleaved (scale k in every implementation, then scale k + 1) so a slow
patch of a busy machine hits all three alike; --repeat takes the best of R.

Targets: float64 within 1.1x of hand-written numpy; float32 at most 0.9x PyTorch's time.

`--executors` measures something else: the whole `dlfs-init-sweep` preset run
the way `tinygrad-bn sweep` runs it, on `--jobs 1`, on `--jobs W` local
processes and on a Dask LocalCluster of W workers (`--scheduler local`), each
into a fresh output directory; it prints the wall times and whether each run's
results (the JSON results and the CSV, compared exactly) equal `--jobs 1`'s.

    python benchmarks/bench_sweep.py                 # both dtypes, 16 scales
    python benchmarks/bench_sweep.py --scales 4 --dtype float64 --profile
    python benchmarks/bench_sweep.py --executors --workers 2
    tinygrad-bn bench sweep --help
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import json
import os
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_bn.experiments import dlfs_init_sweep
from tinygrad_bn.experiments.common import task_rng
from tinygrad_bn.experiments.parallel import can_limit_blas_in_process, single_threaded_blas


def _load_numpy_reference() -> Any:
    """benchmarks/numpy_reference.py, imported by path (benchmarks/ is not a package)."""
    path = Path(__file__).with_name("numpy_reference.py")
    name = "tinygrad_bn_numpy_reference"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while decorating
        spec.loader.exec_module(module)
    return sys.modules[name]


# ---------------------------------------------------------------- PyTorch twin


def torch_train_pair(x: np.ndarray, y: np.ndarray, scale: float, rng: np.random.Generator,
                     config: dlfs_init_sweep.Config) -> dict[str, dict[str, list[float]]]:
    """The dlfs-init-sweep protocol in PyTorch, initialised from the same draws as ours."""
    import torch

    tdtype = {"float64": torch.float64, "float32": torch.float32}[config.dtype]
    sizes = [x.shape[1], *dlfs_init_sweep.HIDDEN_SIZES, dlfs_init_sweep.NUM_CLASSES]

    def make(use_bn: bool) -> torch.nn.Sequential:
        layers: list[torch.nn.Module] = []
        for k, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            linear = torch.nn.Linear(fan_in, fan_out, dtype=tdtype)
            with torch.no_grad():
                w = scale * rng.standard_normal((fan_in, fan_out))
                linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T)))
                linear.bias.zero_()
            layers.append(linear)
            if k < len(sizes) - 2:
                if use_bn:
                    layers.append(torch.nn.BatchNorm1d(fan_out, eps=config.bn_eps, dtype=tdtype))
                layers.append(torch.nn.ReLU())
        return torch.nn.Sequential(*layers)

    nets = {"bn": make(True), "plain": make(False)}
    opts = {k: torch.optim.SGD(n.parameters(), lr=config.lr) for k, n in nets.items()}
    x_all, y_all = torch.from_numpy(np.array(x)), torch.from_numpy(np.array(y))  # writable copies
    curves: dict[str, dict[str, list[float]]] = {k: {"train_acc": [], "loss": []} for k in nets}
    step = 0
    while True:
        rows = torch.from_numpy(rng.integers(0, len(x), config.batch_size))
        xb, yb = x_all[rows], y_all[rows]
        for key, net in nets.items():
            opts[key].zero_grad()
            loss = torch.nn.functional.cross_entropy(net(xb), yb)
            loss.backward()
            opts[key].step()
            curves[key]["loss"].append(loss.item())
        if step % config.eval_every == 0:
            for key, net in nets.items():
                net.eval()
                with torch.no_grad():
                    correct = (net(x_all).argmax(1) == y_all).double().mean()
                curves[key]["train_acc"].append(float(correct))
                net.train()
            if len(curves["bn"]["train_acc"]) >= config.evaluations:
                return curves
        step += 1


# ---------------------------------------------------------------- timing


def time_sweep(config: dlfs_init_sweep.Config, repeat: int, with_torch: bool) -> dict[str, Any]:
    """Wall seconds per implementation (best of `repeat`), and their accuracy curves."""
    reference = _load_numpy_reference()
    x, y = dlfs_init_sweep.training_digits(config)
    impls = {
        "tinygrad_bn": lambda i: _ours(config, i),
        "numpy": lambda i: reference.train_pair(
            x, y, float(config.scales[i]), task_rng(config.seed, i),
            evaluations=config.evaluations, eval_every=config.eval_every,
            batch_size=config.batch_size, lr=config.lr, bn_eps=config.bn_eps),
    }
    if with_torch:
        impls["PyTorch"] = lambda i: torch_train_pair(
            x, y, float(config.scales[i]), task_rng(config.seed, i), config)
    best: dict[str, float] = {}
    curves: dict[str, list] = {}
    for _ in range(repeat):
        seconds: dict[str, float] = defaultdict(float)
        curves = defaultdict(list)
        for i in range(config.num_scales):
            for name, fn in impls.items():
                start = time.perf_counter()
                with np.errstate(all="ignore"):
                    curves[name].append(fn(i))
                seconds[name] += time.perf_counter() - start
        for name, s in seconds.items():
            best[name] = min(best.get(name, np.inf), s)
    return {"seconds": best, "curves": dict(curves)}


def _ours(config: dlfs_init_sweep.Config, index: int) -> dict[str, Any]:
    return dlfs_init_sweep.train_pair((config, index))


def max_curve_difference(a: list[dict], b: list[dict]) -> float:
    """Largest |accuracy difference| between two implementations' curves."""
    return max(
        float(np.max(np.abs(np.subtract(ra[k]["train_acc"], rb[k]["train_acc"]))))
        for ra, rb in zip(a, b)
        for k in ("bn", "plain")
    )


# ---------------------------------------------------------------- profile


def profile_ours(config: dlfs_init_sweep.Config, index: int, top: int = 18) -> str:
    """cProfile of one BN+plain pair: where the time goes, by function and by file."""
    profiler = cProfile.Profile()
    with np.errstate(all="ignore"):
        profiler.runcall(dlfs_init_sweep.train_pair, (config, index))
    stats = pstats.Stats(profiler)
    total = sum(row[2] for row in stats.stats.values())  # tottime over every function
    by_file: dict[str, float] = defaultdict(float)
    for (filename, _, _), row in stats.stats.items():
        by_file[_short(filename)] += row[2]
    lines = [f"cProfile of one BN+plain pair (scale {config.scales[index]:.3g}, {config.dtype}): "
             f"{total:.2f} s of own time", "", "by file (own time):"]
    for name, t in sorted(by_file.items(), key=lambda kv: -kv[1])[:10]:
        lines.append(f"  {100 * t / total:5.1f}%  {t:6.2f} s  {name}")
    lines += ["", f"top {top} functions by own time:"]
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:top]
    for (filename, line, func), (_, nc, tt, _, _) in rows:
        lines.append(f"  {100 * tt / total:5.1f}%  {tt:6.2f} s  {nc:>7} calls  "
                     f"{_short(filename)}:{line}({func})")
    return "\n".join(lines)


def _short(filename: str) -> str:
    marker = os.sep + "tinygrad_bn" + os.sep
    if marker in filename:
        return "tinygrad_bn/" + filename.split(marker, 1)[1]
    if filename.startswith("~") or filename.startswith("<"):
        return filename  # builtins, e.g. "<built-in method numpy...>"
    return Path(filename).name


# ---------------------------------------------------------------- executors


def compare_executors(config: dlfs_init_sweep.Config, workers: int, repeat: int) -> str:
    """The preset on --jobs 1, --jobs W and a W-worker LocalCluster: wall times, same results?"""
    runs = {"--jobs 1": (None, 1), f"--jobs {workers}": (None, workers)}
    try:
        import distributed  # noqa: F401
    except ImportError:
        print("dask.distributed is not installed: the LocalCluster row is skipped")
    else:
        runs[f"--scheduler local ({workers} workers)"] = ("local", workers)
    best: dict[str, tuple[float, float, float]] = {}
    outputs: dict[str, tuple[Any, str]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        # Outside the clock: the data, matplotlib and the first figure, for every row alike.
        dlfs_init_sweep.run(dlfs_init_sweep.Config.quick(num_scales=1), out_dir=Path(tmp) / "warm",
                            log=None, progress_bar=False)
        for r in range(repeat):
            for k, (name, (executor, jobs)) in enumerate(runs.items()):
                out = Path(tmp) / f"{k}-{r}"  # fresh: nothing to resume
                start = time.perf_counter()
                result = dlfs_init_sweep.run(config, jobs=jobs, executor=executor, out_dir=out,
                                             log=None, progress_bar=False)
                wall = time.perf_counter() - start
                cpu = sum(json.loads(f.read_text())["cpu_seconds"]
                          for f in result.run_dir.glob("task-*.json"))
                if name not in best or wall < best[name][0]:
                    best[name] = (wall, result.seconds, cpu)
                table = (out / "dlfs-init-sweep.csv").read_text()
                outputs.setdefault(name, (result.results, table))
    reference_results, reference_table = outputs["--jobs 1"]
    header = (f"{'executor':<32} {'wall s':>8} {'tasks s':>8} {'task CPU s':>10} "
              f"{'vs --jobs 1':>12}  {'results == --jobs 1':>19}")
    lines = [header, "-" * len(header)]
    for name, (wall, tasks_seconds, cpu) in best.items():
        results, table = outputs[name]
        same = "yes" if results == reference_results and table == reference_table else "NO"
        lines.append(f"{name:<32} {wall:>8.2f} {tasks_seconds:>8.2f} {cpu:>10.2f} "
                     f"{best['--jobs 1'][0] / wall:>11.2f}x  {same:>19}")
    lines += ["wall s: the whole call (a LocalCluster's start and stop included); tasks s: from the",
              "first task submitted to the last result; task CPU s: the workers' CPU time while",
              "running the tasks, summed (what a busy machine cannot inflate much)"]
    return "\n".join(lines)


# ---------------------------------------------------------------- main


def _torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    """Time the sweep in each implementation and print the table (and a profile if asked)."""
    parser = argparse.ArgumentParser(
        prog="bench_sweep", description="dlfs-init-sweep: tinygrad_bn vs hand-written numpy "
        "vs PyTorch CPU, single-threaded, same protocol and random numbers.")
    parser.add_argument("--dtype", choices=("float64", "float32", "both"), default="both")
    parser.add_argument("--scales", type=int, default=16, help="weight scales (default 16)")
    parser.add_argument("--evaluations", type=int, default=20, help="evaluations (default 20)")
    parser.add_argument("--bn-impl", choices=("fused", "composed"), default="fused")
    parser.add_argument("--repeat", type=int, default=1, help="best of R runs (default 1)")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    parser.add_argument("--profile", action="store_true",
                        help="also cProfile one BN+plain pair of ours per dtype")
    parser.add_argument("--executors", action="store_true",
                        help="instead: the preset on --jobs 1, --jobs W and a W-worker Dask "
                             "LocalCluster; wall times and whether the results are identical")
    parser.add_argument("--workers", type=int, default=2, metavar="W",
                        help="workers for --executors (default 2)")
    args = parser.parse_args(argv)
    if args.scales < 1 or args.evaluations < 1 or args.repeat < 1 or args.workers < 1:
        parser.error("--scales, --evaluations, --repeat and --workers must be positive")
    if args.executors:
        dtype = "float64" if args.dtype == "both" else args.dtype
        config = dlfs_init_sweep.Config(num_scales=args.scales, evaluations=args.evaluations,
                                        dtype=dtype, bn_impl=args.bn_impl)
        print(f"dlfs-init-sweep preset: {args.scales} scales x (BN + plain), {args.evaluations} "
              f"evaluations, {dtype}; best of {args.repeat}, each run into a fresh directory\n")
        print(compare_executors(config, args.workers, args.repeat))
        return 0
    with_torch = not args.no_torch and _torch_available()
    if with_torch:
        import torch

        torch.set_num_threads(1)
    if not can_limit_blas_in_process():
        print("note: threadpoolctl is not installed, so numpy's BLAS may use several threads")
    dtypes = ("float64", "float32") if args.dtype == "both" else (args.dtype,)
    print(f"dlfs-init-sweep: {args.scales} scales x (BN + plain), {args.evaluations} "
          f"evaluations, BatchNorm impl {args.bn_impl!r}, single-threaded, best of {args.repeat}")
    if not with_torch:
        print("PyTorch: not installed (or --no-torch), column skipped")
    rows = []
    profiles = []
    with single_threaded_blas():
        for dtype in dtypes:
            config = dlfs_init_sweep.Config(num_scales=args.scales, evaluations=args.evaluations,
                                            dtype=dtype, bn_impl=args.bn_impl)
            dlfs_init_sweep.training_digits(config)  # load (and cache) the data outside the clock
            timing = time_sweep(config, args.repeat, with_torch)
            rows.append((dtype, timing))
            if args.profile:
                profiles.append(profile_ours(config, index=config.num_scales // 2))
    print()
    header = f"{'dtype':<8} {'implementation':<14} {'wall s':>8} {'per pair':>9} " \
             f"{'vs numpy':>9} {'vs torch':>9}  {'max |acc diff| vs ours':>22}"
    print(header)
    print("-" * len(header))
    for dtype, timing in rows:
        seconds, curves = timing["seconds"], timing["curves"]
        for name, s in seconds.items():
            vs_numpy = s / seconds["numpy"]
            vs_torch = f"{s / seconds['PyTorch']:>8.2f}x" if "PyTorch" in seconds else f"{'-':>9}"
            diff = "" if name == "tinygrad_bn" else \
                f"{max_curve_difference(curves['tinygrad_bn'], curves[name]):.3f}"
            print(f"{dtype:<8} {name:<14} {s:>8.2f} {s / args.scales:>9.3f} "
                  f"{vs_numpy:>8.2f}x {vs_torch}  {diff:>22}")
    print("\ntargets: float64 tinygrad_bn <= 1.1x numpy; float32 tinygrad_bn <= 0.9x PyTorch")
    for dtype, timing in rows:
        s = timing["seconds"]
        if dtype == "float64":
            ratio = s["tinygrad_bn"] / s["numpy"]
            print(f"  float64 vs numpy:   {ratio:.2f}x  {'met' if ratio <= 1.1 else 'NOT met'}")
        if dtype == "float32" and "PyTorch" in s:
            ratio = s["tinygrad_bn"] / s["PyTorch"]
            print(f"  float32 vs PyTorch: {ratio:.2f}x  {'met' if ratio <= 0.9 else 'NOT met'}")
    for text in profiles:
        print("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
