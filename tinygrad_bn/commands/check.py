"""`tinygrad-bn check`: verify every fused kernel against its composed twin and numerically."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from tinygrad_bn import Tensor
from tinygrad_bn.fused_pairs import FUSED_PAIRS
from tinygrad_bn.gradcheck import check_fused, gradcheck, gradgradcheck


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the subcommand."""
    p = subparsers.add_parser(
        "check", help="check fused kernels vs composed twins and numerical gradients",
        description="For each fused kernel (BatchNorm, LayerNorm, Linear, cross-entropy): compare "
        "outputs, gradients and double backward with the composed version, then gradcheck and "
        "gradgradcheck both in float64.",
    )
    p.add_argument("--kernel", choices=sorted(FUSED_PAIRS), action="append",
                   help="check only this kernel (repeatable; default: all)")
    p.add_argument("--shape", default="8,4,3", help="input shape as comma-separated ints (default 8,4,3)")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=run)


def _parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"--shape must be comma-separated integers, got {text!r}") from None
    if len(shape) < 2 or min(shape) < 1:
        raise ValueError(f"--shape needs at least 2 positive dims (N, C, ...), got {shape}")
    return shape


def run(args: argparse.Namespace) -> int:
    """Print one report per kernel; exit status 1 if any check fails."""
    shape = _parse_shape(args.shape)
    rng = np.random.default_rng(args.seed)
    failed = False
    for name in args.kernel or sorted(FUSED_PAIRS):
        pair = FUSED_PAIRS[name]
        args_ = pair.example(rng, shape, args.dtype)
        print(f"== {name}: {pair.kernel.__name__} vs composed, input {args_[0].shape} {args.dtype}")
        report = check_fused(pair.composed, pair.fused, args_, raise_exception=False)
        print(report)
        failed |= not report.passed
        arrays = [a for a in args_ if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
        rest = args_[len(arrays):]
        for impl in ("composed", "fused"):
            fn = getattr(pair, impl)

            def call(*tensors: Tensor, fn: Any = fn, rest: list = rest) -> Tensor:
                return fn(*tensors, *rest)

            inputs = [Tensor(a.astype(np.float64), requires_grad=True) for a in arrays]
            first = gradcheck(call, inputs, raise_exception=False)
            second = gradgradcheck(call, inputs, atol=1e-4, raise_exception=False)
            worst1 = max(r.max_rel_err for r in first.inputs)
            worst2 = max(r.max_rel_err for r in second.inputs)
            print(f"   {impl:>8}: gradcheck max rel err {worst1:.2e} ({'ok' if first.passed else 'FAIL'}), "
                  f"gradgradcheck {worst2:.2e} ({'ok' if second.passed else 'FAIL'})")
            failed |= not (first.passed and second.passed)
    print("all checks passed" if not failed else "SOME CHECKS FAILED")
    return 1 if failed else 0
