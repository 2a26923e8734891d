"""Gradient hooks: Tensor.register_hook and Tensor.retain_grad, run by the backward walk.

A hook on a non-leaf tensor lives on its node and sees the node's whole gradient
before the node's backward runs; a hook on a leaf sees the leaf's total gradient
before it is added to `.grad`. A hook returning a Tensor replaces the gradient.
"""

from __future__ import annotations

import itertools
import weakref
from collections import OrderedDict
from typing import Any

from tinygrad_bn.autograd.function import Context
from tinygrad_bn.tensor import Tensor

_handle_ids = itertools.count()


class RemovableHandle:
    """What every `register_*hook` returns (tensors' and modules'): `.remove()`, or leaving
    a `with` block, unregisters the hook."""

    def __init__(self, hooks: OrderedDict[int, Any]):
        self.id = next(_handle_ids)
        self._hooks = weakref.ref(hooks)

    def remove(self) -> None:
        """Unregister the hook (again is fine)."""
        hooks = self._hooks()
        if hooks is not None:
            hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


def register_hook(tensor: Tensor, hook: Any) -> RemovableHandle:
    """Call hook(grad) with the gradient of `tensor` in every backward; a returned Tensor replaces it."""
    if not callable(hook):
        raise TypeError(f"register_hook: hook must be callable, got {type(hook).__name__}")
    if not tensor._rg:
        raise RuntimeError("register_hook: cannot register a hook on a tensor that does not require grad")
    owner = tensor if tensor._ctx is None else tensor._ctx
    if getattr(owner, "_hooks", None) is None:
        owner._hooks = OrderedDict()  # an OrderedDict can be weakly referenced by the handle
    handle = RemovableHandle(owner._hooks)
    owner._hooks[handle.id] = hook
    return handle


def retain_grad(tensor: Tensor) -> None:
    """Keep the gradient of a non-leaf tensor in its `.grad` too (leaves always keep theirs)."""
    if not tensor._rg:
        raise RuntimeError("retain_grad: the tensor does not require grad")
    if tensor._ctx is not None:
        tensor._ctx._retained = weakref.ref(tensor)


def node_hooks(node: Context, g: Tensor) -> Tensor:
    """A node's tensor hooks, then retain_grad, on its whole gradient."""
    for hook in list((node._hooks or {}).values()):
        g = hooked_grad(hook, g, None)
    tensor = node._retained() if node._retained is not None else None
    if tensor is not None:
        kept = g.detach() if g._ctx is not None else g
        tensor.grad = kept if tensor.grad is None else tensor.grad + kept
    return g


def hooked_grad(hook: Any, g: Tensor, like: Tensor | None) -> Tensor:
    result = hook(g)
    if result is None:
        return g
    if not isinstance(result, Tensor) or result.shape != g.shape:
        raise RuntimeError(f"a gradient hook must return None or a Tensor of shape {g.shape}, "
                           f"got {type(result).__name__} {getattr(result, 'shape', '')}")
    return result
