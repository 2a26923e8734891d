"""CS231n assignment 2 as handed out in 2017: the same modules as `tinygrad_bn.compat.cs231n`.

Two things mean something else in the 2017 handout, so it has its own import root:

- ``dropout_forward``'s ``dropout_param['p']`` is the probability of DROPPING a
  unit (keep where rand >= p, scale by 1 / (1 - p)); since 2019 it keeps one;
- ``FullyConnectedNet(..., dropout=0, use_batchnorm=False, ...)``: ``dropout`` is
  the drop probability (0 = no dropout); since 2019 ``dropout``/``dropout_keep_ratio``
  keep, and normalisation is ``normalization=``.

Everything else is the current package's, re-exported module for module:

    from cs231n.classifiers.fc_net import *
    -> from tinygrad_bn.compat.cs231n_2017.classifiers.fc_net import *
"""

from tinygrad_bn.compat.cs231n_2017 import data_utils as _data_utils
from tinygrad_bn.compat.cs231n_2017 import gradient_check as _gradient_check
from tinygrad_bn.compat.cs231n_2017 import optim as _optim
from tinygrad_bn.compat.cs231n_2017 import solver as _solver
from tinygrad_bn.compat.cs231n_2017 import vis_utils as _vis_utils
from tinygrad_bn.compat.cs231n_2017.classifiers import cnn as _cnn
from tinygrad_bn.compat.cs231n_2017.classifiers import fc_net as _fc_net
from tinygrad_bn.compat.cs231n_2017.classifiers.cnn import *
from tinygrad_bn.compat.cs231n_2017.classifiers.fc_net import *
from tinygrad_bn.compat.cs231n_2017.data_utils import *
from tinygrad_bn.compat.cs231n_2017.gradient_check import *
from tinygrad_bn.compat.cs231n_2017.optim import *
from tinygrad_bn.compat.cs231n_2017.solver import *
from tinygrad_bn.compat.cs231n_2017.vis_utils import *

__all__ = sorted(set(
    _cnn.__all__ + _fc_net.__all__ + _data_utils.__all__ + _gradient_check.__all__
    + _optim.__all__ + _solver.__all__ + _vis_utils.__all__
))
