"""Activations and softmax, composed from primitives (PyTorch's signatures and defaults)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinygrad_bn.autograd.grad_mode import composite
from tinygrad_bn.functional._args import one_dim, pick
from tinygrad_bn.functional.elementwise import erf, expm1, log1p, relu, sigmoid, tanh, where
from tinygrad_bn.tensor import Tensor

__all__ = ["celu", "elu", "gelu", "hardtanh", "leaky_relu", "log_sigmoid", "log_softmax", "logsigmoid",
           "relu", "relu6", "selu", "sigmoid", "silu", "softmax", "softplus", "tanh"]


def _softmax_dim(op: str, x: Tensor, dim: Any, axis: Any) -> int:
    dim = pick(op, "dim", dim, "axis", axis, None)
    if dim is None:
        # PyTorch's legacy rule for a missing dim: 0 for 0-d, 1-d and 3-d input, else 1.
        dim = 0 if x.ndim in (0, 1, 3) else 1
    return one_dim(op, dim, x.ndim)


@composite("softmax")
def softmax(input: Tensor, dim: int | None = None, *, dtype: Any = None, axis: int | None = None) -> Tensor:
    """exp(x) / sum(exp(x)) along `dim`, shifted by the max for stability."""
    d = _softmax_dim("softmax", input, dim, axis)
    x = input if dtype is None else input.to(dtype)
    # softmax(x - c) = softmax(x) for any c, so the shift needs no gradient.
    e = (x - x.detach().amax(dim=d, keepdim=True)).exp()
    return e / e.sum(dim=d, keepdim=True)


@composite("log_softmax")
def log_softmax(input: Tensor, dim: int | None = None, *, dtype: Any = None,
                axis: int | None = None) -> Tensor:
    """x - logsumexp(x) along `dim`."""
    d = _softmax_dim("log_softmax", input, dim, axis)
    x = input if dtype is None else input.to(dtype)
    shifted = x - x.detach().amax(dim=d, keepdim=True)
    return shifted - shifted.exp().sum(dim=d, keepdim=True).log()


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x for x > 0, negative_slope * x otherwise."""
    return where(input._data > 0, input, input * negative_slope)


@composite("elu")
def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    return where(input._data > 0, input, expm1(input) * alpha)


@composite("celu")
def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1))."""
    return where(input._data > 0, input, expm1(input * (1.0 / alpha)) * alpha)


_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """scale * elu(x, alpha) with the self-normalising constants."""
    return elu(input, _SELU_ALPHA) * _SELU_SCALE


@composite("gelu")
def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x); approximate="tanh" uses 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    if approximate == "none":
        return input * (erf(input * (1.0 / math.sqrt(2.0))) + 1.0) * 0.5
    if approximate == "tanh":
        inner = (input + input * input * input * 0.044715) * math.sqrt(2.0 / math.pi)
        return input * (tanh(inner) + 1.0) * 0.5
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


@composite("silu")
def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x) (also called swish)."""
    return input * sigmoid(input)


@composite("mish")
def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * tanh(softplus(x))."""
    return input * tanh(softplus(input))


def log1p_exp(z: Tensor) -> Tensor:
    """log(1 + exp(z)) for any z: max(z, 0) + log1p(exp(-|z|)), never overflowing.

    Both constants pick the z >= 0 branch at z = 0, so the gradient there is
    sigmoid(0) = 0.5 (a sign of 0 would make it 0: d|z| and d max(z, 0) both 0).
    """
    nonnegative = z._data >= 0
    sign = Tensor._wrap(np.where(nonnegative, 1, -1).astype(z.dtype), False, None)
    return log1p((-(z * sign)).exp()) + z * Tensor._wrap(nonnegative.astype(z.dtype), False, None)


@composite("softplus")
def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta; linear above beta x > threshold, as in PyTorch."""
    bx = input * beta
    return where(bx._data > threshold, input, log1p_exp(bx) * (1.0 / beta))


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """clamp(x, min_val, max_val); the gradient is 1 strictly inside (0 at the bounds, as in PyTorch)."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val {min_val} must not exceed max_val {max_val}")
    inside = (input._data > min_val) & (input._data < max_val)
    return where(inside, input, Tensor._wrap(np.clip(input._data, min_val, max_val), False, None))


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """hardtanh(x, 0, 6): the gradient at 0 and 6 is 0, as in PyTorch."""
    return hardtanh(input, 0.0, 6.0)


@composite("log_sigmoid")
def log_sigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)) = -log(1 + exp(-x)), finite and accurate for any x (no softplus threshold)."""
    return -log1p_exp(-input)


logsigmoid = log_sigmoid
