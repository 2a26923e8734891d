"""CS231n's FullyConnectedNet, with its parameters in a dict of numpy arrays.

Replaces ``from cs231n.classifiers.fc_net import *``. The architecture is

    {affine - [batch/layer norm] - relu - [dropout]} x (L - 1) - affine - softmax

`loss` builds the whole forward pass as one tinygrad_bn graph over the current
``model.params`` arrays and gets every gradient from one backward pass.
Initialisation draws from numpy's global RNG exactly as the course's does, so a
seeded notebook prints the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_bn import functional as F
from tinygrad_bn.autograd import grad, no_grad
from tinygrad_bn.compat import _float_array, _labels
from tinygrad_bn.compat.cs231n.layers import _affine, _batchnorm, _dropout, _layernorm
from tinygrad_bn.tensor import Tensor

__all__ = ["FullyConnectedNet"]

NORMALIZATIONS = ("batchnorm", "layernorm", None)
IMPLS = ("composed", "fused")


class FullyConnectedNet:
    """A fully-connected net of any depth with ReLU, optional batch/layer norm and dropout.

    `dropout` is the drop probability (0 = no dropout, the 2017 course); the newer
    `dropout_keep_ratio` (1 = no dropout) is accepted instead. `use_batchnorm=True`
    means normalization='batchnorm'. `impl` picks the BatchNorm/LayerNorm
    implementation ('fused' or 'composed'); both give the same numbers.
    """

    def __init__(
        self,
        hidden_dims: Sequence[int],
        input_dim: int = 3 * 32 * 32,
        num_classes: int = 10,
        dropout: float = 0,
        use_batchnorm: bool = False,
        normalization: str | None = None,
        reg: float = 0.0,
        weight_scale: float = 1e-2,
        dtype: Any = np.float32,
        seed: int | None = None,
        *,
        dropout_keep_ratio: float | None = None,
        impl: str = "fused",
    ):
        op = "FullyConnectedNet"
        hidden_dims = list(hidden_dims)
        for d in [*hidden_dims, input_dim, num_classes]:
            if isinstance(d, bool) or not isinstance(d, int | np.integer) or d < 1:
                raise ValueError(
                    f"{op}: hidden_dims, input_dim and num_classes must be positive ints, got "
                    f"hidden_dims={hidden_dims}, input_dim={input_dim!r}, num_classes={num_classes!r}"
                )
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"{op}: normalization must be 'batchnorm', 'layernorm' or None, got {normalization!r}"
            )
        if use_batchnorm:
            if normalization not in ("batchnorm", None):
                raise ValueError(f"{op}: use_batchnorm=True contradicts normalization={normalization!r}")
            normalization = "batchnorm"
        if impl not in IMPLS:
            raise ValueError(f"{op}: impl must be 'composed' or 'fused', got {impl!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"{op}: dropout is the drop probability, in [0, 1); got {dropout!r}")
        keep = 1.0 - dropout
        if dropout_keep_ratio is not None:
            if not 0 < dropout_keep_ratio <= 1:
                raise ValueError(f"{op}: dropout_keep_ratio must be in (0, 1], got {dropout_keep_ratio!r}")
            if dropout and not np.isclose(dropout_keep_ratio, keep):
                raise ValueError(
                    f"{op}: dropout={dropout} (drop probability) and dropout_keep_ratio="
                    f"{dropout_keep_ratio} disagree; pass one of them"
                )
            keep = float(dropout_keep_ratio)
        if np.dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"{op}: dtype must be float32 or float64, got {np.dtype(dtype)}")

        self.normalization = normalization
        self.use_batchnorm = normalization == "batchnorm"
        self.use_dropout = keep != 1
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
            self.dropout_param = {"mode": "train", "p": keep}
            if seed is not None:
                self.dropout_param["seed"] = seed
        self.bn_params: list[dict[str, Any]] = []
        if normalization == "batchnorm":
            self.bn_params = [{"mode": "train"} for _ in range(self.num_layers - 1)]
        elif normalization == "layernorm":
            self.bn_params = [{} for _ in range(self.num_layers - 1)]

    def loss(
        self, X: np.ndarray, y: np.ndarray | None = None
    ) -> np.ndarray | tuple[float, dict[str, np.ndarray]]:
        """Class scores (N, C) when y is None (test mode), else (loss, grads) in train mode.

        The loss includes 0.5 * reg * sum(W**2) over every weight matrix; grads maps
        each params key to its gradient. The current ``self.params`` arrays are read
        on every call (numerical checks perturb them in place).
        """
        op = "FullyConnectedNet.loss"
        X = _float_array(op, "X", X).astype(self.dtype)
        input_dim = self.params["W1"].shape[0]
        if X.ndim < 1 or int(np.prod(X.shape[1:], dtype=np.int64)) != input_dim:
            raise ValueError(
                f"{op}: X of shape {X.shape} does not have input_dim={input_dim} values per example"
            )
        train = y is not None
        mode = "train" if train else "test"
        if self.use_dropout:
            self.dropout_param["mode"] = mode
        if self.normalization == "batchnorm":
            for bn_param in self.bn_params:
                bn_param["mode"] = mode
        if not train:
            with no_grad():
                return self._forward(op, Tensor(X), self._leaves(False)).data
        labels = _labels(op, y, X.shape[0], self.params[f"W{self.num_layers}"].shape[1])
        leaves = self._leaves(True)
        scores = self._forward(op, Tensor(X), leaves)
        loss = F.cross_entropy(scores, labels)
        if self.reg:
            for i in range(1, self.num_layers + 1):
                w = leaves[f"W{i}"]
                loss = loss + 0.5 * self.reg * (w * w).sum()
        names = list(leaves)
        grads = grad(loss, [leaves[k] for k in names], allow_unused=True)
        return float(loss.item()), {
            k: np.zeros_like(leaves[k].data) if g is None else np.array(g.data, copy=True)
            for k, g in zip(names, grads)
        }

    def _leaves(self, requires_grad: bool) -> dict[str, Tensor]:
        """The current parameter arrays as graph leaves (sharing memory, not copied)."""
        return {k: Tensor(np.asarray(v), requires_grad=requires_grad, name=k)
                for k, v in self.params.items()}

    def _forward(self, op: str, x: Tensor, p: dict[str, Tensor]) -> Tensor:
        """The scores, built from the layer graph builders, drawing dropout masks layer by layer."""
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
                h = _dropout(op, h, self.dropout_param)
        last = self.num_layers
        return _affine(h, p[f"W{last}"], p[f"b{last}"])
