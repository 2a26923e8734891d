"""An optimizer's state as a flat dict of numpy arrays, for `.npz` files (no pickles), and back.

    state_to_arrays(Adam(...)) == {
        "optimizer": array("Adam"),                 # the class, checked when loading
        "param_groups.0.lr": array(0.001), "param_groups.0.betas": array([0.9, 0.999]),
        "param_groups.0.params": array([0, 1]), ...,
        "state.0.step": array(3), "state.0.exp_avg": array([...]), ...}

The keys spell out `optimizer.state_dict()`'s nesting; `load_state_from_arrays`
rebuilds it and hands it to `optimizer.load_state_dict`, which checks it all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from tinygrad_bn.optim.optimizer import Optimizer
from tinygrad_bn.tensor import Tensor


def _array(value: Any, where: str) -> np.ndarray:
    array = np.asarray(value.data if isinstance(value, Tensor) else value)
    if array.dtype.kind not in "biufU":
        raise ValueError(f"state_to_arrays: {where} is {value!r}, which an .npz file cannot hold "
                         "without pickling; expected numbers, strings or arrays")
    return array


def state_to_arrays(optimizer: Optimizer) -> dict[str, np.ndarray]:
    """`optimizer.state_dict()` (and the optimizer's class name) as a flat dict of arrays."""
    state = optimizer.state_dict()
    arrays = {"optimizer": np.array(type(optimizer).__name__)}
    for i, group in enumerate(state["param_groups"]):
        for key, value in group.items():
            if key == "params":
                value = np.asarray(value, dtype=np.int64)
            arrays[f"param_groups.{i}.{key}"] = _array(value, f"param_groups[{i}][{key!r}]")
    for index, entry in state["state"].items():
        for key, value in entry.items():
            arrays[f"state.{index}.{key}"] = _array(value, f"state[{index}][{key!r}]")
    return arrays


def load_state_from_arrays(optimizer: Optimizer, arrays: Mapping[str, np.ndarray]) -> None:
    """Load what `state_to_arrays` wrote into `optimizer` (same class, same parameter groups)."""
    name = f"{type(optimizer).__name__}.load_state_dict"
    if "optimizer" not in arrays:
        raise ValueError(f"{name}: no 'optimizer' entry; is this an optimizer's state?")
    kind = np.asarray(arrays["optimizer"]).item()
    if kind != type(optimizer).__name__:
        raise ValueError(f"{name}: the state is for optimizer {kind!r}, not {type(optimizer).__name__!r}")
    sections: dict[str, dict[int, dict[str, Any]]] = {"param_groups": {}, "state": {}}
    for key, value in arrays.items():
        if key == "optimizer":
            continue
        section, _, rest = key.partition(".")
        index, _, field = rest.partition(".")
        if section not in sections or not index.isdigit() or not field:
            raise ValueError(f"{name}: unexpected entry {key!r}; expected 'param_groups.<i>.<name>' "
                             "or 'state.<i>.<name>'")
        sections[section].setdefault(int(index), {})[field] = value
    groups = sections["param_groups"]
    if sorted(groups) != list(range(len(groups))):
        raise ValueError(f"{name}: parameter groups {sorted(groups)} are not numbered 0, 1, ...")
    groups = dict(sorted(groups.items()))
    optimizer.load_state_dict({"state": sections["state"], "param_groups": list(groups.values())})
