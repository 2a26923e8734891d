"""torch.autograd.functional-style derivatives (vjp, jvp, jacobian, hessian, hvp, vhp) and
tinygrad_bn.func, checked against central differences and, when installed, PyTorch."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_bn as tg
from tinygrad_bn import func
from tinygrad_bn.autograd import functional as AF
from tinygrad_bn.gradcheck import numerical_gradient
from tinygrad_bn.testing import strategies as tst

# Smooth test functions of one tensor: a vector map and a scalar one built from it.
MAPS = {
    "tanh(x) * x^2": lambda x: x.tanh() * x * x,
    "softmax": lambda x: x.reshape(-1).softmax(dim=0),
    "outer-ish": lambda x: (x.reshape(-1, 1) * x.reshape(1, -1)).sin().sum(dim=0),
}
H = 1e-6  # central differences: error ~h^2 * f''' ~ 1e-12, rounding ~eps/h ~ 1e-10
TOL = 1e-6


def numeric_jacobian(f, a: np.ndarray) -> np.ndarray:
    """d f / d a by central differences, shaped f(a).shape + a.shape."""
    out = f(tg.tensor(a)).numpy()
    jac = np.zeros(out.shape + a.shape)
    for i in np.ndindex(*out.shape):
        jac[i] = numerical_gradient(lambda x, i=i: f(tg.tensor(x)).numpy()[i], a.copy(), H)
    return jac


@pytest.mark.parametrize("name", sorted(MAPS))
@given(a=tst.arrays(tst.shapes(1, 2, max_side=3), min_value=-1.5, max_value=1.5), data=st.data())
def test_jacobian_vjp_and_jvp_agree_with_central_differences(name, a, data):
    f = MAPS[name]
    jac = numeric_jacobian(f, a)
    np.testing.assert_allclose(AF.jacobian(f, tg.tensor(a)).numpy(), jac, atol=TOL, rtol=TOL)
    out_shape, n = jac.shape[: jac.ndim - a.ndim], a.size
    u = data.draw(tst.arrays(out_shape))
    v = data.draw(tst.arrays(a.shape))
    value, vjp = AF.vjp(f, tg.tensor(a), tg.tensor(u))
    np.testing.assert_allclose(vjp.numpy(), np.tensordot(u, jac, axes=u.ndim), atol=TOL, rtol=TOL)
    np.testing.assert_allclose(value.numpy(), f(tg.tensor(a)).numpy())
    _, jvp = AF.jvp(f, tg.tensor(a), tg.tensor(v))  # two reverse passes, no forward mode
    expected = (jac.reshape(-1, n) @ v.reshape(-1)).reshape(out_shape)
    np.testing.assert_allclose(jvp.numpy(), expected, atol=TOL, rtol=TOL)


@given(a=tst.arrays((3,), min_value=-1.0, max_value=1.0), v=tst.arrays((3,)))
def test_hessian_hvp_and_vhp_agree_with_differences_of_the_gradient(a, v):
    def f(x):
        return (x.tanh() * x.exp()).sum() + (x * x).prod()

    def gradient(x):
        return func.grad(f)(tg.tensor(x)).numpy()

    hess = np.stack([numerical_gradient(lambda x, k=k: gradient(x)[k], a.copy(), H) for k in range(3)])
    np.testing.assert_allclose(AF.hessian(f, tg.tensor(a)).numpy(), hess, atol=1e-5, rtol=1e-5)
    hv, vh = AF.hvp(f, tg.tensor(a), tg.tensor(v))[1], AF.vhp(f, tg.tensor(a), tg.tensor(v))[1]
    np.testing.assert_allclose(hv.numpy(), hess @ v, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(vh.numpy(), v @ hess, atol=1e-5, rtol=1e-5)


def test_tuples_of_inputs_give_tuples_of_results_as_in_pytorch():
    a, b = tg.tensor([1.0, 2.0]), tg.tensor([3.0, -1.0])
    jac = AF.jacobian(lambda x, y: x * y, (a, b))
    assert isinstance(jac, tuple) and len(jac) == 2
    np.testing.assert_allclose(jac[0].numpy(), np.diag([3.0, -1.0]))
    np.testing.assert_allclose(jac[1].numpy(), np.diag([1.0, 2.0]))
    _, (ga, gb) = AF.vjp(lambda x, y: (x * y).sum(), (a, b))
    np.testing.assert_allclose(ga.numpy(), b.numpy())
    g_a, g_b = func.grad(lambda x, y: (x * y * y).sum(), argnums=(0, 1))(a, b)
    np.testing.assert_allclose(g_b.numpy(), 2 * a.numpy() * b.numpy())
    assert a.grad is None and b.grad is None  # nothing touches .grad


def test_func_transforms_compose_into_second_derivatives():
    x = tg.tensor([0.3, -0.7], dtype=np.float64)
    f = lambda t: (t ** 4).sum()  # noqa: E731
    np.testing.assert_allclose(func.hessian(f)(x).numpy(), np.diag(12 * x.numpy() ** 2), rtol=1e-12)
    out, vjp_fn = func.vjp(lambda t: t.sin(), x)
    np.testing.assert_allclose(vjp_fn(tg.tensor([1.0, 1.0], dtype=np.float64))[0].numpy(), np.cos(x.numpy()))
    np.testing.assert_allclose(func.jacrev(lambda t: t.exp())(x).numpy(), np.diag(np.exp(x.numpy())))


def test_bad_arguments_name_the_function_and_what_was_expected():
    with pytest.raises(TypeError, match="vjp: inputs must be a Tensor or a tuple of Tensors, got list"):
        AF.vjp(lambda x: x, [1.0])
    with pytest.raises(ValueError, match="vjp: v can be omitted only when the output is a single"):
        AF.vjp(lambda x: x * 2, tg.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"jvp: v has shapes \[\(3,\)\], expected the input's \[\(2,\)\]"):
        AF.jvp(lambda x: x * 2, tg.tensor([1.0, 2.0]), tg.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="hessian: the function must return a single one-element Tensor"):
        AF.hessian(lambda x: x * 2, tg.tensor([1.0, 2.0]))


def test_against_torch_autograd_functional():
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(0).standard_normal(4)

    def ours(x):
        return (x.tanh() * x).sum() * x.exp().sum()

    def theirs(x):
        return (x.tanh() * x).sum() * x.exp().sum()

    np.testing.assert_allclose(AF.hessian(ours, tg.tensor(a)).numpy(),
                               torch.autograd.functional.hessian(theirs, torch.tensor(a)).numpy(), rtol=1e-12)
    v = np.random.default_rng(1).standard_normal(4)
    np.testing.assert_allclose(AF.jvp(lambda x: x.sin() * x, tg.tensor(a), tg.tensor(v))[1].numpy(),
                               torch.autograd.functional.jvp(lambda x: x.sin() * x, torch.tensor(a),
                                                             torch.tensor(v))[1].numpy(), rtol=1e-12)
