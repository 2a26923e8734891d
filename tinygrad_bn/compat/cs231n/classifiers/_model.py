"""The loss(X, y=None) every CS231n classifier shares: scores in test mode, else (loss, grads).

A model's forward pass is one graph over its current ``params`` arrays; the
softmax loss plus 0.5 * reg * sum(W**2) over its weight matrices is
differentiated in one backward pass. The parameters are read afresh on every
call (the numerical checks perturb them in place).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tinygrad_bn import functional as F
from tinygrad_bn.autograd import grad, no_grad
from tinygrad_bn.compat import _cast, _float_array, _labels
from tinygrad_bn.tensor import Tensor

Forward = Callable[[Tensor, dict[str, Tensor]], Tensor]


def classifier_loss(
    op: str,
    params: dict[str, np.ndarray],
    forward: Forward,
    X: Any,
    y: Any,
    reg: float,
    weight_keys: Sequence[str],
    input_dtype: Any = None,
) -> np.ndarray | tuple[float, dict[str, np.ndarray]]:
    """Scores (N, C) when y is None, else (softmax loss + L2 penalty, gradient per params key).

    X is cast to `input_dtype` if given (FullyConnectedNet's dtype), else to the
    parameters' dtype promoted with X's, as numpy arithmetic would; gradients
    come back in each parameter's own dtype.
    """
    X = _float_array(op, "X", X)
    dtype = np.dtype(input_dtype) if input_dtype is not None else np.result_type(
        X.dtype, *(np.asarray(v).dtype for v in params.values())
    )
    if y is None:
        with no_grad():
            leaves = {k: Tensor(np.asarray(v).astype(dtype, copy=False)) for k, v in params.items()}
            return forward(Tensor(X.astype(dtype, copy=False)), leaves).data
    leaves = {k: Tensor(np.asarray(v), requires_grad=True, name=k) for k, v in params.items()}
    cast = {k: _cast(t, dtype) for k, t in leaves.items()}
    scores = forward(Tensor(X.astype(dtype, copy=False)), cast)
    labels = _labels(op, y, X.shape[0], scores.shape[1])
    loss = F.cross_entropy(scores, labels)
    if reg:
        for key in weight_keys:
            # In each weight's own dtype, then widened: numpy sums a float32 W in float32.
            w = leaves[key]
            loss = loss + _cast((w * w).sum(), loss.dtype) * (0.5 * reg)
    names = list(leaves)
    grads = grad(loss, [leaves[k] for k in names], allow_unused=True)
    return float(loss.item()), {
        k: np.zeros_like(leaves[k].data) if g is None else np.array(g.data, copy=True)
        for k, g in zip(names, grads)
    }
