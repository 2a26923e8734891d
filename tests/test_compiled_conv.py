"""The compiled (numba) conv and pooling kernels: the Winograd path, thread counts, the Function contract.

The registry-driven checks (check_fused against the composed twins on every
path, gradcheck, gradgradcheck, the fixed protocol) run these kernels through
tests/test_kernels.py and tests/test_mutants.py, and the PyTorch cross-checks
through tests/test_conv.py and tests/test_pool.py ("fused:numba" cases). Here:
what those do not reach, i.e. the Winograd F(2x2, 3x3) path (the registry's
examples have too few channels to take it), bit-identical results for any
number of numba threads, and the kernels' signatures and flags.
"""

import contextlib
import inspect
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

numba = pytest.importorskip("numba", reason="compiled kernels need numba: pip install 'tinygrad_bn[fast]'")

import tinygrad_bn as tg  # noqa: E402
from tinygrad_bn import Tensor  # noqa: E402
from tinygrad_bn import functional as F  # noqa: E402
from tinygrad_bn.gradcheck import gradcheck, gradgradcheck  # noqa: E402
from tinygrad_bn.kernel_registry import KERNELS, fused_kernel, use_backend  # noqa: E402
from tinygrad_bn.kernels import AvgPool2dFused, ConvFused, MaxPool2dFused  # noqa: E402
from tinygrad_bn.kernels.compiled import _jit, winograd  # noqa: E402
from tinygrad_bn.kernels.compiled.conv import NumbaConvFused  # noqa: E402
from tinygrad_bn.kernels.compiled.pool import NumbaAvgPool2dFused, NumbaMaxPool2dFused  # noqa: E402
from tinygrad_bn.testing import check_fused  # noqa: E402
from tinygrad_bn.testing import strategies as tst  # noqa: E402

PAIRS = [(NumbaConvFused, ConvFused), (NumbaMaxPool2dFused, MaxPool2dFused),
         (NumbaAvgPool2dFused, AvgPool2dFused)]
# float64 against PyTorch: the two sum in different orders (and Winograd's transforms
# add a few roundings of values ~|x| |w| C), nothing more.
TORCH_RTOL, TORCH_ATOL = 1e-9, 1e-10


@contextlib.contextmanager
def winograd_everywhere():
    """Every 3x3 stride-1 one-group convolution takes the Winograd path, however few its channels."""
    previous, winograd.MIN_CHANNELS_X_FILTERS = winograd.MIN_CHANNELS_X_FILTERS, 1
    try:
        yield
    finally:
        winograd.MIN_CHANNELS_X_FILTERS = previous


@st.composite
def winograd_cases(draw, dtype: str):
    """[x, weight, bias, stride, padding, dilation, groups] of a 3x3 stride-1 convolution, any size."""
    n, c, f = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding = draw(st.sampled_from([0, 1, 2, (0, 1), (2, 0)]))
    pads = (padding, padding) if isinstance(padding, int) else padding
    h = draw(st.integers(max(1, 3 - 2 * pads[0]), 8))
    w = draw(st.integers(max(1, 3 - 2 * pads[1]), 8))
    x = draw(tst.arrays((n, c, h, w), dtype))
    weight = draw(tst.arrays((f, c, 3, 3), dtype))
    bias = draw(tst.arrays((f,), dtype))
    return [x, weight, bias, 1, padding, 1, 1]


def _conv(impl):
    return lambda x, w, b, stride, padding, dilation, groups: F.conv2d(x, w, b, stride, padding, dilation,
                                                                        groups, impl=impl)


# ---------------------------------------------------------------- the Winograd path


def test_the_benchmark_shape_takes_the_winograd_path_and_few_channels_take_im2col():
    rng = np.random.default_rng(0)
    with use_backend("numba"):
        for c, f, expected in ((64, 64, True), (3, 16, False)):
            x = Tensor(rng.standard_normal((2, c, 6, 6)).astype(np.float32), requires_grad=True)
            w = Tensor(rng.standard_normal((f, c, 3, 3)).astype(np.float32), requires_grad=True)
            assert F.conv2d(x, w, padding=1)._ctx.winograd is expected
        x = Tensor(np.zeros((1, 64, 6, 6)), requires_grad=True)
        strided = F.conv2d(x, Tensor(np.zeros((64, 64, 3, 3))), stride=2)
        assert strided._ctx.winograd is False


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_winograd_matches_composed_on_every_path(dtype):
    with winograd_everywhere(), use_backend("numba"):
        report = check_fused(_conv("composed"), _conv("fused"), winograd_cases(dtype),
                             rtol=1e-10 if dtype == "float64" else None)
    assert report.passed


@given(args=winograd_cases("float64"))
def test_winograd_gradients_match_numerical_float64(args):
    arrays, rest = args[:3], args[3:]
    inputs = [Tensor(a, requires_grad=True) for a in arrays]
    with winograd_everywhere(), use_backend("numba"):
        assert F.conv2d(*inputs, *rest)._ctx.winograd
        gradcheck(lambda x, w, b: F.conv2d(x, w, b, *rest), inputs)
        gradgradcheck(lambda x, w, b: F.conv2d(x, w, b, *rest), inputs, atol=1e-4)


@given(args=winograd_cases("float64"))
def test_winograd_matches_pytorch_values_and_gradients(args):
    torch = pytest.importorskip("torch")
    x, w, b, stride, padding, dilation, groups = args
    ours = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    with winograd_everywhere(), use_backend("numba"):
        out = F.conv2d(*ours, stride, padding, dilation, groups)
        assert out._ctx.winograd
    tout = torch.nn.functional.conv2d(*theirs, stride, padding, dilation, groups)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=TORCH_RTOL, atol=TORCH_ATOL)
    cot = np.random.default_rng(1).standard_normal(out.shape)
    grads = tg.grad(out, ours, Tensor(cot))
    tgrads = torch.autograd.grad(tout, theirs, torch.tensor(cot))
    for g, tg_ in zip(grads, tgrads):
        np.testing.assert_allclose(g.data, tg_.numpy(), rtol=TORCH_RTOL, atol=TORCH_ATOL)


# ---------------------------------------------------------------- thread counts

# Large enough for several tasks per thread; every loop of both conv paths and both pools.
THREAD_CASES = {
    "conv im2col": lambda x, w, b: F.conv2d(x[:, :3], w[:, :3], b, stride=(1, 2), padding=(2, 1),
                                            dilation=(1, 2)),
    "conv groups": lambda x, w, b: F.conv2d(x, w[:, :2], b, padding=1, groups=2),
    "conv winograd": lambda x, w, b: F.conv2d(x, w[:, :, :3, :3], b, padding=1),
    "conv1d": lambda x, w, b: F.conv1d(x[:, :, 0], w[:, :, 0], b, padding=1, stride=2),
    "max_pool2d": lambda x, w, b: F.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True) * b[0],
    "avg_pool2d": lambda x, w, b: F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False) * b[0],
}


def _thread_inputs(dtype):
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal(s).astype(dtype) for s in ((6, 4, 13, 11), (4, 4, 3, 3), (4,))]
    arrays[0][:, :, 2:5, 3] = 1.5  # ties inside windows
    return arrays


def _evaluate(name, dtype):
    """{quantity: array} of one case (Winograd for every 3x3 stride-1 one): output and input gradients."""
    arrays = _thread_inputs(dtype)
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    with winograd_everywhere(), use_backend("numba"):
        out = THREAD_CASES[name](*tensors)
        cot = np.random.default_rng(3).standard_normal(out.shape).astype(dtype)
        grads = tg.grad(out, tensors, Tensor(cot), allow_unused=True)
    result = {"output": out.data}
    result.update({f"grad[{i}]": g.data for i, g in enumerate(grads) if g is not None})
    return result


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(THREAD_CASES))
def test_results_are_identical_for_every_thread_count_and_path(name, dtype):
    with _jit.force_threads(False):
        serial = _evaluate(name, dtype)
    default = numba.get_num_threads()
    try:
        for threads in range(1, min(numba.config.NUMBA_NUM_THREADS, 4) + 1):
            numba.set_num_threads(threads)
            with _jit.force_threads(True):
                threaded = _evaluate(name, dtype)
            for key in serial:
                assert np.array_equal(serial[key], threaded[key]), f"{name} {key}: {threads} thread(s)"
    finally:
        numba.set_num_threads(default)


def _digest() -> str:
    """sha256 of every thread case's results."""
    import hashlib

    results = [_evaluate(name, dtype) for name in sorted(THREAD_CASES) for dtype in ("float32", "float64")]
    return hashlib.sha256(b"".join(r[k].tobytes() for r in results for k in sorted(r))).hexdigest()


def test_results_are_identical_with_three_threads_in_a_fresh_process():
    # Three threads split the tasks unevenly; a subprocess, because numba fixes its
    # largest thread count when it first launches threads.
    code = ("import numba\nfrom tinygrad_bn.kernels.compiled import _jit\n"
            "import tests.test_compiled_conv as t\nprint(numba.get_num_threads())\n"
            "with _jit.force_threads(True):\n    print(t._digest())\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, NUMBA_NUM_THREADS="3")
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")])
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root)
    assert result.returncode == 0, result.stderr
    with _jit.force_threads(False):
        serial = _digest()
    assert result.stdout.split() == ["3", serial]


# ---------------------------------------------------------------- the Function contract


@pytest.mark.parametrize("ours, theirs", PAIRS)
def test_compiled_kernel_has_the_numpy_kernels_signature_and_flags(ours, theirs):
    assert inspect.signature(ours.forward) == inspect.signature(theirs.forward)
    assert ours.fused and ours.backend == "numba" and theirs.backend == "numpy"
    assert ours.name == theirs.name  # the same op, whichever backend computes it


@pytest.mark.parametrize("name, kernel", [("conv2d", NumbaConvFused), ("conv1d", NumbaConvFused),
                                          ("max_pool2d", NumbaMaxPool2dFused),
                                          ("avg_pool2d", NumbaAvgPool2dFused)])
def test_the_numba_backend_runs_the_compiled_kernel_and_numpy_the_reference(name, kernel):
    with use_backend("numba"):
        assert fused_kernel(name) is kernel and KERNELS[name].implementation("numba") is kernel
    with use_backend("numpy"):
        assert fused_kernel(name) is KERNELS[name].kernel


@pytest.mark.parametrize("winograd_path", [False, True])
def test_only_the_weight_gradient_when_x_needs_none(winograd_path):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 5, 6))
    w, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    results = []
    for backend in ("numba", "numpy"):
        weight, bias = Tensor(w, requires_grad=True), Tensor(b, requires_grad=True)
        with use_backend(backend), (winograd_everywhere() if winograd_path else contextlib.nullcontext()):
            out = F.conv2d(Tensor(x), weight, bias, padding=1)
            assert backend == "numpy" or out._ctx.winograd is winograd_path
            cot = np.arange(out.numel(), dtype=np.float64).reshape(out.shape)
            results.append([g.data for g in tg.grad(out, [weight, bias], [Tensor(cot)])])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


@given(x=tst.arrays((2, 2, 6, 5), "float64").map(lambda a: np.floor(a * 2)), kernel=st.integers(1, 3),
       stride=st.integers(1, 3), dilation=st.integers(1, 2), ceil_mode=st.booleans())
def test_max_pool_indices_and_ties_are_the_numpy_kernels(x, kernel, stride, dilation, ceil_mode):
    results = []
    for backend in ("numba", "numpy"):
        t = Tensor(x, requires_grad=True)
        with use_backend(backend):
            out, index = F.max_pool2d(t, kernel, stride, kernel // 2, dilation, ceil_mode,
                                      return_indices=True)
            out.backward(Tensor(np.arange(out.numel(), dtype=np.float64).reshape(out.shape)))
        results.append((out.data, index.data, t.grad.data))
    for ours, theirs in zip(*results):
        assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)


BAD_CALLS = [
    lambda: F.conv2d(Tensor(np.zeros((1, 3, 5, 5))), Tensor(np.zeros((2, 4, 3, 3)))),
    lambda: F.conv2d(Tensor(np.zeros((1, 3, 5, 5))), Tensor(np.zeros((2, 1, 3, 3))), groups=2),
    lambda: F.conv2d(Tensor(np.zeros((1, 1, 2, 5))), Tensor(np.zeros((1, 1, 3, 3)))),
    lambda: F.conv2d(Tensor(np.zeros((1, 1, 5, 5))), Tensor(np.zeros((1, 1, 3, 3))), stride=0),
    lambda: F.conv2d(Tensor(np.zeros((5, 5))), Tensor(np.zeros((1, 1, 3, 3)))),
    lambda: F.max_pool2d(Tensor(np.zeros((1, 1, 4, 4))), 2, padding=2),
    lambda: F.max_pool2d(Tensor(np.zeros((1, 1, 4, 4))), 2, dilation=0),
    lambda: F.avg_pool2d(Tensor(np.zeros((1, 1, 1, 1))), 2),
]


@pytest.mark.parametrize("call", BAD_CALLS)
def test_bad_input_gets_the_same_clear_error_on_both_backends(call):
    messages = []
    for backend in ("numba", "numpy"):
        with use_backend(backend), pytest.raises((ValueError, TypeError)) as caught:
            call()
        messages.append((type(caught.value), str(caught.value)))
    assert messages[0] == messages[1]
    assert messages[0][1].split(":")[0] in ("conv2d", "max_pool2d", "avg_pool2d")  # names the op
