"""Convolution layers: Conv1d and Conv2d, PyTorch's arguments, initialisation and padding modes.

Initialisation is PyTorch's: weight kaiming_uniform_(a=sqrt(5)), which is
uniform in +-1/sqrt(fan_in) with fan_in = in_channels / groups * kernel
elements, and bias uniform in the same range; drawn from `rng` when given (a
tinygrad_bn.Generator, a numpy Generator or a seed), else from the default
generator, weight first.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinygrad_bn import functional as F
from tinygrad_bn.functional.conv import int_tuple
from tinygrad_bn.kernel_registry import check_impl
from tinygrad_bn.nn.module import Module, Parameter
from tinygrad_bn.random import numpy_generator
from tinygrad_bn.tensor import Tensor, get_default_dtype

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _positive_int(layer: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"{layer}: {name} must be a positive int, got {value!r}")
    return int(value)


class _ConvNd(Module):
    """What Conv1d and Conv2d share; `nd` is the number of spatial dims."""

    nd = 0

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", device: Any = None, dtype: Any = None, *, rng: Any = None,
                 impl: str = "fused"):
        super().__init__()
        name, nd = type(self).__name__, self.nd
        check_impl(name, impl)
        self.in_channels = _positive_int(name, "in_channels", in_channels)
        self.out_channels = _positive_int(name, "out_channels", out_channels)
        self.groups = _positive_int(name, "groups", groups)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: groups={groups} must divide in_channels={in_channels} and "
                             f"out_channels={out_channels}")
        self.kernel_size = int_tuple(name, "kernel_size", kernel_size, nd, 1)
        self.stride = int_tuple(name, "stride", stride, nd, 1)
        self.dilation = int_tuple(name, "dilation", dilation, nd, 1)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{name}: padding must be 'same', 'valid', an int or a tuple of {nd} ints, "
                                 f"got {padding!r}")
            if padding == "same" and set(self.stride) != {1}:
                raise ValueError(f"{name}: padding='same' needs stride 1, got stride={self.stride}")
            self.padding: Any = padding
        else:
            self.padding = int_tuple(name, "padding", padding, nd, 0)
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
        self.padding_mode, self.impl = padding_mode, impl
        dtype = get_default_dtype() if dtype is None else dtype
        gen = numpy_generator(rng, name)
        fan_in = in_channels // groups * math.prod(self.kernel_size)
        bound = 1.0 / math.sqrt(fan_in)  # kaiming_uniform_(a=sqrt(5)): gain sqrt(1/3) * sqrt(3 / fan_in)
        shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.weight = Parameter(gen.uniform(-bound, bound, shape).astype(dtype))
        self.bias = Parameter(gen.uniform(-bound, bound, out_channels).astype(dtype)) if bias else None

    def _pads(self) -> list[int]:
        """F.pad's list (last dim first) for a non-zero padding_mode."""
        if self.padding == "valid":
            return [0, 0] * self.nd
        if self.padding == "same":
            totals = [d * (k - 1) for k, d in zip(self.kernel_size, self.dilation)]
            pairs = [(t // 2, t - t // 2) for t in totals]
        else:
            pairs = [(p, p) for p in self.padding]
        return [p for pair in reversed(pairs) for p in pair]

    def forward(self, x: Tensor) -> Tensor:
        conv = F.conv1d if self.nd == 1 else F.conv2d
        if self.padding_mode != "zeros":
            x = F.pad(x, self._pads(), mode=self.padding_mode)
            return conv(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups, impl=self.impl)
        return conv(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups,
                    impl=self.impl)

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0,) * self.nd:
            text += f", padding={self.padding!r}"
        if self.dilation != (1,) * self.nd:
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode!r}"
        return text + f", impl={self.impl!r}"


class Conv1d(_ConvNd):
    """1-d convolution of (N, C_in, L) input: weight (C_out, C_in / groups, k), bias (C_out,)."""

    nd = 1


class Conv2d(_ConvNd):
    """2-d convolution of (N, C_in, H, W) input: weight (C_out, C_in / groups, kH, kW), bias (C_out,)."""

    nd = 2
