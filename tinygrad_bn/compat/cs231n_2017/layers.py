"""The 2017 handout's `cs231n.layers`: as today's, except that dropout_param['p'] DROPS a unit.

Train-mode dropout keeps a unit where np.random.rand(*x.shape) >= p and scales
it by 1 / (1 - p), so a seeded notebook drops the same units as the course's
reference; p = 0 keeps everything.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_bn.compat.cs231n import layers as _current
from tinygrad_bn.compat.cs231n.layers import *
from tinygrad_bn.compat.cs231n.layers import _dropout_layer

__all__ = list(_current.__all__)


def dropout_forward(x: np.ndarray, dropout_param: dict) -> tuple[np.ndarray, Any]:
    """Inverted dropout: train mode drops each unit with probability p, scales the rest by 1/(1-p)."""
    return _dropout_layer(x, dropout_param, p_keeps=False)
