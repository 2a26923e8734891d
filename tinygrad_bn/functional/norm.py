"""Normalisation layers, each composed from primitives *and* as a fused kernel.

`impl="composed"` records every step as a primitive op, so autograd derives the
backward node by node (CS231n's `batchnorm_backward`); `impl="fused"` runs one
kernel from `tinygrad_bn/kernels` with the closed-form backward
(`batchnorm_backward_alt`), looked up by name in the kernel registry, where each
kernel is registered with these composed twins for the tests.

Conventions (PyTorch's): statistics over every axis but axis 1; the *biased*
batch variance normalises; running_var is updated with the *unbiased* one;
`running = (1 - momentum) * running + momentum * batch`, and momentum=None
means a cumulative average over the batches seen so far.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_bn.autograd.grad_mode import composite
from tinygrad_bn.kernel_registry import check_impl, fused_kernel
from tinygrad_bn.tensor import DIFFERENTIABLE_DTYPES, Tensor


def _check_param(op: str, arg: str, t: Any, shape: tuple[int, ...], dtype: np.dtype) -> None:
    if t is None:
        return
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: {arg} must be a Tensor or None, got {type(t).__name__}")
    if t.shape != shape:
        raise ValueError(f"{op}: {arg} has shape {t.shape}, expected {shape} (one value per channel)")
    if t.dtype != dtype:
        raise TypeError(
            f"{op}: {arg} has dtype {t.dtype} but input has dtype {dtype}; they must match. Convert the "
            f"input (x.to({str(t.dtype)!r})) or the layer (layer.to({str(dtype)!r}) / .float() / .double())"
        )


def check_eps(op: str, eps: Any) -> float:
    """eps must be a positive, finite number."""
    if isinstance(eps, bool) or not isinstance(eps, int | float | np.floating) or not (0 < eps < np.inf):
        raise ValueError(f"{op}: eps must be a positive finite number, got {eps!r}")
    return float(eps)


def _check_input(op: str, x: Any, min_ndim: int) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(x).__name__}")
    if x.ndim < min_ndim:
        raise ValueError(f"{op}: expected input with at least {min_ndim} dims, got shape {x.shape}")
    if x.dtype not in DIFFERENTIABLE_DTYPES:
        raise TypeError(f"{op}: input must be float32 or float64, got dtype {x.dtype}")


# ---------------------------------------------------------------- batch norm


@composite("batch_norm")
def batch_norm(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float | None = 0.1,
    eps: float = 1e-5,
    impl: str = "fused",
    num_batches_tracked: Tensor | None = None,
) -> Tensor:
    """Batch normalisation of (N, C), (N, C, L) or (N, C, H, W) input, PyTorch semantics.

    In training, normalises with batch statistics and, when running stats are
    given, updates them in place. Otherwise normalises with the running stats.
    `momentum=None` needs `num_batches_tracked` (already counting this batch).
    """
    check_batch_norm_args(input, running_mean, running_var, weight, bias, training, eps, impl)
    channels = input.shape[1]
    shape = (1, channels) + (1,) * (input.ndim - 2)
    if not training:
        # Fixed statistics make the layer an affine map: the same ops for both impls.
        inv_std = (running_var.detach() + eps) ** -0.5
        xhat = (input - running_mean.detach().reshape(*shape)) * inv_std.reshape(*shape)
        return _affine(xhat, weight, bias, shape)
    if input.numel() == 0:  # an empty batch: an empty output, running stats untouched (PyTorch 2)
        return _affine(input, weight, bias, shape)
    stats: dict[str, Any] = {}
    if impl == "fused":
        w = weight if weight is not None else Tensor(np.ones(channels, input.dtype))
        b = bias if bias is not None else Tensor(np.zeros(channels, input.dtype))
        out = fused_kernel("batch_norm").apply(input, w, b, eps=eps, stats=stats)
    else:
        out = _batch_norm_composed(input, weight, bias, eps, shape, stats)
    if running_mean is not None:
        _update_running(running_mean, running_var, stats, momentum, num_batches_tracked)
    return out


def check_batch_norm_args(
    input: Any, running_mean: Tensor | None, running_var: Tensor | None, weight: Tensor | None,
    bias: Tensor | None, training: bool, eps: Any, impl: str,
) -> None:
    """Every check batch_norm makes before computing anything (BatchNorm modules call it first)."""
    op = "batch_norm"
    check_impl(op, impl)
    _check_input(op, input, 2)
    channels = input.shape[1]
    for arg, t in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                   ("running_var", running_var)):
        _check_param(op, arg, t, (channels,), input.dtype)
    check_eps(op, eps)
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: pass both running_mean and running_var, or neither")
    if not training and running_mean is None:
        raise ValueError(f"{op}: evaluation mode (training=False) needs running_mean and running_var")
    count = input.numel() // channels if channels else 0
    if training and count == 1:
        raise ValueError(
            f"{op}: expected more than 1 value per channel when training, got input of shape {input.shape}"
        )


def _batch_norm_composed(
    x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float, shape: tuple, stats: dict
) -> Tensor:
    """Batch norm from primitives: every step is a node of the graph."""
    axes = (0,) + tuple(range(2, x.ndim))
    count = x.numel() // x.shape[1]
    mean = x.sum(axis=axes, keepdims=True) * (1.0 / count)
    centred = x - mean
    var = (centred * centred).sum(axis=axes, keepdims=True) * (1.0 / count)
    inv_std = (var + eps) ** -0.5
    xhat = centred * inv_std
    # The names of docs/batchnorm.md's derivation, shown by graph drawings.
    mean.name, centred.name, var.name, inv_std.name, xhat.name = "mu", "xc", "var", "r", "xhat"
    stats["mean"], stats["var"], stats["count"] = mean.data.reshape(-1), var.data.reshape(-1), count
    return _affine(xhat, weight, bias, shape)


def _affine(xhat: Tensor, weight: Tensor | None, bias: Tensor | None, shape: tuple) -> Tensor:
    out = xhat if weight is None else xhat * weight.reshape(*shape)
    return out if bias is None else out + bias.reshape(*shape)


def _update_running(
    running_mean: Tensor, running_var: Tensor, stats: dict, momentum: float | None,
    num_batches_tracked: Tensor | None,
) -> None:
    """running = (1 - f) * running + f * batch, with the unbiased batch variance."""
    if momentum is None:
        if num_batches_tracked is None or int(num_batches_tracked.item()) < 1:
            raise ValueError(
                "batch_norm: momentum=None (cumulative average) needs num_batches_tracked >= 1"
            )
        factor = 1.0 / int(num_batches_tracked.item())
    else:
        factor = float(momentum)
    count = stats["count"]
    unbiased = stats["var"] * (count / (count - 1))
    for running, batch in ((running_mean, stats["mean"]), (running_var, unbiased)):
        running.data *= 1.0 - factor
        running.data += factor * batch


# ---------------------------------------------------------------- layer norm


@composite("layer_norm")
def layer_norm(
    input: Tensor,
    normalized_shape: int | Sequence[int],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
    impl: str = "fused",
) -> Tensor:
    """Normalise over the trailing `normalized_shape` axes of each example (PyTorch semantics)."""
    op = "layer_norm"
    check_impl(op, impl)
    norm_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    _check_input(op, input, max(1, len(norm_shape)))
    if input.shape[input.ndim - len(norm_shape):] != norm_shape:
        raise ValueError(
            f"{op}: input of shape {input.shape} does not end with normalized_shape {norm_shape}"
        )
    _check_param(op, "weight", weight, norm_shape, input.dtype)
    _check_param(op, "bias", bias, norm_shape, input.dtype)
    eps = check_eps(op, eps)
    k = len(norm_shape)
    if impl == "fused":
        w = weight if weight is not None else Tensor(np.ones(norm_shape, input.dtype))
        b = bias if bias is not None else Tensor(np.zeros(norm_shape, input.dtype))
        return fused_kernel("layer_norm").apply(input, w, b, k=k, eps=eps)
    axes = tuple(range(input.ndim - k, input.ndim))
    count = int(np.prod(norm_shape, dtype=np.int64))
    centred = input - input.sum(axis=axes, keepdims=True) * (1.0 / count)
    var = (centred * centred).sum(axis=axes, keepdims=True) * (1.0 / count)
    xhat = centred * (var + eps) ** -0.5
    out = xhat if weight is None else xhat * weight
    return out if bias is None else out + bias


# ---------------------------------------------------------------- group norm and instance norm


def _check_groups(op: str, input: Tensor, num_groups: Any) -> int:
    if isinstance(num_groups, bool) or not isinstance(num_groups, int | np.integer) or num_groups < 1:
        raise ValueError(f"{op}: num_groups must be a positive int, got {num_groups!r}")
    channels = input.shape[1]
    if channels % num_groups:
        raise ValueError(f"{op}: num_groups={num_groups} must divide the input's {channels} channels "
                         f"(input of shape {input.shape})")
    return int(num_groups)


@composite("group_norm")
def group_norm(
    input: Tensor,
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
    *,
    impl: str = "fused",
) -> Tensor:
    """Normalise each example's channels in num_groups groups (PyTorch semantics), then scale per channel.

    Statistics per (example, group) over the group's channels and every spatial
    position; the biased variance normalises. weight and bias have one value
    per channel.
    """
    op = "group_norm"
    check_impl(op, impl)
    _check_input(op, input, 2)
    groups = _check_groups(op, input, num_groups)
    channels = input.shape[1]
    if input.numel() // groups == 1:  # PyTorch's check: one example whose groups hold one value each
        raise ValueError(f"{op}: expected more than 1 value per group, got input of shape {input.shape} "
                         f"with num_groups={groups}")
    _check_param(op, "weight", weight, (channels,), input.dtype)
    _check_param(op, "bias", bias, (channels,), input.dtype)
    eps = check_eps(op, eps)
    return _group_norm(input, groups, weight, bias, eps, impl, None)


def _group_norm(x: Tensor, groups: int, weight: Tensor | None, bias: Tensor | None, eps: float, impl: str,
                stats: dict | None) -> Tensor:
    """group_norm after its checks; `stats`, when a dict, receives each group's mean and biased var."""
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if x.numel() == 0:
        return _affine(x, weight, bias, shape)
    if impl == "fused":
        w = weight if weight is not None else Tensor(np.ones(x.shape[1], x.dtype))
        b = bias if bias is not None else Tensor(np.zeros(x.shape[1], x.dtype))
        return fused_kernel("group_norm").apply(x, w, b, groups=groups, eps=eps, stats=stats)
    n = x.shape[0]
    grouped = x.reshape(n, groups, -1)
    count = grouped.shape[2]
    mean = grouped.sum(axis=2, keepdims=True) * (1.0 / count)
    centred = grouped - mean
    var = (centred * centred).sum(axis=2, keepdims=True) * (1.0 / count)
    xhat = (centred * (var + eps) ** -0.5).reshape(*x.shape)
    mean.name, centred.name, var.name, xhat.name = "mu", "xc", "var", "xhat"
    if stats is not None:
        stats["mean"], stats["var"], stats["count"] = mean.data[..., 0], var.data[..., 0], count
    return _affine(xhat, weight, bias, shape)


@composite("instance_norm")
def instance_norm(
    input: Tensor,
    running_mean: Tensor | None = None,
    running_var: Tensor | None = None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
    *,
    impl: str = "fused",
) -> Tensor:
    """Normalise each (example, channel) over its spatial positions (PyTorch semantics).

    With use_input_stats (training), running stats, when given, are updated in
    place with the batch's average of the instance means and *unbiased*
    instance variances, `running = (1 - momentum) * running + momentum * batch`;
    without, the running stats normalise (then they are required).
    """
    op = "instance_norm"
    check_impl(op, impl)
    _check_input(op, input, 3)
    channels = input.shape[1]
    for arg, t in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                   ("running_var", running_var)):
        _check_param(op, arg, t, (channels,), input.dtype)
    eps = check_eps(op, eps)
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: pass both running_mean and running_var, or neither")
    shape = (1, channels) + (1,) * (input.ndim - 2)
    if not use_input_stats:
        if running_mean is None:
            raise ValueError(f"{op}: use_input_stats=False needs running_mean and running_var")
        inv_std = (running_var.detach() + eps) ** -0.5
        xhat = (input - running_mean.detach().reshape(*shape)) * inv_std.reshape(*shape)
        return _affine(xhat, weight, bias, shape)
    spatial = input.numel() // max(1, input.shape[0] * channels)
    if spatial == 1:
        raise ValueError(f"{op}: expected more than 1 spatial element per channel when using input "
                         f"statistics, got input of shape {input.shape}")
    stats: dict[str, Any] = {}
    out = _group_norm(input, channels, weight, bias, eps, impl, stats if running_mean is not None else None)
    if running_mean is not None and stats:
        count = stats["count"]
        batch = {"mean": stats["mean"].mean(axis=0), "var": stats["var"].mean(axis=0),
                 "count": count}
        _update_running(running_mean, running_var, batch, momentum, None)
    return out
