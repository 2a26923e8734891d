"""The 2017 handout's `cs231n.fast_layers`: the same as `tinygrad_bn.compat.cs231n.fast_layers`."""

from tinygrad_bn.compat.cs231n import fast_layers as _current
from tinygrad_bn.compat.cs231n.fast_layers import *

__all__ = list(_current.__all__)
