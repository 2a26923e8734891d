"""The 2017 handout's `cs231n.vis_utils`: the same as `tinygrad_bn.compat.cs231n.vis_utils`."""

from tinygrad_bn.compat.cs231n import vis_utils as _current
from tinygrad_bn.compat.cs231n.vis_utils import *

__all__ = list(_current.__all__)
