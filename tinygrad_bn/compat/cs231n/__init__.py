"""CS231n assignment 2 ("Batch Normalization") on tinygrad_bn: swap the imports, keep the code.

    from cs231n.layers import *                  -> from tinygrad_bn.compat.cs231n.layers import *
    from cs231n.layer_utils import *             -> from tinygrad_bn.compat.cs231n.layer_utils import *
    from cs231n.classifiers.fc_net import *      -> from tinygrad_bn.compat.cs231n.fc_net import *
    from cs231n.solver import Solver             -> from tinygrad_bn.compat.cs231n.solver import Solver
    from cs231n.optim import *                   -> from tinygrad_bn.compat.cs231n.optim import *
    from cs231n.gradient_check import ...        -> from tinygrad_bn.compat.cs231n.gradient_check import ...
    from cs231n.data_utils import get_CIFAR10_data -> from tinygrad_bn.compat.cs231n.data_utils import ...

or everything at once: ``from tinygrad_bn.compat.cs231n import *``.
"""

from tinygrad_bn.compat.cs231n import (
    data_utils,
    fc_net,
    gradient_check,
    layer_utils,
    layers,
    optim,
    solver,
)
from tinygrad_bn.compat.cs231n.data_utils import *
from tinygrad_bn.compat.cs231n.fc_net import *
from tinygrad_bn.compat.cs231n.gradient_check import *
from tinygrad_bn.compat.cs231n.layer_utils import *
from tinygrad_bn.compat.cs231n.layers import *
from tinygrad_bn.compat.cs231n.optim import *
from tinygrad_bn.compat.cs231n.solver import *

__all__ = (
    data_utils.__all__ + fc_net.__all__ + gradient_check.__all__ + layer_utils.__all__
    + layers.__all__ + optim.__all__ + solver.__all__
)
