"""The composites in functional.py (not the norm layers): values, gradients, errors.

Every composite: forward against a numpy reference, analytic vs numerical first
and second derivatives in float64 over hypothesis shapes (0-d, size-1 axes,
broadcasting), and its bad-input errors. If PyTorch is installed, a few of them
are run in both libraries and compared.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_bn import Tensor
from tinygrad_bn import functional as F
from tinygrad_bn.gradcheck import gradcheck, gradgradcheck
from tinygrad_bn.testing import strategies as tst

# ---------------------------------------------------------------- numpy references


def ref_softmax(a: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(a - np.max(a, axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def ref_logsumexp(a: np.ndarray, axis, keepdims: bool = False) -> np.ndarray:
    peak = np.max(a, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(a - peak), axis=axis, keepdims=True)) + peak
    return out if keepdims else np.squeeze(out, axis=axis)


# ---------------------------------------------------------------- case strategies


@st.composite
def axis_cases(draw, single_axis: bool = False):
    """(array, axis) over shapes with 0-d and size-1 axes; axis may be negative."""
    a = draw(tst.arrays(tst.shapes(0, 3)))
    if a.ndim == 0:
        return a, draw(st.sampled_from([-1, 0] if single_axis else [None, -1, 0]))
    one = st.integers(-a.ndim, a.ndim - 1)
    if single_axis:
        return a, draw(one)
    several = st.lists(st.integers(0, a.ndim - 1), min_size=1, max_size=a.ndim, unique=True)
    return a, draw(st.none() | one | several.map(tuple))


@st.composite
def classification_cases(draw):
    """(logits, target, reduction): integer labels or rows of class probabilities."""
    n, c = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    logits = draw(tst.arrays((n, c)))
    if draw(st.booleans()):
        target = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    else:
        target = ref_softmax(draw(tst.arrays((n, c))), axis=1)
    return logits, target, draw(st.sampled_from(["mean", "sum", "none"]))


@st.composite
def linear_cases(draw):
    """(x, weight, bias-or-None) with 1-D, 2-D and batched inputs."""
    n_in, n_out = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    batch = draw(st.sampled_from([(), (2,), (3, 2)]))
    x = draw(tst.arrays((*batch, n_in)))
    w = draw(tst.arrays((n_out, n_in)))
    b = draw(st.none() | tst.arrays((n_out,)))
    return x, w, b


# Each entry: a strategy of (function of Tensors, input arrays). Used for the
# first- and second-derivative property tests below.
def _mean_case(case):
    a, axis = case
    return (lambda x: F.mean(x, axis=axis)), [a]


def _keepdims_mean_case(case):
    a, axis = case
    return (lambda x: F.mean(x, axis=axis, keepdims=True)), [a]


@st.composite
def _var_cases(draw):
    a, axis = draw(axis_cases())
    n = 1 if a.ndim == 0 else a.size // np.mean(a, axis=axis, keepdims=True).size
    correction = draw(st.integers(0, max(n - 1, 0)))
    keepdims = draw(st.booleans())
    return (lambda x: F.var(x, axis, correction=correction, keepdim=keepdims)), [a]


@st.composite
def _along_axis(draw, fn):
    a, axis = draw(axis_cases(single_axis=True))
    return (lambda x: fn(x, axis=axis)), [a]


@st.composite
def _logsumexp_cases(draw):
    a, axis = draw(axis_cases(single_axis=True))
    keepdims = draw(st.booleans())
    return (lambda x: F.logsumexp(x, axis, keepdim=keepdims)), [a]


@st.composite
def _cross_entropy_cases(draw):
    logits, target, reduction = draw(classification_cases())
    return (lambda x: F.cross_entropy(x, target, reduction=reduction)), [logits]


@st.composite
def _mse_cases(draw):
    sp, st_ = draw(tst.broadcastable_shapes())
    return F.mse_loss, [draw(tst.arrays(sp)), draw(tst.arrays(st_))]


@st.composite
def _linear_cases(draw):
    x, w, b = draw(linear_cases())
    if b is None:
        return (lambda x_, w_: F.linear(x_, w_)), [x, w]
    return F.linear, [x, w, b]


@st.composite
def _dropout_cases(draw):
    a = draw(tst.arrays(tst.shapes(0, 3)))
    p = draw(st.sampled_from([0.0, 0.2, 0.5, 0.9]))
    seed = draw(st.integers(0, 1000))
    # A fresh generator with the same seed on every call: every probe sees the same mask.
    return (lambda x: F.dropout(x, p, training=True, generator=np.random.default_rng(seed))), [a]


COMPOSITES = {
    "mean": axis_cases().map(_mean_case),
    "mean_keepdims": axis_cases().map(_keepdims_mean_case),
    "var": _var_cases(),
    "sigmoid": tst.arrays(tst.shapes(0, 3), min_value=-8, max_value=8).map(
        lambda a: (F.sigmoid, [a])),
    "softmax": _along_axis(F.softmax),
    "log_softmax": _along_axis(F.log_softmax),
    "logsumexp": _logsumexp_cases(),
    "cross_entropy": _cross_entropy_cases(),
    "mse_loss": _mse_cases(),
    "linear": _linear_cases(),
    "dropout": _dropout_cases(),
    # |x| has a kink at 0: keep the probes away from it.
    "abs": tst.arrays(tst.shapes(0, 3), away_from=0.0).map(lambda a: (F.abs, [a])),
}


@pytest.mark.parametrize("name", sorted(COMPOSITES))
@given(data=st.data())
def test_composite_gradient_matches_numerical(name, data):
    fn, arrays = data.draw(COMPOSITES[name])
    gradcheck(fn, [Tensor(a, requires_grad=True) for a in arrays])


@pytest.mark.parametrize("name", sorted(COMPOSITES))
@given(data=st.data())
def test_composite_second_derivative_matches_numerical(name, data):
    fn, arrays = data.draw(COMPOSITES[name])
    gradgradcheck(fn, [Tensor(a, requires_grad=True) for a in arrays])


# ---------------------------------------------------------------- values


@given(case=axis_cases())
def test_mean_and_var_match_numpy(case):
    a, axis = case
    axis_np = None if a.ndim == 0 else axis  # numpy takes no axis on a 0-d array
    np.testing.assert_allclose(F.mean(Tensor(a), axis=axis).data, np.mean(a, axis=axis_np),
                               rtol=1e-12)
    np.testing.assert_allclose(F.var(Tensor(a), axis=axis, unbiased=False).data, np.var(a, axis=axis_np),
                               rtol=1e-10, atol=1e-14)


def test_var_is_two_pass_so_a_large_offset_does_not_cancel():
    a = 1e8 + np.array([1.0, 2.0, 3.0, 4.0])
    # E[x^2] - E[x]^2 would lose every digit here; centring first keeps them.
    assert F.var(Tensor(a), correction=0).item() == pytest.approx(1.25, rel=1e-12)
    assert F.var(Tensor(a)).item() == pytest.approx(5 / 3, rel=1e-12)  # unbiased by default


def test_mean_over_nothing_and_var_of_too_few_values_are_nan_as_in_pytorch():
    assert np.all(np.isnan(F.mean(Tensor(np.ones((0, 3))), dim=0).data))
    assert np.all(np.isnan(F.var(Tensor(np.ones((1, 3))), dim=0).data))
    with pytest.raises(TypeError, match="var: pass unbiased= or correction=, not both"):
        F.var(Tensor(np.ones(3)), unbiased=True, correction=1)


@given(case=axis_cases(single_axis=True))
def test_softmax_log_softmax_and_logsumexp_match_numpy(case):
    a, axis = case
    expected = ref_softmax(a, axis)
    np.testing.assert_allclose(F.softmax(Tensor(a), axis=axis).data, expected, rtol=1e-12)
    np.testing.assert_allclose(F.log_softmax(Tensor(a), axis=axis).data, np.log(expected),
                               rtol=1e-10, atol=1e-12)
    for keepdims in (False, True):
        np.testing.assert_allclose(F.logsumexp(Tensor(a), axis, keepdim=keepdims).data,
                                   ref_logsumexp(a, axis, keepdims), rtol=1e-12)


def test_softmax_over_a_size_1_axis_is_one_with_zero_gradient():
    x = Tensor(np.array([[3.0], [-2.0]]), requires_grad=True)
    out = F.softmax(x, axis=1)
    np.testing.assert_array_equal(out.data, [[1.0], [1.0]])
    (out * Tensor(np.array([[5.0], [7.0]]))).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[0.0], [0.0]])


def test_softmax_family_is_stable_for_huge_logits():
    a = np.array([[1000.0, 0.0, -1000.0], [-1e4, -1e4, -1e4]])
    # No overflow, no inf - inf, no log(0) on the way (exp underflowing to 0 is fine).
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        sm = F.softmax(Tensor(a), axis=1).data
        lsm = F.log_softmax(Tensor(a), axis=1).data
        lse = F.logsumexp(Tensor(a), dim=1).data
    np.testing.assert_allclose(sm, [[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]], atol=1e-300)
    np.testing.assert_allclose(lsm[0], [0.0, -1000.0, -2000.0])
    np.testing.assert_allclose(lse, [1000.0, -1e4 + np.log(3.0)], rtol=1e-14)


def test_sigmoid_matches_the_logistic_function_and_never_overflows():
    a = np.array([-1000.0, -30.0, -10.0, -1.0, 0.0, 2.0, 10.0, 30.0, 1000.0])
    with np.errstate(over="raise"):
        out = F.sigmoid(Tensor(a)).data
    exact = 1 / (1 + np.exp(-np.clip(a, -700, 700)))
    # (tanh(x/2) + 1) / 2 is accurate to a few ulps of 1 absolute everywhere, but relatively
    # only where 1 + tanh(x/2) does not cancel: the far left tail loses digits.
    np.testing.assert_allclose(out, exact, rtol=0, atol=4e-16)
    middle = np.abs(a) <= 10
    np.testing.assert_allclose(out[middle], exact[middle], rtol=1e-10)
    x = Tensor(a, requires_grad=True)
    F.sigmoid(x).sum().backward()
    np.testing.assert_allclose(x.grad.data, exact * (1 - exact), rtol=0, atol=4e-16)


def test_abs_gradient_is_the_sign_and_zero_at_zero():
    x = Tensor(np.array([-2.0, 0.0, 3.0]), requires_grad=True)
    out = F.abs(x)
    np.testing.assert_array_equal(out.data, [2.0, 0.0, 3.0])
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [-1.0, 0.0, 1.0])  # PyTorch's choice at 0


@given(case=classification_cases())
def test_cross_entropy_matches_a_numpy_reference_for_every_reduction(case):
    logits, target, reduction = case
    logp = np.log(ref_softmax(logits, axis=1))
    if target.ndim == 1:
        per_example = -logp[np.arange(len(target)), target]
    else:
        per_example = -(logp * target).sum(axis=1)
    reduce = {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction]
    expected = reduce(per_example)
    got = F.cross_entropy(Tensor(logits), target, reduction=reduction)
    np.testing.assert_allclose(got.data, expected, rtol=1e-10, atol=1e-12)


def test_cross_entropy_with_one_hot_probabilities_equals_integer_labels():
    logits = Tensor(np.random.default_rng(0).standard_normal((4, 3)))
    labels = np.array([2, 0, 1, 1])
    one_hot = np.eye(3)[labels]
    assert F.cross_entropy(logits, one_hot).item() == pytest.approx(
        F.cross_entropy(logits, Tensor(labels)).item(), rel=1e-12)


def test_cross_entropy_gradient_is_softmax_minus_one_hot_over_n():
    a = np.random.default_rng(1).standard_normal((3, 4))
    labels = np.array([3, 0, 3])
    x = Tensor(a, requires_grad=True)
    F.cross_entropy(x, labels).backward()
    np.testing.assert_allclose(x.grad.data, (ref_softmax(a, 1) - np.eye(4)[labels]) / 3, rtol=1e-10)


@pytest.mark.parametrize("logits, target, error, message", [
    (np.ones((2, 3)), np.array([0, 3]), ValueError,
     r"labels must be in \[0, 3\), got values in \[0, 3\]"),
    (np.ones((2, 3)), np.array([0, -1]), ValueError, r"labels must be in \[0, 3\)"),
    (np.ones((2, 3)), np.array([0, 1, 2]), ValueError,
     r"expected 2 integer labels \(shape \(2,\)\), got shape \(3,\)"),
    (np.ones((2, 3)), np.array([0.0, 1.0]), ValueError,  # float targets are probabilities, as in PyTorch
     r"probability targets must match logits \(2, 3\), got \(2,\)"),
    (np.ones(()), np.array(0), ValueError, r"expected logits of shape \(N, C\) or \(N, C, d...\), got \(\)"),
    (np.ones((2, 3)), np.ones((2, 4)) / 4, ValueError,
     r"probability targets must match logits \(2, 3\), got \(2, 4\)"),
])
def test_cross_entropy_rejects_bad_targets_with_a_clear_message(logits, target, error, message):
    with pytest.raises(error, match="cross_entropy: " + message):
        F.cross_entropy(Tensor(logits), target)


def test_cross_entropy_rejects_an_unknown_reduction():
    with pytest.raises(ValueError, match=r"reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        F.cross_entropy(Tensor(np.ones((1, 2))), np.array([0]), reduction="avg")


def test_mse_loss_is_the_mean_squared_difference_with_broadcasting():
    pred, target = np.array([[1.0, 2.0], [3.0, 5.0]]), np.array([1.0, 3.0])
    assert F.mse_loss(Tensor(pred), Tensor(target)).item() == pytest.approx(
        np.mean((pred - target) ** 2))
    assert F.mse_loss(Tensor(pred), 2.0).item() == pytest.approx(np.mean((pred - 2.0) ** 2))


@given(case=linear_cases())
def test_linear_matches_numpy(case):
    x, w, b = case
    expected = x @ w.T + (0 if b is None else b)
    got = F.linear(Tensor(x), Tensor(w), None if b is None else Tensor(b))
    np.testing.assert_allclose(got.data, expected, rtol=1e-12, atol=1e-12)


def test_linear_feature_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"linear: input has 2 features \(shape \(5, 2\)\) but "
                                         r"weight \(4, 3\) expects 3"):
        F.linear(Tensor(np.ones((5, 2))), Tensor(np.ones((4, 3))))


# ---------------------------------------------------------------- dropout


def test_dropout_zeroes_about_p_and_scales_survivors_to_keep_the_mean():
    x = Tensor(np.ones((200, 200)))
    out = F.dropout(x, 0.3, generator=np.random.default_rng(0)).data
    dropped = np.mean(out == 0.0)
    # 40,000 Bernoulli(0.3) draws: the fraction has std ~0.0023; 0.01 is > 4 sigma.
    assert abs(dropped - 0.3) < 0.01
    np.testing.assert_allclose(out[out != 0], 1 / 0.7, rtol=1e-12)
    assert abs(out.mean() - 1.0) < 0.02


def test_dropout_is_the_identity_when_not_training_or_p_is_zero():
    x = Tensor(np.ones(5), requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x


def test_dropout_is_reproducible_from_a_generator_and_routes_gradient_through_the_mask():
    x = Tensor(np.arange(1.0, 9.0, dtype=np.float32), requires_grad=True)
    a = F.dropout(x, 0.5, generator=np.random.default_rng(7))
    b = F.dropout(x, 0.5, generator=np.random.default_rng(7))
    np.testing.assert_array_equal(a.data, b.data)
    assert a.dtype == np.float32
    a.sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.where(a.data != 0, 2.0, 0.0))


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_dropout_rejects_p_outside_0_1(p):
    with pytest.raises(ValueError, match=rf"dropout: p must be in \[0, 1\], got {p}"):
        F.dropout(Tensor(np.ones(3)), p)


def test_dropout_with_p_1_drops_everything_as_in_pytorch():
    np.testing.assert_array_equal(F.dropout(Tensor(np.ones(3)), 1.0).data, [0.0, 0.0, 0.0])


# ---------------------------------------------------------------- against PyTorch


def _torch_pairs(torch):
    tf = torch.nn.functional
    return {
        "mean": (lambda x: F.mean(x, dim=(0, 2)), lambda t: t.mean(dim=(0, 2))),
        "var": (lambda x: x.var(1), lambda t: t.var(1)),
        "var correction=0": (lambda x: F.var(x, dim=1, correction=0), lambda t: t.var(dim=1, correction=0)),
        "sigmoid": (F.sigmoid, torch.sigmoid),
        "softmax": (lambda x: F.softmax(x, axis=1), lambda t: torch.softmax(t, dim=1)),
        "log_softmax": (lambda x: F.log_softmax(x, axis=0), lambda t: torch.log_softmax(t, dim=0)),
        "logsumexp": (lambda x: F.logsumexp(x, dim=2), lambda t: torch.logsumexp(t, dim=2)),
        "abs": (F.abs, torch.abs),
        "amax": (lambda x: x.amax(dim=1), lambda t: t.amax(dim=1)),
        "max(dim)": (lambda x: x.max(1).values, lambda t: t.max(1).values),
        "batched matmul": (lambda x: x @ x.transpose(1, 2), lambda t: t @ t.transpose(1, 2)),
        "fancy index": (lambda x: x[np.array([0, 1, 1]), :, 1], lambda t: t[[0, 1, 1], :, 1]),
        "cross_entropy": (
            lambda x: F.cross_entropy(x.reshape(6, 4), np.array([0, 3, 1, 1, 2, 0])),
            lambda t: tf.cross_entropy(t.reshape(6, 4), torch.tensor([0, 3, 1, 1, 2, 0])),
        ),
        "mse_loss": (lambda x: F.mse_loss(x, 0.25),
                     lambda t: tf.mse_loss(t, torch.full_like(t, 0.25))),
    }


def test_composites_and_ops_match_pytorch_values_and_gradients():
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(0).standard_normal((2, 3, 4))
    cotangent_rng = np.random.default_rng(1)
    for name, (ours, theirs) in _torch_pairs(torch).items():
        x = Tensor(a, requires_grad=True)
        t = torch.tensor(a, requires_grad=True)
        out, tout = ours(x), theirs(t)
        np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=name)
        v = cotangent_rng.standard_normal(out.shape)
        out.backward(v)
        tout.backward(torch.tensor(v))
        np.testing.assert_allclose(x.grad.data, t.grad.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=name)


def test_linear_matches_pytorch_including_float32():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in [(5, 3), (4, 3), (4,)])
    ours = [Tensor(v, requires_grad=True) for v in (x, w, b)]
    theirs = [torch.tensor(v, requires_grad=True) for v in (x, w, b)]
    F.linear(*ours).sum().backward()
    torch.nn.functional.linear(*theirs).sum().backward()
    for o, t in zip(ours, theirs, strict=True):
        assert o.grad.dtype == np.float32
        # float32 sums of 3-5 products: a few ulps of 1.0-scale values.
        np.testing.assert_allclose(o.grad.data, t.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_sigmoid_keeps_relative_accuracy_far_left_and_its_slope_at_zero():
    x = Tensor(np.array([-700.0, -40.0, -30.0, 0.0, 30.0]), requires_grad=True)
    s = F.sigmoid(x)
    exact = 1.0 / (1.0 + np.exp(-x.data))
    np.testing.assert_allclose(s.data, exact, rtol=1e-14)
    assert np.all(np.isfinite(np.log(s.data)))
    s.sum().backward()
    e = np.exp(-np.abs(x.data))  # sigma' = e / (1 + e)**2, exact on both sides
    np.testing.assert_allclose(x.grad.data, e / (1 + e) ** 2, rtol=1e-14)
