"""The 2017 handout's `cs231n.classifiers.cnn`: ThreeLayerConvNet, star-exporting the 2017 layers."""

from tinygrad_bn.compat.cs231n.classifiers.cnn import ThreeLayerConvNet
from tinygrad_bn.compat.cs231n_2017 import layer_utils as _layer_utils
from tinygrad_bn.compat.cs231n_2017.layer_utils import *

__all__ = ["ThreeLayerConvNet", *_layer_utils.__all__]
