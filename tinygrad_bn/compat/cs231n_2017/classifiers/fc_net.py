"""The 2017 handout's `cs231n.classifiers.fc_net`: FullyConnectedNet(dropout=drop prob, use_batchnorm=).

Star-exports the 2017 `layers` and `layer_utils`, as the course's file does.
TwoLayerNet is today's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_bn.compat.cs231n.classifiers.fc_net import TwoLayerNet, _FullyConnectedNetBase
from tinygrad_bn.compat.cs231n_2017 import layer_utils as _layer_utils
from tinygrad_bn.compat.cs231n_2017.layer_utils import *

__all__ = ["TwoLayerNet", "FullyConnectedNet", *_layer_utils.__all__]


class FullyConnectedNet(_FullyConnectedNetBase):
    """The 2017 FullyConnectedNet: `dropout` is the probability of DROPPING a unit (0 = none).

    `use_batchnorm=True` adds batch normalisation after every hidden affine layer;
    `normalization='layernorm'` (not in the 2017 handout) is accepted too. `impl`
    picks the BatchNorm implementation ('fused' or 'composed').
    """

    _P_KEEPS = False  # dropout_param['p'] is the drop probability, as dropout_forward reads it

    def __init__(
        self,
        hidden_dims: Sequence[int],
        input_dim: int = 3 * 32 * 32,
        num_classes: int = 10,
        dropout: float = 0,
        use_batchnorm: bool = False,
        reg: float = 0.0,
        weight_scale: float = 1e-2,
        dtype: Any = np.float32,
        seed: int | None = None,
        *,
        normalization: str | None = None,
        impl: str = "fused",
    ):
        op = "FullyConnectedNet"
        if (isinstance(dropout, bool) or not isinstance(dropout, int | float | np.floating)
                or not 0 <= dropout < 1):
            raise ValueError(
                f"{op}: dropout is the probability of dropping a unit, in [0, 1); got {dropout!r}"
            )
        if use_batchnorm:
            if normalization not in ("batchnorm", None):
                raise ValueError(f"{op}: use_batchnorm=True contradicts normalization={normalization!r}")
            normalization = "batchnorm"
        self._setup(op, hidden_dims, input_dim, num_classes, float(dropout) if dropout else None,
                    normalization, reg, weight_scale, dtype, seed, impl)
