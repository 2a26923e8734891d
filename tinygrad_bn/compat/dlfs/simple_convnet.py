"""The book's chapter-7 ``simple_convnet``: conv - relu - pool - affine - relu - affine - softmax.

SimpleConvNet(input_dim=(1, 28, 28), conv_param={'filter_num': 30,
'filter_size': 5, 'pad': 0, 'stride': 1}, hidden_size=100, output_size=10,
weight_init_std=0.01): W1, W2, W3 are weight_init_std * randn in that order,
biases zero; the pool is 2x2 with stride 2. `gradient` records the network as
one graph (convolution through `tinygrad_bn.compat._conv`) and takes one
backward pass. `save_params` writes the book's pickle of the params dict
(atomically); `load_params` reads it with a restricted unpickler that rebuilds
numpy arrays and nothing else (the book's shipped params.pkl loads), and then,
as the book's does, points the layers at the loaded weights but keeps their biases.
"""

from __future__ import annotations

import os
import pickle
from collections import OrderedDict
from typing import Any

import numpy as np

from tinygrad_bn._io import atomic_write_bytes
from tinygrad_bn.autograd import grad, no_grad
from tinygrad_bn.compat import _float_array
from tinygrad_bn.compat.dlfs.common.gradient import numerical_gradient
from tinygrad_bn.compat.dlfs.common.layers import Affine, Convolution, Pooling, Relu, SoftmaxWithLoss
from tinygrad_bn.data.safe_pickle import load_restricted_pickle
from tinygrad_bn.tensor import Tensor

__all__ = ["np", "SimpleConvNet"]

PARAM_LAYERS = (("W1", "b1", "Conv1"), ("W2", "b2", "Affine1"), ("W3", "b3", "Affine2"))


class SimpleConvNet:
    """The book's simple convolutional network for (N, C, H, W) images."""

    def __init__(
        self,
        input_dim: tuple[int, int, int] = (1, 28, 28),
        conv_param: dict[str, int] | None = None,
        hidden_size: int = 100,
        output_size: int = 10,
        weight_init_std: float = 0.01,
    ):
        if conv_param is None:
            conv_param = {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1}
        missing = [k for k in ("filter_num", "filter_size", "pad", "stride") if k not in conv_param]
        if missing:
            raise ValueError(f"SimpleConvNet: conv_param is missing {missing}, got {conv_param!r}")
        if len(input_dim) != 3:
            raise ValueError(f"SimpleConvNet: input_dim must be (C, H, W), got {input_dim!r}")
        filter_num, filter_size = conv_param["filter_num"], conv_param["filter_size"]
        pad, stride = conv_param["pad"], conv_param["stride"]
        conv_output_size = (input_dim[1] - filter_size + 2 * pad) / stride + 1
        pool_output_size = int(filter_num * (conv_output_size / 2) * (conv_output_size / 2))
        self.params: dict[str, np.ndarray] = {}
        self.params["W1"] = weight_init_std * np.random.randn(
            filter_num, input_dim[0], filter_size, filter_size
        )
        self.params["b1"] = np.zeros(filter_num)
        self.params["W2"] = weight_init_std * np.random.randn(pool_output_size, hidden_size)
        self.params["b2"] = np.zeros(hidden_size)
        self.params["W3"] = weight_init_std * np.random.randn(hidden_size, output_size)
        self.params["b3"] = np.zeros(output_size)

        self.layers: OrderedDict[str, Any] = OrderedDict()
        self.layers["Conv1"] = Convolution(self.params["W1"], self.params["b1"], stride, pad)
        self.layers["Relu1"] = Relu()
        self.layers["Pool1"] = Pooling(pool_h=2, pool_w=2, stride=2)
        self.layers["Affine1"] = Affine(self.params["W2"], self.params["b2"])
        self.layers["Relu2"] = Relu()
        self.layers["Affine2"] = Affine(self.params["W3"], self.params["b3"])
        self.last_layer = SoftmaxWithLoss()

    def _scores(self, x: Any) -> Tensor:
        x = _float_array("SimpleConvNet", "x", x)
        h = Tensor(x.astype(np.result_type(x.dtype, self.layers["Conv1"].W.dtype), copy=False))
        for layer in self.layers.values():
            h = layer._graph(h, True)
        return h

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class scores (before softmax) for images x (N, C, H, W)."""
        with no_grad():
            return self._scores(x).data

    def loss(self, x: np.ndarray, t: np.ndarray) -> Any:
        """The book's softmax cross-entropy of the scores against labels or one-hot t."""
        with no_grad():
            return self.last_layer._graph(self._scores(x), t).data[()]

    def accuracy(self, x: np.ndarray, t: np.ndarray, batch_size: int = 100) -> float:
        """Correct predictions over the first whole batches of x, divided by all of x (the book's count)."""
        t = np.asarray(t)
        if t.ndim != 1:
            t = np.argmax(t, axis=1)
        correct = 0.0
        for i in range(int(x.shape[0] / batch_size)):
            batch = slice(i * batch_size, (i + 1) * batch_size)
            correct += np.sum(np.argmax(self.predict(x[batch]), axis=1) == t[batch])
        return correct / x.shape[0]

    def gradient(self, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        """Gradients of loss(x, t) for W1, b1, W2, b2, W3, b3, by autograd."""
        loss = self.last_layer._graph(self._scores(x), t)
        leaves = []
        for _, _, layer in PARAM_LAYERS:
            leaves += self.layers[layer]._leaves
        grads = grad(loss, leaves)
        keys = [k for w, b, _ in PARAM_LAYERS for k in (w, b)]
        return {k: np.array(g.data, copy=True) for k, g in zip(keys, grads, strict=True)}

    def numerical_gradient(self, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        """Central-difference gradients (h = 1e-4) of loss(x, t), like the book."""
        def loss_w(_: np.ndarray) -> Any:
            return self.loss(x, t)

        return {k: numerical_gradient(loss_w, self.params[k]) for w, b, _ in PARAM_LAYERS for k in (w, b)}

    def save_params(self, file_name: str | os.PathLike = "params.pkl") -> None:
        """Pickle the params dict (numpy arrays) to file_name, written atomically."""
        atomic_write_bytes(file_name, pickle.dumps({k: np.asarray(v) for k, v in self.params.items()}))

    def load_params(self, file_name: str | os.PathLike = "params.pkl") -> None:
        """Read a params pickle (numpy arrays only) into params and the layers' W, as the book does."""
        params = load_restricted_pickle(file_name, encoding="latin1")
        if not isinstance(params, dict) or not all(isinstance(v, np.ndarray) for v in params.values()):
            raise ValueError(f"SimpleConvNet.load_params: {str(file_name)!r} does not hold a dict of arrays")
        for key, value in params.items():
            self.params[key] = value
        # The book re-points each layer's W at the loaded array but not its b.
        for w, _, layer in PARAM_LAYERS:
            self.layers[layer].W = self.params[w]
