"""Optimizers: SGD (with momentum / Nesterov), AdaGrad, RMSProp, Adam.

Each optimizer holds a list of Parameters and updates their arrays in place.
The update rules follow PyTorch's `torch.optim` (the same formulas as the
textbooks; see docs/training.md):

    SGD       g <- g + wd*p;  b <- mu*b + g;  d = g + mu*b (Nesterov) or b;  p <- p - lr*d
    AdaGrad   s <- s + g^2;                                   p <- p - lr*g / (sqrt(s) + eps)
    RMSProp   s <- alpha*s + (1-alpha)*g^2;                   p <- p - lr*g / (sqrt(s) + eps)
    Adam      g <- g + wd*p;  m <- b1*m + (1-b1)*g;  v <- b2*v + (1-b2)*g^2
              p <- p - lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)

`step()` works directly on the numpy arrays (`p.data`, `p.grad.data`) with
in-place ufuncs and preallocated scratch space, so it records no graph in any
grad mode, allocates nothing per step, and keeps each parameter's dtype.
Parameters whose `.grad` is None are skipped (their state does not advance).

State (momentum buffers, moment estimates, step counts) is keyed by the
parameter's position in the list given to the constructor; `state_dict()`
returns it flat, as numpy arrays and Python scalars, ready for an `.npz` file.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from tinygrad_bn.tensor import DIFFERENTIABLE_DTYPES, Tensor

__all__ = ["Optimizer", "SGD", "AdaGrad", "RMSProp", "Adam"]


# ---------------------------------------------------------------- hyperparameter checks


def _unwrap(value: Any) -> Any:
    """Turn numpy scalars and 0-d arrays (as read back from an .npz) into Python values."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _real(owner: str, name: str, value: Any, ok: Callable[[float], bool], expected: str) -> float:
    value = _unwrap(value)
    # bool is an int subclass, but lr=True is surely a mistake.
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a number {expected}, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and ok(value)):
        raise ValueError(f"{owner}: {name} must be a finite number {expected}, got {value!r}")
    return value


def _positive(owner: str, name: str, value: Any) -> float:
    return _real(owner, name, value, lambda v: v > 0, "> 0")


def _non_negative(owner: str, name: str, value: Any) -> float:
    return _real(owner, name, value, lambda v: v >= 0, ">= 0")


def _fraction(owner: str, name: str, value: Any) -> float:
    # 1 is excluded: a running average with decay 1 never leaves its zero start (and
    # Adam's bias correction 1 - beta^t would be 0), and momentum 1 never forgets.
    return _real(owner, name, value, lambda v: 0 <= v < 1, "in [0, 1)")


def _flag(owner: str, name: str, value: Any) -> bool:
    value = _unwrap(value)
    if not isinstance(value, bool):
        raise TypeError(f"{owner}: {name} must be True or False, got {value!r}")
    return value


def _betas(owner: str, name: str, value: Any) -> tuple[float, float]:
    value = np.asarray(value, dtype=object) if isinstance(value, list | tuple) else value
    if not isinstance(value, np.ndarray) or value.shape != (2,):
        raise ValueError(f"{owner}: {name} must be a pair (beta1, beta2), got {value!r}")
    return (_fraction(owner, f"{name}[0]", value[0]), _fraction(owner, f"{name}[1]", value[1]))


def _check_params(owner: str, params: Any) -> list[Tensor]:
    """The parameter list: leaf float tensors, each once."""
    if isinstance(params, Tensor):
        raise TypeError(
            f"{owner}: params must be an iterable of Parameters (e.g. model.parameters()), "
            "got a single Tensor; wrap it in a list"
        )
    if not isinstance(params, Iterable):
        raise TypeError(
            f"{owner}: params must be an iterable of Parameters (e.g. model.parameters()), "
            f"got {type(params).__name__}"
        )
    params = list(params)
    if not params:
        raise ValueError(f"{owner}: got an empty parameter list; nothing to optimize")
    seen: dict[int, int] = {}
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            hint = " (pass model.parameters(), not the model)" if hasattr(p, "parameters") else ""
            raise TypeError(
                f"{owner}: params[{i}] is a {type(p).__name__}, expected a Parameter{hint}"
            )
        if p._ctx is not None:
            raise ValueError(
                f"{owner}: params[{i}] (shape {p.shape}) is the output of an op, not a leaf; "
                "only leaf tensors (Parameters) can be optimized"
            )
        if p.data.dtype not in DIFFERENTIABLE_DTYPES:
            raise TypeError(
                f"{owner}: params[{i}] has dtype {p.data.dtype}, expected float32 or float64"
            )
        if id(p) in seen:
            raise ValueError(f"{owner}: params[{i}] is the same Parameter as params[{seen[id(p)]}]")
        seen[id(p)] = i
    return params


def _scratch(params: list[Tensor], count: int) -> list[tuple[np.ndarray, ...]]:
    """`count` work arrays per parameter, shaped like it.

    They are views into a few buffers shared by all parameters of a dtype (sized
    for the largest), so scratch memory is that of one parameter, not the model,
    and it stays hot in cache from one parameter to the next.
    """
    largest: dict[np.dtype, int] = {}
    for p in params:
        largest[p.data.dtype] = max(largest.get(p.data.dtype, 0), p.data.size)
    buffers = {dt: [np.empty(n, dtype=dt) for _ in range(count)] for dt, n in largest.items()}
    return [
        tuple(b[: p.data.size].reshape(p.data.shape) for b in buffers[p.data.dtype])
        for p in params
    ]


@functools.lru_cache(maxsize=256)
def _scalars(dtype: np.dtype, *values: float) -> tuple[np.ndarray, ...]:
    """The update's scalars as 0-d arrays of the parameter's dtype (read-only, cached).

    numpy 2 combines an array with a 0-d array of its own dtype about twice as fast
    as with a Python float (which takes the NEP 50 "weak scalar" path), and the
    result is the same: the float is rounded to the array's dtype either way.
    That is a microsecond per ufunc call, which is most of a step on small layers.
    """
    out = []
    for v in values:
        a = np.array(v, dtype=dtype)
        a.flags.writeable = False
        out.append(a)
    return tuple(out)


# ---------------------------------------------------------------- base class


class Optimizer:
    """Base class: a parameter list, validated hyperparameters, per-parameter state.

    Subclasses declare `hyperparameters` (name -> check), `buffers` (names of
    per-parameter arrays shaped like the parameter, zero at the start) and
    `counters` (names of per-parameter integer counts), and define `step()`.
    """

    hyperparameters: dict[str, Callable[[str, str, Any], Any]] = {}
    buffers: tuple[str, ...] = ()
    counters: tuple[str, ...] = ()
    _work: list[tuple[np.ndarray, ...]]  # scratch arrays per parameter, set by each subclass

    def __init__(self, params: Iterable[Tensor], **hyper: Any):
        name = type(self).__name__
        self.params: list[Tensor] = _check_params(name, params)
        for key, value in self._checked_hyper(hyper).items():
            setattr(self, key, value)
        # state[i] belongs to params[i]; buffers start at zero, which gives exactly the
        # first-step values of PyTorch's lazily created state (e.g. b = 0*mu + g = g).
        self.state: list[dict[str, Any]] = [
            {**{b: np.zeros_like(p.data) for b in self.buffers}, **{c: 0 for c in self.counters}}
            for p in self.params
        ]

    def _checked_hyper(self, hyper: Mapping[str, Any]) -> dict[str, Any]:
        """Validate every hyperparameter; subclasses add checks that involve several."""
        name = type(self).__name__
        return {key: check(name, key, hyper[key]) for key, check in self.hyperparameters.items()}

    def zero_grad(self) -> None:
        """Forget the gradients of every parameter (set `.grad` to None)."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient, in place."""
        raise NotImplementedError

    def _with_grads(self) -> Iterator[tuple[np.ndarray, np.ndarray, dict[str, Any], tuple[np.ndarray, ...]]]:
        """(gradient, weights, state, scratch arrays) of every parameter that has a gradient.

        Both arrays must still have the parameter's shape when the optimizer was built:
        its state and scratch arrays are sized for it.
        """
        for p, state, work in zip(self.params, self.state, self._work, strict=True):
            if p.grad is None:
                continue
            g, w = p.grad.data, p.data
            if g.shape != work[0].shape or w.shape != work[0].shape:
                _shape_error(self, p, work[0].shape)
            yield g, w, state, work

    # ---------------------------------------------------------------- state

    def state_dict(self) -> dict[str, Any]:
        """Optimizer name, hyperparameters and per-parameter state (copies), as a flat dict.

        Keys: "optimizer", "num_params", each hyperparameter, and
        "state.<i>.<name>" for the i-th parameter's buffers and counters.
        """
        state: dict[str, Any] = {"optimizer": type(self).__name__, "num_params": len(self.params)}
        for key in self.hyperparameters:
            value = getattr(self, key)
            state[key] = np.array(value) if isinstance(value, tuple) else value
        for i, s in enumerate(self.state):
            for b in self.buffers:
                state[f"state.{i}.{b}"] = s[b].copy()
            for c in self.counters:
                state[f"state.{i}.{c}"] = s[c]
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore hyperparameters and state from `state_dict()`, validating everything first.

        Scalars may come back as 0-d arrays (from an .npz). Nothing changes if any
        check fails.
        """
        name = type(self).__name__
        if not isinstance(state, Mapping):
            raise TypeError(f"{name}.load_state_dict: expected a dict, got {type(state).__name__}")
        if "optimizer" not in state:
            raise KeyError(
                f"{name}.load_state_dict: no 'optimizer' entry; is this an optimizer state?"
            )
        kind = _unwrap(state["optimizer"])
        if kind != name:
            raise ValueError(
                f"{name}.load_state_dict: the state is for optimizer {kind!r}, not {name!r}"
            )
        count = _unwrap(state.get("num_params"))
        if count != len(self.params):
            raise ValueError(
                f"{name}.load_state_dict: the state is for {count} parameters, "
                f"this optimizer has {len(self.params)}"
            )
        expected = {"optimizer", "num_params", *self.hyperparameters}
        expected.update(
            f"state.{i}.{k}" for i in range(len(self.params)) for k in self.buffers + self.counters
        )
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        if missing or unexpected:
            raise KeyError(
                f"{name}.load_state_dict: missing keys {missing}, unexpected keys {unexpected}"
            )
        hyper = self._checked_hyper(state)
        new_state = []
        for i, p in enumerate(self.params):
            entry: dict[str, Any] = {}
            for b in self.buffers:
                key = f"state.{i}.{b}"
                value = np.asarray(state[key])
                if value.shape != p.data.shape:
                    raise ValueError(
                        f"{name}.load_state_dict: {key} has shape {value.shape}, "
                        f"expected params[{i}]'s shape {p.data.shape}"
                    )
                if value.dtype.kind != "f":
                    raise TypeError(
                        f"{name}.load_state_dict: {key} has dtype {value.dtype}, "
                        "expected a float array"
                    )
                entry[b] = value
            for c in self.counters:
                key = f"state.{i}.{c}"
                value = _unwrap(state[key])
                if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
                    raise ValueError(
                        f"{name}.load_state_dict: {key} must be an integer >= 0, got {value!r}"
                    )
                entry[c] = int(value)
            new_state.append(entry)
        # Everything is valid: now commit. Buffers are copied into the existing arrays
        # (keeping each parameter's dtype) so the state owns its memory.
        for key, value in hyper.items():
            setattr(self, key, value)
        for current, entry in zip(self.state, new_state, strict=True):
            for b in self.buffers:
                np.copyto(current[b], entry[b], casting="same_kind")
            for c in self.counters:
                current[c] = entry[c]

    def __repr__(self) -> str:
        hyper = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.hyperparameters)
        return f"{type(self).__name__}({len(self.params)} parameters, {hyper})"


# ---------------------------------------------------------------- the optimizers


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight decay.

    PyTorch semantics: g <- g + weight_decay*p; b <- momentum*b + g;
    the step direction is b, or g + momentum*b with nesterov=True; p <- p - lr*direction.
    """

    hyperparameters = {
        "lr": _positive, "momentum": _fraction, "nesterov": _flag, "weight_decay": _non_negative,
    }
    buffers = ("momentum_buffer",)

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ):
        super().__init__(
            params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay
        )
        self._work = _scratch(self.params, 2)

    def _checked_hyper(self, hyper: Mapping[str, Any]) -> dict[str, Any]:
        checked = super()._checked_hyper(hyper)
        if checked["nesterov"] and checked["momentum"] == 0:
            raise ValueError("SGD: nesterov=True needs a momentum > 0, got momentum=0")
        return checked

    def step(self) -> None:
        """p <- p - lr * direction, for every parameter with a gradient."""
        nesterov = self.nesterov
        for g, w, state, (t1, t2) in self._with_grads():
            lr, mu, wd = _scalars(w.dtype, self.lr, self.momentum, self.weight_decay)
            d = g  # the step direction; never written to, as it may be p.grad's array
            if wd:
                d = np.multiply(w, wd, out=t1)
                d += g
            if mu:
                buf = state["momentum_buffer"]
                buf *= mu
                buf += d
                if nesterov:
                    d = np.add(d, np.multiply(buf, mu, out=t2), out=t1)
                else:
                    d = buf
            w -= np.multiply(d, lr, out=t1)


class AdaGrad(Optimizer):
    """AdaGrad: per-coordinate step sizes lr / (sqrt(sum of squared gradients) + eps)."""

    hyperparameters = {"lr": _positive, "eps": _non_negative}
    buffers = ("sum",)

    def __init__(self, params: Iterable[Tensor], lr: float = 0.01, eps: float = 1e-10):
        super().__init__(params, lr=lr, eps=eps)
        self._work = _scratch(self.params, 1)

    def step(self) -> None:
        """s <- s + g^2; p <- p - lr * g / (sqrt(s) + eps)."""
        for g, w, state, (t,) in self._with_grads():
            lr, eps = _scalars(w.dtype, self.lr, self.eps)
            s = state["sum"]
            s += np.multiply(g, g, out=t)
            _descend(w, g, s, lr, eps, out=t)


class RMSProp(Optimizer):
    """RMSProp: divide the gradient by a running root-mean-square of recent gradients."""

    hyperparameters = {"lr": _positive, "alpha": _fraction, "eps": _non_negative}
    buffers = ("square_avg",)

    def __init__(
        self, params: Iterable[Tensor], lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8
    ):
        super().__init__(params, lr=lr, alpha=alpha, eps=eps)
        self._work = _scratch(self.params, 1)

    def step(self) -> None:
        """s <- alpha*s + (1-alpha)*g^2; p <- p - lr * g / (sqrt(s) + eps)."""
        for g, w, state, (t,) in self._with_grads():
            lr, alpha, one_minus_alpha, eps = _scalars(
                w.dtype, self.lr, self.alpha, 1.0 - self.alpha, self.eps
            )
            s = state["square_avg"]
            s *= alpha
            sq = np.multiply(g, g, out=t)
            sq *= one_minus_alpha
            s += sq
            _descend(w, g, s, lr, eps, out=t)


class Adam(Optimizer):
    """Adam with bias correction, and L2 weight decay added to the gradient (not AdamW).

    m and v are running averages of g and g^2; dividing by 1 - beta^t undoes their
    bias towards the zero they start from. The step counter t is per parameter.
    """

    hyperparameters = {
        "lr": _positive, "betas": _betas, "eps": _non_negative, "weight_decay": _non_negative,
    }
    buffers = ("exp_avg", "exp_avg_sq")
    counters = ("step",)

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        self._work = _scratch(self.params, 2)

    def step(self) -> None:
        """m, v <- moving averages of g, g^2; p <- p - lr * m_hat / (sqrt(v_hat) + eps)."""
        (b1, b2) = self.betas
        for g, w, state, (t1, t2) in self._with_grads():
            t = state["step"] = state["step"] + 1
            # sqrt(v_hat) + eps = sqrt(v) / sqrt(1 - b2^t) + eps, and m_hat = m / (1 - b1^t):
            # folding the bias corrections into two scalars saves two passes over the arrays.
            beta1, one_minus_b1, beta2, one_minus_b2, eps, wd, v_scale, step_size = _scalars(
                w.dtype, b1, 1.0 - b1, b2, 1.0 - b2, self.eps, self.weight_decay,
                1.0 / math.sqrt(1.0 - b2**t), self.lr / (1.0 - b1**t),
            )
            if wd:
                g = np.add(np.multiply(w, wd, out=t2), g, out=t2)
            m, v = state["exp_avg"], state["exp_avg_sq"]
            m *= beta1
            m += np.multiply(g, one_minus_b1, out=t1)
            v *= beta2
            sq = np.multiply(g, g, out=t1)
            sq *= one_minus_b2
            v += sq
            _descend(w, m, v, step_size, eps, out=t1, rms_scale=v_scale)


def _descend(
    w: np.ndarray,
    direction: np.ndarray,
    square_avg: np.ndarray,
    lr: np.ndarray,
    eps: np.ndarray,
    out: np.ndarray,
    rms_scale: np.ndarray | None = None,
) -> None:
    """w <- w - lr * direction / (rms_scale * sqrt(square_avg) + eps), in place, `out` as work space."""
    denom = np.sqrt(square_avg, out=out)
    if rms_scale is not None:
        denom *= rms_scale
    denom += eps
    step = np.divide(direction, denom, out=out)
    step *= lr
    w -= step


def _shape_error(opt: Optimizer, p: Tensor, expected: tuple[int, ...]) -> None:
    i = next(i for i, q in enumerate(opt.params) if q is p)
    raise ValueError(
        f"{type(opt).__name__}.step: params[{i}] has shape {p.data.shape} and a gradient of shape "
        f"{p.grad.shape if p.grad is not None else None}; expected both to be {expected} "
        "(its shape when the optimizer was built)"
    )
