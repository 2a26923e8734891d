"""Stateful normalisation layers; the maths they call is in functional/norm.py.

BatchNorm keeps PyTorch's conventions: `momentum` is the fraction of the batch
statistic mixed into the running one (None = cumulative average), and
running_var tracks the *unbiased* batch variance while the biased one
normalises. (CS231n's `bn_param` and the DLfS layer differ: see compat.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_bn.functional.norm import (
    batch_norm,
    check_batch_norm_args,
    check_eps,
    group_norm,
    instance_norm,
    layer_norm,
)
from tinygrad_bn.kernel_registry import check_impl
from tinygrad_bn.nn.module import Module, Parameter
from tinygrad_bn.tensor import Tensor, get_default_dtype


class _BatchNorm(Module):
    """Shared body of BatchNorm1d and BatchNorm2d; subclasses fix the accepted ranks."""

    ranks: tuple[int, ...] = ()

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
        impl: str = "fused",
    ):
        super().__init__()
        name = type(self).__name__
        if isinstance(num_features, bool) or not isinstance(num_features, int | np.integer) \
                or num_features <= 0:
            raise ValueError(f"{name}: num_features must be a positive int, got {num_features!r}")
        eps = check_eps(name, eps)
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{name}: momentum must be in [0, 1] or None, got {momentum}")
        check_impl(name, impl)
        dtype = get_default_dtype() if dtype is None else dtype
        self.num_features, self.eps, self.momentum = int(num_features), eps, momentum
        self.affine, self.track_running_stats, self.impl = affine, track_running_stats, impl
        self.weight = Parameter(np.ones(num_features, dtype)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype)) if affine and bias else None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype))
            self.register_buffer("num_batches_tracked", np.zeros((), np.int64))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, no batches seen."""
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def forward(self, x: Tensor) -> Tensor:
        if isinstance(x, Tensor) and x.ndim not in self.ranks:
            raise ValueError(
                f"{type(self).__name__}: expected input with {' or '.join(map(str, self.ranks))} dims, "
                f"got shape {x.shape}"
            )
        # PyTorch's rules: batch statistics in training, or whenever there are no running
        # buffers; the buffers are updated only while training with track_running_stats on
        # (which can be switched off after construction).
        use_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        update = not self.training or self.track_running_stats
        running_mean = self.running_mean if update else None
        running_var = self.running_var if update else None
        check_batch_norm_args(x, running_mean, running_var, self.weight, self.bias, use_batch_stats,
                              self.eps, self.impl)
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.data += 1  # counted only for a batch that passed the checks
        return batch_norm(
            x, running_mean, running_var, self.weight, self.bias, training=use_batch_stats,
            momentum=self.momentum, eps=self.eps, impl=self.impl,
            num_batches_tracked=self.num_batches_tracked,
        )

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}, impl={self.impl!r}")


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L) input, one statistic per channel C."""

    ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) input, one statistic per channel C."""

    ranks = (4,)


class LayerNorm(Module):
    """Layer norm over the trailing `normalized_shape` axes of each example."""

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        impl: str = "fused",
    ):
        super().__init__()
        check_impl("LayerNorm", impl)
        shape = (normalized_shape,) if isinstance(normalized_shape, int | np.integer) else normalized_shape
        if (isinstance(shape, str) or not isinstance(shape, Sequence)
                or not all(isinstance(s, int | np.integer) and not isinstance(s, bool) and s > 0
                           for s in shape)
                or not shape):
            raise ValueError(f"LayerNorm: normalized_shape must be a positive int or a sequence of positive "
                             f"ints, got {normalized_shape!r}")
        dtype = get_default_dtype() if dtype is None else dtype
        self.normalized_shape = tuple(int(s) for s in shape)
        self.eps, self.impl = check_eps("LayerNorm", eps), impl
        self.elementwise_affine = elementwise_affine
        self.weight = Parameter(np.ones(self.normalized_shape, dtype)) if elementwise_affine else None
        self.bias = Parameter(np.zeros(self.normalized_shape, dtype)) if elementwise_affine and bias else None

    def forward(self, x: Tensor) -> Tensor:
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps, self.impl)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, " \
               f"impl={self.impl!r}"


class GroupNorm(Module):
    """Group norm of (N, C, ...) input: statistics per example over C / num_groups channels at a time.

    weight (ones) and bias (zeros) have one value per channel; no running statistics,
    so training and evaluation compute the same thing.
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 device: Any = None, dtype: Any = None, *, impl: str = "fused"):
        super().__init__()
        check_impl("GroupNorm", impl)
        for arg, value in (("num_groups", num_groups), ("num_channels", num_channels)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
                raise ValueError(f"GroupNorm: {arg} must be a positive int, got {value!r}")
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_groups={num_groups} must divide num_channels={num_channels}")
        dtype = get_default_dtype() if dtype is None else dtype
        self.num_groups, self.num_channels = int(num_groups), int(num_channels)
        self.eps, self.affine, self.impl = check_eps("GroupNorm", eps), affine, impl
        self.weight = Parameter(np.ones(num_channels, dtype)) if affine else None
        self.bias = Parameter(np.zeros(num_channels, dtype)) if affine else None

    def forward(self, x: Tensor) -> Tensor:
        if isinstance(x, Tensor) and (x.ndim < 2 or x.shape[1] != self.num_channels):
            raise ValueError(f"GroupNorm: expected input of shape (N, {self.num_channels}, ...), "
                             f"got shape {x.shape}")
        return group_norm(x, self.num_groups, self.weight, self.bias, self.eps, impl=self.impl)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"impl={self.impl!r}")


class InstanceNorm2d(Module):
    """Instance norm of (N, C, H, W) or unbatched (C, H, W) input: statistics per example and channel.

    PyTorch's defaults: no affine parameters and no running statistics. With
    track_running_stats=True, training updates running_mean/running_var (the
    batch's average of instance means and unbiased variances, BatchNorm's
    momentum convention) and evaluation normalises with them; num_batches_tracked
    is kept for state-dict parity and, as in PyTorch, never counts. Unlike PyTorch,
    which only warns, an input whose channels differ from num_features raises.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = False,
                 track_running_stats: bool = False, device: Any = None, dtype: Any = None, *,
                 impl: str = "fused"):
        super().__init__()
        check_impl("InstanceNorm2d", impl)
        if isinstance(num_features, bool) or not isinstance(num_features, int | np.integer) \
                or num_features <= 0:
            raise ValueError(f"InstanceNorm2d: num_features must be a positive int, got {num_features!r}")
        if not isinstance(momentum, int | float) or not 0.0 <= momentum <= 1.0:
            raise ValueError(f"InstanceNorm2d: momentum must be in [0, 1], got {momentum!r}")
        dtype = get_default_dtype() if dtype is None else dtype
        self.num_features, self.eps, self.momentum = int(num_features), check_eps("InstanceNorm2d", eps), \
            float(momentum)
        self.affine, self.track_running_stats, self.impl = affine, track_running_stats, impl
        self.weight = Parameter(np.ones(num_features, dtype)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype))
            self.register_buffer("num_batches_tracked", np.zeros((), np.int64))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def forward(self, x: Tensor) -> Tensor:
        if isinstance(x, Tensor) and x.ndim not in (3, 4):
            raise ValueError(f"InstanceNorm2d: expected input of 3 (unbatched) or 4 dims, "
                             f"got shape {x.shape}")
        unbatched = x.ndim == 3
        x = x.unsqueeze(0) if unbatched else x
        if x.shape[1] != self.num_features:
            raise ValueError(f"InstanceNorm2d: expected {self.num_features} channels (num_features), got "
                             f"input of shape {x.shape}")
        use_input_stats = self.training or not self.track_running_stats
        out = instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias, use_input_stats,
                            self.momentum, self.eps, impl=self.impl)
        return out.squeeze(0) if unbatched else out

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}, impl={self.impl!r}")
