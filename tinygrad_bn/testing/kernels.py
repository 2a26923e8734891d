"""The generic checks every registered fused kernel gets, on every backend.

The tests and `tinygrad-bn check` call these with entries of
`kernel_registry.KERNELS`, so a kernel registered anywhere (a user's module, a
test) is checked like the shipped ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinygrad_bn.gradcheck import GradcheckReport, gradcheck, gradgradcheck
from tinygrad_bn.kernel_registry import KERNELS, FusedKernel, use_backend
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
