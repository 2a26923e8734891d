"""Every registered fused kernel against its composed twin and numerical gradients.

The tests loop over `kernel_registry.KERNELS`: a kernel registered anywhere gets
every check here, on every available backend, with its own hypothesis strategy.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_bn import Function, Tensor
from tinygrad_bn import functional as F
from tinygrad_bn.gradcheck import GradcheckError, gradcheck, gradgradcheck
from tinygrad_bn.kernel_registry import (
    BACKENDS,
    KERNELS,
    FusedKernel,
    check_impl,
    fused_kernel,
    numba_available,
    register_kernel,
    unregister_kernel,
    use_backend,
)
from tinygrad_bn.testing import check_fused
from tinygrad_bn.testing import strategies as tst
from tinygrad_bn.testing.kernels import (
    GRADGRAD_ATOL,
    bound,
    check_kernel_on,
    check_kernel_property,
    split_arguments,
)

NO_NUMBA = pytest.mark.skipif(not numba_available(),
                              reason="numba is not installed: pip install 'tinygrad_bn[fast]'")


def _case(name: str, backend: str) -> object:
    """(name, backend) as a test parameter; a compiled backend skips, saying why, without numba."""
    return pytest.param(name, backend, id=f"{name}-{backend}", marks=[NO_NUMBA] if backend != "numpy" else [])


# Every kernel on numpy, and on each compiled backend it has (skipped, not dropped, when
# that backend cannot load here): CI with the [all] extras runs both.
CASES = [_case(name, backend) for name in sorted(KERNELS) for backend in BACKENDS
         if backend == "numpy" or backend in KERNELS[name].backends]


@pytest.mark.parametrize("name, backend", CASES)
def test_fused_matches_composed_float64(name, backend):
    assert check_kernel_property(name, "float64", backend, rtol=1e-10).passed


@pytest.mark.parametrize("name, backend", CASES)
def test_fused_matches_composed_float32_judged_against_float64_truth(name, backend):
    # Below float64 check_fused judges each quantity against the composed twin evaluated in
    # float64 (FLOAT32_FACTOR, FLOAT32_FLOOR_ULPS in testing/check_fused.py say how).
    report = check_kernel_property(name, "float32", backend)
    assert report.passed and report.against_truth


@pytest.mark.parametrize("impl", ["composed", "fused"])
@pytest.mark.parametrize("name, backend", CASES)
@given(data=st.data())
def test_gradients_match_numerical_float64(name, backend, impl, data):
    entry = KERNELS[name]
    arrays, rest = split_arguments(data.draw(entry.strategy("float64")))
    call = bound(getattr(entry, impl), rest)
    inputs = [Tensor(a, requires_grad=True) for a in arrays]
    with use_backend(backend):
        gradcheck(call, inputs)
        gradgradcheck(call, inputs, atol=GRADGRAD_ATOL)


@pytest.mark.parametrize("name, backend", CASES)
def test_the_fused_side_records_one_kernel_node(name, backend):
    entry = KERNELS[name]
    args = entry.example(np.random.default_rng(0), (4, 3, 2), "float64")
    tensors = [Tensor(a, requires_grad=True) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
               for a in args]
    with use_backend(backend):
        node = entry.fused(*tensors)._ctx
        assert node.fn is entry.implementation(backend) and node.fn.fused
    assert not entry.composed(*tensors)._ctx.fn.fused


# ---------------------------------------------------------------- adding a kernel


class _ScaleFused(Function):
    """y = 3 x, as a 'kernel' (backward: 3 g)."""

    fused = True

    @staticmethod
    def forward(ctx, x):
        return x.data * 3.0

    @staticmethod
    def backward(ctx, g):
        return g * 3.0


class _ScaleWrongFused(_ScaleFused):
    """The same kernel with a hand-derivation slip in backward."""

    @staticmethod
    def backward(ctx, g):
        return g * 3.003  # 0.1% too large


def _scale_entry(kernel: type[Function], name: str) -> FusedKernel:
    return FusedKernel(
        name=name, kernel=kernel, composed=lambda x: x * 3.0, fused=lambda x: kernel.apply(x),
        example=lambda rng, shape, dtype: [rng.normal(size=shape).astype(dtype)],
        strategy=lambda dtype: tst.arrays(tst.shapes(1, 3), dtype).map(lambda a: [a]),
    )


@pytest.fixture
def registered():
    names = []

    def register(entry):
        names.append(entry.name)
        return register_kernel(entry)

    yield register
    for name in names:
        unregister_kernel(name)


def test_a_kernel_registered_in_a_test_module_gets_the_generic_checks(registered):
    entry = registered(_scale_entry(_ScaleFused, "scale_for_test"))
    assert KERNELS["scale_for_test"] is entry and fused_kernel("scale_for_test") is _ScaleFused
    assert check_kernel_property("scale_for_test", "float64").passed
    result = check_kernel_on("scale_for_test", entry.example(np.random.default_rng(0), (3, 2), "float64"))
    assert result.passed and set(result.numerical) == {"composed", "fused"}


def test_the_generic_checks_fail_a_registered_kernel_with_a_wrong_backward(registered):
    registered(_scale_entry(_ScaleWrongFused, "scale_wrong_for_test"))
    with pytest.raises(GradcheckError):
        check_kernel_property("scale_wrong_for_test", "float64")
    example = KERNELS["scale_wrong_for_test"].example(np.random.default_rng(0), (3, 2), "float64")
    assert not check_kernel_on("scale_wrong_for_test", example).passed


def test_registering_a_name_twice_or_a_non_entry_is_refused(registered):
    registered(_scale_entry(_ScaleFused, "scale_twice"))
    with pytest.raises(ValueError, match="already registered"):
        register_kernel(_scale_entry(_ScaleFused, "scale_twice"))
    with pytest.raises(TypeError, match="expected a FusedKernel"):
        register_kernel(_ScaleFused)
    with pytest.raises(KeyError, match="no fused kernel named 'nope'"):
        fused_kernel("nope")


# ---------------------------------------------------------------- details of the shipped kernels


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_fused_cross_entropy_supports_every_reduction(reduction):
    rng = np.random.default_rng(1)
    logits, labels = rng.normal(0.0, 3.0, (7, 4)), rng.integers(0, 4, 7)
    report = check_fused(lambda z, y: F.cross_entropy(z, y, reduction=reduction),
                         lambda z, y: F.cross_entropy(z, y, reduction=reduction, impl="fused"),
                         [logits, labels])
    assert report.passed


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: F.linear(Tensor(np.ones((2, 3))), Tensor(np.ones((4, 5))), impl="fused"),
         r"input has 3 features \(shape \(2, 3\)\) but weight \(4, 5\) expects 5"),
        (lambda: F.linear(Tensor(np.ones((2, 3))), Tensor(np.ones((4, 3))), Tensor(np.ones(3))),
         r"bias has shape \(3,\), expected \(4,\)"),
        (lambda: F.linear(Tensor(np.ones((2, 3))), Tensor(np.ones((4, 3))), impl="fast"), "impl must be"),
        (lambda: F.cross_entropy(Tensor(np.ones((2, 3))), np.array([0, 3]), impl="fused"),
         r"labels must be in \[0, 3\), got values in \[0, 3\]"),
        (lambda: F.cross_entropy(Tensor(np.ones((2, 3))), np.array([0, 1]), reduction="avg", impl="fused"),
         "reduction must be"),
        (lambda: check_impl("batch_norm", "Fused"),
         "batch_norm: impl must be 'composed' or 'fused', got 'Fused'"),
    ],
)
def test_bad_input_to_fused_kernels_gets_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ---------------------------------------------------------------- PyTorch cross-checks, on every backend


def _torch_twin(torch, name: str, args: list) -> tuple[list, object]:
    """torch leaf tensors for the float arguments of `name`'s example, and the torch output."""
    tf = torch.nn.functional
    leaves = [torch.tensor(a, requires_grad=True) for a in args
              if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    if name == "batch_norm":
        x, w, b = leaves
        return leaves, tf.batch_norm(x, None, None, w, b, training=True, eps=args[3])
    if name == "layer_norm":
        x, w, b = leaves
        return leaves, tf.layer_norm(x, tuple(w.shape), w, b, eps=args[3])
    return leaves, tf.cross_entropy(leaves[0], torch.tensor(args[1]))


# Float32 results of two different summation orders: a few hundred ulps of the largest value.
TORCH_FLOAT32_RTOL, TORCH_FLOAT32_ATOL = 1e-4, 1e-5


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (3, 2, 4, 4)])
@pytest.mark.parametrize("name, backend", [c for c in CASES if c.values[0] in ("batch_norm", "layer_norm",
                                                                                 "cross_entropy")])
def test_fused_kernel_matches_pytorch_forward_and_gradients(name, backend, shape, dtype):
    torch = pytest.importorskip("torch")
    entry = KERNELS[name]
    args = entry.example(np.random.default_rng(3), shape, dtype)
    with use_backend(backend):
        inputs = [Tensor(a, requires_grad=True) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
                  for a in args]
        out = entry.fused(*inputs)
        assert out._ctx.fn is entry.implementation(backend)  # the backend under test ran
        cotangent = np.random.default_rng(4).normal(size=out.shape).astype(dtype)
        out.backward(cotangent)
    leaves, theirs = _torch_twin(torch, name, args)
    theirs.backward(torch.tensor(cotangent))
    rtol, atol = (1e-10, 1e-12) if dtype == "float64" else (TORCH_FLOAT32_RTOL, TORCH_FLOAT32_ATOL)
    np.testing.assert_allclose(out.data, theirs.detach().numpy(), rtol=rtol, atol=atol)
    ours = [t for t in inputs if isinstance(t, Tensor)]
    for mine, leaf in zip(ours, leaves, strict=True):
        np.testing.assert_allclose(mine.grad.data, leaf.grad.numpy(), rtol=rtol, atol=atol)
