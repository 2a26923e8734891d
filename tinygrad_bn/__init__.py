"""tinygrad_bn: a small reverse-mode autodiff engine over numpy, built around BatchNorm."""

# ruff: noqa: I001 - order matters: _memory first, then tensor (which loads the ops)
from tinygrad_bn import _memory  # noqa: F401 - reuse freed arrays (see _memory.py)
from tinygrad_bn.tensor import Tensor, tensor
from tinygrad_bn.autograd import (
    AnomalyError,
    Function,
    detect_anomaly,
    enable_grad,
    grad,
    is_grad_enabled,
    no_grad,
)
from tinygrad_bn.ops import PRIMITIVES, where
from tinygrad_bn import functional, gradcheck, kernels, nn, optim, train, viz  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "PRIMITIVES", "AnomalyError", "Function", "Tensor", "detect_anomaly", "enable_grad",
    "functional", "grad", "gradcheck", "is_grad_enabled", "kernels", "nn", "no_grad", "optim",
    "tensor", "train", "viz", "where",
]
