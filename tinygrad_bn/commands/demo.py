"""`tinygrad-bn demo`: placeholder until the experiments land."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the subcommand."""
    p = subparsers.add_parser("demo", help="the project's main job")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo."""
    print("tinygrad_bn: the demo arrives with the experiments; the engine is installed.")
    return 0
