"""Pooling layers: MaxPool2d, AvgPool2d and AdaptiveAvgPool2d (the maths is in functional/pool.py)."""

from __future__ import annotations

from typing import Any

from tinygrad_bn import functional as F
from tinygrad_bn.kernel_registry import check_impl
from tinygrad_bn.nn.module import Module
from tinygrad_bn.tensor import Tensor


class MaxPool2d(Module):
    """Max over each kernel_size window (stride defaults to kernel_size); ties go to the first maximum."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                 return_indices: bool = False, ceil_mode: bool = False, *, impl: str = "fused"):
        super().__init__()
        check_impl("MaxPool2d", impl)
        self.kernel_size, self.stride, self.padding, self.dilation = kernel_size, stride, padding, dilation
        self.return_indices, self.ceil_mode, self.impl = return_indices, ceil_mode, impl

    def forward(self, x: Tensor) -> Any:
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                            self.return_indices, impl=self.impl)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, "
                f"padding={self.padding}, dilation={self.dilation}, ceil_mode={self.ceil_mode}, "
                f"impl={self.impl!r}")


class AvgPool2d(Module):
    """Mean over each kernel_size window (stride defaults to kernel_size)."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None, *, impl: str = "fused"):
        super().__init__()
        check_impl("AvgPool2d", impl)
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad, self.divisor_override = ceil_mode, count_include_pad, \
            divisor_override
        self.impl = impl

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override, impl=self.impl)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, "
                f"padding={self.padding}, impl={self.impl!r}")


class AdaptiveAvgPool2d(Module):
    """Average down to output_size (an int, or a pair whose None entries keep the input's size)."""

    def __init__(self, output_size: Any, *, impl: str = "fused"):
        super().__init__()
        check_impl("AdaptiveAvgPool2d", impl)
        self.output_size, self.impl = output_size, impl

    def forward(self, x: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(x, self.output_size, impl=self.impl)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}, impl={self.impl!r}"
