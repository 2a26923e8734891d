"""The book's fully-connected networks, shared by MultiLayerNet and MultiLayerNetExtend.

{Affine - [BatchNorm] - Activation - [Dropout]} x hidden - Affine - SoftmaxWithLoss.
Every W is drawn (weight_init_std * randn, layer by layer) before any layer
exists, the book's RNG order; `gradient` records the whole network, weight
decay included, as one graph and takes one backward pass.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from tinygrad_bn.autograd import grad, no_grad
from tinygrad_bn.compat import _float_array
from tinygrad_bn.compat.dlfs.common.gradient import numerical_gradient
from tinygrad_bn.compat.dlfs.common.layers import (
    Affine,
    BatchNormalization,
    Dropout,
    Relu,
    Sigmoid,
    SoftmaxWithLoss,
)
from tinygrad_bn.tensor import Tensor


class LayeredNet:
    """A fully-connected net with optional weight decay, dropout and batch normalisation.

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
        op = type(self).__name__
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
        scores = self._scores(self._input(f"{type(self).__name__}.loss", x), train_flg)
        loss = self.last_layer._graph(scores, t)
        if self.weight_decay_lambda:
            for idx in range(1, self.hidden_layer_num + 2):
                W = self.layers[f"Affine{idx}"]._leaves[0]
                loss = loss + 0.5 * self.weight_decay_lambda * (W * W).sum()
        return loss

    def predict(self, x: np.ndarray, train_flg: bool = False) -> np.ndarray:
        """Class scores (before softmax)."""
        with no_grad():
            return self._scores(self._input(f"{type(self).__name__}.predict", x), train_flg).data

    def loss(self, x: np.ndarray, t: np.ndarray, train_flg: bool = False) -> Any:
        """Cross-entropy plus 0.5 * weight_decay_lambda * sum(W**2) over every W."""
        with no_grad():
            return self._loss(x, t, train_flg).data[()]

    def accuracy(self, x: np.ndarray, t: np.ndarray) -> float:
        """Fraction of x classified as t (labels or one-hot), in test mode."""
        y = np.argmax(LayeredNet.predict(self, x, train_flg=False), axis=1)
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
            return LayeredNet.loss(self, x, t, train_flg=True)

        return {key: numerical_gradient(loss_w, self.params[key]) for key, _, _ in self._param_layers()}

