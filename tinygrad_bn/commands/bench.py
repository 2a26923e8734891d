"""`tinygrad-bn bench [engine|batchnorm|sweep|conv|optim|kernels] [ARGS...]`: run a speed benchmark.

The benchmarks are the scripts in the source checkout's `benchmarks/` folder
(each has `main(argv)`); they are not installed with the package. This command
finds that folder (the current directory's `benchmarks/`, else the one next to
the installed package, which is the checkout in an editable install), imports
the script and passes the remaining arguments to its `main`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

# name on the command line -> (script in benchmarks/, what it measures)
BENCHMARKS = {
    "engine": ("bench_engine.py", "primitive ops and backward overhead vs numpy"),
    "batchnorm": ("bench_batchnorm.py", "BatchNorm composed vs fused vs PyTorch"),
    "sweep": ("bench_sweep.py", "the full dlfs-init-sweep vs hand-written numpy and PyTorch"),
    "conv": ("bench_conv.py", "conv2d and max_pool2d composed vs fused vs PyTorch"),
    "optim": ("bench_optim.py", "optimizer steps vs torch.optim, numpy and a memory floor"),
    "kernels": ("bench_kernels.py", "each fused kernel per backend vs PyTorch vs a memory floor"),
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the subcommand."""
    listing = "\n".join(f"  {name:<10} {what}" for name, (_, what) in BENCHMARKS.items())
    p = subparsers.add_parser(
        "bench",
        help="speed benchmarks: tables of wall times and ratios",
        description="Run a benchmark script from the source checkout's benchmarks/ folder. "
                    "Arguments after the name go to the script (e.g. `tinygrad-bn bench sweep "
                    "--help`).",
        epilog=f"benchmarks:\n{listing}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", nargs="?", choices=list(BENCHMARKS), metavar="NAME",
                   help=f"one of: {', '.join(BENCHMARKS)} (none: list them)")
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS",
                   help="arguments for the benchmark script")
    p.set_defaults(run=run)


def benchmark_dirs() -> list[Path]:
    """Where benchmark scripts are looked for, in order."""
    checkout = Path(__file__).resolve().parents[2] / "benchmarks"
    candidates = [Path.cwd() / "benchmarks", checkout]
    return list(dict.fromkeys(c.resolve() for c in candidates))


@contextlib.contextmanager
def _on_path(directory: Path) -> Iterator[None]:
    """Let a script import its sibling scripts while it loads and runs."""
    sys.path.insert(0, str(directory))
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(directory))


def load_benchmark(name: str) -> tuple[ModuleType, Path]:
    """Import benchmarks/<script> as a module; FileNotFoundError saying where it looked."""
    script = BENCHMARKS[name][0]
    for directory in benchmark_dirs():
        path = directory / script
        if path.is_file():
            module_name = f"tinygrad_bn_bench_{name}"
            spec = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module  # dataclasses look their module up
            with _on_path(directory):
                spec.loader.exec_module(module)
            if not callable(getattr(module, "main", None)):
                raise RuntimeError(f"{path} has no main(argv) function")
            return module, directory
    looked = " and ".join(str(d) for d in benchmark_dirs())
    raise FileNotFoundError(
        f"benchmark script {script} not found (looked in {looked}); the benchmarks live in "
        "the source checkout, so run this from a clone of the repository"
    )


def run(args: argparse.Namespace) -> int:
    """Run the named benchmark, or list them."""
    if args.name is None:
        for name, (script, what) in BENCHMARKS.items():
            print(f"{name:<10} {what}  (benchmarks/{script})")
        return 0
    module, directory = load_benchmark(args.name)
    with _on_path(directory):
        try:
            return int(module.main(list(args.args)) or 0)
        except SystemExit as exit_:  # argparse in the script: --help, or a usage error
            if exit_.code is None or isinstance(exit_.code, int):
                return exit_.code or 0
            print(exit_.code, file=sys.stderr)
            return 1
