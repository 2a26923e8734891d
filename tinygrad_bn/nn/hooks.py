"""Module hooks: removable handles, and the identity nodes behind full backward hooks.

A full backward hook, `hook(module, grad_input, grad_output)`, runs once the
gradients of a module call's positional tensor inputs are known, and may
return replacements for them, as in PyTorch. Made from the public Function
API only: the call's tensor inputs pass through an identity node whose
backward sees all their gradients at once and calls the hooks, and its
outputs through another that records grad_output on the way. For one tensor
the node is a plain identity; for several, `_Pack` joins them into one flat
tensor that `_Unpack` nodes slice back, so a single node still sees them all.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tinygrad_bn.autograd import Context, Function
from tinygrad_bn.autograd.hooks import RemovableHandle
from tinygrad_bn.tensor import Tensor

Grads = tuple[Tensor | None, ...]

def add_hook(hooks: OrderedDict[int, Callable], hook: Callable, kind: str) -> RemovableHandle:
    """Register `hook` in `hooks` and return its handle; `kind` names the registration in errors."""
    if not callable(hook):
        raise TypeError(f"register_{kind}: hook must be callable, got {type(hook).__name__}")
    handle = RemovableHandle(hooks)
    hooks[handle.id] = hook
    return handle


# ---------------------------------------------------------------- identity nodes


class _HookIdentity(Function):
    """y = x; backward hands the gradient to `on_grads` and passes on what it returns."""

    name = "backward_hook"

    @staticmethod
    def forward(ctx: Context, x: Tensor, on_grads: Callable[[Grads], Grads]) -> np.ndarray:
        ctx.on_grads = on_grads
        return x.data

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> Tensor | None:
        return ctx.on_grads((grad,))[0]


class _Pack(Function):
    """The inputs raveled into one flat tensor; backward splits the gradient and hands it to `on_grads`."""

    name = "backward_hook"

    @staticmethod
    def forward(ctx: Context, *xs: Tensor, on_grads: Callable[[Grads], Grads],
                reached: list[bool]) -> np.ndarray:
        ctx.on_grads, ctx.reached = on_grads, reached
        ctx.pieces = _pieces(xs)
        return np.concatenate([x.data.ravel() for x in xs]).astype(np.result_type(*xs), copy=False)

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> Grads:
        # An input none of whose consumers delivered a gradient gets None, as in PyTorch.
        grads = tuple(grad[start:stop].reshape(shape) if seen else None
                      for (start, stop, shape), seen in zip(ctx.pieces, ctx.reached))
        return ctx.on_grads(grads)


class _Unpack(Function):
    """Piece `index` of a packed tensor, in its own shape and dtype."""

    name = "backward_hook"

    @staticmethod
    def forward(ctx: Context, packed: Tensor, piece: tuple, dtype: np.dtype, reached: list[bool],
                index: int) -> np.ndarray:
        ctx.piece, ctx.size, ctx.reached, ctx.index = piece, packed.numel(), reached, index
        start, stop, shape = piece
        return packed.data[start:stop].reshape(shape).astype(dtype, copy=False)

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> Tensor:
        ctx.reached[ctx.index] = True
        return _Embed.apply(grad, piece=ctx.piece, size=ctx.size)


class _Embed(Function):
    """A gradient placed into zeros of the packed size (the adjoint of _Unpack; its own adjoint slices)."""

    name = "backward_hook"

    @staticmethod
    def forward(ctx: Context, grad: Tensor, piece: tuple, size: int) -> np.ndarray:
        ctx.piece = piece
        start, stop, _ = piece
        out = np.zeros(size, grad.dtype)
        out[start:stop] = grad.data.ravel()
        return out

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> Tensor:
        start, stop, shape = ctx.piece
        return grad[start:stop].reshape(shape)


def _pieces(xs: Sequence[Tensor]) -> list[tuple[int, int, tuple[int, ...]]]:
    """(start, stop, shape) of each tensor inside the flat packed one."""
    stops = list(itertools.accumulate(x.numel() for x in xs))
    return [(stop - x.numel(), stop, x.shape) for x, stop in zip(xs, stops)]


def through_identity(tensors: Sequence[Tensor], on_grads: Callable[[Grads], Grads]) -> list[Tensor]:
    """`tensors` again, behind one identity node whose backward calls `on_grads(their gradients)`."""
    if len(tensors) == 1:
        return [_HookIdentity.apply(tensors[0], on_grads=on_grads)]
    reached = [False] * len(tensors)
    packed = _Pack.apply(*tensors, on_grads=on_grads, reached=reached)
    pieces = _pieces(tensors)
    return [_Unpack.apply(packed, piece=piece, dtype=t.dtype, reached=reached, index=i)
            for i, (t, piece) in enumerate(zip(tensors, pieces))]


# ---------------------------------------------------------------- one hooked module call


class BackwardHookCall:
    """The backward hooks of one module call: grad_output is recorded, then the hooks get grad_input."""

    def __init__(self, module: Any, hooks: Sequence[Callable]):
        self.module, self.hooks = module, list(hooks)
        self.n_inputs, self.input_slots = 0, []
        self.grad_output: Grads = ()
        self.n_outputs, self.output_slots = 0, []

    def wrap_inputs(self, args: tuple) -> tuple:
        """args with every tensor that requires grad routed through the input identity node."""
        self.n_inputs = len(args)
        self.input_slots = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
        if not self.input_slots:
            return args
        wrapped = through_identity([args[i] for i in self.input_slots], self._on_input_grads)
        args = list(args)
        for i, t in zip(self.input_slots, wrapped):
            args[i] = t
        return tuple(args)

    def wrap_outputs(self, output: Any) -> Any:
        """The output (a Tensor or a tuple/list of them) routed through the output identity node."""
        outputs = output if isinstance(output, tuple | list) else (output,)
        self.n_outputs = len(outputs)
        self.output_slots = [i for i, o in enumerate(outputs) if isinstance(o, Tensor) and o.requires_grad]
        if not self.output_slots:
            return output
        wrapped = list(outputs)
        for i, t in zip(self.output_slots, through_identity([outputs[i] for i in self.output_slots],
                                                            self._on_output_grads)):
            wrapped[i] = t
        return type(output)(wrapped) if isinstance(output, tuple | list) else wrapped[0]

    def _on_output_grads(self, grads: Grads) -> Grads:
        self.grad_output = _spread(grads, self.output_slots, self.n_outputs)
        if not self.input_slots:  # no input gradient will come: the hooks run now
            self._run_hooks((None,) * self.n_inputs)
        return grads

    def _on_input_grads(self, grads: Grads) -> Grads:
        grad_input = self._run_hooks(_spread(grads, self.input_slots, self.n_inputs))
        return tuple(grad_input[i] for i in self.input_slots)

    def _run_hooks(self, grad_input: Grads) -> Grads:
        grad_output = self.grad_output or (None,) * self.n_outputs
        for hook in self.hooks:
            result = hook(self.module, grad_input, grad_output)
            if result is None:
                continue
            result = tuple(result) if isinstance(result, tuple | list) else (result,)
            if len(result) != len(grad_input):
                raise RuntimeError(f"backward hook {getattr(hook, '__name__', hook)!r} of "
                                   f"{type(self.module).__name__} returned {len(result)} gradients, "
                                   f"expected {len(grad_input)} (one per positional input)")
            grad_input = result
        return grad_input


def _spread(grads: Grads, slots: Sequence[int], n: int) -> Grads:
    """Gradients of the tensors at `slots`, as a tuple of n entries with None elsewhere."""
    spread: list[Tensor | None] = [None] * n
    for i, g in zip(slots, grads):
        spread[i] = g
    return tuple(spread)
