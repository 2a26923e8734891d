"""tinygrad_bn: a small reverse-mode autodiff engine over numpy, built around BatchNorm.

`import tinygrad_bn` loads the engine only (tensor, autograd, ops, functional,
kernels, nn, optim) and changes nothing process-wide. The tools built on it
(viz, gradcheck, testing, train, data, experiments, compat) load on first use:
`tinygrad_bn.viz.draw_graph` works after a plain `import tinygrad_bn`.
"""

import importlib
from typing import Any

# The engine (docs/index.md has the layers); tensor_methods binds the ops onto Tensor.
# Nothing runs an op while importing, so the order of these lines does not matter.
from tinygrad_bn import (
    functional,
    kernels,
    nn,
    ops,
    optim,
    tensor_methods,  # noqa: F401 - binds Tensor's methods
)
from tinygrad_bn.autograd import (
    AnomalyError,
    Function,
    detect_anomaly,
    enable_grad,
    grad,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from tinygrad_bn.functional import where
from tinygrad_bn.ops import PRIMITIVES
from tinygrad_bn.tensor import Tensor, tensor

__version__ = "0.1.0"

_LAZY_MODULES = ("compat", "data", "experiments", "gradcheck", "testing", "train", "viz")


def __getattr__(name: str) -> Any:
    """Load the tool modules on first access (`tinygrad_bn.viz`, `tinygrad_bn.train`, ...)."""
    if name in _LAZY_MODULES:
        return importlib.import_module(f"tinygrad_bn.{name}")
    raise AttributeError(f"module 'tinygrad_bn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_MODULES))


def keep_freed_memory() -> bool:
    """Opt in to reusing freed arrays (glibc malloc tuning, process-wide); see tinygrad_bn/_memory.py."""
    from tinygrad_bn import _memory

    return _memory.keep_freed_memory()


__all__ = [
    "PRIMITIVES", "AnomalyError", "Function", "Tensor", "detect_anomaly", "enable_grad", "functional",
    "grad", "is_grad_enabled", "keep_freed_memory", "kernels", "nn", "no_grad", "ops", "optim",
    "set_grad_enabled", "tensor", "where", *_LAZY_MODULES,
]
