"""The 2017 handout's `cs231n.optim`: the same as `tinygrad_bn.compat.cs231n.optim`."""

from tinygrad_bn.compat.cs231n import optim as _current
from tinygrad_bn.compat.cs231n.optim import *

__all__ = list(_current.__all__)
