"""Optimizer: parameter groups, per-parameter state and state dicts, as in torch.optim.

An optimizer holds `param_groups`, a list of dicts with the group's 'params'
and a value for every hyper-parameter (schedulers write 'lr' there between
steps), and `state`, a dict from each parameter to its buffers and step count.
Subclasses write only the update rule, `_update`, with the in-place helpers of
`_inplace.py`; `step()` runs it on the numpy arrays of every parameter that has
a gradient, so it records no graph in any grad mode, and then bumps each
updated parameter's version, so a graph that saved it before refuses backward.

`state_dict()` has PyTorch's layout: {'state': {index: {name: value}},
'param_groups': [{hyper-parameter: value, 'params': [index, ...]}]}, where a
parameter's index is its position counting through the groups in order.
"""

from __future__ import annotations

import math
import numbers
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from tinygrad_bn.autograd import enable_grad
from tinygrad_bn.optim._inplace import Scratch, mul
from tinygrad_bn.tensor import DIFFERENTIABLE_DTYPES, Tensor

Slot = tuple[np.ndarray, np.ndarray, dict[str, Any], np.ndarray]  # (p, g, state, tmp), see _update

# ---------------------------------------------------------------- the hyper-parameter checks


def _number(ok: Callable[[float], bool]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) and ok(v)


def _flag(v: Any) -> bool:
    return isinstance(v, bool)


def _betas(v: Any) -> bool:
    return isinstance(v, tuple) and len(v) == 2 and all(map(_number(lambda b: 0 <= b < 1), v))


# Every hyper-parameter of every optimizer: name -> (check, what the value must be).
HYPERPARAMETERS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "lr": (_number(lambda v: v >= 0), "a finite number >= 0"),
    "momentum": (_number(lambda v: v >= 0), "a finite number >= 0"),
    "dampening": (_number(lambda v: 0 <= v <= 1), "a number in [0, 1]"),
    "weight_decay": (_number(lambda v: v >= 0), "a finite number >= 0"),
    "eps": (_number(lambda v: v >= 0), "a finite number >= 0"),
    # alpha > 1 would give the new squared gradient a negative weight
    "alpha": (_number(lambda v: 0 <= v <= 1), "a number in [0, 1]"),
    "lr_decay": (_number(lambda v: v >= 0), "a finite number >= 0"),
    "initial_accumulator_value": (_number(lambda v: v >= 0), "a finite number >= 0"),
    # beta = 1 would never leave the zero start (and Adam's 1 - beta^t would be 0)
    "betas": (_betas, "a pair (beta1, beta2) of numbers in [0, 1)"),
    "nesterov": (_flag, "True or False"),
    "maximize": (_flag, "True or False"),
    "amsgrad": (_flag, "True or False"),
    "centered": (_flag, "True or False"),
}


def _plain(value: Any) -> Any:
    """numpy scalars, 0-d arrays and pairs (as read back from an .npz) as Python values."""
    if isinstance(value, np.ndarray) and value.ndim == 0 or isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple | np.ndarray):
        return tuple(_plain(v) for v in value)
    return value


def check_hyperparameter(owner: str, name: str, value: Any, where: str = "") -> Any:
    """`value` as a plain Python value, or a clear error naming `owner`, the hyper-parameter and the rule."""
    ok, expected = HYPERPARAMETERS[name]
    value = _plain(value)
    if ok(value):
        return float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else value
    kind = ValueError if isinstance(value, numbers.Number | tuple) else TypeError
    raise kind(f"{owner}: {where}{name} must be {expected}, got {value!r}")


# ---------------------------------------------------------------- parameter lists


def _param_list(owner: str, params: Any, where: str) -> list[Tensor]:
    """`params` as a list of distinct leaf float Tensors; `where` names it in errors."""
    if isinstance(params, Tensor):
        return [params]  # PyTorch accepts one tensor inside a group dict
    if isinstance(params, set):
        raise TypeError(f"{owner}: {where} is a set; pass a list, since a set's order changes between runs")
    if not isinstance(params, Iterable) or isinstance(params, str | bytes | Mapping):
        hint = " (pass model.parameters(), not the model)" if hasattr(params, "parameters") else ""
        raise TypeError(f"{owner}: {where} must be an iterable of Tensors, got {type(params).__name__}{hint}")
    params = list(params)
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            hint = " (pass model.parameters(), not the model)" if hasattr(p, "parameters") else ""
            raise TypeError(f"{owner}: {where}[{i}] is a {type(p).__name__}, expected a Tensor{hint}")
        if not p.is_leaf:
            raise ValueError(f"{owner}: {where}[{i}] (shape {p.shape}) is the output of an op, not a leaf; "
                             "only leaf tensors (Parameters) can be optimized")
        if p.dtype not in DIFFERENTIABLE_DTYPES:
            raise TypeError(f"{owner}: {where}[{i}] has dtype {p.dtype}, expected float32 or float64")
    return params


def _as_groups(owner: str, params: Any) -> list[dict[str, Any]]:
    """The constructor's `params`: an iterable of Tensors, or of dicts (parameter groups)."""
    if isinstance(params, Tensor):
        raise TypeError(f"{owner}: params must be an iterable of Tensors or of dicts (e.g. "
                        "model.parameters()), got a single Tensor; wrap it in a list")
    if isinstance(params, Iterable) and not isinstance(params, set | str | bytes | Mapping):
        params = list(params)
    if isinstance(params, list) and params and all(isinstance(g, Mapping) for g in params):
        return [dict(g) for g in params]
    groups = [{"params": _param_list(owner, params, "params")}]
    if not groups[0]["params"]:
        raise ValueError(f"{owner}: got an empty parameter list; nothing to optimize")
    return groups


# ---------------------------------------------------------------- the base class


def state_array(state: dict, name: str, like: np.ndarray, fill: float = 0.0) -> np.ndarray:
    """`state[name]`, created on first use filled with `fill`, in the shape and dtype of `like`."""
    array = state.get(name)
    if array is None:
        array = state[name] = np.full_like(like, fill)
    return array


def _follow_dtype(state: dict, dtype: np.dtype) -> None:
    """Cast a parameter's state arrays to its dtype (after a module's `.to(dtype)`)."""
    for name, value in state.items():
        if isinstance(value, np.ndarray) and value.dtype != dtype:
            state[name] = value.astype(dtype)


class Optimizer:
    """Base class: parameter groups, per-parameter state, state dicts; subclasses define `_update`."""

    # Entries every stepped parameter's state has, and those only some settings add.
    state_keys: tuple[str, ...] = ()
    optional_state_keys: tuple[str, ...] = ()
    # AdamW applies weight decay to the parameter itself; the others add weight_decay * p to g.
    decoupled_weight_decay = False

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], defaults: dict[str, Any]):
        name = type(self).__name__
        self.defaults = self._checked(defaults, "")
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        self._scratch = Scratch(2)
        groups = _as_groups(name, params)
        for group in groups:
            # errors name the group when there are groups; a plain list has one, named "params"
            self._add_group(group, f"param_groups[{len(self.param_groups)}]" if len(groups) > 1 else "")

    def _checked(self, group: Mapping[str, Any], where: str) -> dict[str, Any]:
        """`group` with every hyper-parameter checked (subclasses add checks across several)."""
        name = type(self).__name__
        return {k: check_hyperparameter(name, k, v, where) if k in HYPERPARAMETERS else v
                for k, v in group.items()}

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters; hyper-parameters it leaves out take the constructor's values."""
        self._add_group(param_group, f"param_groups[{len(self.param_groups)}]")

    def _add_group(self, param_group: dict[str, Any], where: str) -> None:
        """Check and append one group; `where` names it in errors ("" for the only group of a list)."""
        name, index = type(self).__name__, len(self.param_groups)
        if not isinstance(param_group, Mapping):
            raise TypeError(f"{name}: a parameter group must be a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"{name}: parameter group {index} has no 'params' entry")
        label = f"{where}['params']" if where else "params"
        params = _param_list(name, param_group["params"], label)
        seen = {id(p): f"param_groups[{i}]['params'][{j}]"
                for i, g in enumerate(self.param_groups) for j, p in enumerate(g["params"])}
        for j, p in enumerate(params):
            if id(p) in seen:
                raise ValueError(f"{name}: {label}[{j}] is the same parameter as {seen[id(p)]}; "
                                 "each parameter may appear once")
            seen[id(p)] = f"{label}[{j}]"
        group = self._checked({**self.defaults, **param_group}, f"{where}: " if where else "")
        group["params"] = params
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient (set `.grad` to None, or to zeros in place)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad.data.fill(0)
                    p.grad._bump_version()

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient, in place; returns `closure()`'s loss if given."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._update(group, self._with_grads(group))
        return loss

    def _update(self, group: dict[str, Any], params: Iterator[Slot]) -> None:
        """Apply the update rule to each (p, g, state, tmp) of one group (subclasses).

        p is the parameter's array, g its gradient (never written to), state its
        dict of buffers, tmp a scratch array shaped like p.
        """
        raise NotImplementedError

    def _with_grads(self, group: dict[str, Any]) -> Iterator[Slot]:
        """(p, g, state, tmp) for each parameter of `group` that has a gradient, for `_update`.

        g is the gradient the rule sees: -g when maximizing, plus weight_decay * p
        (an L2 penalty) unless the optimizer decays the weights itself.
        """
        wd = 0.0 if self.decoupled_weight_decay else group["weight_decay"]
        maximize = group["maximize"]
        state, scratch, views = self.state, self._scratch, self._scratch.views
        for param in group["params"]:
            if param.grad is None:
                continue
            p, g = param.data, param.grad.data
            if g.shape != p.shape:
                self._raise_shape(param)
            arrays = views.get(param)
            if arrays is None or arrays[0] is not p:  # the first step, or a new array (Module.to)
                arrays = scratch.make(param, p)
                _follow_dtype(state[param], p.dtype)
            _, work, tmp = arrays
            if wd:  # g <- wd p + g, or wd p - g when maximizing
                g = (np.subtract if maximize else np.add)(mul(p, wd, out=work), g, out=work)
            elif maximize:
                g = np.negative(g, out=work)
            yield p, g, state[param], tmp
            param._bump_version()  # a graph that saved the parameter before the step now refuses backward

    def _raise_shape(self, p: Tensor) -> None:
        index = self._indices()[id(p)]
        raise ValueError(f"{type(self).__name__}.step: parameter {index} has shape {p.shape} but its "
                         f"gradient has shape {p.grad.shape}; expected them to match")

    # ---------------------------------------------------------------- state dicts

    def _indices(self) -> dict[int, int]:
        """id(parameter) -> its index in state dicts (counting through the groups in order)."""
        params = [p for g in self.param_groups for p in g["params"]]
        return {id(p): i for i, p in enumerate(params)}

    def state_dict(self) -> dict[str, Any]:
        """{'state': {index: {name: value}}, 'param_groups': [...]}: copies, Tensors for arrays."""
        indices = self._indices()
        groups, start = [], 0
        for g in self.param_groups:
            groups.append({**{k: v for k, v in g.items() if k != "params"},
                           "params": list(range(start, start + len(g["params"])))})
            start += len(g["params"])
        state = {indices[id(p)]: {k: Tensor(v.copy()) if isinstance(v, np.ndarray) else v
                                  for k, v in s.items()}
                 for p, s in self.state.items() if s and id(p) in indices}
        return {"state": dict(sorted(state.items())), "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore `state_dict()`'s state and hyper-parameters; all is checked before anything changes."""
        name = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping) or set(state_dict) != {"state", "param_groups"}:
            got = sorted(state_dict) if isinstance(state_dict, Mapping) else type(state_dict).__name__
            raise ValueError(f"{name}: expected a dict with keys 'state' and 'param_groups', got {got}")
        groups = self._loaded_groups(name, state_dict["param_groups"])
        state = self._loaded_state(name, state_dict["state"])
        for current, loaded in zip(self.param_groups, groups):
            current.clear()
            current.update(loaded)
        self.state = defaultdict(dict, state)

    def _loaded_groups(self, name: str, saved: Any) -> list[dict[str, Any]]:
        """The saved groups, checked against ours (count, sizes, hyper-parameters), holding our params."""
        if not isinstance(saved, list | tuple) or len(saved) != len(self.param_groups):
            got = f"{len(saved)} groups" if isinstance(saved, list | tuple) else type(saved).__name__
            raise ValueError(f"{name}: the state has {got}, this optimizer has "
                             f"{len(self.param_groups)} parameter groups")
        groups, start = [], 0
        for i, (group, ours) in enumerate(zip(saved, self.param_groups)):
            where, indices = f"param_groups[{i}]: ", list(range(start, start + len(ours["params"])))
            if not isinstance(group, Mapping) or "params" not in group:
                raise ValueError(f"{name}: {where}expected a dict with a 'params' entry, got {group!r}")
            listed = _plain(group["params"])
            if not isinstance(listed, tuple) or list(listed) != indices:
                raise ValueError(f"{name}: {where}the state lists parameters {listed}, "
                                 f"this optimizer's group has parameters {indices}")
            missing = sorted(k for k in self.defaults if k not in group)
            if missing:
                raise ValueError(f"{name}: {where}missing hyper-parameters {missing}; is this the state of "
                                 f"another optimizer? ({type(self).__name__} has {sorted(self.defaults)})")
            checked = self._checked({k: _plain(v) for k, v in group.items() if k != "params"}, where)
            groups.append({**checked, "params": ours["params"]})
            start += len(indices)
        return groups

    def _loaded_state(self, name: str, saved: Any) -> dict[Tensor, dict[str, Any]]:
        """The saved per-parameter state, checked and copied into arrays of each parameter's dtype."""
        if not isinstance(saved, Mapping):
            raise ValueError(f"{name}: 'state' must be a dict, got {type(saved).__name__}")
        params = [p for g in self.param_groups for p in g["params"]]
        state = {}
        for index, entry in saved.items():
            i = int(index) if isinstance(index, str) and index.isdigit() else _plain(index)
            if type(i) is not int or not 0 <= i < len(params) or not isinstance(entry, Mapping):
                raise ValueError(f"{name}: state entry {index!r} must be a parameter index in "
                                 f"[0, {len(params)}) holding a dict, got {type(entry).__name__}")
            state[params[i]] = self._loaded_entry(f"{name}: state[{i}]", entry, params[i])
        return state

    def _loaded_entry(self, where: str, entry: Mapping[str, Any], p: Tensor) -> dict[str, Any]:
        """One parameter's saved state: the expected names, a whole step count, arrays shaped like p."""
        known = self.state_keys + self.optional_state_keys
        missing, unexpected = sorted(set(self.state_keys) - set(entry)), sorted(set(entry) - set(known))
        if missing or unexpected:
            raise ValueError(f"{where} has missing entries {missing} and unexpected entries "
                             f"{unexpected}; {type(self).__name__} keeps {list(known)}")
        loaded: dict[str, Any] = {}
        for key, value in entry.items():
            value = value.data if isinstance(value, Tensor) else value
            if key == "step":  # PyTorch saves it as a float tensor
                step = _plain(value)
                if not isinstance(step, int | float) or isinstance(step, bool) or step < 0 or step % 1:
                    raise ValueError(f"{where}['step'] must be a whole number >= 0, got {step!r}")
                loaded[key] = int(step)
                continue
            array = np.asarray(value)
            if array.shape != p.shape or array.dtype.kind != "f":
                raise ValueError(f"{where}[{key!r}] has shape {array.shape} and dtype {array.dtype}; "
                                 f"expected a float array of the parameter's shape {p.shape}")
            loaded[key] = array.astype(p.dtype, copy=True)
        return loaded

    # ---------------------------------------------------------------- copies and printing

    def __getstate__(self) -> dict[str, Any]:
        # copy.deepcopy (and pickle) leave the scratch arrays out: they hold no state
        return {k: v for k, v in self.__dict__.items() if k != "_scratch"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._scratch = Scratch(2)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines) + "\n)"
