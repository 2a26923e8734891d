"""Textbook APIs on the tinygrad_bn engine: CS231n assignment 2 and Deep Learning from Scratch.

    from tinygrad_bn.compat.cs231n.layers import *        # was: from cs231n.layers import *
    from tinygrad_bn.compat.dlfs import MultiLayerNetExtend, SGD, load_mnist

Inputs and outputs are numpy arrays, as in the books. Forward passes are built
from Tensors and every gradient comes from tinygrad_bn's autograd; the only
closed-form backward is the fused BatchNorm kernel behind
``cs231n.batchnorm_backward_alt``. docs/compat.md lists the import lines and the
conventions (momentum, running variance) that differ from ``nn.BatchNorm*``.

This file holds the few helpers both compat modules share.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_bn import functional as F
from tinygrad_bn.autograd import grad
from tinygrad_bn.tensor import Tensor

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _float_array(op: str, name: str, value: Any) -> np.ndarray:
    """`value` as a float32/float64 array; integer and bool data become float64, as numpy would."""
    array = np.asarray(value.data if isinstance(value, Tensor) else value)
    if array.dtype in _FLOATS:
        return array
    if array.dtype.kind in "biu":
        return array.astype(np.float64)
    raise TypeError(f"{op}: {name} must be a float32 or float64 array, got dtype {array.dtype}")


def _cast(t: Tensor, dtype: Any) -> Tensor:
    """t in float dtype `dtype` (differentiable; t itself if it already is)."""
    return t.to(np.dtype(dtype))


def _leaf(op: str, name: str, value: Any, copy: bool = True) -> Tensor:
    """A leaf Tensor that requires grad, holding a copy of `value` unless copy=False.

    The copy makes a cache a snapshot of its forward pass: the course's numerical
    checks perturb their arrays in place after calling forward.
    """
    array = _float_array(op, name, value)
    return Tensor(np.array(array, copy=True) if copy else array, requires_grad=True, name=name)


def _labels(op: str, y: Any, n: int, num_classes: int) -> np.ndarray:
    """Integer class labels of shape (n,) in [0, num_classes), or a ValueError saying what is wrong."""
    labels = np.asarray(y)
    if labels.shape != (n,):
        raise ValueError(f"{op}: expected {n} labels (shape ({n},)), got shape {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{op}: labels must be integers, got dtype {labels.dtype}")
    if n and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"{op}: labels must lie in 0..{num_classes - 1} for {num_classes} classes, "
            f"got values in {labels.min()}..{labels.max()}"
        )
    return labels


def _backprop(op: str, output: Tensor, inputs: Sequence[Tensor], dout: Any) -> tuple[np.ndarray, ...]:
    """Gradients (as fresh, writable arrays) of <dout, output> with respect to `inputs`.

    The graph is retained, so the same cache can be backpropagated more than once
    (the notebooks call batchnorm_backward and batchnorm_backward_alt on one cache).
    """
    dout = np.asarray(dout)
    if dout.shape != output.shape:
        raise ValueError(
            f"{op}: dout has shape {dout.shape}, expected the forward output's shape {output.shape}"
        )
    grads = grad(output, list(inputs), grad_outputs=[dout.astype(output.dtype, copy=False)],
                 retain_graph=True, allow_unused=True)
    # Copies: a gradient can be a read-only broadcast view or dout itself.
    return tuple(
        np.zeros_like(x.data) if g is None else np.array(g.data, copy=True)
        for g, x in zip(grads, inputs)
    )


def _batch_norm_train(x: Tensor, gamma: Tensor, beta: Tensor, eps: float, impl: str) -> Tensor:
    """Training-mode batch norm of x over every axis but 1 (biased variance), no running update.

    functional.batch_norm follows PyTorch and refuses one value per channel; the
    textbooks compute it (the centred input is 0, so the output is beta), so that
    case is composed here from primitives.
    """
    count = x.data.size // x.shape[1] if x.shape[1] else 0
    if count > 1:
        return F.batch_norm(x, None, None, gamma, beta, training=True, eps=eps, impl=impl)
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    centred = x - x  # the mean of one value is that value
    xhat = centred * (centred * centred + eps) ** -0.5
    return xhat * gamma.reshape(*shape) + beta.reshape(*shape)
