"""nn.Module and the basic layers: registration, traversal, modes, state dicts, scopes.

The norm layers (BatchNorm1d/2d, LayerNorm) have their own test module.
"""

import copy

import numpy as np
import pytest

from tinygrad_bn import Tensor, functional, nn, optim
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
    # PyTorch's order: each module's parameters, then its buffers, then its children's
    assert list(state) == ["scale", "steps", "first.weight", "first.bias", "second.weight"]
    assert state["steps"].item() == 1
    target.load_state_dict(state)
    pairs = zip(source.state_dict().items(), target.state_dict().values(), strict=True)
    for (name, a), b in pairs:
        assert a.dtype == b.dtype and np.array_equal(a.numpy(), b.numpy()), name
    x = Tensor(np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32))
    np.testing.assert_array_equal(source(x).data, target(x).data)


def test_state_dict_values_are_detached_tensor_copies_that_npz_takes(tmp_path):
    model = nn.Linear(2, 2, rng=0)
    state = model.state_dict()
    assert all(type(v) is Tensor and not v.requires_grad for v in state.values())
    state["weight"].data[...] = 0.0
    assert np.any(model.weight.data != 0.0)
    np.savez(tmp_path / "w.npz", **{k: v.numpy() for k, v in state.items()})
    with np.load(tmp_path / "w.npz", allow_pickle=False) as saved:
        model.load_state_dict(dict(saved))
    assert not model.weight.data.any()
    kept = model.state_dict(keep_vars=True)
    assert kept["weight"] is model.weight and kept["bias"] is model.bias


def test_a_non_persistent_buffer_is_left_out_of_the_state_dict():
    module = nn.Module()
    module.register_buffer("kept", np.zeros(2))
    module.register_buffer("scratch", np.zeros(2), persistent=False)
    assert list(module.state_dict()) == ["kept"]
    assert [n for n, _ in module.named_buffers()] == ["kept", "scratch"]


def test_load_state_dict_copies_in_place_so_references_stay_valid():
    model = nn.Linear(2, 2, rng=0)
    weight = model.weight
    model.load_state_dict({"weight": Tensor(np.zeros((2, 2))), "bias": np.ones(2)})
    assert model.weight is weight and np.all(weight.data == 0.0)
    assert weight.dtype == np.float32  # cast into the parameter's dtype


def test_load_state_dict_refuses_backward_through_a_graph_that_saved_the_old_values():
    model = nn.Linear(2, 2, dtype=np.float64, rng=0)
    loss = (model.weight * model.weight).sum()
    model.load_state_dict(model.state_dict())
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


def test_load_state_dict_with_wrong_keys_names_missing_and_unexpected():
    model = nn.Linear(2, 2, rng=0)
    with pytest.raises(RuntimeError, match=r"missing keys \['bias'\], unexpected keys \['bais'\]"):
        model.load_state_dict({"weight": np.zeros((2, 2)), "bais": np.zeros(2)})
    result = model.load_state_dict({"weight": np.zeros((2, 2))}, strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == []
    assert np.all(model.weight.data == 0.0)


def test_load_state_dict_with_a_wrong_shape_names_the_key_and_shapes_and_changes_nothing():
    model = nn.Linear(2, 3, rng=0)
    before = model.weight.data.copy()
    bad = {"bias": np.zeros(3), "weight": np.zeros((2, 3))}
    with pytest.raises(RuntimeError, match=r"weight has shape \(2, 3\), expected \(3, 2\)"):
        model.load_state_dict(bad)
    np.testing.assert_array_equal(model.weight.data, before)
    assert model.bias.data.any()  # the valid entry was not copied either


def test_load_state_dict_refuses_an_unsafe_dtype_cast():
    model = nn.Linear(2, 2, rng=0)
    bad = model.state_dict()
    bad["bias"] = np.array([1 + 2j, 3j])
    with pytest.raises(TypeError, match=r"bias has dtype complex128, expected float32"):
        model.load_state_dict(bad)


def test_a_pytorch_state_dict_as_numpy_arrays_loads_into_the_same_architecture():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(),
                                 torch.nn.Linear(8, 3))
    x = np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32)
    with torch.no_grad():
        for _ in range(3):  # move the running statistics away from their start
            theirs(torch.tensor(x) * 2 + 1)
    ours = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    for train in (True, False):
        theirs.train(train)
        ours.train(train)
        expected = theirs(torch.tensor(x)).detach().numpy()
        np.testing.assert_allclose(ours(Tensor(x)).data, expected, rtol=1e-5, atol=1e-6)
    for k, v in theirs.state_dict().items():  # training mode updated both the same way
        np.testing.assert_allclose(ours.state_dict()[k].numpy(), v.numpy(), rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------- traversal, apply, dtypes


def test_children_and_modules_list_a_shared_module_once():
    shared = nn.Linear(2, 2, rng=0)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert list(model.children()) == [shared, model[1]]
    assert [n for n, _ in model.named_children()] == ["0", "1"]
    assert [n for n, _ in model.named_modules()] == ["", "0", "1"]
    assert len(model.parameters()) == 2 and model.buffers() == []


def test_apply_visits_children_before_their_parent_and_returns_self():
    model = nn.Sequential(nn.Linear(2, 2, rng=0), nn.Sequential(nn.ReLU(), nn.Linear(2, 1, rng=1)))
    seen = []
    assert model.apply(lambda m: seen.append(type(m).__name__)) is model
    assert seen == ["Linear", "ReLU", "Linear", "Sequential", "Sequential"]
    model.apply(lambda m: nn.init.zeros_(m.weight) if isinstance(m, nn.Linear) else None)
    assert not model[0].weight.data.any() and not model[1][1].weight.data.any()


def test_requires_grad_turns_every_parameter_off_and_on():
    model = Block()
    assert model.requires_grad_(False) is model
    assert not any(p.requires_grad for p in model.parameters())
    model.requires_grad_()
    assert all(p.requires_grad for p in model.parameters())


def test_double_casts_parameters_float_buffers_and_grads_in_place_keeping_the_tensors():
    model = nn.Sequential(nn.Linear(3, 2, rng=0), nn.BatchNorm1d(2))
    rng = np.random.default_rng(0)
    x, projection = (rng.standard_normal(s).astype(np.float32) for s in [(4, 3), (4, 2)])
    (model(Tensor(x)) * projection).sum().backward()  # (a plain sum through BatchNorm has zero gradient)
    tensors = [*model.parameters(), *model.buffers()]
    opt = optim.SGD(model.parameters(), lr=0.1)
    assert model.double() is model
    assert [*model.parameters(), *model.buffers()] == tensors and all(
        a is b for a, b in zip([*model.parameters(), *model.buffers()], tensors))
    assert {p.dtype for p in model.parameters()} == {np.dtype(np.float64)}
    assert model[1].running_mean.dtype == np.float64 and model[1].num_batches_tracked.dtype == np.int64
    assert all(p.grad.dtype == np.float64 for p in model.parameters())
    before = model[0].weight.data.copy()
    opt.step()  # the optimizer built before the cast still updates the same parameters
    assert not np.array_equal(model[0].weight.data, before)
    out = model(Tensor(np.ones((4, 3))))
    assert out.dtype == np.float64
    model.float()
    assert model[0].weight.dtype == np.float32
    assert model.to(Tensor(np.zeros(1))).parameters()[0].dtype == np.float64  # a tensor's dtype


def test_to_refuses_non_float_dtypes_and_other_devices():
    model = nn.Linear(2, 2, rng=0)
    with pytest.raises(TypeError, match="Linear.to: only float dtypes are allowed, got int64"):
        model.to(np.int64)
    with pytest.raises(ValueError, match="device 'cuda' is not available"):
        model.to("cuda")
    assert model.to("cpu") is model and model.weight.dtype == np.float32


def test_register_parameter_and_add_module_and_delattr():
    module = nn.Module()
    module.register_parameter("w", nn.Parameter(np.ones(2)))
    module.add_module("child", nn.Linear(2, 1, rng=0))
    assert [n for n, _ in module.named_parameters()] == ["w", "child.weight", "child.bias"]
    del module.w
    assert [n for n, _ in module.named_parameters()] == ["child.weight", "child.bias"]
    with pytest.raises(TypeError, match=r"register_parameter: 'x' must be a Parameter or None, got Tensor"):
        module.register_parameter("x", Tensor(np.ones(2)))


# ---------------------------------------------------------------- copies


def test_deepcopy_of_a_module_is_independent_and_equal():
    model = nn.Sequential(nn.Linear(3, 2, rng=0), nn.BatchNorm1d(2), nn.Dropout(0.5, rng=0))
    twin = copy.deepcopy(model)
    assert all(p is not q for p, q in zip(model.parameters(), twin.parameters()))
    x = Tensor(np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32))
    np.testing.assert_array_equal(model(x).data, twin(x).data)  # Dropout's generator was copied too
    twin[0].weight.data[...] = 0
    assert model[0].weight.data.any()


# ---------------------------------------------------------------- hooks


def test_forward_pre_hook_and_forward_hook_can_replace_input_and_output():
    layer = nn.Linear(2, 2, dtype=np.float64, rng=0)
    calls = []
    pre = layer.register_forward_pre_hook(lambda m, args: (calls.append("pre"), (args[0] * 2,))[1])
    post = layer.register_forward_hook(lambda m, args, out: (calls.append("post"), out + 1)[1])
    x = Tensor(np.ones((1, 2)))
    expected = x.data * 2 @ layer.weight.data.T + layer.bias.data + 1
    np.testing.assert_allclose(layer(x).data, expected)
    assert calls == ["pre", "post"]
    pre.remove()
    post.remove()
    pre.remove()  # twice is fine
    np.testing.assert_allclose(layer(x).data, x.data @ layer.weight.data.T + layer.bias.data)


def test_a_hook_handle_used_as_a_context_manager_removes_the_hook():
    layer, seen = nn.ReLU(), []
    with layer.register_forward_hook(lambda m, args, out: seen.append(out)):
        layer(Tensor(np.ones(2)))
    layer(Tensor(np.ones(2)))
    assert len(seen) == 1
    with pytest.raises(TypeError, match="register_forward_hook: hook must be callable, got int"):
        layer.register_forward_hook(3)


def test_full_backward_hook_sees_the_gradients_of_input_and_output():
    layer = nn.Linear(3, 2, dtype=np.float64, rng=0)
    seen = []
    layer.register_full_backward_hook(lambda m, gi, go: seen.append((m, gi, go)))
    x = Tensor(np.random.default_rng(0).standard_normal((4, 3)), requires_grad=True)
    out = layer(x)
    (out * out).sum().backward()
    [(module, grad_input, grad_output)] = seen
    assert module is layer and len(grad_input) == 1 and len(grad_output) == 1
    np.testing.assert_allclose(grad_output[0].data, 2 * out.data)
    np.testing.assert_allclose(grad_input[0].data, x.grad.data)
    np.testing.assert_allclose(x.grad.data, 2 * out.data @ layer.weight.data)


def test_full_backward_hook_can_replace_grad_input():
    layer = nn.Tanh()
    layer.register_full_backward_hook(lambda m, gi, go: (gi[0] * 10,))
    x = Tensor(np.array([0.5, -1.0]), requires_grad=True)
    layer(x).sum().backward()
    np.testing.assert_allclose(x.grad.data, 10 * (1 - np.tanh(x.data) ** 2))


class Scale(nn.Module):
    """a * b, ignoring c (an unused tensor) and note (not a tensor)."""

    def forward(self, a, b, c, note):
        return a * b


def test_full_backward_hook_of_a_module_with_several_inputs_gets_one_entry_per_argument():
    module, seen = Scale(), []
    module.register_full_backward_hook(lambda m, gi, go: (seen.append(gi), (gi[0] * 3, gi[1], None, None))[1])
    a, b, c = (Tensor(np.array(v), requires_grad=True) for v in ([1.0, 2.0], [3.0, 4.0], [5.0]))
    module(a, b, c, "note").sum().backward()
    [grad_input] = seen
    np.testing.assert_allclose(grad_input[0].data, b.data)
    np.testing.assert_allclose(grad_input[1].data, a.data)
    assert grad_input[2] is None and grad_input[3] is None  # c is unused, "note" is no tensor
    np.testing.assert_allclose(a.grad.data, 3 * b.data)
    np.testing.assert_allclose(b.grad.data, a.data)
    assert c.grad is None


def test_full_backward_hook_runs_without_input_gradients_too():
    layer, seen = nn.Linear(2, 1, dtype=np.float64, rng=0), []
    layer.register_full_backward_hook(lambda m, gi, go: seen.append((gi, go)))
    layer(Tensor(np.ones((3, 2)))).sum().backward()  # the input does not require grad
    [(grad_input, grad_output)] = seen
    assert grad_input == (None,) and grad_output[0].shape == (3, 1)


def test_a_hook_returning_the_wrong_number_of_gradients_is_refused():
    layer = nn.Tanh()
    layer.register_full_backward_hook(lambda m, gi, go: (gi[0], gi[0]))
    x = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(RuntimeError, match="returned 2 gradients, expected 1"):
        layer(x).sum().backward()


def test_hooked_modules_keep_exact_first_and_second_derivatives():
    # The identity nodes behind backward hooks (one input; several, packed) are differentiable.
    from tinygrad_bn.gradcheck import gradcheck, gradgradcheck

    tanh, scale = nn.Tanh(), Scale()
    for module in (tanh, scale):
        module.register_full_backward_hook(lambda m, gi, go: None)
    rng = np.random.default_rng(0)
    x, y = (Tensor(rng.standard_normal(3), requires_grad=True) for _ in range(2))
    fn = lambda x, y: scale(tanh(x), y * y, x, None)  # noqa: E731
    gradcheck(fn, [x, y])
    gradgradcheck(fn, [x, y])


# ---------------------------------------------------------------- containers


def test_module_list_registers_and_indexes_its_modules():
    layers = nn.ModuleList([nn.Linear(2, 2, rng=i) for i in range(2)])
    layers.append(nn.ReLU()).extend([nn.Tanh()])
    layers.insert(1, nn.Sigmoid())
    assert [type(m).__name__ for m in layers] == ["Linear", "Sigmoid", "Linear", "ReLU", "Tanh"]
    assert len(layers) == 5 and layers[-1] is layers[4] and isinstance(layers[1:3], nn.ModuleList)
    assert [n for n, _ in layers.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    del layers[1]
    assert [n for n, _ in layers.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    layers[3] = nn.Identity()
    assert isinstance(layers[3], nn.Identity)
    with pytest.raises(IndexError, match="ModuleList: index 7 is out of range for 4 modules"):
        layers[7]
    with pytest.raises(TypeError, match="ModuleList: item 4 is a function, not a Module"):
        layers.append(lambda x: x)


def test_module_dict_registers_modules_by_name():
    heads = nn.ModuleDict({"a": nn.Linear(2, 1, rng=0)})
    heads["b"] = nn.Linear(2, 3, rng=1)
    assert heads.keys() == ["a", "b"] and "b" in heads and len(heads) == 2
    assert [n for n, _ in heads.named_parameters()] == ["a.weight", "a.bias", "b.weight", "b.bias"]
    assert heads.pop("a").out_features == 1 and list(heads) == ["b"]
    heads.update([("c", nn.ReLU())])
    assert [k for k, _ in heads.items()] == ["b", "c"] and heads.values()[1] is heads["c"]
    with pytest.raises(KeyError, match=r"ModuleDict: no module named 'z'; it holds \['b', 'c'\]"):
        heads["z"]
    with pytest.raises(KeyError, match="keys must be non-empty strings without '.'"):
        heads["x.y"] = nn.ReLU()
    heads.clear()
    assert len(heads) == 0 and heads.parameters() == []


def test_identity_returns_its_input_and_takes_any_arguments():
    x = Tensor(np.ones(2))
    assert nn.Identity(54, unused="x")(x) is x


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
