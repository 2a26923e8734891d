"""Fused kernels: one Function per layer, with a hand-derived backward.

Each kernel is paired with its composed twin in `functional_norm.FUSED_PAIRS`;
the tests loop over that registry, so adding a kernel adds its checks.
"""

from tinygrad_bn.kernels.batchnorm import BatchNormFused
from tinygrad_bn.kernels.layernorm import LayerNormFused

__all__ = ["BatchNormFused", "LayerNormFused"]
