"""CrossEntropyFused: softmax cross-entropy of (N, C) logits and integer labels, in one op.

With p = softmax(z) per row and y the labels, the loss of row i is
logsumexp(z_i) - z_i[y_i], and its gradient is p_i - onehot(y_i): the
probabilities minus one at the label. For reduction "mean" every row is scaled
by 1/N, for "none" row i by the incoming g_i.

The composed `functional.cross_entropy` records ~10 ops forward (max, sub, exp,
sum, log, sub, getitem, neg, sum, mul) and more in backward; this records one.
With create_graph=True, p is recomputed with Tensor ops so the gradient can be
differentiated again.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_bn import functional as F
from tinygrad_bn.autograd import Context, Function, is_grad_enabled
from tinygrad_bn.kernel_registry import FusedKernel, register_kernel
from tinygrad_bn.tensor import Tensor


def _onehot(ctx: Context, like: np.ndarray) -> np.ndarray:
    """The labels as rows of zeros with a one at the label, like `like`."""
    onehot = np.zeros_like(like)
    onehot[np.arange(like.shape[0]), ctx.labels] = 1.0
    return onehot


def _row_scale(ctx: Context, g: Tensor) -> Tensor:
    """dL/dloss_i for each row: g_i for "none", g / N for "mean", g for "sum"."""
    n = len(ctx.labels)
    if ctx.reduction == "none":
        return g.reshape(n, 1)
    return g * (1.0 / n) if ctx.reduction == "mean" else g


def _backward_differentiable(ctx: Context, g: Tensor, logits: Tensor) -> Tensor:
    """dz = (softmax(z) - onehot) * scale with softmax recomputed by Tensor ops (create_graph)."""
    # The row max only keeps exp in range: a constant for differentiation.
    shifted = logits - Tensor._wrap(logits.data.max(axis=1, keepdims=True), False, None)
    e = shifted.exp()
    p = e / e.sum(axis=1, keepdims=True)
    return (p - Tensor._wrap(_onehot(ctx, logits.data), False, None)) * _row_scale(ctx, g)


class CrossEntropyFused(Function):
    """Softmax cross-entropy of logits (N, C) against integer labels (N,)."""

    name = "cross_entropy_fused"
    fused = True

    @staticmethod
    def forward(ctx: Context, logits: Tensor, labels: np.ndarray, reduction: str) -> np.ndarray:
        z = logits.data
        shifted = z - z.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        rows = np.arange(z.shape[0])
        per_example = np.log(total[:, 0]) - shifted[rows, labels]
        exp /= total  # now the softmax probabilities, kept for backward
        ctx.save_for_backward(logits, exp)
        ctx.labels, ctx.reduction = labels, reduction
        if reduction == "none":
            return per_example
        total_loss = per_example.sum(dtype=np.float64)
        if reduction == "mean":
            total_loss /= z.shape[0]
        return np.asarray(total_loss, dtype=z.dtype)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        logits, probs = ctx.saved_tensors
        if is_grad_enabled():
            return _backward_differentiable(ctx, g, logits)
        return (probs.data - _onehot(ctx, probs.data)) * _row_scale(ctx, g).data

# ---------------------------------------------------------------- registration


def _cross_entropy(impl: str) -> Any:
    return lambda logits, labels: F.cross_entropy(logits, labels, impl=impl)


def _example(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> list[Any]:
    n, c = shape[0], int(np.prod(shape[1:]))
    return [rng.normal(0.0, 3.0, (n, c)).astype(dtype), rng.integers(0, c, n)]


def _strategy(dtype: str) -> Any:
    from tinygrad_bn.testing import strategies  # hypothesis loads only when a check asks

    return strategies.classification_args(dtype)


register_kernel(FusedKernel("cross_entropy", CrossEntropyFused, _cross_entropy("composed"),
                            _cross_entropy("fused"), _example, _strategy,
                            backends={"numba": "tinygrad_bn.kernels.compiled.cross_entropy:"
                                               "NumbaCrossEntropyFused"}))
