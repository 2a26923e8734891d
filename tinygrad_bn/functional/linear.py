"""Linear layers, dropout, embeddings, one-hot encoding and normalisation by a norm."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_bn import ops
from tinygrad_bn.autograd.grad_mode import composite
from tinygrad_bn.functional.elementwise import maximum, where
from tinygrad_bn.functional.linalg import check_same_dtype
from tinygrad_bn.functional.reduce import norm
from tinygrad_bn.kernel_registry import check_impl, fused_kernel
from tinygrad_bn.random import numpy_generator
from tinygrad_bn.tensor import Tensor


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None, *, impl: str = "composed") -> Tensor:
    """input @ weight.T + bias, with weight shaped (out_features, in_features) as in PyTorch.

    impl="composed" records transpose, matmul and add; impl="fused" records one
    fused linear node (same numbers, fewer ops: faster for small layers).
    """
    check_impl("linear", impl)
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be (out_features, in_features), got shape {weight.shape}")
    if input.ndim < 1 or input.shape[-1] != weight.shape[-1]:
        raise ValueError(
            f"linear: input has {input.shape[-1] if input.ndim else 0} features (shape {input.shape}) but "
            f"weight {weight.shape} expects {weight.shape[-1]}"
        )
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: bias has shape {bias.shape}, expected ({weight.shape[0]},)")
    check_same_dtype("linear", input, weight)
    if impl == "fused":
        kernel = fused_kernel("linear")
        return kernel.apply(input, weight) if bias is None else kernel.apply(input, weight, bias)
    out = ops.MatMul.apply(input, weight.T)
    return out if bias is None else out + bias


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False, *,
            generator: Any = None) -> Tensor:
    """Inverted dropout: zero each value with probability p, scale survivors by 1/(1-p).

    The mask is drawn from `generator` (default: the default generator).
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    rng = numpy_generator(generator, "dropout")
    keep = (rng.random(input.shape) >= p).astype(input.dtype) / input.dtype.type(1.0 - p)
    return input * Tensor._wrap(keep, False, None)


def embedding(input: Any, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of `weight` picked by integer `input`; the padding_idx row gets no gradient."""
    index = input._data if isinstance(input, Tensor) else np.asarray(input)
    if index.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype {index.dtype}")
    if index.size and (index.min() < 0 or index.max() >= weight.shape[0]):
        raise IndexError(f"embedding: indices must be in [0, {weight.shape[0]}), "
                         f"got values in [{index.min()}, {index.max()}]")
    rows = weight[index]
    if padding_idx is None:
        return rows
    # the same values, but the padding rows come from a detached copy: no gradient reaches them
    return where((index != padding_idx)[..., None], rows, rows.detach())


def one_hot(tensor: Any, num_classes: int = -1) -> Tensor:
    """(..., ) integer labels -> (..., num_classes) int64 one-hot rows (num_classes=-1: max + 1)."""
    labels = tensor._data if isinstance(tensor, Tensor) else np.asarray(tensor)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"one_hot: labels must be integers, got dtype {labels.dtype}")
    if num_classes == -1:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"one_hot: labels must be in [0, {num_classes}), "
                         f"got values in [{labels.min()}, {labels.max()}]")
    return Tensor._wrap(np.eye(num_classes, dtype=np.int64)[labels], False, None)


@composite("normalize")
def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """input / max(||input||_p over dim, eps)."""
    return input / maximum(norm(input, p, dim, keepdim=True), eps)
