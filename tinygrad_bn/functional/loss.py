"""Losses with PyTorch's signatures and semantics, composed from primitives.

cross_entropy also has the fused kernel (impl="fused") for its common case:
(N, C) logits against integer labels without weight, ignored labels or label
smoothing; anything else is computed by the composed form.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_bn.autograd.grad_mode import composite
from tinygrad_bn.functional.activation import log1p_exp, log_softmax
from tinygrad_bn.functional.elementwise import abs, clamp, log
from tinygrad_bn.functional.shape import movedim
from tinygrad_bn.kernel_registry import check_impl, fused_kernel
from tinygrad_bn.tensor import Tensor

REDUCTIONS = ("mean", "sum", "none")


def check_labels(op: str, labels: np.ndarray, num_classes: int, count: int | None = None,
                 ignore_index: int | None = None) -> None:
    """Integer class labels in [0, num_classes) (or equal to ignore_index); else a clear error."""
    if count is not None and labels.shape != (count,):
        raise ValueError(
            f"{op}: expected {count} integer labels (shape ({count},)), got shape {labels.shape}"
        )
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{op}: labels must be integers, got dtype {labels.dtype}")
    valid = labels if ignore_index is None else labels[labels != ignore_index]
    if valid.size and (valid.min() < 0 or valid.max() >= num_classes):
        raise ValueError(
            f"{op}: labels must be in [0, {num_classes}), got values in [{valid.min()}, {valid.max()}]"
        )


def _check_reduction(op: str, reduction: str, size_average: Any = None, reduce: Any = None) -> None:
    if size_average is not None or reduce is not None:
        raise TypeError(f"{op}: size_average and reduce are deprecated in PyTorch; use reduction=")
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    return loss.sum() if reduction == "sum" else loss


def _constant(x: Any, like: Tensor) -> Tensor:
    if isinstance(x, Tensor):
        return x
    return Tensor._wrap(np.asarray(x, dtype=like.dtype), False, None)


def _rows(input: Tensor) -> Tensor:
    """(N, C, d1, ...) -> (N * d1 * ..., C); (C,) -> (1, C)."""
    if input.ndim == 1:
        return input.reshape(1, -1)
    return movedim(input, 1, -1).reshape(-1, input.shape[1]) if input.ndim > 2 else input


def _picked(rows: Tensor, labels: np.ndarray, ignore_index: int) -> tuple[Tensor, np.ndarray]:
    """rows[i, labels[i]] and the mask of labels that are not ignored."""
    keep = labels != ignore_index
    safe = np.where(keep, labels, 0)
    return rows[np.arange(rows.shape[0]), safe], keep


@composite("nll_loss")
def nll_loss(input: Tensor, target: Any, weight: Tensor | None = None, size_average: Any = None,
             ignore_index: int = -100, reduce: Any = None, reduction: str = "mean") -> Tensor:
    """-input[i, target[i]] (input: log-probabilities), weighted per class; mean over the weights."""
    _check_reduction("nll_loss", reduction, size_average, reduce)
    labels = (target._data if isinstance(target, Tensor) else np.asarray(target)).reshape(-1)
    c = input.shape[1] if input.ndim > 1 else input.shape[0]
    n = int(np.prod(input.shape, dtype=np.int64)) // max(c, 1)
    check_labels("nll_loss", labels, c, n, ignore_index)
    return _weighted_nll(_rows(input), labels, weight, ignore_index, reduction, _out_shape(input))


def _out_shape(input: Tensor) -> tuple[int, ...]:
    return () if input.ndim == 1 else (input.shape[0],) + input.shape[2:]


def _weighted_nll(rows: Tensor, labels: np.ndarray, weight: Tensor | None, ignore_index: int,
                  reduction: str, out_shape: tuple[int, ...]) -> Tensor:
    picked, keep = _picked(rows, labels, ignore_index)
    if weight is None and keep.all():  # the common case, without multiplying by ones
        return _reduce(-picked, reduction) if reduction != "none" else (-picked).reshape(out_shape)
    w = np.ones(labels.shape, rows.dtype) if weight is None else weight._data[np.where(keep, labels, 0)]
    w = Tensor._wrap((w * keep).astype(rows.dtype), False, None)
    losses = -(picked * w)
    if reduction == "mean":
        return losses.sum() / w.sum()  # PyTorch divides by the total weight of the counted labels
    return losses.sum() if reduction == "sum" else losses.reshape(out_shape)


@composite("cross_entropy")
def cross_entropy(input: Tensor, target: Any, weight: Tensor | None = None, size_average: Any = None,
                  ignore_index: int = -100, reduce: Any = None, reduction: str = "mean",
                  label_smoothing: float = 0.0, *, impl: str = "composed") -> Tensor:
    """Softmax cross-entropy of (N, C[, d...]) logits against class indices or class probabilities."""
    _check_reduction("cross_entropy", reduction, size_average, reduce)
    check_impl("cross_entropy", impl)
    if input.ndim not in (1,) and input.ndim < 2:
        raise ValueError(f"cross_entropy: expected logits of shape (N, C) or (N, C, d...), got {input.shape}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    target = target._data if isinstance(target, Tensor) else np.asarray(target)
    c = input.shape[1] if input.ndim > 1 else input.shape[0]
    if target.dtype.kind == "f":
        if target.shape != input.shape:
            raise ValueError(f"cross_entropy: probability targets must match logits {input.shape}, "
                             f"got {target.shape}")
        return _soft_cross_entropy(input, target, weight, reduction, label_smoothing, c)
    labels = target.reshape(-1)
    n = int(np.prod(input.shape, dtype=np.int64)) // max(c, 1)
    check_labels("cross_entropy", labels, c, n, ignore_index)
    if (impl == "fused" and input.ndim == 2 and weight is None and label_smoothing == 0.0
            and not np.any(labels == ignore_index)):
        return fused_kernel("cross_entropy").apply(input, labels=labels, reduction=reduction)
    rows = log_softmax(_rows(input), dim=1)
    nll = _weighted_nll(rows, labels, weight, ignore_index, reduction, _out_shape(input))
    if label_smoothing == 0.0:
        return nll
    # (1 - e) * nll + e * (the loss against the uniform distribution), as PyTorch mixes them
    w = np.ones(c, rows.dtype) if weight is None else weight._data
    keep = (labels != ignore_index).astype(rows.dtype)
    uniform = -(rows * Tensor._wrap(w / c, False, None)).sum(dim=1) * Tensor._wrap(keep, False, None)
    if reduction == "mean":
        counted = keep if weight is None else keep * weight._data[np.where(keep > 0, labels, 0)]
        uniform = uniform.sum() * (1.0 / counted.sum())
    elif reduction == "sum":
        uniform = uniform.sum()
    else:
        uniform = uniform.reshape(_out_shape(input))
    return nll * (1.0 - label_smoothing) + uniform * label_smoothing


def _soft_cross_entropy(input: Tensor, target: np.ndarray, weight: Tensor | None, reduction: str,
                        label_smoothing: float, c: int) -> Tensor:
    """-sum_c w_c t_c log p_c, with t smoothed towards uniform; 'mean' averages over examples."""
    t = target * (1.0 - label_smoothing) + label_smoothing / c
    rows = log_softmax(_rows(input), dim=1)
    t_rows = _rows(Tensor._wrap(t.astype(input.dtype), False, None))
    if weight is not None:
        t_rows = t_rows * weight
    losses = -(rows * t_rows).sum(dim=1)
    if reduction == "none":
        return losses.reshape(_out_shape(input))
    return losses.mean() if reduction == "mean" else losses.sum()


@composite("mse_loss")
def mse_loss(input: Tensor, target: Any, size_average: Any = None, reduce: Any = None,
             reduction: str = "mean") -> Tensor:
    """(input - target)^2, reduced."""
    _check_reduction("mse_loss", reduction, size_average, reduce)
    diff = input - _constant(target, input)
    return _reduce(diff * diff, reduction)


@composite("l1_loss")
def l1_loss(input: Tensor, target: Any, size_average: Any = None, reduce: Any = None,
            reduction: str = "mean") -> Tensor:
    """|input - target|, reduced."""
    _check_reduction("l1_loss", reduction, size_average, reduce)
    return _reduce(abs(input - _constant(target, input)), reduction)


@composite("binary_cross_entropy")
def binary_cross_entropy(input: Tensor, target: Any, weight: Any = None, size_average: Any = None,
                         reduce: Any = None, reduction: str = "mean") -> Tensor:
    """-(t log x + (1 - t) log(1 - x)) for probabilities x; each log is clamped at -100 (PyTorch)."""
    _check_reduction("binary_cross_entropy", reduction, size_average, reduce)
    if np.any((input._data < 0) | (input._data > 1)):
        raise ValueError("binary_cross_entropy: input must hold probabilities in [0, 1]; "
                         "for logits use binary_cross_entropy_with_logits")
    t = _constant(target, input)
    loss = -(t * clamp(log(input), min=-100.0) + (1.0 - t) * clamp(log(1.0 - input), min=-100.0))
    if weight is not None:
        loss = loss * _constant(weight, input)
    return _reduce(loss, reduction)


@composite("binary_cross_entropy_with_logits")
def binary_cross_entropy_with_logits(input: Tensor, target: Any, weight: Any = None,
                                     size_average: Any = None, reduce: Any = None,
                                     reduction: str = "mean", pos_weight: Any = None) -> Tensor:
    """BCE of sigmoid(input), computed from the logits without overflow: with pos_weight p,
    (1 - t) x + (1 + (p - 1) t) (log(1 + exp(-|x|)) + max(-x, 0))."""
    _check_reduction("binary_cross_entropy_with_logits", reduction, size_average, reduce)
    t = _constant(target, input)
    softplus_neg = log1p_exp(-input)  # log(1 + exp(-x)), stable, with the right slope at x = 0
    if pos_weight is None:
        loss = (1.0 - t) * input + softplus_neg
    else:
        loss = (1.0 - t) * input + (1.0 + (_constant(pos_weight, input) - 1.0) * t) * softplus_neg
    if weight is not None:
        loss = loss * _constant(weight, input)
    return _reduce(loss, reduction)
