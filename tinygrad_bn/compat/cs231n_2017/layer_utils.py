"""The 2017 handout's `cs231n.layer_utils`: today's sandwich layers, star-exporting the 2017 `layers`."""

from tinygrad_bn.compat.cs231n import layer_utils as _current
from tinygrad_bn.compat.cs231n.layer_utils import *
from tinygrad_bn.compat.cs231n_2017.layers import *

__all__ = list(_current.__all__)
