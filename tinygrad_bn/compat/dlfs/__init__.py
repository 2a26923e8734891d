"""Deep Learning from Scratch (ゼロから作るDeep Learning) chapters 5-7 on tinygrad_bn.

The modules mirror the book's repository, so its imports map one to one:

    from common.layers import *                 -> from tinygrad_bn.compat.dlfs.common.layers import *
    from common.functions import *              -> from tinygrad_bn.compat.dlfs.common.functions import *
    from common.gradient import numerical_gradient -> ...dlfs.common.gradient import numerical_gradient
    from common.util import smooth_curve        -> from tinygrad_bn.compat.dlfs.common.util import ...
    from common.optimizer import *              -> from tinygrad_bn.compat.dlfs.common.optimizer import *
    from common.trainer import Trainer          -> from tinygrad_bn.compat.dlfs.common.trainer import ...
    from common.multi_layer_net import MultiLayerNet -> ...dlfs.common.multi_layer_net import ...
    from common.multi_layer_net_extend import MultiLayerNetExtend -> ...dlfs.common.multi_layer_net_extend
    from dataset.mnist import load_mnist        -> from tinygrad_bn.compat.dlfs.dataset.mnist import ...
    from simple_convnet import SimpleConvNet    -> from tinygrad_bn.compat.dlfs.simple_convnet import ...

or everything at once: ``from tinygrad_bn.compat.dlfs import *``. Layers keep
the book's `forward` / `backward(dout)` interface, but every gradient comes
from tinygrad_bn's autograd; docs/compat.md lists where the book's semantics
differ from PyTorch's (BatchNormalization's momentum, variance, eps, 4-D input).
"""

from tinygrad_bn.compat.dlfs.common import functions as _functions
from tinygrad_bn.compat.dlfs.common import gradient as _gradient
from tinygrad_bn.compat.dlfs.common import layers as _layers
from tinygrad_bn.compat.dlfs.common import optimizer as _optimizer
from tinygrad_bn.compat.dlfs.common import util as _util
from tinygrad_bn.compat.dlfs.common.gradient import *
from tinygrad_bn.compat.dlfs.common.layers import *
from tinygrad_bn.compat.dlfs.common.multi_layer_net import MultiLayerNet
from tinygrad_bn.compat.dlfs.common.multi_layer_net_extend import MultiLayerNetExtend
from tinygrad_bn.compat.dlfs.common.optimizer import *
from tinygrad_bn.compat.dlfs.common.trainer import Trainer
from tinygrad_bn.compat.dlfs.common.util import *
from tinygrad_bn.compat.dlfs.dataset.mnist import download_mnist, init_mnist, load_mnist
from tinygrad_bn.compat.dlfs.simple_convnet import SimpleConvNet

__all__ = [
    "MultiLayerNet", "MultiLayerNetExtend", "Trainer", "SimpleConvNet", "load_mnist", "download_mnist",
    "init_mnist",
]
__all__ += sorted(set(_functions.__all__ + _gradient.__all__ + _layers.__all__ + _optimizer.__all__
                      + _util.__all__))
