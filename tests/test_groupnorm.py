"""group_norm and instance_norm: PyTorch parity, the closed-form backward's properties, modules, errors."""

import numpy as np
import pytest
from hypothesis import given
from test_conv import IMPLS, compare_with_torch

from tinygrad_bn import Tensor, nn
from tinygrad_bn import functional as F
from tinygrad_bn.gradcheck import GradcheckError
from tinygrad_bn.kernels.groupnorm import GroupNormFused
from tinygrad_bn.testing import check_fused
from tinygrad_bn.testing import conv_strategies as cst


@pytest.mark.parametrize("impl", IMPLS)
@given(args=cst.group_norm_args("float64"))
def test_group_norm_matches_pytorch_values_gradients_and_double_backward(impl, args):
    torch = pytest.importorskip("torch")
    x, w, b, groups, eps = args
    compare_with_torch(lambda x, w, b, impl: F.group_norm(x, groups, w, b, eps, impl=impl),
                       lambda x, w, b: torch.nn.functional.group_norm(x, groups, w, b, eps), [x, w, b], impl)


@pytest.mark.parametrize("impl", IMPLS)
@given(args=cst.group_norm_args("float64", instance=True))
def test_instance_norm_matches_pytorch_values_gradients_and_double_backward(impl, args):
    torch = pytest.importorskip("torch")
    x, w, b, eps = args
    compare_with_torch(lambda x, w, b, impl: F.instance_norm(x, weight=w, bias=b, eps=eps, impl=impl),
                       lambda x, w, b: torch.nn.functional.instance_norm(x, weight=w, bias=b, eps=eps),
                       [x, w, b], impl)


@pytest.mark.parametrize("impl", IMPLS)
def test_instance_norm_updates_and_uses_running_stats_as_pytorch(impl):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    options = dict(momentum=0.3, affine=True, track_running_stats=True)
    ours = nn.InstanceNorm2d(3, **options, dtype=np.float64, impl=impl)
    theirs = torch.nn.InstanceNorm2d(3, **options, dtype=torch.float64)
    for _ in range(3):
        x = rng.normal(2.0, 3.0, (4, 3, 5, 4))
        np.testing.assert_allclose(ours(Tensor(x)).data, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.running_mean.data, theirs.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.running_var.data, theirs.running_var.numpy(), rtol=1e-12)
    assert int(ours.num_batches_tracked.item()) == int(theirs.num_batches_tracked) == 0  # neither counts
    ours.eval()
    theirs.eval()
    x = rng.normal(size=(3, 5, 4))  # unbatched
    np.testing.assert_allclose(ours(Tensor(x)).data, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("impl", IMPLS)
def test_group_norm_module_matches_pytorch_with_and_without_affine(impl):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).normal(1.0, 2.0, (2, 6, 3, 3))
    for affine in (True, False):
        out = nn.GroupNorm(3, 6, eps=1e-3, affine=affine, dtype=np.float64, impl=impl)(Tensor(x))
        expected = torch.nn.GroupNorm(3, 6, eps=1e-3, affine=affine, dtype=torch.float64)(torch.tensor(x))
        np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-12, atol=1e-13)


def test_group_norm_modules_fused_and_composed_agree_on_outputs_and_parameter_gradients():
    rng = np.random.default_rng(2)
    composed = nn.GroupNorm(2, 4, dtype=np.float64, impl="composed")
    fused = nn.GroupNorm(2, 4, dtype=np.float64, impl="fused")
    for layer in (composed, fused):
        layer.weight.data[...] = rng.normal(1.0, 0.5, 4) if layer is composed else composed.weight.data
        layer.bias.data[...] = rng.normal(0.0, 0.5, 4) if layer is composed else composed.bias.data
    assert check_fused(composed, fused, [rng.normal(3.0, 2.0, (3, 4, 2, 5))]).passed


def test_group_norm_with_one_group_is_layer_norm_over_every_non_batch_dim():
    x = Tensor(np.random.default_rng(3).normal(size=(3, 4, 5)))
    for impl in IMPLS:
        np.testing.assert_allclose(F.group_norm(x, 1, impl=impl).data,
                                   F.layer_norm(x, (4, 5), impl=impl).data,
                                   rtol=1e-12, atol=1e-13)


class _GroupNormForgetsTheXhatTerm(GroupNormFused):
    """A realistic slip in the hand derivation: dx = r (dxhat - mean(dxhat)), the xhat term dropped."""

    @staticmethod
    def backward(ctx, g):
        x, weight, xhat, inv_std = ctx.saved_tensors
        n, c = x.shape[:2]
        gd = g.data.reshape(xhat.shape)
        dxhat = (gd * weight.data[:, None]).reshape(n, ctx.groups, -1)
        dx = (dxhat - dxhat.mean(axis=2, keepdims=True)) * inv_std.data
        return dx.reshape(x.shape), np.einsum("ncs,ncs->c", gd, xhat.data), gd.sum(axis=(0, 2))


def test_an_all_ones_cotangent_cannot_tell_a_wrong_kernel_but_check_fused_does():
    rng = np.random.default_rng(4)
    x = rng.normal(2.0, 1.5, (2, 4, 3, 3))
    ones = np.ones_like(x)
    right = Tensor(x, requires_grad=True)
    F.group_norm(right, 2, impl="fused").backward(Tensor(ones))
    wrong = Tensor(x, requires_grad=True)
    w, b = Tensor(np.ones(4)), Tensor(np.zeros(4))
    _GroupNormForgetsTheXhatTerm.apply(wrong, w, b, groups=2, eps=1e-5).backward(Tensor(ones))
    # sum(y) does not depend on x (centring removes the mean), so both say dx = 0 ...
    assert np.abs(right.grad.data).max() < 1e-12 and np.abs(wrong.grad.data).max() < 1e-12
    # ... while a random cotangent (what check_fused uses) exposes the missing projection.
    with pytest.raises(GradcheckError):
        check_fused(lambda x: F.group_norm(x, 2, impl="composed"),
                    lambda x: _GroupNormForgetsTheXhatTerm.apply(x, Tensor(np.ones(4)), Tensor(np.zeros(4)),
                                                                 groups=2, eps=1e-5),
                    [x], double_backward=False)


# ---------------------------------------------------------------- errors


def _x(*shape):
    return Tensor(np.zeros(shape))


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.group_norm(_x(2, 6, 3), 4), ValueError, r"num_groups=4 must divide the input's 6 channels"),
    (lambda: F.group_norm(_x(2, 6, 3), 0), ValueError, r"num_groups must be a positive int, got 0"),
    (lambda: F.group_norm(_x(2, 6, 3), 3, _x(3)), ValueError, r"weight has shape \(3,\), expected \(6,\)"),
    (lambda: F.group_norm(_x(1, 3), 3), ValueError,
     r"expected more than 1 value per group, got input of shape"),
    (lambda: F.group_norm(_x(6), 3), ValueError, r"expected input with at least 2 dims, got shape \(6,\)"),
    (lambda: F.group_norm(_x(2, 6, 3), 3, eps=0.0), ValueError, r"eps must be a positive finite number"),
    (lambda: F.instance_norm(_x(2, 3, 1, 1)), ValueError, r"expected more than 1 spatial element"),
    (lambda: F.instance_norm(_x(2, 3, 4), use_input_stats=False), ValueError,
     r"needs running_mean and running_var"),
    (lambda: nn.GroupNorm(4, 6), ValueError, r"num_groups=4 must divide num_channels=6"),
    (lambda: nn.GroupNorm(2, 6)(_x(2, 4, 3)), ValueError,
     r"expected input of shape \(N, 6, \.\.\.\), got shape"),
    (lambda: nn.InstanceNorm2d(3)(_x(2, 4, 3, 3)), ValueError, r"expected 3 channels \(num_features\), got"),
    (lambda: nn.InstanceNorm2d(3)(_x(3, 3)), ValueError, r"expected input of 3 \(unbatched\) or 4 dims"),
])
def test_bad_norm_arguments_get_an_error_naming_them(call, error, message):
    with pytest.raises(error, match=message):
        call()
