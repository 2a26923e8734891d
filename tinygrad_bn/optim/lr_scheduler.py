"""Learning-rate schedules with torch.optim.lr_scheduler's semantics.

A scheduler writes each parameter group's 'lr' when it is built (epoch 0) and
at every `step()`. As in PyTorch, most schedules are *chainable*: `get_lr()`
turns the current lr into the next one (so two schedulers on one optimizer
multiply), and `step(epoch)` with an explicit epoch uses the closed form
(from `base_lrs`, the groups' 'initial_lr') where there is one. `last_epoch`
counts the steps taken; `get_last_lr()` is what the last step set.
`state_dict()` holds every attribute but the optimizer.

Call `optimizer.step()` before `scheduler.step()`, as PyTorch does; PyTorch
warns when the order is reversed, this module does not check it.
"""

from __future__ import annotations

import math
import numbers
import types
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from tinygrad_bn.optim.optimizer import Optimizer

__all__ = [
    "CosineAnnealingLR", "ExponentialLR", "LRScheduler", "LambdaLR", "LinearLR", "MultiStepLR",
    "OneCycleLR", "ReduceLROnPlateau", "SequentialLR", "StepLR",
]


def _check(owner: str, name: str, value: Any, ok: bool, expected: str) -> Any:
    if not ok:
        raise ValueError(f"{owner}: {name} must be {expected}, got {value!r}")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _per_group(owner: str, name: str, optimizer: Optimizer, value: Any) -> list[float]:
    """One value per parameter group: a number for all of them, or a list with one each."""
    groups = len(optimizer.param_groups)
    values = list(value) if isinstance(value, list | tuple) else [value] * groups
    _check(owner, name, value, len(values) == groups and all(map(_is_number, values)),
           f"a number or a list of {groups} numbers (one per parameter group)")
    return values


class LRScheduler:
    """Base class: sets every group's 'lr' to `get_lr()` at each `step()`."""

    _is_initial = False  # True only during the first step, which the constructor takes

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        name = type(self).__name__
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{name}: optimizer must be a tinygrad_bn.optim optimizer, "
                            f"got {type(optimizer).__name__}")
        _check(name, "last_epoch", last_epoch, _is_int(last_epoch) and last_epoch >= -1, "an int >= -1")
        self.optimizer = optimizer
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(f"{name}: param_groups[{i}] has no 'initial_lr', which resuming with "
                               f"last_epoch={last_epoch} needs; load the optimizer's state_dict first")
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        """Take the first step (to epoch last_epoch + 1), which sets the starting learning rates."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            del self._is_initial  # back to the class default, so it is not part of state_dict()

    def get_lr(self) -> list[float]:
        """The learning rates for epoch `last_epoch`, one per parameter group (subclasses)."""
        raise NotImplementedError

    def step(self, epoch: int | None = None) -> None:
        """Advance one epoch (or jump to `epoch`, by the closed form where there is one) and set the lrs."""
        self._step_count += 1
        self._update_lr(epoch)

    def _update_lr(self, epoch: int | None) -> None:
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = epoch
            closed_form = getattr(self, "_closed_form_lr", None)
            values = closed_form() if closed_form is not None else self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, values, strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The learning rates the last step set, one per parameter group."""
        return list(self._last_lr)

    def _lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """Every attribute but the optimizer."""
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what `state_dict()` returned (from a scheduler of the same kind)."""
        own = self.state_dict()
        if not isinstance(state_dict, dict) or set(state_dict) != set(own):
            got = sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict).__name__
            raise ValueError(f"{type(self).__name__}.load_state_dict: expected the keys {sorted(own)} "
                             f"of a {type(self).__name__} state, got {got}")
        self.__dict__.update(state_dict)


# ---------------------------------------------------------------- multiplicative schedules


class StepLR(LRScheduler):
    """lr = initial_lr * gamma ** (epoch // step_size): multiply by gamma every step_size epochs."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        self.step_size = _check("StepLR", "step_size", step_size, _is_int(step_size) and step_size > 0,
                                "a positive int")
        self.gamma = _check("StepLR", "gamma", gamma, _is_number(gamma), "a finite number")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size:
            return self._lrs()
        return [lr * self.gamma for lr in self._lrs()]

    def _closed_form_lr(self) -> list[float]:
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the lr by gamma at each milestone epoch (by gamma^k at one listed k times)."""

    def __init__(self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1,
                 last_epoch: int = -1):
        milestones = list(milestones)
        _check("MultiStepLR", "milestones", milestones, all(map(_is_int, milestones)), "a list of ints")
        self.milestones = Counter(milestones)
        self.gamma = _check("MultiStepLR", "gamma", gamma, _is_number(gamma), "a finite number")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch not in self.milestones:
            return self._lrs()
        return [lr * self.gamma ** self.milestones[self.last_epoch] for lr in self._lrs()]

    def _closed_form_lr(self) -> list[float]:
        passed = bisect_right(sorted(self.milestones.elements()), self.last_epoch)
        return [base * self.gamma**passed for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """lr = initial_lr * gamma ** epoch."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = _check("ExponentialLR", "gamma", gamma, _is_number(gamma), "a finite number")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return self._lrs() if self._is_initial else [lr * self.gamma for lr in self._lrs()]

    def _closed_form_lr(self) -> list[float]:
        return [base * self.gamma**self.last_epoch for base in self.base_lrs]


class LinearLR(LRScheduler):
    """Scale the lr by a factor going linearly from start_factor to end_factor over total_iters epochs."""

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1):
        name = "LinearLR"
        self.start_factor = _check(name, "start_factor", start_factor,
                                   _is_number(start_factor) and 0 < start_factor <= 1, "in (0, 1]")
        self.end_factor = _check(name, "end_factor", end_factor,
                                 _is_number(end_factor) and 0 <= end_factor <= 1, "in [0, 1]")
        self.total_iters = _check(name, "total_iters", total_iters, _is_int(total_iters) and total_iters > 0,
                                  "a positive int")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in self._lrs()]
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._lrs()
        # the ratio of this epoch's factor to the previous one's
        change = self.end_factor - self.start_factor
        ratio = 1 + change / (self.total_iters * self.start_factor + (self.last_epoch - 1) * change)
        return [lr * ratio for lr in self._lrs()]

    def _closed_form_lr(self) -> list[float]:
        progress = min(self.total_iters, self.last_epoch) / self.total_iters
        factor = self.start_factor + (self.end_factor - self.start_factor) * progress
        return [base * factor for base in self.base_lrs]


class LambdaLR(LRScheduler):
    """lr = initial_lr * lr_lambda(epoch), with one function for all groups or one per group."""

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float] | Sequence[Callable],
                 last_epoch: int = -1):
        groups = len(optimizer.param_groups) if isinstance(optimizer, Optimizer) else 0
        lambdas = list(lr_lambda) if isinstance(lr_lambda, list | tuple) else [lr_lambda] * groups
        if len(lambdas) != groups or not all(map(callable, lambdas)):
            raise ValueError(f"LambdaLR: lr_lambda must be a function or a list of {groups} functions "
                             f"(one per parameter group), got {lr_lambda!r}")
        self.lr_lambdas = lambdas
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base * fn(self.last_epoch) for fn, base in zip(self.lr_lambdas, self.base_lrs)]

    def state_dict(self) -> dict[str, Any]:
        """As LRScheduler's, with the lambdas' attributes for callable objects (None for functions)."""
        state = super().state_dict()
        state["lr_lambdas"] = [None if isinstance(fn, types.FunctionType) else dict(vars(fn))
                               for fn in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the counters and the callable objects' attributes; the functions stay."""
        state = dict(state_dict)
        saved = state.pop("lr_lambdas", None)
        if not isinstance(saved, list) or len(saved) != len(self.lr_lambdas):
            raise ValueError(f"LambdaLR.load_state_dict: 'lr_lambdas' must be a list of "
                             f"{len(self.lr_lambdas)} entries, got {saved!r}")
        super().load_state_dict({**state, "lr_lambdas": self.lr_lambdas})
        for fn, attributes in zip(self.lr_lambdas, saved):
            if attributes is not None:
                vars(fn).update(attributes)


# ---------------------------------------------------------------- annealing


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (initial_lr - eta_min) (1 + cos(pi epoch / T_max)) / 2 (SGDR without restarts)."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        name = "CosineAnnealingLR"
        self.T_max = _check(name, "T_max", T_max, _is_int(T_max) and T_max > 0, "a positive int")
        self.eta_min = _check(name, "eta_min", eta_min, _is_number(eta_min), "a finite number")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        t, period, low = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._lrs()
        if self._step_count == 1 and t > 0:  # built to resume at epoch t: the closed form
            return self._closed_form_lr()
        if (t - 1 - period) % (2 * period) == 0:  # leaving a minimum: the cosine's step back up
            return [lr + (base - low) * (1 - math.cos(math.pi / period)) / 2
                    for lr, base in zip(self._lrs(), self.base_lrs)]
        ratio = (1 + math.cos(math.pi * t / period)) / (1 + math.cos(math.pi * (t - 1) / period))
        return [low + ratio * (lr - low) for lr in self._lrs()]

    def _closed_form_lr(self) -> list[float]:
        cosine = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
        return [self.eta_min + (base - self.eta_min) * cosine for base in self.base_lrs]


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin 2018): lr up from max_lr/div_factor to max_lr, then down.

    The lr rises for pct_start of total_steps and then falls to
    initial_lr/final_div_factor (three_phase: back to initial_lr, then down);
    with cycle_momentum the momentum (or Adam's beta1) moves the opposite way,
    between max_momentum and base_momentum. Not chainable: step once per batch.
    """

    def __init__(self, optimizer: Optimizer, max_lr: float | list[float], total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True,
                 base_momentum: float | list[float] = 0.85, max_momentum: float | list[float] = 0.95,
                 div_factor: float = 25.0, final_div_factor: float = 1e4, three_phase: bool = False,
                 last_epoch: int = -1):
        name = "OneCycleLR"
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{name}: optimizer must be a tinygrad_bn.optim optimizer, "
                            f"got {type(optimizer).__name__}")
        self.total_steps = self._total_steps(total_steps, epochs, steps_per_epoch)
        _check(name, "pct_start", pct_start, _is_number(pct_start) and 0 <= pct_start <= 1, "in [0, 1]")
        self.anneal_strategy = _check(name, "anneal_strategy", anneal_strategy,
                                      anneal_strategy in ("cos", "linear"), "'cos' or 'linear'")
        self.phases = self._phases(float(pct_start), three_phase)
        max_lrs = _per_group(name, "max_lr", optimizer, max_lr)
        if last_epoch == -1:
            for group, top in zip(optimizer.param_groups, max_lrs):
                start = top / div_factor
                group.update(initial_lr=start, max_lr=top, min_lr=start / final_div_factor)
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(f"{name}: cycle_momentum=True needs an optimizer with a momentum or betas, "
                                 f"and {type(optimizer).__name__} has neither; pass cycle_momentum=False")
            self.use_beta1 = "betas" in optimizer.defaults
            highs = _per_group(name, "max_momentum", optimizer, max_momentum)
            lows = _per_group(name, "base_momentum", optimizer, base_momentum)
            if last_epoch == -1:
                for group, high, low in zip(optimizer.param_groups, highs, lows):
                    group.update(max_momentum=high, base_momentum=low)
                    self._set_momentum(group, high)
        super().__init__(optimizer, last_epoch)

    def _total_steps(self, total_steps: int | None, epochs: int | None, steps_per_epoch: int | None) -> int:
        positive = "a positive int"
        if total_steps is not None:
            return _check("OneCycleLR", "total_steps", total_steps, _is_int(total_steps) and total_steps > 0,
                          positive)
        if epochs is None or steps_per_epoch is None:
            raise ValueError("OneCycleLR: pass total_steps, or both epochs and steps_per_epoch")
        _check("OneCycleLR", "epochs", epochs, _is_int(epochs) and epochs > 0, positive)
        _check("OneCycleLR", "steps_per_epoch", steps_per_epoch,
               _is_int(steps_per_epoch) and steps_per_epoch > 0, positive)
        return epochs * steps_per_epoch

    def _phases(self, pct_start: float, three_phase: bool) -> list[tuple[float, str, str, str, str]]:
        """(last step, lr from, lr to, momentum from, momentum to) of each phase, as group keys."""
        up, last = pct_start * self.total_steps - 1, self.total_steps - 1
        if three_phase:
            return [(up, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                    (2 * up, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                    (last, "initial_lr", "min_lr", "max_momentum", "max_momentum")]
        return [(up, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (last, "max_lr", "min_lr", "base_momentum", "max_momentum")]

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)
        return start + (end - start) * pct

    def _set_momentum(self, group: dict[str, Any], momentum: float) -> None:
        if self.use_beta1:
            group["betas"] = (momentum, *group["betas"][1:])
        else:
            group["momentum"] = momentum

    def _phase(self, step: int) -> tuple[float, tuple[float, str, str, str, str]]:
        """The first step of the phase `step` is in, and that phase."""
        start = 0.0
        for phase in self.phases[:-1]:
            if step <= phase[0]:
                return start, phase
            start = phase[0]
        return start, self.phases[-1]

    def get_lr(self) -> list[float]:
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR: stepped {step} times, but total_steps is {self.total_steps}")
        start, (end, lr_from, lr_to, momentum_from, momentum_to) = self._phase(step)
        pct = (step - start) / (end - start)
        lrs = []
        for group in self.optimizer.param_groups:
            lrs.append(self._anneal(group[lr_from], group[lr_to], pct))
            if self.cycle_momentum:
                self._set_momentum(group, self._anneal(group[momentum_from], group[momentum_to], pct))
        return lrs


# ---------------------------------------------------------------- combining and reacting


class SequentialLR(LRScheduler):
    """Run schedulers one after another: schedulers[i] from epoch milestones[i-1] on (restarted there)."""

    def __init__(self, optimizer: Optimizer, schedulers: Sequence[LRScheduler], milestones: Sequence[int],
                 last_epoch: int = -1):
        name = "SequentialLR"
        schedulers, milestones = list(schedulers), list(milestones)
        if not schedulers:
            raise ValueError(f"{name}: expected at least one scheduler, got none")
        for i, s in enumerate(schedulers):
            if isinstance(s, ReduceLROnPlateau) or not isinstance(s, LRScheduler):
                raise TypeError(f"{name}: schedulers[{i}] is a {type(s).__name__}; expected an epoch-driven "
                                "LRScheduler (ReduceLROnPlateau needs a metric at each step)")
            if s.optimizer is not optimizer:
                raise ValueError(f"{name}: schedulers[{i}] ({type(s).__name__}) belongs to another optimizer")
        _check(name, "milestones", milestones, len(milestones) == len(schedulers) - 1
               and all(map(_is_int, milestones)), f"a list of {len(schedulers) - 1} ints (one per switch)")
        self.optimizer, self._schedulers, self._milestones = optimizer, schedulers, milestones
        self.last_epoch = last_epoch + 1
        for group in optimizer.param_groups:  # undo what building the schedulers did
            group["lr"] = group["initial_lr"]
        for s in schedulers:
            s.last_epoch -= 1
        first = schedulers[bisect_right(milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def step(self) -> None:  # type: ignore[override]
        """Advance the scheduler whose turn it is; at a milestone, restart the next one at its epoch 0."""
        self.last_epoch += 1
        index = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[index]
        if index > 0 and self._milestones[index - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self) -> dict[str, Any]:
        """The counters and milestones, and each scheduler's own state_dict()."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "_schedulers")}
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the counters and every scheduler's state."""
        state = dict(state_dict)
        saved = state.pop("_schedulers", None)
        if not isinstance(saved, list) or len(saved) != len(self._schedulers):
            raise ValueError(f"SequentialLR.load_state_dict: '_schedulers' must be a list of "
                             f"{len(self._schedulers)} states, got {type(saved).__name__}")
        own = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "_schedulers")}
        if set(state) != set(own):
            raise ValueError(f"SequentialLR.load_state_dict: expected the keys {sorted(own)}, "
                             f"got {sorted(state)}")
        for scheduler, entry in zip(self._schedulers, saved):
            scheduler.load_state_dict(entry)
        self.__dict__.update(state)


class ReduceLROnPlateau(LRScheduler):
    """Multiply the lr by `factor` once a metric has not improved for more than `patience` steps.

    `step(metric)` after each evaluation. mode 'min' (a loss) or 'max' (an
    accuracy); improving means beating the best by `threshold`, relative
    ('rel') or absolute ('abs'). After a reduction, `cooldown` steps pass
    before bad steps count again; the lr never goes below min_lr, and changes
    smaller than eps are skipped.
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float | list[float] = 0.0, eps: float = 1e-8):
        name = "ReduceLROnPlateau"
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{name}: optimizer must be a tinygrad_bn.optim optimizer, "
                            f"got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.factor = _check(name, "factor", factor, _is_number(factor) and factor < 1, "a number < 1")
        self.mode = _check(name, "mode", mode, mode in ("min", "max"), "'min' or 'max'")
        self.threshold_mode = _check(name, "threshold_mode", threshold_mode, threshold_mode in ("rel", "abs"),
                                     "'rel' or 'abs'")
        self.threshold = _check(name, "threshold", threshold, _is_number(threshold), "a finite number")
        self.patience = _check(name, "patience", patience, _is_int(patience) and patience >= 0, "an int >= 0")
        self.cooldown = _check(name, "cooldown", cooldown, _is_int(cooldown) and cooldown >= 0, "an int >= 0")
        self.min_lrs = _per_group(name, "min_lr", optimizer, min_lr)
        self.eps = eps
        self.last_epoch = 0
        self._last_lr = self._lrs()
        self.best = math.inf if mode == "min" else -math.inf
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def _is_better(self, value: float) -> bool:
        best, threshold = self.best, self.threshold
        if self.threshold_mode == "rel":  # relative to best (which starts at +-inf, so anything wins)
            return value < best * (1 - threshold) if self.mode == "min" else value > best * (1 + threshold)
        return value < best - threshold if self.mode == "min" else value > best + threshold

    def step(self, metrics: float) -> None:  # type: ignore[override]
        """Record one evaluation of the metric; reduce the lrs after more than `patience` bad ones."""
        current = float(metrics)
        self.last_epoch += 1
        if self._is_better(current):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in the cooldown do not count
        if self.num_bad_epochs > self.patience:
            for group, floor in zip(self.optimizer.param_groups, self.min_lrs):
                new_lr = max(group["lr"] * self.factor, floor)
                if group["lr"] - new_lr > self.eps:
                    group["lr"] = new_lr
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = self._lrs()
