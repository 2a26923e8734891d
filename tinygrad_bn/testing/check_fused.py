"""check_fused: a fused kernel against its composed twin, and the report it returns.

Both sides get the same inputs (their own copies). For a random cotangent the
check compares outputs, the gradient of every input and of Modules' parameters
by name, double backward of a random projection of those gradients, and side
effects (running statistics) after `steps` calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinygrad_bn.autograd import grad as autograd_grad
from tinygrad_bn.autograd import no_grad
from tinygrad_bn.gradcheck import COTANGENT_STREAM, GradcheckError, StateSnapshot, as_outputs, state_slots
from tinygrad_bn.nn.module import Module
from tinygrad_bn.tensor import Tensor

# Agreement demanded by default, relative to each quantity's largest magnitude.
# float64: both sides are exact formulas evaluated in a different order; ~1e-14
# is typical, 1e-10 leaves room for cancellation in dx. float32: each side
# rounds ~10 ops at 6e-8 each and reductions add ~sqrt(n) more; with the
# cancellation in dx (g minus its projections) 1e-4 of the scale is a safe
# bound that still catches any formula error (those are O(1) of the scale).
FUSED_RTOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-4}
# An absolute floor for quantities that are pure rounding noise, such as the output
# of a zero-variance channel: the mean's rounding error (~1e-16 |x|) divided by
# sqrt(eps) (x300 for eps=1e-5) gives ~1e-13 for |x| ~ 10, of random sign.
FUSED_ATOL = {np.dtype(np.float64): 1e-11, np.dtype(np.float32): 1e-5}


@dataclass
class FusedCheckReport:
    """Max absolute and scale-relative errors per compared quantity."""

    rows: list[tuple[str, float, float, bool]] = field(default_factory=list)
    rtol: float = 0.0
    atol: float = 0.0

    @property
    def passed(self) -> bool:
        return all(ok for *_, ok in self.rows)

    def errors(self) -> dict[str, tuple[float, float]]:
        """{quantity: (max abs err, max rel err)}."""
        return {name: (a, r) for name, a, r, _ in self.rows}

    def add(self, name: str, a: np.ndarray, b: np.ndarray) -> None:
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        if a.shape != b.shape:
            self.rows.append((f"{name} (shape {a.shape} vs {b.shape})", np.inf, np.inf, False))
            return
        abs_err = float(np.max(np.abs(a - b))) if a.size else 0.0
        scale = max(float(np.max(np.abs(b))) if b.size else 0.0, float(np.max(np.abs(a))) if a.size else 0.0)
        rel_err = abs_err / scale if scale > 0 else abs_err
        self.rows.append((name, abs_err, rel_err, rel_err <= self.rtol or abs_err <= self.atol))

    def __str__(self) -> str:
        lines = [f"{'quantity':<28} {'max abs err':>12} {'max rel err':>12}  "
                 f"ok (rtol {self.rtol:g} or atol {self.atol:g})"]
        lines += [f"{n:<28} {a:>12.3e} {r:>12.3e}  {'yes' if ok else 'NO'}" for n, a, r, ok in self.rows]
        return "\n".join(lines)


def _state_items(state: Any) -> list[tuple[str, np.ndarray]]:
    if isinstance(state, Module):
        return [(name, t.data) for name, t in state.named_buffers()]
    if isinstance(state, dict):
        return [(k, v.data if isinstance(v, Tensor) else np.asarray(v)) for k, v in state.items()]
    return [(str(i), v.data if isinstance(v, Tensor) else np.asarray(v)) for i, v in enumerate(state)]


def _copy_input(x: Any) -> Any:
    if isinstance(x, Tensor):
        return Tensor(x.data.copy(), requires_grad=x.requires_grad)
    if isinstance(x, np.ndarray) and x.dtype.kind == "f":
        return Tensor(x.copy(), requires_grad=True)
    return x


def check_fused(
    composed: Callable[..., Any],
    fused: Callable[..., Any],
    inputs: Any,
    *,
    state: tuple[Any, Any] | None = None,
    steps: int = 1,
    double_backward: bool = True,
    rtol: float | None = None,
    atol: float | None = None,
    seed: int = 0,
    raise_exception: bool = True,
) -> FusedCheckReport:
    """Check a fused kernel against its composed twin: outputs, gradients, double backward, state.

    `inputs` is a list of arguments passed to both callables (each side gets its
    own copies; float arrays become Tensors that require grad; other values such
    as eps pass through), or a hypothesis strategy drawing such lists, in which
    case every drawn example is checked (one call = one property test).
    Gradients are taken for a random cotangent, and double backward for a random
    projection of the gradients. `state=(composed_state, fused_state)` (Modules,
    dicts or lists of arrays; defaults to the callables when they are Modules)
    is compared after `steps` calls, e.g. running statistics. A quantity passes
    when its max error relative to its largest magnitude is <= rtol, or its max
    absolute error is <= atol (defaults per dtype: FUSED_RTOL, FUSED_ATOL).
    """
    from hypothesis import given
    from hypothesis.strategies import SearchStrategy

    if state is None and isinstance(composed, Module) and isinstance(fused, Module):
        state = (composed, fused)
    if isinstance(inputs, SearchStrategy):
        snapshots = [StateSnapshot(state_slots(s)) for s in (state or ())]
        reports: list[FusedCheckReport] = []

        @given(inputs)
        def property_test(example: Any) -> None:
            for snap in snapshots:
                snap.restore()
            reports.append(check_fused(composed, fused, example, state=state, steps=steps,
                                       double_backward=double_backward, rtol=rtol, atol=atol, seed=seed,
                                       raise_exception=True))

        property_test()
        for snap in snapshots:
            snap.restore()
        return reports[-1]

    args = list(inputs)
    sides = [[_copy_input(a) for a in args] for _ in range(2)]
    dtypes = [a.dtype for a in sides[0] if isinstance(a, Tensor) and a.dtype.kind == "f"]
    if not dtypes:
        raise ValueError("check_fused: inputs hold no float Tensor or array to differentiate")
    worst_dtype = min(dtypes, key=lambda d: d.itemsize)
    report = FusedCheckReport(
        rtol=FUSED_RTOL.get(np.dtype(worst_dtype), 1e-4) if rtol is None else rtol,
        atol=FUSED_ATOL.get(np.dtype(worst_dtype), 1e-5) if atol is None else atol,
    )
    rng = np.random.default_rng((seed, COTANGENT_STREAM))

    outs = [as_outputs(fn(*side)) for fn, side in zip((composed, fused), sides)]
    for k, (oc, of) in enumerate(zip(*outs)):
        report.add(f"output[{k}]", oc.data, of.data)
    targets = [_grad_targets(fn, side) for fn, side in zip((composed, fused), sides)]
    labels = [label for label, _ in targets[0]]
    if labels != [label for label, _ in targets[1]]:
        raise ValueError(
            f"check_fused: the two sides differentiate different things: {labels} vs "
            f"{[label for label, _ in targets[1]]} (Modules must have the same parameter names)"
        )
    # Random cotangent: an all-ones one would make normalised layers' dx vanish.
    cot = [rng.standard_normal(o.shape).astype(o.dtype) for o in outs[0]]
    grads = [
        autograd_grad(o, [t for _, t in tg], [c.astype(x.dtype) for c, x in zip(cot, o)],
                      create_graph=double_backward, allow_unused=True)
        for o, tg in zip(outs, targets)
    ]
    for (label, tc), (_, tf), gc, gf in zip(*targets, *grads):
        report.add(f"grad[{label}]", _grad_or_zeros(gc, tc), _grad_or_zeros(gf, tf))

    if double_backward:
        proj = [rng.standard_normal(t.shape) for _, t in targets[0]]
        second = []
        for tg, g in zip(targets, grads):
            terms = [(gi * Tensor(p.astype(gi.dtype))).sum() for gi, p in zip(g, proj)
                     if gi is not None and gi.requires_grad]
            if not terms:
                second.append([None] * len(tg))
                continue
            total = terms[0]
            for t in terms[1:]:
                total = total + t
            second.append(list(autograd_grad(total, [t for _, t in tg], allow_unused=True)))
        for (label, tc), (_, tf), hc, hf in zip(*targets, *second):
            report.add(f"gradgrad[{label}]", _grad_or_zeros(hc, tc), _grad_or_zeros(hf, tf))

    if state is not None:
        for _ in range(steps - 1):
            for fn, side in zip((composed, fused), sides):
                with no_grad():
                    fn(*side)
        for (name, a), (_, b) in zip(_state_items(state[0]), _state_items(state[1])):
            report.add(f"state[{name}]", a, b)

    if raise_exception and not report.passed:
        raise GradcheckError(f"check_fused: fused and composed disagree\n{report}")
    return report


def _grad_targets(fn: Any, side: list[Any]) -> list[tuple[str, Tensor]]:
    """(label, tensor) pairs to differentiate: inputs that require grad, then a Module's parameters."""
    targets = [(f"input {i}", a) for i, a in enumerate(side) if isinstance(a, Tensor) and a.requires_grad]
    if isinstance(fn, Module):
        targets += [(name, p) for name, p in fn.named_parameters() if p.requires_grad]
    return targets


def _grad_or_zeros(g: Tensor | None, like: Tensor) -> np.ndarray:
    return np.zeros(like.shape) if g is None else g.data
