"""A custom layer end to end: RMSNorm composed from primitives, fused, and verified.

    python examples/custom_layer.py

RMSNorm scales each row of the last axis by its inverse root mean square,
y = gamma * x * r with r = 1 / sqrt(mean(x^2) + eps). Built from primitives and
as a fused Function with a hand-derived backward, it is checked with check_fused
(float64 and float32, fixed and hypothesis-drawn inputs), gradcheck and
gradgradcheck; a broken kernel shows a failing report. Output at the end of this
file; hypothesis may create a .hypothesis/ cache here. docs/custom-layers.md
walks through the code.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from tinygrad_bn import Function, Tensor, is_grad_enabled
from tinygrad_bn.autograd import Context
from tinygrad_bn.gradcheck import gradcheck, gradgradcheck
from tinygrad_bn.testing import check_fused
from tinygrad_bn.testing import strategies as tst


def inv_rms(x: Tensor, eps: float) -> Tensor:
    """r = (mean(x^2) + eps) ** -0.5 over the last axis, from primitives."""
    return ((x * x).sum(axis=-1, keepdims=True) * (1.0 / x.shape[-1]) + eps) ** -0.5


def rms_norm(x: Tensor, gamma: Tensor, eps: float = 1e-6) -> Tensor:
    """RMSNorm from primitives: its graph shows mul, sum, mul, add, pow, mul, mul."""
    return x * inv_rms(x, eps) * gamma


class RMSNormFused(Function):
    """RMSNorm as one op. Per row, with xhat = x * r and dxhat = g * gamma:

    dgamma = sum over rows of g * xhat,   dx = r * (dxhat - xhat * mean(dxhat * xhat)).
    """

    name = "rms_norm_fused"
    fused = True

    @staticmethod
    def forward(ctx: Context, x: Tensor, gamma: Tensor, eps: float = 1e-6) -> np.ndarray:
        mean_sq = np.einsum("...m,...m->...", x.data, x.data)[..., None] / x.shape[-1]
        r = 1.0 / np.sqrt(mean_sq + eps)
        xhat = x.data * r
        # x is saved as the graph Tensor (double backward needs it); xhat and r as arrays.
        ctx.save_for_backward(x, gamma, xhat, r)
        ctx.eps = eps
        return xhat * gamma.data

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        x, gamma, xhat, r = ctx.saved_tensors
        if is_grad_enabled():
            # create_graph=True: the same formula in Tensor ops, rebuilt from x so
            # that autograd can differentiate it (r and xhat depend on x).
            r = inv_rms(x, ctx.eps)
            xhat, dxhat = x * r, g * gamma
            dx = r * (dxhat - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True))
            return dx, (g * xhat).reshape(-1, gamma.shape[0]).sum(axis=0)
        dxhat = g.data * gamma.data
        dx = r.data * (dxhat - xhat.data * np.mean(dxhat * xhat.data, axis=-1, keepdims=True))
        return dx, (g.data * xhat.data).reshape(-1, gamma.shape[0]).sum(axis=0)


class RMSNormForgetsR(RMSNormFused):
    """A plausible bug: treats r as a constant, so dx = r * dxhat (the projection is lost)."""

    name = "rms_norm_broken"

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        _, dgamma = RMSNormFused.backward(ctx, g)
        _, gamma, _, r = ctx.saved_tensors
        return r.data * g.data * gamma.data, dgamma


def fused(x: Tensor, gamma: Tensor, eps: float = 1e-6) -> Tensor:
    """RMSNormFused.apply with rms_norm's signature."""
    return RMSNormFused.apply(x, gamma, eps=eps)


def cases(max_side: int = 5) -> st.SearchStrategy:
    """[x, gamma, eps]: x of 1 to 3 axes, values in [-3, 3]; gamma shaped like x's last axis."""
    return tst.shapes(min_dims=1, max_dims=3, max_side=max_side).flatmap(
        lambda shape: st.tuples(tst.arrays(shape), tst.arrays(shape[-1:]), tst.epsilons()).map(list)
    )


def main(shape: tuple[int, ...] = (6, 8), seed: int = 0) -> dict[str, object]:
    """Run the checks on float64 inputs of `shape`, print the reports and return them."""
    rng = np.random.default_rng(seed)
    x, gamma = rng.normal(size=shape), rng.normal(size=shape[-1:])
    reports: dict[str, object] = {"fixed": check_fused(rms_norm, fused, [x, gamma])}
    # float32 is judged against rms_norm evaluated in float64 on the same inputs.
    reports["float32"] = check_fused(rms_norm, fused, [x.astype(np.float32), gamma.astype(np.float32)])
    drawn = []  # hypothesis' examples

    def counting_fused(*args: object) -> Tensor:
        drawn.append(args)
        return fused(*args)

    # Given a strategy, one call is a property test: every drawn example is checked
    # and the first mismatch raises with hypothesis' shrunk example.
    check_fused(rms_norm, counting_fused, cases())
    reports["property"] = len(drawn)
    inputs = [Tensor(a.copy(), requires_grad=True) for a in (x, gamma)]
    reports["gradcheck"] = gradcheck(fused, inputs)
    reports["gradgradcheck"] = gradgradcheck(fused, inputs)
    reports["broken"] = check_fused(rms_norm, RMSNormForgetsR.apply, [x, gamma],
                                    double_backward=False, raise_exception=False)
    for name, report in reports.items():
        if name == "property":
            print(f"== property: fused matches composed on {report} drawn examples\n")
        else:
            print(f"== {name}: {'passed' if report.passed else 'FAILED'}\n{report}\n")
    return reports


if __name__ == "__main__":
    main()

# Prints (the last digits vary by machine):
# == fixed: passed
# pass: rel err <= 1e-10 or abs err <= 1e-11 (vs the composed twin)
# quantity                               max abs err  max rel err  ok
# output[0]                                4.441e-16    1.741e-16  yes
# grad[input 0] (fast path)                4.441e-16    1.036e-16  yes   ... both paths, gradgrad rows
# == float32: passed            (fused and composed errors against the float64 truth)
# == property: fused matches composed on 100 drawn examples
# == gradcheck: passed          (and gradgradcheck: max rel err ~1e-8, central differences)
# == broken: FAILED
# grad[input 0] (fast path)                1.743e+00    4.054e-01  NO
