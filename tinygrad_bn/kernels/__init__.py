"""Fused kernels: one Function per layer, with a hand-derived backward.

Each kernel is paired with its composed twin in `tinygrad_bn.fused_pairs.FUSED_PAIRS`;
the tests loop over that registry, so adding a kernel adds its checks.
"""

from tinygrad_bn.kernels.batchnorm import BatchNormFused
from tinygrad_bn.kernels.cross_entropy import CrossEntropyFused
from tinygrad_bn.kernels.layernorm import LayerNormFused
from tinygrad_bn.kernels.linear import LinearFused

__all__ = ["BatchNormFused", "CrossEntropyFused", "LayerNormFused", "LinearFused"]
