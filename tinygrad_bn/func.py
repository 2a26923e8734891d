"""Function transforms in the style of torch.func: grad, vjp, jvp, jacrev, hessian.

Each takes a function of Tensors and returns a function (or, for vjp/jvp, the
output and a product), built on tinygrad_bn.autograd.functional.

    >>> import tinygrad_bn as tg
    >>> from tinygrad_bn import func
    >>> func.grad(lambda x: (x ** 3).sum())(tg.tensor([1.0, 2.0])).tolist()
    [3.0, 12.0]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tinygrad_bn.autograd import functional as AF
from tinygrad_bn.tensor import Tensor


def _argnums(op: str, argnums: Any, n: int) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for a in nums:
        if not -n <= a < n:
            raise ValueError(f"{op}: argnums {argnums} is out of range for {n} arguments")
    return tuple(a % n for a in nums)


def _partial(func: Callable[..., Any], args: tuple, nums: tuple[int, ...]) -> Callable[..., Any]:
    """func as a function of the arguments at `nums` only."""
    def restricted(*chosen: Tensor) -> Any:
        full = list(args)
        for i, value in zip(nums, chosen):
            full[i] = value
        return func(*full)

    return restricted


def grad_and_value(func: Callable[..., Any], argnums: Any = 0) -> Callable[..., tuple[Any, Tensor]]:
    """x -> (d func / d x at argnums, func(x)) for a scalar-valued func."""
    def transformed(*args: Any) -> tuple[Any, Tensor]:
        nums = _argnums("grad", argnums, len(args))
        value, grads = AF.vjp(_partial(func, args, nums), tuple(args[i] for i in nums))
        if value.numel() != 1:
            raise ValueError(f"grad: the function must return a one-element Tensor, got shape {value.shape}")
        return (grads[0] if isinstance(argnums, int) else grads), value

    return transformed


def grad(func: Callable[..., Any], argnums: Any = 0) -> Callable[..., Any]:
    """x -> d func / d x at argnums (a Tensor, or a tuple when argnums is a tuple)."""
    both = grad_and_value(func, argnums)
    return lambda *args: both(*args)[0]


def vjp(func: Callable[..., Any], *primals: Tensor) -> tuple[Any, Callable[..., Any]]:
    """(func(*primals), vjp_fn) with vjp_fn(v) = v^T J as a tuple, one entry per primal."""
    out = func(*primals)

    def vjp_fn(v: Any) -> tuple[Tensor, ...]:
        _, grads = AF.vjp(func, tuple(primals), v)
        return tuple(grads)

    return (out.detach() if isinstance(out, Tensor) else out), vjp_fn


def jvp(func: Callable[..., Any], primals: tuple, tangents: tuple) -> tuple[Any, Any]:
    """(func(*primals), J @ tangents)."""
    return AF.jvp(func, tuple(primals), tuple(tangents))


def jacrev(func: Callable[..., Any], argnums: Any = 0) -> Callable[..., Any]:
    """x -> the Jacobian of func at argnums (reverse mode)."""
    def transformed(*args: Any) -> Any:
        nums = _argnums("jacrev", argnums, len(args))
        inputs = args[nums[0]] if isinstance(argnums, int) else tuple(args[i] for i in nums)
        return AF.jacobian(_partial(func, args, nums), inputs)

    return transformed


def hessian(func: Callable[..., Any], argnums: Any = 0) -> Callable[..., Any]:
    """x -> the Hessian of a scalar func at argnums."""
    def transformed(*args: Any) -> Any:
        nums = _argnums("hessian", argnums, len(args))
        inputs = args[nums[0]] if isinstance(argnums, int) else tuple(args[i] for i in nums)
        return AF.hessian(_partial(func, args, nums), inputs)

    return transformed
