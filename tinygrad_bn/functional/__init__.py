"""Functions on Tensors: the primitives' front doors and the composites built from them.

    basic.py       arithmetic, elementwise, reductions, movement (the Tensor methods)
    activation.py  softmax, log_softmax, logsumexp
    loss.py        cross_entropy, mse_loss
    linear.py      linear, dropout
    norm.py        batch_norm, layer_norm

Composites are built only from the primitives in `ops.py`, so their gradients are
whatever autograd derives from those and are differentiable to any order.
`impl="fused"` on linear, cross_entropy and the norm layers runs the fused kernel
registered under the op's name in `kernels.registry` instead.
"""

from tinygrad_bn.functional.activation import log_softmax, logsumexp, softmax
from tinygrad_bn.functional.basic import (
    abs,
    add,
    argmax,
    astype,
    div,
    exp,
    expand,
    flatten,
    getitem,
    log,
    matmul,
    max,
    mean,
    min,
    mul,
    neg,
    pow,
    relu,
    reshape,
    rsqrt,
    sigmoid,
    sqrt,
    sub,
    sum,
    swapaxes,
    tanh,
    transpose,
    var,
    where,
)
from tinygrad_bn.functional.linear import dropout, linear
from tinygrad_bn.functional.loss import cross_entropy, mse_loss
from tinygrad_bn.functional.norm import batch_norm, layer_norm

__all__ = [
    "abs", "add", "argmax", "astype", "batch_norm", "cross_entropy", "div", "dropout", "exp",
    "expand", "flatten", "getitem", "layer_norm", "linear", "log", "log_softmax", "logsumexp",
    "matmul", "max", "mean", "min", "mse_loss", "mul", "neg", "pow", "relu", "reshape", "rsqrt",
    "sigmoid", "softmax", "sqrt", "sub", "sum", "swapaxes", "tanh", "transpose", "var", "where",
]
