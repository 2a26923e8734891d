"""The book's ``common.multi_layer_net_extend``: MultiLayerNetExtend (weight decay, dropout, batchnorm).

Like the book's file, this module also exports `common.layers` (and with it
`common.functions`) and `numerical_gradient`.
"""

from __future__ import annotations

import numpy as np

from tinygrad_bn.compat.dlfs.common import layers as _layers
from tinygrad_bn.compat.dlfs.common._net import LayeredNet
from tinygrad_bn.compat.dlfs.common.gradient import numerical_gradient
from tinygrad_bn.compat.dlfs.common.layers import *

# np too: the book's scripts use the numpy that this star-import brings along.
__all__ = ["np", "MultiLayerNetExtend", "numerical_gradient", *_layers.__all__]


class MultiLayerNetExtend(LayeredNet):
    """The book's fully-connected net with optional weight decay, dropout and batch normalisation.

    Layers: {Affine - [BatchNorm] - Activation - [Dropout]} x hidden - Affine - SoftmaxWithLoss.
    MultiLayerNetExtend(input_size, hidden_size_list, output_size, activation='relu',
    weight_init_std='relu', weight_decay_lambda=0, use_dropout=False,
    dropout_ration=0.5, use_batchnorm=False, *, impl='fused'). weight_init_std is
    a number, 'relu'/'he' (sqrt(2 / fan_in)) or 'sigmoid'/'xavier' (sqrt(1 / fan_in)).
    `params` holds W1, b1, gamma1, beta1, ... as float64 arrays that the layers
    share, so optimizers must update them in place (the book's do). `predict`,
    `loss` and their `train_flg` (dropout and batchnorm in training mode).
    """
