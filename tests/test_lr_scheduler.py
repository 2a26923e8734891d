"""Learning-rate schedulers: against their closed forms and torch.optim.lr_scheduler; state dicts; errors."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from tinygrad_bn import nn, optim
from tinygrad_bn.optim import lr_scheduler as S

STEPS = 14
# The chainable forms multiply the previous lr by a ratio each step, so they
# drift from the closed forms by a few ulps per step; PyTorch does the same
# arithmetic in the same order, so against it they agree exactly.
CLOSED_FORM_RTOL = 1e-12


def _sgd(lr: float = 0.1, second_lr: float = 0.5, momentum: float = 0.9):
    a, b = nn.Parameter(np.zeros(2)), nn.Parameter(np.zeros(3))
    return optim.SGD([{"params": [a]}, {"params": [b], "lr": second_lr}], lr=lr, momentum=momentum)


def _torch_sgd(torch, lr: float = 0.1, second_lr: float = 0.5, momentum: float = 0.9):
    a, b = torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)
    return torch.optim.SGD([{"params": [a]}, {"params": [b], "lr": second_lr}], lr=lr, momentum=momentum)


def _lrs(optimizer, scheduler, steps: int = STEPS) -> list[list[float]]:
    """get_last_lr() at construction and after each of `steps` steps."""
    out = [scheduler.get_last_lr()]
    for _ in range(steps):
        optimizer.step()
        scheduler.step()
        out.append(scheduler.get_last_lr())
    return out


# ---------------------------------------------------------------- closed forms, no torch needed

CLOSED_FORMS = {
    "StepLR": (lambda o: S.StepLR(o, step_size=3, gamma=0.5), lambda base, t: base * 0.5 ** (t // 3)),
    "MultiStepLR": (lambda o: S.MultiStepLR(o, [2, 5, 5, 9], gamma=0.3),
                    lambda base, t: base * 0.3 ** sum(m <= t for m in [2, 5, 5, 9])),
    "ExponentialLR": (lambda o: S.ExponentialLR(o, 0.9), lambda base, t: base * 0.9**t),
    "CosineAnnealingLR": (lambda o: S.CosineAnnealingLR(o, T_max=5, eta_min=0.01),
                          lambda base, t: 0.01 + (base - 0.01) * (1 + math.cos(math.pi * t / 5)) / 2),
    "LambdaLR": (lambda o: S.LambdaLR(o, lambda t: 1 / (t + 1)), lambda base, t: base / (t + 1)),
    "LinearLR": (lambda o: S.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=4),
                 lambda base, t: base * (0.2 + 0.7 * min(t, 4) / 4)),
}


@pytest.mark.parametrize("name", CLOSED_FORMS)
def test_schedule_follows_its_closed_form(name):
    make, formula = CLOSED_FORMS[name]
    opt = _sgd()
    # CosineAnnealingLR's closed form holds over one half period (afterwards it is the SGDR-style
    # recursion, which the torch comparison covers).
    steps = 5 if name == "CosineAnnealingLR" else STEPS
    for t, lrs in enumerate(_lrs(opt, make(opt), steps)):
        np.testing.assert_allclose(lrs, [formula(0.1, t), formula(0.5, t)], rtol=CLOSED_FORM_RTOL)


def test_the_scheduler_writes_the_groups_lr_and_keeps_initial_lr():
    opt = _sgd()
    sched = S.StepLR(opt, step_size=1, gamma=0.5)
    opt.step()
    sched.step()
    assert [g["lr"] for g in opt.param_groups] == [0.05, 0.25] == sched.get_last_lr()
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.5] == sched.base_lrs
    assert sched.last_epoch == 1


def test_step_with_an_epoch_jumps_there_by_the_closed_form():
    opt = _sgd()
    sched = S.StepLR(opt, step_size=3, gamma=0.5)
    with warnings.catch_warnings():
        sched.step(7)
    assert sched.last_epoch == 7 and sched.get_last_lr() == [0.1 * 0.25, 0.5 * 0.25]


def test_one_cycle_rises_to_max_lr_then_falls_to_the_floor_and_cycles_momentum():
    opt = _sgd(momentum=0.9)
    sched = S.OneCycleLR(opt, max_lr=1.0, total_steps=10, pct_start=0.3)
    lrs = [lr[0] for lr in _lrs(opt, sched, 9)]
    assert lrs[0] == pytest.approx(1.0 / 25)  # max_lr / div_factor
    assert lrs[2] == pytest.approx(1.0) and max(lrs) == lrs[2]  # the peak after pct_start of the steps
    assert lrs[-1] == pytest.approx(1.0 / 25 / 1e4)  # initial_lr / final_div_factor
    assert opt.param_groups[0]["momentum"] == pytest.approx(0.95)  # back at max_momentum at the end
    with pytest.raises(ValueError, match="OneCycleLR: stepped 11 times, but total_steps is 10"):
        opt.step()
        sched.step()
        sched.step()


def test_sequential_lr_switches_schedulers_at_the_milestones():
    opt = _sgd()
    warmup = S.LinearLR(opt, start_factor=0.5, total_iters=2)
    decay = S.ExponentialLR(opt, gamma=0.5)
    sched = S.SequentialLR(opt, [warmup, decay], milestones=[3])
    lrs = [lr[0] for lr in _lrs(opt, sched, 5)]
    np.testing.assert_allclose(lrs, [0.05, 0.075, 0.1, 0.1, 0.05, 0.025], rtol=CLOSED_FORM_RTOL)


def test_reduce_on_plateau_waits_patience_then_reduces_then_cools_down():
    opt = _sgd()
    sched = S.ReduceLROnPlateau(opt, patience=2, cooldown=1, factor=0.5, min_lr=0.02)
    lrs = []
    for loss in [5.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]:
        sched.step(loss)
        lrs.append(sched.get_last_lr()[0])
    # bad epochs 1, 2, 3 > patience at step 5; one cooldown step, then 3 more bad ones each time
    assert lrs == [0.1] * 4 + [0.05] * 4 + [0.025] * 4
    for _ in range(16):
        sched.step(4.0)
    assert sched.get_last_lr() == [0.02, 0.02]  # never below min_lr


def test_reduce_on_plateau_in_max_mode_counts_a_rising_metric_as_good():
    opt = _sgd()
    sched = S.ReduceLROnPlateau(opt, mode="max", patience=0)
    for accuracy in [0.5, 0.6, 0.7]:
        sched.step(accuracy)
    assert sched.get_last_lr() == [0.1, 0.5]
    sched.step(0.7)
    assert sched.get_last_lr() == pytest.approx([0.01, 0.05])


# ---------------------------------------------------------------- against PyTorch


def _cases(torch_module, ours_module):
    """name -> make(module, optimizer) for both libraries (the same arguments)."""
    return {
        "StepLR": lambda m, o: m.StepLR(o, 3, gamma=0.5),
        "MultiStepLR": lambda m, o: m.MultiStepLR(o, [2, 5, 5, 9], gamma=0.3),
        "ExponentialLR": lambda m, o: m.ExponentialLR(o, 0.9),
        "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, 4, eta_min=0.01),
        "LambdaLR": lambda m, o: m.LambdaLR(o, [lambda e: 1 / (e + 1), lambda e: 0.9**e]),
        "LinearLR": lambda m, o: m.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=4),
        "OneCycleLR": lambda m, o: m.OneCycleLR(o, max_lr=[1.0, 2.0], total_steps=STEPS),
        "OneCycleLR-3-linear": lambda m, o: m.OneCycleLR(o, max_lr=1.0, total_steps=STEPS, three_phase=True,
                                                         anneal_strategy="linear"),
        "SequentialLR": lambda m, o: m.SequentialLR(
            o, [m.LinearLR(o, 0.1, total_iters=3), m.CosineAnnealingLR(o, 5), m.ExponentialLR(o, 0.8)],
            milestones=[3, 8]),
        "chained": lambda m, o: (m.StepLR(o, 2, gamma=0.5), m.ExponentialLR(o, 0.9))[1],
    }


@pytest.mark.parametrize("name", list(_cases(None, None)))
def test_schedule_matches_torch_over_fourteen_steps(name):
    torch = pytest.importorskip("torch")
    make = _cases(None, None)[name]
    results = []
    for _, module, opt in [("torch", torch.optim.lr_scheduler, _torch_sgd(torch)), ("ours", S, _sgd())]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's warning about calling scheduler.step first
            sched = make(module, opt)
            lrs = _lrs(opt, sched)
        moments = [g["momentum"] for g in opt.param_groups]
        results.append((np.array(lrs), moments, [g["lr"] for g in opt.param_groups]))
    (torch_lrs, torch_moments, torch_group_lrs), (lrs, moments, group_lrs) = results
    np.testing.assert_array_equal(lrs, torch_lrs)
    assert moments == torch_moments and group_lrs == torch_group_lrs


def test_reduce_on_plateau_matches_torch():
    torch = pytest.importorskip("torch")
    metrics = [5, 4, 4, 4, 4, 4, 3.9999, 3, 3, 3, 3, 3, 2.9, 3, 3, 3, 3, 3]
    runs = []
    for module, opt in [(torch.optim.lr_scheduler, _torch_sgd(torch)), (S, _sgd())]:
        sched = module.ReduceLROnPlateau(opt, patience=2, cooldown=1, factor=0.5, min_lr=[0.02, 0.01],
                                         threshold=1e-3, threshold_mode="abs")
        out = []
        for m in metrics:
            sched.step(m)
            out.append(sched.get_last_lr())
        runs.append(out)
    assert runs[0] == runs[1]


# ---------------------------------------------------------------- state dicts


RESUMABLE = {
    "StepLR": lambda o: S.StepLR(o, 3, gamma=0.5),
    "MultiStepLR": lambda o: S.MultiStepLR(o, [2, 5, 9]),
    "CosineAnnealingLR": lambda o: S.CosineAnnealingLR(o, 4),
    "LambdaLR": lambda o: S.LambdaLR(o, lambda e: 0.9**e),
    "LinearLR": lambda o: S.LinearLR(o, 0.25, total_iters=6),
    "OneCycleLR": lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=STEPS),
    "SequentialLR": lambda o: S.SequentialLR(o, [S.LinearLR(o, 0.5, total_iters=2), S.ExponentialLR(o, 0.7)],
                                             milestones=[4]),
}


@pytest.mark.parametrize("name", RESUMABLE)
def test_resuming_optimizer_and_scheduler_from_state_dicts_continues_the_schedule(name):
    make = RESUMABLE[name]
    opt = _sgd()
    straight = _lrs(opt, make(opt))
    first_opt = _sgd()
    first = make(first_opt)
    _lrs(first_opt, first, 6)
    # PyTorch's order: build the new scheduler, then load both states (the optimizer's lrs last).
    opt2 = _sgd()
    resumed = make(opt2)
    resumed.load_state_dict(first.state_dict())
    opt2.load_state_dict(first_opt.state_dict())
    assert resumed.get_last_lr() == straight[6]
    assert _lrs(opt2, resumed, STEPS - 6)[1:] == straight[7:]


class Warmup:
    """A callable object: LambdaLR keeps its attributes in the state dict (functions it cannot)."""

    def __init__(self, steps: int):
        self.steps = steps

    def __call__(self, epoch: int) -> float:
        return min(1.0, (epoch + 1) / self.steps)


def test_lambda_lr_saves_callable_objects_attributes_and_not_functions():
    opt = _sgd()
    sched = S.LambdaLR(opt, [Warmup(4), lambda e: 1.0])
    state = sched.state_dict()
    assert state["lr_lambdas"] == [{"steps": 4}, None]
    other = S.LambdaLR(_sgd(), [Warmup(10), lambda e: 1.0])
    other.load_state_dict(state)
    assert other.lr_lambdas[0].steps == 4


def test_loading_another_schedulers_state_names_the_keys():
    state = S.StepLR(_sgd(), 3).state_dict()
    with pytest.raises(ValueError, match=r"ExponentialLR.load_state_dict: expected the keys .* of a "
                                         r"ExponentialLR state, got .*'step_size'"):
        S.ExponentialLR(_sgd(), 0.9).load_state_dict(state)


# ---------------------------------------------------------------- bad input

BAD = [
    (lambda o: S.StepLR(o, step_size=0), ValueError, "StepLR: step_size must be a positive int, got 0"),
    (lambda o: S.StepLR(o, 2, gamma="x"), ValueError, "StepLR: gamma must be a finite number, got 'x'"),
    (lambda o: S.StepLR("sgd", 2), TypeError, "StepLR: optimizer must be a tinygrad_bn.optim optimizer, got"),
    (lambda o: S.StepLR(o, 2, last_epoch=3), KeyError, r"param_groups\[0\] has no 'initial_lr'"),
    (lambda o: S.MultiStepLR(o, [1.5]), ValueError, r"MultiStepLR: milestones must be a list of ints"),
    (lambda o: S.CosineAnnealingLR(o, T_max=0), ValueError, "CosineAnnealingLR: T_max must be a positive"),
    (lambda o: S.LambdaLR(o, [lambda e: 1.0]), ValueError, "LambdaLR: lr_lambda must be a function or a list "
                                                          "of 2 functions"),
    (lambda o: S.LinearLR(o, start_factor=0), ValueError, r"start_factor must be in \(0, 1\], got 0"),
    (lambda o: S.LinearLR(o, end_factor=1.5), ValueError, r"end_factor must be in \[0, 1\], got 1.5"),
    (lambda o: S.OneCycleLR(o, 1.0), ValueError, "OneCycleLR: pass total_steps, or both epochs and"),
    (lambda o: S.OneCycleLR(o, 1.0, total_steps=-3), ValueError, "total_steps must be a positive int, got"),
    (lambda o: S.OneCycleLR(o, [1.0], total_steps=5), ValueError, "max_lr must be a number or a list of 2"),
    (lambda o: S.OneCycleLR(o, 1.0, total_steps=5, anneal_strategy="exp"), ValueError,
     "anneal_strategy must be 'cos' or 'linear', got 'exp'"),
    (lambda o: S.OneCycleLR(optim.Adagrad(o.param_groups[0]["params"]), 1.0, total_steps=5), ValueError,
     "cycle_momentum=True needs an optimizer with a momentum or betas, and Adagrad has neither"),
    (lambda o: S.SequentialLR(o, [S.StepLR(o, 2)], milestones=[3]), ValueError,
     r"SequentialLR: milestones must be a list of 0 ints"),
    (lambda o: S.SequentialLR(o, [S.StepLR(_sgd(), 2)], milestones=[]), ValueError,
     r"schedulers\[0\] \(StepLR\) belongs to another optimizer"),
    (lambda o: S.SequentialLR(o, [S.ReduceLROnPlateau(o)], milestones=[]), TypeError,
     "ReduceLROnPlateau needs a metric at each step"),
    (lambda o: S.ReduceLROnPlateau(o, factor=1.0), ValueError, "ReduceLROnPlateau: factor must be a"),
    (lambda o: S.ReduceLROnPlateau(o, mode="up"), ValueError, "mode must be 'min' or 'max', got 'up'"),
    (lambda o: S.ReduceLROnPlateau(o, min_lr=[0.1]), ValueError, "min_lr must be a number or a list of 2"),
]


@pytest.mark.parametrize("make, error, message", BAD, ids=[b[2][:40] for b in BAD])
def test_bad_arguments_raise_naming_the_scheduler_and_argument(make, error, message):
    with pytest.raises(error, match=message):
        make(_sgd())
