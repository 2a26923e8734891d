"""CS231n's ThreeLayerConvNet: conv - relu - 2x2 max pool - affine - relu - affine - softmax.

Replaces ``from cs231n.classifiers.cnn import *``, which in the course also
star-imports `layers`, `fast_layers` and `layer_utils`; so does this module.
The convolution keeps the spatial size (stride 1, pad (filter_size - 1) // 2);
the pool halves it. Weights are weight_scale * randn in the order W1, W2, W3
(biases zero), as the course's reference draws them; `loss` is one graph and
one backward pass (convolution through `tinygrad_bn.compat._conv`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_bn.compat import _float_array
from tinygrad_bn.compat._conv import conv2d, max_pool2d
from tinygrad_bn.compat.cs231n import layer_utils as _layer_utils
from tinygrad_bn.compat.cs231n.classifiers._model import classifier_loss
from tinygrad_bn.compat.cs231n.layer_utils import *
from tinygrad_bn.compat.cs231n.layers import _affine
from tinygrad_bn.tensor import Tensor

__all__ = ["np", "ThreeLayerConvNet", *_layer_utils.__all__]


class ThreeLayerConvNet:
    """A three-layer convolutional network on inputs of shape (N, C, H, W)."""

    def __init__(
        self,
        input_dim: tuple[int, int, int] = (3, 32, 32),
        num_filters: int = 32,
        filter_size: int = 7,
        hidden_dim: int = 100,
        num_classes: int = 10,
        weight_scale: float = 1e-3,
        reg: float = 0.0,
        dtype: Any = np.float32,
    ):
        op = "ThreeLayerConvNet"
        if len(input_dim) != 3:
            raise ValueError(f"{op}: input_dim must be (C, H, W), got {input_dim!r}")
        sizes = [*input_dim, num_filters, filter_size, hidden_dim, num_classes]
        if any(isinstance(s, bool) or not isinstance(s, int | np.integer) or s < 1 for s in sizes):
            raise ValueError(f"{op}: sizes must be positive ints, got input_dim={input_dim}, "
                             f"num_filters={num_filters}, filter_size={filter_size}, "
                             f"hidden_dim={hidden_dim}, num_classes={num_classes}")
        if np.dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"{op}: dtype must be float32 or float64, got {np.dtype(dtype)}")
        c, h, w = input_dim
        self.reg = reg
        self.dtype = dtype
        self.params: dict[str, np.ndarray] = {
            "W1": weight_scale * np.random.randn(num_filters, c, filter_size, filter_size),
            "b1": np.zeros(num_filters),
            "W2": weight_scale * np.random.randn(num_filters * (h // 2) * (w // 2), hidden_dim),
            "b2": np.zeros(hidden_dim),
            "W3": weight_scale * np.random.randn(hidden_dim, num_classes),
            "b3": np.zeros(num_classes),
        }
        for k, v in self.params.items():
            self.params[k] = v.astype(dtype)

    def _forward(self, x: Tensor, p: dict[str, Tensor]) -> Tensor:
        filter_size = p["W1"].shape[2]
        h = conv2d(x, p["W1"], p["b1"], stride=1, pad=(filter_size - 1) // 2).relu()
        h = max_pool2d(h, 2, 2, stride=2)
        h = _affine(h, p["W2"], p["b2"]).relu()
        return _affine(h, p["W3"], p["b3"])

    def loss(self, X: np.ndarray, y: np.ndarray | None = None) -> Any:
        """Scores (N, C) when y is None, else (loss with 0.5 * reg * sum(W**2), grads)."""
        X = _float_array("ThreeLayerConvNet.loss", "X", X)
        if X.ndim != 4 or X.shape[1] != self.params["W1"].shape[1]:
            raise ValueError(
                f"ThreeLayerConvNet.loss: X must have shape (N, {self.params['W1'].shape[1]}, H, W), "
                f"got {X.shape}"
            )
        return classifier_loss("ThreeLayerConvNet.loss", self.params, self._forward, X, y, self.reg,
                               ("W1", "W2", "W3"))
