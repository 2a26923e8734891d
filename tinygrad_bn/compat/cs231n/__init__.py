"""CS231n assignment 2 on tinygrad_bn: swap the imports, keep the code.

The modules mirror the course's ``cs231n`` package, star-imports included:

    from cs231n.layers import *                  -> from tinygrad_bn.compat.cs231n.layers import *
    from cs231n.fast_layers import *             -> from tinygrad_bn.compat.cs231n.fast_layers import *
    from cs231n.layer_utils import *             -> from tinygrad_bn.compat.cs231n.layer_utils import *
    from cs231n.classifiers.fc_net import *      -> from tinygrad_bn.compat.cs231n.classifiers.fc_net import *
    from cs231n.classifiers.cnn import *         -> from tinygrad_bn.compat.cs231n.classifiers.cnn import *
    from cs231n.solver import Solver             -> from tinygrad_bn.compat.cs231n.solver import Solver
    from cs231n.optim import *                   -> from tinygrad_bn.compat.cs231n.optim import *
    from cs231n.gradient_check import ...        -> from tinygrad_bn.compat.cs231n.gradient_check import ...
    from cs231n.data_utils import get_CIFAR10_data -> from tinygrad_bn.compat.cs231n.data_utils import ...
    from cs231n.vis_utils import visualize_grid  -> from tinygrad_bn.compat.cs231n.vis_utils import ...

This package follows the 2019-and-later assignment (dropout keep probability,
``normalization=``); the 2017 handout (drop probability, ``use_batchnorm=``)
is `tinygrad_bn.compat.cs231n_2017`, module for module. Everything at once:
``from tinygrad_bn.compat.cs231n import *``.
"""

from tinygrad_bn.compat.cs231n import data_utils as _data_utils
from tinygrad_bn.compat.cs231n import gradient_check as _gradient_check
from tinygrad_bn.compat.cs231n import optim as _optim
from tinygrad_bn.compat.cs231n import solver as _solver
from tinygrad_bn.compat.cs231n import vis_utils as _vis_utils
from tinygrad_bn.compat.cs231n.classifiers import cnn as _cnn
from tinygrad_bn.compat.cs231n.classifiers import fc_net as _fc_net
from tinygrad_bn.compat.cs231n.classifiers.cnn import *
from tinygrad_bn.compat.cs231n.classifiers.fc_net import *
from tinygrad_bn.compat.cs231n.data_utils import *
from tinygrad_bn.compat.cs231n.gradient_check import *
from tinygrad_bn.compat.cs231n.optim import *
from tinygrad_bn.compat.cs231n.solver import *
from tinygrad_bn.compat.cs231n.vis_utils import *

__all__ = sorted(set(
    _cnn.__all__ + _fc_net.__all__ + _data_utils.__all__ + _gradient_check.__all__
    + _optim.__all__ + _solver.__all__ + _vis_utils.__all__
))
