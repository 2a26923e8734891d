"""nn.init: fans, gains, and large samples against the distributions' formulas and torch.nn.init.

Sampling tolerances come from the sample size: a sample mean is within
Z standard errors (sigma / sqrt(n)) of the true mean, a sample variance within
Z * sqrt((mu4 - sigma^4) / n) of the true variance (mu4 the fourth central
moment), with Z = 5 (a chance of about 6e-7 per check of a false failure);
the seeds are fixed, so a run is reproducible anyway. The largest of n uniform
draws on [-b, b] falls below b (1 - 80 / n) with probability (1 - 40 / n)^n < e^-40.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from tinygrad_bn import Tensor, nn
from tinygrad_bn.nn import init

Z = 5.0
SHAPE = (400, 250)  # 100,000 draws
N = math.prod(SHAPE)


def _check_moments(sample: np.ndarray, mean: float, var: float, mu4: float) -> None:
    """Sample mean and variance within Z standard errors of the distribution's."""
    n = sample.size
    assert abs(sample.mean() - mean) <= Z * math.sqrt(var / n), (sample.mean(), mean)
    assert abs(sample.var() - var) <= Z * math.sqrt((mu4 - var**2) / n), (sample.var(), var)


def _check_uniform(sample: np.ndarray, bound: float) -> None:
    """A sample of U(-bound, bound): its bounds and its moments (var b^2/3, mu4 b^4/5)."""
    assert np.abs(sample).max() <= bound
    assert sample.max() >= bound * (1 - 80 / sample.size) and sample.min() <= -bound * (1 - 80 / sample.size)
    _check_moments(sample, 0.0, bound**2 / 3, bound**4 / 5)


def _check_normal(sample: np.ndarray, mean: float, std: float) -> None:
    """A sample of N(mean, std^2): mu4 = 3 std^4."""
    _check_moments(sample, mean, std**2, 3 * std**4)


def _weight(shape=SHAPE, dtype=np.float64) -> nn.Parameter:
    return nn.Parameter(np.zeros(shape, dtype))


def _gen(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ---------------------------------------------------------------- fans and gains


@pytest.mark.parametrize("shape, fans", [((30, 20), (20, 30)), ((64, 32, 3, 3), (288, 576)),
                                         ((8, 4, 5), (20, 40)), ((1, 1), (1, 1))])
def test_fans_count_inputs_and_outputs_times_the_receptive_field(shape, fans):
    assert init._calculate_fan_in_and_fan_out(_weight(shape)) == fans


def test_gains_follow_pytorchs_table():
    assert [init.calculate_gain(n) for n in ("linear", "conv2d", "sigmoid")] == [1, 1, 1]
    assert init.calculate_gain("tanh") == 5 / 3
    assert init.calculate_gain("relu") == math.sqrt(2)
    assert init.calculate_gain("leaky_relu") == math.sqrt(2 / (1 + 0.01**2))
    assert init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)
    assert init.calculate_gain("selu") == 0.75


# ---------------------------------------------------------------- distributions


def test_uniform_and_normal_fill_with_their_distributions():
    _check_moments(init.uniform_(_weight(), -1.0, 3.0, generator=_gen()).data, 1.0, 16 / 12, 4**4 / 80)
    _check_normal(init.normal_(_weight(), 2.0, 0.5, generator=_gen()).data, 2.0, 0.5)


@pytest.mark.parametrize("shape", [(400, 250), (100, 50, 5, 4)])
def test_xavier_uses_the_mean_of_the_fans(shape):
    w = _weight(shape)
    fan_in, fan_out = init._calculate_fan_in_and_fan_out(w)
    std = 1.5 * math.sqrt(2 / (fan_in + fan_out))
    _check_uniform(init.xavier_uniform_(w, gain=1.5, generator=_gen()).data, math.sqrt(3) * std)
    _check_normal(init.xavier_normal_(w, gain=1.5, generator=_gen()).data, 0.0, std)


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("nonlinearity, a", [("relu", 0.0), ("leaky_relu", 0.1), ("tanh", 0.0)])
def test_kaiming_divides_the_gain_by_the_root_of_the_chosen_fan(mode, nonlinearity, a):
    w = _weight((400, 50, 5))
    fan = {"fan_in": 250, "fan_out": 2000}[mode]
    std = init.calculate_gain(nonlinearity, a) / math.sqrt(fan)
    _check_uniform(init.kaiming_uniform_(w, a, mode, nonlinearity, generator=_gen()).data, math.sqrt(3) * std)
    _check_normal(init.kaiming_normal_(w, a, mode, nonlinearity, generator=_gen()).data, 0.0, std)


def test_linear_default_init_is_kaiming_uniform_with_a_sqrt5_that_is_uniform_in_one_over_root_fan_in():
    w = _weight((400, 250))
    _check_uniform(init.kaiming_uniform_(w, a=math.sqrt(5), generator=_gen()).data, 1 / math.sqrt(250))


def _truncated_moments(mean: float, std: float, a: float, b: float) -> tuple[float, float, float]:
    """Mean, variance and 4th central moment of N(mean, std^2) on [a, b], by Simpson's rule."""
    x = np.linspace(a, b, 200_001)
    density = np.exp(-(((x - mean) / std) ** 2) / 2)
    weights = np.ones_like(x)
    weights[1:-1:2], weights[2:-1:2] = 4, 2

    def integral(f):
        return float(np.sum(weights * f * density))

    mass = integral(1.0)
    m = integral(x) / mass
    return m, integral((x - m) ** 2) / mass, integral((x - m) ** 4) / mass


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    return (1 + np.vectorize(math.erf)(x / math.sqrt(2))) / 2


# (mean, std, a, b): a wide window (normal candidates), a narrow one and a tail (uniform candidates)
TRUNCATED = [(0.0, 1.0, -2.0, 2.0), (1.0, 2.0, 0.0, 1.5), (0.0, 1.0, 2.0, 3.0), (0.0, 0.02, -0.04, 0.04)]


@pytest.mark.parametrize("mean, std, a, b", TRUNCATED)
def test_trunc_normal_has_the_truncated_distribution(mean, std, a, b):
    sample = init.trunc_normal_(_weight(), mean, std, a, b, generator=_gen()).data.ravel()
    assert a <= sample.min() and sample.max() <= b
    _check_moments(sample, *_truncated_moments(mean, std, a, b))
    # Kolmogorov-Smirnov against the exact CDF; sqrt(-ln(p/2) / (2n)) is the critical D at level p
    lo, hi = _normal_cdf(np.array([(a - mean) / std, (b - mean) / std]))
    cdf = (_normal_cdf((np.sort(sample) - mean) / std) - lo) / (hi - lo)
    steps = np.arange(1, sample.size + 1) / sample.size
    d = max(np.max(steps - cdf), np.max(cdf - (steps - 1 / sample.size)))
    assert d <= math.sqrt(-math.log(1e-6 / 2) / (2 * sample.size))


def test_constant_zeros_ones():
    w = _weight((3, 2), np.float32)
    assert np.all(init.constant_(w, 0.25).data == 0.25)
    assert not init.zeros_(w).data.any() and np.all(init.ones_(w).data == 1)
    assert w.dtype == np.float32


# ---------------------------------------------------------------- in place, generators


def test_init_works_in_place_keeps_the_dtype_and_refuses_old_graphs():
    w = _weight((3, 2), np.float32)
    array = w.data
    loss = (w * w).sum()
    assert init.kaiming_uniform_(w, generator=_gen()) is w
    assert w.data is array and w.dtype == np.float32 and w.requires_grad and w.is_leaf
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


def test_a_seeded_generator_reproduces_the_values_in_either_dtype():
    a = init.normal_(_weight((5, 4)), generator=_gen(3)).data
    b = init.normal_(_weight((5, 4)), generator=_gen(3)).data
    c = init.normal_(_weight((5, 4), np.float32), generator=_gen(3)).data
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(c, a.astype(np.float32))


def test_without_a_generator_the_default_one_is_used_and_advances():
    gen = init._default_generator()
    assert init._default_generator() is gen
    state = gen.bit_generator.state
    first = init.uniform_(_weight((4,))).data.copy()
    assert gen.bit_generator.state != state
    assert not np.array_equal(first, init.uniform_(_weight((4,))).data)


def test_zero_element_kaiming_warns_and_returns_the_tensor():
    w = _weight((0, 3))
    with pytest.warns(UserWarning, match="zero-element tensor"):
        assert init.kaiming_normal_(w) is w


# ---------------------------------------------------------------- against torch.nn.init


@pytest.mark.parametrize("name, kwargs, bound_or_std", [
    ("xavier_uniform_", dict(gain=2.0), "bound"), ("xavier_normal_", dict(gain=0.5), "std"),
    ("kaiming_uniform_", dict(a=math.sqrt(5)), "bound"),
    ("kaiming_uniform_", dict(mode="fan_out", nonlinearity="relu"), "bound"),
    ("kaiming_normal_", dict(nonlinearity="tanh"), "std"), ("trunc_normal_", dict(std=0.02), "std"),
])
def test_samples_match_torch_nn_init_distributions(name, kwargs, bound_or_std):
    torch = pytest.importorskip("torch")
    shape = (200, 50, 10)
    torch.manual_seed(0)
    theirs = getattr(torch.nn.init, name)(torch.empty(shape, dtype=torch.float64), **kwargs).numpy().ravel()
    ours = getattr(init, name)(_weight(shape), **kwargs, generator=_gen()).data.ravel()
    n = ours.size
    # Both samples have the same distribution: the variances of two independent samples differ by
    # less than Z * sqrt(2) of one's standard error, which the 4th moment of the sample estimates.
    m4 = np.mean((ours - ours.mean()) ** 4)
    assert abs(ours.var() - theirs.var()) <= Z * math.sqrt(2 * (m4 - ours.var() ** 2) / n)
    assert abs(ours.mean() - theirs.mean()) <= Z * math.sqrt(2 * ours.var() / n)
    if bound_or_std == "bound":  # the same support: both reach (almost) the same largest value
        top = max(np.abs(theirs).max(), np.abs(ours).max())
        assert min(np.abs(theirs).max(), np.abs(ours).max()) >= top * (1 - 80 / n)
    shapes = [shape, (3, 4), (6, 2, 2, 3)]
    fans = [torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(s)) for s in shapes]
    assert fans == [init._calculate_fan_in_and_fan_out(_weight(s)) for s in shapes]


def test_gains_equal_torch_nn_init_calculate_gain():
    torch = pytest.importorskip("torch")
    for name, param in [("linear", None), ("conv3d", None), ("sigmoid", None), ("tanh", None), ("relu", None),
                        ("leaky_relu", None), ("leaky_relu", 0.3), ("selu", None)]:
        assert init.calculate_gain(name, param) == torch.nn.init.calculate_gain(name, param)


# ---------------------------------------------------------------- bad input

BAD = [
    (lambda: init.uniform_(np.zeros(3)), TypeError, "uniform_: expected a Tensor, got ndarray"),
    (lambda: init.normal_(Tensor(np.zeros(3, np.int64))), TypeError, "normal_: expected a float tensor, got"),
    (lambda: init.xavier_uniform_(_weight((3,))), ValueError, r"at least 2 dimensions, got shape \(3,\)"),
    (lambda: init.kaiming_uniform_(_weight((3, 3)), mode="fan"), ValueError,
     "mode must be 'fan_in' or 'fan_out', got 'fan'"),
    (lambda: init.kaiming_normal_(_weight((3, 3)), nonlinearity="swish"), ValueError,
     "unsupported nonlinearity 'swish'"),
    (lambda: init.calculate_gain("leaky_relu", "0.1"), ValueError, "negative_slope '0.1' is not a number"),
    (lambda: init.uniform_(_weight((3,)), 1.0, 0.0), ValueError, "uniform_: expected a <= b, got a=1.0, b="),
    (lambda: init.normal_(_weight((3,)), std=-1.0), ValueError, "normal_: std must be >= 0, got -1.0"),
    (lambda: init.normal_(_weight((3,)), generator=0), TypeError, "generator must be a numpy Generator"),
    (lambda: init.trunc_normal_(_weight((3,)), a=1.0, b=1.0), ValueError, "expected std > 0 and a < b"),
    (lambda: init.trunc_normal_(_weight((3,)), a=8.0, b=1000.0), ValueError, "so far in the tail"),
]


@pytest.mark.parametrize("call, error, message", BAD, ids=[b[2][:30] for b in BAD])
def test_bad_input_raises_naming_the_function(call, error, message):
    with warnings.catch_warnings(), pytest.raises(error, match=message):
        call()
