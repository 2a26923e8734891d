"""`tinygrad-bn check`: verify every fused kernel against its composed twin and numerically."""

from __future__ import annotations

import argparse

import numpy as np

from tinygrad_bn.kernel_registry import BACKENDS, KERNELS, FusedKernel, get_backend, numba_available


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the subcommand."""
    p = subparsers.add_parser(
        "check", help="check fused kernels vs composed twins and numerical gradients",
        description="For each registered fused kernel (BatchNorm, LayerNorm, Linear, cross-entropy, ...) "
        "and backend: compare outputs, gradients through both backward paths (grad recording off, as "
        "training runs, and the differentiable one) and double backward with the composed version, then "
        "gradcheck and gradgradcheck both sides in float64. With --mutants: run the same checks on every "
        "wrong kernel of tinygrad_bn.testing.mutants and show which check caught each one.",
    )
    p.add_argument("--kernel", action="append", metavar="NAME",
                   help=f"check only this kernel (repeatable; default: all of {sorted(KERNELS)})")
    p.add_argument("--backend", choices=[*BACKENDS, "all"], default=None,
                   help="backend to check (default: the active one; 'all': every available backend)")
    p.add_argument("--shape", default="8,4,3", help="input shape as comma-separated ints (default 8,4,3)")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mutants", action="store_true",
                   help="check that every mutant (wrong kernel) is caught and every real kernel passes the "
                        "fixed protocol; exit status 0 only if so")
    p.set_defaults(run=run)


def _parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"--shape must be comma-separated integers, got {text!r}") from None
    if len(shape) < 2 or min(shape) < 1:
        raise ValueError(f"--shape needs at least 2 positive dims (N, C, ...), got {shape}")
    return shape


def _backends(choice: str | None) -> list[str]:
    if choice is None:
        return [get_backend()]
    if choice == "all":
        return [b for b in BACKENDS if b == "numpy" or numba_available()]
    return [choice]


def run(args: argparse.Namespace) -> int:
    """Print one report per kernel and backend; exit status 1 if any check fails."""
    shape = _parse_shape(args.shape)
    names = args.kernel or sorted(KERNELS)
    unknown = [n for n in names if n not in KERNELS]
    if unknown:
        raise ValueError(f"--kernel: unknown kernel(s) {unknown}; registered: {sorted(KERNELS)}")
    if args.mutants:
        return _run_mutants(names)
    failed = False
    for backend in _backends(args.backend):
        for name in names:
            failed |= not _check_one(KERNELS[name], backend, shape, args)
    print("all checks passed" if not failed else "SOME CHECKS FAILED")
    return 1 if failed else 0


def _check_one(entry: FusedKernel, backend: str, shape: tuple[int, ...], args: argparse.Namespace) -> bool:
    """Print the checks of one kernel on one backend; True when all pass."""
    from tinygrad_bn.testing.kernels import check_kernel_on  # loads hypothesis: only when checking

    example = entry.example(np.random.default_rng(args.seed), shape, args.dtype)
    kernel = entry.implementation(backend)
    where = backend if backend == "numpy" or backend in entry.backends else f"numpy: no {backend} kernel"
    print(f"== {entry.name} [{where}]: {kernel.__name__} vs composed, "
          f"input {example[0].shape} {args.dtype}")
    result = check_kernel_on(entry, example, backend)
    print(result.fused)
    for impl, (first, second) in result.numerical.items():
        worst1 = max(r.max_rel_err for r in first.inputs)
        worst2 = max(r.max_rel_err for r in second.inputs)
        print(f"   {impl:>8}: gradcheck max rel err {worst1:.2e} ({'ok' if first.passed else 'FAIL'}), "
              f"gradgradcheck {worst2:.2e} ({'ok' if second.passed else 'FAIL'})")
    return result.passed


def _run_mutants(names: list[str]) -> int:
    """The real kernels on every backend, then their mutants; 0 when all pass and all mutants are caught."""
    from tinygrad_bn.testing.kernels import CHECKS, backends_of, kernel_cases, run_cases
    from tinygrad_bn.testing.mutants import MUTANTS, check_catalogue, verdict_table

    print("== the real kernels on the fixed protocol "
          "(check_fused, gradcheck, gradgradcheck with their default settings)")
    real_ok = True
    for name in names:
        for backend in backends_of(name):
            results = run_cases(kernel_cases(name), backend)
            failed = [f"{r.case}: {f}" for r in results for c in CHECKS for f in r.findings(c)]
            real_ok &= not failed
            print(f"{name:<16} {backend:<6} {len(results)} cases: " + ("pass" if not failed else
                  "FAIL " + "; ".join(failed[:3])))
    mutants = tuple(m for m in MUTANTS if m.kernel in names)
    print(f"\n== {len(mutants)} mutants: which check caught each one (first case: row, +more)")
    verdicts = check_catalogue(mutants)
    print(verdict_table(verdicts))
    missed = [v.mutant.id for v in verdicts if not v.caught]
    print()
    if missed:
        print(f"MISSED: {', '.join(missed)}")
    print(f"{len(verdicts) - len(missed)} of {len(verdicts)} mutants caught; real kernels "
          + ("pass" if real_ok else "FAIL"))
    return 0 if real_ok and not missed else 1
