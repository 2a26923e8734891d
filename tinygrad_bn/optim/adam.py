"""Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019), as torch.optim.Adam and AdamW."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from tinygrad_bn.optim._inplace import addcdiv_, maximum_, mul_, scale_add_, sqrt_plus, square
from tinygrad_bn.optim.optimizer import Optimizer, Slot, state_array
from tinygrad_bn.tensor import Tensor


class Adam(Optimizer):
    """Adam: steps along m / sqrt(v), running averages of g and g^2 corrected for their zero start.

    weight_decay adds weight_decay * p to the gradient (L2 regularisation, as in
    PyTorch's Adam); AdamW decays the weights directly instead. amsgrad divides
    by the largest v seen so far (Reddi et al. 2018). The step count t is kept
    per parameter.
    """

    state_keys = ("step", "exp_avg", "exp_avg_sq")
    optional_state_keys = ("max_exp_avg_sq",)

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize)
        super().__init__(params, defaults)

    def _update(self, group: dict[str, Any], params: Iterator[Slot]) -> None:
        lr, (beta1, beta2), eps, amsgrad = group["lr"], group["betas"], group["eps"], group["amsgrad"]
        decay = lr * group["weight_decay"] if self.decoupled_weight_decay else 0.0
        for p, g, state, tmp in params:
            if decay:
                mul_(p, 1 - decay)  # p <- p - lr wd p  (AdamW)
            if not state:  # the first step: m and v start at zero
                state.update(step=0, exp_avg=np.zeros_like(p), exp_avg_sq=np.zeros_like(p))
            t = state["step"] = state["step"] + 1
            m, v = state["exp_avg"], state["exp_avg_sq"]
            scale_add_(m, beta1, g, 1 - beta1, tmp)  # m <- beta1 m + (1 - beta1) g
            scale_add_(v, beta2, square(g, out=tmp), 1 - beta2, tmp)  # v <- beta2 v + (1 - beta2) g^2
            if amsgrad:
                v = maximum_(state_array(state, "max_exp_avg_sq", p), v)  # v <- max(v_max, v)
            # p <- p - lr m_hat / (sqrt(v_hat) + eps), m_hat = m / (1 - beta1^t), v_hat = v / (1 - beta2^t),
            # with the corrections folded into two scalars (Kingma & Ba, end of Section 2).
            correction2 = math.sqrt(1 - beta2**t)
            denom = sqrt_plus(v, eps * correction2, out=tmp)
            addcdiv_(p, m, denom, -lr * correction2 / (1 - beta1**t), tmp)


class AdamW(Adam):
    """Adam with decoupled weight decay: p <- p - lr wd p, then the Adam step on the plain gradient."""

    decoupled_weight_decay = True

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
