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
from tinygrad_bn.kernels import (  # noqa: F401 - importing a kernel module registers it
    batchnorm,
    conv,
    cross_entropy,
    groupnorm,
    layernorm,
    linear,
    pool,
)
from tinygrad_bn.kernels.batchnorm import BatchNormFused
from tinygrad_bn.kernels.conv import ConvFused, FoldFused, UnfoldFused
from tinygrad_bn.kernels.cross_entropy import CrossEntropyFused
from tinygrad_bn.kernels.groupnorm import GroupNormFused
from tinygrad_bn.kernels.layernorm import LayerNormFused
from tinygrad_bn.kernels.linear import LinearFused
from tinygrad_bn.kernels.pool import AdaptiveAvgPool2dFused, AvgPool2dFused, MaxPool2dFused

__all__ = [
    "KERNELS", "AdaptiveAvgPool2dFused", "AvgPool2dFused", "BatchNormFused", "ConvFused", "CrossEntropyFused",
    "FoldFused", "FusedKernel", "GroupNormFused", "LayerNormFused", "LinearFused", "MaxPool2dFused",
    "UnfoldFused", "fused_kernel", "get_backend", "register_kernel", "set_backend", "unregister_kernel",
    "use_backend",
]
