"""The generic checks every registered fused kernel gets, on every backend.

The tests and `tinygrad-bn check` call these with entries of
`kernel_registry.KERNELS`, so a kernel registered anywhere (a user's module, a
test) is checked like the shipped ones. Two ways to run them:

- over the entry's hypothesis strategy (`check_kernel_property`), in the tests;
- on a fixed protocol of cases (`kernel_cases` / `run_cases`): 2-D, 3-D and 4-D
  inputs in float64 and float32, float32 far from zero, and for BatchNorm its
  layers with running statistics; check_fused with its default settings on each,
  gradcheck and gradgradcheck with theirs on the float64 ones. `tinygrad-bn check
  --mutants` runs this protocol on every mutant of `testing.mutants`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinygrad_bn.gradcheck import GradcheckReport, gradcheck, gradgradcheck
from tinygrad_bn.kernel_registry import BACKENDS, KERNELS, FusedKernel, numba_available, use_backend
from tinygrad_bn.tensor import Tensor
from tinygrad_bn.testing.check_fused import FusedCheckReport, check_fused

# gradgradcheck's absolute tolerance: second derivatives of normalised layers come out of
# cancellations ~1e3 times larger than the result (r**3 = eps**-1.5 terms), so central
# differences of the first derivative carry ~1e-6 of absolute noise at eps=1e-6.
GRADGRAD_ATOL = 1e-4


def entry_of(kernel: str | FusedKernel) -> FusedKernel:
    """A registry entry, by name or as given."""
    if isinstance(kernel, FusedKernel):
        return kernel
    if kernel not in KERNELS:
        raise KeyError(f"no fused kernel named {kernel!r}; registered: {sorted(KERNELS)}")
    return KERNELS[kernel]


def split_arguments(args: list[Any]) -> tuple[list[np.ndarray], list[Any]]:
    """(the float arrays to differentiate, the other arguments): kernels take arrays first."""
    arrays = [a for a in args if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    return arrays, list(args[len(arrays):])


def bound(fn: Callable[..., Any], rest: list[Any]) -> Callable[..., Any]:
    """fn with its non-differentiable trailing arguments filled in."""
    return lambda *tensors: fn(*tensors, *rest)


def gradchecks(entry: FusedKernel, args: list[Any], impl: str) -> tuple[GradcheckReport, GradcheckReport]:
    """gradcheck and gradgradcheck (float64) of one side of a kernel on one argument list."""
    arrays, rest = split_arguments(args)
    call = bound(getattr(entry, impl), rest)
    inputs = [Tensor(a.astype(np.float64), requires_grad=True) for a in arrays]
    first = gradcheck(call, inputs, raise_exception=False)
    second = gradgradcheck(call, inputs, atol=GRADGRAD_ATOL, raise_exception=False)
    return first, second


@dataclass
class KernelCheck:
    """check_fused and the numerical checks of both sides, for one kernel on one backend."""

    name: str
    backend: str
    fused: FusedCheckReport
    numerical: dict[str, tuple[GradcheckReport, GradcheckReport]]

    @property
    def passed(self) -> bool:
        return self.fused.passed and all(a.passed and b.passed for a, b in self.numerical.values())


def check_kernel_on(kernel: str | FusedKernel, args: list[Any], backend: str = "numpy") -> KernelCheck:
    """Every check of one kernel on one argument list (what `tinygrad-bn check` prints)."""
    entry = entry_of(kernel)
    with use_backend(backend):
        fused = check_fused(entry.composed, entry.fused, args, raise_exception=False)
        numerical = {impl: gradchecks(entry, args, impl) for impl in ("composed", "fused")}
    return KernelCheck(entry.name, backend, fused, numerical)


def check_kernel_property(kernel: str | FusedKernel, dtype: str, backend: str = "numpy",
                          **options: Any) -> FusedCheckReport:
    """check_fused over the kernel's own hypothesis strategy (raises on the first failure)."""
    entry = entry_of(kernel)
    with use_backend(backend):
        return check_fused(entry.composed, entry.fused, entry.strategy(dtype), **options)


def backends_of(kernel: str | FusedKernel) -> list[str]:
    """The backends a kernel runs on here: numpy, plus each of its compiled ones that can load."""
    entry = entry_of(kernel)
    return [b for b in BACKENDS if b == "numpy" or (b in entry.backends and numba_available())]


# ---------------------------------------------------------------- the fixed protocol

# 2-D, 3-D and 4-D inputs: bugs in the handling of spatial axes show up only in some.
EXAMPLE_SHAPES = ((6, 3), (4, 3, 2), (3, 2, 2, 2))
# A float32 case far from zero, where float32 loses the low digits of every value: a
# kernel that cancels large terms (one-pass variance, E[x^2] - E[x]^2) fails there.
FLOAT32_OFFSET = 1000.0


@dataclass(frozen=True)
class Case:
    """One fixed input of the protocol: what check_fused compares, and whether to gradcheck it."""

    label: str
    composed: Callable[..., Any]
    fused: Callable[..., Any]
    args: list[Any]
    steps: int = 1
    numerical: bool = False  # also gradcheck and gradgradcheck the fused side (float64 cases)


def example_shapes(kernel: str | FusedKernel) -> list[tuple[int, ...]]:
    """The EXAMPLE_SHAPES the kernel's composed twin accepts (a 2-D convolution takes 4-D only)."""
    entry = entry_of(kernel)
    shapes = []
    for shape in EXAMPLE_SHAPES:
        args = entry.example(np.random.default_rng(0), shape, "float64")
        arrays, rest = split_arguments(args)
        try:
            entry.composed(*[Tensor(a) for a in arrays], *rest)
        except (ValueError, TypeError, IndexError):
            continue
        shapes.append(shape)
    if not shapes:
        raise ValueError(f"{entry.name}: its example accepts none of the shapes {EXAMPLE_SHAPES}")
    return shapes


def first_example(kernel: str | FusedKernel, dtype: str = "float64") -> list[Any]:
    """The kernel's example arguments at its first accepted shape."""
    entry = entry_of(kernel)
    return entry.example(np.random.default_rng(0), example_shapes(entry)[0], dtype)


def kernel_cases(kernel: str | FusedKernel, fused_layer: Callable[..., Any] | None = None) -> list[Case]:
    """The protocol's cases for one kernel (fresh objects each call: layers keep state).

    `fused_layer(layer_class, num_features)` replaces the fused layer of the
    stateful cases (mutants of BatchNorm's running statistics use it).
    """
    entry = entry_of(kernel)
    shapes = example_shapes(entry)
    cases = []
    for dtype in ("float64", "float32"):
        for shape in shapes:
            args = entry.example(np.random.default_rng(0), shape, dtype)
            cases.append(Case(f"{dtype} {shape}", entry.composed, entry.fused, args,
                              numerical=dtype == "float64"))
    args = entry.example(np.random.default_rng(0), shapes[0], "float32")
    args[0] = (args[0] + np.float32(FLOAT32_OFFSET)).astype(np.float32)
    cases.append(Case(f"float32 {shapes[0]} + {FLOAT32_OFFSET:g}", entry.composed, entry.fused, args))
    builder = LAYER_CASES.get(entry.name)
    return cases + (builder(fused_layer) if builder is not None else [])


def _batch_norm_layers(fused_layer: Callable[..., Any] | None) -> list[Case]:
    """BatchNorm1d and BatchNorm2d, composed vs fused, compared after 3 training steps."""
    from tinygrad_bn import nn

    cases = []
    for cls, shape in ((nn.BatchNorm1d, EXAMPLE_SHAPES[0]), (nn.BatchNorm2d, EXAMPLE_SHAPES[2])):
        rng = np.random.default_rng(1)
        x, channels = rng.normal(1.0, 2.0, shape), shape[1]
        gamma, beta = rng.normal(1.0, 0.5, channels), rng.normal(0.0, 0.5, channels)
        composed = cls(channels, impl="composed", dtype=np.float64)
        fused = fused_layer(cls, channels) if fused_layer is not None else cls(channels, dtype=np.float64)
        for layer in (composed, fused):  # away from 1 and 0, so no gradient is special
            layer.weight.data, layer.bias.data = gamma.copy(), beta.copy()
        cases.append(Case(f"{cls.__name__} {shape}, 3 steps", composed, fused, [x], steps=3))
    return cases


# Kernels whose layers keep state get extra cases; the registry entry itself is stateless.
LAYER_CASES: dict[str, Callable[[Callable[..., Any] | None], list[Case]]] = {"batch_norm": _batch_norm_layers}

CHECKS = ("check_fused", "gradcheck", "gradgradcheck")


@dataclass
class CaseResult:
    """What each check said about one case: its report, or the error it raised."""

    case: str
    reports: dict[str, Any] = field(default_factory=dict)  # check name -> report
    errors: dict[str, str] = field(default_factory=dict)  # check name -> "ErrorType: message"

    def findings(self, check: str) -> list[str]:
        """Why `check` failed on this case (empty when it passed or did not run)."""
        if check in self.errors:
            return [f"raised {self.errors[check]}"]
        report = self.reports.get(check)
        if report is None or report.passed:
            return []
        if isinstance(report, FusedCheckReport):
            return [row.quantity for row in report.failures()]
        return [f"input {r.index}" for r in report.inputs if not r.passed]

    @property
    def passed(self) -> bool:
        return not any(self.findings(check) for check in CHECKS)


def run_cases(cases: list[Case], backend: str = "numpy", numerical: bool = True) -> list[CaseResult]:
    """check_fused (and, where a case asks, gradcheck and gradgradcheck) on every case, defaults all."""
    results = []
    with use_backend(backend):
        for case in cases:
            result = CaseResult(case.label)
            _record(result, "check_fused", lambda c=case: check_fused(
                c.composed, c.fused, c.args, steps=c.steps, raise_exception=False))
            if numerical and case.numerical:
                arrays, rest = split_arguments(case.args)
                call = bound(case.fused, rest)
                for name, check in (("gradcheck", gradcheck), ("gradgradcheck", gradgradcheck)):
                    inputs = [Tensor(a.copy(), requires_grad=True) for a in arrays]
                    _record(result, name,
                            lambda ch=check, f=call, ins=inputs: ch(f, ins, raise_exception=False))
            results.append(result)
    return results


def _record(result: CaseResult, check: str, run: Callable[[], Any]) -> None:
    try:
        result.reports[check] = run()
    except Exception as err:  # a check that raises has found something wrong, too
        result.errors[check] = f"{type(err).__name__}: {str(err).splitlines()[0]}"
