"""nn.Module and the basic layers: registration, traversal, modes, state dicts, scopes.

The norm layers (BatchNorm1d/2d, LayerNorm) have their own test module.
"""

import numpy as np
import pytest

from tinygrad_bn import Tensor, functional, nn
from tinygrad_bn.gradcheck import gradcheck


class Block(nn.Module):
    """Two Linears, a shared (tied) parameter, a buffer and a non-tensor attribute."""

    def __init__(self, rng: int = 0):
        super().__init__()
        self.first = nn.Linear(3, 4, rng=rng)
        self.act = nn.ReLU()
        self.second = nn.Linear(4, 2, bias=False, rng=rng + 1)
        self.scale = nn.Parameter(np.array([1.5], dtype=np.float32))
        self.register_buffer("steps", np.zeros((), dtype=np.int64))
        self.note = "not registered"

    def forward(self, x: Tensor) -> Tensor:
        self.steps.data[...] += 1
        return self.second(self.act(self.first(x))) * self.scale


# ---------------------------------------------------------------- registration


def test_parameters_and_submodules_register_by_attribute_assignment():
    block = Block()
    assert list(block._modules) == ["first", "act", "second"]
    assert list(block._parameters) == ["scale"]
    assert list(block._buffers) == ["steps"]
    assert "note" not in block._parameters and "note" not in block._modules


def test_named_parameters_use_dotted_names_in_registration_order():
    model = nn.Sequential(Block(), nn.Linear(2, 1, rng=5))
    names = [name for name, _ in model.named_parameters()]
    assert names == ["0.scale", "0.first.weight", "0.first.bias", "0.second.weight",
                     "1.weight", "1.bias"]
    assert [p for _, p in model.named_parameters()] == model.parameters()
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in model.parameters())


def test_a_shared_parameter_is_listed_once():
    model = nn.Sequential(nn.Linear(3, 3, rng=0), nn.Linear(3, 3, rng=1))
    model[1].weight = model[0].weight
    assert len(model.parameters()) == 3
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "1.bias"]


def test_reassigning_an_attribute_replaces_the_registration():
    block = Block()
    block.first = nn.ReLU()  # a module with no parameters now
    assert "first.weight" not in dict(block.named_parameters())
    block.scale = None
    assert "scale" not in dict(block.named_parameters())


def test_named_modules_and_buffers_walk_the_tree():
    model = nn.Sequential(Block(), nn.ReLU())
    assert [n for n, _ in model.named_modules()] == ["", "0", "0.first", "0.act", "0.second", "1"]
    assert [n for n, _ in model.named_buffers()] == ["0.steps"]
    assert list(model.children()) == [model[0], model[1]]


def test_assigning_before_super_init_raises_a_clear_error():
    class Forgetful(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.ones(2))

    with pytest.raises(RuntimeError, match=r"Forgetful: call super\(\).__init__\(\) before"):
        Forgetful()


def test_parameter_is_a_leaf_that_requires_grad():
    p = nn.Parameter(np.ones(3))
    assert p.is_leaf and p.requires_grad and isinstance(p, Tensor)
    assert repr(p).startswith("Parameter(")
    assert not nn.Parameter(np.ones(3), requires_grad=False).requires_grad


# ---------------------------------------------------------------- modes and grads


def test_train_and_eval_switch_every_descendant():
    model = nn.Sequential(Block(), nn.Sequential(nn.Dropout(0.5), nn.ReLU()))
    assert model.eval() is model
    assert all(not m.training for m in model.modules())
    model[1].train()
    assert model[1][0].training and not model[0].training
    model.train()
    assert all(m.training for m in model.modules())


def test_zero_grad_clears_every_parameter_gradient():
    model = Block()
    model(Tensor(np.ones((2, 3), dtype=np.float32))).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_dropout_is_active_in_train_mode_and_identity_in_eval_mode():
    drop = nn.Dropout(0.5, rng=0)
    x = Tensor(np.ones((20, 20)))
    out = drop(x).data
    assert set(np.unique(out)) == {0.0, 2.0}
    drop.eval()
    assert drop(x) is x


# ---------------------------------------------------------------- state dicts


def test_state_dict_round_trips_parameters_and_buffers_exactly():
    source, target = Block(rng=0), Block(rng=7)
    source(Tensor(np.ones((1, 3), dtype=np.float32)))  # bump the buffer
    state = source.state_dict()
    assert list(state) == ["scale", "first.weight", "first.bias", "second.weight", "steps"]
    assert state["steps"] == 1
    target.load_state_dict(state)
    pairs = zip(source.state_dict().items(), target.state_dict().values(), strict=True)
    for (name, a), b in pairs:
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    x = Tensor(np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32))
    np.testing.assert_array_equal(source(x).data, target(x).data)


def test_state_dict_holds_copies_not_views():
    model = nn.Linear(2, 2, rng=0)
    state = model.state_dict()
    state["weight"][...] = 0.0
    assert np.any(model.weight.data != 0.0)


def test_load_state_dict_copies_in_place_so_references_stay_valid():
    model = nn.Linear(2, 2, rng=0)
    weight = model.weight
    model.load_state_dict({"weight": np.zeros((2, 2)), "bias": np.ones(2)})
    assert model.weight is weight and np.all(weight.data == 0.0)
    assert weight.dtype == np.float32  # cast into the parameter's dtype


def test_load_state_dict_with_wrong_keys_names_missing_and_unexpected():
    model = nn.Linear(2, 2, rng=0)
    with pytest.raises(KeyError, match=r"missing keys \['bias'\], unexpected keys \['bais'\]"):
        model.load_state_dict({"weight": np.zeros((2, 2)), "bais": np.zeros(2)})
    model.load_state_dict({"weight": np.zeros((2, 2))}, strict=False)
    assert np.all(model.weight.data == 0.0)


def test_load_state_dict_with_a_wrong_shape_names_the_key_and_shapes():
    model = nn.Linear(2, 3, rng=0)
    bad = model.state_dict()
    bad["weight"] = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"weight has shape \(2, 3\), expected \(3, 2\)"):
        model.load_state_dict(bad)


def test_load_state_dict_refuses_an_unsafe_dtype_cast():
    model = nn.Linear(2, 2, rng=0)
    bad = model.state_dict()
    bad["bias"] = np.array([1 + 2j, 3j])
    with pytest.raises(TypeError, match=r"bias has dtype complex128, expected float32"):
        model.load_state_dict(bad)


# ---------------------------------------------------------------- Linear, ReLU, Sequential


def test_linear_init_is_reproducible_from_a_seed_and_bounded():
    a, b, c = nn.Linear(5, 3, rng=42), nn.Linear(5, 3, rng=42), nn.Linear(5, 3, rng=43)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    np.testing.assert_array_equal(a.bias.data, b.bias.data)
    assert not np.array_equal(a.weight.data, c.weight.data)
    bound = 1 / np.sqrt(5)
    assert np.all(np.abs(a.weight.data) <= bound) and np.all(np.abs(a.bias.data) <= bound)
    assert a.weight.shape == (3, 5) and a.weight.dtype == np.float32
    gen = np.random.default_rng(9)
    assert nn.Linear(5, 3, rng=gen).weight.shape == (3, 5)  # a Generator works too


def test_linear_computes_x_times_weight_transposed_plus_bias():
    layer = nn.Linear(3, 2, dtype=np.float64, rng=0)
    x = np.random.default_rng(1).standard_normal((4, 3))
    np.testing.assert_allclose(layer(Tensor(x)).data, x @ layer.weight.data.T + layer.bias.data)
    no_bias = nn.Linear(3, 2, bias=False, rng=0)
    assert no_bias.bias is None and len(no_bias.parameters()) == 1


def test_linear_gradients_match_numerical_for_input_weight_and_bias():
    layer = nn.Linear(3, 2, dtype=np.float64, rng=0)
    x = Tensor(np.random.default_rng(1).standard_normal((4, 3)), requires_grad=True)
    # gradcheck perturbs the parameters' arrays in place, so the layer sees the probes.
    gradcheck(lambda x_, w, b: layer(x_), [x, layer.weight, layer.bias])


def test_linear_rejects_bad_sizes_and_mismatched_inputs():
    message = r"Linear: in_features must be a positive int, got 0"
    with pytest.raises(ValueError, match=message):
        nn.Linear(0, 2)
    message = r"linear: input has 4 features \(shape \(2, 4\)\) but weight \(2, 3\) expects 3"
    with pytest.raises(ValueError, match=message):
        nn.Linear(3, 2, rng=0)(Tensor(np.ones((2, 4), dtype=np.float32)))


def test_relu_module_and_sequential_compose_in_order():
    model = nn.Sequential(nn.Linear(2, 3, rng=0), nn.ReLU(), nn.Linear(3, 1, rng=1))
    x = Tensor(np.array([[1.0, -2.0]], dtype=np.float32))
    expected = functional.linear(functional.linear(x, model[0].weight, model[0].bias).relu(),
                                 model[2].weight, model[2].bias)
    np.testing.assert_array_equal(model(x).data, expected.data)
    assert len(model) == 3 and isinstance(model[1], nn.ReLU)
    assert [type(m).__name__ for m in model] == ["Linear", "ReLU", "Linear"]
    np.testing.assert_array_equal(nn.ReLU()(Tensor(np.array([-1.0, 2.0]))).data, [0.0, 2.0])


def test_sequential_rejects_non_modules_naming_the_position():
    with pytest.raises(TypeError, match=r"Sequential: argument 1 is a function, not a Module"):
        nn.Sequential(nn.ReLU(), lambda x: x)


def test_module_without_forward_says_so():
    with pytest.raises(NotImplementedError, match=r"Empty does not define forward"):
        type("Empty", (nn.Module,), {})()(Tensor(np.ones(1)))


def test_repr_shows_the_tree():
    text = repr(nn.Sequential(nn.Linear(2, 3, rng=0), nn.ReLU()))
    assert "(0): Linear(in_features=2, out_features=3, bias=True, impl='composed')" in text
    assert "(1): ReLU()" in text


# ---------------------------------------------------------------- scopes


def _ops_by_name(root: Tensor) -> dict:
    """Every recorded Context reachable from root, grouped by op name."""
    found, stack, seen = {}, [root._ctx], set()
    while stack:
        ctx = stack.pop()
        if ctx is None or id(ctx) in seen:
            continue
        seen.add(id(ctx))
        found.setdefault(ctx.fn.name, []).append(ctx)
        stack.extend(p._ctx for p in ctx.parents)
    return found


def test_module_calls_record_their_nested_scope_on_the_ops_they_ran():
    inner = nn.Sequential(nn.Linear(3, 4, rng=0), nn.ReLU())
    model = nn.Sequential(inner, nn.Linear(4, 2, rng=1))
    x = Tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
    out = model(x) * 2.0  # this mul runs outside every module
    ops = _ops_by_name(out)
    assert out._ctx.scope == ()
    linear_scopes = {(model, inner, inner[0]), (model, model[1])}
    assert {ctx.scope for ctx in ops["matmul"]} == linear_scopes
    assert {ctx.scope for ctx in ops["add"]} == linear_scopes  # the bias additions
    assert [ctx.scope for ctx in ops["relu"]] == [(model, inner, inner[1])]


def test_scope_is_restored_after_a_module_raises():
    class Boom(nn.Module):
        def forward(self, x):
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        Boom()(Tensor(np.ones(1)))
    y = Tensor(np.ones(1), requires_grad=True) * 2.0
    assert y._ctx.scope == ()
