"""`tinygrad_bn.compat.cs231n.classifiers.fc_net` (the course's path) under its old name."""

from tinygrad_bn.compat.cs231n.classifiers import fc_net as _fc_net
from tinygrad_bn.compat.cs231n.classifiers.fc_net import *

__all__ = list(_fc_net.__all__)
