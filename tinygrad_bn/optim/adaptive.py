"""Adagrad (Duchi et al. 2011) and RMSprop (Hinton, lecture 6e): per-coordinate steps from squared gradients.

Both divide the gradient by the root of an accumulated g^2: Adagrad by the
sum over all steps (so its steps only shrink), RMSprop by a running average
(so they adapt). They follow torch.optim.Adagrad and torch.optim.RMSprop.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from tinygrad_bn.optim._inplace import add_, addcdiv_, addcmul, addcmul_, mul_, scale_add_, sqrt_plus, square
from tinygrad_bn.optim.optimizer import Optimizer, Slot, state_array
from tinygrad_bn.tensor import Tensor


class Adagrad(Optimizer):
    """p <- p - lr_t g / (sqrt(s) + eps): s sums every g^2 so far, lr_t = lr / (1 + (t - 1) lr_decay)."""

    state_keys = ("step", "sum")

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
    ):
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, eps=eps, maximize=maximize)
        super().__init__(params, defaults)
        for group in self.param_groups:  # PyTorch creates Adagrad's state up front
            for p in group["params"]:
                self._init_state(self.state[p], p.data)

    def _init_state(self, state: dict, p: np.ndarray) -> None:
        # PyTorch starts every group's sums at the constructor's value, even a group that sets its own
        state.update(step=0, sum=np.full_like(p, self.defaults["initial_accumulator_value"]))

    def _update(self, group: dict[str, Any], params: Iterator[Slot]) -> None:
        lr, lr_decay, eps = group["lr"], group["lr_decay"], group["eps"]
        for p, g, state, tmp in params:
            if not state:  # a group added after the constructor
                self._init_state(state, p)
            t = state["step"] = state["step"] + 1
            lr_t = lr / (1 + (t - 1) * lr_decay)
            s = addcmul_(state["sum"], g, g, 1.0, tmp)  # s <- s + g^2
            addcdiv_(p, g, sqrt_plus(s, eps, out=tmp), -lr_t, tmp)  # p <- p - lr_t g / (sqrt(s) + eps)


class RMSprop(Optimizer):
    """p <- p - lr g / (sqrt(v) + eps), v a running average of g^2 (alpha the fraction kept each step).

    centered=True divides by an estimate of the variance instead, v - gbar^2
    with gbar the running average of g; momentum > 0 averages the steps.
    """

    state_keys = ("step", "square_avg")
    optional_state_keys = ("momentum_buffer", "grad_avg")

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                        centered=centered, maximize=maximize)
        super().__init__(params, defaults)

    def _update(self, group: dict[str, Any], params: Iterator[Slot]) -> None:
        lr, alpha, eps, momentum = group["lr"], group["alpha"], group["eps"], group["momentum"]
        for p, g, state, tmp in params:
            if not state:  # the first step: v starts at zero
                state.update(step=0, square_avg=np.zeros_like(p))
            state["step"] += 1
            v = state["square_avg"]
            scale_add_(v, alpha, square(g, out=tmp), 1 - alpha, tmp)  # v <- alpha v + (1 - alpha) g^2
            if group["centered"]:  # v - gbar^2 estimates the variance, gbar the running average of g
                gbar = scale_add_(state_array(state, "grad_avg", p), alpha, g, 1 - alpha, tmp)
                denom = sqrt_plus(addcmul(v, gbar, gbar, -1.0, out=tmp), eps, out=tmp)
            else:
                denom = sqrt_plus(v, eps, out=tmp)
            if momentum > 0:  # b <- momentum b + g / (sqrt(v) + eps);  p <- p - lr b
                b = addcdiv_(mul_(state_array(state, "momentum_buffer", p), momentum), g, denom, 1.0, tmp)
                add_(p, b, -lr, tmp)
            else:
                addcdiv_(p, g, denom, -lr, tmp)  # p <- p - lr g / (sqrt(v) + eps)
