"""check_fused: a fused kernel against its composed twin, on every path, and the report it returns.

Each side gets its own copies of the inputs and the same random cotangent. The
check compares, row by row:

    output[k]                         the forward outputs
    grad[x] (fast path)               first-order gradients with grad recording off
                                      (create_graph=False): the backward training runs,
                                      a fused kernel's numpy fast path
    grad[x] (differentiable path)     the same gradients with create_graph=True: a
                                      fused kernel's Tensor-op backward. Both rows use
                                      the same reference, so together they show that the
                                      kernel's two backward implementations agree with
                                      each other and with the twin
    gradgrad[x]                       double backward: the gradient of a random
                                      projection of the differentiable-path gradients
    state[name]                       side effects (running statistics) after `steps` calls

Inputs in float64 are compared with the composed twin directly. Below float64
both sides round, and the fused kernel is often the *more* accurate one (it
corrects the mean's rounding), so the reference is the composed twin evaluated
in float64 on the same inputs ("the truth"): per quantity the report shows the
composed twin's error and the fused kernel's error against it.
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from tinygrad_bn.autograd import grad as autograd_grad
from tinygrad_bn.autograd import no_grad
from tinygrad_bn.gradcheck import COTANGENT_STREAM, GradcheckError, as_outputs
from tinygrad_bn.nn.module import Module, Parameter
from tinygrad_bn.tensor import Tensor

FAST, DIFFERENTIABLE = "fast path", "differentiable path"
IN_FLOAT64 = " in float64"  # the suffix of the rows that check the maths of low-precision inputs
_F64 = np.dtype(np.float64)

# float64: agreement demanded relative to each quantity's largest magnitude. Both
# sides are exact formulas evaluated in a different order; ~1e-14 is typical and
# 1e-10 leaves room for the cancellation in dx, while any formula error (a missing
# term, a wrong count, a 0.1% slip) is orders of magnitude larger.
FUSED_RTOL = {np.dtype(np.float64): 1e-10}
# An absolute floor for quantities that are pure rounding noise, such as the output
# of a zero-variance channel: the mean's rounding error (~1e-16 |x|) divided by
# sqrt(eps) (x300 for eps=1e-5) gives ~1e-13 for |x| ~ 10, of random sign.
FUSED_ATOL = {np.dtype(np.float64): 1e-11}

# Below float64 every quantity q is computed four ways on the same inputs: by the fused
# kernel and the composed twin in the input precision, and by both in float64. The float64
# pair is judged as above ("<q> in float64" rows: the maths; also passing within FLOAT32_FACTOR
# times the sensitivity below, scaled to float64, for inputs whose spread is a few ulps of
# their offset, where float64 itself keeps only ~9 digits). The low-precision fused value
# is judged against the float64 composed twin, the truth (the precision):
#
#     fused err <= FLOAT32_FACTOR * max(composed err, sensitivity, own float64 err * eps/eps64)
#                  or <= FLOAT32_FLOOR_ULPS ulps of max|truth|
#
# - composed err: what a straightforward low-precision evaluation of the same maths loses.
# - sensitivity: how far the truth moves when every input, cotangent and projection moves
#   by half an ulp (the largest of FLOAT32_PERTURBATIONS random draws): no low-precision
#   implementation, which must round what it computes from, can promise less. It is large
#   for sums that cancel (dbeta of a random cotangent) and for ill-conditioned inputs.
# - own float64 err: the fused formula's rounding error in float64, scaled to the input
#   precision. A quantity that is zero in exact arithmetic (BatchNorm's dx with two rows)
#   is rounding noise whose size depends on the formula, not on the inputs; this is that size.
#   A formula error inflates it, but then the float64 rows fail.
# - FLOAT32_FACTOR = 32: errors of two implementations of the same maths on the same input
#   differ by the number of roundings on the way, the order of summation and how each one
#   groups the terms that cancel. Over 1800 hypothesis examples of the four shipped kernels
#   the largest ratio of the fused error to the largest yardstick was 14.5 (LayerNorm's
#   double backward); 32 leaves a factor of two. A formula error does not shrink with the
#   precision: a 1% error fails on every input whose yardsticks are below 3e-4 of the
#   quantity (every well-posed one: a few 1e-7 is typical).
# - FLOAT32_FLOOR_ULPS = 128: when every yardstick happens to be nearly exact, the kernel
#   still rounds ~10 times per element at 0.5 ulp, and sums over up to ~1e3 values add
#   ~sqrt(n) ulps more: 128 ulps (1.5e-5 of the scale in float32) bounds that with room
#   and is ~700 times smaller than a 1% error. An ulp is never smaller than the dtype's
#   smallest subnormal: quantities below the normal range (a gamma of 1e-45 in float32)
#   keep fewer digits, and one rounding there moves them by a large fraction of themselves.
FLOAT32_FACTOR = 32.0
FLOAT32_FLOOR_ULPS = 128.0
FLOAT32_PERTURBATIONS = 2


class FusedRow(NamedTuple):
    """One compared quantity: the fused side's error against the reference, and the verdict.

    Errors are relative to the quantity's largest magnitude (of the reference).
    The last four fields are set below float64 only.
    """

    quantity: str
    abs_err: float  # max |fused - reference|
    rel_err: float  # abs_err / max |reference|
    passed: bool
    composed_err: float | None = None  # the composed twin's error vs the truth
    sensitivity: float | None = None  # how far the truth moves when the inputs move by half an ulp
    own_err: float | None = None  # the fused formula's float64 error, scaled to the input precision
    allowed: float | None = None  # the largest error that passes


@dataclass
class FusedCheckReport:
    """What check_fused compared, row by row, and against which reference."""

    rows: list[FusedRow] = field(default_factory=list)
    rtol: float | None = None
    atol: float | None = None
    dtype: str = "float64"  # the lowest float precision among the inputs

    @property
    def passed(self) -> bool:
        return all(row.passed for row in self.rows)

    @property
    def against_truth(self) -> bool:
        """True when the reference is a float64 evaluation of the composed twin (inputs below float64)."""
        return self.dtype != "float64"

    @property
    def criterion(self) -> str:
        """The pass rule, in words."""
        if self.against_truth:
            rule = (f"{self.dtype} rows (errors vs the composed twin in float64): fused err <= "
                    f"{FLOAT32_FACTOR:g} x max(composed err, sensitivity, own float64 err scaled) or <= "
                    f"{FLOAT32_FLOOR_ULPS:g} ulps; rows 'in float64' (the maths): rel err <= "
                    f"{FUSED_RTOL[_F64]:g} or abs err <= {FUSED_ATOL[_F64]:g}")
        else:
            rule = f"rel err <= {self.rtol:g} or abs err <= {self.atol:g} (vs the composed twin)"
        extra = [f"rel err <= {self.rtol:g}"] if self.against_truth and self.rtol is not None else []
        extra += [f"abs err <= {self.atol:g}"] if self.against_truth and self.atol is not None else []
        return rule + "".join(f", or {e}" for e in extra)

    def errors(self) -> dict[str, tuple[float, float]]:
        """{quantity: (max abs err, max rel err)} of the fused side."""
        return {row.quantity: (row.abs_err, row.rel_err) for row in self.rows}

    def failures(self) -> list[FusedRow]:
        """The rows that did not pass."""
        return [row for row in self.rows if not row.passed]

    def _table(self) -> tuple[list[str], list[list[str]]]:
        if self.against_truth:
            head = ["quantity", "fused err", "composed err", "sensitivity", "allowed", "ok"]

            def cell(v: float | None) -> str:
                return "-" if v is None else f"{v:.3e}"

            body = [[r.quantity, cell(r.rel_err), cell(r.composed_err), cell(r.sensitivity),
                     cell(r.allowed), "yes" if r.passed else "NO"] for r in self.rows]
        else:
            head = ["quantity", "max abs err", "max rel err", "ok"]
            body = [[r.quantity, f"{r.abs_err:.3e}", f"{r.rel_err:.3e}", "yes" if r.passed else "NO"]
                    for r in self.rows]
        return head, body

    def __str__(self) -> str:
        head, body = self._table()
        width = max([len(head[0])] + [len(row[0]) for row in body]) + 2
        lines = [f"pass: {rule}" for rule in self.criterion.split("; ")]
        lines += [f"{head[0]:<{width}}" + "".join(f"{h:>13}" for h in head[1:-1]) + "  ok"]
        lines += [f"{row[0]:<{width}}" + "".join(f"{c:>13}" for c in row[1:-1]) + f"  {row[-1]}"
                  for row in body]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """An HTML table, so a Jupyter notebook shows the report as one."""
        head, body = self._table()
        verdict = "passed" if self.passed else "FAILED"
        cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row[:-1])
            + f"<td style=\"color:{'green' if row[-1] == 'yes' else 'red'}\">{row[-1]}</td></tr>"
            for row in body
        )
        return (f"<table><caption>check_fused {verdict} ({html.escape(self.dtype)}; pass: "
                f"{html.escape(self.criterion)})</caption><thead><tr>{cells}</tr></thead>"
                f"<tbody>{rows}</tbody></table>")


# ---------------------------------------------------------------- check_fused


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
    """Check a fused kernel against its composed twin: outputs, both backward paths, double backward, state.

    `inputs` is a list of arguments passed to both callables (each side gets its
    own copies; float arrays become Tensors that require grad; other values such
    as eps pass through), or a hypothesis strategy drawing such lists, in which
    case every drawn example is checked (one call = one property test, with no
    deadline). Gradients are taken for a random cotangent through both paths
    (grad recording off, then create_graph=True), and double backward for a
    random projection of the gradients. `state=(composed_state, fused_state)`
    (Modules, dicts or lists of Tensors/arrays; defaults to the callables when
    they are Modules) is compared after `steps` calls, e.g. running statistics.
    float64 quantities pass when their max error relative to their largest
    magnitude is <= rtol, or their max absolute error is <= atol (defaults
    FUSED_RTOL, FUSED_ATOL); below float64 see FLOAT32_FACTOR and FLOAT32_FLOOR_ULPS
    (rtol/atol, when given, are accepted there too).
    """
    for side, fn in (("composed", composed), ("fused", fused)):
        if not callable(fn):
            raise TypeError(f"check_fused: {side} must be callable (a function or Module), "
                            f"got {type(fn).__name__}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"check_fused: steps must be an int >= 1, got {steps!r}")
    if state is None and isinstance(composed, Module) and isinstance(fused, Module):
        state = (composed, fused)
    if state is not None and (not isinstance(state, tuple | list) or len(state) != 2):
        raise TypeError("check_fused: state must be a pair (composed_state, fused_state), "
                        f"got {type(state).__name__}")
    options = dict(state=state, steps=steps, double_backward=double_backward, rtol=rtol, atol=atol,
                   seed=seed)
    if _is_strategy(inputs):
        from tinygrad_bn.testing.profiles import for_each_example

        reports = for_each_example(inputs, lambda example: check_fused(composed, fused, example, **options),
                                   restore=[s for s in (state or ())])
        return reports[-1]
    if not isinstance(inputs, list | tuple):
        raise TypeError(
            "check_fused: inputs must be a list of arguments for both callables (or a hypothesis "
            f"strategy of such lists), got {type(inputs).__name__}"
            + ("; pass one array as [x]" if isinstance(inputs, np.ndarray | Tensor) else "")
        )
    report = _check_once(composed, fused, list(inputs), **options)
    if raise_exception and not report.passed:
        raise GradcheckError(f"check_fused: fused and composed disagree\n{report}")
    return report


def _is_strategy(value: Any) -> bool:
    import sys

    strategies = sys.modules.get("hypothesis.strategies")  # no strategy exists unless hypothesis loaded
    return strategies is not None and isinstance(value, strategies.SearchStrategy)


def _check_once(composed: Any, fused: Any, args: list[Any], *, state: Any, steps: int,
                double_backward: bool, rtol: float | None, atol: float | None, seed: int) -> FusedCheckReport:
    floats = [a.dtype for a in args if isinstance(a, np.ndarray | Tensor) and a.dtype.kind == "f"]
    if not floats:
        raise ValueError("check_fused: inputs hold no float Tensor or array to differentiate")
    low = np.dtype(min(floats, key=lambda d: d.itemsize))
    probes = _Probes(np.random.default_rng((seed, COTANGENT_STREAM)), low)
    states = state if state is not None else (None, None)
    run = dict(double_backward=double_backward, steps=steps)
    if low.itemsize < 8:
        return _check_below_float64(composed, fused, args, states, probes, run, low, rtol, atol, seed)
    reference = _evaluate("composed", composed, _copies(args), states[0], probes, **run)
    result = _evaluate("fused", fused, _copies(args), states[1], probes, **run)
    _same_targets(reference, result)
    report = FusedCheckReport(rtol=FUSED_RTOL.get(low, FUSED_RTOL[_F64]) if rtol is None else rtol,
                              atol=FUSED_ATOL.get(low, FUSED_ATOL[_F64]) if atol is None else atol)
    report.rows = [_judge(name, reference[name], result[name], report.rtol, report.atol)
                   for name in reference]
    return report


def _check_below_float64(composed: Any, fused: Any, args: list[Any], states: Any, probes: _Probes,
                         run: dict[str, Any], low: np.dtype, rtol: float | None, atol: float | None,
                         seed: int) -> FusedCheckReport:
    """Both sides in `low` precision and in float64, the truth's sensitivity, and the verdicts."""

    def in_float64(side: str, fn: Any, fn_state: Any, inputs: list[Any], p: _Probes) -> dict[str, np.ndarray]:
        with _widened([fn, fn_state]):
            try:
                return _evaluate(side, fn, inputs, fn_state, p, **run)
            except (TypeError, ValueError) as err:
                raise type(err)(
                    f"check_fused: inputs below float64 are also evaluated in float64, and {side} "
                    f"failed there: {err}. If it uses float state of its own (a Module, running "
                    "statistics), pass that as state= so it is widened too."
                ) from err

    # The float64 evaluations come first, before the low-precision sides update any state:
    # each widened copy starts from the state as it was given.
    truth = in_float64("composed", composed, states[0], _copies(args, np.float64), probes)
    jiggle = np.random.default_rng((seed, COTANGENT_STREAM, 1))
    moved = [in_float64("composed", composed, states[0], _perturbed(args, low, jiggle),
                        probes.perturbed(jiggle)) for _ in range(FLOAT32_PERTURBATIONS)]
    fused_wide = in_float64("fused", fused, states[1], _copies(args, np.float64), probes)
    reference = _evaluate("composed", composed, _copies(args), states[0], probes, **run)
    result = _evaluate("fused", fused, _copies(args), states[1], probes, **run)
    _same_targets(reference, result)
    eps, ratio = float(np.finfo(low).eps), float(np.finfo(low).eps / np.finfo(np.float64).eps)
    tiniest = float(np.finfo(low).smallest_subnormal)
    sensitivity = {name: max(_max_abs_diff(m[name], truth[name]) for m in moved) for name in reference}
    maths = {name: _judge_maths(name, truth[name], fused_wide[name], FUSED_RTOL[_F64], FUSED_ATOL[_F64],
                                sensitivity[name] / ratio) for name in reference}
    report = FusedCheckReport(rtol=rtol, atol=atol, dtype=str(low))
    for name in reference:
        # The fused formula's own float64 error is a yardstick only when that formula is right.
        own = _max_abs_diff(fused_wide[name], truth[name]) * ratio if maths[name].passed else 0.0
        report.rows.append(_judge_against_truth(name, reference[name], result[name], truth[name],
                                                sensitivity[name], own, (eps, tiniest), rtol, atol))
    report.rows += maths.values()
    return report


def _copies(args: list[Any], dtype: Any = None) -> list[Any]:
    return [_copy_input(a, dtype) for a in args]


def _perturbed(args: list[Any], low: np.dtype, rng: np.random.Generator) -> list[Any]:
    """float64 copies of the inputs with every float element moved by up to half an ulp of `low`."""
    half_ulp = float(np.finfo(low).eps) / 2
    moved = []
    for a in _copies(args, np.float64):
        if isinstance(a, Tensor) and a.dtype.kind == "f":
            a = Tensor(_jiggled(a.data, half_ulp, rng), requires_grad=a.requires_grad)
        moved.append(a)
    return moved


def _jiggled(a: np.ndarray, relative: float, rng: np.random.Generator) -> np.ndarray:
    """a (as float64) with every element scaled by a random factor in [1 - relative, 1 + relative]."""
    return a.astype(np.float64) * (1.0 + relative * rng.uniform(-1.0, 1.0, a.shape))


def _same_targets(reference: dict[str, Any], result: dict[str, Any]) -> None:
    if list(reference) != list(result):
        raise ValueError(f"check_fused: the two sides differentiate different things: "
                         f"{_labels(reference)} vs {_labels(result)} (Modules must have the same "
                         "parameter names)")


def _labels(quantities: dict[str, Any]) -> list[str]:
    return [name for name in quantities if name.startswith("grad[") and name.endswith(f"({FAST})")]


# ---------------------------------------------------------------- one side


class _Probes:
    """The random cotangents and projections, drawn once and shared by every side."""

    def __init__(self, rng: np.random.Generator, dtype: np.dtype):
        self.rng, self.dtype = rng, dtype
        self.out_shapes: list[tuple[int, ...]] | None = None
        self.cotangents: list[np.ndarray] = []
        self.projections: list[np.ndarray] | None = None

    def cotangents_for(self, side: str, outs: list[Tensor]) -> list[np.ndarray]:
        shapes = [o.shape for o in outs]
        if self.out_shapes is None:
            # Random, never all-ones: that would make normalised layers' dx vanish. Rounded to
            # the lowest input precision so that every side sees exactly the same values.
            self.out_shapes = shapes
            self.cotangents = [self.rng.standard_normal(s).astype(self.dtype) for s in shapes]
        elif len(shapes) != len(self.out_shapes):
            raise ValueError(f"check_fused: composed returned {len(self.out_shapes)} output(s) but {side} "
                             f"returned {len(shapes)}; both must return the same outputs")
        elif shapes != self.out_shapes:
            bad = next(k for k, (a, b) in enumerate(zip(self.out_shapes, shapes)) if a != b)
            raise ValueError(f"check_fused: output {bad} has shape {self.out_shapes[bad]} from composed "
                             f"but {shapes[bad]} from {side}")
        return self.cotangents

    def perturbed(self, rng: np.random.Generator) -> _Probes:
        """A copy whose cotangents and projections moved by up to half an ulp (float64 values)."""
        half_ulp = float(np.finfo(self.dtype).eps) / 2
        copy = _Probes(self.rng, np.dtype(np.float64))
        copy.out_shapes = self.out_shapes
        copy.cotangents = [_jiggled(c, half_ulp, rng) for c in self.cotangents]
        if self.projections is not None:
            copy.projections = [_jiggled(p, half_ulp, rng) for p in self.projections]
        return copy

    def projections_for(self, targets: list[Tensor]) -> list[np.ndarray]:
        if self.projections is None:
            self.projections = [self.rng.standard_normal(t.shape).astype(self.dtype) for t in targets]
        return self.projections


def _evaluate(side: str, fn: Any, args: list[Any], state: Any, probes: _Probes, *,
              double_backward: bool, steps: int) -> dict[str, np.ndarray]:
    """Every quantity check_fused compares, for one callable on its own copies of the inputs."""
    outs = as_outputs(fn(*args))
    quantities = {f"output[{k}]": o.data for k, o in enumerate(outs)}
    targets = _grad_targets(fn, args)
    tensors = [t for _, t in targets]
    seeds = [Tensor(c.astype(o.dtype)) for c, o in zip(probes.cotangents_for(side, outs), outs)]
    if tensors:
        fast = autograd_grad(outs, tensors, seeds, retain_graph=True, allow_unused=True)
        differentiable = autograd_grad(outs, tensors, seeds, create_graph=True, allow_unused=True)
        for path, grads in ((FAST, fast), (DIFFERENTIABLE, differentiable)):
            for (label, t), g in zip(targets, grads):
                quantities[f"grad[{label}] ({path})"] = _grad_or_zeros(g, t)
        if double_backward:
            for (label, t), h in zip(targets, _second(differentiable, tensors, probes)):
                quantities[f"gradgrad[{label}]"] = _grad_or_zeros(h, t)
    if state is not None:
        for _ in range(steps - 1):
            with no_grad():
                fn(*args)
        for name, value in _state_items(state):
            quantities[f"state[{name}]"] = value
    return quantities


def _second(grads: list[Tensor | None], tensors: list[Tensor], probes: _Probes) -> list[Tensor | None]:
    """d/d(inputs) of sum_i <grad_i, p_i> for random projections p_i."""
    terms = [(g * Tensor(p.astype(g.dtype))).sum()
             for g, p in zip(grads, probes.projections_for(tensors)) if g is not None and g.requires_grad]
    if not terms:  # no gradient depends on the inputs: every second derivative is zero
        return [None] * len(tensors)
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return list(autograd_grad(total, tensors, allow_unused=True))


def _grad_targets(fn: Any, side: list[Any]) -> list[tuple[str, Tensor]]:
    """(label, tensor) pairs to differentiate: inputs that require grad, then a Module's parameters."""
    targets = [(f"input {i}", a) for i, a in enumerate(side) if isinstance(a, Tensor) and a.requires_grad]
    if isinstance(fn, Module):
        targets += [(name, p) for name, p in fn.named_parameters() if p.requires_grad]
    return targets


def _grad_or_zeros(g: Tensor | None, like: Tensor) -> np.ndarray:
    return np.zeros(like.shape, like.dtype) if g is None else g.data


def _copy_input(x: Any, dtype: Any = None) -> Any:
    """A side's own copy of one argument: float arrays become Tensors that require grad."""
    if isinstance(x, Tensor):
        data = x.data if dtype is None or x.dtype.kind != "f" else x.data.astype(dtype)
        return Tensor(data.copy(), requires_grad=x.requires_grad)
    if isinstance(x, np.ndarray) and x.dtype.kind == "f":
        return Tensor(x.astype(dtype or x.dtype, copy=True), requires_grad=True)
    return x


def _state_items(state: Any) -> list[tuple[str, np.ndarray]]:
    if isinstance(state, Module):
        return [(name, t.data) for name, t in state.named_buffers()]
    if isinstance(state, dict):
        return [(k, v.data if isinstance(v, Tensor) else np.asarray(v)) for k, v in state.items()]
    return [(str(i), v.data if isinstance(v, Tensor) else np.asarray(v)) for i, v in enumerate(state)]


@contextlib.contextmanager
def _widened(objects: list[Any]) -> Iterator[None]:
    """Swap every Tensor in these Modules, dicts and lists for a (float64) copy; put them back after."""
    undo: list[Callable[[], None]] = []
    seen: set[int] = set()
    try:
        for obj in objects:
            if obj is None or id(obj) in seen:
                continue
            seen.add(id(obj))
            if isinstance(obj, Module):
                _widen_module(obj, undo)
            elif isinstance(obj, dict | list):
                keys = list(obj) if isinstance(obj, dict) else range(len(obj))
                for key in keys:
                    wide = _wide(obj[key])
                    if wide is not None:
                        undo.append(lambda o=obj, k=key, v=obj[key]: o.__setitem__(k, v))
                        obj[key] = wide
        yield
    finally:
        for step in reversed(undo):
            step()


def _wide(value: Any) -> Any:
    """A copy of a Tensor or array for the float64 evaluation (floats as float64), else None.

    Every one is copied, not only the floats: the float64 runs must leave the state they
    start from (counters such as num_batches_tracked included) as it was.
    """
    if not isinstance(value, Tensor | np.ndarray):
        return None
    data = value.data if isinstance(value, Tensor) else value
    data = data.astype(np.float64) if data.dtype.kind == "f" else data.copy()
    if isinstance(value, Parameter):
        return Parameter(data, requires_grad=value.requires_grad)
    return Tensor(data, requires_grad=value.requires_grad) if isinstance(value, Tensor) else data


def _widen_module(module: Module, undo: list[Callable[[], None]]) -> None:
    owners = dict(module.named_modules())
    for name, value in [*module.named_parameters(), *module.named_buffers()]:
        owner_name, _, attr = name.rpartition(".")
        owner = owners[owner_name]
        wide = _wide(value)
        if wide is not None:
            undo.append(lambda o=owner, a=attr, v=value: setattr(o, a, v))
            setattr(owner, attr, wide)


# ---------------------------------------------------------------- judging


def _max_abs(a: np.ndarray) -> float:
    return float(np.max(np.abs(a))) if a.size else 0.0


def _judge(name: str, reference: np.ndarray, fused: np.ndarray, rtol: float, atol: float) -> FusedRow:
    """float64: the fused side against the composed twin."""
    mismatch = _dtype_mismatch(name, reference, fused)
    if mismatch is not None:
        return mismatch
    reference, fused = np.asarray(reference, np.float64), np.asarray(fused, np.float64)
    if reference.shape != fused.shape:
        return FusedRow(f"{name} (shape {reference.shape} vs {fused.shape})", np.inf, np.inf, False)
    abs_err = _max_abs(reference - fused)
    scale = max(_max_abs(reference), _max_abs(fused))
    rel_err = abs_err / scale if scale > 0 else abs_err
    return FusedRow(name, abs_err, rel_err, bool(rel_err <= rtol or abs_err <= atol))


def _dtype_mismatch(name: str, composed: np.ndarray, fused: np.ndarray) -> FusedRow | None:
    """A failing row when the fused side returns another dtype (e.g. float64 for float32 input)."""
    a, b = np.asarray(composed).dtype, np.asarray(fused).dtype
    if a == b:
        return None
    return FusedRow(f"{name} (dtype {b}, composed {a})", np.inf, np.inf, False)


def _judge_maths(name: str, truth: np.ndarray, fused: np.ndarray, rtol: float, atol: float,
                 sensitivity: float) -> FusedRow:
    """An 'in float64' row: the fused kernel in float64 against the truth.

    Besides rtol/atol it passes within FLOAT32_FACTOR times the truth's sensitivity to a
    half-ulp float64 change of its inputs: inputs whose spread is a few float32 ulps (a
    normalised group like 10000, 10000.001) leave float64 itself only ~9 correct digits.
    """
    row = _judge(name + IN_FLOAT64, truth, fused, rtol, atol)
    scale = _max_abs(np.asarray(truth, np.float64))
    unit = scale if scale > 0 else 1.0
    allowed = max(rtol * scale, FLOAT32_FACTOR * sensitivity)
    passed = row.passed or row.abs_err <= FLOAT32_FACTOR * sensitivity
    return row._replace(passed=passed, allowed=allowed / unit)


def _max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return _max_abs(a - b) if a.shape == b.shape else np.inf


def _judge_against_truth(name: str, composed: np.ndarray, fused: np.ndarray, truth: np.ndarray,
                         sensitivity: float, own: float, ulp: tuple[float, float], rtol: float | None,
                         atol: float | None) -> FusedRow:
    """Below float64: the fused error against the float64 truth, next to the yardsticks.

    `ulp` is (eps, smallest subnormal) of the low precision: an ulp of the scale is the larger
    of eps * scale and the smallest subnormal.
    """
    mismatch = _dtype_mismatch(name, composed, fused)
    if mismatch is not None:
        return mismatch
    truth = np.asarray(truth, np.float64)
    if np.shape(fused) != truth.shape:
        return FusedRow(f"{name} (shape {truth.shape} vs {np.shape(fused)})", np.inf, np.inf, False)
    scale = _max_abs(truth)
    unit = scale if scale > 0 else 1.0
    fused_err, composed_err = _max_abs_diff(fused, truth), _max_abs_diff(composed, truth)
    eps, tiniest = ulp
    floor = FLOAT32_FLOOR_ULPS * max(eps * scale, tiniest)
    allowed = max(FLOAT32_FACTOR * max(composed_err, sensitivity, own), floor)
    if rtol is not None:
        allowed = max(allowed, rtol * scale)
    if atol is not None:
        allowed = max(allowed, atol)
    return FusedRow(name, fused_err, fused_err / unit, bool(fused_err <= allowed), composed_err / unit,
                    sensitivity / unit, own / unit, allowed / unit)
