"""tinygrad_bn: a small reverse-mode autodiff engine over numpy, built around BatchNorm.

`import tinygrad_bn` loads the engine only (tensor, autograd, ops, functional,
kernels, nn, optim) and changes nothing process-wide. The tools built on it
(viz, gradcheck, testing, train, data, experiments, compat) load on first use:
`tinygrad_bn.viz.draw_graph` works after a plain `import tinygrad_bn`.
"""

import importlib
from typing import Any

import numpy as np

# The engine (docs/index.md has the layers); tensor_methods binds the ops onto Tensor.
# Nothing runs an op while importing, so the order of these lines does not matter.
from tinygrad_bn import (
    functional,
    kernels,
    nn,
    ops,
    optim,
    tensor_methods,  # noqa: F401 - binds Tensor's methods
)
from tinygrad_bn.autograd import (
    AnomalyError,
    Function,
    detect_anomaly,
    enable_grad,
    grad,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from tinygrad_bn.autograd import functional as _autograd_functional  # torch.autograd.functional
from tinygrad_bn.autograd.function import BackwardTrace, Context
from tinygrad_bn.factories import (
    arange,
    as_tensor,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    normal,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    zeros,
    zeros_like,
)

# The torch.* functions (the same functions as tinygrad_bn.functional's, and the Tensor methods).
from tinygrad_bn.functional import (
    abs,
    add,
    all,
    allclose,
    amax,
    amin,
    any,
    argmax,
    argmin,
    argsort,
    bmm,
    broadcast_to,
    cat,
    chunk,
    clamp,
    clip,
    concat,
    cos,
    cumsum,
    div,
    dot,
    einsum,
    eq,
    equal,
    erf,
    exp,
    expm1,
    flatten,
    flip,
    gather,
    ge,
    gt,
    index_select,
    isclose,
    isfinite,
    isinf,
    isnan,
    le,
    log,
    log1p,
    log2,
    log10,
    log_softmax,
    logsumexp,
    lt,
    masked_fill,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mm,
    movedim,
    mul,
    narrow,
    ne,
    neg,
    norm,
    outer,
    permute,
    pow,
    prod,
    reciprocal,
    relu,
    reshape,
    rsqrt,
    scatter_add,
    sigmoid,
    sign,
    sin,
    softmax,
    sort,
    split,
    sqrt,
    square,
    squeeze,
    stack,
    std,
    sub,
    sum,
    t,
    take_along_dim,
    tanh,
    topk,
    transpose,
    tril,
    triu,
    unbind,
    unsqueeze,
    var,
    where,
)
from tinygrad_bn.ops import PRIMITIVES
from tinygrad_bn.random import Generator, default_generator, initial_seed, manual_seed
from tinygrad_bn.serialization import load, save
from tinygrad_bn.tensor import Tensor, get_default_dtype, set_default_dtype, tensor

float32, float64, int64, int32, bool_ = np.float32, np.float64, np.int64, np.int32, np.bool_
# PyTorch's other names for them (tg.long, tg.float, ...), as dtypes
long, double, bool = np.int64, np.float64, np.bool_  # noqa: A001 - torch's names
float, int = np.float32, np.int32  # noqa: A001


def numel(input: Tensor) -> int:
    """Number of elements of `input`."""
    return input.numel()


def is_tensor(obj: Any) -> bool:
    """True for a tinygrad_bn Tensor (Parameters included)."""
    return isinstance(obj, Tensor)

__version__ = "0.1.0"

_LAZY_MODULES = ("compat", "data", "experiments", "gradcheck", "testing", "train", "viz")


def __getattr__(name: str) -> Any:
    """Load the tool modules on first access (`tinygrad_bn.viz`, `tinygrad_bn.train`, ...)."""
    if name in _LAZY_MODULES:
        return importlib.import_module(f"tinygrad_bn.{name}")
    raise AttributeError(f"module 'tinygrad_bn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_MODULES))


def keep_freed_memory() -> bool:
    """Opt in to reusing freed arrays (glibc malloc tuning, process-wide); see tinygrad_bn/_memory.py."""
    from tinygrad_bn import _memory

    return _memory.keep_freed_memory()


# The dtype aliases shadow builtins (float, int, bool): left out of `import *`.
__all__ = [name for name in dir() if not name.startswith("_")
           and name not in ("importlib", "np", "Any", "long", "double", "bool", "float", "int")]
