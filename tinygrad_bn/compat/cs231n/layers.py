"""CS231n assignment 2 layers: `*_forward` returns (out, cache), `*_backward(dout, cache)` gradients.

Replaces ``from cs231n.layers import *``. Each forward builds its computation
from Tensors; each backward asks tinygrad_bn's autograd for the gradients of the
graph its cache holds. The graph is retained, so one cache can be
backpropagated more than once. `batchnorm_backward` walks the *composed*
BatchNorm graph node by node; `batchnorm_backward_alt` runs the *fused*
kernel's closed-form backward (Ioffe & Szegedy 2015). Both graphs are recorded
by `batchnorm_forward`, so the notebook can time the two backward passes alone.

bn_param follows the course, not PyTorch: 'mode' is 'train' or 'test'; 'eps'
defaults to 1e-5; 'momentum' (default 0.9) is the fraction of the old running
value KEPT, running = momentum * running + (1 - momentum) * batch; the running
variance is the BIASED batch variance. 'running_mean' / 'running_var' are
created as zeros of x's dtype on first use and updated in place.

dropout_param follows the current course: 'p' is the probability of KEEPING a
unit (the 2017 handout used the drop probability), 'mode' is 'train' or 'test',
and an optional 'seed' reseeds numpy's global RNG on every call, as the course does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_bn import functional as F
from tinygrad_bn.compat import _backprop, _batch_norm_train, _cast, _labels, _leaf
from tinygrad_bn.compat.cs231n._cache import GraphCache, graph_backward, param_mode
from tinygrad_bn.compat.cs231n._conv_layers import (
    conv_backward_naive,
    conv_forward_naive,
    max_pool_backward_naive,
    max_pool_forward_naive,
)
from tinygrad_bn.tensor import Tensor

__all__ = ["np",
    "affine_forward", "affine_backward", "relu_forward", "relu_backward",
    "batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt",
    "spatial_batchnorm_forward", "spatial_batchnorm_backward",
    "spatial_groupnorm_forward", "spatial_groupnorm_backward",
    "layernorm_forward", "layernorm_backward", "dropout_forward", "dropout_backward",
    "conv_forward_naive", "conv_backward_naive", "max_pool_forward_naive", "max_pool_backward_naive",
    "softmax_loss", "svm_loss",
]

BN_EPS = 1e-5  # the course's default bn_param['eps']
BN_MOMENTUM = 0.9  # the course's default bn_param['momentum']: the fraction of the old value kept
LN_EPS = 1e-5  # the course's default ln_param['eps']


def _check_params(op: str, x: Tensor, expected_ndim: int, layout: str, **params: Tensor) -> None:
    """x must have `expected_ndim` axes; each named parameter must have shape (x.shape[1],)."""
    if x.ndim != expected_ndim:
        raise ValueError(f"{op}: x must have shape {layout}, got shape {x.shape}")
    for name, p in params.items():
        if p.shape != (x.shape[1],):
            raise ValueError(
                f"{op}: {name} has shape {p.shape}, expected ({x.shape[1]},) to match x of shape {x.shape}"
            )


# ---------------------------------------------------------------- graph builders (Tensor in, Tensor out)
# FullyConnectedNet builds its whole forward from these, then takes one backward.


def _affine(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """Each example flattened to a row, times w, plus b."""
    return x.reshape(x.shape[0], -1) @ w + b


def _check_affine(op: str, x: Tensor, w: Tensor, b: Tensor) -> None:
    if x.ndim < 1:
        raise ValueError(f"{op}: x must have a leading example axis, got a 0-d array")
    d = int(np.prod(x.shape[1:], dtype=np.int64))
    if w.ndim != 2 or w.shape[0] != d:
        raise ValueError(
            f"{op}: x of shape {x.shape} has {d} values per example, so w must have shape "
            f"({d}, M); got w of shape {w.shape}"
        )
    if b.shape != (w.shape[1],):
        raise ValueError(f"{op}: b has shape {b.shape}, expected ({w.shape[1]},) to match w {w.shape}")


def _running_stats(op: str, bn_param: dict, num_features: int, dtype: np.dtype) -> None:
    """Create the running mean/var as zeros of x's dtype on first use; check their shapes."""
    for key in ("running_mean", "running_var"):
        if key not in bn_param:
            bn_param[key] = np.zeros(num_features, dtype=dtype)
        elif not isinstance(bn_param[key], np.ndarray):
            bn_param[key] = np.array(bn_param[key], dtype=dtype)
        if bn_param[key].shape != (num_features,):
            raise ValueError(
                f"{op}: bn_param[{key!r}] has shape {bn_param[key].shape}, expected "
                f"({num_features},) for {num_features} features (is one bn_param shared by two layers?)"
            )


def _bn_settings(op: str, bn_param: dict) -> tuple[float, float]:
    """(eps, momentum) from bn_param with the course's defaults, checked."""
    eps, momentum = bn_param.get("eps", BN_EPS), bn_param.get("momentum", BN_MOMENTUM)
    if not (isinstance(eps, int | float | np.floating) and eps > 0):
        raise ValueError(f"{op}: bn_param['eps'] must be a positive number, got {eps!r}")
    if not (isinstance(momentum, int | float | np.floating) and 0 <= momentum <= 1):
        raise ValueError(
            f"{op}: bn_param['momentum'] must be in [0, 1] (the fraction of the running value kept), "
            f"got {momentum!r}"
        )
    return float(eps), float(momentum)


def _batchnorm(
    op: str, x: Tensor, gamma: Tensor, beta: Tensor, bn_param: dict, impls: Sequence[str]
) -> list[Tensor]:
    """Normalise x over every axis but 1, once per impl; update bn_param's running stats once.

    The normalisation is functional.batch_norm on batch statistics (train) or on the
    running ones (test); the running update is done here in numpy, because the
    course's convention (momentum kept, biased variance) is not PyTorch's.
    """
    mode = param_mode(op, "bn_param", bn_param)
    eps, momentum = _bn_settings(op, bn_param)
    _running_stats(op, bn_param, x.shape[1], x.dtype)
    arrays = [x, gamma, beta]
    if mode == "test":
        arrays += [bn_param["running_mean"], bn_param["running_var"]]
    # Mixed float32/float64 arguments compute in the wider dtype, as numpy code would.
    dtype = np.result_type(*(a.dtype for a in arrays))
    xw, gamma, beta = _cast(x, dtype), _cast(gamma, dtype), _cast(beta, dtype)
    if mode == "train":
        outs = [_batch_norm_train(xw, gamma, beta, eps, impl) for impl in impls]
        axes = (0,) + tuple(range(2, x.ndim))
        batch = {"running_mean": x.data.mean(axis=axes), "running_var": x.data.var(axis=axes)}
        for key, value in batch.items():
            new = momentum * bn_param[key] + (1 - momentum) * value
            if bn_param[key].flags.writeable:
                bn_param[key][...] = new  # in place: snapshots of the dict (gradcheck) stay valid
            else:
                bn_param[key] = new
        return outs
    running_mean = Tensor(bn_param["running_mean"].astype(dtype, copy=False))
    running_var = Tensor(bn_param["running_var"].astype(dtype, copy=False))
    return [F.batch_norm(xw, running_mean, running_var, gamma, beta, training=False, eps=eps,
                         impl=impl)
            for impl in impls]


def _layernorm(op: str, x: Tensor, gamma: Tensor, beta: Tensor, ln_param: Any, impl: str) -> Tensor:
    """Normalise each row of x over its features (no running statistics, train = test)."""
    if not isinstance(ln_param, dict):
        raise TypeError(f"{op}: ln_param must be a dict (it may be empty), got {type(ln_param).__name__}")
    eps = ln_param.get("eps", LN_EPS)
    if not (isinstance(eps, int | float | np.floating) and eps > 0):
        raise ValueError(f"{op}: ln_param['eps'] must be a positive number, got {eps!r}")
    dtype = np.result_type(x.dtype, gamma.dtype, beta.dtype)
    x, gamma, beta = _cast(x, dtype), _cast(gamma, dtype), _cast(beta, dtype)
    return F.layer_norm(x, (x.shape[1],), gamma, beta, eps=float(eps), impl=impl)


def _dropout(op: str, x: Tensor, dropout_param: Any, p_keeps: bool = True) -> Tensor:
    """Inverted dropout in train mode; dropout_param['p'] keeps a unit (p_keeps) or drops it (2017).

    The mask is drawn as the course's reference draws it, so a seeded call drops
    the same units: keep where np.random.rand(*x.shape) < keep, scaled by 1 / keep
    (2019 and later); keep where np.random.rand(*x.shape) >= p, scaled by
    1 / (1 - p) (2017, p the drop probability).
    """
    meaning = "keep" if p_keeps else "drop"
    if not isinstance(dropout_param, dict) or "p" not in dropout_param:
        raise ValueError(
            f"{op}: dropout_param must be a dict with 'p' ({meaning} probability) and 'mode', "
            f"got {dropout_param!r}"
        )
    mode = param_mode(op, "dropout_param", dropout_param)
    p = dropout_param["p"]
    allowed = (0 < p <= 1) if p_keeps else (0 <= p < 1)
    if not (isinstance(p, int | float | np.floating) and allowed):
        interval = "(0, 1]" if p_keeps else "[0, 1)"
        raise ValueError(f"{op}: dropout_param['p'] is the {meaning} probability, in {interval}; got {p!r}")
    # The course reseeds before looking at the mode, so test mode moves the RNG too.
    if "seed" in dropout_param:
        np.random.seed(dropout_param["seed"])
    if mode == "test":
        return x
    draw = np.random.rand(*x.shape)
    keep = (draw < p) / p if p_keeps else (draw >= p) / (1 - p)
    return x * Tensor(keep.astype(x.dtype))


# ---------------------------------------------------------------- affine, relu


def affine_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, Any]:
    """out = x.reshape(N, D) @ w + b for x of shape (N, d_1, ..., d_k), w (D, M), b (M,)."""
    op = "affine_forward"
    x_t, w_t, b_t = _leaf(op, "x", x), _leaf(op, "w", w), _leaf(op, "b", b)
    _check_affine(op, x_t, w_t, b_t)
    out = _affine(x_t, w_t, b_t)
    return out.data, GraphCache("affine", (x_t, w_t, b_t), {"default": out})


def affine_backward(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) for the affine layer whose forward made `cache`."""
    return graph_backward("affine_backward", dout, cache, "affine")


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, Any]:
    """out = max(x, 0) elementwise."""
    x_t = _leaf("relu_forward", "x", x)
    out = x_t.relu()
    return out.data, GraphCache("relu", (x_t,), {"default": out})


def relu_backward(dout: np.ndarray, cache: Any) -> np.ndarray:
    """dx for the ReLU whose forward made `cache` (the gradient at exactly 0 is 0)."""
    return graph_backward("relu_backward", dout, cache, "relu")[0]


# ---------------------------------------------------------------- normalisation


def _normalisation_leaves(
    op: str, x: Any, gamma: Any, beta: Any, expected_ndim: int, layout: str
) -> tuple[Tensor, Tensor, Tensor]:
    """x, gamma and beta as graph leaves, their shapes checked (every normalisation forward)."""
    x_t, g_t, b_t = _leaf(op, "x", x), _leaf(op, "gamma", gamma), _leaf(op, "beta", beta)
    _check_params(op, x_t, expected_ndim, layout, gamma=g_t, beta=b_t)
    return x_t, g_t, b_t


def batchnorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict
) -> tuple[np.ndarray, Any]:
    """Batch normalisation of x (N, D) with scale gamma (D,) and shift beta (D,), course bn_param.

    Records both the composed graph (returned output, used by batchnorm_backward)
    and the fused one (used by batchnorm_backward_alt).
    """
    op = "batchnorm_forward"
    x_t, g_t, b_t = _normalisation_leaves(op, x, gamma, beta, 2, "(N, D)")
    composed, fused = _batchnorm(op, x_t, g_t, b_t, bn_param, ("composed", "fused"))
    return composed.data, GraphCache("batchnorm", (x_t, g_t, b_t), {"composed": composed, "fused": fused})


def batchnorm_backward(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dgamma, dbeta) by autograd through the composed graph, one primitive node at a time."""
    return graph_backward("batchnorm_backward", dout, cache, "batchnorm", "composed")


def batchnorm_backward_alt(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dgamma, dbeta) from the fused kernel's closed-form backward (one node)."""
    return graph_backward("batchnorm_backward_alt", dout, cache, "batchnorm", "fused")


def spatial_batchnorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict
) -> tuple[np.ndarray, Any]:
    """Batch normalisation of x (N, C, H, W) per channel: statistics over N, H and W."""
    op = "spatial_batchnorm_forward"
    x_t, g_t, b_t = _normalisation_leaves(op, x, gamma, beta, 4, "(N, C, H, W)")
    (out,) = _batchnorm(op, x_t, g_t, b_t, bn_param, ("composed",))
    return out.data, GraphCache("spatial_batchnorm", (x_t, g_t, b_t), {"default": out})


def spatial_batchnorm_backward(
    dout: np.ndarray, cache: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dgamma, dbeta) for spatial batch normalisation, through the composed graph."""
    return graph_backward("spatial_batchnorm_backward", dout, cache, "spatial_batchnorm")


def layernorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, ln_param: dict
) -> tuple[np.ndarray, Any]:
    """Layer normalisation of each row of x (N, D); ln_param may hold 'eps' (default 1e-5)."""
    op = "layernorm_forward"
    x_t, g_t, b_t = _normalisation_leaves(op, x, gamma, beta, 2, "(N, D)")
    out = _layernorm(op, x_t, g_t, b_t, ln_param, "composed")
    return out.data, GraphCache("layernorm", (x_t, g_t, b_t), {"default": out})


def layernorm_backward(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dgamma, dbeta) for layer normalisation, through the composed graph."""
    return graph_backward("layernorm_backward", dout, cache, "layernorm")


def spatial_groupnorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, G: int, gn_param: dict
) -> tuple[np.ndarray, Any]:
    """Group normalisation of x (N, C, H, W): statistics per example over each of G channel groups.

    gamma and beta have shape (1, C, 1, 1), as in the course; gn_param may hold
    'eps' (default 1e-5). There are no running statistics (train = test).
    """
    op = "spatial_groupnorm_forward"
    x_t, g_t, b_t = _leaf(op, "x", x), _leaf(op, "gamma", gamma), _leaf(op, "beta", beta)
    if x_t.ndim != 4:
        raise ValueError(f"{op}: x must have shape (N, C, H, W), got shape {x_t.shape}")
    n, c, h, w = x_t.shape
    if isinstance(G, bool) or not isinstance(G, int | np.integer) or G < 1 or c % G:
        raise ValueError(f"{op}: G must be a positive int dividing C={c}, got {G!r}")
    for name, t in (("gamma", g_t), ("beta", b_t)):
        if t.shape != (1, c, 1, 1):
            raise ValueError(f"{op}: {name} has shape {t.shape}, expected (1, {c}, 1, 1)")
    if not isinstance(gn_param, dict):
        raise TypeError(f"{op}: gn_param must be a dict (it may be empty), got {type(gn_param).__name__}")
    eps = gn_param.get("eps", LN_EPS)
    if not (isinstance(eps, int | float | np.floating) and eps > 0):
        raise ValueError(f"{op}: gn_param['eps'] must be a positive number, got {eps!r}")
    dtype = np.result_type(x_t.dtype, g_t.dtype, b_t.dtype)
    groups = _cast(x_t, dtype).reshape(n, G, -1)
    count = groups.shape[2]
    # Composed from primitives, biased variance, as layer norm over each group.
    centred = groups - groups.sum(axis=2, keepdims=True) * (1.0 / count)
    var = (centred * centred).sum(axis=2, keepdims=True) * (1.0 / count)
    xhat = (centred * (var + float(eps)) ** -0.5).reshape(n, c, h, w)
    out = xhat * _cast(g_t, dtype) + _cast(b_t, dtype)
    return out.data, GraphCache("spatial_groupnorm", (x_t, g_t, b_t), {"default": out})


def spatial_groupnorm_backward(
    dout: np.ndarray, cache: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dgamma, dbeta) for group normalisation; dgamma and dbeta have shape (1, C, 1, 1)."""
    return graph_backward("spatial_groupnorm_backward", dout, cache, "spatial_groupnorm")


# ---------------------------------------------------------------- dropout


def dropout_forward(x: np.ndarray, dropout_param: dict) -> tuple[np.ndarray, Any]:
    """Inverted dropout: train mode keeps each unit with probability p and scales it by 1/p."""
    return _dropout_layer(x, dropout_param, p_keeps=True)


def _dropout_layer(x: Any, dropout_param: Any, p_keeps: bool) -> tuple[np.ndarray, Any]:
    """dropout_forward for either meaning of p (the 2017 handout's drop probability or today's keep)."""
    x_t = _leaf("dropout_forward", "x", x)
    out = _dropout("dropout_forward", x_t, dropout_param, p_keeps)
    return np.array(out.data), GraphCache("dropout", (x_t,), {"default": out})


def dropout_backward(dout: np.ndarray, cache: Any) -> np.ndarray:
    """dx for the dropout whose forward made `cache` (the same mask; identity in test mode)."""
    return graph_backward("dropout_backward", dout, cache, "dropout")[0]


# ---------------------------------------------------------------- losses


def _scores(op: str, x: Any, y: Any) -> tuple[Tensor, np.ndarray]:
    x_t = _leaf(op, "x", x)
    if x_t.ndim != 2:
        raise ValueError(f"{op}: x must hold class scores of shape (N, C), got shape {x_t.shape}")
    if x_t.shape[0] == 0 or x_t.shape[1] == 0:
        raise ValueError(f"{op}: need at least one example and one class, got scores of shape {x_t.shape}")
    return x_t, _labels(op, y, x_t.shape[0], x_t.shape[1])


def softmax_loss(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """(mean softmax cross-entropy of scores x (N, C) for labels y (N,), dx)."""
    x_t, labels = _scores("softmax_loss", x, y)
    loss = F.cross_entropy(x_t, labels)
    (dx,) = _backprop("softmax_loss", loss, (x_t,), np.ones(()))
    return float(loss.item()), dx


def svm_loss(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """(mean multiclass hinge loss with margin 1 of scores x (N, C) for labels y (N,), dx)."""
    x_t, labels = _scores("svm_loss", x, y)
    n = x_t.shape[0]
    rows = np.arange(n)
    correct = x_t[rows, labels].reshape(n, 1)
    margins = (x_t - correct + 1.0).relu()
    # The correct class is not a margin violation of itself: mask it out (a constant).
    others = np.ones(x_t.shape, dtype=x_t.dtype)
    others[rows, labels] = 0
    loss = (margins * Tensor(others)).sum() / n
    (dx,) = _backprop("svm_loss", loss, (x_t,), np.ones(()))
    return float(loss.item()), dx
