"""The registry of fused kernels: each kernel registered once, at the bottom of its own module.

An entry (`FusedKernel`) says everything the rest of the project needs about a
kernel: its op name, the Function that implements it (plus compiled backends),
its composed twin, how to call the fused path with the same arguments, example
arguments, and a hypothesis strategy of arguments. `functional` dispatches
`impl="fused"` through `fused_kernel(name)`; the tests, `tinygrad-bn check` and
the graph drawings loop over `KERNELS`. Adding a kernel is one file that ends in
`register_kernel(...)` plus one import line in `kernels/__init__.py`.

Backends: "numpy" is the reference every kernel has; "numba" (compiled) is used
where a kernel has it and numba is installed. The choice is "auto" by default
(numba when importable), or set with TINYGRAD_BN_BACKEND=numpy|numba|auto, or
`set_backend()` / `use_backend()`.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinygrad_bn.autograd.function import Function
from tinygrad_bn.tensor import Tensor

IMPLS = ("composed", "fused")
BACKENDS = ("numpy", "numba")

Example = Callable[[np.random.Generator, tuple[int, ...], str], list[Any]]


def check_impl(op: str, impl: Any) -> None:
    """The one check of an `impl=` argument."""
    if impl not in IMPLS:
        raise ValueError(f"{op}: impl must be 'composed' or 'fused', got {impl!r}")


@dataclass(frozen=True)
class FusedKernel:
    """A fused kernel and what its checks need; `composed` and `fused` take the same arguments."""

    name: str
    kernel: type[Function]  # the numpy implementation, the reference
    composed: Callable[..., Tensor]  # the twin built from primitives
    fused: Callable[..., Tensor]  # the same arguments through the fused path
    example: Example  # (rng, shape (N, C, ...), dtype) -> arguments for both callables
    strategy: Callable[[str], Any]  # dtype -> hypothesis strategy of argument lists
    backends: dict[str, str] = field(default_factory=dict)  # backend -> "module:Class", loaded on use

    def implementation(self, backend: str = "numpy") -> type[Function]:
        """The Function running this kernel on `backend` (the numpy one if it has none)."""
        if backend == "numpy" or backend not in self.backends:
            return self.kernel
        module, _, cls = self.backends[backend].partition(":")
        return getattr(importlib.import_module(module), cls)


KERNELS: dict[str, FusedKernel] = {}


def register_kernel(entry: FusedKernel, replace: bool = False) -> FusedKernel:
    """Add `entry` to KERNELS under its name; the checks pick it up from there."""
    if not isinstance(entry, FusedKernel):
        raise TypeError(f"register_kernel: expected a FusedKernel, got {type(entry).__name__}")
    if entry.name in KERNELS and not replace:
        raise ValueError(f"register_kernel: a kernel named {entry.name!r} is already registered")
    unknown = set(entry.backends) - set(BACKENDS)
    if unknown:
        raise ValueError(f"register_kernel: unknown backends {sorted(unknown)}; known: {BACKENDS}")
    KERNELS[entry.name] = entry
    _resolved.clear()
    return entry


def unregister_kernel(name: str) -> None:
    """Remove a kernel (tests register temporary ones)."""
    KERNELS.pop(name, None)
    _resolved.clear()


# ---------------------------------------------------------------- backends


def numba_available() -> bool:
    """True when numba can be imported (without importing it)."""
    return importlib.util.find_spec("numba") is not None


def _initial_backend() -> str:
    value = os.environ.get("TINYGRAD_BN_BACKEND", "auto")
    return value if value in (*BACKENDS, "auto") else "auto"


_backend = _initial_backend()
_resolved: dict[str, type[Function]] = {}  # name -> implementation for the current backend


def get_backend() -> str:
    """The backend fused kernels run on: "numpy" or "numba" ("auto" resolved)."""
    if _backend == "auto":
        return "numba" if numba_available() else "numpy"
    return _backend


def set_backend(backend: str) -> None:
    """Choose the backend of fused kernels: "numpy", "numba" or "auto"."""
    global _backend
    if backend not in (*BACKENDS, "auto"):
        raise ValueError(f"set_backend: backend must be one of {(*BACKENDS, 'auto')}, got {backend!r}")
    if backend == "numba" and not numba_available():
        raise RuntimeError("set_backend: the numba backend needs numba: pip install 'tinygrad_bn[fast]'")
    _backend = backend
    _resolved.clear()


@contextlib.contextmanager
def use_backend(backend: str) -> Iterator[None]:
    """Run the block with fused kernels on `backend`."""
    previous = _backend
    set_backend(backend)
    try:
        yield
    finally:
        set_backend(previous)


def fused_kernel(name: str) -> type[Function]:
    """The Function that runs kernel `name` on the current backend."""
    fn = _resolved.get(name)
    if fn is None:
        if name not in KERNELS:
            raise KeyError(f"no fused kernel named {name!r}; registered: {sorted(KERNELS)}")
        fn = _resolved[name] = KERNELS[name].implementation(get_backend())
    return fn
