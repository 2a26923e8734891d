"""Activation modules: each calls its function in tinygrad_bn.functional (PyTorch's names and arguments)."""

from __future__ import annotations

from typing import Any

from tinygrad_bn import functional as F
from tinygrad_bn.nn.module import Module
from tinygrad_bn.tensor import Tensor


class _Activation(Module):
    """A module around one function of x with fixed keyword arguments."""

    def __init__(self, **options: Any):
        super().__init__()
        self.options = options

    def forward(self, x: Tensor) -> Tensor:
        return type(self).fn(x, **self.options)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.options.items())


class ReLU(_Activation):
    """max(x, 0)."""

    fn = staticmethod(F.relu)

    def __init__(self, inplace: bool = False):
        super().__init__()


class ReLU6(_Activation):
    """min(max(x, 0), 6)."""

    fn = staticmethod(F.relu6)

    def __init__(self, inplace: bool = False):
        super().__init__()


class LeakyReLU(_Activation):
    """x for x > 0, negative_slope * x otherwise."""

    fn = staticmethod(F.leaky_relu)

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__(negative_slope=negative_slope)


class ELU(_Activation):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""

    fn = staticmethod(F.elu)

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__(alpha=alpha)


class SELU(_Activation):
    """The self-normalising ELU."""

    fn = staticmethod(F.selu)

    def __init__(self, inplace: bool = False):
        super().__init__()


class GELU(_Activation):
    """x * Phi(x) (approximate="tanh" for the tanh form)."""

    fn = staticmethod(F.gelu)

    def __init__(self, approximate: str = "none"):
        super().__init__(approximate=approximate)


class SiLU(_Activation):
    """x * sigmoid(x)."""

    fn = staticmethod(F.silu)

    def __init__(self, inplace: bool = False):
        super().__init__()


class Mish(_Activation):
    """x * tanh(softplus(x))."""

    fn = staticmethod(F.mish)

    def __init__(self, inplace: bool = False):
        super().__init__()


class Softplus(_Activation):
    """log(1 + exp(beta x)) / beta."""

    fn = staticmethod(F.softplus)

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__(beta=beta, threshold=threshold)


class Hardtanh(_Activation):
    """clamp(x, min_val, max_val)."""

    fn = staticmethod(F.hardtanh)

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
        super().__init__(min_val=min_val, max_val=max_val)


class Sigmoid(_Activation):
    """The logistic function."""

    fn = staticmethod(F.sigmoid)


class LogSigmoid(_Activation):
    """log(sigmoid(x))."""

    fn = staticmethod(F.log_sigmoid)


class Tanh(_Activation):
    """Hyperbolic tangent."""

    fn = staticmethod(F.tanh)


class Softmax(_Activation):
    """softmax along `dim`."""

    fn = staticmethod(F.softmax)

    def __init__(self, dim: int | None = None):
        super().__init__(dim=dim)


class LogSoftmax(_Activation):
    """log_softmax along `dim`."""

    fn = staticmethod(F.log_softmax)

    def __init__(self, dim: int | None = None):
        super().__init__(dim=dim)
