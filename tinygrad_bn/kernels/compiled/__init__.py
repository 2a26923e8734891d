"""Compiled backends of the fused kernels: the same Functions, written as numba loops.

Each kernel here has exactly the apply(...) arguments, outputs, gradients and
stats of its numpy twin in `tinygrad_bn.kernels`, and delegates double backward
(create_graph=True) to that twin's Tensor-op path. The loops read and write each
array as few times as the maths allows (each kernel's docstring counts the
passes), accumulate in float64, and give bit-identical results for any number of
numba threads. Importing this package does not import numba; `load()` does.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

# kernel name -> (module under this package, Function class name)
_KERNELS = {
    "batch_norm": ("batchnorm", "NumbaBatchNormFused"),
    "layer_norm": ("layernorm", "NumbaLayerNormFused"),
    "cross_entropy": ("cross_entropy", "NumbaCrossEntropyFused"),
    "conv2d": ("conv", "NumbaConvFused"),
    "conv1d": ("conv", "NumbaConvFused"),
    "max_pool2d": ("pool", "NumbaMaxPool2dFused"),
    "avg_pool2d": ("pool", "NumbaAvgPool2dFused"),
}


def available() -> bool:
    """True when numba is installed (the compiled kernels' only extra requirement)."""
    return importlib.util.find_spec("numba") is not None


def load() -> dict[str, Any]:
    """Import the compiled kernels (and numba): {"batch_norm": Function class, ...}."""
    if not available():
        raise ImportError(
            "tinygrad_bn.kernels.compiled needs numba: pip install 'tinygrad_bn[fast]' (or numba>=0.59)"
        )
    return {
        name: getattr(importlib.import_module(f"{__name__}.{module}"), cls)
        for name, (module, cls) in _KERNELS.items()
    }
