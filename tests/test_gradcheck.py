"""The gradient checker itself: it must pass correct ops and catch wrong ones, loudly.

Each wrong op below is a small custom Function with a plausible bug. A checker
that passes them is worse than none, so these tests are about failures.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_bn import Function, Tensor, functional, nn
from tinygrad_bn.gradcheck import (
    GradcheckError,
    gradcheck,
    gradgradcheck,
    numerical_gradient,
    rel_error,
)
from tinygrad_bn.testing import strategies as tst

# ---------------------------------------------------------------- numerical_gradient


@pytest.mark.parametrize("shape", [(), (1,), (5,), (2, 3), (2, 1, 3)])
def test_numerical_gradient_matches_known_derivatives_for_any_shape(shape):
    x = np.random.default_rng(0).uniform(-2, 2, shape)
    original = x.copy()
    # f(x) = sum(sin(x) * x^2), f'(x) = cos(x) x^2 + 2 x sin(x)
    numeric = numerical_gradient(lambda a: np.sum(np.sin(a) * a**2), x)
    np.testing.assert_allclose(numeric, np.cos(x) * x**2 + 2 * x * np.sin(x), rtol=1e-7, atol=1e-9)
    assert numeric.shape == shape
    np.testing.assert_array_equal(x, original)  # every probe is undone


def test_numerical_gradient_of_a_tensor_valued_function_sums_its_output():
    x = np.array([1.0, 2.0, 3.0])
    numeric = numerical_gradient(lambda a: Tensor(a) * Tensor(a), x)
    np.testing.assert_allclose(numeric, 2 * x, rtol=1e-8)


def test_numerical_gradient_with_a_coarse_step_shows_the_truncation_error():
    # Central differences are exact for quadratics and O(h^2) off for cubics:
    # (f(x+h) - f(x-h)) / 2h = 3x^2 + h^2 for f = x^3.
    x = np.array([1.0])
    np.testing.assert_allclose(numerical_gradient(lambda a: a**2, x, h=0.1), [2.0], rtol=1e-12)
    np.testing.assert_allclose(numerical_gradient(lambda a: a**3, x, h=0.1), [3.0 + 0.01],
                               rtol=1e-10)


def test_numerical_gradient_rejects_arrays_it_cannot_perturb_in_place():
    with pytest.raises(TypeError, match=r"x must be an ndarray, got list"):
        numerical_gradient(np.sum, [1.0, 2.0])
    with pytest.raises(ValueError, match=r"writeable C-contiguous"):
        numerical_gradient(np.sum, np.ones((3, 4)).T)


# ---------------------------------------------------------------- rel_error


def test_rel_error_is_max_of_abs_difference_over_sum_of_magnitudes():
    a, b = np.array([1.0, 10.0, 0.0]), np.array([1.5, 10.0, 0.0])
    # elementwise |a-b| / max(1e-8, |a|+|b|): 0.5/2.5, 0, 0/1e-8
    assert rel_error(a, b) == pytest.approx(0.2)
    assert rel_error(np.array([1e-9]), np.array([0.0])) == pytest.approx(0.1)  # the 1e-8 floor
    assert rel_error(Tensor(np.array([2.0])), np.array([-2.0])) == 1.0
    assert rel_error(np.zeros(0), np.zeros(0)) == 0.0


def test_rel_error_rejects_different_shapes():
    with pytest.raises(ValueError, match=r"rel_error: shapes differ, \(2,\) vs \(3,\)"):
        rel_error(np.ones(2), np.ones(3))


# ---------------------------------------------------------------- wrong Functions


class WrongSquare(Function):
    """x^2 whose backward forgets the factor 2 on the second element only."""

    name = "wrong_square"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.data**2

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        factor = np.full(x.shape, 2.0)
        factor.reshape(-1)[1] = 1.0
        return g * x * Tensor(factor)


def test_gradcheck_passes_a_correct_op():
    x = Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    report = gradcheck(lambda t: t * t, [x])
    assert report.passed and report.inputs[0].max_abs_err < 1e-8


def test_gradcheck_failure_names_the_input_worst_element_and_both_values():
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    x = Tensor(np.array([[0.5, -1.0, 2.0], [1.0, 1.5, 0.25]]), requires_grad=True)
    with pytest.raises(GradcheckError) as err:
        gradcheck(lambda a_, x_: a_.sum() + WrongSquare.apply(x_), [a, x])
    message = str(err.value)
    assert "input 1" in message and "(2, 3)" in message
    assert "index (0, 1)" in message  # the element whose factor is wrong
    report = gradcheck(lambda a_, x_: a_.sum() + WrongSquare.apply(x_), [a, x],
                       raise_exception=False)
    wrong = report.inputs[1]
    assert not report.passed and report.inputs[0].passed
    assert wrong.worst_index == (0, 1)
    # With cotangent v, analytic = v * x and numeric = 2 v x at the bad element.
    assert wrong.numeric == pytest.approx(2 * wrong.analytic, rel=1e-6)
    assert f"analytic {wrong.analytic!r}, numeric {wrong.numeric!r}" in message
    assert "NO" in str(report) and "yes" in str(report)


class StandardizeMissingVarianceTerm(Function):
    """(x - mean) / std over axis 0, whose backward forgets that std depends on x.

    The correct backward is (g - mean(g) - y * mean(g * y)) / std; this one drops
    the last term, the classic hand-derived BatchNorm bug.
    """

    name = "standardize_missing_variance_term"

    @staticmethod
    def forward(ctx, x):
        centred = x.data - x.data.mean(axis=0)
        std = np.sqrt((centred**2).mean(axis=0))
        ctx.std = std
        return centred / std

    @staticmethod
    def backward(ctx, g):
        return (g - g.mean(axis=0, keepdims=True)) * Tensor(1.0 / ctx.std)


class CentreOverTheWrongAxis(Function):
    """x - mean(x, axis=0) (BatchNorm's centring), whose backward centres g along axis 1."""

    name = "centre_over_the_wrong_axis"

    @staticmethod
    def forward(ctx, x):
        return x.data - x.data.mean(axis=0)

    @staticmethod
    def backward(ctx, g):
        return g - g.mean(axis=1, keepdims=True)


@pytest.mark.parametrize("wrong_op", [StandardizeMissingVarianceTerm, CentreOverTheWrongAxis])
def test_random_cotangent_catches_a_normalisation_bug_that_all_ones_hides(wrong_op):
    x = Tensor(np.random.default_rng(3).standard_normal((5, 3)), requires_grad=True)
    # An all-ones cotangent is the same as checking the scalar sum(out). A normalised
    # output sums to a constant, so the true gradient is zero; both wrong backwards
    # map a constant g to zero as well, so that check passes...
    ones_report = gradcheck(lambda t: wrong_op.apply(t).sum(), [x])
    assert ones_report.passed
    assert ones_report.inputs[0].max_abs_err < 1e-8
    # ...while a random cotangent has a non-constant part, which exposes the bug.
    with pytest.raises(GradcheckError, match="input 0"):
        gradcheck(wrong_op.apply, [x])


class CentrePassingGradientThrough(Function):
    """x - mean(x), whose backward returns g unchanged (forgets the mean's dependence on x)."""

    name = "centre_passing_gradient_through"

    @staticmethod
    def forward(ctx, x):
        return x.data - x.data.mean()

    @staticmethod
    def backward(ctx, g):
        return g


def test_a_pass_through_centring_bug_is_visible_even_to_an_all_ones_cotangent():
    # The contrast to the test above: this bug maps a constant g to g, not to zero,
    # so sum(out) (true gradient 0, analytic gradient all ones) already catches it.
    x = Tensor(np.random.default_rng(4).standard_normal(4), requires_grad=True)
    report = gradcheck(lambda t: CentrePassingGradientThrough.apply(t).sum(), [x],
                       raise_exception=False)
    assert not report.passed
    assert report.inputs[0].numeric == pytest.approx(0.0, abs=1e-8)


def test_directional_mode_passes_correct_ops_and_catches_wrong_ones():
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((40, 30)), requires_grad=True)
    report = gradcheck(lambda t: functional.softmax(t, axis=1), [x], mode="directional",
                       n_directions=3)
    assert report.passed and report.mode == "directional"
    assert report.inputs[0].worst_index[0] in range(3)  # a direction, not an element
    with pytest.raises(GradcheckError, match="input 0"):
        gradcheck(WrongSquare.apply, [x], mode="directional", n_directions=3)


def test_gradcheck_rejects_an_unknown_mode_and_inputs_without_grad():
    x = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ValueError, match=r"mode must be 'full' or 'directional', got 'fast'"):
        gradcheck(lambda t: t * 2.0, [x], mode="fast")
    with pytest.raises(ValueError, match=r"no input has requires_grad=True"):
        gradcheck(lambda t: t * 2.0, [Tensor(np.ones(2))])
    with pytest.raises(TypeError, match=r"inputs\[0\] must be a Tensor, got ndarray"):
        gradcheck(lambda t: t * 2.0, [np.ones(2)])
    with pytest.raises(TypeError, match=r"fn must return Tensors, got float"):
        gradcheck(lambda t: 1.0, [x])


def test_gradcheck_treats_an_unused_input_as_a_zero_gradient():
    x, unused = Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(3), requires_grad=True)
    report = gradcheck(lambda a, b: a * 2.0, [x, unused])
    assert report.passed and [r.index for r in report.inputs] == [0, 1]


# ---------------------------------------------------------------- float32


class Float32Sloppy(Function):
    """tanh, whose backward is 1% off when it runs in float32 (a precision bug)."""

    name = "float32_sloppy"

    @staticmethod
    def forward(ctx, x):
        return np.tanh(x.data)

    @staticmethod
    def backward(ctx, g):
        out = ctx.output
        factor = 1.01 if g.dtype == np.float32 else 1.0
        return g * (1.0 - out * out) * factor


@given(x=tst.tensors(tst.shapes(1, 2), dtype="float32"))
def test_float32_gradients_are_reported_in_ulps_against_float64(x):
    report = gradcheck(lambda t: functional.softmax(t * 2.0, axis=-1) * t, [x])
    by_dtype = {r.dtype: r for r in report.inputs}
    assert set(by_dtype) == {"float32", "float64"}
    assert by_dtype["float64"].ulps is None
    # Softmax and a product: a handful of roundings in float32, so a few ulps of error.
    assert by_dtype["float32"].ulps is not None and by_dtype["float32"].ulps < 64


def test_float32_precision_bug_fails_with_a_large_ulp_error():
    x = Tensor(np.linspace(-1, 1, 6, dtype=np.float32), requires_grad=True)
    report = gradcheck(Float32Sloppy.apply, [x], raise_exception=False)
    by_dtype = {r.dtype: r for r in report.inputs}
    assert by_dtype["float64"].passed  # the float64 twin is right
    assert not by_dtype["float32"].passed and by_dtype["float32"].ulps > 1000
    message = r"gradcheck \(float32 vs float64\) failed for input 0"
    with pytest.raises(GradcheckError, match=message):
        gradcheck(Float32Sloppy.apply, [x])


# ---------------------------------------------------------------- restore=


class Drifting(nn.Module):
    """Scales its input by (1 + number of calls so far): state that every forward updates."""

    def __init__(self):
        super().__init__()
        self.register_buffer("calls", np.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        self.calls.data[...] += 1.0
        return x * Tensor(1.0 + self.calls.data.copy())


def test_without_restore_state_drifts_across_probes_and_corrupts_the_check():
    module = Drifting()
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with pytest.raises(GradcheckError):
        gradcheck(lambda t: module(t), [x])
    assert module.calls.item() > 2  # one call per probe


def test_restore_snapshots_module_buffers_around_every_probe():
    module = Drifting()
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    report = gradcheck(lambda t: module(t), [x], restore=module)
    assert report.passed
    assert module.calls.item() == 0.0  # every probe saw (and left) the same state
    # A Module passed as fn is restored without being named.
    assert gradcheck(module, [x]).passed and module.calls.item() == 0.0


def test_restore_accepts_arrays_tensors_and_dicts_and_rejects_other_types():
    state = {"count": np.zeros(())}

    def fn(t):
        state["count"][...] += 1.0
        return t * 2.0

    x = Tensor(np.ones(2), requires_grad=True)
    gradcheck(fn, [x], restore=[state, np.zeros(1), Tensor(np.zeros(1))])
    assert state["count"] == 0.0
    message = r"restore: expected Modules, Tensors, arrays or dicts, got str"
    with pytest.raises(TypeError, match=message):
        gradcheck(fn, [x], restore="count")


# ---------------------------------------------------------------- gradgradcheck


class FlatBackward(Function):
    """x^3 whose backward is computed in numpy: right first derivative, no second one."""

    name = "flat_backward"

    @staticmethod
    def forward(ctx, x):
        ctx.x = x.data.copy()
        return x.data**3

    @staticmethod
    def backward(ctx, g):
        return g * Tensor(3.0 * ctx.x**2)  # a constant: the dependence on x is lost


def test_gradgradcheck_passes_twice_differentiable_ops():
    x = Tensor(np.array([0.5, -1.5, 2.0]), requires_grad=True)
    y = Tensor(np.array([1.0, 0.3, -0.7]), requires_grad=True)
    report = gradgradcheck(lambda a, b: a * a * b + (a * b).tanh(), [x, y])
    assert report.passed and len(report.inputs) == 2


def test_gradgradcheck_catches_a_backward_that_is_not_differentiable():
    x = Tensor(np.array([0.5, -1.5, 2.0]), requires_grad=True)
    assert gradcheck(FlatBackward.apply, [x]).passed
    with pytest.raises(GradcheckError, match="input 0"):
        gradgradcheck(FlatBackward.apply, [x])


@given(x=tst.tensors(tst.shapes(0, 2)), mode=st.sampled_from(["full", "directional"]))
def test_gradcheck_and_gradgradcheck_pass_a_composite_in_both_modes_on_any_shape(x, mode):
    def swish(t: Tensor) -> Tensor:
        return functional.sigmoid(t) * t

    assert gradcheck(swish, [x], mode=mode).passed
    assert gradgradcheck(swish, [x], mode=mode).passed


class _RebindsItsBuffer(nn.Module):
    """Counts calls by assigning a new Tensor to its buffer, instead of updating it in place."""

    def __init__(self):
        super().__init__()
        self.register_buffer("calls", np.zeros(()))

    def forward(self, x):
        self.calls = Tensor(self.calls.data + 1.0)
        return x * 2.0


def test_gradcheck_restores_buffers_that_the_module_rebinds():
    module = _RebindsItsBuffer()
    x = Tensor(np.random.default_rng(0).normal(size=(3,)), requires_grad=True)
    gradcheck(module, [x])
    assert module.calls.item() == 0.0


def test_gradgradcheck_says_a_raw_numpy_backward_recorded_no_graph_and_how_to_fix_it():
    x = Tensor(np.array([0.5, -1.5, 2.0]), requires_grad=True)
    with pytest.raises(GradcheckError) as err:
        gradgradcheck(lambda t: FlatBackward.apply(t) + t * t, [x])
    message = str(err.value)
    assert message.startswith("gradgradcheck failed for input 0")
    assert "backward of flat_backward built no graph back to its inputs" in message
    assert "is_grad_enabled()" in message and "Tensor ops" in message
    report = gradgradcheck(FlatBackward.apply, [x], raise_exception=False)
    assert not report.passed and "flat_backward" in str(report) and report.notes


def test_gradgradcheck_failure_of_a_differentiable_backward_blames_no_function():
    class WrongSecondDerivative(Function):
        """x^3 whose backward, written with Tensor ops, is 3 x^2 + x (a wrong but differentiable rule)."""

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.data**3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * (x * x * 3.0)

    x = Tensor(np.array([0.5, -1.5, 2.0]), requires_grad=True)
    assert gradgradcheck(WrongSecondDerivative.apply, [x]).notes == []


# ---------------------------------------------------------------- bad arguments


@pytest.mark.parametrize("check", [gradcheck, gradgradcheck])
@pytest.mark.parametrize("inputs, message", [
    (Tensor(np.ones(2), requires_grad=True), r"list or tuple .* got Tensor; pass one input as \[x\]"),
    (None, r"inputs must be a list or tuple .* got NoneType"),
    (5, r"got int"),
    ((t for t in [Tensor(np.ones(2))]), r"got generator"),
])
def test_inputs_that_are_not_a_sequence_get_a_clear_error(check, inputs, message):
    with pytest.raises(TypeError, match=message):
        check(lambda t: t * 2.0, inputs)


@pytest.mark.parametrize("check", [gradcheck, gradgradcheck])
@pytest.mark.parametrize("options, error, message", [
    ({"eps": 0}, ValueError, r"eps must be a positive finite step for central differences, got 0"),
    ({"eps": -1e-6}, ValueError, r"eps must be a positive finite step"),
    ({"eps": float("nan")}, ValueError, r"eps must be a positive finite step .* got nan"),
    ({"eps": "small"}, TypeError, r"eps must be a number, got str"),
    ({"atol": -1.0}, ValueError, r"atol must be a number >= 0, got -1.0"),
    ({"rtol": None}, ValueError, r"rtol must be a number >= 0, got None"),
    ({"n_directions": 0}, ValueError, r"n_directions must be an int >= 1, got 0"),
])
def test_bad_options_get_a_clear_error(check, options, error, message):
    x = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(error, match=message):
        check(lambda t: t * t, [x], **options)


def test_a_non_callable_fn_and_a_zero_step_for_numerical_gradient_are_refused():
    with pytest.raises(TypeError, match=r"gradcheck: fn must be callable .* got ndarray"):
        gradcheck(np.ones(2), [Tensor(np.ones(2), requires_grad=True)])
    with pytest.raises(ValueError, match=r"numerical_gradient: h must be a positive finite step"):
        numerical_gradient(np.sum, np.ones(2), h=0.0)


def test_array_inputs_are_refused_with_the_fix_and_plain_values_pass_through():
    with pytest.raises(TypeError, match=r"inputs\[1\] must be a Tensor, got ndarray; wrap it as Tensor"):
        gradcheck(lambda t, a: t * 2.0, [Tensor(np.ones(2), requires_grad=True), np.ones(2)])
    x = Tensor(np.array([0.5, 2.0]), requires_grad=True)
    report = gradcheck(lambda t, power: t ** power, [x, 3.0])
    assert report.passed and [r.index for r in report.inputs] == [0]
    assert gradgradcheck(lambda t, power: t ** power, [x, 3.0]).passed


# ---------------------------------------------------------------- hypothesis strategies


def test_gradcheck_and_gradgradcheck_accept_a_strategy_and_check_every_example():
    seen = []

    def cube(t, scale):
        seen.append(t.shape)
        return t * t * t * scale

    cases = tst.arrays(tst.shapes(1, 2)).map(lambda a: [a, 0.5])  # arrays become Tensors; 0.5 passes
    report = gradcheck(cube, cases)
    assert report.passed and len(seen) > 5
    assert gradgradcheck(cube, cases).passed


def test_gradcheck_with_a_strategy_raises_on_a_wrong_op():
    with pytest.raises(GradcheckError, match="input 0"):
        gradcheck(WrongSquare.apply, tst.arrays(tst.shapes(1, 2, min_side=2)).map(lambda a: [a]))


def test_gradcheck_with_a_strategy_restores_a_modules_state_between_examples():
    module = Drifting()
    report = gradcheck(module, tst.arrays((3,)).map(lambda a: [a]))
    assert report.passed and module.calls.item() == 0.0


# ---------------------------------------------------------------- Jupyter


def test_gradcheck_report_shows_as_an_html_table_in_jupyter():
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    x = Tensor(np.array([[0.5, -1.0, 2.0], [1.0, 1.5, 0.25]]), requires_grad=True)
    report = gradcheck(lambda a_, x_: a_.sum() + WrongSquare.apply(x_), [a, x], raise_exception=False)
    page = report._repr_html_()
    assert page.startswith("<table>") and "FAILED" in page and page.count("<tr>") == 3
    assert "<td>(2, 3)</td>" in page and "color:red\">NO<" in page and "color:green\">yes<" in page
    notes = gradgradcheck(FlatBackward.apply, [x], raise_exception=False)._repr_html_()
    assert "<p>The backward of flat_backward built no graph" in notes
