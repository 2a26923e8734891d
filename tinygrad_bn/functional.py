"""Composite ops: built only from the primitives in `ops.py`.

Their gradients are whatever autograd derives from the primitives, so each one
is differentiable to any order for free. The norm layers (`batch_norm`,
`layer_norm`) live in `functional_norm.py` and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_bn._scope import composite
from tinygrad_bn.kernels.cross_entropy import CrossEntropyFused
from tinygrad_bn.kernels.linear import LinearFused
from tinygrad_bn.ops import Tensor, where

Axis = int | Sequence[int] | None


def _count(shape: tuple[int, ...], axis: Axis, op: str = "reduce") -> int:
    """How many elements a reduction over `axis` combines (`op` names the caller in errors)."""
    if axis is None:
        return int(np.prod(shape, dtype=np.int64))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    ndim = len(shape)
    for a in axes:
        # A 0-d tensor accepts axis 0 / -1, as Sum does.
        if not isinstance(a, int | np.integer) or not -max(ndim, 1) <= a < max(ndim, 1):
            raise ValueError(f"{op}: axis {axis!r} is out of range for a {ndim}-d tensor")
    if ndim == 0:
        return 1
    return int(np.prod([shape[a] for a in axes], dtype=np.int64))


@composite("mean")
def mean(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Arithmetic mean: sum times 1/n."""
    n = _count(x.shape, axis, "mean")
    if n == 0:
        raise ValueError(f"mean: cannot average over an empty axis of a tensor of shape {x.shape}")
    return x.sum(axis=axis, keepdims=keepdims) * (1.0 / n)


@composite("var")
def var(x: Tensor, axis: Axis = None, ddof: int = 0, keepdims: bool = False) -> Tensor:
    """Variance, two-pass (centre first, then square): no E[x^2] - E[x]^2 cancellation."""
    n = _count(x.shape, axis, "var")
    if n - ddof <= 0:
        raise ValueError(f"var: need more than ddof={ddof} values, got {n} (shape {x.shape})")
    centred = x - mean(x, axis=axis, keepdims=True)
    return (centred * centred).sum(axis=axis, keepdims=keepdims) * (1.0 / (n - ddof))


@composite("sigmoid")
def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + exp(-x)), evaluated so that neither side overflows or loses digits.

    With e = exp(-|x|) <= 1: 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0.
    (tanh(x/2) + 1) / 2 would underflow to 0 below x ~ -37, making log(sigmoid) -inf.
    """
    nonnegative = x.data >= 0
    # -|x| with the sign taken as +1 at 0, so the x >= 0 branch is differentiated there.
    sign = Tensor._wrap(np.where(nonnegative, 1, -1).astype(x.dtype), False, None)
    e = (-(x * sign)).exp()
    one_plus_e = e + 1.0
    return where(nonnegative, 1.0 / one_plus_e, e / one_plus_e)


def abs(x: Tensor) -> Tensor:  # noqa: A001 - the natural name
    """|x| = x * sign(x); the sign is a constant, so |x|'' = 0 away from 0."""
    return x * Tensor._wrap(np.sign(x.data), False, None)


def relu(x: Tensor) -> Tensor:
    """max(x, 0)."""
    return x.relu()


@composite("softmax")
def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along `axis`, shifted by the max for stability."""
    # softmax(x - c) = softmax(x) for any c, so the shift needs no gradient.
    shifted = x - x.detach().max(axis=axis, keepdims=True)
    e = shifted.exp()
    return e / e.sum(axis=axis, keepdims=True)


@composite("logsumexp")
def logsumexp(x: Tensor, axis: int = -1, keepdims: bool = False) -> Tensor:
    """log(sum(exp(x))) along `axis`, computed without overflow."""
    peak = x.detach().max(axis=axis, keepdims=True)
    out = ((x - peak).exp().sum(axis=axis, keepdims=True)).log() + peak
    return out if keepdims else out.reshape(*np.squeeze(out.data, axis=axis).shape)


@composite("log_softmax")
def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """x - logsumexp(x) along `axis`."""
    shifted = x - x.detach().max(axis=axis, keepdims=True)
    return shifted - shifted.exp().sum(axis=axis, keepdims=True).log()


def _check_labels(op: str, logits: Tensor, target: np.ndarray) -> None:
    if logits.ndim != 2:
        raise ValueError(f"{op}: expected logits of shape (N, C), got {logits.shape}")
    n, c = logits.shape
    if target.shape != (n,):
        raise ValueError(f"{op}: expected {n} integer labels (shape ({n},)), got shape {target.shape}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"{op}: labels must be integers, got dtype {target.dtype}")
    if n and (target.min() < 0 or target.max() >= c):
        raise ValueError(
            f"{op}: labels must be in [0, {c}), got values in [{target.min()}, {target.max()}]"
        )


@composite("cross_entropy")
def cross_entropy(logits: Tensor, target: Any, reduction: str = "mean", impl: str = "composed") -> Tensor:
    """Softmax cross-entropy of (N, C) logits against integer labels or (N, C) probabilities.

    impl="fused" records one `kernels.CrossEntropyFused` node for integer labels
    (probability targets always use the composed form).
    """
    target = target.data if isinstance(target, Tensor) else np.asarray(target)
    if logits.ndim != 2:  # before log_softmax, whose axis error would not say what is wrong
        raise ValueError(f"cross_entropy: expected logits of shape (N, C), got {logits.shape}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if impl not in ("composed", "fused"):
        raise ValueError(f"cross_entropy: impl must be 'composed' or 'fused', got {impl!r}")
    if impl == "fused" and target.ndim == 1:
        _check_labels("cross_entropy", logits, target)
        return CrossEntropyFused.apply(logits, labels=target, reduction=reduction)
    logp = log_softmax(logits, axis=1)
    if target.ndim == 2:
        if target.shape != logits.shape:
            raise ValueError(
                f"cross_entropy: probability targets must match logits {logits.shape}, got {target.shape}"
            )
        per_example = -(logp * Tensor._wrap(target.astype(logits.dtype), False, None)).sum(axis=1)
    else:
        _check_labels("cross_entropy", logits, target)
        per_example = -logp[np.arange(logits.shape[0]), target]
    if reduction == "mean":
        return mean(per_example)
    if reduction == "sum":
        return per_example.sum()
    if reduction == "none":
        return per_example
    raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


@composite("mse_loss")
def mse_loss(prediction: Tensor, target: Any) -> Tensor:
    """Mean squared error."""
    diff = prediction - target
    return mean(diff * diff)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None, impl: str = "composed") -> Tensor:
    """x @ weight.T + bias, with weight shaped (out_features, in_features) as in PyTorch.

    impl="composed" records transpose, matmul and add; impl="fused" records one
    `kernels.LinearFused` node (same numbers, fewer ops: faster for small layers).
    """
    if impl not in ("composed", "fused"):
        raise ValueError(f"linear: impl must be 'composed' or 'fused', got {impl!r}")
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
        return LinearFused.apply(x, weight) if bias is None else LinearFused.apply(x, weight, bias)
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


__all__ = [
    "abs", "cross_entropy", "dropout", "linear", "log_softmax", "logsumexp", "mean",
    "mse_loss", "relu", "sigmoid", "softmax", "var", "where",
]

# The norm layers are composites too (plus their fused twins); they live in their own module.
from tinygrad_bn.functional_norm import batch_norm, layer_norm  # noqa: E402

__all__ += ["batch_norm", "layer_norm"]
