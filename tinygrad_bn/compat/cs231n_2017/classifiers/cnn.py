"""The 2017 handout's `cs231n.classifiers.cnn`: ThreeLayerConvNet, star-exporting the 2017 layers."""

from tinygrad_bn.compat.cs231n.classifiers import cnn as _current
from tinygrad_bn.compat.cs231n_2017.layer_utils import *

__all__ = list(_current.__all__)
__all__ += [] if "ThreeLayerConvNet" in __all__ else ["ThreeLayerConvNet"]
