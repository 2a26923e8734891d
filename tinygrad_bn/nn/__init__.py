"""Layers with PyTorch's names: Module/Parameter, containers, Linear, convolution and pooling,
activations, losses, norm layers, and nn.init.

`tinygrad_bn.nn.functional` is `tinygrad_bn.functional` (as torch.nn.functional).
"""

import sys

from tinygrad_bn import functional
from tinygrad_bn.nn import init
from tinygrad_bn.nn.activation import (
    ELU,
    GELU,
    SELU,
    Hardtanh,
    LeakyReLU,
    LogSigmoid,
    LogSoftmax,
    Mish,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from tinygrad_bn.nn.containers import Identity, ModuleDict, ModuleList
from tinygrad_bn.nn.conv import Conv1d, Conv2d
from tinygrad_bn.nn.layers import Dropout, Embedding, Flatten, Linear, Sequential, Unflatten
from tinygrad_bn.nn.loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from tinygrad_bn.nn.module import Module, Parameter
from tinygrad_bn.nn.norm import BatchNorm1d, BatchNorm2d, GroupNorm, InstanceNorm2d, LayerNorm
from tinygrad_bn.nn.pool import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d

# `import tinygrad_bn.nn.functional as F` finds the functional package under its PyTorch path.
sys.modules.setdefault(__name__ + ".functional", functional)

__all__ = [name for name in dir() if not name.startswith("_") and name != "sys"]
