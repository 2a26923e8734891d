"""Every primitive: analytic vs numerical gradient (float64) and second derivatives.

The tests loop over `ops.PRIMITIVES`; a primitive without an entry in SPECS
fails `test_every_primitive_has_a_gradient_spec`, so new ops get checked.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_bn import Tensor, ops, where
from tinygrad_bn.gradcheck import gradcheck, gradgradcheck
from tinygrad_bn.testing import strategies as tst


@dataclass
class Spec:
    """How to property-test one primitive: a strategy of (fn, input arrays)."""

    cases: st.SearchStrategy
    check: dict = field(default_factory=dict)  # extra gradcheck keyword arguments


def _unary(fn: Callable, **array_kwargs) -> st.SearchStrategy:
    return tst.arrays(**array_kwargs).map(lambda a: (fn, [a]))


def _binary(fn: Callable, left: dict | None = None, right: dict | None = None) -> st.SearchStrategy:
    @st.composite
    def build(draw):
        sa, sb = draw(tst.broadcastable_shapes())
        return fn, [draw(tst.arrays(sa, **(left or {}))), draw(tst.arrays(sb, **(right or {})))]

    return build()


@st.composite
def _reduce_cases(draw, method: str):
    a = draw(tst.arrays(tst.shapes(1, 3), distinct=(method == "max")))
    axis = draw(st.none() | st.integers(-a.ndim, a.ndim - 1) | st.just(tuple(range(a.ndim))[:2]))
    keepdims = draw(st.booleans())
    name = "amax" if method == "max" else method  # the Max primitive is amax's (max(dim) gathers)
    return (lambda x: getattr(x, name)(dim=axis, keepdim=keepdims)), [a]


@st.composite
def _reshape_cases(draw):
    a = draw(tst.arrays(tst.shapes(0, 3)))
    target = draw(st.sampled_from([(-1,), (a.size, 1), (1, a.size, 1)]))
    return (lambda x: x.reshape(*target) * 1.0), [a]


@st.composite
def _permute_cases(draw):
    a = draw(tst.arrays(tst.shapes(1, 4)))
    dims = draw(st.permutations(range(a.ndim)))
    return (lambda x: x.permute(*dims) * 1.0), [a]


@st.composite
def _cumsum_cases(draw):
    a = draw(tst.arrays(tst.shapes(1, 3)))
    dim = draw(st.integers(-a.ndim, a.ndim - 1))
    return (lambda x: x.cumsum(dim)), [a]


@st.composite
def _prod_cases(draw):
    # Elements away from 0 cover prod / x_i (twice differentiable); a drawn zero covers
    # the product-of-the-others path, whose second derivative the numbers still check.
    a = draw(tst.arrays(tst.shapes(1, 3), min_value=0.5, max_value=1.5))
    if draw(st.booleans()):
        a.reshape(-1)[draw(st.integers(0, a.size - 1))] = 0.0
    dim = draw(st.none() | st.integers(-a.ndim, a.ndim - 1))
    keepdim = draw(st.booleans())
    return (lambda x: x.prod(dim, keepdim=keepdim)), [a]


@st.composite
def _cat_cases(draw):
    shape = draw(tst.shapes(1, 3))
    dim = draw(st.integers(0, len(shape) - 1))
    sizes = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    arrays = [draw(tst.arrays(shape[:dim] + (n,) + shape[dim + 1:])) for n in sizes]
    return (lambda *xs: ops.Cat.apply(*xs, dim=dim)), arrays


@st.composite
def _expand_cases(draw):
    small, big = draw(tst.broadcastable_shapes())
    target = np.broadcast_shapes(small, big)
    return (lambda x: x.expand(*target)), [draw(tst.arrays(small))]


@st.composite
def _index_cases(draw):
    a = draw(tst.arrays(tst.shapes(1, 3, min_side=2)))
    kind = draw(st.sampled_from(["slice", "int", "fancy-repeated", "bool"]))
    if kind == "slice":
        index = (slice(None, None, 2),) + (slice(1, None),) * (a.ndim - 1)
    elif kind == "int":
        index = -1
    elif kind == "fancy-repeated":
        index = np.array([0, 1, 0, 0])  # repeated indices must accumulate
    else:
        index = a > 0
    return (lambda x: x[index]), [a]


@st.composite
def _scatter_cases(draw):
    a = draw(tst.arrays((4, 3)))
    index = np.array([0, 2, 0, 1])
    return (lambda x: ops.ScatterAdd.apply(x, index=index, shape=(3, 3))), [a]


@st.composite
def _matmul_cases(draw):
    sa, sb = draw(tst.matmul_shapes())
    return (lambda x, y: x @ y), [draw(tst.arrays(sa)), draw(tst.arrays(sb))]


@st.composite
def _where_cases(draw):
    sc, sa, sb = draw(tst.broadcastable_shapes(3))
    cond = draw(tst.arrays(sc)) > 0
    return (lambda x, y: where(cond, x, y)), [draw(tst.arrays(sa)), draw(tst.arrays(sb))]


@st.composite
def _pow_cases(draw):
    fn, arrays = draw(_binary(lambda x, y: x**y, {"min_value": 0.3}, {"min_value": -2.0, "max_value": 2.0}))
    scalar = draw(st.sampled_from([None, 2, 0.5, -1.5]))
    if scalar is not None:
        return (lambda x: x**scalar), arrays[:1]
    return fn, arrays


SPECS: dict[str, Spec] = {
    "add": Spec(_binary(lambda x, y: x + y)),
    "sub": Spec(_binary(lambda x, y: x - y)),
    "mul": Spec(_binary(lambda x, y: x * y)),
    "div": Spec(_binary(lambda x, y: x / y, right={"min_value": 0.5})),
    "neg": Spec(_unary(lambda x: -x)),
    "pow": Spec(_pow_cases()),
    "exp": Spec(_unary(lambda x: x.exp())),
    "log": Spec(_unary(lambda x: x.log(), min_value=0.2)),
    "sqrt": Spec(_unary(lambda x: x.sqrt(), min_value=0.2)),
    "relu": Spec(_unary(lambda x: x.relu(), away_from=0.0)),
    "tanh": Spec(_unary(lambda x: x.tanh())),
    "sin": Spec(_unary(lambda x: x.sin())),
    "cos": Spec(_unary(lambda x: x.cos())),
    "log1p": Spec(_unary(lambda x: x.log1p(), min_value=-0.8)),
    "expm1": Spec(_unary(lambda x: x.expm1())),
    "erf": Spec(_unary(lambda x: x.erf())),
    # sign is piecewise constant: its gradient is exactly zero away from 0
    "sign": Spec(_unary(lambda x: x.sign() * x, away_from=0.0)),
    "where": Spec(_where_cases()),
    # float32 has ~7 digits, so probe the cast with a large step; the cast is linear,
    # so the central difference carries only float32 rounding of x +- h (~1e-7/1e-2).
    "cast": Spec(_unary(lambda x: x.to(np.float32).to(np.float64) * 2.0),
                 {"eps": 1e-2, "atol": 1e-4, "rtol": 1e-4}),
    "sum": Spec(_reduce_cases("sum")),
    "max": Spec(_reduce_cases("max")),
    "reshape": Spec(_reshape_cases()),
    "permute": Spec(_permute_cases()),
    "cat": Spec(_cat_cases()),
    "cumsum": Spec(_cumsum_cases()),
    "prod": Spec(_prod_cases()),
    "expand": Spec(_expand_cases()),
    "getitem": Spec(_index_cases()),
    "scatter_add": Spec(_scatter_cases()),
    "matmul": Spec(_matmul_cases()),
}


def test_every_primitive_has_a_gradient_spec():
    assert set(ops.PRIMITIVES) == set(SPECS)


@pytest.mark.parametrize("name", sorted(SPECS))
@given(data=st.data())
def test_primitive_gradient_matches_numerical(name, data):
    fn, arrays = data.draw(SPECS[name].cases)
    inputs = [Tensor(a, requires_grad=True) for a in arrays]
    gradcheck(fn, inputs, **SPECS[name].check)


@pytest.mark.parametrize("name", sorted(SPECS))
@given(data=st.data())
def test_primitive_second_derivative_matches_numerical(name, data):
    fn, arrays = data.draw(SPECS[name].cases)
    inputs = [Tensor(a, requires_grad=True) for a in arrays]
    gradgradcheck(fn, inputs, **SPECS[name].check)
