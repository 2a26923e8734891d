"""Hypothesis strategies for property-testing gradients and layers.

    from hypothesis import given
    from tinygrad_bn.testing import strategies as tst

    @given(tst.tensors(dtype="float64"))
    def test_exp_grad(x):
        gradcheck(lambda t: t.exp(), [x])
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_bn.tensor import Tensor


def shapes(min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 4) -> st.SearchStrategy:
    """Array shapes, including 0-d and size-1 axes by default."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def arrays(
    shape: Any = None,
    dtype: str = "float64",
    min_value: float = -3.0,
    max_value: float = 3.0,
    away_from: float | None = None,
    margin: float = 0.1,
    distinct: bool = False,
) -> st.SearchStrategy:
    """Finite float arrays with bounded elements.

    `away_from=c` keeps every element at least `margin` from c (kinks: relu at 0,
    log and sqrt near 0). `distinct=True` makes elements unique, so max has no ties.
    """
    shape = shapes() if shape is None else shape
    elements = st.floats(min_value, max_value, allow_nan=False, allow_infinity=False,
                         width=32 if dtype == "float32" else 64)
    if away_from is not None:
        elements = elements.filter(lambda v: abs(v - away_from) >= margin)
    if distinct:
        # Spread elements apart so central differences with small h never cross a tie.
        return hnp.arrays(dtype, shape, elements=elements, unique=True).filter(
            lambda a: a.size < 2 or np.min(np.diff(np.sort(a, axis=None))) > 1e-3
        )
    return hnp.arrays(dtype, shape, elements=elements)


def tensors(
    shape: Any = None, dtype: str = "float64", requires_grad: bool = True, **kwargs: Any
) -> st.SearchStrategy:
    """Tensors built from `arrays(...)`, requiring grad by default."""
    return arrays(shape, dtype, **kwargs).map(lambda a: Tensor(a, requires_grad=requires_grad))


def broadcastable_shapes(
    num_shapes: int = 2, min_dims: int = 0, max_dims: int = 3, max_side: int = 4
) -> st.SearchStrategy:
    """Tuples of shapes that broadcast together (numpy rules), e.g. ((3, 1), (4,))."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes, min_dims=min_dims, max_dims=max_dims, max_side=max_side
    ).map(lambda b: b.input_shapes)


def matmul_shapes(max_batch_dims: int = 2, max_side: int = 4) -> st.SearchStrategy:
    """Pairs of shapes valid for numpy matmul: 1-D, 2-D and broadcast batched operands."""

    @st.composite
    def build(draw: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
        m, k, n = (draw(st.integers(1, max_side)) for _ in range(3))
        batch_a, batch_b = draw(broadcastable_shapes(2, 0, max_batch_dims, max_side=3))
        a_kind = draw(st.sampled_from(["vector", "matrix"]))
        b_kind = draw(st.sampled_from(["vector", "matrix"]))
        a = (k,) if a_kind == "vector" else (*batch_a, m, k)
        b = (k,) if b_kind == "vector" else (*batch_b, k, n)
        return a, b

    return build()


def norm_layer_inputs(
    dtype: str = "float64", min_batch: int = 2, max_batch: int = 6, max_channels: int = 4
) -> st.SearchStrategy:
    """Shapes (N, C), (N, C, L) or (N, C, H, W) with at least two values per channel."""

    @st.composite
    def build(draw: Any) -> np.ndarray:
        n = draw(st.integers(min_batch, max_batch))
        c = draw(st.integers(1, max_channels))
        spatial = draw(st.sampled_from([(), (3,), (2, 3)]))
        shape = (n, c, *spatial)
        scale = draw(st.sampled_from([0.1, 1.0, 10.0]))
        offset = draw(st.sampled_from([0.0, 2.0, -5.0]))
        base = draw(arrays(shape, dtype, -2.0, 2.0))
        return (base * scale + offset).astype(dtype)

    return build()


def epsilons() -> st.SearchStrategy:
    """Values of a norm layer's eps, from tiny to large."""
    return st.sampled_from([1e-5, 1e-3, 0.1, 1.0])


# ---------------------------------------------------------------- arguments of fused kernels


def _norm_axes(kind: str, x: np.ndarray) -> tuple[int, ...]:
    """The axes one statistic covers: all but channels (batch norm) or all but batch (layer norm)."""
    return (0,) + tuple(range(2, x.ndim)) if kind == "batch_norm" else tuple(range(1, x.ndim))


def norm_kernel_args(kind: str, dtype: str = "float64") -> st.SearchStrategy:
    """[x, weight, bias, eps] for kind "batch_norm" (per channel) or "layer_norm" (per example)."""

    @st.composite
    def build(draw: Any) -> list[Any]:
        x = draw(norm_layer_inputs(dtype=dtype))
        axes = _norm_axes(kind, x)
        if np.any(x.max(axis=axes) == x.min(axis=axes)):
            # Ill-posed in every precision: an exactly constant group has no spread to
            # normalise, so x - mean is pure rounding error (of random sign, in any
            # implementation) and the output is that noise times 1/sqrt(eps). Comparing two
            # implementations there compares their rounding, not their maths. (Everything
            # else, two-row groups, large offsets and tiny spreads included, is drawn as is:
            # check_fused judges float32 against a float64 truth.)
            x = (x + np.linspace(0.0, 1.0, x.size).reshape(x.shape)).astype(dtype)
        param_shape = (x.shape[1],) if kind == "batch_norm" else x.shape[1:]
        w = draw(arrays(param_shape, dtype, -2.0, 2.0))
        b = draw(arrays(param_shape, dtype, -2.0, 2.0))
        return [x, w, b, draw(epsilons())]

    return build()


def linear_args(dtype: str = "float64") -> st.SearchStrategy:
    """[x (..., in), weight (out, in), bias (out,)] for a linear layer."""

    @st.composite
    def build(draw: Any) -> list[Any]:
        in_features, out_features = draw(st.integers(1, 5)), draw(st.integers(1, 5))
        lead = draw(shapes(1, 2, max_side=4))
        x = draw(arrays((*lead, in_features), dtype))
        return [x, draw(arrays((out_features, in_features), dtype)), draw(arrays((out_features,), dtype))]

    return build()


def classification_args(dtype: str = "float64") -> st.SearchStrategy:
    """[logits (N, C), integer labels (N,)] for a cross-entropy loss."""

    @st.composite
    def build(draw: Any) -> list[Any]:
        n, c = draw(st.integers(1, 6)), draw(st.integers(2, 5))
        logits = draw(arrays((n, c), dtype, -6.0, 6.0))
        labels = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)), dtype=np.int64)
        return [logits, labels]

    return build()
