"""Softmax and its relatives, composed from primitives."""

from __future__ import annotations

import numpy as np

from tinygrad_bn.tensor import Tensor


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along `axis`, shifted by the max for stability."""
    # softmax(x - c) = softmax(x) for any c, so the shift needs no gradient.
    shifted = x - x.detach().max(axis=axis, keepdims=True)
    e = shifted.exp()
    return e / e.sum(axis=axis, keepdims=True)


def logsumexp(x: Tensor, axis: int = -1, keepdims: bool = False) -> Tensor:
    """log(sum(exp(x))) along `axis`, computed without overflow."""
    peak = x.detach().max(axis=axis, keepdims=True)
    out = ((x - peak).exp().sum(axis=axis, keepdims=True)).log() + peak
    return out if keepdims else out.reshape(*np.squeeze(out.data, axis=axis).shape)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """x - logsumexp(x) along `axis`."""
    shifted = x - x.detach().max(axis=axis, keepdims=True)
    return shifted - shifted.exp().sum(axis=axis, keepdims=True).log()
