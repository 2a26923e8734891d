"""The registry of fused kernels and their composed twins.

Each entry pairs a kernel from `tinygrad_bn/kernels` with the composed function
it must agree with, both called with the same arguments, plus a function that
makes example arguments. The tests and `tinygrad-bn check` loop over it, so a
kernel added here is checked everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinygrad_bn import functional as F
from tinygrad_bn.autograd import Function
from tinygrad_bn.kernels import BatchNormFused, CrossEntropyFused, LayerNormFused, LinearFused
from tinygrad_bn.tensor import Tensor

Example = Callable[[np.random.Generator, tuple[int, ...], str], list[Any]]


@dataclass(frozen=True)
class FusedPair:
    """A fused kernel, its composed twin (same call signature) and example arguments."""

    name: str
    kernel: type[Function]
    composed: Callable[..., Tensor]
    fused: Callable[..., Tensor]
    example: Example  # (rng, shape (N, C, ...), dtype) -> arguments for both callables


def _bn(impl: str) -> Callable[..., Tensor]:
    return lambda x, w, b, eps: F.batch_norm(x, None, None, w, b, training=True, eps=eps, impl=impl)


def _ln(impl: str) -> Callable[..., Tensor]:
    return lambda x, w, b, eps: F.layer_norm(x, w.shape, w, b, eps=eps, impl=impl)


def _linear(impl: str) -> Callable[..., Tensor]:
    return lambda x, w, b: F.linear(x, w, b, impl=impl)


def _cross_entropy(impl: str) -> Callable[..., Tensor]:
    return lambda logits, labels: F.cross_entropy(logits, labels, impl=impl)


def _norm_example(per_channel: bool) -> Example:
    def make(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> list[Any]:
        param_shape = (shape[1],) if per_channel else shape[1:]
        x = rng.normal(1.0, 2.0, shape).astype(dtype)
        w = rng.normal(1.0, 0.5, param_shape).astype(dtype)
        b = rng.normal(0.0, 0.5, param_shape).astype(dtype)
        return [x, w, b, 1e-5]

    return make


def _linear_example(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> list[Any]:
    out_features = 3
    x = rng.normal(size=shape).astype(dtype)
    w = rng.normal(size=(out_features, shape[-1])).astype(dtype)
    return [x, w, rng.normal(size=out_features).astype(dtype)]


def _cross_entropy_example(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> list[Any]:
    n, c = shape[0], int(np.prod(shape[1:]))
    return [rng.normal(0.0, 3.0, (n, c)).astype(dtype), rng.integers(0, c, n)]


FUSED_PAIRS: dict[str, FusedPair] = {
    "batch_norm": FusedPair("batch_norm", BatchNormFused, _bn("composed"), _bn("fused"),
                            _norm_example(per_channel=True)),
    "layer_norm": FusedPair("layer_norm", LayerNormFused, _ln("composed"), _ln("fused"),
                            _norm_example(per_channel=False)),
    "linear": FusedPair("linear", LinearFused, _linear("composed"), _linear("fused"), _linear_example),
    "cross_entropy": FusedPair("cross_entropy", CrossEntropyFused, _cross_entropy("composed"),
                               _cross_entropy("fused"), _cross_entropy_example),
}
