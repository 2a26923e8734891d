"""Optimizers: each update against its textbook formula written out in numpy.

The references below are the formulas as printed (Kingma & Ba for Adam, Duchi
et al. for AdaGrad, Hinton's lecture 6e for RMSProp, PyTorch's documented
momentum/Nesterov convention for SGD), run step by step on hypothesis-drawn
parameters, gradients and hyperparameters. Then: dtypes, skipped parameters,
state_dict round trips through an .npz file, and bad input.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_bn import Tensor, enable_grad
from tinygrad_bn._io import atomic_save_npz, load_npz_checked
from tinygrad_bn.nn import Linear, Parameter, Sequential
from tinygrad_bn.optim import SGD, AdaGrad, Adam, Optimizer, RMSProp
from tinygrad_bn.testing import strategies as tst

# Our loops reorder the textbook arithmetic (in-place ufuncs, bias corrections folded
# into scalars), so in float64 the results differ from the references by rounding only:
# a few ulps per step, over at most 5 steps of O(1) values.
RTOL, ATOL = 1e-9, 1e-12


# ---------------------------------------------------------------- textbook references


def sgd_reference(p, grads, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    p, buf = p.copy(), np.zeros_like(p)
    for g in grads:
        g = g + weight_decay * p
        if momentum:
            buf = momentum * buf + g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
    return p


def adagrad_reference(p, grads, lr, eps):
    p, total = p.copy(), np.zeros_like(p)
    for g in grads:
        total = total + g**2
        p = p - lr * g / (np.sqrt(total) + eps)
    return p


def rmsprop_reference(p, grads, lr, alpha, eps):
    p, mean_sq = p.copy(), np.zeros_like(p)
    for g in grads:
        mean_sq = alpha * mean_sq + (1 - alpha) * g**2
        p = p - lr * g / (np.sqrt(mean_sq) + eps)
    return p


def adam_reference(p, grads, lr, betas, eps, weight_decay=0.0):
    (b1, b2), p = betas, p.copy()
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


# ---------------------------------------------------------------- strategies

rates = st.floats(1e-4, 1.0)
decays = st.floats(0.0, 0.99)
# eps > 0: with eps = 0 a zero gradient gives 0/0 in the textbook formulas as in ours.
epsilons = st.sampled_from([1e-10, 1e-8, 1e-3]) | st.floats(1e-8, 1e-2)


@st.composite
def trajectories(draw) -> tuple[np.ndarray, list[np.ndarray]]:
    """A float64 parameter and 1-5 gradients of its shape."""
    shape = draw(tst.shapes(min_dims=0, max_dims=2))
    p = draw(tst.arrays(shape))
    grads = draw(st.lists(tst.arrays(shape), min_size=1, max_size=5))
    return p, grads


def run(make: Callable[[list[Parameter]], Optimizer], p: np.ndarray, grads) -> np.ndarray:
    """Apply `make([param]).step()` once per gradient; return the final parameter."""
    param = Parameter(p.copy())
    opt = make([param])
    for g in grads:
        param.grad = Tensor(g)
        opt.step()
    return param.data


# ---------------------------------------------------------------- update rules


@given(trajectories(), rates, decays, st.booleans(), st.floats(0.0, 0.1))
def test_sgd_matches_textbook_update(traj, lr, momentum, nesterov, weight_decay):
    p, grads = traj
    nesterov = nesterov and momentum > 0
    hyper = dict(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    ours = run(lambda ps: SGD(ps, **hyper), p, grads)
    np.testing.assert_allclose(ours, sgd_reference(p, grads, **hyper), rtol=RTOL, atol=ATOL)


@given(trajectories(), rates, epsilons)
def test_adagrad_matches_textbook_update(traj, lr, eps):
    p, grads = traj
    ours = run(lambda ps: AdaGrad(ps, lr=lr, eps=eps), p, grads)
    np.testing.assert_allclose(ours, adagrad_reference(p, grads, lr, eps), rtol=RTOL, atol=ATOL)


@given(trajectories(), rates, decays, epsilons)
def test_rmsprop_matches_textbook_update(traj, lr, alpha, eps):
    p, grads = traj
    ours = run(lambda ps: RMSProp(ps, lr=lr, alpha=alpha, eps=eps), p, grads)
    expected = rmsprop_reference(p, grads, lr, alpha, eps)
    np.testing.assert_allclose(ours, expected, rtol=RTOL, atol=ATOL)


@given(trajectories(), rates, st.tuples(decays, st.floats(0.5, 0.9999)), epsilons,
       st.floats(0.0, 0.1))
def test_adam_matches_textbook_update_with_bias_correction(traj, lr, betas, eps, weight_decay):
    p, grads = traj
    make = lambda ps: Adam(ps, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)  # noqa: E731
    expected = adam_reference(p, grads, lr, betas, eps, weight_decay)
    np.testing.assert_allclose(run(make, p, grads), expected, rtol=RTOL, atol=ATOL)


def test_adam_first_step_moves_each_coordinate_by_lr():
    # With bias correction m_hat = g and v_hat = g^2 after one step, so the step is
    # lr * sign(g) (up to eps): the textbook's reason for the correction.
    p = Parameter(np.zeros(3))
    opt = Adam([p], lr=0.01, eps=0.0)
    p.grad = Tensor(np.array([1e-4, -3.0, 250.0]))
    opt.step()
    np.testing.assert_allclose(p.data, [-0.01, 0.01, -0.01], rtol=1e-12)


# ---------------------------------------------------------------- cross-check with PyTorch

TORCH_CASES = [
    (SGD, "SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    (SGD, "SGD", dict(lr=0.1, momentum=0.5, weight_decay=0.1)),
    (AdaGrad, "Adagrad", dict(lr=0.1, eps=1e-10)),
    (RMSProp, "RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-8)),
    (Adam, "Adam", dict(lr=0.01, betas=(0.5, 0.9), eps=1e-8, weight_decay=0.1)),
]


@pytest.mark.parametrize("ours, theirs, hyper", TORCH_CASES, ids=[c[1] for c in TORCH_CASES])
def test_optimizer_matches_torch_optim(ours, theirs, hyper):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    init = [rng.standard_normal(s) for s in [(3, 4), (4,), ()]]
    params = [Parameter(a.copy()) for a in init]
    tparams = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    opt, topt = ours(params, **hyper), getattr(torch.optim, theirs)(tparams, **hyper)
    for step in range(6):
        for p, tp in zip(params, tparams, strict=True):
            g = rng.standard_normal(p.shape)
            p.grad, tp.grad = Tensor(g), torch.tensor(g)
        if step == 2:  # a parameter without a gradient is skipped by both
            params[1].grad, tparams[1].grad = None, None
        opt.step()
        topt.step()
    for p, tp in zip(params, tparams, strict=True):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------- behaviour

ALL = [
    lambda ps: SGD(ps, lr=0.1),
    lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2),
    lambda ps: AdaGrad(ps, lr=0.1),
    lambda ps: RMSProp(ps, lr=0.01),
    lambda ps: Adam(ps, lr=0.01, weight_decay=1e-2),
]
ALL_IDS = ["sgd", "sgd-nesterov-wd", "adagrad", "rmsprop", "adam-wd"]


def _mlp_params(dtype=np.float32) -> list[Parameter]:
    rng = np.random.default_rng(1)
    model = Sequential(Linear(5, 4, dtype=dtype, rng=rng), Linear(4, 3, dtype=dtype, rng=rng))
    return model.parameters()


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
        assert p.dtype == np.float32
        assert np.isfinite(p.data).all()
    for entry in opt.state:
        for value in entry.values():
            assert not isinstance(value, np.ndarray) or value.dtype == np.float32


@pytest.mark.parametrize("make", ALL, ids=ALL_IDS)
def test_step_skips_params_without_grad_and_leaves_their_state_alone(make):
    params = _mlp_params(np.float64)
    opt = make(params)
    rng = np.random.default_rng(0)
    _set_grads(params, rng)
    opt.step()
    frozen_before = params[1].data.copy()
    state_before = {k: np.copy(v) for k, v in opt.state[1].items()}
    _set_grads(params, rng)
    params[1].grad = None
    opt.step()
    np.testing.assert_array_equal(params[1].data, frozen_before)
    for k, v in opt.state[1].items():
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


def test_zero_grad_clears_every_gradient():
    params = _mlp_params()
    opt = SGD(params, lr=0.1)
    _set_grads(params, np.random.default_rng(0))
    opt.zero_grad()
    assert all(p.grad is None for p in params)


def test_step_with_a_wrongly_shaped_gradient_names_the_parameter():
    params = _mlp_params()
    opt = Adam(params)
    _set_grads(params, np.random.default_rng(0))
    params[2].grad = Tensor(np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match=r"params\[2\].*gradient of shape \(2, 2\)"):
        opt.step()


# ---------------------------------------------------------------- state_dict


def _npz_round_trip(state: dict, path) -> dict:
    atomic_save_npz(path, **state)
    return load_npz_checked(path, expected_keys=state.keys())


@pytest.mark.parametrize("make", ALL, ids=ALL_IDS)
def test_resuming_from_state_dict_matches_an_uninterrupted_run(make, tmp_path):
    rng = np.random.default_rng(0)
    shapes = [p.shape for p in _mlp_params()]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(6)]

    def apply(opt, params, steps):
        for gs in steps:
            for p, g in zip(params, gs, strict=True):
                p.grad = Tensor(g)
            opt.step()

    straight = _mlp_params()
    opt = make(straight)
    apply(opt, straight, grads)

    first = _mlp_params()
    opt1 = make(first)
    apply(opt1, first, grads[:3])
    saved = _npz_round_trip(opt1.state_dict(), tmp_path / "optim.npz")
    resumed = [Parameter(p.data.copy()) for p in first]
    opt2 = make(resumed)
    opt2.load_state_dict(saved)
    apply(opt2, resumed, grads[3:])

    for a, b in zip(straight, resumed, strict=True):
        np.testing.assert_array_equal(a.data, b.data)
        assert b.dtype == np.float32


def test_state_dict_holds_copies_keyed_by_parameter_position():
    params = _mlp_params()
    opt = Adam(params)
    _set_grads(params, np.random.default_rng(0))
    opt.step()
    state = opt.state_dict()
    assert state["optimizer"] == "Adam" and state["num_params"] == 4
    assert state["state.3.step"] == 1
    assert state["state.2.exp_avg"].shape == params[2].shape
    state["state.2.exp_avg"][...] = 123.0
    assert not np.any(opt.state[2]["exp_avg"] == 123.0)


def test_load_state_dict_restores_hyperparameters():
    opt = SGD(_mlp_params(), lr=0.5, momentum=0.9)
    opt.lr = 0.05  # e.g. a schedule lowered it
    other = SGD(_mlp_params(), lr=0.5, momentum=0.9)
    other.load_state_dict(opt.state_dict())
    assert other.lr == 0.05


def test_load_state_dict_for_another_optimizer_raises():
    with pytest.raises(ValueError, match="state is for optimizer 'SGD', not 'Adam'"):
        Adam(_mlp_params()).load_state_dict(SGD(_mlp_params(), lr=0.1).state_dict())


def test_load_state_dict_for_another_parameter_count_raises():
    state = Adam(_mlp_params()[:3]).state_dict()
    with pytest.raises(ValueError, match="for 3 parameters, this optimizer has 4"):
        Adam(_mlp_params()).load_state_dict(state)


def test_load_state_dict_with_a_missing_key_raises():
    state = Adam(_mlp_params()).state_dict()
    del state["state.1.exp_avg_sq"]
    with pytest.raises(KeyError, match="missing keys.*state.1.exp_avg_sq"):
        Adam(_mlp_params()).load_state_dict(state)


def test_failed_load_state_dict_changes_nothing():
    params = _mlp_params()
    opt = Adam(params, lr=0.01)
    _set_grads(params, np.random.default_rng(0))
    opt.step()
    before = opt.state_dict()
    bad = opt.state_dict()
    bad["lr"] = 0.5
    bad["state.0.exp_avg"] = bad["state.0.exp_avg"] * 2
    bad["state.3.exp_avg"] = np.zeros((7,), np.float32)  # wrong shape, checked last
    with pytest.raises(ValueError, match=r"state.3.exp_avg has shape \(7,\), expected"):
        opt.load_state_dict(bad)
    assert opt.lr == 0.01
    np.testing.assert_array_equal(opt.state[0]["exp_avg"], before["state.0.exp_avg"])


def test_load_state_dict_validates_hyperparameters():
    state = RMSProp(_mlp_params()).state_dict()
    state["alpha"] = np.array(1.5)
    with pytest.raises(ValueError, match=r"RMSProp: alpha must be a finite number in \[0, 1\)"):
        RMSProp(_mlp_params()).load_state_dict(state)


# ---------------------------------------------------------------- bad input

BAD_HYPERPARAMETERS = [
    (SGD, dict(lr=0.0), ValueError, "SGD: lr must be a finite number > 0, got 0.0"),
    (SGD, dict(lr=-0.1), ValueError, "lr must be a finite number > 0"),
    (SGD, dict(lr=float("nan")), ValueError, "lr must be a finite number > 0"),
    (SGD, dict(lr="0.1"), TypeError, "lr must be a number"),
    (SGD, dict(lr=True), TypeError, "lr must be a number"),
    (SGD, dict(lr=0.1, momentum=-0.5), ValueError, r"momentum must be a finite number in \[0, 1\)"),
    (SGD, dict(lr=0.1, momentum=1.0), ValueError, "momentum"),
    (SGD, dict(lr=0.1, nesterov=True), ValueError, "nesterov=True needs a momentum > 0"),
    (SGD, dict(lr=0.1, nesterov=1), TypeError, "nesterov must be True or False"),
    (SGD, dict(lr=0.1, weight_decay=-1e-4), ValueError, "weight_decay must be a finite number"),
    (AdaGrad, dict(lr=-1.0), ValueError, "AdaGrad: lr"),
    (AdaGrad, dict(eps=-1e-10), ValueError, "AdaGrad: eps must be a finite number >= 0"),
    (RMSProp, dict(alpha=1.0), ValueError, r"RMSProp: alpha must be a finite number in \[0, 1\)"),
    (Adam, dict(betas=(0.9, 1.0)), ValueError, r"Adam: betas\[1\] must be a finite number in \[0,"),
    (Adam, dict(betas=(-0.1, 0.999)), ValueError, r"betas\[0\]"),
    (Adam, dict(betas=0.9), ValueError, r"betas must be a pair \(beta1, beta2\)"),
    (Adam, dict(eps=float("inf")), ValueError, "eps must be a finite number >= 0"),
]


@pytest.mark.parametrize("cls, hyper, error, message", BAD_HYPERPARAMETERS)
def test_bad_hyperparameter_raises_naming_it(cls, hyper, error, message):
    with pytest.raises(error, match=message):
        cls(_mlp_params(), **hyper)


def _bad_params():
    model = Sequential(Linear(2, 2))
    w = Parameter(np.ones(3))
    return [
        (model.parameters()[0], TypeError, "got a single Tensor; wrap it in a list"),
        (model, TypeError, r"pass model.parameters\(\), not the model"),
        (3, TypeError, "params must be an iterable of Parameters"),
        ([], ValueError, "empty parameter list"),
        ([w, w], ValueError, r"params\[1\] is the same Parameter as params\[0\]"),
        ([w * 2], ValueError, r"params\[0\] .* is the output of an op, not a leaf"),
        ([Tensor(np.arange(3))], TypeError, r"params\[0\] has dtype int64, expected float32"),
    ]


@pytest.mark.parametrize("case", range(7))
def test_bad_parameter_list_raises_clearly(case):
    params, error, message = _bad_params()[case]
    with pytest.raises(error, match=message):
        SGD(params, lr=0.1)
