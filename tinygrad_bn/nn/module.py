"""Module and Parameter: named parameters, buffers and sub-modules, hooks, dtypes, state dicts.

A Module registers a Parameter, a sub-Module or a buffer when it is assigned as
an attribute (buffers through `register_buffer`). Calling a module runs its
forward pre-hooks, `forward` inside a named scope (every op it records
remembers which module ran it; graph drawings draw one cluster per module),
then its forward hooks; full backward hooks see the gradients of the call's
inputs and outputs. The API follows torch.nn.Module.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from tinygrad_bn.autograd import is_grad_enabled, module_scope
from tinygrad_bn.autograd.hooks import RemovableHandle
from tinygrad_bn.nn.hooks import BackwardHookCall, add_hook
from tinygrad_bn.tensor import Tensor


class Parameter(Tensor):
    """A leaf Tensor that a Module owns and optimizers update (requires_grad by default)."""

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True, dtype: Any = None):
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self) -> str:
        return "Parameter" + super().__repr__()[len("Tensor"):]


class IncompatibleKeys(NamedTuple):
    """What `load_state_dict(strict=False)` could not match."""

    missing_keys: list[str]
    unexpected_keys: list[str]


def _as_buffer(value: Any) -> Tensor | None:
    return value if value is None or isinstance(value, Tensor) else Tensor(np.asarray(value))


def _copy(t: Tensor) -> Tensor:
    """A detached copy (its own array, no gradient)."""
    return Tensor(t.data.copy())


def _cast_in_place(t: Tensor, dtype: np.dtype) -> None:
    """Give `t` (a parameter or buffer) an array of `dtype`, keeping the Tensor object itself.

    Tensor.data refuses a dtype change on tensors that require grad, so the
    array is swapped directly, as torch.nn.Module.to swaps `.data`; the version
    bump makes graphs that saved the old array refuse backward.
    """
    if t.dtype.kind == "f" and t.dtype != dtype:
        t._data = t._data.astype(dtype)
        t._bump_version()
        if t.grad is not None:
            t.grad = Tensor(t.grad.data.astype(dtype))


class Module:
    """Base class of layers: subclasses set attributes in __init__ and define forward()."""

    def __init__(self) -> None:
        for name, value in [("_parameters", OrderedDict()), ("_buffers", OrderedDict()),
                            ("_non_persistent_buffers", set()), ("_modules", OrderedDict()),
                            ("_forward_pre_hooks", OrderedDict()), ("_forward_hooks", OrderedDict()),
                            ("_backward_hooks", OrderedDict()),
                            ("training", True)]:
            object.__setattr__(self, name, value)

    # ---------------------------------------------------------------- registration

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(
                f"{type(self).__name__}: call super().__init__() before assigning attributes"
            )
        for registry in (self._parameters, self._modules):
            registry.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        elif name in self._buffers:
            value = self._buffers[name] = _as_buffer(value)
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        self._non_persistent_buffers.discard(name)
        object.__delattr__(self, name)

    def register_buffer(self, name: str, tensor: Tensor | np.ndarray | None, persistent: bool = True) -> None:
        """Register state that is not trained (e.g. running statistics); persistent ones are in state_dict."""
        self._buffers[name] = tensor = _as_buffer(tensor)
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)
        object.__setattr__(self, name, tensor)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register `param` (or None, keeping the name) under `name`."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"{type(self).__name__}.register_parameter: {name!r} must be a Parameter or "
                            f"None, got {type(param).__name__}")
        self.__setattr__(name, param)
        self._parameters[name] = param

    def add_module(self, name: str, module: Module | None) -> None:
        """Register `module` (or None, keeping the name) as the child `name`."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}.add_module: {name!r} must be a Module or None, "
                            f"got {type(module).__name__}")
        self.__setattr__(name, module)
        self._modules[name] = module

    register_module = add_module

    # ---------------------------------------------------------------- traversal

    def named_modules(self, prefix: str = "", memo: set[int] | None = None,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Module]]:
        """(dotted name, module) for this module and every descendant, depth first, each once.

        `prefix` comes first (PyTorch has `memo` first), as callers pass it positionally.
        """
        memo = set() if memo is None else memo
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(f"{prefix}.{name}" if prefix else name, memo, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        """This module and every descendant."""
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """(name, module) for the direct sub-modules."""
        seen: set[int] = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self) -> Iterator[Module]:
        """The direct sub-modules."""
        for _, child in self.named_children():
            yield child

    def _named_members(self, registry: str, prefix: str, recurse: bool) -> Iterator[tuple[str, Tensor]]:
        seen: set[int] = set()
        modules = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mod_name, mod in modules:
            for name, t in getattr(mod, registry).items():
                if t is not None and id(t) not in seen:
                    seen.add(id(t))
                    yield (f"{mod_name}.{name}" if mod_name else name), t

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) pairs, each parameter once, in registration order."""
        yield from self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True) -> list[Parameter]:
        """All parameters, each once, in registration order."""
        return [p for _, p in self.named_parameters(recurse=recurse)]

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        """(dotted name, buffer) pairs."""
        yield from self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True) -> list[Tensor]:
        """All buffers."""
        return [b for _, b in self.named_buffers(recurse=recurse)]

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call fn on every sub-module (children first) and then on this module; returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ---------------------------------------------------------------- modes, grads, dtypes

    def train(self, mode: bool = True) -> Module:
        """Switch this module and its descendants to training mode (or eval if mode=False)."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Switch to evaluation mode (e.g. BatchNorm uses its running statistics)."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Turn gradient recording for every parameter on or off; returns self."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the accumulated gradients of every parameter."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.data.fill(0)

    def to(self, *args: Any, dtype: Any = None, device: Any = None) -> Module:
        """Cast float parameters and buffers to `dtype`, in place: the Tensors stay the same objects.

        So an optimizer built before still updates them. Accepts `to(dtype)`,
        `to(tensor)` (its dtype) and the device "cpu" (the only one).
        """
        for arg in args:
            if isinstance(arg, Tensor):
                dtype = arg.dtype
            elif isinstance(arg, str) and arg.split(":")[0] in ("cpu", "cuda", "mps"):
                device = arg
            else:
                dtype = arg
        if device is not None and str(device) != "cpu":
            raise ValueError(f"{type(self).__name__}.to: device {device!r} is not available; "
                             "tinygrad_bn runs on the CPU (device 'cpu')")
        if dtype is None:
            return self
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"{type(self).__name__}.to: {dtype!r} is neither a dtype nor the device 'cpu'"
                            ) from None
        if dtype.kind != "f":
            raise TypeError(f"{type(self).__name__}.to: only float dtypes are allowed, got {dtype}")
        for t in [*self.parameters(), *self.buffers()]:
            _cast_in_place(t, dtype)
        return self

    def float(self) -> Module:
        """Cast float parameters and buffers to float32."""
        return self.to(np.float32)

    def double(self) -> Module:
        """Cast float parameters and buffers to float64."""
        return self.to(np.float64)

    # ---------------------------------------------------------------- state

    def state_dict(self, *, prefix: str = "", keep_vars: bool = False) -> OrderedDict[str, Tensor]:
        """Every parameter and persistent buffer by dotted name, as detached copies (or, keep_vars, as is)."""
        state: OrderedDict[str, Tensor] = OrderedDict()
        for mod_name, mod in self.named_modules(prefix=prefix, remove_duplicate=False):
            at = f"{mod_name}." if mod_name else ""
            entries = [*mod._parameters.items(),
                       *((k, b) for k, b in mod._buffers.items() if k not in mod._non_persistent_buffers)]
            for name, t in entries:
                if t is not None:
                    state[at + name] = t if keep_vars else _copy(t)
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy values (Tensors or arrays) into the parameters and buffers, in place, after checking all.

        A PyTorch `state_dict()` of the same architecture, converted to numpy
        arrays, loads too. Raises on missing or unexpected keys unless
        strict=False, which returns them instead.
        """
        name = f"{type(self).__name__}.load_state_dict"
        targets = self.state_dict(keep_vars=True)
        keys = IncompatibleKeys([k for k in targets if k not in state_dict],
                                [k for k in state_dict if k not in targets])
        if strict and (keys.missing_keys or keys.unexpected_keys):  # RuntimeError, as in PyTorch
            raise RuntimeError(f"{name}: missing keys {keys.missing_keys}, "
                               f"unexpected keys {keys.unexpected_keys}")
        values = {}
        for key, value in state_dict.items():
            if key in targets:
                values[key] = array = np.asarray(value.data if isinstance(value, Tensor) else value)
                target = targets[key]
                if array.shape != target.shape:
                    raise RuntimeError(f"{name}: {key} has shape {array.shape}, expected {target.shape}")
                if not np.can_cast(array.dtype, target.dtype, casting="same_kind"):
                    raise TypeError(f"{name}: {key} has dtype {array.dtype}, expected {target.dtype}")
        for key, array in values.items():
            np.copyto(targets[key].data, array, casting="same_kind")
            targets[key]._bump_version()  # graphs that saved the old values now refuse backward
        return keys

    # ---------------------------------------------------------------- hooks

    def register_forward_pre_hook(self, hook: Callable[[Module, tuple], Any]) -> RemovableHandle:
        """hook(module, args) runs before forward; a non-None result replaces args."""
        return add_hook(self._forward_pre_hooks, hook, "forward_pre_hook")

    def register_forward_hook(self, hook: Callable[[Module, tuple, Any], Any]) -> RemovableHandle:
        """hook(module, args, output) runs after forward; a non-None result replaces the output."""
        return add_hook(self._forward_hooks, hook, "forward_hook")

    def register_full_backward_hook(self, hook: Callable[[Module, tuple, tuple], Any]) -> RemovableHandle:
        """hook(module, grad_input, grad_output) runs in backward; a non-None result replaces grad_input.

        grad_input has one entry per positional argument of the call (None for
        non-tensors and tensors that need no gradient), grad_output one per output.
        """
        return add_hook(self._backward_hooks, hook, "full_backward_hook")

    # ---------------------------------------------------------------- calling

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not (self._forward_pre_hooks or self._forward_hooks or self._backward_hooks):
            with module_scope(self):
                return self.forward(*args, **kwargs)
        return self._call_with_hooks(args, kwargs)

    def _call_with_hooks(self, args: tuple, kwargs: dict) -> Any:
        for hook in list(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        backward = None
        if self._backward_hooks and is_grad_enabled():
            backward = BackwardHookCall(self, self._backward_hooks.values())
            args = backward.wrap_inputs(args)
        with module_scope(self):
            output = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, output)
            if result is not None:
                output = result
        return output if backward is None else backward.wrap_outputs(output)

    def extra_repr(self) -> str:
        """Details shown inside the parentheses of repr()."""
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in self._modules.items():
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child_repr}")
        return lines[0] + ")" if len(lines) == 1 else "\n".join(lines) + "\n)"
