"""CS231n's TwoLayerNet and FullyConnectedNet, with their parameters in a dict of numpy arrays.

Replaces ``from cs231n.classifiers.fc_net import *``. The course's fc_net
star-imports `layers` and `layer_utils`, and the notebooks rely on it
(``batchnorm_forward`` comes from this import); so does this module export them.

FullyConnectedNet is

    {affine - [batch/layer norm] - relu - [dropout]} x (L - 1) - affine - softmax

with the 2019-and-later keywords: ``dropout_keep_ratio`` (2021 on) or ``dropout``
(2019-20), both the probability of KEEPING a unit (1 = no dropout), and
``normalization='batchnorm'|'layernorm'|None``; ``use_batchnorm=True`` is
accepted as normalization='batchnorm'. The 2017 handout's signature, where
``dropout`` is the drop probability, is `tinygrad_bn.compat.cs231n_2017`.
`loss` builds the whole forward pass as one graph and takes one backward pass.
Initialisation draws from numpy's global RNG exactly as the course's does (W
before b, layer by layer, nothing else), so a seeded notebook prints the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_bn.compat.cs231n import layer_utils as _layer_utils
from tinygrad_bn.compat.cs231n.classifiers._model import classifier_loss
from tinygrad_bn.compat.cs231n.layer_utils import *
from tinygrad_bn.compat.cs231n.layers import _affine, _batchnorm, _dropout, _layernorm
from tinygrad_bn.tensor import Tensor

__all__ = ["np", "TwoLayerNet", "FullyConnectedNet", *_layer_utils.__all__]

NORMALIZATIONS = ("batchnorm", "layernorm", None)
IMPLS = ("composed", "fused")


def _check_dims(op: str, hidden_dims: list, input_dim: Any, num_classes: Any) -> None:
    for d in [*hidden_dims, input_dim, num_classes]:
        if isinstance(d, bool) or not isinstance(d, int | np.integer) or d < 1:
            raise ValueError(
                f"{op}: hidden_dims, input_dim and num_classes must be positive ints, got "
                f"hidden_dims={hidden_dims}, input_dim={input_dim!r}, num_classes={num_classes!r}"
            )


class TwoLayerNet:
    """affine - relu - affine - softmax, weights weight_scale * randn, biases zero."""

    def __init__(
        self,
        input_dim: int = 3 * 32 * 32,
        hidden_dim: int = 100,
        num_classes: int = 10,
        weight_scale: float = 1e-3,
        reg: float = 0.0,
    ):
        _check_dims("TwoLayerNet", [hidden_dim], input_dim, num_classes)
        self.reg = reg
        self.params: dict[str, np.ndarray] = {
            "W1": weight_scale * np.random.randn(input_dim, hidden_dim),
            "b1": np.zeros(hidden_dim),
            "W2": weight_scale * np.random.randn(hidden_dim, num_classes),
            "b2": np.zeros(num_classes),
        }

    def loss(self, X: np.ndarray, y: np.ndarray | None = None) -> Any:
        """Scores (N, C) when y is None, else (loss with 0.5 * reg * sum(W**2), grads)."""
        def forward(x: Tensor, p: dict[str, Tensor]) -> Tensor:
            h = _affine(x, p["W1"], p["b1"]).relu()
            return _affine(h, p["W2"], p["b2"])

        return classifier_loss("TwoLayerNet.loss", self.params, forward, X, y, self.reg, ("W1", "W2"))


class _FullyConnectedNetBase:
    """The network and its loss; the subclasses differ only in their constructors' keywords."""

    # dropout_param['p'] is the keep probability (False: the 2017 drop probability);
    # _setup's p is that value, None for no dropout.
    _P_KEEPS = True

    def _setup(
        self, op: str, hidden_dims: Sequence[int], input_dim: int, num_classes: int, p: float | None,
        normalization: str | None, reg: float, weight_scale: float, dtype: Any, seed: int | None,
        impl: str,
    ) -> None:
        hidden_dims = list(hidden_dims)
        _check_dims(op, hidden_dims, input_dim, num_classes)
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"{op}: normalization must be 'batchnorm', 'layernorm' or None, got {normalization!r}"
            )
        if impl not in IMPLS:
            raise ValueError(f"{op}: impl must be 'composed' or 'fused', got {impl!r}")
        if np.dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"{op}: dtype must be float32 or float64, got {np.dtype(dtype)}")
        self.normalization = normalization
        self.use_batchnorm = normalization == "batchnorm"
        self.use_dropout = p is not None
        self.reg = reg
        self.num_layers = 1 + len(hidden_dims)
        self.dtype = dtype
        self.impl = impl
        self.params: dict[str, np.ndarray] = {}

        # Layer by layer, W before b, nothing else from the RNG: the course's order.
        dims = [input_dim, *hidden_dims, num_classes]
        for i in range(1, self.num_layers + 1):
            self.params[f"W{i}"] = weight_scale * np.random.randn(dims[i - 1], dims[i])
            self.params[f"b{i}"] = np.zeros(dims[i])
            if normalization is not None and i < self.num_layers:
                self.params[f"gamma{i}"] = np.ones(dims[i])
                self.params[f"beta{i}"] = np.zeros(dims[i])
        for k, v in self.params.items():
            self.params[k] = v.astype(dtype)

        self.dropout_param: dict[str, Any] = {}
        if self.use_dropout:
            self.dropout_param = {"mode": "train", "p": p}
            if seed is not None:
                self.dropout_param["seed"] = seed
        self.bn_params: list[dict[str, Any]] = []
        if normalization == "batchnorm":
            self.bn_params = [{"mode": "train"} for _ in range(self.num_layers - 1)]
        elif normalization == "layernorm":
            self.bn_params = [{} for _ in range(self.num_layers - 1)]

    def loss(self, X: np.ndarray, y: np.ndarray | None = None) -> Any:
        """Class scores (N, C) when y is None (test mode), else (loss, grads) in train mode.

        The loss includes 0.5 * reg * sum(W**2) over every weight matrix; grads maps
        each params key to its gradient.
        """
        op = "FullyConnectedNet.loss"
        input_dim = self.params["W1"].shape[0]
        shape = np.shape(X)
        if len(shape) < 1 or int(np.prod(shape[1:], dtype=np.int64)) != input_dim:
            raise ValueError(
                f"{op}: X of shape {shape} does not have input_dim={input_dim} values per example"
            )
        mode = "test" if y is None else "train"
        if self.use_dropout:
            self.dropout_param["mode"] = mode
        if self.normalization == "batchnorm":
            for bn_param in self.bn_params:
                bn_param["mode"] = mode
        weights = [f"W{i}" for i in range(1, self.num_layers + 1)]
        return classifier_loss(op, self.params, self._forward, X, y, self.reg, weights, self.dtype)

    def _forward(self, x: Tensor, p: dict[str, Tensor]) -> Tensor:
        """The scores, built from the layer graph builders, drawing dropout masks layer by layer."""
        op = "FullyConnectedNet.loss"
        h = x
        for i in range(1, self.num_layers):
            h = _affine(h, p[f"W{i}"], p[f"b{i}"])
            if self.normalization == "batchnorm":
                (h,) = _batchnorm(op, h, p[f"gamma{i}"], p[f"beta{i}"], self.bn_params[i - 1],
                                  (self.impl,))
            elif self.normalization == "layernorm":
                h = _layernorm(op, h, p[f"gamma{i}"], p[f"beta{i}"], self.bn_params[i - 1], self.impl)
            h = h.relu()
            if self.use_dropout:
                h = _dropout(op, h, self.dropout_param, self._P_KEEPS)
        last = self.num_layers
        return _affine(h, p[f"W{last}"], p[f"b{last}"])


def _keep_ratio(op: str, value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating) or not 0 < value <= 1:
        raise ValueError(f"{op}: {name} is the probability of keeping a unit, in (0, 1]; got {value!r}")
    return float(value)


class FullyConnectedNet(_FullyConnectedNetBase):
    """A fully-connected net of any depth with ReLU, optional batch/layer norm and dropout.

    `dropout_keep_ratio` (or its 2019 name `dropout`) is the probability of
    keeping a unit; 1 means no dropout. `use_batchnorm=True` means
    normalization='batchnorm'. `impl` picks the BatchNorm/LayerNorm
    implementation ('fused' or 'composed'); both give the same numbers.
    """

    def __init__(
        self,
        hidden_dims: Sequence[int],
        input_dim: int = 3 * 32 * 32,
        num_classes: int = 10,
        dropout_keep_ratio: float = 1,
        normalization: str | None = None,
        reg: float = 0.0,
        weight_scale: float = 1e-2,
        dtype: Any = np.float32,
        seed: int | None = None,
        *,
        dropout: float | None = None,
        use_batchnorm: bool = False,
        impl: str = "fused",
    ):
        op = "FullyConnectedNet"
        keep = _keep_ratio(op, dropout_keep_ratio, "dropout_keep_ratio")
        if dropout is not None:
            if keep != 1 and not np.isclose(_keep_ratio(op, dropout, "dropout"), keep):
                raise ValueError(
                    f"{op}: dropout={dropout} and dropout_keep_ratio={dropout_keep_ratio} disagree "
                    f"(both are keep probabilities since 2019); pass one of them"
                )
            keep = _keep_ratio(op, dropout, "dropout")
        if use_batchnorm:
            if normalization not in ("batchnorm", None):
                raise ValueError(f"{op}: use_batchnorm=True contradicts normalization={normalization!r}")
            normalization = "batchnorm"
        self._setup(op, hidden_dims, input_dim, num_classes, None if keep == 1 else keep, normalization,
                    reg, weight_scale, dtype, seed, impl)
