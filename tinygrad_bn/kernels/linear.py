"""LinearFused: y = x @ W.T + b as one op with its three-line backward.

With x of shape (..., in), W of shape (out, in) and g = dL/dy of shape (..., out),
and X, G the inputs and gradients with the leading axes flattened into rows:

    dx = g @ W            dW = G.T @ X            db = sum of G over rows

The composed `functional.linear` records transpose, matmul and add (and their
backward records another ~7 ops: two transposes, two matmuls, a sum, a reshape);
this kernel records one node, which matters in small MLPs where the per-op cost
of Python, not the arithmetic, dominates. With create_graph=True the same
formulas run as Tensor ops, so double backward works.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_bn import functional as F
from tinygrad_bn.autograd import Context, Function, is_grad_enabled
from tinygrad_bn.kernel_registry import FusedKernel, register_kernel
from tinygrad_bn.tensor import Tensor


class LinearFused(Function):
    """x @ weight.T (+ bias), inputs (x, weight) or (x, weight, bias)."""

    name = "linear_fused"
    fused = True

    @staticmethod
    def forward(ctx: Context, x: Tensor, weight: Tensor, bias: Tensor | None = None) -> np.ndarray:
        out = x.data @ weight.data.T
        if bias is not None:
            out += bias.data
        ctx.save_for_backward(x, weight)
        return out

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        x, weight = ctx.saved_tensors
        has_bias = len(ctx.parents) == 3
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        need_b = has_bias and ctx.needs_input_grad[2]
        out_features, in_features = weight.data.shape
        if is_grad_enabled():  # create_graph: the same formulas, recorded
            rows_g = g.reshape(-1, out_features)
            gx = g @ weight if need_x else None
            gw = rows_g.T @ x.reshape(-1, in_features) if need_w else None
            gb = rows_g.sum(axis=0) if need_b else None
        else:
            rows_g = g.data.reshape(-1, out_features)
            gx = g.data @ weight.data if need_x else None
            gw = rows_g.T @ x.data.reshape(-1, in_features) if need_w else None
            gb = rows_g.sum(axis=0) if need_b else None
        return (gx, gw, gb) if has_bias else (gx, gw)


# ---------------------------------------------------------------- registration


def _linear(impl: str) -> Any:
    return lambda x, w, b: F.linear(x, w, b, impl=impl)


def _example(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> list[Any]:
    out_features = 3
    x = rng.normal(size=shape).astype(dtype)
    w = rng.normal(size=(out_features, shape[-1])).astype(dtype)
    return [x, w, rng.normal(size=out_features).astype(dtype)]


def _strategy(dtype: str) -> Any:
    from tinygrad_bn.testing import strategies  # hypothesis loads only when a check asks

    return strategies.linear_args(dtype)


register_kernel(FusedKernel("linear", LinearFused, _linear("composed"), _linear("fused"),
                            _example, _strategy))
