"""Everyday PyTorch idioms, each run unchanged in PyTorch and in tinygrad_bn, compared.

Each idiom is written once, as a function of `lib` (the module it runs in:
`torch` or `tinygrad_bn`) and of input tensors the harness makes in each
library from the same numpy arrays (numbers go from one library to the other
through numpy only). The harness compares what the idiom returns (tensors by
dtype, shape, requires_grad and values; modules by their state_dict; Python
values exactly or, for floats, within the tolerance) and then the gradients:
every returned tensor that requires grad is projected on one random cotangent
and differentiated, in both libraries, with respect to the inputs and to the
parameters of every returned module.

The file also holds the rows of docs/pytorch.md (coming from PyTorch, coming
from numpy): one test runs every row in both libraries (and in numpy), another
checks that the page shows exactly what the rows render to. Regenerate the
page's tables with

    PYTHONPATH=. python tests/test_pytorch_conformance.py --write-docs
"""

from __future__ import annotations

import inspect
import math
import re
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tinygrad_bn as tg

DOCS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "pytorch.md"

# float64 idioms: both libraries evaluate the same formula, so they agree to a few
# ulps times the depth of the computation; 1e-10 relative leaves room for a
# different summation order (BLAS, pairwise sums) without hiding a wrong formula.
RTOL64, ATOL64 = 1e-10, 1e-12
# float32 idioms: ~7 significant digits, and the libraries sum in different orders.
RTOL32, ATOL32 = 1e-5, 1e-6


# ---------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Input:
    """One input of an idiom: how to draw its numpy array, and whether it requires grad."""

    kind: str  # "float", "int", "bool", "prob" or "const"
    shape: tuple[int, ...] = ()
    dtype: str = "float64"
    grad: bool = True
    low: float = -2.0
    high: float = 2.0
    value: Any = None  # the value itself, for "const"

    def draw(self, rng: np.random.Generator) -> Any:
        if self.kind == "const":
            return self.value
        if self.kind == "int":
            return rng.integers(int(self.low), int(self.high), self.shape).astype(np.int64)
        if self.kind == "bool":
            return rng.random(self.shape) < 0.5
        return rng.uniform(self.low, self.high, self.shape).astype(self.dtype)

    def make(self, lib: Any, array: Any) -> Any:
        if self.kind == "const":
            return array
        grad = self.grad and self.kind in ("float", "prob")
        return lib.tensor(np.array(array), requires_grad=grad)


def f64(*shape: int, grad: bool = True, low: float = -2.0, high: float = 2.0) -> Input:
    """A float64 tensor, uniform in [low, high), that requires grad by default."""
    return Input("float", shape, "float64", grad, low, high)


def f32(*shape: int, grad: bool = True, low: float = -2.0, high: float = 2.0) -> Input:
    """A float32 tensor, uniform in [low, high)."""
    return Input("float", shape, "float32", grad, low, high)


def prob(*shape: int, grad: bool = True) -> Input:
    """float64 probabilities away from 0 and 1."""
    return Input("prob", shape, "float64", grad, 0.05, 0.95)


def ints(*shape: int, high: int = 4, low: int = 0) -> Input:
    """An int64 tensor with values in [low, high)."""
    return Input("int", shape, "int64", False, low, high)


def mask(*shape: int) -> Input:
    """A bool tensor."""
    return Input("bool", shape, "bool", False)


def const(value: Any) -> Input:
    """A Python value passed to both libraries as it is."""
    return Input("const", value=value)


# ---------------------------------------------------------------- idioms


@dataclass(frozen=True)
class Idiom:
    """An idiom: fn(lib, *inputs) with its inputs, tolerances and expectations."""

    id: str
    fn: Callable[..., Any]
    inputs: tuple[Input, ...] = ()
    rtol: float | None = None  # None: by the compared values' dtype (RTOL64 / RTOL32)
    atol: float | None = None
    grad: bool = True  # differentiate the returned tensors that require grad
    raises: type[BaseException] | None = None  # both libraries must raise this
    needs: str | None = None  # a tinygrad_bn attribute path the idiom needs (e.g. "optim.AdamW")
    why: str = ""  # why the tolerance is looser than the dtype's
    gap: str | None = None  # a known difference: why, and which module owns the fix (runs as strict xfail)


def I(id: str, fn: Callable[..., Any], *inputs: Input, **options: Any) -> Idiom:  # noqa: E743
    """An idiom; options are Idiom's fields."""
    return Idiom(id, fn, tuple(inputs), **options)


IDIOMS: list[Idiom] = []


def _stats(t: Any) -> tuple[float, float, float, float]:
    """(mean, std, min, max) of a tensor, as Python floats (for random idioms)."""
    return t.mean().item(), t.std().item(), t.min().item(), t.max().item()


# ---------------------------------------------------------------- creation

# A sample of 250,000 values estimates its std to ~0.14% (1 / sqrt(2N)) and its mean to
# 0.2% of the std; two independent samples differ by sqrt(2) times that. These tolerances
# are about 5 sigma, so a correct pair of generators fails about once in 10**6 runs.
SAMPLE = (500, 500)
STAT_ATOL, STAT_RTOL = 0.01, 0.01
STAT_WHY = "two independent random samples of 250,000 values: 5 sigma of their sampling error"

IDIOMS += [
    I("tensor([1, 2, 3]) is int64", lambda lib: lib.tensor([1, 2, 3])),
    I("tensor([1.0, 2.5]) is float32", lambda lib: lib.tensor([1.0, 2.5])),
    I("tensor([True, False]) is bool", lambda lib: lib.tensor([True, False])),
    I("tensor([1, 2.5]) mixes to float32", lambda lib: lib.tensor([1, 2.5])),
    I("tensor(3.5) is 0-d", lambda lib: lib.tensor(3.5)),
    I("tensor(7) is a 0-d int64", lambda lib: lib.tensor(7)),
    I("tensor([[1, 2], [3, 4]], dtype=float64)", lambda lib: lib.tensor([[1, 2], [3, 4]], dtype=lib.float64)),
    I("tensor([1.0, 2.0], requires_grad=True)", lambda lib: lib.tensor([1.0, 2.0], requires_grad=True)),
    I("tensor(ndarray of int32) keeps int32", lambda lib: lib.tensor(np.arange(3, dtype=np.int32))),
    I("zeros(2, 3)", lambda lib: lib.zeros(2, 3)),
    I("zeros((2, 3), dtype=int64)", lambda lib: lib.zeros((2, 3), dtype=lib.int64)),
    I("ones(4, dtype=float64)", lambda lib: lib.ones(4, dtype=lib.float64)),
    I("ones(2, 2, requires_grad=True)", lambda lib: lib.ones(2, 2, requires_grad=True)),
    I("full((2, 2), 7) is int64", lambda lib: lib.full((2, 2), 7)),
    I("full((2, 2), 0.5) is float32", lambda lib: lib.full((2, 2), 0.5)),
    I("full((3,), True) is bool", lambda lib: lib.full((3,), True)),
    I("empty(2, 3).shape", lambda lib: lib.empty(2, 3).shape),
    I("arange(5) is int64", lambda lib: lib.arange(5)),
    I("arange(1, 10, 3)", lambda lib: lib.arange(1, 10, 3)),
    I("arange(0, 1, 0.25) is float32", lambda lib: lib.arange(0, 1, 0.25)),
    I("arange(5, dtype=float64)", lambda lib: lib.arange(5, dtype=lib.float64)),
    I("arange(0.0, 1.0, 0.1) has 10 values", lambda lib: lib.arange(0.0, 1.0, 0.1).shape),
    I("linspace(0, 1, 5)", lambda lib: lib.linspace(0, 1, 5)),
    I("linspace(-1, 1, 4, dtype=float64)", lambda lib: lib.linspace(-1, 1, 4, dtype=lib.float64)),
    I("eye(3)", lambda lib: lib.eye(3)),
    I("eye(2, 3)", lambda lib: lib.eye(2, 3)),
    I("zeros_like(x)", lambda lib, x: lib.zeros_like(x), f64(2, 3)),
    I("ones_like(x, dtype=int64)", lambda lib, x: lib.ones_like(x, dtype=lib.int64), f64(2, 3)),
    I("full_like(x, 2.5)", lambda lib, x: lib.full_like(x, 2.5), f32(2, 3)),
    I("empty_like(x).shape and dtype", lambda lib, x: (lib.empty_like(x).shape, lib.empty_like(x).dtype),
      f32(2, 3)),
    I("randn_like(x).shape and dtype", lambda lib, x: (lib.randn_like(x).shape, lib.randn_like(x).dtype),
      f64(4, 5)),
    I("rand_like(x) lies in [0, 1)",
      lambda lib, x: ((lib.rand_like(x) >= 0).all(), (lib.rand_like(x) < 1).all()),
      f32(50, 50)),
    I("rand(500, 500): uniform on [0, 1)", lambda lib: _stats(lib.rand(*SAMPLE)),
      atol=STAT_ATOL, rtol=STAT_RTOL, why=STAT_WHY),
    I("randn(500, 500): standard normal", lambda lib: _stats(lib.randn(*SAMPLE))[:2],
      atol=STAT_ATOL, rtol=STAT_RTOL, why=STAT_WHY),
    I("randn(2, 3, dtype=float64).dtype", lambda lib: lib.randn(2, 3, dtype=lib.float64).dtype),
    I("randint(0, 10, (500, 500)): int64 in [0, 10)",
      lambda lib: (lambda t: (t.dtype, t.min().item(), t.max().item(), t.double().mean().item()))(
          lib.randint(0, 10, SAMPLE)),
      atol=0.05, why=STAT_WHY),
    I("randint(5, (3,)) counts from 0", lambda lib: lib.randint(5, (3,)).shape),
    I("randperm(6).sort().values is arange(6)", lambda lib: lib.randperm(6).sort().values),
    I("normal(2.0, 3.0, size=(500, 500))", lambda lib: _stats(lib.normal(2.0, 3.0, size=SAMPLE))[:2],
      atol=0.05, rtol=STAT_RTOL, why=STAT_WHY),
    I("manual_seed(0) makes randn repeat",
      lambda lib: (lib.manual_seed(0), lib.randn(3))[1].equal((lib.manual_seed(0), lib.randn(3))[1])),
    I("a Generator with a seed makes rand repeat",
      lambda lib: lib.equal(lib.rand(4, generator=lib.Generator().manual_seed(3)),
                            lib.rand(4, generator=lib.Generator().manual_seed(3)))),
    I("x.dtype == float64", lambda lib, x: x.dtype == lib.float64, f64(2)),
    I("x.dtype == float32 after .float()", lambda lib, x: x.float().dtype == lib.float32, f64(2)),
    I("get_default_dtype() is float32", lambda lib: lib.get_default_dtype() == lib.float32),
]


# ---------------------------------------------------------------- reductions and ops with dims

IDIOMS += [
    I("x.sum()", lambda lib, x: x.sum(), f64(2, 3)),
    I("x.sum(dim=1, keepdim=True)", lambda lib, x: x.sum(dim=1, keepdim=True), f64(2, 3)),
    I("x.sum(0)", lambda lib, x: x.sum(0), f64(2, 3)),
    I("x.sum(dim=(0, 2))", lambda lib, x: x.sum(dim=(0, 2)), f64(2, 3, 4)),
    I("x.sum(axis=1, keepdims=True) (numpy's spelling)",
      lambda lib, x: x.sum(axis=1, keepdims=True), f64(2, 3)),
    I("x.sum(dtype=float64) of float32", lambda lib, x: x.sum(dtype=lib.float64), f32(2, 3)),
    I("lib.sum(x, -1)", lambda lib, x: lib.sum(x, -1), f64(2, 3)),
    I("x.mean()", lambda lib, x: x.mean(), f64(2, 3)),
    I("x.mean(dim=-1, keepdim=True)", lambda lib, x: x.mean(dim=-1, keepdim=True), f64(2, 3)),
    I("x.mean(0) of float32", lambda lib, x: x.mean(0), f32(4, 3)),
    I("x.var(0) is unbiased", lambda lib, x: x.var(0), f64(4, 3)),
    I("x.var() over everything", lambda lib, x: x.var(), f64(4, 3)),
    I("x.var(dim=1, unbiased=False)", lambda lib, x: x.var(dim=1, unbiased=False), f64(4, 3)),
    I("x.var(dim=1, correction=0, keepdim=True)", lambda lib, x: x.var(dim=1, correction=0, keepdim=True),
      f64(4, 3)),
    I("x.std(1)", lambda lib, x: x.std(1), f64(4, 3)),
    I("x.std(dim=0, correction=2)", lambda lib, x: x.std(dim=0, correction=2), f64(5, 3)),
    I("x.max() over everything", lambda lib, x: x.max(), f64(3, 4)),
    I("x.max(1) gives (values, indices)", lambda lib, x: x.max(1), f64(3, 4)),
    I("values, indices = x.max(dim=0)", lambda lib, x: (lambda v, i: (v * 2, i))(*x.max(dim=0)), f64(3, 4)),
    I("x.max(dim=1, keepdim=True).values", lambda lib, x: x.max(dim=1, keepdim=True).values, f64(3, 4)),
    I("x.min(-1).indices", lambda lib, x: x.min(-1).indices, f64(3, 4)),
    I("x.min(dim=0)", lambda lib, x: x.min(dim=0), f64(3, 4)),
    I("lib.max(x, y) is the elementwise maximum", lambda lib, x, y: lib.max(x, y), f64(3, 4), f64(3, 4)),
    I("x.amax(dim=(0, 1))", lambda lib, x: x.amax(dim=(0, 1)), f64(2, 3, 4)),
    I("x.amin(1, keepdim=True)", lambda lib, x: x.amin(1, keepdim=True), f64(2, 3)),
    I("x.argmax()", lambda lib, x: x.argmax(), f64(3, 4)),
    I("x.argmax(dim=1)", lambda lib, x: x.argmax(dim=1), f64(3, 4)),
    I("x.argmin(dim=0, keepdim=True)", lambda lib, x: x.argmin(dim=0, keepdim=True), f64(3, 4)),
    I("x.prod(1)", lambda lib, x: x.prod(1), f64(3, 4)),
    I("x.prod() with a zero", lambda lib, x: (x * lib.tensor([1.0, 0.0, 1.0], dtype=lib.float64)).prod(),
      f64(3)),
    I("x.cumsum(dim=0)", lambda lib, x: x.cumsum(dim=0), f64(3, 4)),
    I("x.logsumexp(dim=1)", lambda lib, x: x.logsumexp(dim=1), f64(3, 4)),
    I("lib.logsumexp(x, dim=0, keepdim=True)",
      lambda lib, x: lib.logsumexp(x, dim=0, keepdim=True), f64(3, 4)),
    I("x.norm()", lambda lib, x: x.norm(), f64(3, 4)),
    I("x.norm(dim=1)", lambda lib, x: x.norm(dim=1), f64(3, 4)),
    I("x.norm(p=1, dim=0)", lambda lib, x: x.norm(p=1, dim=0), f64(3, 4)),
    I("x.norm(p=float('inf'))", lambda lib, x: x.norm(p=float("inf")), f64(3, 4)),
    I("x.norm(3, dim=1, keepdim=True)", lambda lib, x: x.norm(3, dim=1, keepdim=True), f64(3, 4)),
    I("x.softmax(dim=-1)", lambda lib, x: x.softmax(dim=-1), f64(3, 4)),
    I("lib.softmax(x, dim=0)", lambda lib, x: lib.softmax(x, dim=0), f64(3, 4)),
    I("x.log_softmax(1)", lambda lib, x: x.log_softmax(1), f64(3, 4)),
    I("(x > 0).any() and (x > 0).all(dim=1)", lambda lib, x: ((x > 0).any(), (x > 0).all(dim=1)), f64(3, 4)),
    I("(x > 0).sum() counts as int64", lambda lib, x: (x > 0).sum(), f64(3, 4)),
    I("(x > 0).float().mean()", lambda lib, x: (x > 0).float().mean(), f64(3, 4)),
    I("x.sort(dim=1, descending=True)", lambda lib, x: x.sort(dim=1, descending=True), f64(3, 4)),
    I("x.argsort(dim=0)", lambda lib, x: x.argsort(dim=0), f64(3, 4)),
    I("x.topk(2)", lambda lib, x: x.topk(2), f64(3, 4)),
    I("x.topk(2, dim=0, largest=False).values",
      lambda lib, x: x.topk(2, dim=0, largest=False).values, f64(3, 4)),
]


# ---------------------------------------------------------------- elementwise, dtypes, conversions

IDIOMS += [
    I("x + y broadcasts (3, 1) with (4,)", lambda lib, x, y: x + y, f64(3, 1), f64(4)),
    I("x * 2 - 1 / x", lambda lib, x: x * 2 - 1 / x, f64(3, low=0.5)),
    I("2 ** x and x ** 2", lambda lib, x: (2 ** x, x ** 2), f64(3)),
    I("x.pow(0.5) of positives", lambda lib, x: x.pow(0.5), f64(3, low=0.2)),
    I("x.exp(), x.log(), x.sqrt()", lambda lib, x: (x.exp(), x.log(), x.sqrt()), f64(3, low=0.2)),
    I("lib.sin, lib.cos, lib.tanh, lib.sigmoid", lambda lib, x: (lib.sin(x), lib.cos(x), lib.tanh(x),
                                                                   lib.sigmoid(x)), f64(2, 3)),
    I("x.erf(), x.log1p(), x.expm1()", lambda lib, x: (x.erf(), x.log1p(), x.expm1()), f64(4, low=-0.5)),
    I("x.rsqrt() and x.reciprocal()", lambda lib, x: (x.rsqrt(), x.reciprocal()), f64(4, low=0.3)),
    I("x.abs(), abs(x), x.sign(), -x", lambda lib, x: (x.abs(), abs(x), x.sign(), -x), f64(2, 3)),
    I("x.clamp(min=0)", lambda lib, x: x.clamp(min=0), f64(2, 3)),
    I("x.clamp(-1, 1)", lambda lib, x: x.clamp(-1, 1), f64(2, 3)),
    I("lib.clamp(x, max=0.5)", lambda lib, x: lib.clamp(x, max=0.5), f64(2, 3)),
    I("lib.where(x > 0, x, 0.0)", lambda lib, x: lib.where(x > 0, x, 0.0), f64(2, 3)),
    I("lib.where(m, x, y)", lambda lib, m, x, y: lib.where(m, x, y), mask(2, 3), f64(2, 3), f64(2, 3)),
    I("lib.maximum(x, y) and lib.minimum(x, y)", lambda lib, x, y: (lib.maximum(x, y), lib.minimum(x, y)),
      f64(2, 3), f64(3)),
    I("x.relu() and x.square()", lambda lib, x: (x.relu(), x.square()), f64(2, 3)),
    I("x == y, x != y, x < 0.5", lambda lib, x, y: (x == y, x != y, x < 0.5), ints(3, 4), ints(3, 4)),
    I("lib.isclose(x, x + 1e-9) and allclose", lambda lib, x: (lib.isclose(x, x + 1e-9),
                                                              lib.allclose(x, x + 1e-9)), f64(3)),
    I("lib.equal(x, x.clone())", lambda lib, x: lib.equal(x, x.clone()), f64(3)),
    I("float32 + float64 promotes to float64", lambda lib, x, y: x + y, f32(3), f64(3)),
    I("float32 * 2.5 stays float32", lambda lib, x: x * 2.5, f32(3)),
    I("int64 + 1.5 becomes float32", lambda lib, x: x + 1.5, ints(3)),
    I("int64 / int64 divides to float32", lambda lib, x, y: x / (y + 1), ints(4, high=9), ints(4)),
    I("a // b and div(a, b, rounding_mode='floor')",
      lambda lib, a, b: (a // b, lib.div(a, b, rounding_mode="floor")),
      ints(4, low=-9, high=9), ints(4, low=1)),
    I("div(a, b, rounding_mode='trunc')", lambda lib, a, b: lib.div(a, b, rounding_mode="trunc"),
      ints(4, low=-9, high=9), ints(4, low=1)),
    I("x.float() and x.double()", lambda lib, x: (x.float(), x.double()), f64(3)),
    I("x.to(float32) keeps the graph", lambda lib, x: x.to(lib.float32) * 2, f64(3),
      why="a float32 round trip"),
    I("x.to(y) takes y's dtype", lambda lib, x, y: x.to(y), f64(3), f32(2)),
    I("labels.long(), .int(), .bool()", lambda lib, x: (x.long(), x.int(), x.bool()), ints(4)),
    I("x.shape, x.size(), x.size(1)", lambda lib, x: (x.shape, x.size(), x.size(1)), f64(2, 3)),
    I("x.numel(), x.dim(), x.ndim, len(x)", lambda lib, x: (x.numel(), x.dim(), x.ndim, len(x)), f64(2, 3)),
    I("x.tolist()", lambda lib, x: x.tolist(), ints(2, 3)),
    I("x.sum().item() is a Python float", lambda lib, x: x.sum().item(), f64(2, 3)),
    I("float(t), int(t), bool(t) of one element", lambda lib, x: (float(x), int(x * 0 + 3), bool(x != 0)),
      f64(1, grad=False)),
    I("x.clone() is a copy in the graph", lambda lib, x: x.clone() * 3, f64(2, 3)),
    I("x.detach() leaves the graph", lambda lib, x: (x.detach(), x.detach().requires_grad), f64(2, 3)),
    I("x.numpy() after detach", lambda lib, x: x.detach().numpy().sum(), f64(2, 3)),
    I("x.requires_grad and x.is_leaf", lambda lib, x: (x.requires_grad, x.is_leaf, (x * 2).is_leaf), f64(2)),
    I("x.device is cpu", lambda lib, x: str(x.device), f64(2)),
    I("x.to('cpu') is x", lambda lib, x: x.to("cpu") is x, f64(2)),
]


# ---------------------------------------------------------------- shapes, indexing, products

IDIOMS += [
    I("x.transpose(0, 1) of a matrix", lambda lib, x: x.transpose(0, 1), f64(2, 3)),
    I("x.transpose(1, 2) of a 3-d tensor", lambda lib, x: x.transpose(1, 2), f64(2, 3, 4)),
    I("x.T and x.t()", lambda lib, x: (x.T, x.t()), f64(2, 3)),
    I("x.mT swaps the last two dims", lambda lib, x: x.mT, f64(2, 3, 4)),
    I("x.permute(2, 0, 1)", lambda lib, x: x.permute(2, 0, 1), f64(2, 3, 4)),
    I("x.reshape(-1, 2)", lambda lib, x: x.reshape(-1, 2), f64(2, 3)),
    I("x.view(3, -1)", lambda lib, x: x.view(3, -1), f64(2, 3)),
    I("x.view(x.size(0), -1)", lambda lib, x: x.view(x.size(0), -1), f64(2, 3, 4)),
    I("x.flatten() and x.flatten(1)", lambda lib, x: (x.flatten(), x.flatten(1)), f64(2, 3, 4)),
    I("x.unflatten(1, (2, 2))", lambda lib, x: x.unflatten(1, (2, 2)), f64(3, 4)),
    I("x.unsqueeze(0) and x.unsqueeze(-1)", lambda lib, x: (x.unsqueeze(0), x.unsqueeze(-1)), f64(2, 3)),
    I("x[None] and x[:, None]", lambda lib, x: (x[None], x[:, None]), f64(2, 3)),
    I("x.squeeze() and x.squeeze(1)", lambda lib, x: (x.squeeze(), x.squeeze(1)), f64(2, 1, 3, 1)),
    I("lib.cat([x, x * 2], dim=0).sum(dim=1, keepdim=True)",
      lambda lib, x: lib.cat([x, x * 2], dim=0).sum(dim=1, keepdim=True), f64(2, 3)),
    I("lib.cat((x, y), dim=1)", lambda lib, x, y: lib.cat((x, y), dim=1), f64(2, 3), f64(2, 1)),
    I("lib.stack([x, y]) and lib.stack([x, y], dim=1)",
      lambda lib, x, y: (lib.stack([x, y]), lib.stack([x, y], dim=1)), f64(2, 3), f64(2, 3)),
    I("x.split(2, dim=1)", lambda lib, x: x.split(2, dim=1), f64(2, 5)),
    I("lib.split(x, [1, 3])", lambda lib, x: lib.split(x, [1, 3]), f64(4, 2)),
    I("x.chunk(3)", lambda lib, x: x.chunk(3), f64(5, 2)),
    I("x.unbind(1)", lambda lib, x: x.unbind(1), f64(2, 3)),
    I("for row in x", lambda lib, x: [row * i for i, row in enumerate(x)], f64(3, 2)),
    I("x.flip(0) and x.flip(dims=(0, 1))", lambda lib, x: (x.flip(0), x.flip(dims=(0, 1))), f64(2, 3)),
    I("x.narrow(1, 1, 2)", lambda lib, x: x.narrow(1, 1, 2), f64(2, 4)),
    I("x.repeat(2, 1) tiles", lambda lib, x: x.repeat(2, 1), f64(2, 3)),
    I("x.repeat(2, 1, 2) adds a dim", lambda lib, x: x.repeat(2, 1, 2), f64(2, 3)),
    I("x.expand(3, -1)", lambda lib, x: x.expand(3, -1), f64(1, 4)),
    I("x.expand_as(y)", lambda lib, x, y: x.expand_as(y) * y, f64(3, 1), f64(3, 4)),
    I("x.movedim(0, -1)", lambda lib, x: x.movedim(0, -1), f64(2, 3, 4)),
    I("x[0], x[:, 1], x[..., -1]", lambda lib, x: (x[0], x[:, 1], x[..., -1]), f64(2, 3, 4)),
    I("x[1:, ::2]", lambda lib, x: x[1:, ::2], f64(3, 4)),
    I("x[idx] with repeated indices", lambda lib, x, i: x[i], f64(3, 2), ints(5, high=3)),
    I("x[[0, 2, 2]]", lambda lib, x: x[[0, 2, 2]], f64(3, 2)),
    I("x[mask] and x[x > 0]", lambda lib, x, m: (x[m], x[x > 0]), f64(3, 4), mask(3, 4)),
    I("x[rows, cols]", lambda lib, x, r, c: x[r, c], f64(3, 4), ints(5, high=3), ints(5, high=4)),
    I("x.gather(1, idx)", lambda lib, x, i: x.gather(1, i), f64(3, 4), ints(3, 2, high=4)),
    I("lib.gather(x, 0, idx)", lambda lib, x, i: lib.gather(x, 0, i), f64(3, 4), ints(2, 4, high=3)),
    I("x.scatter_add(0, idx, src)",
      lambda lib, x, i, s: x.scatter_add(0, i, s), f64(3, 4), ints(2, 4, high=3),
      f64(2, 4)),
    I("x.index_select(0, idx)", lambda lib, x, i: x.index_select(0, i), f64(3, 4), ints(5, high=3)),
    I("x.masked_fill(m, 0.0)", lambda lib, x, m: x.masked_fill(m, 0.0), f64(3, 4), mask(3, 4)),
    I("x.masked_fill(x < 0, -inf).softmax(-1)",
      lambda lib, x: (x.masked_fill(x < 0, float("-inf")) + 0.0).softmax(-1), f64(3, 4, low=-0.5)),
    I("lib.take_along_dim(x, x.argsort(1), 1)", lambda lib, x: lib.take_along_dim(x, x.argsort(1), 1),
      f64(3, 4)),
    I("x @ y of matrices", lambda lib, x, y: x @ y, f64(2, 3), f64(3, 4)),
    I("x @ v of a matrix and a vector", lambda lib, x, v: x @ v, f64(2, 3), f64(3)),
    I("batched x @ y broadcasts", lambda lib, x, y: x @ y, f64(2, 1, 3, 4), f64(5, 4, 2)),
    I("x.matmul(y) and lib.matmul(x, y)", lambda lib, x, y: (x.matmul(y), lib.matmul(x, y)), f64(2, 3),
      f64(3, 2)),
    I("lib.mm(x, y)", lambda lib, x, y: lib.mm(x, y), f64(2, 3), f64(3, 4)),
    I("lib.bmm(x, y)", lambda lib, x, y: lib.bmm(x, y), f64(2, 3, 4), f64(2, 4, 5)),
    I("lib.dot(u, v) and lib.outer(u, v)",
      lambda lib, u, v: (lib.dot(u, v), lib.outer(u, v)), f64(3), f64(3)),
    I("lib.einsum('ij,jk->ik', a, b)", lambda lib, a, b: lib.einsum("ij,jk->ik", a, b), f64(2, 3), f64(3, 4)),
    I("lib.einsum('bij,bjk->bik', a, b)", lambda lib, a, b: lib.einsum("bij,bjk->bik", a, b), f64(2, 2, 3),
      f64(2, 3, 2)),
    I("lib.einsum('ii->i', a) takes the diagonal", lambda lib, a: lib.einsum("ii->i", a), f64(3, 3)),
    I("lib.einsum('ij->', a) and 'ij->j'", lambda lib, a: (lib.einsum("ij->", a), lib.einsum("ij->j", a)),
      f64(2, 3)),
    I("lib.einsum('...ij,...jk', a, b) (implicit output)", lambda lib, a, b: lib.einsum("...ij,...jk", a, b),
      f64(2, 2, 3), f64(3, 4)),
    I("lib.einsum('i,j->ij', u, v)", lambda lib, u, v: lib.einsum("i,j->ij", u, v), f64(2), f64(3)),
]


# ---------------------------------------------------------------- autograd

# An op records its parents as Tensor objects and the walk reads parent._ctx at backward
# time; an in-place op rebases the tensor's _ctx, so ops recorded earlier follow the new
# node (a wrong gradient, or a cycle that stops the walk). Fix: record each parent's
# node when the op is applied (PyTorch's edges) in autograd/function.py and graph.py.

def backward_with_gradient(lib, x, v):
    y = x * x
    y.backward(gradient=v)
    return x.grad


def grad_of_a_sum(lib, x):
    return lib.autograd.grad((x.sin() * x).sum(), x)


def grad_of_two_inputs(lib, x, w):
    out = (x @ w).tanh().sum()
    return lib.autograd.grad(out, [x, w])


def second_derivative_with_create_graph(lib, x):
    (g,) = lib.autograd.grad((x ** 3).sum(), x, create_graph=True)
    (h,) = lib.autograd.grad(g.sum(), x)
    return g.detach(), h


def hessian_vector_product(lib, x, v):
    (g,) = lib.autograd.grad((x.exp() * x).sum(), x, create_graph=True)
    return lib.autograd.grad(g, x, grad_outputs=v)


def retain_grad_of_an_intermediate(lib, x):
    y = x * 3
    y.retain_grad()
    (y * y).sum().backward()
    return y.grad, x.grad


def hook_doubles_the_gradient(lib, x):
    x.register_hook(lambda g: g * 2)
    (x * x).sum().backward()
    return x.grad


def hook_on_an_intermediate_sees_its_gradient(lib, x):
    seen = []
    y = x.exp()
    y.register_hook(lambda g: seen.append(g.clone()))
    (y * 2).sum().backward()
    return seen[0], x.grad


def removed_hook_does_not_run(lib, x):
    handle = x.register_hook(lambda g: g * 10)
    handle.remove()
    x.sum().backward()
    return x.grad


def no_grad_records_nothing(lib, x):
    with lib.no_grad():
        y = x * 2
    return y.requires_grad, y.grad_fn is None, y


def enable_grad_inside_no_grad(lib, x):
    with lib.no_grad():
        with lib.enable_grad():
            y = x * 2
    return y.requires_grad


def set_grad_enabled_false_as_a_context(lib, x):
    with lib.set_grad_enabled(False):
        y = x * 2
    return y.requires_grad, lib.is_grad_enabled()


def requires_grad_in_place(lib):
    x = lib.ones(3).requires_grad_()
    (x * 2).sum().backward()
    return x.requires_grad, x.grad


def gradients_accumulate_over_two_backwards(lib, x):
    (x * 2).sum().backward()
    (x * x).sum().backward()
    return x.grad


def retain_graph_allows_a_second_backward(lib, x):
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    return x.grad


def second_backward_without_retain_graph(lib, x):
    y = (x.exp() * x).sum()
    y.backward()
    y.backward()


def zero_the_gradient_between_steps(lib, x):
    (x * 2).sum().backward()
    x.grad = None
    (x * 3).sum().backward()
    return x.grad


def in_place_on_a_leaf_that_requires_grad(lib, x):
    x.add_(1.0)


def in_place_update_under_no_grad(lib, x):
    (x * x).sum().backward()
    with lib.no_grad():
        x.sub_(0.1 * x.grad)
        x.grad.zero_()
    return x.detach().clone(), x.grad


def in_place_on_an_intermediate(lib, x):
    y = x * 2
    y.add_(1.0)
    y.mul_(3.0)
    (y * y).sum().backward()
    return y.detach(), x.grad


def setitem_in_the_graph(lib, x):
    y = x.clone()
    y[0] = 0.0
    y[:, 1] = x[:, 0] * 5
    (y * y).sum().backward()
    return y.detach(), x.grad


def setitem_from_itself(lib, x):
    y = x.clone()
    y[:, 1] = y[:, 1] * 5
    (y * y).sum().backward()
    return y.detach(), x.grad


def in_place_after_another_op_used_the_tensor(lib, x):
    y = x * 2
    z = y + 3  # recorded before y changes: its gradient must not see the mul_
    y.mul_(2)
    z.sum().backward()
    return x.grad


def backward_of_a_non_scalar_without_gradient(lib, x):
    (x * 2).backward()


def fill_and_zero_under_no_grad(lib):
    w = lib.empty(2, 3)
    w.fill_(0.5)
    b = lib.ones(3)
    b.zero_()
    return w, b


def detach_cuts_the_gradient(lib, x):
    y = x * x.detach()
    y.sum().backward()
    return x.grad


def grad_fn_exists_on_op_outputs(lib, x):
    return x.grad_fn is None, (x * 2).grad_fn is not None, (x * 2).requires_grad


def allow_unused_gives_none(lib, x, y):
    return lib.autograd.grad((x * 2).sum(), [x, y], allow_unused=True)[1] is None


def backward_inputs_only_fills_those(lib, x, y):
    (x * y).sum().backward(inputs=[x])
    return x.grad, y.grad is None


def grad_is_float32_for_a_float32_leaf(lib, x):
    (x * 2.5).sum().backward()
    return x.grad


IDIOMS += [
    I("y.backward(gradient=v)", backward_with_gradient, f64(3), f64(3, grad=False), grad=False),
    I("lib.autograd.grad(out, x)", grad_of_a_sum, f64(2, 3)),
    I("lib.autograd.grad(out, [x, w])", grad_of_two_inputs, f64(2, 3), f64(3, 2)),
    I("second derivative with create_graph=True", second_derivative_with_create_graph, f64(4), grad=False),
    I("Hessian-vector product through grad(create_graph=True)", hessian_vector_product, f64(4),
      f64(4, grad=False), grad=False),
    I("y.retain_grad() keeps an intermediate's grad", retain_grad_of_an_intermediate, f64(3), grad=False),
    I("x.register_hook(lambda g: g * 2)", hook_doubles_the_gradient, f64(3), grad=False),
    I("register_hook on an intermediate sees its gradient", hook_on_an_intermediate_sees_its_gradient,
      f64(3), grad=False),
    I("handle.remove() unregisters a hook", removed_hook_does_not_run, f64(3), grad=False),
    I("with no_grad(): nothing is recorded", no_grad_records_nothing, f64(3)),
    I("enable_grad() inside no_grad()", enable_grad_inside_no_grad, f64(3)),
    I("with set_grad_enabled(False)", set_grad_enabled_false_as_a_context, f64(3)),
    I("ones(3).requires_grad_()", requires_grad_in_place, grad=False),
    I("gradients accumulate over two backward calls", gradients_accumulate_over_two_backwards, f64(3),
      grad=False),
    I("backward(retain_graph=True) then backward again", retain_graph_allows_a_second_backward, f64(3),
      grad=False),
    I("a second backward through a freed graph raises", second_backward_without_retain_graph, f64(3),
      raises=RuntimeError),
    I("x.grad = None between steps", zero_the_gradient_between_steps, f64(3), grad=False),
    I("x.add_(1) on a leaf that requires grad raises", in_place_on_a_leaf_that_requires_grad, f64(3),
      raises=RuntimeError),
    I("with no_grad(): x.sub_(lr * x.grad); x.grad.zero_()",
      in_place_update_under_no_grad, f64(3), grad=False),
    I("in-place add_/mul_ on an intermediate", in_place_on_an_intermediate, f64(3), grad=False),
    I("y[0] = 0 and y[:, 1] = x[:, 0] * 5 in the graph", setitem_in_the_graph, f64(3, 2), grad=False),
    I("y[:, 1] = y[:, 1] * 5 (a value read from y itself)", setitem_from_itself, f64(3, 2), grad=False),
    I("z = y + 3; y.mul_(2): z's gradient ignores the later mul_", in_place_after_another_op_used_the_tensor,
      f64(3), grad=False),
    I("backward() of a non-scalar without gradient raises", backward_of_a_non_scalar_without_gradient,
      f64(3), raises=RuntimeError),
    I("w.fill_(0.5) and b.zero_()", fill_and_zero_under_no_grad),
    I("x * x.detach() differentiates one factor", detach_cuts_the_gradient, f64(3), grad=False),
    I("grad_fn is None on leaves, set on op outputs", grad_fn_exists_on_op_outputs, f64(3)),
    I("grad(..., allow_unused=True) gives None", allow_unused_gives_none, f64(3), f64(3)),
    I("backward(inputs=[x]) fills only x.grad", backward_inputs_only_fills_those, f64(3), f64(3), grad=False),
    I("a float32 leaf gets a float32 grad", grad_is_float32_for_a_float32_leaf, f32(3), grad=False),
]


# ---------------------------------------------------------------- nn modules


def load(lib, module, **values):
    """Set a module's parameters as PyTorch code does: under no_grad, with copy_."""
    with lib.no_grad():
        for name, value in values.items():
            getattr(module, name).copy_(value)
    return module


def linear_forward(lib, x, w, b):
    m = load(lib, lib.nn.Linear(3, 2, dtype=lib.float64), weight=w, bias=b)
    return m(x), m


def linear_without_bias(lib, x, w):
    m = load(lib, lib.nn.Linear(3, 2, bias=False, dtype=lib.float64), weight=w)
    return m(x), m, m.bias is None


def linear_float32(lib, x, w, b):
    m = load(lib, lib.nn.Linear(3, 2), weight=w, bias=b)
    return m(x), m


def linear_shapes(lib):
    m = lib.nn.Linear(5, 2)
    return m.weight.shape, m.bias.shape, m.weight.dtype, m.weight.requires_grad, m.in_features


def linear_default_init(lib):
    # PyTorch's default: weight and bias uniform in +-1/sqrt(in_features)
    m = lib.nn.Linear(400, 625)
    bound = 1 / math.sqrt(400)
    return (m.weight.std().item() / bound, m.weight.abs().max().item() / bound,
            m.bias.abs().max().item() <= bound)


def sequential_mlp(lib, x, w1, b1, w2, b2):
    model = lib.nn.Sequential(
        load(lib, lib.nn.Linear(3, 4, dtype=lib.float64), weight=w1, bias=b1),
        lib.nn.ReLU(),
        load(lib, lib.nn.Linear(4, 2, dtype=lib.float64), weight=w2, bias=b2),
    )
    return model(x), model, len(model), type(model[1]).__name__


def batchnorm1d_train(lib, x):
    bn = lib.nn.BatchNorm1d(3, dtype=lib.float64)
    return bn(x), bn


def batchnorm1d_three_steps_then_eval(lib, x, w, b):
    bn = load(lib, lib.nn.BatchNorm1d(3, momentum=0.3, dtype=lib.float64), weight=w, bias=b)
    for k in range(3):
        bn(x * (k + 1) + k)
    bn.eval()
    return bn(x), bn, bn.training


def batchnorm1d_cumulative_average(lib, x):
    bn = lib.nn.BatchNorm1d(3, momentum=None, dtype=lib.float64)
    bn(x)
    bn(x * 2 + 1)
    return bn, bn.num_batches_tracked


def batchnorm1d_over_sequences(lib, x):
    bn = lib.nn.BatchNorm1d(3, dtype=lib.float64)
    return bn(x), bn


def batchnorm1d_without_affine(lib, x):
    bn = lib.nn.BatchNorm1d(3, affine=False, dtype=lib.float64)
    return bn(x), bn, bn.weight is None


def batchnorm1d_without_running_stats(lib, x):
    bn = lib.nn.BatchNorm1d(3, track_running_stats=False, dtype=lib.float64)
    bn.eval()
    return bn(x), bn.running_mean is None


def batchnorm2d_train_and_eval(lib, x, w, b):
    bn = load(lib, lib.nn.BatchNorm2d(2, dtype=lib.float64), weight=w, bias=b)
    y = bn(x)
    bn.eval()
    return y, bn(x * 0.5), bn


def batchnorm_float32(lib, x):
    bn = lib.nn.BatchNorm1d(4)
    return bn(x), bn


def layernorm_last_dim(lib, x, w, b):
    ln = load(lib, lib.nn.LayerNorm(4, dtype=lib.float64), weight=w, bias=b)
    return ln(x), ln


def layernorm_two_dims(lib, x):
    ln = lib.nn.LayerNorm((3, 4), elementwise_affine=False, dtype=lib.float64)
    return ln(x)


def dropout_in_eval_is_the_identity(lib, x):
    d = lib.nn.Dropout(0.5)
    d.eval()
    return d(x)


def dropout_in_training_statistics(lib):
    out = lib.nn.Dropout(0.3)(lib.ones(*SAMPLE))
    return (out == 0).float().mean().item(), out.max().item()


def functional_dropout_off_when_not_training(lib, x):
    return lib.nn.functional.dropout(x, 0.5, training=False)


def embedding_lookup(lib, w, idx):
    e = load(lib, lib.nn.Embedding(5, 3, dtype=lib.float64), weight=w)
    return e(idx), e


def embedding_padding_idx(lib, w, idx):
    e = load(lib, lib.nn.Embedding(5, 3, padding_idx=0, dtype=lib.float64), weight=w)
    e(idx).sum().backward()
    return e.weight.grad, lib.nn.Embedding(5, 3, padding_idx=1).weight[1]


def embedding_default_init(lib):
    return lib.nn.Embedding(500, 500).weight.std().item()


def modes_switch_every_descendant(lib):
    model = lib.nn.Sequential(lib.nn.Linear(2, 2), lib.nn.Sequential(lib.nn.Dropout(), lib.nn.ReLU()))
    model.eval()
    evaluating = [m.training for m in model.modules()]
    model.train()
    return evaluating, [m.training for m in model.modules()]


def named_parameters_of_a_model(lib):
    model = lib.nn.Sequential(lib.nn.Linear(2, 3), lib.nn.BatchNorm1d(3), lib.nn.Linear(3, 1, bias=False))
    return ([name for name, _ in model.named_parameters()], [p.shape for p in model.parameters()],
            sorted(model.state_dict().keys()), [name for name, _ in model.named_buffers()])


def custom_module(lib, x, w):
    class Scale(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = lib.nn.Parameter(lib.ones(3, dtype=lib.float64))

        def forward(self, x):
            return x * self.weight

    m = load(lib, Scale(), weight=w)
    return m(x), m, [name for name, _ in m.named_parameters()]


def zero_grad_sets_none(lib, x):
    m = lib.nn.Linear(2, 1, dtype=lib.float64)
    m(x).sum().backward()
    had = m.weight.grad is not None
    m.zero_grad()
    return had, m.weight.grad is None


def load_state_dict_copies_values(lib):
    a, b = lib.nn.Linear(3, 2), lib.nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    return lib.equal(a.weight, b.weight), lib.equal(a.bias, b.bias)


def flatten_module(lib, x):
    return lib.nn.Flatten()(x), lib.nn.Flatten(0, 1)(x), lib.nn.Unflatten(1, (3, 4))(lib.nn.Flatten()(x))


IDIOMS += [
    I("nn.Linear(3, 2) forward", linear_forward, f64(4, 3), f64(2, 3, grad=False), f64(2, grad=False)),
    I("nn.Linear(3, 2, bias=False)", linear_without_bias, f64(4, 3), f64(2, 3, grad=False)),
    I("nn.Linear in float32", linear_float32, f32(4, 3), f32(2, 3, grad=False), f32(2, grad=False)),
    I("nn.Linear(5, 2) weight is (out, in)", linear_shapes),
    I("nn.Linear default init is uniform in +-1/sqrt(in)", linear_default_init, rtol=STAT_RTOL, why=STAT_WHY),
    I("nn.Sequential(Linear, ReLU, Linear)", sequential_mlp, f64(5, 3), f64(4, 3, grad=False),
      f64(4, grad=False), f64(2, 4, grad=False), f64(2, grad=False)),
    I("nn.BatchNorm1d in training updates running stats", batchnorm1d_train, f64(6, 3)),
    I("nn.BatchNorm1d(momentum=0.3): three steps, then eval", batchnorm1d_three_steps_then_eval, f64(6, 3),
      f64(3, grad=False), f64(3, grad=False)),
    I("nn.BatchNorm1d(momentum=None) is a cumulative average", batchnorm1d_cumulative_average, f64(6, 3)),
    I("nn.BatchNorm1d on (N, C, L)", batchnorm1d_over_sequences, f64(4, 3, 5)),
    I("nn.BatchNorm1d(affine=False)", batchnorm1d_without_affine, f64(6, 3)),
    I("nn.BatchNorm1d(track_running_stats=False) in eval", batchnorm1d_without_running_stats, f64(6, 3)),
    I("nn.BatchNorm2d in training and eval", batchnorm2d_train_and_eval, f64(3, 2, 4, 4), f64(2, grad=False),
      f64(2, grad=False)),
    I("nn.BatchNorm1d in float32", batchnorm_float32, f32(8, 4), rtol=1e-4, atol=1e-5,
      why="float32 normalisation divides by a float32 std: a few ulps, amplified by 1/std"),
    I("nn.LayerNorm(4)", layernorm_last_dim, f64(2, 3, 4), f64(4, grad=False), f64(4, grad=False)),
    I("nn.LayerNorm((3, 4), elementwise_affine=False)", layernorm_two_dims, f64(2, 3, 4)),
    I("nn.Dropout in eval is the identity", dropout_in_eval_is_the_identity, f64(3, 4)),
    I("nn.Dropout(0.3) in training: zeros and 1/(1-p)", dropout_in_training_statistics, rtol=STAT_RTOL,
      atol=STAT_ATOL, why=STAT_WHY),
    I("F.dropout(x, training=False) is the identity", functional_dropout_off_when_not_training, f64(3, 4)),
    I("nn.Embedding(5, 3) lookup", embedding_lookup, f64(5, 3, grad=False), ints(2, 4, high=5)),
    I("nn.Embedding(padding_idx=0): no gradient, zero row", embedding_padding_idx, f64(5, 3, grad=False),
      ints(2, 4, high=5), grad=False),
    I("nn.Embedding default init is N(0, 1)", embedding_default_init, rtol=STAT_RTOL, why=STAT_WHY),
    I("model.eval() and model.train() reach every descendant", modes_switch_every_descendant),
    I("named_parameters, parameters, state_dict, named_buffers", named_parameters_of_a_model),
    I("a custom nn.Module with an nn.Parameter", custom_module, f64(2, 3), f64(3, grad=False)),
    I("model.zero_grad() sets grads to None", zero_grad_sets_none, f64(4, 2, grad=False), grad=False),
    I("b.load_state_dict(a.state_dict())", load_state_dict_copies_values),
    I("nn.Flatten() and nn.Unflatten(1, (3, 4))", flatten_module, f64(2, 3, 4)),
]


# ---------------------------------------------------------------- activations


def _activation_module(make: Callable[[Any], Any]) -> Callable[..., Any]:
    return lambda lib, x: make(lib.nn)(x)


ACTIVATION_MODULES = {
    "nn.ReLU()": lambda nn: nn.ReLU(),
    "nn.LeakyReLU(0.2)": lambda nn: nn.LeakyReLU(0.2),
    "nn.ELU(alpha=0.5)": lambda nn: nn.ELU(alpha=0.5),
    "nn.SELU()": lambda nn: nn.SELU(),
    "nn.GELU()": lambda nn: nn.GELU(),
    "nn.GELU(approximate='tanh')": lambda nn: nn.GELU(approximate="tanh"),
    "nn.SiLU()": lambda nn: nn.SiLU(),
    "nn.Mish()": lambda nn: nn.Mish(),
    "nn.Softplus(beta=2.0)": lambda nn: nn.Softplus(beta=2.0),
    "nn.Hardtanh(-0.5, 0.5)": lambda nn: nn.Hardtanh(-0.5, 0.5),
    "nn.ReLU6()": lambda nn: nn.ReLU6(),
    "nn.Sigmoid()": lambda nn: nn.Sigmoid(),
    "nn.Tanh()": lambda nn: nn.Tanh(),
    "nn.LogSigmoid()": lambda nn: nn.LogSigmoid(),
    "nn.Softmax(dim=1)": lambda nn: nn.Softmax(dim=1),
    "nn.LogSoftmax(dim=-1)": lambda nn: nn.LogSoftmax(dim=-1),
}

IDIOMS += [I(name, _activation_module(make), f64(3, 4, low=-7, high=7))
           for name, make in ACTIVATION_MODULES.items()]

IDIOMS += [
    I("F.relu(x)", lambda lib, x: lib.nn.functional.relu(x), f64(3, 4)),
    I("F.leaky_relu(x, negative_slope=0.1)",
      lambda lib, x: lib.nn.functional.leaky_relu(x, negative_slope=0.1),
      f64(3, 4)),
    I("F.elu(x) and F.celu(x, alpha=2.0)", lambda lib, x: (lib.nn.functional.elu(x),
                                                           lib.nn.functional.celu(x, alpha=2.0)), f64(3, 4)),
    I("F.gelu(x) and F.gelu(x, approximate='tanh')",
      lambda lib, x: (lib.nn.functional.gelu(x), lib.nn.functional.gelu(x, approximate="tanh")), f64(3, 4)),
    I("F.silu(x) and F.mish(x)", lambda lib, x: (lib.nn.functional.silu(x), lib.nn.functional.mish(x)),
      f64(3, 4)),
    I("F.softplus(x, beta=0.5, threshold=1.0)",
      lambda lib, x: lib.nn.functional.softplus(x, beta=0.5, threshold=1.0), f64(3, 4, low=-5, high=5)),
    I("F.hardtanh(x) and F.relu6(x)", lambda lib, x: (lib.nn.functional.hardtanh(x),
                                                      lib.nn.functional.relu6(x)), f64(3, 4, low=-8, high=8)),
    I("F.logsigmoid(x) of large logits", lambda lib, x: lib.nn.functional.logsigmoid(x),
      f64(3, 4, low=-60, high=60)),
    I("F.softmax(x, dim=1) and F.log_softmax(x, dim=1)",
      lambda lib, x: (lib.nn.functional.softmax(x, dim=1), lib.nn.functional.log_softmax(x, dim=1)),
      f64(3, 4)),
    I("F.normalize(x, dim=1)", lambda lib, x: lib.nn.functional.normalize(x, dim=1), f64(3, 4)),
    I("F.normalize(x, p=1, dim=0)", lambda lib, x: lib.nn.functional.normalize(x, p=1, dim=0), f64(3, 4)),
    I("F.one_hot(labels, num_classes=5)",
      lambda lib, y: lib.nn.functional.one_hot(y, num_classes=5), ints(4)),
    I("F.one_hot(labels) infers the classes", lambda lib, y: lib.nn.functional.one_hot(y), ints(2, 3)),
    I("F.pad(x, (1, 2))", lambda lib, x: lib.nn.functional.pad(x, (1, 2)), f64(2, 3)),
    I("F.pad(x, (1, 1, 2, 0), value=-1.0)", lambda lib, x: lib.nn.functional.pad(x, (1, 1, 2, 0), value=-1.0),
      f64(2, 3)),
    I("F.pad(x, (-1, 1)) crops", lambda lib, x: lib.nn.functional.pad(x, (-1, 1)), f64(2, 3)),
    I("F.pad(x, (2, 1), mode='reflect')", lambda lib, x: lib.nn.functional.pad(x, (2, 1), mode="reflect"),
      f64(1, 2, 4)),
    I("F.pad(x, (1, 2, 1, 0), mode='replicate')",
      lambda lib, x: lib.nn.functional.pad(x, (1, 2, 1, 0), mode="replicate"), f64(1, 2, 3, 3)),
    I("F.pad(x, (1, 2), mode='circular')", lambda lib, x: lib.nn.functional.pad(x, (1, 2), mode="circular"),
      f64(1, 2, 4)),
    I("F.linear(x, w, b)",
      lambda lib, x, w, b: lib.nn.functional.linear(x, w, b), f64(4, 3), f64(2, 3), f64(2)),
    I("F.embedding(idx, w)",
      lambda lib, i, w: lib.nn.functional.embedding(i, w), ints(2, 3, high=5), f64(5, 2)),
]


# ---------------------------------------------------------------- losses


def _F(lib):
    return lib.nn.functional


IDIOMS += [
    I("F.cross_entropy(logits, labels)",
      lambda lib, x, y: _F(lib).cross_entropy(x, y), f64(4, 3), ints(4, high=3)),
    I("F.cross_entropy(..., reduction='sum')", lambda lib, x, y: _F(lib).cross_entropy(x, y, reduction="sum"),
      f64(4, 3), ints(4, high=3)),
    I("F.cross_entropy(..., reduction='none')",
      lambda lib, x, y: _F(lib).cross_entropy(x, y, reduction="none"),
      f64(4, 3), ints(4, high=3)),
    I("F.cross_entropy(..., weight=w)", lambda lib, x, y, w: _F(lib).cross_entropy(x, y, weight=w),
      f64(5, 3), ints(5, high=3), prob(3, grad=False)),
    I("F.cross_entropy(..., ignore_index=-100) skips those labels",
      lambda lib, x, y: _F(lib).cross_entropy(x, y * (y < 2) - 100 * (y >= 2)), f64(6, 3), ints(6, high=3)),
    I("F.cross_entropy(..., ignore_index=1, weight=w, reduction='none')",
      lambda lib, x, y, w: _F(lib).cross_entropy(x, y, weight=w, ignore_index=1, reduction="none"),
      f64(6, 3), ints(6, high=3), prob(3, grad=False)),
    I("F.cross_entropy(..., label_smoothing=0.1)",
      lambda lib, x, y: _F(lib).cross_entropy(x, y, label_smoothing=0.1), f64(4, 3), ints(4, high=3)),
    I("F.cross_entropy(..., label_smoothing=0.2, weight=w, ignore_index=0)",
      lambda lib, x, y, w: _F(lib).cross_entropy(x, y, weight=w, ignore_index=0, label_smoothing=0.2),
      f64(6, 3), ints(6, high=3), prob(3, grad=False)),
    I("F.cross_entropy with probability targets",
      lambda lib, x, t: _F(lib).cross_entropy(x, t.softmax(dim=1)), f64(4, 3), f64(4, 3, grad=False)),
    I("F.cross_entropy with probability targets and label_smoothing=0.3",
      lambda lib, x, t: _F(lib).cross_entropy(x, t.softmax(dim=1), label_smoothing=0.3, reduction="sum"),
      f64(4, 3), f64(4, 3, grad=False)),
    I("F.cross_entropy on (N, C, d) logits", lambda lib, x, y: _F(lib).cross_entropy(x, y), f64(2, 3, 4),
      ints(2, 4, high=3)),
    I("F.cross_entropy of a single (C,) example",
      lambda lib, x: _F(lib).cross_entropy(x, lib.tensor(1)), f64(3)),
    I("F.nll_loss(F.log_softmax(x, dim=1), labels)",
      lambda lib, x, y: _F(lib).nll_loss(_F(lib).log_softmax(x, dim=1), y), f64(4, 3), ints(4, high=3)),
    I("F.nll_loss(..., weight=w, reduction='sum')",
      lambda lib, x, y, w: _F(lib).nll_loss(x, y, weight=w, reduction="sum"), f64(5, 3), ints(5, high=3),
      prob(3, grad=False)),
    I("F.nll_loss(..., ignore_index=2) on (N, C, d)",
      lambda lib, x, y: _F(lib).nll_loss(x, y, ignore_index=2), f64(2, 3, 4), ints(2, 4, high=3)),
    I("F.mse_loss(x, y)", lambda lib, x, y: _F(lib).mse_loss(x, y), f64(3, 4), f64(3, 4)),
    I("F.mse_loss(..., reduction='sum') and 'none'",
      lambda lib, x, y: (_F(lib).mse_loss(x, y, reduction="sum"), _F(lib).mse_loss(x, y, reduction="none")),
      f64(3, 4), f64(3, 4)),
    I("F.l1_loss(x, y) and reduction='none'",
      lambda lib, x, y: (_F(lib).l1_loss(x, y), _F(lib).l1_loss(x, y, reduction="none")),
      f64(3, 4), f64(3, 4)),
    I("F.binary_cross_entropy(p, t)", lambda lib, p, t: _F(lib).binary_cross_entropy(p, t), prob(3, 4),
      prob(3, 4, grad=False)),
    I("F.binary_cross_entropy(p, t, weight=w, reduction='sum')",
      lambda lib, p, t, w: _F(lib).binary_cross_entropy(p, t, weight=w, reduction="sum"), prob(3, 4),
      prob(3, 4, grad=False), prob(4, grad=False)),
    I("F.binary_cross_entropy_with_logits(x, t)",
      lambda lib, x, t: _F(lib).binary_cross_entropy_with_logits(x, t), f64(3, 4, low=-30, high=30),
      prob(3, 4, grad=False)),
    I("F.binary_cross_entropy_with_logits(..., pos_weight=p, weight=w)",
      lambda lib, x, t, p, w: _F(lib).binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=p),
      f64(3, 4), prob(3, 4, grad=False), f64(4, grad=False, low=0.5, high=3), prob(3, 1, grad=False)),
    I("nn.CrossEntropyLoss(label_smoothing=0.1)(x, y)",
      lambda lib, x, y: lib.nn.CrossEntropyLoss(label_smoothing=0.1)(x, y), f64(4, 3), ints(4, high=3)),
    I("nn.CrossEntropyLoss(weight=w, reduction='sum')(x, y)",
      lambda lib, x, y, w: lib.nn.CrossEntropyLoss(weight=w, reduction="sum")(x, y),
      f64(4, 3), ints(4, high=3), prob(3, grad=False)),
    I("nn.NLLLoss(ignore_index=0)(x, y)", lambda lib, x, y: lib.nn.NLLLoss(ignore_index=0)(x, y), f64(5, 3),
      ints(5, high=3)),
    I("nn.MSELoss()(x, y) and nn.L1Loss(reduction='sum')(x, y)",
      lambda lib, x, y: (lib.nn.MSELoss()(x, y), lib.nn.L1Loss(reduction="sum")(x, y)), f64(3, 4), f64(3, 4)),
    I("nn.BCELoss()(p, t)", lambda lib, p, t: lib.nn.BCELoss()(p, t), prob(3, 4), prob(3, 4, grad=False)),
    I("nn.BCEWithLogitsLoss(pos_weight=p)(x, t)",
      lambda lib, x, t, p: lib.nn.BCEWithLogitsLoss(pos_weight=p)(x, t), f64(3, 4), prob(3, 4, grad=False),
      f64(4, grad=False, low=0.5, high=3)),
]


# ---------------------------------------------------------------- nn.init


def _init_stats(make: Callable[[Any, Any], Any], shape: tuple[int, ...] = SAMPLE,
                bounded: bool = True) -> Callable[[Any], Any]:
    """(returns w itself, std[, max |w|]) of an initialiser applied in place to a new tensor.

    The maximum of a bounded distribution sits within ~1e-5 of the bound for 250,000
    draws; that of a normal sample is an extreme value that varies by several percent.
    """

    def idiom(lib):
        w = lib.empty(*shape)
        out = make(lib.nn.init, w)
        return (out is w, w.std().item()) + ((w.abs().max().item(),) if bounded else ())

    return idiom


INIT_IDIOMS = {
    "nn.init.uniform_(w, -0.5, 0.5)": lambda init, w: init.uniform_(w, -0.5, 0.5),
    "nn.init.normal_(w, std=0.02)": lambda init, w: init.normal_(w, std=0.02),
    "nn.init.xavier_uniform_(w)": lambda init, w: init.xavier_uniform_(w),
    "nn.init.xavier_normal_(w, gain=2.0)": lambda init, w: init.xavier_normal_(w, gain=2.0),
    "nn.init.kaiming_uniform_(w, a=math.sqrt(5))": lambda init, w: init.kaiming_uniform_(w, a=math.sqrt(5)),
    "nn.init.kaiming_normal_(w, mode='fan_out', nonlinearity='relu')":
        lambda init, w: init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu"),
    "nn.init.trunc_normal_(w, std=0.5, a=-1.0, b=1.0)": lambda init, w: init.trunc_normal_(w, std=0.5, a=-1.0,
                                                                                          b=1.0),
}

IDIOMS += [I(name, _init_stats(make, bounded="normal" not in name), rtol=STAT_RTOL, atol=STAT_ATOL,
             why=STAT_WHY, needs="nn.init") for name, make in INIT_IDIOMS.items()]

IDIOMS += [
    I("nn.init.kaiming_uniform_ on a conv-shaped weight (fan_in = 3*3*3)",
      _init_stats(lambda init, w: init.kaiming_uniform_(w), (256, 3, 3, 3)), rtol=0.02, atol=STAT_ATOL,
      why="6,912 values: the std is known to ~0.85%; 0.02 is ~2 sigma of the difference", needs="nn.init"),
    I("nn.init.constant_(w, 0.3), zeros_ and ones_",
      lambda lib: (lib.nn.init.constant_(lib.empty(2, 3), 0.3), lib.nn.init.zeros_(lib.empty(2)),
                   lib.nn.init.ones_(lib.empty(2))), needs="nn.init"),
    I("nn.init.calculate_gain('relu'), ('leaky_relu', 0.2), ('tanh')",
      lambda lib: (lib.nn.init.calculate_gain("relu"), lib.nn.init.calculate_gain("leaky_relu", 0.2),
                   lib.nn.init.calculate_gain("tanh")), needs="nn.init"),
    I("nn.init on a Parameter runs without recording a graph",
      lambda lib: (lambda p: (lib.nn.init.normal_(p).requires_grad, p.is_leaf))(
          lib.nn.Parameter(lib.empty(3))),
      needs="nn.init"),
]


# ---------------------------------------------------------------- optimizers (5 steps) and schedulers (10)


def fit_five_steps(make_optimizer: Callable[..., Any], **options: Any) -> Idiom:
    """A linear regression trained for 5 steps; the idiom returns the model (compared by state_dict)."""

    def idiom(lib, x, y, w, b):
        model = load(lib, lib.nn.Linear(3, 2, dtype=lib.float64), weight=w, bias=b)
        opt = make_optimizer(lib, model)
        for _ in range(5):
            opt.zero_grad()
            loss = lib.nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()
        return model, loss

    return idiom, (f64(8, 3, grad=False), f64(8, 2, grad=False), f64(2, 3, grad=False), f64(2, grad=False))


def _optimizer_idiom(name: str, make: Callable[..., Any], needs: str | None = None) -> Idiom:
    fn, inputs = fit_five_steps(make)
    return Idiom(name, fn, inputs, grad=False, needs=needs)


IDIOMS += [
    _optimizer_idiom("optim.SGD(model.parameters(), lr=0.1)",
                     lambda lib, m: lib.optim.SGD(m.parameters(), lr=0.1)),
    _optimizer_idiom("optim.SGD(momentum=0.9, nesterov=True, weight_decay=1e-2)",
                     lambda lib, m: lib.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, nesterov=True,
                                                  weight_decay=1e-2)),
    _optimizer_idiom("optim.SGD(momentum=0.9, dampening=0.5)",
                     lambda lib, m: lib.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, dampening=0.5),
                     needs="optim.SGD(dampening=)"),
    _optimizer_idiom("optim.Adam(model.parameters(), lr=0.01)",
                     lambda lib, m: lib.optim.Adam(m.parameters(), lr=0.01)),
    _optimizer_idiom("optim.Adam(betas=(0.8, 0.9), weight_decay=0.1)",
                     lambda lib, m: lib.optim.Adam(m.parameters(), lr=0.01, betas=(0.8, 0.9),
                                                   weight_decay=0.1)),
    _optimizer_idiom("optim.Adam(amsgrad=True)", lambda lib, m: lib.optim.Adam(m.parameters(), lr=0.05,
                                                                               amsgrad=True),
                     needs="optim.Adam(amsgrad=)"),
    _optimizer_idiom("optim.AdamW(lr=0.01, weight_decay=0.1)",
                     lambda lib, m: lib.optim.AdamW(m.parameters(), lr=0.01, weight_decay=0.1),
                     needs="optim.AdamW"),
    _optimizer_idiom("optim.RMSprop(lr=0.01)", lambda lib, m: lib.optim.RMSprop(m.parameters(), lr=0.01),
                     needs="optim.RMSprop"),
    _optimizer_idiom("optim.RMSprop(momentum=0.5, centered=True)",
                     lambda lib, m: lib.optim.RMSprop(m.parameters(), lr=0.01, momentum=0.5, centered=True),
                     needs="optim.RMSprop"),
    _optimizer_idiom("optim.Adagrad(lr=0.1)", lambda lib, m: lib.optim.Adagrad(m.parameters(), lr=0.1),
                     needs="optim.Adagrad"),
    _optimizer_idiom("optim.SGD with parameter groups",
                     lambda lib, m: lib.optim.SGD([{"params": [m.weight], "lr": 0.2}, {"params": [m.bias]}],
                                                  lr=0.05, momentum=0.5),
                     needs="optim.Optimizer.add_param_group"),
]


def lrs_over_ten_steps(make_scheduler: Callable[..., Any], metric: bool = False) -> Callable[..., Any]:
    """The learning rate after each of 10 scheduler steps (optimizer.step() first, as PyTorch asks)."""

    def idiom(lib):
        w = lib.zeros(2, requires_grad=True)
        opt = lib.optim.SGD([w], lr=0.1, momentum=0.9)
        sched = make_scheduler(lib.optim.lr_scheduler, opt)
        lrs = []
        for step in range(10):
            opt.step()
            if metric:
                sched.step(1.0 if step < 2 else 2.0)  # no improvement after step 2
            else:
                sched.step()
            lrs.append(opt.param_groups[0]["lr"])
        return lrs

    return idiom


SCHEDULERS = {
    "lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)": lambda s, o: s.StepLR(o, step_size=3, gamma=0.5),
    "lr_scheduler.MultiStepLR(opt, milestones=[2, 5], gamma=0.1)":
        lambda s, o: s.MultiStepLR(o, milestones=[2, 5], gamma=0.1),
    "lr_scheduler.ExponentialLR(opt, gamma=0.9)": lambda s, o: s.ExponentialLR(o, gamma=0.9),
    "lr_scheduler.CosineAnnealingLR(opt, T_max=10, eta_min=0.01)":
        lambda s, o: s.CosineAnnealingLR(o, T_max=10, eta_min=0.01),
    "lr_scheduler.LambdaLR(opt, lambda epoch: 0.95 ** epoch)":
        lambda s, o: s.LambdaLR(o, lambda e: 0.95 ** e),
    "lr_scheduler.LinearLR(opt, start_factor=0.25, total_iters=4)":
        lambda s, o: s.LinearLR(o, start_factor=0.25, total_iters=4),
    "lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=10)":
        lambda s, o: s.OneCycleLR(o, max_lr=1.0, total_steps=10),
    "lr_scheduler.SequentialLR(opt, [LinearLR, ExponentialLR], milestones=[3])":
        lambda s, o: s.SequentialLR(o, [s.LinearLR(o, start_factor=0.5, total_iters=3),
                                        s.ExponentialLR(o, gamma=0.8)], milestones=[3]),
}

IDIOMS += [I(name, lrs_over_ten_steps(make), needs="optim.lr_scheduler") for name, make in SCHEDULERS.items()]
IDIOMS += [
    I("lr_scheduler.ReduceLROnPlateau(opt, patience=2, factor=0.5).step(loss)",
      lrs_over_ten_steps(lambda s, o: s.ReduceLROnPlateau(o, patience=2, factor=0.5), metric=True),
      needs="optim.lr_scheduler"),
]


# ---------------------------------------------------------------- more tensor methods


def causal_self_attention(lib, q, k, v):
    d = q.size(-1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)
    causal = lib.ones(scores.size(-2), scores.size(-1)).triu(1).bool()
    return scores.masked_fill(causal, float("-inf")).softmax(dim=-1) @ v


def no_grad_as_a_decorator(lib, x):
    @lib.no_grad()
    def double(t):
        return t * 2

    return double(x)


def deepcopy_of_a_model(lib, x):
    import copy

    model = lib.nn.Sequential(lib.nn.Linear(2, 3, dtype=lib.float64), lib.nn.Tanh())
    twin = copy.deepcopy(model)
    with lib.no_grad():
        model[0].weight.mul_(0.0)
    return lib.equal(twin(x), model(x)), twin[0].weight is model[0].weight


def training_loop_with_sgd(lib, x, y, w, b):
    model = load(lib, lib.nn.Linear(3, 1, dtype=lib.float64), weight=w, bias=b)
    losses = []
    for _ in range(5):
        loss = lib.nn.functional.mse_loss(model(x), y)
        model.zero_grad()
        loss.backward()
        with lib.no_grad():
            for p in model.parameters():
                p -= 0.1 * p.grad
        losses.append(loss.item())
    return losses, model


def classifier_accuracy(lib, x, y):
    logits = x * 3
    return (logits.argmax(dim=1) == y).float().mean().item(), lib.nn.functional.cross_entropy(logits, y)


IDIOMS += [
    I("x.new_zeros(2, 3) and x.new_ones((2,))", lambda lib, x: (x.new_zeros(2, 3), x.new_ones((2,))), f32(2)),
    I("x.new_full((2, 2), 3.0) and x.new_tensor([1, 2])",
      lambda lib, x: (x.new_full((2, 2), 3.0), x.new_tensor([1, 2])), f64(2)),
    I("x.is_floating_point() and labels.is_floating_point()",
      lambda lib, x, y: (x.is_floating_point(), y.is_floating_point()), f64(2), ints(2)),
    I("x.type_as(y)", lambda lib, x, y: x.type_as(y), ints(3), f32(2)),
    I("x.cpu() is x", lambda lib, x: x.cpu() is x, f64(2)),
    I("x.reshape_as(y)", lambda lib, x, y: x.reshape_as(y), f64(2, 3), f64(3, 2)),
    I("x.clamp_min(0) and x.clamp_max(0.5)", lambda lib, x: (x.clamp_min(0), x.clamp_max(0.5)), f64(2, 3)),
    I("x.floor(), x.ceil(), x.round(), x.trunc()",
      lambda lib, x: (x.floor(), x.ceil(), x.round(), x.trunc()), f64(2, 3, low=-5, high=5)),
    I("x.round(decimals=1)", lambda lib, x: x.round(decimals=1), f64(2, 3)),
    I("x.where(x > 0, 0.0)", lambda lib, x: x.where(x > 0, 0.0), f64(2, 3)),
    I("x.tril() and x.triu(diagonal=1)", lambda lib, x: (x.tril(), x.triu(diagonal=1)), f64(2, 3, 4)),
    I("causal self-attention with masked_fill(ones(n, n).triu(1).bool(), -inf)", causal_self_attention,
      f64(2, 4, 3), f64(2, 4, 3), f64(2, 4, 3)),
    I("@no_grad() as a decorator", no_grad_as_a_decorator, f64(3)),
    I("copy.deepcopy(model) is independent", deepcopy_of_a_model, f64(4, 2, grad=False)),
    I("a hand-written SGD loop: p -= lr * p.grad under no_grad", training_loop_with_sgd,
      f64(8, 3, grad=False), f64(8, 1, grad=False), f64(1, 3, grad=False), f64(1, grad=False), grad=False),
    I("accuracy = (logits.argmax(dim=1) == y).float().mean()",
      classifier_accuracy, f64(6, 3), ints(6, high=3)),
]


def augmented_assignment_in_the_graph(lib, x):
    y = x * 2
    y += 1
    y *= 3
    y /= 2
    y -= x
    return y


def augmented_assignment_on_ints(lib, x):
    x += 1
    x *= 2
    return x


def old_style_update_through_data(lib, x):
    (x * x).sum().backward()
    x.data -= 0.1 * x.grad.data
    return x.detach().clone()


def parameter_is_a_tensor(lib):
    p = lib.nn.Parameter(lib.zeros(3))
    return isinstance(p, lib.Tensor), isinstance(p, lib.nn.Parameter), p.requires_grad, p.grad is None


def requires_grad_setter_on_a_leaf(lib):
    x = lib.zeros(2, dtype=lib.float64)
    x.requires_grad = True
    (x + 1).prod().backward()
    return x.grad


def model_under_no_grad(lib, x):
    model = lib.nn.Linear(2, 3, dtype=lib.float64)
    with lib.no_grad():
        out = model(x)
    return out.requires_grad, out.grad_fn is None


def grad_with_positional_grad_outputs(lib, x):
    y = x.exp()
    return lib.autograd.grad(y, x, lib.ones_like(y))


def detach_then_requires_grad(lib, x):
    z = x.detach().requires_grad_()
    (z * 3).sum().backward()
    return z.grad, x.grad is None, z.is_leaf


def running_stats_are_tensors(lib, x):
    bn = lib.nn.BatchNorm1d(3, dtype=lib.float64)
    bn(x)
    return bn.running_mean, bn.running_var, bn.num_batches_tracked


def fresh_batchnorm_in_eval(lib, x):
    bn = lib.nn.BatchNorm1d(3, dtype=lib.float64)
    bn.eval()
    return bn(x), bn.training


def mixed_dtype_linear_raises(lib, x):
    lib.nn.Linear(3, 2)(x)


def uniform_and_normal_in_place(lib):
    w = lib.empty(*SAMPLE)
    with lib.no_grad():
        a = _stats(w.uniform_(-0.5, 0.5))
        b = _stats(w.normal_(1.0, 0.5))[:2]
    return a, b


IDIOMS += [
    I("y += 1; y *= 3; y /= 2; y -= x in the graph", augmented_assignment_in_the_graph, f64(3)),
    I("labels += 1; labels *= 2 on an int64 tensor", augmented_assignment_on_ints, ints(4)),
    I("x.data -= lr * x.grad.data", old_style_update_through_data, f64(3), grad=False),
    I("nn.Parameter is a Tensor that requires grad", parameter_is_a_tensor),
    I("x.requires_grad = True on a new leaf", requires_grad_setter_on_a_leaf, grad=False),
    I("with no_grad(): model(x) records nothing", model_under_no_grad, f64(4, 2, grad=False)),
    I("lib.autograd.grad(y, x, ones_like(y))", grad_with_positional_grad_outputs, f64(3)),
    I("z = x.detach().requires_grad_()", detach_then_requires_grad, f64(3), grad=False),
    I("bn.running_mean, running_var, num_batches_tracked", running_stats_are_tensors, f64(5, 3)),
    I("a fresh nn.BatchNorm1d in eval uses mean 0, variance 1", fresh_batchnorm_in_eval, f64(5, 3)),
    I("a float64 batch into a float32 nn.Linear raises", mixed_dtype_linear_raises, f64(4, 3),
      raises=(RuntimeError, TypeError)),
    I("w.uniform_(-0.5, 0.5) and w.normal_(1.0, 0.5) under no_grad", uniform_and_normal_in_place,
      atol=STAT_ATOL, rtol=STAT_RTOL, why=STAT_WHY),
    I("lib.Tensor([1, 2]) is float32", lambda lib: lib.Tensor([1, 2])),
    I("lib.cat of float32 and float64 promotes", lambda lib, x, y: lib.cat([x, y]), f32(2), f64(3)),
    I("lib.stack of int64 labels", lambda lib, x, y: lib.stack([x, y], dim=1), ints(3), ints(3)),
    I("x.sum(dim=[0, 1]) with a list", lambda lib, x: x.sum(dim=[0, 1]), f64(2, 3, 4)),
    I("x.mean((0, 2)) with a positional tuple", lambda lib, x: x.mean((0, 2)), f64(2, 3, 4)),
    I("x.unsqueeze(1).expand(-1, 3, -1)", lambda lib, x: x.unsqueeze(1).expand(-1, 3, -1), f64(2, 4)),
    I("x.expand(2, 3, -1) adds leading dims", lambda lib, x: x.expand(2, 3, -1), f64(4)),
    I("x.permute(0, 2, 1).contiguous().view(2, -1)",
      lambda lib, x: x.permute(0, 2, 1).contiguous().view(2, -1),
      f64(2, 3, 4)),
    I("x[:, [0, 2]] and x[..., None]", lambda lib, x: (x[:, [0, 2]], x[..., None]), f64(2, 3)),
    I("x.masked_fill_(m, 0.0) on an intermediate", lambda lib, x, m: (x * 1).masked_fill_(m, 0.0), f64(3, 4),
      mask(3, 4)),
    I("F.softmax(x, -1) with a positional dim", lambda lib, x: lib.nn.functional.softmax(x, -1), f64(2, 3)),
    I("x.std(unbiased=False)", lambda lib, x: x.std(unbiased=False), f64(3, 4)),
    I("(x - x.mean(0)) / x.std(0) standardises columns",
      lambda lib, x: (x - x.mean(0)) / x.std(0), f64(5, 3)),
    I("x.max(dim=1)[0] indexes the pair", lambda lib, x: x.max(dim=1)[0], f64(3, 4)),
    I("x.shape[0], len(x.shape), x.size() == (2, 3)",
      lambda lib, x: (x.shape[0], len(x.shape), x.size() == (2, 3)), f64(2, 3)),
    I("x.item() of an int64 tensor is an int", lambda lib, x: x.sum().item(), ints(3)),
    I("x.repeat_interleave(2) flattens", lambda lib, x: x.repeat_interleave(2), f64(2, 3)),
    I("x.repeat_interleave(counts, dim=0)", lambda lib, x: x.repeat_interleave(lib.tensor([2, 0, 1]), dim=0),
      f64(3, 2)),
]


# ---------------------------------------------------------------- gradients exactly at kinks
# Where a function has no derivative, PyTorch picks one (relu'(0) = 0, clamp passes its
# bounds, hardtanh does not, ties share or pick); zero-initialised layers land there.

KINK_POINTS = np.array([0.0, -1.0, 1.0, 6.0, 2.0])


def _grad_at(fn: Callable[..., Any], points: np.ndarray = KINK_POINTS) -> Callable[..., Any]:
    def idiom(lib):
        x = lib.tensor(points, requires_grad=True)
        fn(lib, x).sum().backward()
        return x.grad

    return idiom


KINKS = {
    "relu": lambda lib, x: lib.nn.functional.relu(x),
    "abs": lambda lib, x: x.abs(),
    "sign": lambda lib, x: x.sign() * 3,
    "leaky_relu": lambda lib, x: lib.nn.functional.leaky_relu(x, 0.2),
    "elu": lambda lib, x: lib.nn.functional.elu(x),
    "relu6": lambda lib, x: lib.nn.functional.relu6(x),
    "hardtanh": lambda lib, x: lib.nn.functional.hardtanh(x),
    "clamp(-1, 1)": lambda lib, x: x.clamp(-1, 1),
    "clamp(min=0)": lambda lib, x: x.clamp(min=0),
    "softplus": lambda lib, x: lib.nn.functional.softplus(x),
    "logsigmoid": lambda lib, x: lib.nn.functional.logsigmoid(x),
    "binary_cross_entropy_with_logits": lambda lib, x: lib.nn.functional.binary_cross_entropy_with_logits(
        x, lib.ones_like(x) * 0.25, reduction="none"),
    "maximum(x, 0) (a tie shares)": lambda lib, x: lib.maximum(x, lib.zeros_like(x)),
    "amax with ties": lambda lib, x: (x * 0 + 1).amax() + x.abs().amax(),
    "max(dim) with ties": lambda lib, x: (x * 0 + 1).max(0).values,
    "norm of zeros": lambda lib, x: (x * 0).norm() + (x * 0).norm(p=3),
    "F.normalize of a zero row": lambda lib, x: lib.nn.functional.normalize(x.reshape(1, -1) * 0, dim=1),
}

IDIOMS += [I(f"gradient at the kink of {name}", _grad_at(fn), grad=False) for name, fn in KINKS.items()]


# ---------------------------------------------------------------- idioms of the nn/optim rewrite


def double_converts_parameters(lib, x):
    model = lib.nn.Sequential(lib.nn.Linear(2, 3), lib.nn.BatchNorm1d(3)).double()
    return model(x).dtype, [p.dtype for p in model.parameters()]


def module_list_and_dict(lib):
    layers = lib.nn.ModuleList([lib.nn.Linear(2, 2) for _ in range(3)])
    heads = lib.nn.ModuleDict({"a": lib.nn.Linear(2, 1), "b": lib.nn.Identity()})
    holder = lib.nn.Sequential(layers[0])
    return len(layers), sorted(heads.keys()), len(list(layers.parameters())), len(list(holder.parameters()))


def freeze_with_requires_grad_(lib):
    model = lib.nn.Linear(3, 2).requires_grad_(False)
    return [p.requires_grad for p in model.parameters()]


def apply_an_init_function(lib):
    def init(m):
        if isinstance(m, lib.nn.Linear):
            lib.nn.init.constant_(m.weight, 0.5)
            lib.nn.init.zeros_(m.bias)

    model = lib.nn.Sequential(lib.nn.Linear(2, 3), lib.nn.ReLU(), lib.nn.Linear(3, 1))
    model.apply(init)
    return model


def forward_hook_sees_input_and_output(lib, x):
    seen = []
    model = lib.nn.Sequential(lib.nn.Linear(2, 3, dtype=lib.float64), lib.nn.ReLU())
    handle = model[0].register_forward_hook(lambda m, inputs, output: seen.append(output.shape))
    model(x)
    handle.remove()
    model(x)
    return seen


def optimizer_state_dict_round_trip(lib, x, y, w, b):
    model = load(lib, lib.nn.Linear(3, 2, dtype=lib.float64), weight=w, bias=b)
    opt = lib.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        lib.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    twin = lib.optim.Adam(model.parameters(), lr=0.5)
    twin.load_state_dict(opt.state_dict())
    return twin.param_groups[0]["lr"], sorted(twin.state_dict()["state"].keys())


def scheduler_get_last_lr(lib):
    opt = lib.optim.SGD([lib.zeros(1, requires_grad=True)], lr=1.0)
    sched = lib.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    opt.step()
    sched.step()
    return sched.get_last_lr(), sched.last_epoch


IDIOMS += [
    I("model.double() converts every parameter", double_converts_parameters, f64(4, 2, grad=False),
      needs="nn.Module.double"),
    I("nn.ModuleList and nn.ModuleDict register their modules", module_list_and_dict, needs="nn.ModuleList"),
    I("model.requires_grad_(False) freezes every parameter", freeze_with_requires_grad_,
      needs="nn.Module.requires_grad_"),
    I("model.apply(init_fn) with nn.init.constant_ and zeros_", apply_an_init_function, needs="nn.init"),
    I("register_forward_hook(lambda m, inputs, output: ...) and handle.remove()",
      forward_hook_sees_input_and_output, f64(4, 2, grad=False), needs="nn.Module.register_forward_hook"),
    I("optimizer.load_state_dict(other.state_dict())", optimizer_state_dict_round_trip,
      *fit_five_steps(None)[1], grad=False, needs="optim.Optimizer.add_param_group"),
    I("scheduler.get_last_lr() and last_epoch", scheduler_get_last_lr, needs="optim.lr_scheduler"),
]


# ---------------------------------------------------------------- known differences (strict xfail)

# Each gap names the module that owns the fix; the idiom runs, and the suite fails as
# soon as the gap closes (strict xfail), so the marker is removed with the fix.


def set_grad_enabled_as_a_function(lib, x):
    lib.set_grad_enabled(False)
    try:
        y = x * 2
    finally:
        lib.set_grad_enabled(True)
    return y.requires_grad


IDIOMS += [
    I("lib.log_softmax(x, dim=1)", lambda lib, x: lib.log_softmax(x, dim=1), f64(2, 3)),
    I("lib.from_numpy(a) and lib.as_tensor(a)",
      lambda lib: (lib.from_numpy(np.arange(3.0)), lib.as_tensor([1, 2]))),
    I("lib.tril(x) and lib.triu(x)", lambda lib, x: (lib.tril(x), lib.triu(x)), f64(3, 3)),
    I("dtype aliases lib.long, lib.float, lib.double, lib.bool",
      lambda lib, x: (x.to(lib.long), x.to(lib.float), x.to(lib.double), x.to(lib.bool)), ints(3)),
    I("lib.numel(x) and lib.is_tensor(x)", lambda lib, x: (lib.numel(x), lib.is_tensor(x)), f64(2, 3)),
    I("lib.set_grad_enabled(False) called as a function", set_grad_enabled_as_a_function, f64(3)),
    I("lib.Tensor(int64 ndarray) makes float32", lambda lib: lib.Tensor(np.array([1, 2])),
      gap="Tensor(ndarray) keeps the array's dtype (tensor.py); PyTorch's legacy constructor always makes "
          "the default float dtype"),
    I("m.state_dict() values are Tensors",
      lambda lib: type(lib.nn.Linear(2, 1).state_dict()["weight"]).__name__),
    I("float32 tensor * 0-d float64 tensor stays float32", lambda lib, x, s: x * s, f32(3), f64(grad=False)),
]


# ---------------------------------------------------------------- the harness


class Mismatch(AssertionError):
    """The two libraries disagree about an idiom."""


def _is_tensor(lib: Any, value: Any) -> bool:
    return isinstance(value, lib.Tensor)


def _dtype_name(value: Any) -> str | None:
    """'float32' for torch.float32, np.float32 and np.dtype('float32'); None for non-dtypes."""
    if type(value).__name__ == "dtype" and type(value).__module__ == "torch":
        return str(value).removeprefix("torch.")
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, type) and issubclass(value, np.generic):
        return np.dtype(value).name
    return None


def _flatten(lib: Any, value: Any, path: str = "out") -> list[tuple[str, Any]]:
    """(path, leaf) pairs in a fixed order; a module becomes its state, then its parameters."""
    if isinstance(value, lib.nn.Module):
        # Values through numpy: whether state_dict() holds Tensors is an idiom of its own.
        state = value.state_dict()
        leaves = [(f"{path}.state_dict()[{k!r}]", ("array", np.asarray(_as_array(lib, state[k]))))
                  for k in sorted(state)]
        return leaves + [(f"{path}.{name}", ("parameter", p)) for name, p in sorted(value.named_parameters())]
    if isinstance(value, dict):
        return [pair for k in sorted(value) for pair in _flatten(lib, value[k], f"{path}[{k!r}]")]
    if isinstance(value, tuple | list) and not _is_tensor(lib, value):
        kind = "list" if isinstance(value, list) else "tuple"
        head = [(f"{path} ({kind} of {len(value)})", ("container", kind, len(value)))]
        return head + [pair for i, v in enumerate(value) for pair in _flatten(lib, v, f"{path}[{i}]")]
    return [(path, value)]


def _as_array(lib: Any, t: Any) -> np.ndarray:
    if not _is_tensor(lib, t):
        return np.asarray(t)
    return t.detach().numpy() if lib.__name__ == "torch" else t.numpy()


def _compare_leaf(idiom: Idiom, path: str, ours: Any, theirs: Any, torch: Any) -> None:
    def fail(what: str) -> None:
        raise Mismatch(f"idiom {idiom.id!r}: {path}: {what}")

    if isinstance(theirs, tuple) and theirs[:1] == ("array",):
        if _dtype_name(ours[1].dtype) != _dtype_name(theirs[1].dtype):
            fail(f"dtype {ours[1].dtype} (ours) vs {theirs[1].dtype} (PyTorch)")
        if ours[1].shape != theirs[1].shape:
            fail(f"shape {ours[1].shape} (ours) vs {theirs[1].shape} (PyTorch)")
        _compare_arrays(idiom, path, ours[1], theirs[1])
        return
    if isinstance(theirs, tuple) and theirs[:1] == ("parameter",):
        theirs = theirs[1]
        if not (isinstance(ours, tuple) and ours[:1] == ("parameter",)):
            fail(f"ours is {type(ours).__name__}, PyTorch has a parameter")
        ours = ours[1]
    if isinstance(theirs, torch.Tensor):
        if not isinstance(ours, tg.Tensor):
            fail(f"ours is a {type(ours).__name__}, PyTorch's a Tensor")
        if _dtype_name(ours.dtype) != _dtype_name(theirs.dtype):
            fail(f"dtype {ours.dtype} (ours) vs {theirs.dtype} (PyTorch)")
        if tuple(ours.shape) != tuple(theirs.shape):
            fail(f"shape {tuple(ours.shape)} (ours) vs {tuple(theirs.shape)} (PyTorch)")
        if ours.requires_grad != theirs.requires_grad:
            fail(f"requires_grad {ours.requires_grad} (ours) vs {theirs.requires_grad} (PyTorch)")
        _compare_arrays(idiom, path, ours.numpy(), theirs.detach().numpy())
        return
    if _dtype_name(theirs) is not None:
        if _dtype_name(ours) != _dtype_name(theirs):
            fail(f"dtype {ours!r} (ours) vs {theirs!r} (PyTorch)")
        return
    if isinstance(theirs, float | np.generic):
        if type(ours) is not type(theirs):
            fail(f"ours is a {type(ours).__name__} ({ours!r}), "
                 f"PyTorch's a {type(theirs).__name__} ({theirs!r})")
        _compare_arrays(idiom, path, np.asarray(ours), np.asarray(theirs))
        return
    if type(ours) is not type(theirs) and not (isinstance(theirs, torch.Size) and type(ours) is tuple):
        fail(f"ours is a {type(ours).__name__} ({ours!r}), PyTorch's a {type(theirs).__name__} ({theirs!r})")
    if isinstance(theirs, str | int | bool | type(None) | tuple) and ours != theirs:
        fail(f"{ours!r} (ours) vs {theirs!r} (PyTorch)")


def _tolerance(idiom: Idiom, dtype: np.dtype) -> tuple[float, float]:
    """The idiom's own tolerance, else the dtype's."""
    rtol, atol = (RTOL32, ATOL32) if dtype == np.float32 else (RTOL64, ATOL64)
    return (rtol if idiom.rtol is None else idiom.rtol), (atol if idiom.atol is None else idiom.atol)


def _compare_arrays(idiom: Idiom, path: str, ours: np.ndarray, theirs: np.ndarray) -> None:
    if ours.dtype.kind == "f" or theirs.dtype.kind == "f":
        rtol, atol = _tolerance(idiom, np.result_type(ours.dtype, theirs.dtype))
        np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol, equal_nan=True,
                                   err_msg=f"idiom {idiom.id!r}: {path} (ours vs PyTorch)")
    else:
        np.testing.assert_array_equal(ours, theirs, err_msg=f"idiom {idiom.id!r}: {path} (ours vs PyTorch)")


def _run(lib: Any, idiom: Idiom, arrays: list[Any]) -> tuple[Any, list[Any]]:
    inputs = [spec.make(lib, a) for spec, a in zip(idiom.inputs, arrays)]
    return idiom.fn(lib, *inputs), inputs


def _gradients(lib: Any, outputs: list[Any], targets: list[Any], cotangents: list[np.ndarray]) -> list[Any]:
    vs = [lib.tensor(v.astype(_as_array(lib, o).dtype)) for v, o in zip(cotangents, outputs)]
    grads = lib.autograd.grad(outputs, targets, vs, allow_unused=True)
    return [np.zeros(tuple(t.shape)) if g is None else _as_array(lib, g) for g, t in zip(grads, targets)]


def _differentiable(lib: Any, leaves: list[tuple[str, Any]], inputs: list[Any]) -> tuple[list, list]:
    """(paths and outputs that require grad, gradient targets: inputs, then module parameters)."""
    outs = [(p, v) for p, v in leaves if _is_tensor(lib, v) and v.requires_grad]
    params = [v[1] for _, v in leaves
              if isinstance(v, tuple) and v[:1] == ("parameter",) and v[1].requires_grad]
    targets = [x for x in inputs if _is_tensor(lib, x) and x.requires_grad] + params
    return outs, targets


def check_idiom(idiom: Idiom, torch: Any) -> None:
    """Run the idiom in both libraries; raise Mismatch (or an assertion) naming what differed."""
    rng = np.random.default_rng(zlib.crc32(idiom.id.encode()))
    arrays = [spec.draw(rng) for spec in idiom.inputs]
    if idiom.raises is not None:
        for lib in (torch, tg):
            with pytest.raises(idiom.raises):
                _run(lib, idiom, arrays)
        return
    theirs, their_inputs = _run(torch, idiom, arrays)
    ours, our_inputs = _run(tg, idiom, arrays)
    their_leaves, our_leaves = _flatten(torch, theirs), _flatten(tg, ours)
    if [p for p, _ in their_leaves] != [p for p, _ in our_leaves]:
        raise Mismatch(f"idiom {idiom.id!r}: the results differ in structure: ours "
                       f"{[p for p, _ in our_leaves]}, PyTorch's {[p for p, _ in their_leaves]}")
    for (path, t), (_, o) in zip(their_leaves, our_leaves):
        _compare_leaf(idiom, path, o, t, torch)
    if not idiom.grad:
        return
    their_outs, their_targets = _differentiable(torch, their_leaves, their_inputs)
    our_outs, our_targets = _differentiable(tg, our_leaves, our_inputs)
    if not their_outs or not their_targets:
        return
    cotangents = [rng.standard_normal(tuple(o.shape)) for _, o in their_outs]
    their_grads = _gradients(torch, [o for _, o in their_outs], their_targets, cotangents)
    our_grads = _gradients(tg, [o for _, o in our_outs], our_targets, cotangents)
    for k, (g, t) in enumerate(zip(our_grads, their_grads)):
        _compare_arrays(idiom, f"gradient of target {k} (inputs first, then module parameters)", g, t)


def _missing(needs: str | None) -> bool:
    """Whether tinygrad_bn lacks `needs`: a dotted attribute path, or "path(keyword=)" for an argument."""
    if needs is None:
        return False
    path, _, keyword = needs.partition("(")
    obj: Any = tg
    for part in path.split("."):
        if not hasattr(obj, part):
            return True
        obj = getattr(obj, part)
    return bool(keyword) and keyword.rstrip("=)") not in inspect.signature(obj).parameters


def _skip_reason(idiom: Idiom) -> str | None:
    if not _missing(idiom.needs):
        return None
    if idiom.needs.startswith("optim"):
        return f"needs the optim rewrite (tinygrad_bn.{idiom.needs} does not exist yet)"
    return f"tinygrad_bn.{idiom.needs} does not exist yet (it comes with the nn/optim rewrite)"


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def test_idiom_ids_are_unique():
    ids = [idiom.id for idiom in IDIOMS]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


def test_there_are_at_least_150_idioms():
    assert len(IDIOMS) >= 150


def test_every_looser_tolerance_says_why():
    unexplained = [i.id for i in IDIOMS if (i.rtol is not None or i.atol is not None) and not i.why]
    assert not unexplained, unexplained


def _param(idiom: Idiom) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=idiom.gap)] if idiom.gap else []
    return pytest.param(idiom, id=idiom.id, marks=marks)


@pytest.mark.parametrize("idiom", [_param(idiom) for idiom in IDIOMS])
def test_idiom_matches_pytorch(idiom, torch):
    reason = _skip_reason(idiom)
    if reason:
        pytest.skip(reason)
    check_idiom(idiom, torch)


# ---------------------------------------------------------------- docs/pytorch.md: the translation tables


@dataclass(frozen=True)
class Row:
    """One row of docs/pytorch.md: equivalent spellings, each checked to give the same result."""

    ours: str  # the tinygrad_bn spelling (tg, nn, F, x, x3, w, labels, a are defined)
    note: str
    torch: str | None = None  # PyTorch's spelling; None: ours with tg. -> torch.
    numpy: str | None = None  # numpy's spelling (a, a3, labels_np are the same data as arrays)
    compare: str = "same"  # "same" (dtype, shape, values), "shape", "type" or "raises"

    @property
    def torch_spelling(self) -> str:
        return self.torch if self.torch is not None else self.ours.replace("tg.", "torch.")


FROM_PYTORCH = [
    Row("tg.tensor([1, 2.5])",
        "Python ints become int64 and floats the default dtype (float32), as in PyTorch"),
    Row("tg.tensor([1, 2])", "int64, like numpy's and PyTorch's integer lists"),
    Row("x.dtype == tg.float64",
        "dtypes are numpy's (`tg.float64 is np.float64`); `x.dtype` is a `np.dtype`"),
    Row("x.to(tg.int64)", "PyTorch's aliases `torch.long`, `torch.float`, `torch.double` are not defined: "
        "spell the width", torch="x.to(torch.long)"),
    Row("tg.Tensor(a)", "shares the array's memory and keeps its dtype (`tg.tensor(a)` copies); "
        "`tinygrad_bn.factories.from_numpy` is not re-exported yet", torch="torch.from_numpy(a)"),
    Row("x.numpy()", "no `.detach()` needed; the array is shared, not copied", torch="x.detach().numpy()"),
    Row("x.data", "the numpy array itself (PyTorch: a Tensor sharing the storage)", compare="shape"),
    Row("x.size()", "a plain tuple (`torch.Size` is a tuple too)"),
    Row("F.log_softmax(x, dim=1)",
        "not re-exported as `tg.log_softmax` yet; `F` is `tinygrad_bn.nn.functional` "
        "(also `tinygrad_bn.functional`)", torch="torch.log_softmax(x, dim=1)"),
    Row("tg.grad((w * w).sum(), w)", "`tg.grad` is `tg.autograd.grad`, with PyTorch's signature",
        torch="torch.autograd.grad((w * w).sum(), w)"),
    Row("x.to('cuda')", "the CPU only: `device=None` or `'cpu'` is accepted everywhere, anything else raises",
        compare="raises"),
    Row("tg.randn(2, 3, generator=tg.Generator(0))",
        "the same API, but numpy's PCG64 stream: a seed gives other "
        "numbers than PyTorch's", torch="torch.randn(2, 3, generator=torch.Generator().manual_seed(0))",
        compare="shape"),
    Row("nn.Linear(3, 2, rng=0).weight.shape", "PyTorch's init distribution; `rng=` (a seed or Generator) "
        "seeds one layer, else the default generator", torch="nn.Linear(3, 2).weight.shape"),
    Row("nn.Linear(3, 2)(x)", "a float64 batch into a float32 layer raises (here a TypeError that says "
        "`x.float()` or `model.double()`)", compare="raises"),
    Row("nn.BatchNorm1d(3, impl='composed')(x.float())", "`impl='fused'` (the default) is one node with the "
        "hand-derived backward; `'composed'` records every primitive, as the drawings show it",
        torch="nn.BatchNorm1d(3)(x.float())"),
    Row("F.cross_entropy(x, labels, impl='fused')", "the fused kernel for (N, C) logits and integer labels; "
        "the default `impl='composed'` handles every option", torch="F.cross_entropy(x, labels)"),
    Row("x.max(dim=1)", "a named (values, indices) pair, as in PyTorch"),
    Row("x.flip(0)", "negative slice steps work too (`x[::-1]`); PyTorch refuses them"),
    Row("tg.optim.SGD(nn.Linear(3, 2).parameters(), lr=0.1)", "`tg.optim` follows `torch.optim`'s names, "
        "defaults and update rules", compare="type"),
]

FROM_NUMPY = [
    Row("x.permute(1, 0)", "numpy's `transpose` reverses or permutes every axis: that is `permute`",
        numpy="a.transpose()"),
    Row("x3.transpose(0, 2)", "`transpose(d0, d1)` swaps two dims (numpy's `swapaxes`)",
        numpy="np.swapaxes(a3, 0, 2)"),
    Row("x.var(0)", "unbiased by default (`correction=1`, numpy's `ddof=1`)", numpy="a.var(axis=0, ddof=1)"),
    Row("x.std(0, correction=0)", "numpy's default, the population std", numpy="a.std(axis=0)"),
    Row("x.max(dim=1).values", "with a dim, max and min return (values, indices)", numpy="a.max(axis=1)"),
    Row("x.max(dim=1).indices", "the indices half of the pair", numpy="a.argmax(axis=1)"),
    Row("x.amax(dim=1)", "amax / amin reduce like numpy's max / min", numpy="a.max(axis=1)"),
    Row("tg.tensor([1, 2])", "int lists become int64, as in numpy", numpy="np.array([1, 2])"),
    Row("tg.tensor([0.5, 1.5])", "float lists become float32 (numpy: float64)",
        numpy="np.array([0.5, 1.5], dtype=np.float32)"),
    Row("tg.zeros(2, 3)", "factories make float32 and take sizes as ints or one tuple",
        numpy="np.zeros((2, 3), dtype=np.float32)"),
    Row("tg.tensor([3, 4]) / 2", "dividing integers gives the default float dtype (numpy: float64)",
        numpy="(np.array([3, 4]) / 2).astype(np.float32)"),
    Row("labels + tg.tensor([0.5], dtype=tg.float32)",
        "int64 with float32 is float32 (numpy widens to float64)",
        numpy="labels_np.astype(np.float32) + np.float32(0.5)"),
    Row("x.repeat(2, 1)", "`repeat` tiles, like numpy's `tile`", numpy="np.tile(a, (2, 1))"),
    Row("x.repeat_interleave(2, dim=0)",
        "numpy's `repeat` repeats each element", numpy="np.repeat(a, 2, axis=0)"),
    Row("x.to(tg.float32)", "`.to(dtype)` (or `.float()` / `.double()`); tensors have no `astype`",
        numpy="a.astype(np.float32)"),
    Row("x.numel()", "the number of elements; `x.size()` is the shape", numpy="a.size"),
    Row("x.size()", "the shape, as a method (`x.shape` works too)", numpy="a.shape"),
    Row("x.sum(dim=0)", "`dim=` (numpy's `axis=` is accepted as an alias)", numpy="a.sum(axis=0)"),
    Row("x.sum(dim=1, keepdim=True)", "`keepdim=` (numpy's `keepdims=` is accepted as an alias)",
        numpy="a.sum(axis=1, keepdims=True)"),
    Row("tg.cat([x, x], dim=1)",
        "`cat` (also `concat`, `concatenate`)", numpy="np.concatenate([a, a], axis=1)"),
    Row("tg.stack([x, x])", "a new leading dim, as numpy's", numpy="np.stack([a, a])"),
    Row("x.expand(4, -1, -1)",
        "`expand` broadcasts; -1 keeps a dim's size", numpy="np.broadcast_to(a, (4, 2, 3))"),
    Row("x3.split([1, 3], dim=2)", "split takes the sizes of the pieces (numpy: the indices of the cuts)",
        numpy="np.split(a3, [1], axis=2)"),
    Row("x.chunk(2, dim=1)", "at most 2 pieces of ceil(n / 2)", numpy="np.array_split(a, 2, axis=1)"),
    Row("x.unsqueeze(0)", "insert a dim of size 1", numpy="np.expand_dims(a, 0)"),
    Row("x.clone()", "a copy (in the graph)", numpy="a.copy()"),
    Row("x.clamp(-1, 1)", "also `clip`", numpy="np.clip(a, -1, 1)"),
    Row("tg.where(x > 0, x, 0.0)", "the same three-argument form", numpy="np.where(a > 0, a, 0.0)"),
    Row("x.gather(1, labels[:, None])", "numpy's `take_along_axis` (also `tg.take_along_dim`)",
        numpy="np.take_along_axis(a, labels_np[:, None], axis=1)"),
    Row("x.norm(dim=1)", "the 2-norm by default; `p=` for others", numpy="np.linalg.norm(a, axis=1)"),
    Row("x.cumsum(dim=1)", "the dim is required", numpy="np.cumsum(a, axis=1)"),
    Row("x.sort(dim=1, descending=True).values", "sort returns (values, indices)",
        numpy="-np.sort(-a, axis=1)"),
    Row("F.pad(x, (1, 2))", "pads the last dim first, as a flat list", numpy="np.pad(a, ((0, 0), (1, 2)))"),
    Row("tg.einsum('ij,kj->ik', x, x)",
        "the same equations, '...' included", numpy="np.einsum('ij,kj->ik', a, a)"),
    Row("tg.randn(2, 3, generator=tg.Generator(0))",
        "a Generator is numpy's PCG64: the same seed, numpy's numbers",
        numpy="np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)", torch=""),
]

DOC_ROWS = {"pytorch": FROM_PYTORCH, "numpy": FROM_NUMPY}


def _doc_data() -> dict[str, Any]:
    rng = np.random.default_rng(2024)
    return {"x": rng.uniform(-2, 2, (2, 3)), "x3": rng.uniform(-2, 2, (2, 3, 4)), "w": rng.uniform(-1, 1, 3),
            "labels": np.array([2, 0])}


def _namespace(lib: Any) -> dict[str, Any]:
    """What a row's spelling sees: the library, nn, F, and the same data as tensors (a: as an array)."""
    data = _doc_data()
    name = "torch" if lib is not tg else "tg"
    space: dict[str, Any] = {name: lib, "np": np, "nn": lib.nn, "F": lib.nn.functional, "a": data["x"].copy()}
    space.update({k: lib.tensor(v) for k, v in data.items()})
    space["w"] = lib.tensor(data["w"], requires_grad=True)
    return space


def _numpy_namespace() -> dict[str, Any]:
    data = _doc_data()
    return {"np": np, "a": data["x"], "a3": data["x3"], "labels_np": data["labels"]}


def _evaluate(code: str, space: dict[str, Any]) -> Any:
    return eval(code, space)  # the rows are literals of this file


def _row_id(row: Row) -> str:
    return row.ours


def check_row_against(row: Row, torch: Any) -> None:
    """The row's tinygrad_bn and PyTorch spellings agree (as its compare mode says)."""
    idiom = Idiom(f"docs row {row.ours}", lambda lib: None)
    if row.compare == "raises":
        for code, space in ((row.torch_spelling, _namespace(torch)), (row.ours, _namespace(tg))):
            with pytest.raises(Exception):  # noqa: B017 - the libraries raise different types
                _evaluate(code, space)
        return
    theirs = _evaluate(row.torch_spelling, _namespace(torch))
    ours = _evaluate(row.ours, _namespace(tg))
    if row.compare == "shape":
        assert tuple(ours.shape) == tuple(theirs.shape), f"{row.ours}: shape {ours.shape} vs {theirs.shape}"
        return
    if row.compare == "type":
        assert type(ours).__name__ == type(theirs).__name__, f"{row.ours}: {type(ours)} vs {type(theirs)}"
        return
    their_leaves, our_leaves = _flatten(torch, theirs), _flatten(tg, ours)
    assert [p for p, _ in their_leaves] == [p for p, _ in our_leaves], \
        f"{row.ours}: the results differ in structure"
    for (path, t), (_, o) in zip(their_leaves, our_leaves):
        _compare_leaf(idiom, path, o, t, torch)


def _as_arrays(value: Any) -> list[np.ndarray]:
    """A result as arrays: a sequence of tensors or arrays gives one each; a shape is one array."""
    if isinstance(value, list | tuple) and not all(isinstance(v, int) for v in value):
        return [np.asarray(v) for v in value]
    return [np.asarray(value)]


def check_row_against_numpy(row: Row) -> None:
    """The row's tinygrad_bn and numpy spellings give the same dtype, shape and values."""
    ours = _as_arrays(_evaluate(row.ours, _namespace(tg)))
    theirs = _as_arrays(_evaluate(row.numpy, _numpy_namespace()))
    assert len(ours) == len(theirs), f"{row.ours}: {len(ours)} results (ours) vs {len(theirs)} (numpy)"
    for o, t in zip(ours, theirs):
        assert o.dtype == t.dtype, f"{row.ours}: dtype {o.dtype} (ours) vs {t.dtype} (numpy)"
        assert o.shape == t.shape, f"{row.ours}: shape {o.shape} (ours) vs {t.shape} (numpy)"
        np.testing.assert_allclose(o, t, rtol=RTOL64, atol=ATOL64, err_msg=f"{row.ours} vs {row.numpy}")


@pytest.mark.parametrize("row", FROM_PYTORCH + [r for r in FROM_NUMPY if r.torch != ""], ids=_row_id)
def test_docs_row_runs_the_same_in_pytorch(row, torch):
    check_row_against(row, torch)


@pytest.mark.parametrize("row", [r for r in FROM_NUMPY if r.numpy], ids=_row_id)
def test_docs_row_runs_the_same_in_numpy(row):
    check_row_against_numpy(row)


def _cell(code: str | None) -> str:
    return "" if not code else "`" + code.replace("|", "\\|") + "`"


def render_tables() -> dict[str, str]:
    """The markdown of each generated block of docs/pytorch.md."""
    pytorch = ["| PyTorch | tinygrad_bn | note |", "|---|---|---|"]
    pytorch += [f"| {_cell(r.torch_spelling)} | {_cell(r.ours)} | {r.note} |" for r in FROM_PYTORCH]
    numpy = ["| numpy | tinygrad_bn (and PyTorch) | note |", "|---|---|---|"]
    numpy += [f"| {_cell(r.numpy)} | {_cell(r.ours)} | {r.note} |" for r in FROM_NUMPY]
    gaps = ["| idiom | why it differs, and where the fix belongs |", "|---|---|"]
    gaps += [f"| {_cell(i.id)} | {i.gap} |" for i in IDIOMS if i.gap]
    return {"from-pytorch": "\n".join(pytorch), "from-numpy": "\n".join(numpy),
            "known-differences": "\n".join(gaps)}


def _block_pattern(name: str) -> str:
    return rf"(<!-- generated: {name} -->\n)(.*?)\n?(<!-- end generated: {name} -->)"


def docs_blocks(text: str) -> dict[str, str]:
    """The generated blocks in the page's text, by name."""
    return {name: m.group(2) for name in render_tables()
            for m in [re.search(_block_pattern(name), text, re.S)] if m}


def write_docs(path: Path = DOCS_PAGE) -> None:
    """Replace every generated block of the page with what the rows render to (atomically)."""
    text = path.read_text()
    for name, body in render_tables().items():
        def replace(m: re.Match, body: str = body) -> str:
            return m.group(1) + body + "\n" + m.group(3)

        text, count = re.subn(_block_pattern(name), replace, text, flags=re.S)
        if count != 1:
            raise SystemExit(f"{path}: expected one block '<!-- generated: {name} -->', found {count}")
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def test_docs_tables_are_what_the_rows_render_to():
    blocks = docs_blocks(DOCS_PAGE.read_text())
    for name, body in render_tables().items():
        assert name in blocks, f"docs/pytorch.md has no block <!-- generated: {name} -->"
        assert blocks[name] == body, (f"docs/pytorch.md's {name} table is stale: run "
                                      "PYTHONPATH=. python tests/test_pytorch_conformance.py --write-docs")


def test_docs_index_links_the_pytorch_page():
    index = (DOCS_PAGE.parent / "index.md").read_text()
    assert "| [pytorch.md](pytorch.md) |" in index


if __name__ == "__main__":
    if sys.argv[1:] != ["--write-docs"]:
        raise SystemExit("usage: PYTHONPATH=. python tests/test_pytorch_conformance.py --write-docs")
    write_docs()
