"""Functions on Tensors with PyTorch's names and signatures (`torch.*` and `torch.nn.functional`).

    elementwise.py  arithmetic, math functions, clamp, where, comparisons
    reduce.py       sum, mean, var/std, max/min, amax/amin, prod, cumsum, logsumexp, norm
    shape.py        reshape/view, permute/transpose, expand, cat/stack, split/chunk, pad, ...
    indexing.py     getitem, gather, scatter_add, index_select, masked_fill, tril/triu, sort, topk
    linalg.py       matmul, mm, bmm, dot, outer, einsum
    activation.py   softmax, log_softmax, gelu, silu, leaky_relu, elu, softplus, ...
    loss.py         cross_entropy, nll_loss, mse_loss, l1_loss, binary_cross_entropy(_with_logits)
    linear.py       linear, dropout, embedding, one_hot, normalize
    norm.py         batch_norm, layer_norm, group_norm, instance_norm
    conv.py         conv1d, conv2d, unfold (im2col), fold (col2im)
    pool.py         max_pool2d, avg_pool2d, adaptive_avg_pool2d

Composites are built only from the primitives in `ops.py`, so their gradients are
whatever autograd derives from those and are differentiable to any order.
`impl="fused"` on linear, cross_entropy and the norm layers runs the fused kernel
registered under the op's name in `kernel_registry` instead.
"""

from tinygrad_bn.functional.activation import (
    celu,
    elu,
    gelu,
    hardtanh,
    leaky_relu,
    log_sigmoid,
    log_softmax,
    logsigmoid,
    mish,
    relu6,
    selu,
    silu,
    softmax,
    softplus,
)
from tinygrad_bn.functional.conv import conv1d, conv2d, fold, unfold
from tinygrad_bn.functional.elementwise import (
    abs,
    add,
    allclose,
    cast,
    ceil,
    clamp,
    clamp_max,
    clamp_min,
    clip,
    cos,
    div,
    eq,
    equal,
    erf,
    exp,
    expm1,
    floor,
    ge,
    gt,
    isclose,
    isfinite,
    isinf,
    isnan,
    le,
    log,
    log1p,
    log2,
    log10,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    lt,
    maximum,
    minimum,
    mul,
    ne,
    neg,
    pow,
    reciprocal,
    relu,
    round,
    rsqrt,
    sigmoid,
    sign,
    sin,
    sqrt,
    square,
    sub,
    tanh,
    trunc,
    where,
)
from tinygrad_bn.functional.indexing import (
    argsort,
    getitem,
    index_select,
    masked_fill,
    scatter_add,
    sort,
    take_along_dim,
    topk,
    tril,
    triu,
)
from tinygrad_bn.functional.linalg import bmm, dot, einsum, matmul, mm, outer
from tinygrad_bn.functional.linear import dropout, embedding, linear, normalize, one_hot
from tinygrad_bn.functional.loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    l1_loss,
    mse_loss,
    nll_loss,
)
from tinygrad_bn.functional.norm import batch_norm, group_norm, instance_norm, layer_norm
from tinygrad_bn.functional.pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from tinygrad_bn.functional.reduce import (
    ValuesIndices,
    all,
    amax,
    amin,
    any,
    argmax,
    argmin,
    cumsum,
    gather,
    logsumexp,
    max,
    mean,
    min,
    norm,
    prod,
    std,
    sum,
    var,
)
from tinygrad_bn.functional.shape import (
    broadcast_to,
    cat,
    chunk,
    concat,
    concatenate,
    expand,
    expand_as,
    flatten,
    flip,
    matrix_transpose,
    movedim,
    narrow,
    pad,
    permute,
    repeat,
    repeat_interleave,
    reshape,
    reversed_dims,
    split,
    squeeze,
    stack,
    swapaxes,
    swapdims,
    t,
    transpose,
    unbind,
    unflatten,
    unsqueeze,
    view,
    view_as,
)

__all__ = [name for name in dir() if not name.startswith("_")]
