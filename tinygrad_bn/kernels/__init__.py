"""Fused kernels: one Function per layer, with a hand-derived backward.

Each kernel module registers itself (op name, composed twin, example arguments,
hypothesis strategy) in `registry.KERNELS` at its bottom; importing this package
loads them all. The tests, `tinygrad-bn check` and the drawings loop over that
registry, so adding a kernel is one file plus one import line here.
"""

from tinygrad_bn.kernel_registry import (
    KERNELS,
    FusedKernel,
    fused_kernel,
    get_backend,
    register_kernel,
    set_backend,
    unregister_kernel,
    use_backend,
)
from tinygrad_bn.kernels import batchnorm, cross_entropy, layernorm, linear  # noqa: F401 - registers
from tinygrad_bn.kernels import conv  # noqa: F401 - registers
from tinygrad_bn.kernels import groupnorm, pool  # noqa: F401 - registers
from tinygrad_bn.kernels.batchnorm import BatchNormFused
from tinygrad_bn.kernels.cross_entropy import CrossEntropyFused
from tinygrad_bn.kernels.layernorm import LayerNormFused
from tinygrad_bn.kernels.linear import LinearFused

__all__ = [
    "KERNELS", "BatchNormFused", "CrossEntropyFused", "FusedKernel", "LayerNormFused", "LinearFused",
    "fused_kernel", "get_backend", "register_kernel", "set_backend", "unregister_kernel", "use_backend",
]
