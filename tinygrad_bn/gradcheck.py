"""Gradient checking: numerical gradients, gradcheck, gradgradcheck.

Every check projects the outputs on a *random* cotangent v and differentiates
the scalar sum(v * out). Never all-ones: for a normalised output (BatchNorm,
LayerNorm, softmax) sum(out) is constant, its gradient is zero, and a wrong
kernel would pass. Numerical probes run with module state (running statistics)
snapshotted and restored around every evaluation, so the probes cannot drift it.
Comparing a fused kernel with its composed twin is `tinygrad_bn.testing.check_fused`.
"""

from __future__ import annotations

import html
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinygrad_bn.autograd import enable_grad, no_grad
from tinygrad_bn.autograd import grad as autograd_grad
from tinygrad_bn.nn.module import Module
from tinygrad_bn.tensor import Tensor

# Cotangents come from their own random stream, (seed, COTANGENT_STREAM): drawn from plain
# default_rng(0) they would equal a user's inputs drawn with the same seed, and a
# cotangent parallel to a normalised output hides exactly the bugs we look for.
COTANGENT_STREAM = 0x7B_A7C4


class GradcheckError(AssertionError):
    """Analytic and numerical gradients disagree."""


def rel_error(a: Any, b: Any) -> float:
    """max |a - b| / max(1e-8, |a| + |b|), elementwise, as CS231n defines it."""
    a = np.asarray(a.data if isinstance(a, Tensor) else a, dtype=np.float64)
    b = np.asarray(b.data if isinstance(b, Tensor) else b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: shapes differ, {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def numerical_gradient(f: Callable[[np.ndarray], Any], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences (f(x + h e_i) - f(x - h e_i)) / 2h of a scalar f, for any shape.

    `x` is perturbed in place, one element at a time, and restored.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"numerical_gradient: x must be an ndarray, got {type(x).__name__}")
    _check_step("numerical_gradient", "h", h)
    if not x.flags.c_contiguous or not x.flags.writeable:
        raise ValueError("numerical_gradient: x must be a writeable C-contiguous array")
    grad = np.zeros(x.shape, dtype=np.float64)
    flat = x.reshape(-1)  # a view, since x is contiguous: perturbing it perturbs x
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        plus = float(np.sum(_value(f(x))))
        flat[i] = old - h
        minus = float(np.sum(_value(f(x))))
        flat[i] = old
        grad.reshape(-1)[i] = (plus - minus) / (2 * h)
    return grad


def _value(out: Any) -> Any:
    return out.data if isinstance(out, Tensor) else out


# ---------------------------------------------------------------- state snapshots


StateSlot = np.ndarray | Callable[[], np.ndarray]


def _buffer_slot(module: Module, name: str) -> Callable[[], np.ndarray]:
    """The buffer `name` of `module` looked up at restore time, so rebinding it is caught."""
    return lambda: dict(module.named_buffers())[name].data


def state_slots(restore: Any) -> list[StateSlot]:
    """The state behind `restore`: Modules' buffers (by name), Tensors, arrays, dicts of arrays."""
    if restore is None:
        return []
    items = restore if isinstance(restore, list | tuple) else [restore]
    slots: list[StateSlot] = []
    for item in items:
        if isinstance(item, Module):
            slots.extend(_buffer_slot(item, name) for name, _ in item.named_buffers())
        elif isinstance(item, Tensor):
            slots.append(item.data)
        elif isinstance(item, np.ndarray):
            slots.append(item)
        elif isinstance(item, dict):
            slots.extend(v for v in item.values() if isinstance(v, np.ndarray))
        else:
            raise TypeError(
                f"restore: expected Modules, Tensors, arrays or dicts, got {type(item).__name__}"
            )
    return slots


class StateSnapshot:
    """Copies of some state, written back in place on `restore()`."""

    def __init__(self, slots: list[StateSlot]):
        self.slots = slots
        self.copies = [(s() if callable(s) else s).copy() for s in slots]

    def restore(self) -> None:
        for slot, copy in zip(self.slots, self.copies):
            np.copyto(slot() if callable(slot) else slot, copy)


# ---------------------------------------------------------------- reports


@dataclass
class InputReport:
    """How one input's analytic gradient compares with the reference."""

    index: int
    shape: tuple[int, ...]
    dtype: str
    max_abs_err: float
    max_rel_err: float
    worst_index: tuple[int, ...]
    analytic: float
    numeric: float
    passed: bool
    ulps: float | None = None  # float32 only: error in units of the float32 spacing of max|grad|


@dataclass
class GradcheckReport:
    """Per-input results of gradcheck / gradgradcheck."""

    inputs: list[InputReport] = field(default_factory=list)
    mode: str = "full"
    notes: list[str] = field(default_factory=list)  # what a failure most likely means, when known

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.inputs)

    _HEAD = ("input", "shape", "dtype", "max abs err", "max rel err", "ulps", "ok")

    def _cells(self) -> list[tuple[str, ...]]:
        return [(str(r.index), str(r.shape), r.dtype, f"{r.max_abs_err:.3e}", f"{r.max_rel_err:.3e}",
                 "-" if r.ulps is None else f"{r.ulps:.1f}", "yes" if r.passed else "NO")
                for r in self.inputs]

    def __str__(self) -> str:
        widths = (5, 16, 8, 12, 12, 8)
        lines = [" ".join(f"{h:>{w}}" for h, w in zip(self._HEAD, widths)) + "  ok"]
        lines += [" ".join(f"{c:>{w}}" for c, w in zip(row, widths)) + f"  {row[-1]}"
                  for row in self._cells()]
        return "\n".join(lines + self.notes)

    def _repr_html_(self) -> str:
        """An HTML table, so a Jupyter notebook shows the report as one."""
        head = "".join(f"<th>{h}</th>" for h in self._HEAD)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row[:-1])
            + f"<td style=\"color:{'green' if row[-1] == 'yes' else 'red'}\">{row[-1]}</td></tr>"
            for row in self._cells()
        )
        notes = "".join(f"<p>{html.escape(n)}</p>" for n in self.notes)
        verdict = "passed" if self.passed else "FAILED"
        return (f"<table><caption>gradient check {verdict} ({html.escape(self.mode)} mode)</caption>"
                f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{notes}")


# ---------------------------------------------------------------- gradcheck


def as_outputs(out: Any) -> list[Tensor]:
    outs = list(out) if isinstance(out, tuple | list) else [out]
    for o in outs:
        if not isinstance(o, Tensor):
            raise TypeError(f"gradcheck: fn must return Tensors, got {type(o).__name__}")
    return outs


def _compare(
    i: int, x: Tensor, analytic: np.ndarray, numeric: np.ndarray, atol: float, rtol: float
) -> InputReport:
    err = np.abs(analytic - numeric)
    bound = atol + rtol * np.abs(numeric)
    worst = np.unravel_index(int(np.argmax(err - bound)), err.shape) if err.size else ()
    rel = err / np.maximum(1e-8, np.abs(analytic) + np.abs(numeric))
    return InputReport(
        index=i, shape=x.shape, dtype=str(x.dtype),
        max_abs_err=float(err.max()) if err.size else 0.0,
        max_rel_err=float(rel.max()) if rel.size else 0.0,
        worst_index=tuple(int(k) for k in worst),
        analytic=float(analytic[worst]) if err.size else 0.0,
        numeric=float(numeric[worst]) if err.size else 0.0,
        passed=bool(np.all(err <= bound)),
    )


def _failure_message(what: str, r: InputReport, atol: float, rtol: float) -> str:
    return (
        f"{what} failed for input {r.index} (shape {r.shape}, {r.dtype}): worst element at "
        f"index {r.worst_index}: analytic {r.analytic!r}, numeric {r.numeric!r} "
        f"(abs err {r.max_abs_err:.3e}, rel err {r.max_rel_err:.3e}; allowed atol={atol}, rtol={rtol})"
    )


def gradcheck(
    fn: Callable[..., Any],
    inputs: Sequence[Any],
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    mode: str = "full",
    n_directions: int = 4,
    seed: int = 0,
    restore: Any = None,
    params: Sequence[Tensor] | None = None,
    raise_exception: bool = True,
) -> GradcheckReport:
    """Compare autograd's gradient of fn(*inputs) with central differences.

    The outputs are projected on a random cotangent. `mode="full"` probes every
    element of every input that requires grad; `mode="directional"` compares
    the derivative along `n_directions` random unit directions per input (cheap
    for large inputs). float64 inputs are checked directly; float32 inputs are
    also evaluated in float64 (numerically checked there), and the float32
    gradient is compared with the float64 one, reporting the error in ULPs.
    `inputs` holds Tensors; other values that are not arrays (eps, a flag) are
    passed through unchecked. `inputs` may also be a hypothesis strategy of such
    lists, whose float arrays become Tensors that require grad: then every drawn
    example is checked (one call = one property test, with no deadline).
    `restore` names state (Modules, arrays, bn_param dicts) that is snapshotted
    and restored around every evaluation; fn itself is included when a Module.
    `params` are tensors fn uses internally that are checked too (reported after
    the inputs); they default to fn's parameters when fn is a Module.
    """
    options = dict(eps=eps, atol=atol, rtol=rtol, mode=mode, n_directions=n_directions, seed=seed,
                   restore=restore, raise_exception=raise_exception)
    if _is_strategy(inputs):
        return _over_strategy(lambda ins: gradcheck(fn, ins, params=params, **options), inputs, fn, restore)
    inputs = _check_arguments("gradcheck", fn, inputs, eps, atol, rtol, mode, n_directions)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if params is None:
        params = fn.parameters() if isinstance(fn, Module) else []
    params = [p for p in params if p.requires_grad and all(p is not x for x in inputs)]
    if not checked and not params:
        raise ValueError("gradcheck: no input has requires_grad=True, nothing to check")
    state = state_slots(restore) + (state_slots(fn) if isinstance(fn, Module) else [])
    snapshot = StateSnapshot(state)

    low = [i for i in checked if inputs[i].dtype == np.float32]
    if low:
        wide = [x.detach().to(np.float64).requires_grad_(x.requires_grad)
                if isinstance(x, Tensor) and x.dtype == np.float32 else x for x in inputs]
        report = gradcheck(fn, wide, eps=eps, atol=atol, rtol=rtol, mode=mode,
                           n_directions=n_directions, seed=seed, restore=restore,
                           params=params, raise_exception=raise_exception)
        return _check_float32_against_float64(fn, inputs, wide, low, snapshot, seed, report,
                                              atol, rtol, raise_exception)

    rng = np.random.default_rng((seed, COTANGENT_STREAM))
    outputs = as_outputs(fn(*inputs))
    snapshot.restore()
    cotangents = [rng.standard_normal(o.shape).astype(o.dtype) for o in outputs]
    targets = [(i, inputs[i]) for i in checked] + [(len(inputs) + k, p) for k, p in enumerate(params)]
    analytic = autograd_grad(outputs, [t for _, t in targets], cotangents, allow_unused=True)

    def projected() -> float:
        with no_grad():
            outs = as_outputs(fn(*inputs))
        snapshot.restore()
        return float(sum(np.sum(o.data.astype(np.float64) * v) for o, v in zip(outs, cotangents)))

    report = GradcheckReport(mode=mode)
    for (i, x), g in zip(targets, analytic):
        a = np.zeros(x.shape) if g is None else g.data.astype(np.float64)
        if mode == "full":
            numeric = numerical_gradient(lambda _: projected(), x.data, eps)
            r = _compare(i, x, a, numeric, atol, rtol)
        else:
            r = _directional(i, x, a, projected, eps, atol, rtol, n_directions, rng)
        report.inputs.append(r)
        if raise_exception and not r.passed:
            raise GradcheckError(_failure_message("gradcheck", r, atol, rtol))
    return report


def _check_step(op: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise TypeError(f"{op}: {name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{op}: {name} must be a positive finite step for central differences, "
                         f"got {value}")


def _check_arguments(op: str, fn: Any, inputs: Any, eps: Any, atol: Any, rtol: Any, mode: Any,
                     n_directions: Any) -> list[Any]:
    """The checks every entry point shares; returns inputs as a list."""
    if not callable(fn):
        raise TypeError(f"{op}: fn must be callable (a function or Module), got {type(fn).__name__}")
    if not isinstance(inputs, list | tuple):
        hint = "; pass one input as [x]" if isinstance(inputs, Tensor | np.ndarray) else ""
        raise TypeError(f"{op}: inputs must be a list or tuple of Tensors (or a hypothesis strategy of "
                        f"such lists), got {type(inputs).__name__}{hint}")
    for i, x in enumerate(inputs):
        if isinstance(x, np.ndarray):
            raise TypeError(f"{op}: inputs[{i}] must be a Tensor, got ndarray; wrap it as "
                            "Tensor(a, requires_grad=True) to check its gradient, or Tensor(a) for data")
    _check_step(op, "eps", eps)
    for name, value in (("atol", atol), ("rtol", rtol)):
        if isinstance(value, bool) or not isinstance(value, int | float | np.floating) or not value >= 0:
            raise ValueError(f"{op}: {name} must be a number >= 0, got {value!r}")
    if mode not in ("full", "directional"):
        raise ValueError(f"{op}: mode must be 'full' or 'directional', got {mode!r}")
    if isinstance(n_directions, bool) or not isinstance(n_directions, int) or n_directions < 1:
        raise ValueError(f"{op}: n_directions must be an int >= 1, got {n_directions!r}")
    return list(inputs)


def _is_strategy(value: Any) -> bool:
    strategies = sys.modules.get("hypothesis.strategies")  # no strategy exists unless hypothesis loaded
    return strategies is not None and isinstance(value, strategies.SearchStrategy)


def _as_tensors(example: Any) -> list[Any]:
    """A drawn example as arguments: float arrays require grad, other arrays become plain Tensors."""
    if not isinstance(example, list | tuple):
        example = [example]
    return [Tensor(a, requires_grad=a.dtype.kind == "f") if isinstance(a, np.ndarray) else a for a in example]


def _over_strategy(check: Callable[[list[Any]], GradcheckReport], strategy: Any, fn: Any,
                   restore: Any) -> GradcheckReport:
    """Run `check` on every example the strategy draws (restoring state between them); the last report."""
    from tinygrad_bn.testing.profiles import for_each_example  # hypothesis: only with a strategy

    state = [s for s in (restore, fn) if isinstance(s, Module | dict | np.ndarray | Tensor | list | tuple)]
    return for_each_example(strategy, lambda example: check(_as_tensors(example)), restore=state)[-1]


def _directional(
    i: int, x: Tensor, analytic: np.ndarray, projected: Callable[[], float],
    eps: float, atol: float, rtol: float, n: int, rng: np.random.Generator,
) -> InputReport:
    """Compare <analytic, d> with the central difference along random unit directions d."""
    original = x.data.copy()
    a_dirs, n_dirs = np.zeros(n), np.zeros(n)
    for k in range(n):
        d = rng.standard_normal(x.shape)
        d /= max(np.linalg.norm(d), 1e-12)
        x.data[...] = original + eps * d
        plus = projected()
        x.data[...] = original - eps * d
        minus = projected()
        x.data[...] = original
        a_dirs[k], n_dirs[k] = float(np.sum(analytic * d)), (plus - minus) / (2 * eps)
    r = _compare(i, x, a_dirs, n_dirs, atol, rtol)
    r.worst_index = (int(r.worst_index[0]),)  # the index of the direction, not of an element
    return r


def _check_float32_against_float64(
    fn: Callable[..., Any], inputs: list[Tensor], wide: list[Tensor], low: list[int],
    snapshot: StateSnapshot, seed: int, report: GradcheckReport, atol: float, rtol: float,
    raise_exception: bool,
) -> GradcheckReport:
    """The float32 gradient vs the (numerically verified) float64 one, in ULPs."""
    rng = np.random.default_rng((seed + 1, COTANGENT_STREAM))
    out32 = as_outputs(fn(*inputs))
    snapshot.restore()
    out64 = as_outputs(fn(*wide))
    snapshot.restore()
    v64 = [rng.standard_normal(o.shape) for o in out64]
    g32 = autograd_grad(out32, [inputs[i] for i in low], [v.astype(o.dtype) for v, o in zip(v64, out32)],
                        allow_unused=True)
    g64 = autograd_grad(out64, [wide[i] for i in low], v64, allow_unused=True)
    for i, a, b in zip(low, g32, g64):
        a_ = np.zeros(inputs[i].shape) if a is None else a.data.astype(np.float64)
        b_ = np.zeros(inputs[i].shape) if b is None else b.data
        scale = float(np.max(np.abs(b_))) if b_.size else 0.0
        # Tolerance relative to the gradient's scale: float32 cannot resolve
        # entries much smaller than its largest entry.
        r = _compare(i, inputs[i], a_, b_, atol + rtol * scale, 0.0)
        r.ulps = r.max_abs_err / float(np.spacing(np.float32(max(scale, 1e-30))))
        r.max_rel_err = r.max_abs_err / max(scale, 1e-30)
        report.inputs.append(r)  # next to the float64 numerical check of the same input
        if raise_exception and not r.passed:
            raise GradcheckError(_failure_message("gradcheck (float32 vs float64)", r, atol, rtol))
    report.inputs.sort(key=lambda r: (r.index, r.dtype))
    return report


def derivative(
    fn: Callable[..., Any], inputs: Sequence[Tensor], seed: int = 0, restore: Any = None
) -> Callable[..., tuple[Tensor, ...]]:
    """x -> d<v, fn(x)>/dx for a fixed random cotangent v, recorded with create_graph=True.

    Checking this function with gradcheck checks fn's second derivatives; checking
    its derivative checks the third, and so on.
    """
    inputs = list(inputs)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradgradcheck: no input has requires_grad=True, nothing to check")
    snapshot = StateSnapshot(state_slots(restore) + (state_slots(fn) if isinstance(fn, Module) else []))
    rng = np.random.default_rng((seed + 17, COTANGENT_STREAM))
    probe = as_outputs(fn(*inputs))
    snapshot.restore()
    cotangents = [rng.standard_normal(o.shape).astype(o.dtype) for o in probe]

    def first_derivative(*xs: Tensor) -> tuple[Tensor, ...]:
        # gradcheck evaluates this under no_grad; the inner gradient needs a graph.
        with enable_grad():
            outs = as_outputs(fn(*xs))
            snapshot.restore()
            vs = [Tensor(v.astype(o.dtype)) for v, o in zip(cotangents, outs)]
            grads = autograd_grad(outs, [xs[i] for i in checked], vs, create_graph=True, allow_unused=True)
            # A gradient that does not depend on the inputs is a constant; tie it to the
            # graph (adding 0 * x) so the outer check sees a zero derivative, not a missing one.
            return tuple(xs[i] * 0.0 if g is None else g if g.requires_grad else g + xs[i] * 0.0
                         for i, g in zip(checked, grads))

    return first_derivative


def gradgradcheck(
    fn: Callable[..., Any],
    inputs: Sequence[Any],
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    mode: str = "full",
    n_directions: int = 4,
    seed: int = 0,
    restore: Any = None,
    raise_exception: bool = True,
) -> GradcheckReport:
    """Check second derivatives: gradcheck of x -> d<v, fn(x)>/dx built with create_graph=True.

    `inputs` as for gradcheck (a list, or a hypothesis strategy of lists). When
    the check fails and a custom Function's backward built no graph back to its
    inputs (it computed with raw numpy), the error says so and how to fix it.
    """
    options = dict(eps=eps, atol=atol, rtol=rtol, mode=mode, n_directions=n_directions, seed=seed,
                   restore=restore, raise_exception=raise_exception)
    if _is_strategy(inputs):
        return _over_strategy(lambda ins: gradgradcheck(fn, ins, **options), inputs, fn, restore)
    inputs = _check_arguments("gradgradcheck", fn, inputs, eps, atol, rtol, mode, n_directions)
    first = derivative(fn, inputs, seed, restore)
    try:
        report = gradcheck(first, inputs, **options)
    except GradcheckError as err:
        message = str(err).replace("gradcheck", "gradgradcheck", 1)
        raise GradcheckError("\n".join([message, *_graphless_backwards(fn, inputs, restore)])) from None
    if not report.passed:
        report.notes += _graphless_backwards(fn, inputs, restore)
    return report


def _graphless_backwards(fn: Callable[..., Any], inputs: list[Any], restore: Any) -> list[str]:
    """Why a second derivative came out wrong, when the reason is a backward written with raw numpy.

    Runs fn once more and calls the backward of every non-primitive node of its
    graph with grad recording on: a gradient that leads back to none of the
    node's inputs was computed outside autograd, so its derivative is zero.
    """
    from tinygrad_bn.ops import PRIMITIVES

    primitives = set(PRIMITIVES.values())
    snapshot = StateSnapshot(state_slots(restore) + (state_slots(fn) if isinstance(fn, Module) else []))
    with enable_grad():
        outs = as_outputs(fn(*inputs))
    snapshot.restore()
    names: list[str] = []
    for node in _graph_nodes(outs):
        if node.fn in primitives or node.fn.name in names:
            continue
        wanted = [p for p, need in zip(node.parents, node.needs_input_grad) if need]
        try:
            with enable_grad():
                out = node.output
                results = node.fn.backward(node, Tensor(np.ones(out.shape, out.dtype), requires_grad=True))
        except Exception:  # only a probe for a better message: the failure is reported anyway
            continue
        results = results if isinstance(results, tuple | list) else (results,)
        if not any(isinstance(r, Tensor) and _reaches(r, wanted) for r in results):
            names.append(node.fn.name)
    return [
        f"The backward of {name} built no graph back to its inputs: with create_graph=True (grad "
        "recording on) it returned gradients computed from raw numpy arrays (.data, or arrays kept on "
        "ctx), which autograd sees as constants, so their derivative is zero. To make it "
        "differentiable, when is_grad_enabled() is True compute the same gradient with Tensor ops "
        "from the Tensors in ctx.saved_tensors, as the fused kernels in tinygrad_bn/kernels do "
        "(docs/custom-layers.md, 'Double backward')."
        for name in names
    ]


def _graph_nodes(outs: list[Tensor]) -> list[Any]:
    """Every recorded op the outputs depend on."""
    stack = [o._ctx for o in outs if o._ctx is not None]
    seen = {id(c) for c in stack}
    nodes = []
    while stack:
        node = stack.pop()
        nodes.append(node)
        for parent in node.parents:
            ctx = getattr(parent, "_ctx", None)
            if ctx is not None and id(ctx) not in seen:
                seen.add(id(ctx))
                stack.append(ctx)
    return nodes


def _reaches(t: Tensor, targets: list[Tensor]) -> bool:
    """True when t's graph leads to any of `targets`."""
    wanted = {id(x) for x in targets}
    if id(t) in wanted:
        return True
    stack = [t._ctx] if t._ctx is not None else []
    seen = set()
    while stack:
        node = stack.pop()
        for parent in node.parents:
            if id(parent) in wanted:
                return True
            ctx = getattr(parent, "_ctx", None)
            if ctx is not None and id(ctx) not in seen:
                seen.add(id(ctx))
                stack.append(ctx)
    return False
