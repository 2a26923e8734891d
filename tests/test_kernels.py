"""Every fused kernel in the registry against its composed twin and numerical gradients.

Adding an entry to `fused_pairs.FUSED_PAIRS` without a strategy here fails
`test_every_fused_kernel_has_a_property_test`; with one, it gets every check.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_bn import Tensor
from tinygrad_bn import functional as F
from tinygrad_bn.fused_pairs import FUSED_PAIRS
from tinygrad_bn.gradcheck import check_fused, gradcheck, gradgradcheck
from tinygrad_bn.testing import strategies as tst

STRATEGIES = {
    "batch_norm": lambda dtype: tst.norm_kernel_args("batch_norm", dtype),
    "layer_norm": lambda dtype: tst.norm_kernel_args("layer_norm", dtype),
    "linear": tst.linear_args,
    "cross_entropy": tst.classification_args,
}


def test_every_fused_kernel_has_a_property_test():
    assert set(FUSED_PAIRS) == set(STRATEGIES)


@pytest.mark.parametrize("name", sorted(FUSED_PAIRS))
def test_fused_matches_composed_float64(name):
    pair = FUSED_PAIRS[name]
    assert check_fused(pair.composed, pair.fused, STRATEGIES[name]("float64"), rtol=1e-10).passed


@pytest.mark.parametrize("name", sorted(FUSED_PAIRS))
def test_fused_matches_composed_float32_within_stated_tolerance(name):
    # gradcheck.FUSED_RTOL[float32] = 1e-4 of each quantity's scale (justified there).
    pair = FUSED_PAIRS[name]
    assert check_fused(pair.composed, pair.fused, STRATEGIES[name]("float32")).passed


@pytest.mark.parametrize("impl", ["composed", "fused"])
@pytest.mark.parametrize("name", sorted(FUSED_PAIRS))
@given(data=st.data())
def test_gradients_match_numerical_float64(name, impl, data):
    args = data.draw(STRATEGIES[name]("float64"))
    arrays = [a for a in args if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    rest = args[len(arrays):]
    fn = getattr(FUSED_PAIRS[name], impl)

    def call(*tensors):
        return fn(*tensors, *rest)

    inputs = [Tensor(a, requires_grad=True) for a in arrays]
    gradcheck(call, inputs)
    gradgradcheck(call, inputs, atol=1e-4)


@pytest.mark.parametrize("name", sorted(FUSED_PAIRS))
def test_the_fused_side_records_one_kernel_node(name):
    pair = FUSED_PAIRS[name]
    args = pair.example(np.random.default_rng(0), (4, 3, 2), "float64")
    tensors = [Tensor(a, requires_grad=True) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
               for a in args]
    node = pair.fused(*tensors)._ctx
    assert node.fn is pair.kernel and node.fn.fused
    composed = pair.composed(*tensors)._ctx
    assert not composed.fn.fused


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_fused_cross_entropy_supports_every_reduction(reduction):
    rng = np.random.default_rng(1)
    logits, labels = rng.normal(0.0, 3.0, (7, 4)), rng.integers(0, 4, 7)
    report = check_fused(lambda z, y: F.cross_entropy(z, y, reduction),
                         lambda z, y: F.cross_entropy(z, y, reduction, impl="fused"), [logits, labels])
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
    ],
)
def test_bad_input_to_fused_kernels_gets_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
