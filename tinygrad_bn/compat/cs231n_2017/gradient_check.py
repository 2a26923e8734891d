"""The 2017 handout's `cs231n.gradient_check`: the same as `tinygrad_bn.compat.cs231n.gradient_check`."""

from tinygrad_bn.compat.cs231n import gradient_check as _current
from tinygrad_bn.compat.cs231n.gradient_check import *

__all__ = list(_current.__all__)
