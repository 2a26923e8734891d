"""Losses: softmax cross-entropy (composed, or the fused kernel) and mean squared error."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_bn.functional.activation import log_softmax
from tinygrad_bn.functional.basic import mean
from tinygrad_bn.kernel_registry import check_impl, fused_kernel
from tinygrad_bn.tensor import Tensor

REDUCTIONS = ("mean", "sum", "none")


def check_labels(op: str, labels: np.ndarray, num_classes: int, count: int | None = None) -> None:
    """Integer class labels in [0, num_classes), `count` of them when given; else a clear error."""
    if count is not None and labels.shape != (count,):
        raise ValueError(
            f"{op}: expected {count} integer labels (shape ({count},)), got shape {labels.shape}"
        )
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{op}: labels must be integers, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"{op}: labels must be in [0, {num_classes}), got values in [{labels.min()}, {labels.max()}]"
        )


def cross_entropy(logits: Tensor, target: Any, reduction: str = "mean", impl: str = "composed") -> Tensor:
    """Softmax cross-entropy of (N, C) logits against integer labels or (N, C) probabilities.

    impl="fused" records one fused cross-entropy node for integer labels
    (probability targets always use the composed form).
    """
    target = target.data if isinstance(target, Tensor) else np.asarray(target)
    if logits.ndim != 2:  # before log_softmax, whose axis error would not say what is wrong
        raise ValueError(f"cross_entropy: expected logits of shape (N, C), got {logits.shape}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    check_impl("cross_entropy", impl)
    n, c = logits.shape
    if target.ndim == 2:
        if target.shape != logits.shape:
            raise ValueError(
                f"cross_entropy: probability targets must match logits {logits.shape}, got {target.shape}"
            )
        per_example = -(log_softmax(logits, axis=1) * Tensor._wrap(target.astype(logits.dtype), False, None)
                        ).sum(axis=1)
    else:
        check_labels("cross_entropy", target, c, n)
        if impl == "fused":
            return fused_kernel("cross_entropy").apply(logits, labels=target, reduction=reduction)
        per_example = -log_softmax(logits, axis=1)[np.arange(n), target]
    if reduction == "mean":
        return mean(per_example)
    return per_example.sum() if reduction == "sum" else per_example


def mse_loss(prediction: Tensor, target: Any) -> Tensor:
    """Mean squared error."""
    diff = prediction - target
    return mean(diff * diff)
