"""BatchNorm and LayerNorm: composed vs fused, numerical gradients, PyTorch semantics."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_bn as tg
from tinygrad_bn import Function, Tensor, nn
from tinygrad_bn.functional import batch_norm, layer_norm
from tinygrad_bn.gradcheck import GradcheckError, gradcheck, gradgradcheck
from tinygrad_bn.kernel_registry import KERNELS
from tinygrad_bn.kernels import BatchNormFused
from tinygrad_bn.testing import check_fused
from tinygrad_bn.testing import strategies as tst

NORMS = ("batch_norm", "layer_norm")


def _param_shape(name: str, x: np.ndarray) -> tuple[int, ...]:
    return (x.shape[1],) if name == "batch_norm" else x.shape[1:]


def kernel_cases(name: str, dtype: str) -> st.SearchStrategy:
    """[x, weight, bias, eps] for the norm kernel `name`."""
    return tst.norm_kernel_args(name, dtype)


KERNEL_STRATEGIES = {name: kernel_cases for name in NORMS}


# ---------------------------------------------------------------- composed vs fused


@pytest.mark.parametrize("name", NORMS)
def test_fused_matches_composed_float64(name):
    pair = KERNELS[name]
    report = check_fused(pair.composed, pair.fused, KERNEL_STRATEGIES[name](name, "float64"), rtol=1e-10)
    assert report.passed


@pytest.mark.parametrize("name", NORMS)
def test_fused_matches_composed_float32_judged_against_float64_truth(name):
    # Below float64 each quantity is judged against the composed twin in float64
    # (testing.check_fused.FLOAT32_FACTOR and FLOAT32_FLOOR_ULPS, justified there).
    pair = KERNELS[name]
    report = check_fused(pair.composed, pair.fused, KERNEL_STRATEGIES[name](name, "float32"))
    assert report.passed and report.against_truth and report.dtype == "float32"


@pytest.mark.parametrize("module", [nn.BatchNorm1d, nn.BatchNorm2d])
@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
def test_running_stats_agree_after_several_steps(module, momentum):
    shape = (6, 3) if module is nn.BatchNorm1d else (4, 3, 2, 2)
    composed = module(3, momentum=momentum, impl="composed", dtype=np.float64)
    fused = module(3, momentum=momentum, impl="fused", dtype=np.float64)
    x = np.random.default_rng(1).normal(3.0, 2.0, shape)
    report = check_fused(composed, fused, [x], steps=5)
    assert report.passed
    assert int(fused.num_batches_tracked.item()) == 5
    assert {"state[running_var]", "grad[weight] (fast path)", "grad[weight] (differentiable path)",
            "gradgrad[bias]"} <= set(report.errors())


class _ForgetsTheProjection(Function):
    """A plausible wrong BatchNorm kernel: dx = gamma*r*(g - mean(g)), no xhat term."""

    fused = True

    @staticmethod
    def forward(ctx, x):
        mean = x.data.mean(axis=0)
        r = 1.0 / np.sqrt(x.data.var(axis=0) + 1e-5)
        ctx.r = r
        return (x.data - mean) * r

    @staticmethod
    def backward(ctx, g):
        return (g.data - g.data.mean(axis=0)) * ctx.r


def test_check_fused_catches_a_wrong_kernel_that_all_ones_cotangents_miss():
    x = np.random.default_rng(2).normal(size=(8, 3))
    composed = KERNELS["batch_norm"].composed

    def right(t):
        return composed(t, None, None, 1e-5)

    # With an all-ones cotangent both give dx = 0, so that check cannot tell them apart.
    ones = []
    for fn in (right, _ForgetsTheProjection.apply):
        t = Tensor(x.copy(), requires_grad=True)
        ones.append(tg.grad(fn(t), t, np.ones((8, 3)))[0].data)
    np.testing.assert_allclose(ones[0], ones[1], atol=1e-12)
    with pytest.raises(GradcheckError, match=r"grad\[input 0\]"):
        check_fused(right, _ForgetsTheProjection.apply, [x], double_backward=False)


def test_check_fused_property_mode_checks_many_examples():
    calls = []

    def counting(x, w, b, eps):
        calls.append(x.shape)
        return KERNELS["batch_norm"].fused(x, w, b, eps)

    check_fused(KERNELS["batch_norm"].composed, counting, kernel_cases("batch_norm", "float64"))
    assert len(calls) >= 5


# ---------------------------------------------------------------- numerical gradients


@pytest.mark.parametrize("impl", ["composed", "fused"])
@pytest.mark.parametrize("name", NORMS)
@given(data=st.data())
def test_gradients_match_numerical_float64(impl, name, data):
    x, w, b, eps = data.draw(KERNEL_STRATEGIES[name](name, "float64"))
    fn = getattr(KERNELS[name], impl)
    inputs = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    gradcheck(lambda x, w, b: fn(x, w, b, eps), inputs)
    gradgradcheck(lambda x, w, b: fn(x, w, b, eps), inputs, atol=1e-4)


@pytest.mark.parametrize("impl", ["composed", "fused"])
def test_gradcheck_does_not_drift_running_statistics(impl):
    bn = nn.BatchNorm1d(3, impl=impl, dtype=np.float64)
    bn.running_mean.data[:] = [0.5, -1.0, 2.0]
    before = bn.state_dict()
    x = Tensor(np.random.default_rng(3).normal(size=(5, 3)), requires_grad=True)
    report = gradcheck(bn, [x])  # checks x and the module's weight and bias
    assert report.passed and len(report.inputs) == 3
    after = bn.state_dict()
    for key in before:
        np.testing.assert_array_equal(before[key], after[key], err_msg=key)


def test_without_restore_numerical_probes_would_drift_running_statistics():
    # The trap gradcheck avoids: every probe is a training-mode forward.
    bn = nn.BatchNorm1d(3, dtype=np.float64)
    x = Tensor(np.random.default_rng(3).normal(size=(5, 3)))
    for _ in range(10):
        with tg.no_grad():
            bn(x)
    assert int(bn.num_batches_tracked.item()) == 10
    assert not np.allclose(bn.running_mean.data, 0.0)


# ---------------------------------------------------------------- PyTorch semantics


def _reference_running_update(batches, momentum):
    mean, var = np.zeros(batches[0].shape[1]), np.ones(batches[0].shape[1])
    for k, x in enumerate(batches, start=1):
        axes = (0,) + tuple(range(2, x.ndim))
        f = 1.0 / k if momentum is None else momentum
        mean = (1 - f) * mean + f * x.mean(axis=axes)
        var = (1 - f) * var + f * x.var(axis=axes, ddof=1)  # unbiased into running_var
    return mean, var


@pytest.mark.parametrize("impl", ["composed", "fused"])
@pytest.mark.parametrize("momentum", [0.1, 0.3, None])
def test_running_stats_follow_pytorch_conventions(impl, momentum):
    rng = np.random.default_rng(4)
    batches = [rng.normal(2.0, 3.0, (7, 4, 3)) for _ in range(4)]
    bn = nn.BatchNorm1d(4, momentum=momentum, impl=impl, dtype=np.float64)
    for x in batches:
        bn(Tensor(x))
    mean, var = _reference_running_update(batches, momentum)
    np.testing.assert_allclose(bn.running_mean.data, mean, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.data, var, rtol=1e-12)


@pytest.mark.parametrize("impl", ["composed", "fused"])
def test_training_normalises_with_biased_batch_variance(impl):
    x = np.random.default_rng(5).normal(1.0, 2.0, (6, 2, 3, 3))
    out = batch_norm(Tensor(x), None, None, training=True, eps=1e-5, impl=impl).data
    axes = (0, 2, 3)
    expected = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + 1e-5)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("impl", ["composed", "fused"])
def test_eval_mode_uses_running_statistics_and_does_not_update_them(impl):
    bn = nn.BatchNorm1d(3, impl=impl, dtype=np.float64)
    bn.running_mean.data[:] = [1.0, 2.0, 3.0]
    bn.running_var.data[:] = [4.0, 1.0, 0.25]
    bn.weight.data[:] = [2.0, 1.0, 1.0]
    bn.eval()
    x = np.random.default_rng(6).normal(size=(5, 3))
    out = bn(Tensor(x)).data
    expected = (x - [1.0, 2.0, 3.0]) / np.sqrt(np.array([4.0, 1.0, 0.25]) + 1e-5) * [2.0, 1.0, 1.0]
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    np.testing.assert_array_equal(bn.running_mean.data, [1.0, 2.0, 3.0])
    assert int(bn.num_batches_tracked.item()) == 0


def test_train_and_eval_switch_between_batch_and_running_statistics():
    bn = nn.BatchNorm1d(2, dtype=np.float64)
    x = Tensor(np.random.default_rng(7).normal(5.0, 1.0, (10, 2)))
    train_out = bn(x).data
    assert abs(train_out.mean()) < 1e-12  # batch statistics: centred exactly
    bn.eval()
    eval_out = bn(x).data
    assert eval_out.mean() > 1.0  # running mean has only moved 10% of the way to 5


def test_without_running_stats_the_layer_always_uses_batch_statistics():
    bn = nn.BatchNorm1d(2, track_running_stats=False, dtype=np.float64).eval()
    out = bn(Tensor(np.random.default_rng(8).normal(5.0, 1.0, (10, 2)))).data
    assert abs(out.mean()) < 1e-12
    assert "running_mean" not in bn.state_dict()


@pytest.mark.parametrize("impl", ["composed", "fused"])
def test_state_dict_round_trips_exactly(impl):
    bn = nn.BatchNorm2d(3, impl=impl)
    for _ in range(3):
        bn(Tensor(np.random.default_rng(9).normal(size=(4, 3, 2, 2)).astype(np.float32)))
    state = bn.state_dict()
    assert set(state) == {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}
    other = nn.BatchNorm2d(3, impl=impl)
    other.load_state_dict(state)
    for key, value in other.state_dict().items():
        np.testing.assert_array_equal(value, state[key])
        assert value.dtype == state[key].dtype


def test_matches_pytorch_forward_backward_and_running_stats():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(10)
    x = rng.normal(1.0, 2.0, (6, 3, 4))
    w, b = rng.normal(size=3), rng.normal(size=3)
    g = rng.normal(size=x.shape)
    for impl in ("composed", "fused"):
        bn = nn.BatchNorm1d(3, impl=impl, dtype=np.float64)
        bn.weight.data[:], bn.bias.data[:] = w, b
        xt = Tensor(x.copy(), requires_grad=True)
        bn(xt).backward(g)
        tbn = torch.nn.BatchNorm1d(3).double()
        with torch.no_grad():
            tbn.weight[:], tbn.bias[:] = torch.tensor(w), torch.tensor(b)
        xx = torch.tensor(x, requires_grad=True)
        tbn(xx).backward(torch.tensor(g))
        np.testing.assert_allclose(xt.grad.data, xx.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(bn.weight.grad.data, tbn.weight.grad.numpy(), rtol=1e-10)
        np.testing.assert_allclose(bn.running_var.data, tbn.running_var.numpy(), rtol=1e-12)


# ---------------------------------------------------------------- numerics


@pytest.mark.parametrize("impl", ["composed", "fused"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_variance_channel_gives_finite_outputs_and_gradients(impl, dtype):
    x = np.random.default_rng(11).normal(size=(6, 3)).astype(dtype)
    x[:, 1] = 7.0
    xt = Tensor(x, requires_grad=True)
    bn = nn.BatchNorm1d(3, impl=impl, dtype=dtype)
    out = bn(xt)
    out.backward(np.random.default_rng(12).normal(size=x.shape).astype(dtype))
    for arr in (out.data, xt.grad.data, bn.weight.grad.data, bn.bias.grad.data):
        assert np.all(np.isfinite(arr))
    np.testing.assert_allclose(out.data[:, 1], 0.0, atol=1e-6)


@pytest.mark.parametrize("impl", ["composed", "fused"])
def test_float32_with_large_offset_normalises_as_accurately_as_float64_rounded(impl):
    x32 = np.random.default_rng(13).normal(1e4, 1.0, (256, 4)).astype(np.float32)
    out32 = batch_norm(Tensor(x32), None, None, training=True, impl=impl).data
    reference = batch_norm(Tensor(x32.astype(np.float64)), None, None, training=True, impl=impl).data
    # A float32 mean near 1e4 is at best half an ulp (2**-11 ~ 4.9e-4) from the true
    # one, and that shift reaches every normalised value (std 1): allow 1e-3. The naive
    # E[x^2] - E[x]^2 variance would lose every digit here (1e8 - 1e8 in float32).
    err = np.abs(out32 - reference.astype(np.float32)).max()
    assert err < 1e-3, err
    naive_var = (x32.astype(np.float32) ** 2).mean(axis=0) - x32.mean(axis=0) ** 2
    assert np.abs(naive_var - x32.astype(np.float64).var(axis=0)).max() > 0.5  # the trap is real


@pytest.mark.parametrize("impl", ["composed", "fused"])
@pytest.mark.parametrize("name", NORMS)
def test_float32_stays_float32_end_to_end(impl, name):
    x = np.random.default_rng(14).normal(size=(4, 3, 2)).astype(np.float32)
    shape = _param_shape(name, x)
    inputs = [Tensor(a, requires_grad=True) for a in
              (x, np.ones(shape, np.float32), np.zeros(shape, np.float32))]
    out = getattr(KERNELS[name], impl)(*inputs, 1e-5)
    assert out.dtype == np.float32
    out.backward(np.ones(out.shape, np.float32) * np.float32(0.5) + Tensor(x).data)
    assert all(t.grad.dtype == np.float32 for t in inputs)


# ---------------------------------------------------------------- layer norm specifics


@pytest.mark.parametrize("impl", ["composed", "fused"])
def test_layer_norm_normalises_each_example_over_trailing_axes(impl):
    x = np.random.default_rng(15).normal(3.0, 2.0, (4, 3, 5))
    out = nn.LayerNorm((3, 5), impl=impl, dtype=np.float64)(Tensor(x)).data
    expected = (x - x.mean(axis=(1, 2), keepdims=True)) / np.sqrt(x.var(axis=(1, 2), keepdims=True) + 1e-5)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_layer_norm_matches_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(16)
    x, g = rng.normal(size=(3, 4, 5)), rng.normal(size=(3, 4, 5))
    w, b = rng.normal(size=5), rng.normal(size=5)
    xt, wt, bt = (Tensor(a.copy(), requires_grad=True) for a in (x, w, b))
    layer_norm(xt, 5, wt, bt).backward(g)
    xx, ww, bb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    torch.nn.functional.layer_norm(xx, (5,), ww, bb).backward(torch.tensor(g))
    for ours, theirs in ((xt, xx), (wt, ww), (bt, bb)):
        np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- bad input


def _x(*shape, dtype=np.float32):
    return Tensor(np.random.default_rng(0).normal(size=shape).astype(dtype))


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: batch_norm(_x(4, 3), None, None, Tensor(np.ones(2, np.float32)), training=True),
         ValueError, r"weight has shape \(2,\), expected \(3,\)"),
        (lambda: batch_norm(_x(4, 3), None, None, None, Tensor(np.ones(4, np.float32)), training=True),
         ValueError, r"bias has shape \(4,\)"),
        (lambda: batch_norm(_x(4, 3), Tensor(np.zeros(2, np.float32)), Tensor(np.ones(2, np.float32))),
         ValueError, r"running_mean has shape \(2,\)"),
        (lambda: batch_norm(_x(4), None, None, training=True),
         ValueError, r"at least 2 dims, got shape \(4,\)"),
        (lambda: batch_norm(Tensor(np.ones((4, 3), np.int64)), None, None, training=True),
         TypeError, "float32 or float64, got dtype int64"),
        (lambda: batch_norm(_x(1, 3), None, None, training=True),
         ValueError, r"more than 1 value per channel"),
        (lambda: batch_norm(_x(4, 3), None, None, Tensor(np.ones(3)), training=True),
         TypeError, "weight has dtype float64 but input has dtype float32"),
        (lambda: batch_norm(_x(4, 3), None, None, training=True, impl="fast"), ValueError, "impl must be"),
        (lambda: batch_norm(_x(4, 3), None, None, training=False), ValueError, "needs running_mean"),
        (lambda: nn.BatchNorm2d(3)(_x(4, 3)), ValueError, r"expected input with 4 dims, got shape \(4, 3\)"),
        (lambda: nn.BatchNorm1d(0), ValueError, "num_features must be a positive int"),
        (lambda: nn.BatchNorm1d(3)(_x(1, 3)), ValueError, "more than 1 value per channel"),
        (lambda: layer_norm(_x(4, 3), 5), ValueError, r"does not end with normalized_shape \(5,\)"),
        (lambda: layer_norm(_x(4, 3), 3, Tensor(np.ones(3))), TypeError, "weight has dtype float64"),
    ],
)
def test_bad_input_gets_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


class _DoublesGammaGrad(BatchNormFused):
    """A wrong kernel whose only error is in dgamma."""

    @staticmethod
    def backward(ctx, g):
        dx, dgamma, dbeta = BatchNormFused.backward(ctx, g)
        return dx, dgamma * 2.0, dbeta


class _WrongGammaBatchNorm(nn.BatchNorm1d):
    def forward(self, x):
        return _DoublesGammaGrad.apply(x, self.weight, self.bias, eps=self.eps)


def test_check_fused_compares_module_parameter_gradients_by_name():
    composed = nn.BatchNorm1d(3, impl="composed", track_running_stats=False, dtype=np.float64)
    wrong = _WrongGammaBatchNorm(3, track_running_stats=False, dtype=np.float64)
    x = np.random.default_rng(17).normal(size=(6, 3))
    report = check_fused(composed, wrong, [x], double_backward=False, raise_exception=False)
    errors = report.errors()
    for path in ("fast path", "differentiable path"):
        assert errors[f"grad[input 0] ({path})"][1] < 1e-10 and errors[f"grad[bias] ({path})"][1] < 1e-10
        assert errors[f"grad[weight] ({path})"][1] > 0.1
    assert not report.passed


# ---------------------------------------------------------------- PyTorch parity details


def test_switching_off_track_running_stats_after_construction_stops_buffer_updates():
    bn = nn.BatchNorm1d(3)
    x = Tensor(np.random.default_rng(0).normal(2.0, 3.0, (8, 3)).astype(np.float32))
    bn.track_running_stats = False
    bn(x)
    np.testing.assert_array_equal(bn.running_mean.data, np.zeros(3))
    np.testing.assert_array_equal(bn.running_var.data, np.ones(3))
    assert int(bn.num_batches_tracked.item()) == 0
    bn.eval()  # buffers still exist: evaluation uses them, as PyTorch does
    np.testing.assert_allclose(bn(x).data, x.data / np.sqrt(1 + 1e-5), rtol=1e-6)


@pytest.mark.parametrize("impl", ["composed", "fused"])
def test_an_empty_batch_gives_an_empty_output_and_empty_gradients(impl):
    bn = nn.BatchNorm1d(4, impl=impl)
    x = Tensor(np.zeros((0, 4), np.float32), requires_grad=True)
    out = bn(x)
    assert out.shape == (0, 4)
    out.sum().backward()
    assert x.grad.shape == (0, 4)
    np.testing.assert_array_equal(bn.running_mean.data, np.zeros(4))


def test_bias_false_and_eps_nan_and_bad_layer_norm_shapes():
    assert nn.BatchNorm2d(3, bias=False).bias is None and nn.BatchNorm2d(3, bias=False).weight is not None
    for bad in (float("nan"), float("inf"), 0.0, -1e-5, "1e-5"):
        with pytest.raises(ValueError, match="eps must be a positive finite number"):
            nn.BatchNorm1d(3, eps=bad)
        with pytest.raises(ValueError, match="LayerNorm: eps must be a positive finite number"):
            nn.LayerNorm(3, eps=bad)
        with pytest.raises(ValueError, match="batch_norm: eps must be a positive finite number"):
            batch_norm(Tensor(np.ones((4, 2))), None, None, training=True, eps=bad)
    for bad in ("abc", 3.5, 0, (2, -1), ()):
        with pytest.raises(ValueError, match="LayerNorm: normalized_shape must be a positive int"):
            nn.LayerNorm(bad)


def test_num_batches_tracked_counts_only_batches_that_pass_the_checks():
    bn = nn.BatchNorm1d(3)
    with pytest.raises(ValueError, match="expected more than 1 value per channel"):
        bn(Tensor(np.ones((1, 3), np.float32)))
    with pytest.raises(TypeError, match="weight has dtype float32 but input has dtype float64"):
        bn(Tensor(np.ones((4, 3))))
    assert int(bn.num_batches_tracked.item()) == 0
    bn(Tensor(np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)))
    assert int(bn.num_batches_tracked.item()) == 1


def test_mismatched_dtypes_in_linear_and_batch_norm_say_how_to_fix_them():
    with pytest.raises(TypeError, match=r"linear: operands have dtypes float64 and float32.*x.float\(\)"):
        nn.Linear(3, 2)(Tensor(np.ones((4, 3))))
    with pytest.raises(TypeError, match=r"Convert the input .* or the layer"):
        nn.BatchNorm1d(3)(Tensor(np.ones((4, 3))))
