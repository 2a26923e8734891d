"""What every CS231n compat forward returns as its cache, and the checks the layers share.

A cache holds the forward pass's retained graph: its leaf inputs and its output
(one per implementation, e.g. composed and fused BatchNorm). A backward asks
autograd for the gradients of that graph, so one cache can be backpropagated
more than once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tinygrad_bn.compat import _backprop
from tinygrad_bn.tensor import Tensor

MODES = ("train", "test")


class GraphCache:
    """A forward pass's retained graph: its leaf inputs and its output per implementation."""

    __slots__ = ("kind", "inputs", "outputs")

    def __init__(self, kind: str, inputs: Sequence[Tensor], outputs: dict[str, Tensor]):
        self.kind, self.inputs, self.outputs = kind, tuple(inputs), outputs

    def __repr__(self) -> str:
        shapes = ", ".join(str(t.shape) for t in self.inputs)
        return f"<{self.kind} cache: retained graph over inputs {shapes}>"


def graph_backward(op: str, dout: Any, cache: Any, kind: str, impl: str = "default") -> tuple:
    """Backpropagate `dout` through the `impl` graph of a cache made by `<kind>_forward`."""
    if not isinstance(cache, GraphCache):
        raise TypeError(
            f"{op}: cache must be the cache returned by {kind}_forward, got {type(cache).__name__}"
        )
    if cache.kind != kind:
        raise ValueError(f"{op}: got the cache of {cache.kind}_forward, expected one from {kind}_forward")
    return _backprop(op, cache.outputs[impl], cache.inputs, dout)


def param_mode(op: str, param_name: str, param: Any) -> str:
    """param['mode'], checked: the dict must exist, hold 'mode', and the mode be train/test."""
    if not isinstance(param, dict):
        raise TypeError(
            f"{op}: {param_name} must be a dict such as {{'mode': 'train'}}, got {type(param).__name__}"
        )
    if "mode" not in param:
        raise ValueError(
            f"{op}: {param_name} has no 'mode' key; expected 'train' or 'test', e.g. {{'mode': 'train'}}"
        )
    if param["mode"] not in MODES:
        raise ValueError(f"{op}: invalid {param_name} mode {param['mode']!r}; expected 'train' or 'test'")
    return param["mode"]


