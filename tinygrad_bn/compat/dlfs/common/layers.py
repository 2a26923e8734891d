"""The book's layers (``common.layers``): `forward` / `backward(dout)`, gradients from autograd.

Each layer keeps the book's interface (``forward``, ``backward(dout)``,
attributes ``dW``, ``db``, ``dgamma``, ``dbeta``), but its forward records a
tinygrad_bn graph and its backward asks autograd for the gradients. Inside a
network (`MultiLayerNet`, `SimpleConvNet`, ...) the layers' ``_graph`` methods
chain into one graph and one backward pass.

BatchNormalization follows the book: momentum 0.9 is the fraction of the running
value kept; the running variance is the biased batch variance; eps is 1e-6 (the
book's 10e-7); a 4-D input (N, C, H, W) is flattened to (N, C*H*W), so its
statistics are per activation (unlike nn.BatchNorm2d); a batch of one in
training gives beta (the centred input is 0), as the book computes.
SoftmaxWithLoss's value is the book's -mean(log(y[t] + 1e-7)); its gradient is
the book's (y - t) / N, the gradient of the exact cross-entropy (the 1e-7 only
guards the log). Convolution and Pooling run on `tinygrad_bn.compat._conv`.
Like the book's file, this module also exports `common.functions` and
`im2col` / `col2im`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_bn import functional as F
from tinygrad_bn.compat import _backprop, _batch_norm_train, _cast, _leaf
from tinygrad_bn.compat._conv import conv2d, max_pool2d
from tinygrad_bn.compat.dlfs.common import functions as _functions
from tinygrad_bn.compat.dlfs.common.functions import *
from tinygrad_bn.compat.dlfs.common.functions import CE_DELTA
from tinygrad_bn.compat.dlfs.common.util import col2im, im2col
from tinygrad_bn.tensor import Tensor

__all__ = ["np",
    "Relu", "Sigmoid", "Affine", "SoftmaxWithLoss", "Dropout", "BatchNormalization", "Convolution",
    "Pooling", "im2col", "col2im", *_functions.__all__,
]

BN_EPS = 1e-6  # the book writes 10e-7
IMPLS = ("composed", "fused")


def _as_input(op: str, x: Any) -> Tensor:
    """A layer input: a Tensor inside a network graph, else a leaf so backward can reach it."""
    return x if isinstance(x, Tensor) else _leaf(op, "x", x, copy=False)


class _Layer:
    """Shared plumbing: `forward` records a graph through `_graph`, `backward` differentiates it."""

    _param_names: tuple[str, ...] = ()

    def _graph(self, x: Tensor, train_flg: bool) -> Tensor:
        raise NotImplementedError

    def _param_leaves(self) -> list[Tensor]:
        """The current parameter arrays as leaves (sharing memory, so in-place updates are seen)."""
        leaves = [Tensor(getattr(self, n), requires_grad=True, name=n) for n in self._param_names]
        self._leaves = leaves
        return leaves

    def forward(self, x: np.ndarray, train_flg: bool = True) -> np.ndarray:
        """The layer's output for x (numpy in, numpy out)."""
        self._x = _as_input(f"{type(self).__name__}.forward", x)
        self._out = self._graph(self._x, train_flg)
        return self._out.data

    def backward(self, dout: Any = 1) -> np.ndarray:
        """dL/dx for the last forward, given dL/dout; parameter gradients go to d<name> attributes."""
        if getattr(self, "_out", None) is None:
            raise RuntimeError(f"{type(self).__name__}.backward: call forward first")
        dout = np.broadcast_to(np.asarray(dout, dtype=self._out.dtype), self._out.shape)
        grads = _backprop(f"{type(self).__name__}.backward", self._out,
                          [self._x, *self._leaves], dout)
        for name, g in zip(self._param_names, grads[1:], strict=True):
            setattr(self, "d" + name, g)
        return grads[0]


class Affine(_Layer):
    """out = x.reshape(N, -1) @ W + b; the input's shape is restored in backward."""

    _param_names = ("W", "b")

    def __init__(self, W: np.ndarray, b: np.ndarray):
        self.W, self.b = W, b
        self.dW = self.db = None

    def _graph(self, x: Tensor, train_flg: bool = True) -> Tensor:
        W, b = self._param_leaves()
        flat = x.reshape(x.shape[0], -1)
        if flat.shape[1] != W.shape[0] or b.shape != (W.shape[1],):
            raise ValueError(
                f"Affine.forward: x of shape {x.shape} has {flat.shape[1]} values per example; "
                f"expected W of shape ({flat.shape[1]}, M) and b of shape (M,), got W {W.shape}, "
                f"b {b.shape}"
            )
        return flat @ W + b

    def forward(self, x: np.ndarray) -> np.ndarray:  # type: ignore[override]
        """x.reshape(N, -1) @ W + b."""
        return super().forward(x)


class Relu(_Layer):
    """max(x, 0); the gradient at exactly 0 is 0, as the book's mask (x <= 0) gives."""

    def _graph(self, x: Tensor, train_flg: bool = True) -> Tensor:
        self._leaves = []
        return x.relu()

    def forward(self, x: np.ndarray) -> np.ndarray:  # type: ignore[override]
        """max(x, 0)."""
        return super().forward(x)


class Sigmoid(_Layer):
    """1 / (1 + exp(-x))."""

    def _graph(self, x: Tensor, train_flg: bool = True) -> Tensor:
        self._leaves = []
        return F.sigmoid(x)

    def forward(self, x: np.ndarray) -> np.ndarray:  # type: ignore[override]
        """1 / (1 + exp(-x))."""
        return super().forward(x)


class Dropout(_Layer):
    """The book's (non-inverted) dropout: train keeps x where rand > ratio; test scales by 1 - ratio."""

    def __init__(self, dropout_ratio: float = 0.5):
        if not 0 <= dropout_ratio < 1:
            raise ValueError(f"Dropout: dropout_ratio must be in [0, 1), got {dropout_ratio!r}")
        self.dropout_ratio = dropout_ratio
        self.mask: np.ndarray | None = None

    def _graph(self, x: Tensor, train_flg: bool = True) -> Tensor:
        self._leaves = []
        if train_flg:
            self.mask = np.random.rand(*x.shape) > self.dropout_ratio
            return x * Tensor(self.mask.astype(x.dtype))
        return x * (1.0 - self.dropout_ratio)


class BatchNormalization(_Layer):
    """Batch normalisation with the book's conventions (see the module docstring).

    running_mean/running_var start as float64 zeros on the first forward unless given.
    `impl` ('fused' or 'composed') picks the tinygrad_bn BatchNorm used for the graph.
    """

    _param_names = ("gamma", "beta")

    def __init__(
        self,
        gamma: np.ndarray,
        beta: np.ndarray,
        momentum: float = 0.9,
        running_mean: np.ndarray | None = None,
        running_var: np.ndarray | None = None,
        *,
        impl: str = "fused",
    ):
        if not 0 <= momentum <= 1:
            raise ValueError(
                f"BatchNormalization: momentum is the fraction of the running value kept, in [0, 1]; "
                f"got {momentum!r}"
            )
        if impl not in IMPLS:
            raise ValueError(f"BatchNormalization: impl must be 'composed' or 'fused', got {impl!r}")
        self.gamma, self.beta, self.momentum = gamma, beta, momentum
        self.running_mean, self.running_var = running_mean, running_var
        self.impl = impl
        self.input_shape: tuple[int, ...] | None = None
        self.dgamma = self.dbeta = None

    def _graph(self, x: Tensor, train_flg: bool = True) -> Tensor:
        if x.ndim not in (2, 4):
            raise ValueError(
                f"BatchNormalization.forward: expected input of shape (N, D) or (N, C, H, W), "
                f"got {x.shape}"
            )
        self.input_shape = x.shape
        flat = x.reshape(x.shape[0], -1)
        d = flat.shape[1]
        gamma, beta = self._param_leaves()
        for name, p in (("gamma", gamma), ("beta", beta)):
            if p.shape != (d,):
                raise ValueError(
                    f"BatchNormalization.forward: {name} has shape {p.shape}, expected ({d},) for "
                    f"input of shape {x.shape} (flattened to (N, {d}))"
                )
        if self.running_mean is None:
            self.running_mean, self.running_var = np.zeros(d), np.zeros(d)
        running = [np.asarray(self.running_mean), np.asarray(self.running_var)]
        # Mixed dtypes compute in the widest one, as the book's numpy code does.
        dtype = np.result_type(flat.dtype, gamma.dtype, beta.dtype,
                               *([] if train_flg else [r.dtype for r in running]))
        xw, gamma, beta = _cast(flat, dtype), _cast(gamma, dtype), _cast(beta, dtype)
        if train_flg:
            out = _batch_norm_train(xw, gamma, beta, BN_EPS, self.impl)
            mu = flat.data.mean(axis=0)
            var = np.mean((flat.data - mu) ** 2, axis=0)
            self.running_mean = self.momentum * self.running_mean + (1 - self.momentum) * mu
            self.running_var = self.momentum * self.running_var + (1 - self.momentum) * var
        else:
            mean_t, var_t = (Tensor(r.astype(dtype, copy=False)) for r in running)
            out = F.batch_norm(xw, mean_t, var_t, gamma, beta, training=False, eps=BN_EPS,
                               impl=self.impl)
        return out.reshape(*x.shape)


class SoftmaxWithLoss:
    """Softmax then the book's cross-entropy, -mean(log(y[t] + 1e-7)); labels or one-hot targets."""

    def __init__(self) -> None:
        self.loss: Any = None
        self.y: np.ndarray | None = None
        self.t: np.ndarray | None = None

    def _graph(self, x: Tensor, t: Any) -> Tensor:
        t = np.asarray(t)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        n, c = x.shape
        if t.size == n * c and c != 1:  # one-hot, as cross_entropy_error reads it: take the argmax
            t = t.reshape(n, c).argmax(axis=1)
        elif t.size == n:  # labels, in any shape holding one per example (the book indexes with t)
            t = t.reshape(n)
        if t.shape != (n,) or t.dtype.kind not in "iu":
            raise ValueError(
                f"SoftmaxWithLoss.forward: t must be {n} integer labels or an ({n}, {c}) one-hot "
                f"array, got shape {t.shape} dtype {t.dtype}"
            )
        if n and (t.min() < 0 or t.max() >= c):
            raise ValueError(
                f"SoftmaxWithLoss.forward: labels must lie in 0..{c - 1}, got {t.min()}..{t.max()}"
            )
        self.t = t
        self.y = softmax(x.data)
        # The book's value, -mean(log(y[t] + 1e-7)), with the gradient of the exact
        # cross-entropy, (y - onehot(t)) / N, which is what the book's backward returns:
        # the 1e-7 guards log(0) and is not differentiated. The gap is a constant.
        exact = F.cross_entropy(x, t)
        book = -np.sum(np.log(self.y[np.arange(n), t] + CE_DELTA)) / n
        return exact + Tensor(np.asarray(book - exact.data, dtype=exact.dtype))

    def forward(self, x: np.ndarray, t: np.ndarray) -> Any:
        """The mean loss (a numpy scalar) of scores x against labels or one-hot t."""
        self._x = _as_input("SoftmaxWithLoss.forward", x)
        self._out = self._graph(self._x, t)
        self.loss = self._out.data[()]
        return self.loss

    def backward(self, dout: Any = 1) -> np.ndarray:
        """dL/dx for the last forward, scaled by dout."""
        if getattr(self, "_out", None) is None:
            raise RuntimeError("SoftmaxWithLoss.backward: call forward first")
        dout = np.asarray(dout, dtype=self._out.dtype).reshape(())
        return _backprop("SoftmaxWithLoss.backward", self._out, [self._x], dout)[0]



def _int_arg(op: str, name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{op}: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


class Convolution(_Layer):
    """Cross-correlation with filters W (FN, C, FH, FW) plus b (FN,): (N, C, H, W) -> (N, FN, OH, OW)."""

    _param_names = ("W", "b")

    def __init__(self, W: np.ndarray, b: np.ndarray, stride: int = 1, pad: int = 0):
        self.W, self.b = W, b
        self.stride = _int_arg("Convolution", "stride", stride, 1)
        self.pad = _int_arg("Convolution", "pad", pad, 0)
        self.x: np.ndarray | None = None
        self.dW = self.db = None

    def _graph(self, x: Tensor, train_flg: bool = True) -> Tensor:
        W, b = self._param_leaves()
        self.x = x.data
        dtype = np.result_type(x.dtype, W.dtype, b.dtype)
        return conv2d(_cast(x, dtype), _cast(W, dtype), _cast(b, dtype), self.stride, self.pad)

    def forward(self, x: np.ndarray) -> np.ndarray:  # type: ignore[override]
        """The convolution of x (N, C, H, W) with W, plus b."""
        return super().forward(x)


class Pooling(_Layer):
    """Max pooling over pool_h x pool_w windows; the gradient goes to each window's first maximum."""

    def __init__(self, pool_h: int, pool_w: int, stride: int = 2, pad: int = 0):
        self.pool_h = _int_arg("Pooling", "pool_h", pool_h, 1)
        self.pool_w = _int_arg("Pooling", "pool_w", pool_w, 1)
        self.stride = _int_arg("Pooling", "stride", stride, 1)
        self.pad = _int_arg("Pooling", "pad", pad, 0)
        self.x: np.ndarray | None = None

    def _graph(self, x: Tensor, train_flg: bool = True) -> Tensor:
        self._leaves = []
        self.x = x.data
        return max_pool2d(x, self.pool_h, self.pool_w, self.stride, self.pad)

    def forward(self, x: np.ndarray) -> np.ndarray:  # type: ignore[override]
        """The max of each window of x (N, C, H, W)."""
        return super().forward(x)
