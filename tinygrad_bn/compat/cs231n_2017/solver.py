"""The 2017 handout's `cs231n.solver`: the same as `tinygrad_bn.compat.cs231n.solver`."""

from tinygrad_bn.compat.cs231n import solver as _current
from tinygrad_bn.compat.cs231n.solver import *

__all__ = list(_current.__all__)
