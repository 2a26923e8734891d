"""SGD with momentum, dampening, Nesterov momentum and L2 weight decay (PyTorch's torch.optim.SGD)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from tinygrad_bn.optim._inplace import add_, scale_add_
from tinygrad_bn.optim.optimizer import Optimizer, Slot
from tinygrad_bn.tensor import Tensor


class SGD(Optimizer):
    """Stochastic gradient descent: p <- p - lr d, d the (momentum-averaged) gradient.

    Momentum follows PyTorch (and Sutskever et al. 2013 as PyTorch writes it):
    the buffer accumulates gradients, b <- momentum b + (1 - dampening) g,
    starting from b = g, and the learning rate multiplies it when stepping.
    Nesterov's look-ahead steps along g + momentum b with the updated buffer.
    """

    optional_state_keys = ("momentum_buffer",)

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _checked(self, group: dict[str, Any], where: str) -> dict[str, Any]:
        group = super()._checked(group, where)
        if group.get("nesterov") and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"SGD: {where}nesterov=True needs a momentum > 0 and dampening=0, got "
                             f"momentum={group['momentum']}, dampening={group['dampening']}")
        return group

    def _update(self, group: dict[str, Any], params: Iterator[Slot]) -> None:
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        for p, g, state, tmp in params:
            if momentum:
                b = state.get("momentum_buffer")
                if b is None:
                    b = state["momentum_buffer"] = g.astype(p.dtype)  # the first step: b <- g (a copy)
                else:
                    scale_add_(b, momentum, g, 1 - dampening, tmp)  # b <- momentum b + (1 - dampening) g
                if group["nesterov"]:
                    add_(p, g, -lr, tmp)  # p <- p - lr (g + momentum b)
                    add_(p, b, -lr * momentum, tmp)
                    continue
                g = b
            add_(p, g, -lr, tmp)  # p <- p - lr d
