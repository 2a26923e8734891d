"""The book's ``common.multi_layer_net``: MultiLayerNet, a fully-connected net with weight decay.

Like the book's file, this module also exports `common.layers` (and with it
`common.functions`) and `numerical_gradient`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_bn.compat.dlfs.common import layers as _layers
from tinygrad_bn.compat.dlfs.common._net import LayeredNet
from tinygrad_bn.compat.dlfs.common.gradient import numerical_gradient
from tinygrad_bn.compat.dlfs.common.layers import *

__all__ = ["np", "MultiLayerNet", "numerical_gradient", *_layers.__all__]


class MultiLayerNet(LayeredNet):
    """{Affine - Activation} x hidden - Affine - SoftmaxWithLoss, with L2 weight decay.

    weight_init_std is a number, 'relu'/'he' (sqrt(2 / fan_in)) or
    'sigmoid'/'xavier' (sqrt(1 / fan_in)); the loss adds
    0.5 * weight_decay_lambda * sum(W**2) over every W. `params` holds W1, b1, ...
    (float64, shared with the layers).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size_list: list[int],
        output_size: int,
        activation: str = "relu",
        weight_init_std: float | str = "relu",
        weight_decay_lambda: float = 0,
    ):
        super().__init__(input_size, hidden_size_list, output_size, activation, weight_init_std,
                         weight_decay_lambda)

    def predict(self, x: np.ndarray) -> np.ndarray:  # type: ignore[override]
        """Class scores (before softmax)."""
        return super().predict(x)

    def loss(self, x: np.ndarray, t: np.ndarray) -> Any:  # type: ignore[override]
        """Cross-entropy plus 0.5 * weight_decay_lambda * sum(W**2) over every W."""
        return super().loss(x, t)
