"""Optimizers and learning-rate schedules with torch.optim's names, defaults and semantics.

    optimizer.py     Optimizer: parameter groups, state, state dicts, the hyper-parameter checks
    _inplace.py      the in-place array arithmetic the update rules are written with
    sgd.py           SGD (momentum, dampening, Nesterov)
    adam.py          Adam, AdamW
    adaptive.py      Adagrad, RMSprop
    lr_scheduler.py  StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, LambdaLR, LinearLR,
                     OneCycleLR, SequentialLR, ReduceLROnPlateau
    arrays.py        an optimizer's state as flat numpy arrays, for .npz checkpoints
"""

from tinygrad_bn.optim import lr_scheduler
from tinygrad_bn.optim.adam import Adam, AdamW
from tinygrad_bn.optim.adaptive import Adagrad, RMSprop
from tinygrad_bn.optim.arrays import load_state_from_arrays, state_to_arrays
from tinygrad_bn.optim.optimizer import Optimizer
from tinygrad_bn.optim.sgd import SGD

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "load_state_from_arrays",
           "lr_scheduler", "state_to_arrays"]
