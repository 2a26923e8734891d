"""Higher-level derivatives with torch.autograd.functional's signatures.

    vjp(f, x, v)      v^T J           one backward pass
    jvp(f, x, v)      J v             two backward passes (the double-vjp trick below)
    jacobian(f, x)    J               one backward pass per output element
    hessian(f, x)     d^2 f / dx^2    the jacobian of the gradient
    hvp / vhp(f, x, v)  H v, v^T H    a backward pass through the gradient

`inputs` is a Tensor or a tuple of Tensors, and results follow the same
structure, as in PyTorch. The functions never touch `.grad`; they work on
detached copies of the inputs, so `f` sees fresh leaves.

This module is not part of the engine core (autograd/__init__ does not import it):
it builds on the Tensor ops, like any user of the engine. `import tinygrad_bn`
loads it, so `tinygrad_bn.autograd.functional.jacobian` works as in PyTorch.

The double-vjp trick: with u a dummy cotangent, g(u) = J^T u is linear in u,
so d<g(u), v>/du = J v. Reverse mode twice gives a forward-mode product.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tinygrad_bn.autograd.grad_mode import enable_grad
from tinygrad_bn.autograd.graph import grad
from tinygrad_bn.functional.shape import stack
from tinygrad_bn.tensor import Tensor


def _as_tuple(op: str, value: Any, arg: str) -> tuple[tuple[Tensor, ...], bool]:
    """(value as a tuple of Tensors, whether it was a tuple)."""
    if isinstance(value, Tensor):
        return (value,), False
    if isinstance(value, tuple | list) and all(isinstance(v, Tensor) for v in value):
        return tuple(value), True
    raise TypeError(f"{op}: {arg} must be a Tensor or a tuple of Tensors, got {type(value).__name__}")


def _fresh(inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    return tuple(x.detach().to(x.dtype if x.dtype.kind == "f" else np.float64).requires_grad_()
                 for x in inputs)


def _call(op: str, func: Callable[..., Any], inputs: tuple[Tensor, ...]) -> tuple[tuple[Tensor, ...], bool]:
    with enable_grad():
        out = func(*inputs)
    return _as_tuple(op, out, "the function's output")


def _grads(outputs: tuple[Tensor, ...], inputs: tuple[Tensor, ...], cotangents: Any,
           create_graph: bool) -> tuple[Tensor, ...]:
    """d<outputs, cotangents>/d inputs, zeros for inputs the outputs do not depend on."""
    live = [i for i, o in enumerate(outputs) if o.requires_grad]
    if not live:
        return tuple(Tensor(np.zeros(x.shape, x.dtype)) for x in inputs)
    got = grad([outputs[i] for i in live], list(inputs), [cotangents[i] for i in live],
               create_graph=create_graph, retain_graph=True, allow_unused=True)
    return tuple(Tensor(np.zeros(x.shape, x.dtype)) if g is None else g for g, x in zip(got, inputs))


def _check_v(op: str, v: Any, like: tuple[Tensor, ...], what: str) -> tuple[Tensor, ...]:
    if v is None:
        if len(like) != 1 or like[0].numel() != 1:
            raise ValueError(f"{op}: v can be omitted only when the {what} is a single one-element Tensor")
        return (Tensor(np.ones(like[0].shape, like[0].dtype)),)
    vs, _ = _as_tuple(op, v, "v")
    if len(vs) != len(like) or any(a.shape != b.shape for a, b in zip(vs, like)):
        raise ValueError(f"{op}: v has shapes {[a.shape for a in vs]}, expected the {what}'s "
                         f"{[b.shape for b in like]}")
    return vs


def _out(values: tuple[Tensor, ...], was_tuple: bool, create_graph: bool) -> Any:
    values = values if create_graph else tuple(t.detach() for t in values)
    return values if was_tuple else values[0]


def vjp(func: Callable[..., Any], inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False) -> tuple[Any, Any]:
    """(func(inputs), v^T J): the vector-Jacobian product."""
    xs, in_tuple = _as_tuple("vjp", inputs, "inputs")
    xs = _fresh(xs)
    outs, out_tuple = _call("vjp", func, xs)
    vs = _check_v("vjp", v, outs, "output")
    grads = _grads(outs, xs, vs, create_graph)
    return _out(outs, out_tuple, create_graph), _out(grads, in_tuple, create_graph)


def jvp(func: Callable[..., Any], inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False) -> tuple[Any, Any]:
    """(func(inputs), J v): the Jacobian-vector product, by two reverse passes."""
    xs, in_tuple = _as_tuple("jvp", inputs, "inputs")
    xs = _fresh(xs)
    vs = _check_v("jvp", v, xs, "input")
    outs, out_tuple = _call("jvp", func, xs)
    with enable_grad():
        dummies = tuple(Tensor(np.zeros(o.shape, o.dtype), requires_grad=True) for o in outs)
        g = _grads(outs, xs, dummies, create_graph=True)  # J^T u, linear in u
        jv = _grads(g, dummies, vs, create_graph)  # d<J^T u, v>/du = J v
    return _out(outs, out_tuple, create_graph), _out(jv, out_tuple, create_graph)


def jacobian(func: Callable[..., Any], inputs: Any, create_graph: bool = False, strict: bool = False,
             vectorize: bool = False, strategy: str = "reverse-mode") -> Any:
    """d func / d inputs, shaped output.shape + input.shape (nested tuples for tuples), as PyTorch."""
    if strategy != "reverse-mode":
        raise ValueError(f"jacobian: only strategy='reverse-mode' is implemented, got {strategy!r}")
    xs, in_tuple = _as_tuple("jacobian", inputs, "inputs")
    xs = _fresh(xs)
    outs, out_tuple = _call("jacobian", func, xs)
    rows = []
    for k, out in enumerate(outs):
        per_input: list[list[Tensor]] = [[] for _ in xs]
        for i in range(out.numel()):
            onehot = np.zeros(out.numel(), out.dtype)
            onehot[i] = 1.0
            cot = [Tensor(np.zeros(o.shape, o.dtype)) for o in outs]
            cot[k] = Tensor(onehot.reshape(out.shape))
            for j, g in enumerate(_grads(outs, xs, cot, create_graph)):
                per_input[j].append(g.reshape(-1))
        blocks = []
        for x, pieces in zip(xs, per_input):
            stacked = Tensor(np.zeros((0, x.numel()), x.dtype)) if not pieces else stack(pieces, 0)
            blocks.append(stacked.reshape(*out.shape, *x.shape))
        rows.append(tuple(_out(tuple(blocks), True, create_graph)))
    if not out_tuple:
        return rows[0] if in_tuple else rows[0][0]
    return tuple(r if in_tuple else r[0] for r in rows)


def hessian(func: Callable[..., Any], inputs: Any, create_graph: bool = False, strict: bool = False,
            vectorize: bool = False, outer_jacobian_strategy: str = "reverse-mode") -> Any:
    """The matrix of second derivatives of a scalar func (nested tuples for several inputs)."""
    xs, in_tuple = _as_tuple("hessian", inputs, "inputs")

    def gradient(*args: Tensor) -> Any:
        outs, _ = _call("hessian", func, args)
        if len(outs) != 1 or outs[0].numel() != 1:
            raise ValueError("hessian: the function must return a single one-element Tensor")
        g = _grads(outs, args, (Tensor(np.ones(outs[0].shape, outs[0].dtype)),), create_graph=True)
        return g if in_tuple else g[0]

    return jacobian(gradient, xs if in_tuple else xs[0], create_graph=create_graph)


def vhp(func: Callable[..., Any], inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False) -> tuple[Any, Any]:
    """(func(inputs), v^T H) for a scalar func."""
    return _hessian_product("vhp", func, inputs, v, create_graph)


def hvp(func: Callable[..., Any], inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False) -> tuple[Any, Any]:
    """(func(inputs), H v) for a scalar func (H is symmetric, so this is v^T H too)."""
    return _hessian_product("hvp", func, inputs, v, create_graph)


def _hessian_product(op: str, func: Callable[..., Any], inputs: Any, v: Any, create_graph: bool) -> tuple:
    xs, in_tuple = _as_tuple(op, inputs, "inputs")
    xs = _fresh(xs)
    vs = _check_v(op, v, xs, "input")
    outs, _ = _call(op, func, xs)
    if len(outs) != 1 or outs[0].numel() != 1:
        raise ValueError(f"{op}: the function must return a single one-element Tensor")
    with enable_grad():
        g = _grads(outs, xs, (Tensor(np.ones(outs[0].shape, outs[0].dtype)),), create_graph=True)
        hv = _grads(g, xs, vs, create_graph)
    return _out(outs, False, create_graph), _out(hv, in_tuple, create_graph)
