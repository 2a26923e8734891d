"""The `tinygrad-bn` command line: demo | graph | check | sweep | bench."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinygrad-bn", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("demo", help="BatchNorm composed vs fused on real digits, graphs, the init sweep")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "demo":
        print("tinygrad_bn: the demo arrives with the experiments; the engine is installed.")
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
