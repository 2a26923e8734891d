"""The 2017 handout's `cs231n.data_utils`: the same as `tinygrad_bn.compat.cs231n.data_utils`."""

from tinygrad_bn.compat.cs231n import data_utils as _current
from tinygrad_bn.compat.cs231n.data_utils import *

__all__ = list(_current.__all__)
