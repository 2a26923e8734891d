"""Linear layers and dropout."""

from __future__ import annotations

import numpy as np

from tinygrad_bn.kernel_registry import check_impl, fused_kernel
from tinygrad_bn.tensor import Tensor


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None, impl: str = "composed") -> Tensor:
    """x @ weight.T + bias, with weight shaped (out_features, in_features) as in PyTorch.

    impl="composed" records transpose, matmul and add; impl="fused" records one
    fused linear node (same numbers, fewer ops: faster for small layers).
    """
    check_impl("linear", impl)
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be (out_features, in_features), got shape {weight.shape}")
    if x.ndim < 1 or x.shape[-1] != weight.shape[-1]:
        raise ValueError(
            f"linear: input has {x.shape[-1] if x.ndim else 0} features (shape {x.shape}) but "
            f"weight {weight.shape} expects {weight.shape[-1]}"
        )
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: bias has shape {bias.shape}, expected ({weight.shape[0]},)")
    if impl == "fused":
        kernel = fused_kernel("linear")
        return kernel.apply(x, weight) if bias is None else kernel.apply(x, weight, bias)
    out = x @ weight.T
    return out if bias is None else out + bias


def dropout(
    x: Tensor, p: float = 0.5, training: bool = True, rng: np.random.Generator | None = None
) -> Tensor:
    """Inverted dropout: zero each value with probability p, scale survivors by 1/(1-p)."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout: p must be in [0, 1), got {p}")
    if not training or p == 0.0:
        return x
    rng = rng if rng is not None else np.random.default_rng()
    keep = (rng.random(x.shape) >= p).astype(x.dtype) / x.dtype.type(1.0 - p)
    return x * Tensor._wrap(keep, False, None)
