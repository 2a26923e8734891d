"""conv1d, conv2d, unfold and fold: PyTorch parity (values, gradients, double backward), errors, modules.

The fused kernels against their composed twins and numerical gradients are
checked by tests/test_kernels.py (they are registered); here both impls (the fused
one on every backend: numpy, and numba when installed) are run against PyTorch
over hypothesis-drawn shapes, strides, paddings, dilations and groups.
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_bn as tg
from tinygrad_bn import Tensor, nn
from tinygrad_bn import functional as F
from tinygrad_bn.kernel_registry import KERNELS, numba_available, use_backend
from tinygrad_bn.ops import PRIMITIVES
from tinygrad_bn.testing import check_fused
from tinygrad_bn.testing import conv_strategies as cst

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")  # torch's, about its copy

IMPLS = ["composed", "fused"]
# The cases of the `impl` fixture: the fused side on every backend that runs here.
IMPL_CASES = ["composed", "fused:numpy"] + (["fused:numba"] if numba_available() else [])


@pytest.fixture(scope="module")  # module scope: hypothesis refuses function-scoped fixtures
def impl(request):
    """The impl= argument of a case; a 'fused:<backend>' case runs on that kernel backend."""
    name, _, backend = request.param.partition(":")
    if not backend:
        yield name
        return
    with use_backend(backend):
        yield name

# float64 on both sides: the two libraries sum in different orders, nothing more.
TORCH_RTOL, TORCH_ATOL = 1e-9, 1e-10


def compare_with_torch(ours, theirs, arrays, impl, double_backward=True, seed=0):
    """Run ours(*Tensors, impl=impl) and theirs(*torch tensors) on the same float64 arrays.

    Compares the output, every input's gradient for a random cotangent, and (when
    double_backward) the gradient of a random projection of those gradients with
    respect to every input and to the cotangent itself.
    """
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    xs = [Tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, tout = ours(*xs, impl=impl), theirs(*ts)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=TORCH_RTOL, atol=TORCH_ATOL)
    cot = rng.standard_normal(out.shape)
    g, tg_ = Tensor(cot, requires_grad=True), torch.tensor(cot, requires_grad=True)
    grads = tg.grad(out, xs, g, create_graph=double_backward, allow_unused=True)
    tgrads = torch.autograd.grad(tout, ts, tg_, create_graph=double_backward, allow_unused=True)
    for ours_g, their_g in zip(grads, tgrads):
        expected = np.zeros_like(ours_g.data) if their_g is None else their_g.detach().numpy()
        np.testing.assert_allclose(ours_g.data, expected, rtol=TORCH_RTOL, atol=TORCH_ATOL)
    if not double_backward:
        return
    proj = [rng.standard_normal(a.shape) for a in arrays]
    total = sum(((gi * Tensor(p)).sum() for gi, p in zip(grads, proj)), Tensor(np.zeros(())))
    ttotal = sum((tgi * torch.tensor(p)).sum() for tgi, p in zip(tgrads, proj) if tgi is not None)
    second = tg.grad(total, xs + [g], allow_unused=True)
    tsecond = torch.autograd.grad(ttotal, ts + [tg_], allow_unused=True)
    for ours_h, their_h, like in zip(second, tsecond, arrays + [cot]):
        got = np.zeros_like(like) if ours_h is None else ours_h.data
        expected = np.zeros_like(like) if their_h is None else their_h.detach().numpy()
        np.testing.assert_allclose(got, expected, rtol=TORCH_RTOL, atol=TORCH_ATOL)


# ---------------------------------------------------------------- PyTorch parity


@pytest.mark.parametrize("impl", IMPL_CASES, indirect=True)
@given(args=cst.conv_args("float64", 2))
def test_conv2d_matches_pytorch_values_gradients_and_double_backward(impl, args):
    torch = pytest.importorskip("torch")
    x, w, b, stride, padding, dilation, groups = args
    compare_with_torch(
        lambda x, w, b, impl: F.conv2d(x, w, b, stride, padding, dilation, groups, impl=impl),
        lambda x, w, b: torch.nn.functional.conv2d(x, w, b, stride, padding, dilation, groups),
        [x, w, b], impl)


@pytest.mark.parametrize("impl", IMPL_CASES, indirect=True)
@given(args=cst.conv_args("float64", 1))
def test_conv1d_matches_pytorch_values_gradients_and_double_backward(impl, args):
    torch = pytest.importorskip("torch")
    x, w, b, stride, padding, dilation, groups = args
    compare_with_torch(
        lambda x, w, b, impl: F.conv1d(x, w, b, stride, padding, dilation, groups, impl=impl),
        lambda x, w, b: torch.nn.functional.conv1d(x, w, b, stride, padding, dilation, groups),
        [x, w, b], impl)


@pytest.mark.parametrize("impl", IMPL_CASES, indirect=True)
def test_conv2d_without_bias_and_unbatched_matches_pytorch(impl):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((3, 6, 5)), rng.standard_normal((4, 3, 2, 3))
    compare_with_torch(lambda x, w, impl: F.conv2d(x, w, None, (2, 1), (1, 2), impl=impl),
                       lambda x, w: torch.nn.functional.conv2d(x, w, None, (2, 1), (1, 2)), [x, w], impl)


@pytest.mark.parametrize("impl", IMPL_CASES, indirect=True)
def test_same_padding_with_an_even_kernel_puts_the_extra_zero_at_the_end_as_pytorch(impl):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((1, 2, 5, 6)), rng.standard_normal((3, 2, 2, 4))
    out = F.conv2d(Tensor(x), Tensor(w), padding="same", impl=impl)
    assert out.shape == (1, 3, 5, 6)
    expected = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), padding="same")
    np.testing.assert_allclose(out.data, expected.numpy(), rtol=1e-12)


@pytest.mark.parametrize("impl", IMPL_CASES, indirect=True)
@given(args=cst.unfold_args("float64"))
def test_unfold_matches_pytorch(impl, args):
    torch = pytest.importorskip("torch")
    x, kernel, dilation, padding, stride = args
    compare_with_torch(lambda x, impl: F.unfold(x, kernel, dilation, padding, stride, impl=impl),
                       lambda x: torch.nn.functional.unfold(x, kernel, dilation, padding, stride), [x], impl)


@pytest.mark.parametrize("impl", IMPL_CASES, indirect=True)
@given(args=cst.fold_args("float64"))
def test_fold_matches_pytorch(impl, args):
    torch = pytest.importorskip("torch")
    cols, size, kernel, dilation, padding, stride = args
    compare_with_torch(lambda c, impl: F.fold(c, size, kernel, dilation, padding, stride, impl=impl),
                       lambda c: torch.nn.functional.fold(c, size, kernel, dilation, padding, stride),
                       [cols], impl)


# ---------------------------------------------------------------- properties without PyTorch

NEW_KERNELS = ["conv2d", "conv1d", "unfold", "fold", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
               "group_norm", "instance_norm"]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", NEW_KERNELS)
def test_the_numpy_backward_of_each_kernel_matches_its_composed_twin(name, dtype):
    # check_fused's default first-order comparison runs with create_graph=True, i.e. through
    # the kernels' differentiable backward; without double backward it takes the numpy one,
    # the path training runs.
    entry = KERNELS[name]
    report = check_fused(entry.composed, entry.fused, entry.strategy(dtype), double_backward=False,
                         rtol=1e-10 if dtype == "float64" else None)
    assert report.passed




@pytest.mark.parametrize("impl", IMPL_CASES, indirect=True)
@given(args=cst.unfold_args("float64"), data=st.data())
def test_fold_is_the_adjoint_of_unfold(impl, args, data):
    x, kernel, dilation, padding, stride = args
    cols = F.unfold(Tensor(x), kernel, dilation, padding, stride, impl=impl)
    y = np.random.default_rng(data.draw(st.integers(0, 100))).standard_normal(cols.shape)
    back = F.fold(Tensor(y), x.shape[2:], kernel, dilation, padding, stride, impl=impl)
    # <unfold(x), y> = <x, fold(y)>: col2im adds back exactly what im2col copied out
    assert math.isclose(float((cols.data * y).sum()), float((x * back.data).sum()),
                        rel_tol=1e-12, abs_tol=1e-12)


def test_conv2d_matches_a_direct_loop_over_output_positions():
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((2, 4, 6, 5)), rng.standard_normal((6, 2, 3, 2)), rng.standard_normal(6)
    stride, pad, dil, groups = (2, 1), (1, 2), (1, 2), 2
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    oh = (6 + 2 * pad[0] - dil[0] * 2 - 1) // stride[0] + 1
    ow = (5 + 2 * pad[1] - dil[1] * 1 - 1) // stride[1] + 1
    expected = np.zeros((2, 6, oh, ow))
    for f in range(6):
        g = f // 3  # 3 filters per group, 2 channels per group
        for p in range(oh):
            for q in range(ow):
                window = xp[:, 2 * g:2 * g + 2, p * stride[0]:p * stride[0] + 2 * dil[0] + 1:dil[0],
                            q * stride[1]:q * stride[1] + dil[1] + 1:dil[1]]
                expected[:, f, p, q] = (window * w[f]).sum(axis=(1, 2, 3)) + b[f]
    for impl in IMPLS:
        out = F.conv2d(Tensor(x), Tensor(w), Tensor(b), stride, pad, dil, groups, impl=impl)
        np.testing.assert_allclose(out.data, expected, rtol=1e-12)


def test_the_composed_conv_graph_is_primitives_only_and_the_fused_one_is_one_node():
    rng = np.random.default_rng(6)
    x = Tensor(rng.standard_normal((2, 3, 5, 5)), requires_grad=True)
    w = Tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    b = Tensor(rng.standard_normal(4), requires_grad=True)
    seen, stack = set(), [F.conv2d(x, w, b, padding=1, impl="composed")._ctx]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        assert node.fn.name in PRIMITIVES and not node.fn.fused
        stack.extend(p._ctx for p in node.parents)
    assert len(seen) >= 5  # pad, permute, reshape, getitem (the gather), matmul, ... bias add
    fused = F.conv2d(x, w, b, padding=1, impl="fused")._ctx
    assert fused.fn.fused and [p for p in fused.parents] == [x, w, b]


def test_float32_fused_conv_stays_float32_and_close_to_float64():
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((2, 3, 8, 8)), rng.standard_normal((5, 3, 3, 3))
    x32 = Tensor(x.astype(np.float32), requires_grad=True)
    w32 = Tensor(w.astype(np.float32), requires_grad=True)
    out = F.conv2d(x32, w32, padding=1)
    out.sum().backward()
    assert out.dtype == x32.grad.dtype == w32.grad.dtype == np.float32
    reference = F.conv2d(Tensor(x), Tensor(w), padding=1, impl="composed").data
    assert np.max(np.abs(out.data - reference)) < 1e-5 * np.max(np.abs(reference))


# ---------------------------------------------------------------- bad input


def _x(*shape):
    return Tensor(np.zeros(shape))


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.conv2d(_x(1, 3, 5, 5), _x(2, 4, 3, 3)), ValueError,
     r"weight of shape \(2, 4, 3, 3\) expects 4 input channels .*input of shape \(1, 3, 5, 5\) has 3"),
    (lambda: F.conv2d(_x(1, 4, 5, 5), _x(3, 2, 3, 3), groups=2), ValueError,
     r"groups=2 must divide out_channels, but weight of shape \(3, 2, 3, 3\) has 3 filters"),
    (lambda: F.conv2d(_x(1, 3, 5, 5), _x(2, 1, 3, 3), groups=2), ValueError,
     r"groups=2 must divide the input's 3 channels"),
    (lambda: F.conv2d(_x(1, 3, 5, 5), _x(2, 3, 3, 3), groups=0), ValueError,
     r"groups must be a positive int, got 0"),
    (lambda: F.conv2d(_x(1, 1, 2, 5), _x(1, 1, 3, 3)), ValueError,
     r"kernel size 3, larger than the padded input size 2 \(input 2 \+ padding 0 \+ 0\)"),
    (lambda: F.conv2d(_x(1, 1, 4, 4), _x(1, 1, 3, 3), dilation=2), ValueError,
     r"kernel size 3 dilated by 2 spans 5, larger than the padded input size 4"),
    (lambda: F.conv2d(_x(1, 1, 5, 5), _x(1, 1, 3, 3), stride=0), ValueError,
     r"stride must be a positive int or a tuple of 2 positive ints, got 0"),
    (lambda: F.conv2d(_x(1, 1, 5, 5), _x(1, 1, 3, 3), dilation=(1, -1)), ValueError,
     r"dilation must be a positive int or a tuple of 2 positive ints, got \(1, -1\)"),
    (lambda: F.conv2d(_x(1, 1, 5, 5), _x(1, 1, 3, 3), padding=-1), ValueError,
     r"padding must be a non-negative int or a tuple of 2 non-negative ints, got -1"),
    (lambda: F.conv2d(_x(1, 1, 5, 5), _x(1, 1, 3, 3), padding="full"), ValueError,
     r"padding must be 'same', 'valid', an int or a tuple of 2 ints, got 'full'"),
    (lambda: F.conv2d(_x(1, 1, 5, 5), _x(1, 1, 3, 3), stride=2, padding="same"), ValueError,
     r"padding='same' needs stride 1"),
    (lambda: F.conv2d(_x(5, 5), _x(1, 1, 3, 3)), ValueError,
     r"conv2d: expected input of 3 or 4 dims \(\(N, C, H, W\) or unbatched \(C, H, W\)\), "
     r"got shape \(5, 5\)"),
    (lambda: F.conv2d(_x(1, 1, 5, 5), _x(1, 3, 3)), ValueError,
     r"weight must have 4 dims .* got shape \(1, 3, 3\)"),
    (lambda: F.conv2d(_x(1, 1, 5, 5), _x(2, 1, 3, 3), _x(3)), ValueError,
     r"bias has shape \(3,\), expected \(2,\)"),
    (lambda: F.conv2d(_x(1, 1, 5, 5), Tensor(np.zeros((1, 1, 3, 3), np.float32))), TypeError,
     r"input has dtype float64 and weight float32; they must match"),
    (lambda: F.conv1d(_x(1, 2, 5), _x(1, 3, 2)), ValueError,
     r"conv1d: weight of shape \(1, 3, 2\) expects 3"),
    (lambda: F.conv2d(_x(1, 1, 5, 5), _x(1, 1, 3, 3), impl="fast"), ValueError,
     r"impl must be 'composed' or"),
    (lambda: F.unfold(_x(1, 1, 2, 2), 3), ValueError, r"unfold: kernel size 3, larger than the padded input"),
    (lambda: F.fold(_x(1, 5, 4), (3, 3), 2), ValueError, r"has 5 rows, expected a multiple of kernel_size"),
    (lambda: F.fold(_x(1, 4, 5), (3, 3), 2), ValueError,
     r"has 5 columns, expected 2 x 2 = 4 window positions"),
])
def test_bad_input_gets_an_error_naming_the_argument_what_it_got_and_what_was_expected(call, error, message):
    with pytest.raises(error, match=message):
        call()


# ---------------------------------------------------------------- modules


def test_conv2d_module_initialises_like_pytorch_from_its_rng():
    layer = nn.Conv2d(6, 8, (3, 2), groups=2, rng=0)
    fan_in = 3 * 3 * 2
    bound = 1 / math.sqrt(fan_in)  # kaiming_uniform_(a=sqrt(5)) on (8, 3, 3, 2)
    assert layer.weight.shape == (8, 3, 3, 2) and layer.bias.shape == (8,)
    assert layer.weight.dtype == np.float32
    w = layer.weight.data
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.25 * bound / math.sqrt(3)  # a uniform's std
    assert np.abs(layer.bias.data).max() <= bound
    again = nn.Conv2d(6, 8, (3, 2), groups=2, rng=0)
    assert np.array_equal(again.weight.data, w) and np.array_equal(again.bias.data, layer.bias.data)
    tg.manual_seed(1)
    a = nn.Conv2d(6, 8, 3).weight.data
    tg.manual_seed(1)
    assert np.array_equal(nn.Conv2d(6, 8, 3).weight.data, a)


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("impl", IMPL_CASES, indirect=True)
def test_conv2d_module_matches_pytorch_with_its_weights(padding_mode, impl):
    torch = pytest.importorskip("torch")
    layer = nn.Conv2d(4, 6, 3, stride=(1, 2), padding=(1, 2), dilation=(2, 1), groups=2,
                      padding_mode=padding_mode, dtype=np.float64, rng=2, impl=impl)
    theirs = torch.nn.Conv2d(4, 6, 3, stride=(1, 2), padding=(1, 2), dilation=(2, 1), groups=2,
                             padding_mode=padding_mode, dtype=torch.float64)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(layer.weight.data))
        theirs.bias.copy_(torch.tensor(layer.bias.data))
    x = np.random.default_rng(8).standard_normal((2, 4, 6, 7))
    out, expected = layer(Tensor(x)), theirs(torch.tensor(x))
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-12, atol=1e-13)
    out.sum().backward()
    expected.sum().backward()
    np.testing.assert_allclose(layer.weight.grad.data, theirs.weight.grad.numpy(), rtol=1e-12)


def test_conv1d_module_same_padding_keeps_the_length_and_says_what_it_is():
    layer = nn.Conv1d(2, 3, 4, padding="same", bias=False, rng=0)
    assert layer(Tensor(np.ones((1, 2, 9), np.float32))).shape == (1, 3, 9) and layer.bias is None
    assert "Conv1d(2, 3, kernel_size=(4,), stride=(1,), padding='same', bias=False" in repr(layer)


@pytest.mark.parametrize("kwargs, message", [
    (dict(in_channels=3, out_channels=4, kernel_size=3, groups=2), r"groups=2 must divide in_channels=3"),
    (dict(in_channels=2, out_channels=4, kernel_size=0), r"kernel_size must be a positive int"),
    (dict(in_channels=0, out_channels=4, kernel_size=3), r"in_channels must be a positive int, got 0"),
    (dict(in_channels=2, out_channels=4, kernel_size=3, padding_mode="mirror"),
     r"padding_mode must be one of"),
    (dict(in_channels=2, out_channels=4, kernel_size=3, stride=2, padding="same"), r"'same' needs stride 1"),
])
def test_conv2d_module_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        nn.Conv2d(**kwargs)
