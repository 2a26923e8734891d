"""The ops issue 11 added: analytic vs numerical gradients in float64, first and second order.

Every entry of CASES is a hypothesis strategy of (function of Tensors, input arrays)
over drawn shapes (0-d, size-1 dims and broadcasting where the op allows them) and
drawn arguments (dims, keepdim, modes, reductions). Inputs stay away from kinks
(|x| at 0, clamp at its bounds, ties of max/sort), where the numerical derivative
does not exist. Entries in ONCE_DIFFERENTIABLE skip gradgradcheck and say why.
The last sections test what a gradient check cannot see: values against numpy,
the zero gradient of padding rows, and the small fixes made for PyTorch conformance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_bn as tg
from tinygrad_bn import Tensor
from tinygrad_bn import functional as F
from tinygrad_bn.gradcheck import gradcheck, gradgradcheck, numerical_gradient
from tinygrad_bn.testing import strategies as tst

# Kinks, ties and thresholds are kept at least this far from every probe; the
# central difference steps by 1e-6, so it never straddles one.
MARGIN = 0.1

# ---------------------------------------------------------------- strategies


def arrays_away(shape, points=(0.0,), low=-3.0, high=3.0, margin=MARGIN):
    """float64 arrays whose elements keep `margin` from every point in `points`."""
    elements = st.floats(low, high, allow_nan=False, allow_infinity=False).filter(
        lambda v: all(abs(v - p) >= margin for p in points))
    return hnp.arrays("float64", shape, elements=elements)


def unary(fn, shape=None, **array_options):
    """(fn, [array]) over 0-d to 3-d shapes (size-1 dims included)."""
    return tst.arrays(tst.shapes(0, 3) if shape is None else shape, **array_options).map(lambda a: (fn, [a]))


def unary_away(fn, points=(0.0,), low=-3.0, high=3.0):
    return arrays_away(tst.shapes(0, 3), points, low, high).map(lambda a: (fn, [a]))


@st.composite
def binary_broadcast(draw, fn, apart=False):
    """(fn, [a, b]) with shapes that broadcast; `apart` keeps a and b from being equal."""
    sa, sb = draw(tst.broadcastable_shapes())
    a, b = draw(tst.arrays(sa)), draw(tst.arrays(sb))
    if apart:
        assume(np.all(np.abs(np.subtract(a, b)) >= MARGIN))
    return fn, [a, b]


@st.composite
def dims_of(draw, a, several=True, allow_none=True):
    """A dim argument for `a`: None, one (maybe negative) dim, or a tuple of dims."""
    if a.ndim == 0:
        return draw(st.sampled_from(([None] if allow_none else []) + [0, -1]))
    choice = st.integers(-a.ndim, a.ndim - 1)
    if several:
        choice = choice | st.lists(st.integers(0, a.ndim - 1), min_size=1, max_size=a.ndim,
                                   unique=True).map(tuple)
    return draw(st.none() | choice if allow_none else choice)


@st.composite
def reduction(draw, method, min_side=1, distinct=False, away=None, several=True, allow_none=True, **kwargs):
    """x.method(dim=..., keepdim=..., **kwargs) over drawn shapes and dims."""
    shape = draw(tst.shapes(0, 3, min_side=min_side, max_side=3))
    if away is not None:
        a = draw(arrays_away(shape, away))
    else:
        a = draw(tst.arrays(shape, distinct=distinct))
    dim = draw(dims_of(a, several, allow_none))
    keepdim = draw(st.booleans())
    return (lambda x: getattr(x, method)(dim=dim, keepdim=keepdim, **kwargs)), [a]


@st.composite
def one_dim_cases(draw, make, min_dims=1, min_side=1, max_side=4):
    """make(a, dim) -> fn, over drawn shapes and one drawn dim."""
    a = draw(tst.arrays(tst.shapes(min_dims, 3, min_side=min_side, max_side=max_side)))
    dim = draw(st.integers(-max(a.ndim, 1), max(a.ndim, 1) - 1))  # a 0-d tensor takes 0 and -1
    return make(a, dim, draw), [a]


# ---------------------------------------------------------------- elementwise


@st.composite
def clamp_cases(draw):
    low, high = sorted(draw(st.lists(st.sampled_from([-1.5, -0.5, 0.0, 0.5, 1.5]), min_size=2, max_size=2,
                                     unique=True)))
    which = draw(st.sampled_from(["both", "min", "max"]))
    a = draw(arrays_away(tst.shapes(0, 3), (low, high)))
    kwargs = {"both": {"min": low, "max": high}, "min": {"min": low}, "max": {"max": high}}[which]
    return (lambda x: x.clamp(**kwargs)), [a]


@st.composite
def clamp_tensor_bounds(draw):
    # Tensor bounds broadcast against the input and get the gradient where they win.
    sx, slo = draw(tst.broadcastable_shapes())
    x, lo = draw(tst.arrays(sx)), draw(tst.arrays(slo, min_value=-3.0, max_value=0.0))
    assume(np.all(np.abs(np.subtract(x, lo)) >= MARGIN) and np.all(np.abs(x - 2.0) >= MARGIN))
    return (lambda x_, lo_: F.clamp(x_, min=lo_, max=2.0)), [x, lo]


ELEMENTWISE = {
    "maximum": binary_broadcast(F.maximum, apart=True),
    "minimum": binary_broadcast(F.minimum, apart=True),
    "clamp": clamp_cases(),
    "clamp with tensor bounds": clamp_tensor_bounds(),
    "abs": unary_away(F.abs),
    # sign is piecewise constant: times x its gradient must be exactly sign(x)
    "sign": unary_away(lambda x: x.sign() * x),
    "sin": unary(F.sin),
    "cos": unary(F.cos),
    "log1p": unary(F.log1p, min_value=-0.8),
    "expm1": unary(F.expm1),
    "erf": unary(F.erf),
    "log2": unary(F.log2, min_value=0.2),
    "log10": unary(F.log10, min_value=0.2),
    "reciprocal": unary_away(F.reciprocal, (0.0,), low=-3.0, high=3.0).filter(
        lambda case: np.all(np.abs(case[1][0]) >= 0.3)),
    "square": unary(F.square),
}


# ---------------------------------------------------------------- reductions


@st.composite
def prod_cases(draw):
    a = draw(tst.arrays(tst.shapes(0, 3, max_side=3), min_value=0.5, max_value=1.5))
    zeros = draw(st.integers(0, min(2, a.size)))  # no zero, one, or two: each a different gradient path
    flat = a.reshape(-1)
    for i in draw(st.lists(st.integers(0, a.size - 1), min_size=zeros, max_size=zeros, unique=True)):
        flat[i] = 0.0
    dim = draw(st.none() | st.integers(-max(a.ndim, 1), max(a.ndim, 1) - 1)) if a.ndim else None
    keepdim = draw(st.booleans())
    return (lambda x: x.prod(dim, keepdim=keepdim)), [a]


@st.composite
def std_cases(draw):
    # distinct values: sqrt has an infinite slope where the variance is 0
    a = draw(tst.arrays(tst.shapes(1, 3, min_side=2, max_side=3), distinct=True))
    dim = draw(dims_of(a))
    correction = draw(st.sampled_from([0, 1]))
    keepdim = draw(st.booleans())
    return (lambda x: x.std(dim=dim, correction=correction, keepdim=keepdim)), [a]


@st.composite
def norm_cases(draw):
    p = draw(st.sampled_from([2, 1, math.inf, 3, "fro"]))
    shape = draw(tst.shapes(0, 3, max_side=3))
    # p=1 and p=inf go through |x| (kink at 0); inf through a max (ties)
    if p == math.inf:  # |x| distinct too: x and -x would tie
        a = draw(tst.arrays(shape, distinct=True).filter(
            lambda a: np.all(np.abs(a) >= MARGIN) and len(np.unique(np.round(np.abs(a), 2))) == a.size))
    else:
        a = draw(arrays_away(shape))
    dim = draw(dims_of(a)) if p != "fro" else draw(st.none() | st.just(tuple(range(a.ndim))))
    keepdim = draw(st.booleans())
    return (lambda x: x.norm(p, dim=dim, keepdim=keepdim)), [a]


@st.composite
def max_min_dim_cases(draw, method):
    a = draw(tst.arrays(tst.shapes(0, 3, max_side=3), distinct=True))
    dim = draw(st.integers(-max(a.ndim, 1), max(a.ndim, 1) - 1))
    keepdim = draw(st.booleans())
    return (lambda x: getattr(x, method)(dim, keepdim=keepdim).values), [a]


REDUCTIONS = {
    "prod (zeros included)": prod_cases(),
    "cumsum": one_dim_cases(lambda a, dim, draw: (lambda x: x.cumsum(dim)), min_dims=0),
    "std": std_cases(),
    "norm": norm_cases(),
    "logsumexp": reduction("logsumexp", allow_none=False),
    "amax": reduction("amax", distinct=True),
    "amin": reduction("amin", distinct=True),
    "max(dim)": max_min_dim_cases("max"),
    "min(dim)": max_min_dim_cases("min"),
}


# ---------------------------------------------------------------- shape


@st.composite
def cat_stack_cases(draw, stack):
    shape = draw(tst.shapes(1 if not stack else 0, 3, max_side=3))
    n = draw(st.integers(1, 3))
    if stack:
        dim = draw(st.integers(-len(shape) - 1, len(shape)))
        return (lambda *xs: F.stack(list(xs), dim=dim)), [draw(tst.arrays(shape)) for _ in range(n)]
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    sizes = draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    d = dim % len(shape)
    arrays = [draw(tst.arrays(shape[:d] + (k,) + shape[d + 1:])) for k in sizes]
    return (lambda *xs: F.cat(list(xs), dim=dim)), arrays


def _split(a, dim, draw):
    size = a.shape[dim]
    if draw(st.booleans()):
        step = draw(st.integers(1, size))
        return lambda x: x.split(step, dim=dim)
    cut = draw(st.integers(0, size))
    return lambda x: x.split([cut, size - cut], dim=dim)


def _chunk(a, dim, draw):
    chunks = draw(st.integers(1, 4))
    return lambda x: x.chunk(chunks, dim)


def _narrow(a, dim, draw):
    size = a.shape[dim]
    start = draw(st.integers(0, size - 1))
    length = draw(st.integers(0, size - start))
    return lambda x: x.narrow(dim, start, length)


@st.composite
def squeeze_cases(draw):
    shape = draw(tst.shapes(0, 4, max_side=2))
    a = draw(tst.arrays(shape))
    if draw(st.booleans()) or a.ndim == 0:
        return (lambda x: x.squeeze()), [a]
    dim = draw(st.integers(-a.ndim, a.ndim - 1))
    return (lambda x: x.squeeze(dim).unsqueeze(dim)), [a]


@st.composite
def flatten_cases(draw):
    a = draw(tst.arrays(tst.shapes(0, 4, max_side=3)))
    if a.ndim < 2:
        return (lambda x: x.flatten()), [a]
    start = draw(st.integers(0, a.ndim - 1))
    end = draw(st.integers(start, a.ndim - 1))
    shape = a.shape
    # unflatten the merged dim back into its sizes: the round trip must be the identity
    return (lambda x: x.flatten(start, end).unflatten(start, shape[start:end + 1]) * 2.0), [a]


@st.composite
def repeat_cases(draw):
    a = draw(tst.arrays(tst.shapes(0, 2, max_side=3)))
    extra = draw(st.integers(0, 1))
    repeats = draw(st.lists(st.integers(1, 3), min_size=a.ndim + extra, max_size=a.ndim + extra))
    return (lambda x: x.repeat(*repeats)), [a]


@st.composite
def repeat_interleave_cases(draw):
    a = draw(tst.arrays(tst.shapes(0, 3, max_side=3)))
    if a.ndim == 0 or draw(st.booleans()):
        count = draw(st.integers(0, 3))
        return (lambda x: x.repeat_interleave(count)), [a]  # dim=None: flattened first
    dim = draw(st.integers(-a.ndim, a.ndim - 1))
    counts = draw(st.lists(st.integers(0, 3), min_size=a.shape[dim], max_size=a.shape[dim]))
    return (lambda x: x.repeat_interleave(counts, dim=dim)), [a]


@st.composite
def expand_cases(draw):
    small, big = draw(tst.broadcastable_shapes())
    target = np.broadcast_shapes(small, big)
    lead = len(target) - len(small)
    # -1 keeps an existing dim's size, as in PyTorch
    sizes = [s if i < lead or draw(st.booleans()) else -1 for i, s in enumerate(target)]
    return (lambda x: x.expand(*sizes)), [draw(tst.arrays(small))]


@st.composite
def movedim_cases(draw):
    a = draw(tst.arrays(tst.shapes(1, 4, max_side=3)))
    src, dst = draw(st.integers(-a.ndim, a.ndim - 1)), draw(st.integers(-a.ndim, a.ndim - 1))
    return (lambda x: x.movedim(src, dst)), [a]


@st.composite
def pad_cases(draw):
    mode = draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
    a = draw(tst.arrays(tst.shapes(1, 3, min_side=2 if mode == "reflect" else 1, max_side=4)))
    n_dims = draw(st.integers(1, a.ndim))
    pads = []
    for n in reversed(a.shape[a.ndim - n_dims:]):  # the last dim's pads come first
        if mode == "constant":  # negative pads crop
            low = draw(st.integers(-(n - 1) // 2, 2))
            high = draw(st.integers(-(n - 1 + min(low, 0)) // 2, 2))
        else:
            limit = n - 1 if mode == "reflect" else 2
            low, high = draw(st.integers(0, limit)), draw(st.integers(0, limit))
        pads += [low, high]
    value = draw(st.sampled_from([0.0, -1.5])) if mode == "constant" else None
    return (lambda x: F.pad(x, pads, mode=mode, value=value)), [a]


SHAPES = {
    "cat": cat_stack_cases(stack=False),
    "stack": cat_stack_cases(stack=True),
    "split": one_dim_cases(_split),
    "chunk": one_dim_cases(_chunk),
    "unbind": one_dim_cases(lambda a, dim, draw: (lambda x: x.unbind(dim))),
    "flip": one_dim_cases(lambda a, dim, draw: (lambda x: x.flip(dim))),
    "narrow": one_dim_cases(_narrow),
    "squeeze/unsqueeze": squeeze_cases(),
    "flatten/unflatten": flatten_cases(),
    "repeat": repeat_cases(),
    "repeat_interleave": repeat_interleave_cases(),
    "expand (-1)": expand_cases(),
    "movedim": movedim_cases(),
    "pad": pad_cases(),
}


# ---------------------------------------------------------------- indexing


@st.composite
def gather_cases(draw, take_along=False):
    a = draw(tst.arrays(tst.shapes(1, 3, max_side=3)))
    dim = draw(st.integers(-a.ndim, a.ndim - 1))
    shape = list(a.shape)
    shape[dim] = draw(st.integers(1, 4))  # repeated indices are likely: their gradients add
    index = draw(hnp.arrays(np.int64, tuple(shape), elements=st.integers(0, a.shape[dim] - 1)))
    if take_along:
        return (lambda x: F.take_along_dim(x, index, dim)), [a]
    return (lambda x: x.gather(dim, index)), [a]


@st.composite
def scatter_add_cases(draw):
    a = draw(tst.arrays(tst.shapes(1, 3, max_side=3)))
    dim = draw(st.integers(-a.ndim, a.ndim - 1))
    shape = [draw(st.integers(1, n)) for n in a.shape]
    shape[dim] = draw(st.integers(1, 4))
    index = draw(hnp.arrays(np.int64, tuple(shape), elements=st.integers(0, a.shape[dim] - 1)))
    src = draw(tst.arrays(tuple(shape)))
    return (lambda x, s: x.scatter_add(dim, index, s)), [a, src]


@st.composite
def index_select_cases(draw):
    a = draw(tst.arrays(tst.shapes(1, 3, max_side=3)))
    dim = draw(st.integers(-a.ndim, a.ndim - 1))
    index = np.array(draw(st.lists(st.integers(0, a.shape[dim] - 1), min_size=0, max_size=4)), dtype=np.int64)
    return (lambda x: x.index_select(dim, index)), [a]


@st.composite
def masked_fill_cases(draw):
    sa, sm = draw(tst.broadcastable_shapes())
    shape = np.broadcast_shapes(sa, sm)
    a = draw(tst.arrays(shape))
    mask = draw(hnp.arrays(np.bool_, sm))
    return (lambda x: x.masked_fill(mask, -2.5)), [a]


@st.composite
def sort_cases(draw, topk=False):
    a = draw(tst.arrays(tst.shapes(0, 3, max_side=3), distinct=True))
    dim = draw(st.integers(-max(a.ndim, 1), max(a.ndim, 1) - 1))
    flag = draw(st.booleans())
    if topk:
        k = draw(st.integers(0, a.shape[dim] if a.ndim else 1))
        return (lambda x: x.topk(k, dim=dim, largest=flag).values), [a]
    return (lambda x: x.sort(dim=dim, descending=flag).values), [a]


INDEXING = {
    "gather": gather_cases(),
    "take_along_dim": gather_cases(take_along=True),
    "scatter_add": scatter_add_cases(),
    "index_select": index_select_cases(),
    "masked_fill": masked_fill_cases(),
    "sort": sort_cases(),
    "topk": sort_cases(topk=True),
    "tril/triu": tst.arrays(tst.shapes(2, 3, max_side=4)).map(
        lambda a: ((lambda x: x.tril(-1) * 2.0 + x.triu(1) - x.triu()), [a])),
}


# ---------------------------------------------------------------- products and einsum


@st.composite
def product_cases(draw, kind):
    n, m, p, b = (draw(st.integers(1, 3)) for _ in range(4))
    if kind == "mm":
        return F.mm, [draw(tst.arrays((n, m))), draw(tst.arrays((m, p)))]
    if kind == "bmm":
        return F.bmm, [draw(tst.arrays((b, n, m))), draw(tst.arrays((b, m, p)))]
    if kind == "dot":
        return F.dot, [draw(tst.arrays((m,))), draw(tst.arrays((m,)))]
    return F.outer, [draw(tst.arrays((n,))), draw(tst.arrays((m,)))]


@st.composite
def einsum_cases(draw):
    i, j, k, b = (draw(st.integers(1, 3)) for _ in range(4))
    equation, shapes = draw(st.sampled_from([
        ("ij,jk->ik", [(i, j), (j, k)]),
        ("bij,bjk->bik", [(b, i, j), (b, j, k)]),
        ("ii->i", [(i, i)]),  # the diagonal
        ("ii", [(i, i)]),  # the trace (implicit output: nothing is left)
        ("ij->ji", [(i, j)]),
        ("ij,ij->", [(i, j), (i, j)]),
        ("i,j", [(i,), (j,)]),  # implicit output 'ij'
        ("ba,ca", [(b, i), (k, i)]),  # implicit output 'bc' (alphabetical)
        ("...ij,...jk->...ik", [(b, 2, i, j), (2, j, k)]),  # batch dims broadcast through '...'
        ("i...,i->...", [(i, b, j), (i,)]),
        ("ij,jk,kl->il", [(i, j), (j, k), (k, 2)]),
        ("iij->j", [(i, i, j)]),
    ]))
    return (lambda *xs: F.einsum(equation, *xs)), [draw(tst.arrays(s)) for s in shapes]


LINALG = {
    "mm": product_cases("mm"),
    "bmm": product_cases("bmm"),
    "dot": product_cases("dot"),
    "outer": product_cases("outer"),
    "einsum": einsum_cases(),
}


# ---------------------------------------------------------------- activations


@st.composite
def softplus_cases(draw):
    beta, threshold = draw(st.sampled_from([(1.0, 20.0), (2.0, 1.0), (0.5, 0.5)]))
    # beta * x > threshold switches to the identity (a jump in value): stay away from it
    a = draw(arrays_away(tst.shapes(0, 3), (threshold / beta,), low=-4.0, high=4.0))
    return (lambda x: F.softplus(x, beta=beta, threshold=threshold)), [a]


ACTIVATIONS = {
    "leaky_relu": unary_away(lambda x: F.leaky_relu(x, 0.2)),
    "elu": unary_away(lambda x: F.elu(x, alpha=0.7)),
    "celu": unary_away(lambda x: F.celu(x, alpha=1.5)),
    "selu": unary_away(F.selu),
    "gelu": unary(F.gelu),
    "gelu tanh": unary(lambda x: F.gelu(x, approximate="tanh")),
    "silu": unary(F.silu),
    "mish": unary(F.mish),
    "softplus": softplus_cases(),
    "hardtanh": unary_away(lambda x: F.hardtanh(x, -0.5, 1.0), (-0.5, 1.0)),
    "relu6": unary_away(F.relu6, (0.0, 6.0), low=-3.0, high=8.0),
    "log_sigmoid": unary(F.log_sigmoid, min_value=-30.0, max_value=30.0),
}


# ---------------------------------------------------------------- losses


@st.composite
def class_inputs(draw, spatial_ok=True):
    """(logits (N, C) or (N, C, d) or (C,), int labels of the matching shape, C)."""
    c = draw(st.integers(1, 4))
    layout = draw(st.sampled_from(["NC", "NCd", "C"] if spatial_ok else ["NC"]))
    n, d = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    shape, label_shape = {"NC": ((n, c), (n,)), "NCd": ((n, c, d), (n, d)), "C": ((c,), ())}[layout]
    logits = draw(tst.arrays(shape))
    labels = draw(hnp.arrays(np.int64, label_shape, elements=st.integers(0, c - 1)))
    return logits, labels, c


@st.composite
def nll_cases(draw):
    logits, labels, c = draw(class_inputs())
    weight = draw(st.none() | tst.arrays((c,), min_value=0.2, max_value=2.0))
    ignore = draw(st.sampled_from([-100, 0]))
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    if reduction == "mean" and np.all(labels == ignore):
        ignore = -100  # the mean over no counted label is 0/0 (nan), in PyTorch too
    w = None if weight is None else Tensor(weight)
    return (lambda x: F.nll_loss(x, labels, weight=w, ignore_index=ignore, reduction=reduction)), [logits]


@st.composite
def cross_entropy_cases(draw):
    logits, labels, c = draw(class_inputs())
    weight = draw(st.none() | tst.arrays((c,), min_value=0.2, max_value=2.0))
    smoothing = draw(st.sampled_from([0.0, 0.1, 0.5]))
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    w = None if weight is None else Tensor(weight)
    if draw(st.booleans()):  # class probabilities: the softmax of drawn scores along dim C
        scores = draw(tst.arrays(logits.shape))
        target = np.exp(scores) / np.exp(scores).sum(axis=1 if scores.ndim > 1 else 0, keepdims=True)
        return (lambda x: F.cross_entropy(x, target, weight=w, reduction=reduction,
                                          label_smoothing=smoothing)), [logits]
    ignore = draw(st.sampled_from([-100, 0]))
    if reduction == "mean" and np.all(labels == ignore):
        ignore = -100
    return (lambda x: F.cross_entropy(x, labels, weight=w, ignore_index=ignore, reduction=reduction,
                                      label_smoothing=smoothing)), [logits]


@st.composite
def regression_cases(draw, fn):
    sp, st_ = draw(tst.broadcastable_shapes())
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    pred, target = draw(tst.arrays(sp)), draw(tst.arrays(st_))
    if fn is F.l1_loss:  # |pred - target| has a kink where they meet
        assume(np.all(np.abs(np.subtract(pred, target)) >= MARGIN))
    # both differentiated: PyTorch's target is differentiable too
    return (lambda p, t: fn(p, t, reduction=reduction)), [pred, target]


@st.composite
def bce_cases(draw, logits):
    shape = draw(tst.shapes(0, 3, max_side=3))
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    x = draw(tst.arrays(shape, min_value=-6.0, max_value=6.0) if logits else
             tst.arrays(shape, min_value=0.05, max_value=0.95))
    target = draw(tst.arrays(shape, min_value=0.0, max_value=1.0))
    weight = draw(st.none() | tst.arrays(shape[-1:] if shape else (), min_value=0.2, max_value=2.0))
    if not logits:
        return (lambda x_: F.binary_cross_entropy(x_, target, weight=weight, reduction=reduction)), [x]
    pos_weight = draw(st.none() | tst.arrays(shape[-1:] if shape else (), min_value=0.2, max_value=3.0))
    return (lambda x_: F.binary_cross_entropy_with_logits(x_, target, weight=weight, reduction=reduction,
                                                          pos_weight=pos_weight)), [x]


LOSSES = {
    "nll_loss": nll_cases(),
    "cross_entropy": cross_entropy_cases(),
    "mse_loss": regression_cases(F.mse_loss),
    "l1_loss": regression_cases(F.l1_loss),
    "binary_cross_entropy": bce_cases(logits=False),
    "binary_cross_entropy_with_logits": bce_cases(logits=True),
}


# ---------------------------------------------------------------- linear-layer helpers


@st.composite
def embedding_cases(draw):
    n, dim = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    index = draw(hnp.arrays(np.int64, tst.shapes(0, 2, max_side=3), elements=st.integers(0, n - 1)))
    return (lambda w: F.embedding(index, w)), [draw(tst.arrays((n, dim)))]


@st.composite
def normalize_cases(draw):
    p = draw(st.sampled_from([2.0, 1.0, 3.0]))
    a = draw(arrays_away(tst.shapes(1, 3, max_side=3)))
    dim = draw(st.integers(-a.ndim, a.ndim - 1))
    return (lambda x: F.normalize(x, p=p, dim=dim)), [a]


@st.composite
def dropout_cases(draw):
    a = draw(tst.arrays(tst.shapes(0, 3)))
    p = draw(st.sampled_from([0.0, 0.3, 0.7]))
    seed = draw(st.integers(0, 2**16))
    # A fresh generator with the same seed on every call: every probe sees the same mask.
    return (lambda x: F.dropout(x, p, training=True, generator=tg.Generator(seed))), [a]


LAYER_HELPERS = {
    "embedding": embedding_cases(),
    "normalize": normalize_cases(),
    "dropout with a generator": dropout_cases(),
}

# ---------------------------------------------------------------- the checks

CASES = {**ELEMENTWISE, **REDUCTIONS, **SHAPES, **INDEXING, **LINALG, **ACTIVATIONS, **LOSSES,
         **LAYER_HELPERS}

# Differentiable once but not twice at the probes? None of these ops: every kink is
# kept away from, and away from a kink each op is smooth.
ONCE_DIFFERENTIABLE: dict[str, str] = {}


@pytest.mark.parametrize("name", sorted(CASES))
@given(data=st.data())
def test_gradient_matches_numerical(name, data):
    fn, arrays = data.draw(CASES[name])
    gradcheck(fn, [Tensor(a, requires_grad=True) for a in arrays])


@pytest.mark.parametrize("name", sorted(set(CASES) - set(ONCE_DIFFERENTIABLE)))
@given(data=st.data())
def test_second_derivative_matches_numerical(name, data):
    fn, arrays = data.draw(CASES[name])
    gradgradcheck(fn, [Tensor(a, requires_grad=True) for a in arrays])


# ---------------------------------------------------------------- values against numpy
# A gradient check cannot see a wrong forward (the wrong function's gradient is still
# consistent), so each op's values are compared with numpy's own function here.

_RNG = np.random.default_rng(11)
_A = _RNG.uniform(-2.0, 2.0, (3, 4, 5))
_M = _RNG.uniform(-2.0, 2.0, (4, 4))
_IDX = _RNG.integers(0, 4, (3, 2, 5))


def _erf(a):
    return np.vectorize(math.erf)(a)


VALUES = {
    "pad constant": (lambda x: F.pad(x, (1, 2, -1, 0), value=0.5),
                     lambda a: np.pad(a[:, 1:, :], ((0, 0), (0, 0), (1, 2)), constant_values=0.5)),
    "pad reflect": (lambda x: F.pad(x, (2, 1, 1, 3), mode="reflect"),
                    lambda a: np.pad(a, ((0, 0), (1, 3), (2, 1)), mode="reflect")),
    "pad replicate": (lambda x: F.pad(x, (2, 1), mode="replicate"),
                      lambda a: np.pad(a, ((0, 0), (0, 0), (2, 1)), mode="edge")),
    "pad circular": (lambda x: F.pad(x, (3, 1, 0, 2), mode="circular"),
                     lambda a: np.pad(a, ((0, 0), (0, 2), (3, 1)), mode="wrap")),
    "einsum bij,bkj->bik": (lambda x: F.einsum("bij,bkj->bik", x, x),
                            lambda a: np.einsum("bij,bkj->bik", a, a)),
    "einsum ...j,...j": (lambda x: F.einsum("...j,...j", x, x), lambda a: np.einsum("...j,...j", a, a)),
    "einsum iij->j": (lambda x: F.einsum("iij->j", x[:, :3]), lambda a: np.einsum("iij->j", a[:, :3])),
    "cumsum": (lambda x: x.cumsum(1), lambda a: np.cumsum(a, 1)),
    "prod": (lambda x: x.prod(2, keepdim=True), lambda a: np.prod(a, 2, keepdims=True)),
    "norm 3": (lambda x: x.norm(3, dim=(0, 2)), lambda a: np.sum(np.abs(a) ** 3, axis=(0, 2)) ** (1 / 3)),
    "norm inf": (lambda x: x.norm(math.inf, dim=1), lambda a: np.max(np.abs(a), axis=1)),
    "logsumexp": (lambda x: x.logsumexp(dim=(0, 1)), lambda a: np.log(np.sum(np.exp(a), axis=(0, 1)))),
    "std": (lambda x: x.std(dim=2, correction=2), lambda a: np.std(a, axis=2, ddof=2)),
    "flip": (lambda x: x.flip((0, 2)), lambda a: np.flip(a, (0, 2))),
    "repeat": (lambda x: x.repeat(2, 1, 1, 3), lambda a: np.tile(a, (2, 1, 1, 3))),
    "repeat_interleave": (lambda x: x.repeat_interleave([1, 0, 2, 1], dim=1),
                          lambda a: np.repeat(a, [1, 0, 2, 1], 1)),
    "movedim": (lambda x: x.movedim(2, 0), lambda a: np.moveaxis(a, 2, 0)),
    "narrow": (lambda x: x.narrow(-1, 1, 3), lambda a: a[..., 1:4]),
    "chunk": (lambda x: F.stack(list(x.chunk(2, 1)[:1])), lambda a: a[None, :, :2]),
    "sort descending": (lambda x: x.sort(1, descending=True).values, lambda a: -np.sort(-a, axis=1)),
    "topk smallest": (lambda x: x.topk(2, dim=2, largest=False).values,
                      lambda a: np.sort(a, axis=2)[..., :2]),
    "gather": (lambda x: x.gather(1, _IDX[:, :2]), lambda a: np.take_along_axis(a, _IDX[:, :2], 1)),
    "scatter_add": (lambda x: x.scatter_add(1, _IDX[:, :2] % 4, x[:, :2]),
                    lambda a: _scatter_add_reference(a, _IDX[:, :2] % 4, a[:, :2])),
    "tril and triu": (lambda x: x.tril(1) + x.triu(2) * 10, lambda a: np.tril(a, 1) + np.triu(a, 2) * 10),
    "amin": (lambda x: x.amin((0, 2)), lambda a: np.min(a, axis=(0, 2))),
    "erf": (F.erf, _erf),
    "gelu": (F.gelu, lambda a: a * 0.5 * (1 + _erf(a / math.sqrt(2)))),
    "gelu tanh": (lambda x: F.gelu(x, approximate="tanh"),
                  lambda a: 0.5 * a * (1 + np.tanh(math.sqrt(2 / math.pi) * (a + 0.044715 * a ** 3)))),
    "softplus beta": (lambda x: F.softplus(x, beta=3.0), lambda a: np.logaddexp(0, 3 * a) / 3),
    "log_sigmoid": (lambda x: F.log_sigmoid(x * 30), lambda a: -np.logaddexp(0, -30 * a)),
    "elu": (lambda x: F.elu(x, 0.5), lambda a: np.where(a > 0, a, 0.5 * np.expm1(a))),
    "selu": (F.selu,
             lambda a: 1.0507009873554804934 * np.where(a > 0, a, 1.6732632423543772848 * np.expm1(a))),
    "mish": (F.mish, lambda a: a * np.tanh(np.logaddexp(0, a))),
    "log2 and log10": (lambda x: x.abs().log2() + x.abs().log10(),
                       lambda a: np.log2(abs(a)) + np.log10(abs(a))),
    "bce with logits, pos_weight": (
        lambda x: F.binary_cross_entropy_with_logits(x * 20, (x > 0).double() * 0.8, reduction="none",
                                                     pos_weight=Tensor(np.full(5, 2.0))),
        lambda a: -(2.0 * (a > 0) * 0.8 * -np.logaddexp(0, -20 * a)
                    + (1 - (a > 0) * 0.8) * -np.logaddexp(0, 20 * a))),
}


def _scatter_add_reference(a, index, src):
    out = a.copy()
    for i, j, k in np.ndindex(*index.shape):
        out[i, index[i, j, k], k] += src[i, j, k]
    return out


@pytest.mark.parametrize("name", sorted(VALUES))
def test_values_match_numpy(name):
    ours, reference = VALUES[name]
    np.testing.assert_allclose(ours(Tensor(_A)).data, reference(_A), rtol=1e-12, atol=1e-12)


def test_einsum_matches_numpy_on_the_equations_of_the_gradient_tests():
    for equation, shapes in [("ij,jk->ik", [(2, 3), (3, 4)]), ("ii->i", [(3, 3)]), ("ii", [(3, 3)]),
                             ("ba,ca", [(2, 3), (4, 3)]), ("i...,i->...", [(2, 3, 4), (2,)]),
                             ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]), ("...ij,...jk->...ik",
                                                                         [(2, 2, 3, 4), (2, 4, 5)])]:
        arrays = [_RNG.standard_normal(s) for s in shapes]
        got = F.einsum(equation, *[Tensor(a) for a in arrays]).data
        np.testing.assert_allclose(got, np.einsum(equation, *arrays), rtol=1e-12, atol=1e-12,
                                   err_msg=equation)


def test_one_hot_is_rows_of_the_identity_as_int64():
    labels = np.array([[2, 0], [1, 2]])
    out = F.one_hot(Tensor(labels), num_classes=4)
    assert out.dtype == np.int64 and not out.requires_grad
    np.testing.assert_array_equal(out.data, np.eye(4, dtype=np.int64)[labels])
    assert F.one_hot(Tensor(labels)).shape == (2, 2, 3)  # num_classes=-1: max label + 1


def test_embedding_padding_row_gets_no_gradient_and_the_others_match_numerical():
    index = np.array([[0, 2, 1], [2, 2, 0]])
    weight = _RNG.standard_normal((4, 3))
    w = Tensor(weight.copy(), requires_grad=True)
    v = _RNG.standard_normal((2, 3, 3))
    out = F.embedding(index, w, padding_idx=2)
    np.testing.assert_array_equal(out.data, weight[index])  # the padding row's values are still read
    (out * Tensor(v)).sum().backward()
    numeric = numerical_gradient(lambda a: np.sum(a[index] * v), weight.copy())
    numeric[2] = 0.0  # PyTorch's rule: the padding row is never updated
    np.testing.assert_allclose(w.grad.data, numeric, rtol=1e-7, atol=1e-9)
    assert np.all(w.grad.data[2] == 0.0) and np.all(w.grad.data[3] == 0.0)


def test_max_and_min_with_a_dim_give_the_whole_gradient_to_the_index_they_return():
    x = Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]]), requires_grad=True)
    values, indices = x.max(1)
    np.testing.assert_array_equal(indices.data, [1, 0])  # the first of tied maxima, as numpy and PyTorch
    values.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


# ---------------------------------------------------------------- fixes made for PyTorch conformance


@pytest.mark.parametrize("expression", [
    lambda: Tensor(np.array([1, 2])) + 1.5,
    lambda: 1.5 - Tensor(np.array([1, 2])),
    lambda: Tensor(np.array([1, 2])) * Tensor(np.array([0.5, 2.0], dtype=np.float32)),
    lambda: Tensor(np.array([3, 4])) / Tensor(np.array([2, 8])),
    lambda: 2 / Tensor(np.array([3, 4])),
    lambda: Tensor(np.array([3, 4])) ** 0.5,
    lambda: F.where(np.array([True, False]), Tensor(np.array([1, 2])), 0.5),
])
def test_an_integer_operand_meeting_a_float_takes_the_float_dtype_not_numpys_float64(expression):
    # numpy widens int64 with float32 to float64; PyTorch keeps the float operand's dtype
    assert expression().dtype == np.float32


def test_augmented_assignment_updates_the_tensor_itself():
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (w * w).sum().backward()
    p = w
    with tg.no_grad():
        p -= 0.25 * p.grad
        p *= 2.0
    assert p is w  # Python would otherwise rebind p and leave the parameter as it was
    np.testing.assert_array_equal(w.data, [1.0, 2.0])  # [1 - 0.5, 2 - 1] * 2
    with pytest.raises(RuntimeError, match="leaf Tensor that requires grad"):
        w += 1.0
    y = w * 3.0
    y += w  # in a graph: rebased, differentiable
    y.sum().backward()
    np.testing.assert_array_equal(w.grad.data, [2.0 + 4.0, 4.0 + 4.0])  # the first backward's 2w, plus 4


@pytest.mark.parametrize("fn, slope", [
    (F.softplus, 0.5),  # sigmoid(0)
    (F.log_sigmoid, 0.5),  # 1 - sigmoid(0)
    (lambda x: F.binary_cross_entropy_with_logits(x, Tensor(np.array([0.25]))), 0.5 - 0.25),  # sigmoid(0) - t
    (F.relu6, 0.0),
    (lambda x: F.hardtanh(x + 1.0), 0.0),  # at the lower bound
    (lambda x: F.hardtanh(x - 1.0), 0.0),  # at the upper bound
    (lambda x: F.norm(x * 0.0 + x), 0.0),  # the norm of zeros: PyTorch's subgradient 0, not nan
    (lambda x: F.norm(x, 3), 0.0),
])
def test_slopes_exactly_at_zero_are_pytorchs(fn, slope):
    x = Tensor(np.array([0.0]), requires_grad=True)
    fn(x).sum().backward()
    np.testing.assert_allclose(x.grad.data, [slope], rtol=1e-15)


def test_normalize_of_a_zero_row_has_a_finite_gradient():
    x = Tensor(np.array([[0.0, 0.0], [3.0, 4.0]]), requires_grad=True)
    out = F.normalize(x, dim=1)
    np.testing.assert_allclose(out.data, [[0.0, 0.0], [0.6, 0.8]])
    out.sum().backward()
    assert np.all(np.isfinite(x.grad.data))
    np.testing.assert_allclose(x.grad.data[0], [1e12, 1e12])  # x / eps for a zero row: slope 1/eps


def test_cumsum_and_topk_accept_a_0d_tensor_as_pytorch_does():
    x = Tensor(np.array(1.5), requires_grad=True)
    assert x.cumsum(0).item() == 1.5 and x.cumsum(-1).shape == ()
    values, indices = x.topk(1)
    assert values.item() == 1.5 and indices.item() == 0


def test_rounding_keeps_the_graph_with_a_zero_gradient():
    x = Tensor(np.array([-1.5, -0.5, 0.5, 2.5, 2.7]), requires_grad=True)
    ops = {"floor": np.floor, "ceil": np.ceil, "round": np.round, "trunc": np.trunc}
    for name, reference in ops.items():
        out = getattr(x, name)()
        np.testing.assert_array_equal(out.data, reference(x.data), err_msg=name)
        assert out.requires_grad, name  # as in PyTorch: in the graph, with zero gradient
    np.testing.assert_array_equal(x.round().data, [-2.0, -0.0, 0.0, 2.0, 3.0])  # halves to even
    np.testing.assert_allclose(x.round(decimals=1).data, [-1.5, -0.5, 0.5, 2.5, 2.7])
    (x.floor() + x.ceil() * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.zeros(5))
    ints = Tensor(np.array([1, 2]))
    assert ints.floor().dtype == np.int64


def test_tril_and_triu_keep_a_bool_mask_bool():
    mask = tg.ones(3, 3).triu(1).bool()
    assert mask.dtype == np.bool_ and mask.triu().dtype == np.bool_
    np.testing.assert_array_equal(mask.data, np.triu(np.ones((3, 3), bool), 1))
    with pytest.raises(ValueError, match=r"tril: expects a tensor with >= 2 dims, got shape \(3,\)"):
        tg.ones(3).tril()


def test_new_tensors_take_this_tensors_dtype():
    x = Tensor(np.zeros(2, np.float64))
    assert x.new_zeros(2, 3).dtype == np.float64 and x.new_zeros((2, 3)).shape == (2, 3)
    assert x.new_ones(2).data.tolist() == [1.0, 1.0] and x.new_empty(4).shape == (4,)
    assert x.new_full((2,), 7).dtype == np.float64 and x.new_full((2,), 7).data.tolist() == [7.0, 7.0]
    assert x.new_tensor([1, 2]).dtype == np.float64  # not int64: new_tensor takes self's dtype
    assert x.new_zeros(2, dtype=np.int64).dtype == np.int64
    assert x.new_ones(1, requires_grad=True).requires_grad
    assert x.type_as(Tensor(np.zeros(1, np.float32))).dtype == np.float32
    assert x.is_floating_point() and not Tensor(np.array([1])).is_floating_point()
    assert x.cpu() is x and x.reshape_as(Tensor(np.zeros((2, 1)))).shape == (2, 1)


def test_uniform_and_normal_fill_in_place_from_a_generator_and_refuse_a_leaf_that_requires_grad():
    a = tg.empty(1000, dtype=np.float64).uniform_(-2.0, -1.0, generator=tg.Generator(5))
    b = tg.empty(1000, dtype=np.float64).uniform_(-2.0, -1.0, generator=tg.Generator(5))
    assert a.dtype == np.float64 and np.array_equal(a.data, b.data)
    assert -2.0 <= a.data.min() and a.data.max() < -1.0
    n = tg.zeros(20000).normal_(3.0, 0.5, generator=tg.Generator(1))
    # 20,000 draws: the mean is known to 0.5 / sqrt(20000) = 0.0035; 0.02 is > 5 sigma
    assert abs(n.data.mean() - 3.0) < 0.02 and abs(n.data.std() - 0.5) < 0.02
    w = tg.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="in-place"):
        w.uniform_()
    with tg.no_grad():
        w.normal_()
    assert w.requires_grad and w.is_leaf and np.all(w.data != 0)


def test_clamp_min_clamp_max_and_the_where_method():
    x = Tensor(np.array([-2.0, 0.5, 3.0]))
    np.testing.assert_array_equal(x.clamp_min(0).data, [0.0, 0.5, 3.0])
    np.testing.assert_array_equal(x.clamp_max(1).data, [-2.0, 0.5, 1.0])
    np.testing.assert_array_equal(x.where(x > 0, -1.0).data, [-1.0, 0.5, 3.0])


def test_from_numpy_and_as_tensor_share_memory_when_they_can():
    from tinygrad_bn.factories import as_tensor, from_numpy

    a = np.arange(3.0)
    t = from_numpy(a)
    a[0] = 7.0
    assert t.dtype == np.float64 and t.data[0] == 7.0  # shared, as PyTorch's from_numpy
    assert as_tensor(a).data is a and as_tensor(t) is t
    assert as_tensor([1, 2]).dtype == np.int64 and as_tensor(a, dtype=np.float32).dtype == np.float32
    assert as_tensor(a, dtype=np.float32).data is not a
    with pytest.raises(TypeError, match="from_numpy: expected an np.ndarray, got list"):
        from_numpy([1.0])
