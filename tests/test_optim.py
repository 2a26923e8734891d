"""Optimizers: each update against its textbook formula and against torch.optim; groups, state dicts, errors.

The references are the formulas as printed (Kingma & Ba's Algorithm 1 for Adam,
Loshchilov & Hutter for AdamW, Duchi et al. for Adagrad, Hinton's lecture 6e
for RMSprop, PyTorch's documented algorithms for SGD's momentum, dampening and
Nesterov and for the options), written out in numpy and run step by step on
hypothesis-drawn parameters, gradients and hyper-parameters.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_bn import Tensor, enable_grad, nn, optim
from tinygrad_bn._io import atomic_save_npz, load_npz_checked
from tinygrad_bn.nn import Linear, Parameter, Sequential
from tinygrad_bn.optim import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop
from tinygrad_bn.testing import strategies as tst

# Our updates reorder the textbook arithmetic (in-place ufuncs, Adam's corrections
# folded into two scalars), so in float64 they differ from the references by
# rounding only: a few ulps per step, over at most 5 steps of O(1) values.
RTOL, ATOL = 1e-9, 1e-12
# Against torch.optim, which also works in float64 on the same values.
TORCH_RTOL, TORCH_ATOL = 1e-12, 1e-14


# ---------------------------------------------------------------- textbook references


def sgd_reference(p, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                  maximize=False):
    p, b = p.copy(), None
    for g in grads:
        g = (-g if maximize else g) + weight_decay * p
        if momentum:
            b = g if b is None else momentum * b + (1 - dampening) * g
            g = g + momentum * b if nesterov else b
        p = p - lr * g
    return p


def adam_reference(p, grads, lr, betas, eps, weight_decay=0.0, amsgrad=False, maximize=False,
                   decoupled=False):
    (b1, b2), p = betas, p.copy()
    m, v, v_max = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        g = -g if maximize else g
        if decoupled:
            p = p - lr * weight_decay * p
        else:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        v_max = np.maximum(v_max, v)
        m_hat, v_hat = m / (1 - b1**t), (v_max if amsgrad else v) / (1 - b2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


def rmsprop_reference(p, grads, lr, alpha, eps, weight_decay=0.0, momentum=0.0, centered=False):
    p, mean_sq, mean, b = p.copy(), np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for g in grads:
        g = g + weight_decay * p
        mean_sq = alpha * mean_sq + (1 - alpha) * g**2
        mean = alpha * mean + (1 - alpha) * g
        rms = np.sqrt(mean_sq - mean**2 if centered else mean_sq) + eps
        if momentum:
            b = momentum * b + g / rms
            p = p - lr * b
        else:
            p = p - lr * g / rms
    return p


def adagrad_reference(p, grads, lr, eps, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0):
    p, total = p.copy(), np.full_like(p, initial_accumulator_value)
    for t, g in enumerate(grads, start=1):
        g = g + weight_decay * p
        total = total + g**2
        p = p - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(total) + eps)
    return p


# ---------------------------------------------------------------- strategies

rates = st.floats(1e-4, 1.0)
decays = st.floats(0.0, 0.99)
small = st.floats(0.0, 0.1)
# eps > 0: with eps = 0 a zero gradient gives 0/0 in the textbook formulas as in ours.
epsilons = st.sampled_from([1e-10, 1e-8, 1e-3]) | st.floats(1e-8, 1e-2)


@st.composite
def trajectories(draw) -> tuple[np.ndarray, list[np.ndarray]]:
    """A float64 parameter and 1-5 gradients of its shape."""
    shape = draw(tst.shapes(min_dims=0, max_dims=2))
    return draw(tst.arrays(shape)), draw(st.lists(tst.arrays(shape), min_size=1, max_size=5))


def run(make: Callable[[list[Parameter]], Optimizer], p: np.ndarray, grads) -> np.ndarray:
    """Apply `make([param]).step()` once per gradient; return the final parameter."""
    param = Parameter(p.copy())
    opt = make([param])
    for g in grads:
        param.grad = Tensor(g)
        opt.step()
    return param.data


# ---------------------------------------------------------------- update rules


@given(trajectories(), rates, decays, st.floats(0.0, 1.0), small, st.booleans(), st.booleans())
def test_sgd_matches_textbook_update(traj, lr, momentum, dampening, weight_decay, nesterov, maximize):
    p, grads = traj
    nesterov = nesterov and momentum > 0
    dampening = 0.0 if nesterov else dampening
    hyper = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                 nesterov=nesterov, maximize=maximize)
    ours = run(lambda ps: SGD(ps, **hyper), p, grads)
    np.testing.assert_allclose(ours, sgd_reference(p, grads, **hyper), rtol=RTOL, atol=ATOL)


@given(trajectories(), rates, st.tuples(decays, st.floats(0.5, 0.9999)), epsilons, small,
       st.booleans(), st.booleans(), st.booleans())
def test_adam_and_adamw_match_textbook_update_with_bias_correction(traj, lr, betas, eps, weight_decay,
                                                                    amsgrad, maximize, decoupled):
    p, grads = traj
    cls = AdamW if decoupled else Adam
    hyper = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize)
    expected = adam_reference(p, grads, decoupled=decoupled, **hyper)
    np.testing.assert_allclose(run(lambda ps: cls(ps, **hyper), p, grads), expected, rtol=RTOL, atol=ATOL)


# alpha >= 0.1: centered RMSprop divides by sqrt(v - gbar^2), which cancels to rounding
# noise when alpha -> 0 (v = g^2 and gbar = g after each step), in the reference as in ours.
@given(trajectories(), rates, st.floats(0.1, 0.99), epsilons, small, decays, st.booleans())
def test_rmsprop_matches_textbook_update(traj, lr, alpha, eps, weight_decay, momentum, centered):
    p, grads = traj
    hyper = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered)
    expected = rmsprop_reference(p, grads, **hyper)
    np.testing.assert_allclose(run(lambda ps: RMSprop(ps, **hyper), p, grads), expected, rtol=RTOL, atol=ATOL)


@given(trajectories(), rates, epsilons, small, small, st.floats(0.0, 1.0))
def test_adagrad_matches_textbook_update(traj, lr, eps, lr_decay, weight_decay, initial):
    p, grads = traj
    hyper = dict(lr=lr, eps=eps, lr_decay=lr_decay, weight_decay=weight_decay,
                 initial_accumulator_value=initial)
    expected = adagrad_reference(p, grads, **hyper)
    np.testing.assert_allclose(run(lambda ps: Adagrad(ps, **hyper), p, grads), expected, rtol=RTOL, atol=ATOL)


def test_adam_first_step_moves_each_coordinate_by_lr():
    # With bias correction m_hat = g and v_hat = g^2 after one step, so the step is
    # lr * sign(g) (up to eps): the textbook's reason for the correction.
    p = Parameter(np.zeros(3))
    opt = Adam([p], lr=0.01, eps=0.0)
    p.grad = Tensor(np.array([1e-4, -3.0, 250.0]))
    opt.step()
    np.testing.assert_allclose(p.data, [-0.01, 0.01, -0.01], rtol=1e-12)


def test_pytorch_defaults():
    p = [Parameter(np.zeros(2))]
    assert SGD(p).defaults == dict(lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                                   maximize=False)
    assert Adam(p).defaults == dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                                    maximize=False)
    assert AdamW(p).defaults["weight_decay"] == 1e-2
    assert RMSprop(p).defaults == dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                                       centered=False, maximize=False)
    assert Adagrad(p).defaults == dict(lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
                                       eps=1e-10, maximize=False)


# ---------------------------------------------------------------- cross-check with PyTorch

TORCH_CASES = [
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01), dict(lr=0.3, momentum=0.5)),
    ("SGD", dict(lr=0.1, momentum=0.5, dampening=0.3, weight_decay=0.1, maximize=True), dict(momentum=0.0)),
    ("Adam", dict(lr=0.01, betas=(0.5, 0.9), weight_decay=0.1), dict(lr=0.1, amsgrad=True)),
    ("Adam", dict(lr=0.01, amsgrad=True, maximize=True), dict(betas=(0.8, 0.99))),
    ("AdamW", dict(lr=0.01), dict(weight_decay=0.5, amsgrad=True)),
    ("RMSprop", dict(lr=0.01, alpha=0.9), dict(momentum=0.5, centered=True, weight_decay=0.1)),
    ("RMSprop", dict(momentum=0.9, maximize=True), dict(centered=True)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01), dict(initial_accumulator_value=0.1, weight_decay=0.1)),
]


@pytest.mark.parametrize("name, hyper, second_group", TORCH_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(TORCH_CASES)])
def test_optimizer_with_two_param_groups_matches_torch_optim_over_five_steps(name, hyper, second_group):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    init = [rng.standard_normal(s) for s in [(3, 4), (4,), (), (2, 2)]]
    ours = [Parameter(a.copy()) for a in init]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    def groups(params):
        return [{"params": params[:2]}, {"params": params[2:], **second_group}]

    opt = getattr(optim, name)(groups(ours), **hyper)
    topt = getattr(torch.optim, name)(groups(theirs), **hyper)
    for step in range(5):
        for p, tp in zip(ours, theirs, strict=True):
            g = rng.standard_normal(p.shape)
            p.grad, tp.grad = Tensor(g), torch.tensor(g)
        if step == 2:  # a parameter without a gradient is skipped by both
            ours[1].grad, theirs[1].grad = None, None
        opt.step()
        topt.step()
    for p, tp in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=TORCH_RTOL, atol=TORCH_ATOL)
    # the same state dict layout: indices, names, hyper-parameters
    ours_sd, theirs_sd = opt.state_dict(), topt.state_dict()
    assert ours_sd["state"].keys() == theirs_sd["state"].keys()
    for i, entry in ours_sd["state"].items():
        assert entry.keys() == theirs_sd["state"][i].keys()
        for key, value in entry.items():
            np.testing.assert_allclose(np.asarray(value.data if key != "step" else value),
                                       theirs_sd["state"][i][key].numpy(), rtol=TORCH_RTOL, atol=TORCH_ATOL)
    for group, tgroup in zip(ours_sd["param_groups"], theirs_sd["param_groups"], strict=True):
        assert {k: tgroup[k] for k in group} == group


# ---------------------------------------------------------------- behaviour

ALL = [
    lambda ps: SGD(ps, lr=0.1),
    lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2),
    lambda ps: Adagrad(ps, lr=0.1),
    lambda ps: RMSprop(ps, lr=0.01, momentum=0.5, centered=True),
    lambda ps: Adam(ps, lr=0.01, weight_decay=1e-2, amsgrad=True),
    lambda ps: AdamW(ps, lr=0.01, maximize=True),
]
ALL_IDS = ["sgd", "sgd-nesterov-wd", "adagrad", "rmsprop-centered", "adam-amsgrad", "adamw-maximize"]


def _mlp(dtype=np.float32) -> Sequential:
    rng = np.random.default_rng(1)
    return Sequential(Linear(5, 4, dtype=dtype, rng=rng), Linear(4, 3, dtype=dtype, rng=rng))


def _mlp_params(dtype=np.float32) -> list[Parameter]:
    return _mlp(dtype).parameters()


def _set_grads(params: list[Parameter], rng: np.random.Generator) -> None:
    for p in params:
        p.grad = Tensor(rng.standard_normal(p.shape).astype(p.dtype))


@pytest.mark.parametrize("make", ALL, ids=ALL_IDS)
def test_step_keeps_float32_params_float32_and_updates_in_place(make):
    params = _mlp_params(np.float32)
    arrays = [p.data for p in params]
    opt = make(params)
    rng = np.random.default_rng(0)
    for _ in range(3):
        _set_grads(params, rng)
        opt.step()
    for p, a in zip(params, arrays, strict=True):
        assert p.data is a  # the same array object: updated in place
        assert p.dtype == np.float32 and np.isfinite(p.data).all()
    for entry in opt.state.values():
        assert all(v.dtype == np.float32 for v in entry.values() if isinstance(v, np.ndarray))


@pytest.mark.parametrize("make", ALL, ids=ALL_IDS)
def test_step_skips_params_without_grad_and_leaves_their_state_alone(make):
    params = _mlp_params(np.float64)
    opt = make(params)
    rng = np.random.default_rng(0)
    _set_grads(params, rng)
    opt.step()
    frozen, state_before = params[1].data.copy(), copy.deepcopy(opt.state[params[1]])
    _set_grads(params, rng)
    params[1].grad = None
    opt.step()
    np.testing.assert_array_equal(params[1].data, frozen)
    assert opt.state[params[1]].keys() == state_before.keys()
    for k, v in opt.state[params[1]].items():
        np.testing.assert_array_equal(v, state_before[k])


@pytest.mark.parametrize("make", ALL, ids=ALL_IDS)
def test_step_never_writes_to_the_gradient_or_records_a_graph(make):
    params = _mlp_params(np.float64)
    opt = make(params)
    _set_grads(params, np.random.default_rng(0))
    grads = [p.grad.data.copy() for p in params]
    with enable_grad():
        opt.step()
        opt.step()
    for p, g in zip(params, grads, strict=True):
        np.testing.assert_array_equal(p.grad.data, g)
        assert p.is_leaf and p.requires_grad


@pytest.mark.parametrize("make", ALL, ids=ALL_IDS)
def test_backward_through_a_graph_saved_before_the_step_refuses(make):
    params = _mlp_params(np.float64)
    opt = make(params)
    loss = sum((p * p).sum() for p in params)  # each mul saved its parameter
    _set_grads(params, np.random.default_rng(0))
    opt.step()
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


def test_parameters_of_growing_sizes_and_two_dtypes_each_get_their_own_update():
    # The scratch arrays are shared views into buffers that grow as larger parameters come.
    rng = np.random.default_rng(0)
    shapes = [(), (3,), (2, 5), (4, 4), (2,)]
    dtypes = [np.float64, np.float32, np.float64, np.float32, np.float64]
    init = [rng.standard_normal(s).astype(d) for s, d in zip(shapes, dtypes)]
    grads = [[rng.standard_normal(s).astype(d) for s, d in zip(shapes, dtypes)] for _ in range(3)]
    params = [Parameter(a.copy()) for a in init]
    opt = Adam(params, lr=0.1, weight_decay=0.1)
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = Tensor(g)
        opt.step()
    for i, p in enumerate(params):
        expected = adam_reference(init[i].astype(np.float64), [gs[i].astype(np.float64) for gs in grads],
                                  0.1, (0.9, 0.999), 1e-8, weight_decay=0.1)
        assert p.dtype == dtypes[i]
        # float32: a dozen roundings of eps32 = 1.2e-7 per step, over 3 steps
        rtol, atol = (1e-5, 1e-6) if dtypes[i] == np.float32 else (RTOL, ATOL)
        np.testing.assert_allclose(p.data, expected, rtol=rtol, atol=atol)


def test_step_with_a_closure_returns_its_loss_and_uses_its_gradients():
    p = Parameter(np.array([3.0]))
    opt = SGD([p], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 9.0 and p.data[0] == 3.0 - 0.25 * 6.0


def test_zero_grad_sets_none_or_zeros_in_place():
    params = _mlp_params()
    opt = SGD(params, lr=0.1)
    _set_grads(params, np.random.default_rng(0))
    grad = params[0].grad
    opt.zero_grad(set_to_none=False)
    assert params[0].grad is grad and not grad.data.any()
    opt.zero_grad()
    assert all(p.grad is None for p in params)


def test_step_with_a_wrongly_shaped_gradient_names_the_parameter():
    params = _mlp_params()
    opt = Adam(params)
    _set_grads(params, np.random.default_rng(0))
    params[2].grad = Tensor(np.zeros((2, 2), np.float32))
    message = r"parameter 2 has shape \(3, 4\) but its gradient has shape \(2, 2\)"
    with pytest.raises(ValueError, match=message):
        opt.step()


def test_state_follows_the_parameters_after_module_double():
    model = _mlp(np.float32)
    opt = Adam(model.parameters(), lr=0.01)
    _set_grads(model.parameters(), np.random.default_rng(0))
    opt.step()
    model.double()
    assert opt.param_groups[0]["params"][0] is model[0].weight
    _set_grads(model.parameters(), np.random.default_rng(1))
    opt.step()
    assert model[0].weight.dtype == np.float64
    arrays = [v for s in opt.state.values() for v in s.values() if isinstance(v, np.ndarray)]
    assert arrays and all(v.dtype == np.float64 for v in arrays)


# ---------------------------------------------------------------- parameter groups


def test_groups_take_missing_hyperparameters_from_the_constructor():
    model = _mlp()
    opt = SGD([{"params": model[0].parameters(), "lr": 0.5}, {"params": model[1].parameters()}],
              lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.1]
    assert [g["momentum"] for g in opt.param_groups] == [0.9, 0.9]
    assert opt.param_groups[0]["params"] == model[0].parameters()


def test_writing_a_groups_lr_changes_the_next_step():
    a, b = Parameter(np.zeros(1)), Parameter(np.zeros(1))
    opt = SGD([{"params": [a]}, {"params": [b]}], lr=1.0)
    opt.param_groups[1]["lr"] = 0.25  # what a scheduler does
    a.grad, b.grad = Tensor(np.ones(1)), Tensor(np.ones(1))
    opt.step()
    assert (a.data[0], b.data[0]) == (-1.0, -0.25)


def test_add_param_group_adds_parameters_with_their_own_settings():
    model = _mlp()
    opt = Adagrad(model[0].parameters(), lr=0.1)
    opt.add_param_group({"params": model[1].parameters(), "lr_decay": 0.5})
    assert len(opt.param_groups) == 2 and opt.param_groups[1]["lr"] == 0.1
    _set_grads(model.parameters(), np.random.default_rng(0))
    opt.step()
    assert opt.state[model[1].weight]["step"] == 1
    with pytest.raises(ValueError, match=r"param_groups\[2\]\['params'\]\[0\] is the same parameter as "
                                         r"param_groups\[0\]\['params'\]\[0\]"):
        opt.add_param_group({"params": [model[0].weight]})


# ---------------------------------------------------------------- state_dict


def _trajectory(make, straight_steps, saved_steps, tmp_path=None):
    """Train 3 steps, save, load into a fresh optimizer on copies, train 3 more; also straight through."""
    rng = np.random.default_rng(0)
    shapes = [p.shape for p in _mlp_params()]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(6)]

    def apply(opt, params, steps):
        for gs in steps:
            for p, g in zip(params, gs, strict=True):
                p.grad = Tensor(g)
            opt.step()

    straight = _mlp_params()
    apply(make(straight), straight, grads)
    first = _mlp_params()
    opt = make(first)
    apply(opt, first, grads[:3])
    resumed = [Parameter(p.data.copy()) for p in first]
    opt2 = make(resumed)
    saved_steps(opt, opt2)
    apply(opt2, resumed, grads[3:])
    return straight, resumed


@pytest.mark.parametrize("make", ALL, ids=ALL_IDS)
def test_resuming_from_state_dict_matches_an_uninterrupted_run(make):
    straight, resumed = _trajectory(make, 6, lambda old, new: new.load_state_dict(old.state_dict()))
    for a, b in zip(straight, resumed, strict=True):
        np.testing.assert_array_equal(a.data, b.data)


@pytest.mark.parametrize("make", ALL, ids=ALL_IDS)
def test_resuming_from_an_npz_of_state_to_arrays_matches_an_uninterrupted_run(make, tmp_path):
    def through_file(old, new):
        arrays = optim.state_to_arrays(old)
        atomic_save_npz(tmp_path / "optim.npz", **arrays)
        optim.load_state_from_arrays(new, load_npz_checked(tmp_path / "optim.npz", expected_keys=arrays))

    straight, resumed = _trajectory(make, 6, through_file)
    for a, b in zip(straight, resumed, strict=True):
        np.testing.assert_array_equal(a.data, b.data)
        assert b.dtype == np.float32


def test_state_dict_has_pytorchs_layout_and_holds_copies():
    model = _mlp()
    opt = Adam([{"params": model[0].parameters()}, {"params": model[1].parameters(), "lr": 0.1}])
    _set_grads(model.parameters(), np.random.default_rng(0))
    model[1].bias.grad = None
    opt.step()
    state = opt.state_dict()
    assert list(state) == ["state", "param_groups"]
    assert list(state["state"]) == [0, 1, 2]  # the bias (index 3) has not stepped yet
    assert state["param_groups"][1] == {**opt.defaults, "lr": 0.1, "params": [2, 3]}
    assert state["state"][2]["step"] == 1 and isinstance(state["state"][2]["exp_avg"], Tensor)
    state["state"][2]["exp_avg"].data[...] = 123.0
    assert not np.any(opt.state[model[1].weight]["exp_avg"] == 123.0)


def test_load_state_dict_restores_hyperparameters_and_scheduler_keys():
    opt = SGD(_mlp_params(), lr=0.5, momentum=0.9)
    opt.param_groups[0]["lr"] = 0.05  # e.g. a schedule lowered it
    opt.param_groups[0]["initial_lr"] = 0.5  # and a scheduler keeps its own key there
    other = SGD(_mlp_params(), lr=0.5, momentum=0.9)
    other.load_state_dict(opt.state_dict())
    assert other.param_groups[0]["lr"] == 0.05 and other.param_groups[0]["initial_lr"] == 0.5


def _stepped(make=lambda ps: Adam(ps, lr=0.01)):
    params = _mlp_params()
    opt = make(params)
    _set_grads(params, np.random.default_rng(0))
    opt.step()
    return opt


BAD_STATES = [
    (lambda s: s.pop("state"), "expected a dict with keys 'state' and 'param_groups'"),
    (lambda s: s["param_groups"].append(dict(s["param_groups"][0])), "the state has 2 groups, this .* has 1"),
    (lambda s: s["param_groups"][0].update(params=[0, 1, 2]), r"parameters \(0, 1, 2\).*\[0, 1, 2, 3\]"),
    (lambda s: s["param_groups"][0].pop("betas"), r"missing hyper-parameters \['betas'\]; is this the"),
    (lambda s: s["param_groups"][0].update(eps=-1.0), r"Adam: param_groups\[0\]: eps must be a finite"),
    (lambda s: s["state"].update({7: {}}), r"state entry 7 must be a parameter index in \[0, 4\)"),
    (lambda s: s["state"][1].pop("exp_avg_sq"), r"state\[1\] has missing entries \['exp_avg_sq'\]"),
    (lambda s: s["state"][1].update(momentum_buffer=0), r"unexpected entries \['momentum_buffer'\]"),
    (lambda s: s["state"][3].update(exp_avg=np.zeros(7)), r"state\[3\]\['exp_avg'\] has shape \(7,\)"),
    (lambda s: s["state"][0].update(step=-1), r"state\[0\]\['step'\] must be a whole number >= 0, got -1"),
]


@pytest.mark.parametrize("corrupt, message", BAD_STATES, ids=[m for _, m in BAD_STATES])
def test_a_bad_state_dict_is_refused_clearly_and_changes_nothing(corrupt, message):
    opt = _stepped()
    before = opt.state_dict()
    bad = opt.state_dict()
    bad["param_groups"][0]["lr"] = 0.5  # a valid change, which must not be applied either
    corrupt(bad)
    with pytest.raises(ValueError, match=message):
        opt.load_state_dict(bad)
    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"]
    for i, entry in before["state"].items():
        np.testing.assert_array_equal(after["state"][i]["exp_avg"].data, entry["exp_avg"].data)


def test_loading_another_optimizers_arrays_names_both():
    arrays = optim.state_to_arrays(_stepped(lambda ps: SGD(ps, lr=0.1)))
    with pytest.raises(ValueError, match="Adam.load_state_dict: the state is for optimizer 'SGD', not 'Adam"):
        optim.load_state_from_arrays(_stepped(), arrays)
    with pytest.raises(ValueError, match="unexpected entry 'lr'"):
        optim.load_state_from_arrays(SGD(_mlp_params()), {"optimizer": np.array("SGD"), "lr": np.array(0.1)})


def test_state_to_arrays_refuses_a_group_value_npz_cannot_hold():
    opt = SGD(_mlp_params())
    opt.param_groups[0]["note"] = None
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['note'\] is None, which an .npz file cannot"):
        optim.state_to_arrays(opt)


# ---------------------------------------------------------------- copies


def test_deepcopy_of_model_and_optimizer_together_refers_to_the_copied_parameters():
    model = _mlp()
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    _set_grads(model.parameters(), np.random.default_rng(0))
    opt.step()
    model2, opt2 = copy.deepcopy((model, opt))
    assert opt2.param_groups[0]["params"] == model2.parameters()
    assert all(p in opt2.state for p in model2.parameters())
    before = model[0].weight.data.copy()
    _set_grads(model2.parameters(), np.random.default_rng(1))
    opt2.step()
    np.testing.assert_array_equal(model[0].weight.data, before)  # the original is untouched
    assert not np.array_equal(model2[0].weight.data, before)


def test_deepcopy_of_an_optimizer_continues_like_the_original():
    opt = _stepped()
    twin = copy.deepcopy(opt)
    params, twins = opt.param_groups[0]["params"], twin.param_groups[0]["params"]
    for p, q in zip(params, twins, strict=True):
        q.grad = Tensor(p.grad.data.copy())
    opt.step()
    twin.step()
    for p, q in zip(params, twins, strict=True):
        np.testing.assert_array_equal(p.data, q.data)
        assert p is not q


# ---------------------------------------------------------------- bad input

# hyper-parameter -> (an optimizer that has it, values it refuses, the rule the message states)
BAD_HYPERPARAMETERS = {
    "lr": (SGD, [-0.1, float("nan"), float("inf"), True], "a finite number >= 0"),
    "momentum": (SGD, [-0.5], "a finite number >= 0"),
    "dampening": (SGD, [1.5, -0.1], r"a number in \[0, 1\]"),
    "weight_decay": (Adam, [-1e-4], "a finite number >= 0"),
    "eps": (Adam, [-1e-8, float("inf")], "a finite number >= 0"),
    "betas": (Adam, [(0.9, 1.0), (-0.1, 0.999), 0.9],
              r"a pair \(beta1, beta2\) of numbers in \[0, 1\)"),
    "alpha": (RMSprop, [1.5, -0.1], r"a number in \[0, 1\]"),
    "lr_decay": (Adagrad, [-0.1], "a finite number >= 0"),
    "initial_accumulator_value": (Adagrad, [-1.0], "a finite number >= 0"),
    "nesterov": (SGD, [1, "yes"], "True or False"),
    "maximize": (Adam, [0, None], "True or False"),
    "amsgrad": (AdamW, [1], "True or False"),
    "centered": (RMSprop, ["no"], "True or False"),
}
BAD_CASES = [(name, cls, value, rule) for name, (cls, values, rule) in BAD_HYPERPARAMETERS.items()
             for value in values]


def test_every_hyperparameter_in_the_checks_table_has_a_bad_input_test():
    from tinygrad_bn.optim.optimizer import HYPERPARAMETERS

    assert set(HYPERPARAMETERS) == set(BAD_HYPERPARAMETERS)


@pytest.mark.parametrize("name, cls, value, rule", BAD_CASES, ids=[f"{c[0]}={c[2]!r}" for c in BAD_CASES])
def test_a_bad_hyperparameter_raises_naming_optimizer_name_value_and_rule(name, cls, value, rule):
    error = TypeError if isinstance(value, str) or value is None else ValueError
    message = re.escape(f"{cls.__name__}: {name} must be ") + rule + re.escape(f", got {value!r}")
    with pytest.raises(error, match=message):
        cls(_mlp_params(), **{name: value})


def test_bad_hyperparameter_in_a_group_names_the_group():
    model = _mlp()
    with pytest.raises(ValueError, match=r"SGD: param_groups\[1\]: lr must be a finite number >= 0, got -1"):
        SGD([{"params": model[0].parameters()}, {"params": model[1].parameters(), "lr": -1.0}])


def test_nesterov_needs_momentum_and_no_dampening():
    with pytest.raises(ValueError, match="SGD: nesterov=True needs a momentum > 0 and dampening=0, got "
                                         "momentum=0.0, dampening=0.0"):
        SGD(_mlp_params(), nesterov=True)
    with pytest.raises(ValueError, match="dampening=0.5"):
        SGD(_mlp_params(), momentum=0.9, dampening=0.5, nesterov=True)


def _bad_params():
    model = Sequential(Linear(2, 2))
    w = Parameter(np.ones(3))
    return [
        (model.parameters()[0], TypeError, "got a single Tensor; wrap it in a list"),
        (model, TypeError, r"params\[0\] is a Linear, expected a Tensor \(pass model.parameters\(\), not"),
        (nn.ReLU(), TypeError, r"params must be an iterable of Tensors, got ReLU \(pass model.parameters"),
        (3, TypeError, "params must be an iterable of Tensors, got int"),
        ({w}, TypeError, "params is a set; pass a list"),
        ([], ValueError, "empty parameter list"),
        ([w, w], ValueError, r"params\[1\] is the same parameter as params\[0\]"),
        ([w * 2], ValueError, r"params\[0\] \(shape \(3,\)\) is the output of an op, not a leaf"),
        ([Tensor(np.arange(3))], TypeError, r"params\[0\] has dtype int64, expected float32 or float64"),
        ([{"lr": 0.1}], ValueError, "parameter group 0 has no 'params' entry"),
    ]


@pytest.mark.parametrize("case", range(10))
def test_bad_parameter_list_raises_clearly(case):
    params, error, message = _bad_params()[case]
    with pytest.raises(error, match=message):
        SGD(params, lr=0.1)
