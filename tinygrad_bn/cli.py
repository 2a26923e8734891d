"""The `tinygrad-bn` command line: demo | graph | check | sweep | bench.

Each subcommand lives in its own module under `tinygrad_bn/commands/` with
`add_parser(subparsers)` and `run(args) -> int`. Errors the user can act on are
printed as one line (`tinygrad-bn: error: ...`), not as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from tinygrad_bn import keep_freed_memory

# name -> module under tinygrad_bn.commands; listed explicitly, in help order.
COMMANDS = ("demo", "graph", "check", "sweep", "bench")


class CommandError(Exception):
    """An error to report to the user as one line, without a traceback."""


def _available_commands() -> list:
    modules = []
    for name in COMMANDS:
        try:
            modules.append(importlib.import_module(f"tinygrad_bn.commands.{name}"))
        except ModuleNotFoundError as err:
            if err.name != f"tinygrad_bn.commands.{name}":
                raise
    return modules


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="tinygrad-bn",
        description="tinygrad_bn: autodiff over numpy, BatchNorm composed vs fused.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _available_commands():
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    # The commands allocate many short-lived arrays: let malloc reuse them (see _memory.py).
    keep_freed_memory()
    try:
        return int(args.run(args) or 0)
    except (CommandError, FileNotFoundError, ValueError, RuntimeError) as err:
        print(f"tinygrad-bn {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tinygrad-bn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
