"""Reverse-mode autodiff: Function/Context, the backward walk, per-thread grad modes.

    grad_mode.py   no_grad / enable_grad / set_grad_enabled, detect_anomaly, module scope
    function.py    Function (forward + backward of one op) and Context (what it saved)
    graph.py       the backward walk (Kahn's algorithm), backward() and grad()
    hooks.py       Tensor.register_hook and retain_grad
"""

from tinygrad_bn.autograd.function import BackwardTrace, Context, Function
from tinygrad_bn.autograd.grad_mode import (
    AnomalyError,
    backward_trace,
    detect_anomaly,
    enable_grad,
    is_anomaly_enabled,
    is_grad_enabled,
    module_scope,
    no_grad,
    set_grad_enabled,
)
from tinygrad_bn.autograd.graph import backward, grad, run_backward

__all__ = [
    "AnomalyError", "BackwardTrace", "Context", "Function", "backward", "backward_trace",
    "detect_anomaly", "enable_grad", "grad", "is_anomaly_enabled", "is_grad_enabled",
    "module_scope", "no_grad", "run_backward", "set_grad_enabled",
]
