"""Tensor: numpy semantics of its methods, dtype rules, and errors for bad input.

Forward values are compared with numpy itself; the gradients of the primitives
are property-tested in test_ops.py, so here gradients are checked only where a
semantic point is made (accumulation of repeated indices, ties, dtypes).
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_bn import Tensor, functional, tensor
from tinygrad_bn.gradcheck import gradcheck
from tinygrad_bn.testing import strategies as tst

# ---------------------------------------------------------------- construction


def test_python_scalars_and_lists_default_to_float32():
    assert Tensor(1.5).dtype == np.float32
    assert Tensor([[1, 2], [3, 4]]).dtype == np.float32
    assert tensor([1.0, 2.0]).dtype == np.float32


def test_ndarrays_keep_their_dtype():
    assert Tensor(np.zeros(3)).dtype == np.float64
    assert Tensor(np.zeros(3, dtype=np.int64)).dtype == np.int64
    assert Tensor(np.zeros(3), dtype=np.float32).dtype == np.float32


def test_requires_grad_on_integer_tensor_raises_naming_the_dtype():
    with pytest.raises(TypeError, match=r"requires_grad=True needs a float32 or float64.*int64"):
        Tensor(np.arange(3), requires_grad=True)
    with pytest.raises(TypeError, match="bool"):
        Tensor(np.array([True, False])).requires_grad_()


def test_integer_tensors_are_plain_data_that_never_record_a_graph():
    labels = Tensor(np.array([0, 2, 1]))
    x = Tensor(np.ones(3), requires_grad=True)
    assert not labels.requires_grad
    assert (x * labels).requires_grad  # the float operand still records


def test_requires_grad_cannot_be_turned_off_on_an_op_output():
    y = Tensor(np.ones(2), requires_grad=True) * 2.0
    with pytest.raises(RuntimeError, match="detach"):
        y.requires_grad = False
    assert not y.detach().requires_grad and y.detach().is_leaf


def test_item_needs_exactly_one_element():
    assert Tensor(np.array([[2.5]])).item() == 2.5
    with pytest.raises(ValueError, match=r"item.*\(2,\)"):
        Tensor(np.ones(2)).item()


def test_comparisons_return_boolean_tensors_without_a_graph():
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    for result, expected in [(x > 2, [False, False, True]), (x <= 2, [True, True, False]),
                             (x == 2, [False, True, False]), (x != 2, [True, False, True])]:
        assert result.dtype == np.bool_ and not result.requires_grad
        np.testing.assert_array_equal(result.data, expected)


def test_ndarray_on_the_left_calls_the_tensor_operator():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = np.array([10.0, 20.0]) - x
    assert isinstance(y, Tensor) and y.requires_grad
    np.testing.assert_array_equal(y.data, [9.0, 18.0])


# ---------------------------------------------------------------- reductions


@st.composite
def _reduction_cases(draw, min_dims: int = 0):
    """(array, axis, keepdims) with axis None, one (possibly negative) axis, or a tuple."""
    a = draw(tst.arrays(tst.shapes(min_dims, 3)))
    if a.ndim == 0:
        axis = None  # numpy accepts no axis on a 0-d array
    else:
        axis = draw(
            st.none()
            | st.integers(-a.ndim, a.ndim - 1)
            | st.lists(st.integers(0, a.ndim - 1), min_size=1, max_size=a.ndim, unique=True)
            .map(tuple)
        )
    return a, axis, draw(st.booleans())


@pytest.mark.parametrize("method, numpy_method", [("sum", "sum"), ("mean", "mean"), ("amax", "max"),
                                                  ("amin", "min")])
@given(case=_reduction_cases())
def test_reductions_match_numpy_for_every_axis_and_keepdims(method, numpy_method, case):
    a, axis, keepdims = case
    expected = getattr(np, numpy_method)(a, axis=axis, keepdims=keepdims)
    t = Tensor(a)
    for got in (getattr(t, method)(axis, keepdims), getattr(t, method)(dim=axis, keepdim=keepdims),
                getattr(Tensor(a), method)(axis=axis, keepdims=keepdims)):  # numpy's spelling is an alias
        assert got.shape == np.shape(expected)
        np.testing.assert_allclose(got.data, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", ["max", "min"])
@given(a=tst.arrays(tst.shapes(1, 3)), data=st.data())
def test_max_and_min_with_a_dim_return_values_and_indices_like_pytorch(method, a, data):
    dim = data.draw(st.integers(-a.ndim, a.ndim - 1))
    keepdim = data.draw(st.booleans())
    values, indices = getattr(Tensor(a), method)(dim, keepdim)
    np.testing.assert_array_equal(values.data, getattr(np, method)(a, axis=dim, keepdims=keepdim))
    np.testing.assert_array_equal(indices.data, getattr(np, f"arg{method}")(a, axis=dim, keepdims=keepdim))
    assert indices.dtype == np.int64
    assert getattr(Tensor(a), method)(dim, keepdim).values.shape == values.shape  # a named pair
    np.testing.assert_array_equal(getattr(Tensor(a), method)().data, getattr(np, method)(a))


@given(case=_reduction_cases(min_dims=1), correction=st.integers(0, 2))
def test_var_and_std_match_numpy_with_pytorchs_unbiased_default(case, correction):
    a, axis, keepdims = case
    n = a.size // np.var(a, axis=axis, keepdims=True).size
    got = Tensor(a).var(axis, correction=correction, keepdim=keepdims)
    if n - correction <= 0:  # PyTorch gives nan (and a warning), not an error
        assert np.all(np.isnan(got.data))
        return
    np.testing.assert_allclose(got.data, np.var(a, axis=axis, ddof=correction, keepdims=keepdims),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(Tensor(a).std(axis, correction=correction, keepdim=keepdims).data,
                               np.std(a, axis=axis, ddof=correction, keepdims=keepdims),
                               rtol=1e-10, atol=1e-12)
    if n > 1:
        np.testing.assert_allclose(Tensor(a).var(axis).data, np.var(a, axis=axis, ddof=1),
                                   rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(Tensor(a).var(axis, unbiased=False).data, np.var(a, axis=axis),
                                   rtol=1e-10, atol=1e-12)


@given(case=_reduction_cases(min_dims=1))
def test_amin_gradient_matches_numerical(case):
    # amin is the composite -amax(-x); distinct values keep central differences off ties.
    _, axis, keepdims = case
    a = np.random.default_rng(0).permutation(np.arange(case[0].size, dtype=np.float64))
    x = Tensor(a.reshape(case[0].shape) * 0.5, requires_grad=True)
    gradcheck(lambda t: t.amin(axis, keepdims), [x])


def test_amax_shares_the_gradient_between_ties_and_max_with_a_dim_gives_it_to_the_chosen_index():
    x = Tensor(np.array([1.0, 3.0, 3.0, 2.0]), requires_grad=True)
    x.max().backward()  # like PyTorch's max(): ties share it
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.5, 0.5, 0.0])
    y = Tensor(np.array([[1.0, 1.0, 1.0], [4.0, 0.0, 2.0]]), requires_grad=True)
    y.amin(dim=1).sum().backward()
    np.testing.assert_allclose(y.grad.data, [[1 / 3, 1 / 3, 1 / 3], [0.0, 1.0, 0.0]])
    z = Tensor(np.array([[1.0, 1.0, 1.0], [4.0, 0.0, 2.0]]), requires_grad=True)
    values, indices = z.min(dim=1)
    values.sum().backward()  # like PyTorch's min(dim): only the returned index
    np.testing.assert_array_equal(indices.data, [0, 1])
    np.testing.assert_array_equal(z.grad.data, [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def test_reduction_over_an_axis_out_of_range_names_the_op_and_the_axis():
    with pytest.raises(ValueError, match=r"sum: axis 2 is out of range for a 2-d tensor"):
        Tensor(np.ones((2, 3))).sum(axis=2)
    with pytest.raises(IndexError, match=r"max: dim -3 is out of range for a 2-d tensor"):
        Tensor(np.ones((2, 3))).max(dim=-3)
    with pytest.raises(TypeError, match="pass dim= or its alias axis=, not both"):
        Tensor(np.ones((2, 3))).sum(dim=0, axis=1)


def test_mean_over_an_axis_out_of_range_names_the_op():
    with pytest.raises(ValueError, match=r"mean: axis 5 is out of range"):
        Tensor(np.ones((2, 3))).mean(axis=5)
    with pytest.raises(ValueError, match=r"var: axis"):
        Tensor(np.ones((2, 3))).var(axis=(0, 4))


def test_mean_of_a_0d_tensor_over_its_only_axis_is_the_value():
    # Like torch (and like our sum), a 0-d tensor accepts axis 0 / -1.
    x = Tensor(np.array(1.5), requires_grad=True)
    out = x.mean(axis=-1)
    assert out.shape == () and out.item() == 1.5
    out.backward()
    assert x.grad.item() == 1.0


# ---------------------------------------------------------------- movement


@given(a=tst.arrays(tst.shapes(0, 4)), data=st.data())
def test_permute_transpose_and_T_follow_pytorch(a, data):
    dims = data.draw(st.permutations(range(a.ndim)))
    np.testing.assert_array_equal(Tensor(a).permute(*dims).data, np.transpose(a, dims))
    np.testing.assert_array_equal(Tensor(a).T.data, a.T)
    if a.ndim >= 2:
        d0, d1 = data.draw(st.integers(-a.ndim, a.ndim - 1)), data.draw(st.integers(-a.ndim, a.ndim - 1))
        # transpose(d0, d1) swaps two dims (numpy's transpose permutes them all)
        np.testing.assert_array_equal(Tensor(a).transpose(d0, d1).data, np.swapaxes(a, d0, d1))
        np.testing.assert_array_equal(Tensor(a).mT.data, np.swapaxes(a, -1, -2))


@given(a=tst.arrays(tst.shapes(0, 3)), data=st.data())
def test_reshape_matches_numpy_including_minus_one(a, data):
    target = data.draw(st.sampled_from([(-1,), (a.size, -1), (1, -1, 1), (a.size,), ()]
                                       if a.size == 1 else [(-1,), (a.size, -1), (1, -1, 1)]))
    np.testing.assert_array_equal(Tensor(a).reshape(*target).data, a.reshape(target))
    np.testing.assert_array_equal(Tensor(a).reshape(target).data, a.reshape(target))


def test_reshape_to_a_wrong_size_names_the_op_and_both_shapes():
    with pytest.raises(ValueError, match=r"reshape.*\(2, 3\).*\(4,\)"):
        Tensor(np.ones((2, 3))).reshape(4)


def test_permute_with_a_bad_permutation_names_the_op():
    with pytest.raises(ValueError, match=r"permute: dims \(0, 0\) are not a permutation"):
        Tensor(np.ones((2, 3))).permute(0, 0)
    with pytest.raises(TypeError, match=r"transpose\(\) missing"):
        Tensor(np.ones((2, 3))).transpose()


def test_swapaxes_and_flatten_match_numpy():
    a = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(Tensor(a).swapaxes(0, 2).data, a.swapaxes(0, 2))
    np.testing.assert_array_equal(Tensor(a).flatten(1).data, a.reshape(2, 12))


# ---------------------------------------------------------------- matmul


@given(shapes=tst.matmul_shapes(), data=st.data())
def test_matmul_matches_numpy_for_vectors_matrices_and_batches(shapes, data):
    a = data.draw(tst.arrays(shapes[0]))
    b = data.draw(tst.arrays(shapes[1]))
    x, y = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    out = x @ y
    np.testing.assert_allclose(out.data, a @ b, rtol=1e-12, atol=1e-12)
    # Each operand's gradient has the operand's shape, whatever broadcasting happened.
    out.backward(np.ones(out.shape))
    assert x.grad.shape == a.shape and y.grad.shape == b.shape


def test_matmul_of_two_vectors_is_their_dot_product_with_the_other_as_gradient():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([4.0, -5.0, 6.0])
    x, y = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    out = x @ y
    assert out.shape == () and out.item() == a @ b
    out.backward()
    np.testing.assert_array_equal(x.grad.data, b)
    np.testing.assert_array_equal(y.grad.data, a)


def test_matmul_with_mismatched_inner_dimensions_names_the_op_and_shapes():
    with pytest.raises(ValueError, match=r"matmul.*\(2, 3\).*\(4, 5\).*inner dimensions 3 and 4"):
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"matmul.*\(5, 2, 3\).*\(2,\)"):
        Tensor(np.ones((5, 2, 3))) @ Tensor(np.ones(2))


def test_matmul_rejects_0d_operands():
    with pytest.raises(ValueError, match=r"matmul needs operands with at least 1 dimension"):
        Tensor(np.ones(3)) @ Tensor(np.array(2.0))


# ---------------------------------------------------------------- broadcasting


def _sum_to(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Reference adjoint of broadcasting, written independently of ops.unbroadcast."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for axis, n in enumerate(shape):
        if n == 1:
            g = g.sum(axis=axis, keepdims=True)
    return g


@given(shapes=tst.broadcastable_shapes(), data=st.data())
def test_binary_ops_broadcast_like_numpy_and_sum_gradients_back(shapes, data):
    a = data.draw(tst.arrays(shapes[0]))
    b = data.draw(tst.arrays(shapes[1], min_value=0.5))
    x, y = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    out = x * y + x / y - y
    np.testing.assert_allclose(out.data, a * b + a / b - b, rtol=1e-12)
    out.backward(np.ones(out.shape))
    full = np.ones(out.shape)
    np.testing.assert_allclose(x.grad.data, _sum_to(full * (b + 1 / b), a.shape), rtol=1e-12)
    np.testing.assert_allclose(y.grad.data, _sum_to(full * (a - a / b**2 - 1), b.shape), rtol=1e-12)


def test_broadcast_gradient_of_a_row_vector_sums_over_rows():
    x = Tensor(np.ones((3, 4)), requires_grad=True)
    b = Tensor(np.array([[1.0, 2.0, 3.0, 4.0]]), requires_grad=True)
    (x * b).sum().backward()
    np.testing.assert_array_equal(b.grad.data, [[3.0, 3.0, 3.0, 3.0]])
    np.testing.assert_array_equal(x.grad.data, np.tile([1.0, 2.0, 3.0, 4.0], (3, 1)))


@pytest.mark.parametrize("op, name", [(lambda x, y: x + y, "add"), (lambda x, y: x - y, "sub"),
                                      (lambda x, y: x * y, "mul"), (lambda x, y: x / y, "div")])
def test_broadcasting_mismatch_names_the_op_and_both_shapes(op, name):
    with pytest.raises(ValueError, match=rf"{name}: .*\(2, 3\), \(4,\)"):
        op(Tensor(np.ones((2, 3))), Tensor(np.ones(4)))


def test_expand_to_an_incompatible_shape_names_the_shapes():
    with pytest.raises(ValueError, match=r"expand.*cannot broadcast shape \(3,\) to \(2, 4\)"):
        Tensor(np.ones(3)).expand(2, 4)


# ---------------------------------------------------------------- indexing


@st.composite
def _indices(draw):
    a = draw(tst.arrays(tst.shapes(1, 3, min_side=2)))
    n = a.shape[0]
    kinds = ["slice", "negative-step", "int", "int-array", "tuple", "bool", "ellipsis"]
    kind = draw(st.sampled_from(kinds))
    if kind == "slice":
        index = slice(draw(st.integers(0, n - 1)), None)
    elif kind == "negative-step":
        index = slice(None, None, -2)
    elif kind == "int":
        index = draw(st.integers(-n, n - 1))
    elif kind == "int-array":
        index = np.array(draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=6)))
    elif kind == "tuple":
        index = (slice(1, None), 0) if a.ndim > 1 else (slice(1, None),)
    elif kind == "bool":
        index = a > 0
    else:
        index = (Ellipsis, 0)
    return a, index


@given(case=_indices())
def test_indexing_matches_numpy(case):
    a, index = case
    np.testing.assert_array_equal(Tensor(a)[index].data, a[index])


@given(case=_indices())
def test_index_gradient_counts_how_often_each_element_was_read(case):
    a, index = case
    x = Tensor(a, requires_grad=True)
    out = x[index]
    out.backward(np.ones(out.shape))
    expected = np.zeros_like(a)
    np.add.at(expected, index, 1.0)
    np.testing.assert_array_equal(x.grad.data, expected)


def test_fancy_index_gradient_accumulates_repeated_indices():
    x = Tensor(np.array([10.0, 20.0, 30.0]), requires_grad=True)
    (x[np.array([0, 0, 2, 0])] * Tensor(np.array([1.0, 2.0, 3.0, 4.0]))).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [1.0 + 2.0 + 4.0, 0.0, 3.0])
    m = Tensor(np.zeros((2, 3)), requires_grad=True)
    m[[1, 1, 0], [2, 2, 2]].sum().backward()
    np.testing.assert_array_equal(m.grad.data, [[0, 0, 1], [0, 0, 2]])


def test_bool_mask_selects_and_routes_gradient_to_the_selected_elements():
    a = np.array([[1.0, -2.0], [-3.0, 4.0]])
    x = Tensor(a, requires_grad=True)
    mask = x > 0  # a Tensor mask is accepted like an array
    selected = x[mask]
    np.testing.assert_array_equal(selected.data, [1.0, 4.0])
    (selected * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[3.0, 0.0], [0.0, 3.0]])


def test_index_out_of_bounds_names_the_op_and_shape():
    with pytest.raises(IndexError, match=r"getitem.*\(3,\)"):
        Tensor(np.ones(3))[5]


# ---------------------------------------------------------------- dtypes

# Each builds a float32 graph using Python and numpy scalars and the composites.
_FLOAT32_PROGRAMS = {
    "arithmetic with python scalars": lambda x: (2.0 * x + 1) / 3.0 - 0.5,
    "numpy float64 scalars": lambda x: x * np.float64(1.5) + np.float64(2.0),
    "powers": lambda x: x**2 + 2.0**x + x ** np.float64(0.5),
    "reflected ops": lambda x: 1.0 / x - (3 - x),
    "unary": lambda x: x.exp().log() + x.sqrt() + x.tanh() + x.relu(),
    "reductions": lambda x: x.sum(0) + x.mean(dim=0) + x.var(0) + x.std(0) + x.max(0).values + x.amin(0),
    "composites": lambda x: (functional.softmax(x) + functional.sigmoid(x)
                             + functional.log_softmax(x)),
    "losses": lambda x: functional.mse_loss(x, 0.5) + functional.cross_entropy(x, np.array([0, 1])),
    "matmul and indexing": lambda x: (x @ x.T)[np.array([0, 0])].sum(axis=1),
}


@pytest.mark.parametrize("name", sorted(_FLOAT32_PROGRAMS))
def test_float32_stays_float32_through_ops_scalars_and_gradients(name):
    x = Tensor(np.array([[0.5, 1.0, 1.5], [2.0, 2.5, 0.25]], dtype=np.float32), requires_grad=True)
    out = _FLOAT32_PROGRAMS[name](x)
    assert out.dtype == np.float32, f"{name}: output upcast to {out.dtype}"
    out.backward(np.ones(out.shape, dtype=np.float32))
    assert x.grad.dtype == np.float32


@given(shapes=tst.broadcastable_shapes(), dtypes=st.permutations(["float32", "float64"]),
       data=st.data())
def test_mixed_float_dtypes_promote_like_pytorch_and_each_grad_keeps_its_dtype(shapes, dtypes, data):
    a = data.draw(tst.arrays(shapes[0], dtype=dtypes[0], min_value=0.5))
    b = data.draw(tst.arrays(shapes[1], dtype=dtypes[1], min_value=0.5))
    x, y = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    out = x * y + x / y
    # float64 wins, except that a 0-d tensor takes a dimensioned one's dtype (PyTorch's rule)
    if (a.ndim == 0) != (b.ndim == 0):
        assert out.dtype == (a if a.ndim else b).dtype
    else:
        assert out.dtype == np.float64
    out.backward(np.ones(out.shape))
    assert x.grad.dtype == a.dtype and y.grad.dtype == b.dtype


def test_to_casts_and_the_gradient_is_cast_back():
    x = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    assert x.double().dtype == np.float64 and x.to(np.float64).float().dtype == np.float32
    y = x.to(np.float64) * Tensor(np.array([1e-3, 3.0]))
    assert y.dtype == np.float64
    y.sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.data, [1e-3, 3.0], rtol=1e-7)


# ---------------------------------------------------------------- bad input to the constructor


@pytest.mark.parametrize("data, error, message", [
    (None, TypeError, "Tensor: data is None; expected a number"),
    (np.array([object()]), TypeError, "Tensor: data of dtype object is not supported"),
    (np.array(["a", "b"]), TypeError, "Tensor: data of dtype <U1 is not supported"),
    ("abc", ValueError, "Tensor: cannot make an array of str data"),
    (np.array(["2026-01-01"], dtype="datetime64[D]"), TypeError, "datetime64"),
    (np.array([1 + 2j]), TypeError, "complex128 is not supported"),
    ([[1.0, 2.0], [3.0]], ValueError, "rectangular"),
    ([Tensor(1.0), Tensor(2.0)], TypeError, r"got a list of Tensors; combine them with stack\(\) or cat\(\)"),
])
def test_constructor_rejects_what_no_op_could_compute_with(data, error, message):
    with pytest.raises(error, match=message):
        Tensor(data)


def test_constructor_rejects_a_non_bool_requires_grad_and_an_unknown_dtype():
    with pytest.raises(TypeError, match="requires_grad must be True or False, got 'yes'"):
        Tensor([1.0], requires_grad="yes")
    with pytest.raises(TypeError, match="Tensor: dtype 'floaty' is not a numpy dtype"):
        Tensor([1.0], dtype="floaty")


def test_tensor_infers_dtypes_like_torch_tensor_and_the_class_makes_floats_like_torch_Tensor():
    assert tensor([1, 2]).dtype == np.int64 and tensor([1.5]).dtype == np.float32
    assert tensor([True]).dtype == np.bool_ and tensor(np.zeros(2)).dtype == np.float64
    assert Tensor([1, 2]).dtype == np.float32  # torch.Tensor([1, 2]) is float32 too
    a = np.zeros(2)
    assert tensor(a).numpy() is not a  # tensor() copies, as torch.tensor does


def test_set_default_dtype_changes_what_python_floats_become():
    import tinygrad_bn as tg

    try:
        tg.set_default_dtype(np.float64)
        assert tensor([1.0]).dtype == np.float64 and tg.zeros(2).dtype == np.float64
    finally:
        tg.set_default_dtype(np.float32)
    with pytest.raises(TypeError, match="set_default_dtype: expected float32 or float64"):
        tg.set_default_dtype(np.int32)


def test_numpy_sees_the_data_and_ufuncs_dispatch_or_refuse():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    assert np.asarray(x) is x.data  # not an object array
    y = np.exp(x)  # the differentiable op
    assert isinstance(y, Tensor) and y.requires_grad
    z = np.ones(2) + x
    assert isinstance(z, Tensor) and z.requires_grad
    with pytest.raises(TypeError, match="numpy's arctan2 .* does not take Tensors"):
        np.arctan2(x, x)


def test_python_conversions_of_one_element_tensors():
    assert float(Tensor([2.5])) == 2.5 and int(tensor([[3]])) == 3 and bool(tensor([1]))
    assert abs(Tensor([-2.0])).item() == 2.0
    with pytest.raises(RuntimeError, match="the truth value of a tensor with 2 elements is ambiguous"):
        bool(Tensor([1.0, 2.0]))
    assert Tensor(np.ones((2, 3))).size() == (2, 3) and Tensor(np.ones((2, 3))).size(1) == 3
    assert Tensor(np.ones((2, 3))).numel() == 6 and Tensor(np.ones((2, 3))).dim() == 2
    assert Tensor(np.arange(4.0)).tolist() == [0.0, 1.0, 2.0, 3.0]
