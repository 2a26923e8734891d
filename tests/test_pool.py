"""max_pool2d, avg_pool2d, adaptive_avg_pool2d: PyTorch parity, tie routing, edge windows, modules, errors."""

import numpy as np
import pytest
import test_conv
from hypothesis import given
from hypothesis import strategies as st
from test_conv import IMPL_CASES, compare_with_torch

from tinygrad_bn import Tensor, nn
from tinygrad_bn import functional as F
from tinygrad_bn.functional.pool import empty_windows, pool_window
from tinygrad_bn.kernel_registry import use_backend
from tinygrad_bn.testing import conv_strategies as cst

impl = test_conv.impl  # the fixture: "composed", or "fused" on each backend


@st.composite
def max_pool_cases(draw, ties: bool):
    """max_pool2d arguments; with ties, small integers, so most windows hold equal maxima."""
    x, kernel, stride, padding, dilation, ceil_mode = draw(cst.max_pool_args("float64"))
    if ties:
        x = np.floor(x * 10 % 3)
    return x, kernel, stride, padding, dilation, ceil_mode


@pytest.mark.parametrize("impl", IMPL_CASES, indirect=True)
@given(case=max_pool_cases(ties=False))
def test_max_pool2d_matches_pytorch_values_gradients_and_double_backward(impl, case):
    torch = pytest.importorskip("torch")
    x, kernel, stride, padding, dilation, ceil_mode = case
    compare_with_torch(
        lambda x, impl: F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode, impl=impl),
        lambda x: torch.nn.functional.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode), [x], impl)


@pytest.mark.parametrize("impl", IMPL_CASES, indirect=True)
@given(case=max_pool_cases(ties=True))
def test_max_pool2d_routes_ties_and_returns_indices_as_pytorch(impl, case):
    torch = pytest.importorskip("torch")
    x, kernel, stride, padding, dilation, ceil_mode = case
    out, indices = F.max_pool2d(Tensor(x, requires_grad=True), kernel, stride, padding, dilation, ceil_mode,
                                return_indices=True, impl=impl)
    tout, tindices = torch.nn.functional.max_pool2d(torch.tensor(x), kernel, stride, padding, dilation,
                                                    ceil_mode, return_indices=True)
    assert np.array_equal(out.data, tout.numpy())
    assert indices.dtype == np.int64 and np.array_equal(indices.data, tindices.numpy())
    compare_with_torch(
        lambda x, impl: F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode, impl=impl),
        lambda x: torch.nn.functional.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode), [x], impl,
        double_backward=False)


@pytest.mark.parametrize("impl", IMPL_CASES, indirect=True)
def test_a_tied_window_sends_its_whole_gradient_to_the_first_maximum_in_scan_order(impl):
    x = Tensor(np.array([[[[1.0, 5.0, 5.0], [5.0, 5.0, 0.0]]]]), requires_grad=True)
    out = F.max_pool2d(x, 2, stride=1, impl=impl)  # windows [[1, 5], [5, 5]] and [[5, 5], [5, 0]]
    out.backward(Tensor(np.array([[[[1.0, 10.0]]]])))
    # window 1's first 5 (row 0, col 1) and window 2's first 5 (row 0, col 1): the same element
    assert out.data.tolist() == [[[[5.0, 5.0]]]]
    assert x.grad.data.tolist() == [[[[0.0, 11.0, 0.0], [0.0, 0.0, 0.0]]]]


@pytest.mark.parametrize("impl", IMPL_CASES, indirect=True)
def test_nan_and_minus_inf_windows_choose_what_pytorch_chooses(impl):
    torch = pytest.importorskip("torch")
    x = np.array([[[[1.0, np.nan, 5.0, np.nan], [7.0, 2.0, np.nan, -np.inf], [-np.inf, -np.inf, 3.0, 3.0]]]])
    out, indices = F.max_pool2d(Tensor(x), 2, 1, 1, return_indices=True, impl=impl)
    tout, tindices = torch.nn.functional.max_pool2d(torch.tensor(x), 2, 1, 1, return_indices=True)
    np.testing.assert_array_equal(out.data, tout.numpy())  # nan == nan here
    np.testing.assert_array_equal(indices.data, tindices.numpy())
    compare_with_torch(lambda x, impl: F.max_pool2d(x, 2, 1, 1, impl=impl),
                       lambda x: torch.nn.functional.max_pool2d(x, 2, 1, 1), [np.nan_to_num(x, nan=9.0)],
                       impl)


@pytest.mark.parametrize("impl", IMPL_CASES, indirect=True)
def test_a_window_holding_no_input_is_minus_inf_and_passes_no_gradient(impl):
    # kernel 2 dilated by 2 reads rows -1 and 1 of a 1-row input: nothing. PyTorch gives -inf too
    # (and its backward writes outside the input, so it is not run here).
    assert empty_windows(pool_window("t", (1, 3), (2, 1), 1, (1, 0), (2, 1), False)) is not None
    x = Tensor(np.arange(3.0).reshape(1, 1, 1, 3), requires_grad=True)
    out = F.max_pool2d(x, (2, 1), 1, (1, 0), (2, 1), impl=impl)
    assert np.all(out.data == -np.inf)
    out.backward(Tensor(np.ones(out.shape)))
    assert np.all(x.grad.data == 0)


@pytest.mark.parametrize("impl", IMPL_CASES, indirect=True)
@given(args=cst.avg_pool_args("float64"), divisor=st.sampled_from([None, None, 1, 5]))
def test_avg_pool2d_matches_pytorch_values_gradients_and_double_backward(impl, args, divisor):
    torch = pytest.importorskip("torch")
    x, kernel, stride, padding, ceil_mode, count_include_pad = args
    compare_with_torch(
        lambda x, impl: F.avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor,
                                     impl=impl),
        lambda x: torch.nn.functional.avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad,
                                                 divisor), [x], impl)


@pytest.mark.parametrize("impl", IMPL_CASES, indirect=True)
@given(args=cst.adaptive_avg_pool_args("float64"), keep=st.sampled_from([None, 0, 1]))
def test_adaptive_avg_pool2d_matches_pytorch_values_gradients_and_double_backward(impl, args, keep):
    torch = pytest.importorskip("torch")
    x, size = args
    size = tuple(None if i == keep else s for i, s in enumerate(size))  # None keeps that input size
    compare_with_torch(lambda x, impl: F.adaptive_avg_pool2d(x, size, impl=impl),
                       lambda x: torch.nn.functional.adaptive_avg_pool2d(x, size), [x], impl)


@pytest.mark.parametrize("impl", IMPL_CASES, indirect=True)
def test_pooling_takes_unbatched_input(impl):
    x = Tensor(np.arange(32.0).reshape(2, 4, 4))
    assert F.max_pool2d(x, 2, impl=impl).data.tolist() == [[[5.0, 7.0], [13.0, 15.0]], [[21.0, 23.0],
                                                                                         [29.0, 31.0]]]
    assert F.avg_pool2d(x, 2, impl=impl).shape == F.adaptive_avg_pool2d(x, 2, impl=impl).shape == (2, 2, 2)
    np.testing.assert_allclose(F.avg_pool2d(x, 2, impl=impl).data,
                               F.adaptive_avg_pool2d(x, 2, impl=impl).data)


@given(args=cst.max_pool_args("float32"))
def test_float32_max_pooling_fused_and_composed_pick_the_same_elements(args):
    x, kernel, stride, padding, dilation, ceil_mode = args
    composed = F.max_pool2d(Tensor(x), kernel, stride, padding, dilation, ceil_mode, impl="composed")
    for case in IMPL_CASES[1:]:
        with use_backend(case.partition(":")[2]):
            fused = F.max_pool2d(Tensor(x), kernel, stride, padding, dilation, ceil_mode, impl="fused")
        assert fused.dtype == composed.dtype == np.float32 and np.array_equal(fused.data, composed.data)


# ---------------------------------------------------------------- modules and errors


def test_pool_modules_call_the_functional_ops_with_their_arguments():
    x = Tensor(np.random.default_rng(0).standard_normal((2, 3, 7, 7)))
    out, indices = nn.MaxPool2d(3, 2, 1, return_indices=True, ceil_mode=True)(x)
    expected, expected_indices = F.max_pool2d(x, 3, 2, 1, ceil_mode=True, return_indices=True,
                                              impl="composed")
    assert np.array_equal(out.data, expected.data) and np.array_equal(indices.data, expected_indices.data)
    avg = nn.AvgPool2d(2, 1, 1, count_include_pad=False, impl="composed")(x)
    np.testing.assert_allclose(avg.data, F.avg_pool2d(x, 2, 1, 1, count_include_pad=False).data)
    assert nn.AdaptiveAvgPool2d((1, None))(x).shape == (2, 3, 1, 7)
    assert "kernel_size=3, stride=2" in repr(nn.MaxPool2d(3, 2))


def _x(*shape):
    return Tensor(np.zeros(shape))


@pytest.mark.parametrize("call, message", [
    (lambda: F.max_pool2d(_x(1, 1, 4, 4), 2, padding=2),
     r"padding \(2, 2\) must be at most half of kernel_size"),
    (lambda: F.max_pool2d(_x(1, 1, 1, 4), 3, padding=1, dilation=2),
     r"kernel size 3 dilated by 2 spans 5, larger than the padded input size 3"),
    (lambda: F.max_pool2d(_x(1, 1, 4, 4), 2, stride=0), r"stride must be a positive int .*got 0"),
    (lambda: F.max_pool2d(_x(1, 1, 4, 4), 2, dilation=0), r"dilation must be a positive int .*got 0"),
    (lambda: F.max_pool2d(_x(4, 4), 2), r"expected input of 3 or 4 dims .*got shape \(4, 4\)"),
    (lambda: F.avg_pool2d(_x(1, 1, 1, 1), 2),
     r"avg_pool2d: kernel size 2, larger than the padded input size 1"),
    (lambda: F.avg_pool2d(_x(1, 1, 4, 4), 2, divisor_override=0), r"divisor_override must be a positive int"),
    (lambda: F.adaptive_avg_pool2d(_x(1, 1, 4, 4), (2, 0)), r"output_size must be a positive int .*\(2, 0\)"),
    (lambda: F.adaptive_avg_pool2d(_x(1, 1, 4, 4), (1, 2, 3)), r"output_size must be an int or a pair"),
])
def test_bad_pooling_arguments_get_an_error_naming_them(call, message):
    with pytest.raises(ValueError, match=message):
        call()
