"""tinygrad_bn.save / load: tensors, state dicts and nested containers in one .npz file.

PyTorch's torch.save pickles, and unpickling runs code named in the file; here
nothing is pickled. The arrays go into an .npz (written atomically) and the
structure around them (dicts, lists, tuples, numbers, strings, None) into one
JSON entry, so loading a foreign file can only fail with a clear error, never
execute anything.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from tinygrad_bn._io import atomic_save_npz, load_npz_checked
from tinygrad_bn.tensor import Tensor

_STRUCTURE = "__structure__"
_FORMAT = "tinygrad_bn.save/1"


def save(obj: Any, f: str | os.PathLike) -> None:
    """Write `obj` (a Tensor, ndarray, number, string, None, or dicts/lists/tuples of them) to `f`."""
    arrays: dict[str, np.ndarray] = {}
    structure = {"format": _FORMAT, "root": _encode(obj, arrays, "obj")}
    arrays[_STRUCTURE] = np.array(json.dumps(structure))
    atomic_save_npz(f, **arrays)


def _encode(obj: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    if isinstance(obj, Tensor | np.ndarray):
        key = f"a{len(arrays)}"
        arrays[key] = np.asarray(obj.numpy() if isinstance(obj, Tensor) else obj)
        if arrays[key].dtype.hasobject:
            raise TypeError(f"save: {where} is an object array; only numeric, bool and string arrays "
                            "are saved")
        return {"tensor" if isinstance(obj, Tensor) else "array": key,
                **({"requires_grad": True} if isinstance(obj, Tensor) and obj.requires_grad else {})}
    if obj is None or isinstance(obj, bool | int | float | str):
        return {"value": obj}
    if isinstance(obj, np.generic):
        return {"value": obj.item()}
    if isinstance(obj, dict):
        for k in obj:
            if not isinstance(k, str | int):
                raise TypeError(f"save: {where} has a key of type {type(k).__name__}; "
                                "keys must be str or int")
        return {"dict": [[k, _encode(v, arrays, f"{where}[{k!r}]")] for k, v in obj.items()]}
    if isinstance(obj, list | tuple):
        items = [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]
        return {"tuple" if isinstance(obj, tuple) else "list": items}
    raise TypeError(f"save: {where} is a {type(obj).__name__}; expected Tensors, arrays, numbers, strings, "
                    "None, or dicts/lists/tuples of them (save a Module's or optimizer's state_dict())")


def load(f: str | os.PathLike) -> Any:
    """Read what `save` wrote, validating the file; Tensors come back as Tensors."""
    arrays = load_npz_checked(f)
    if _STRUCTURE not in arrays:
        raise ValueError(f"load: {str(f)!r} was not written by tinygrad_bn.save (no structure entry)")
    try:
        structure = json.loads(str(arrays.pop(_STRUCTURE)))
    except json.JSONDecodeError as err:
        raise ValueError(f"load: {str(f)!r} has a corrupt structure entry: {err}") from None
    if not isinstance(structure, dict) or structure.get("format") != _FORMAT:
        raise ValueError(f"load: {str(f)!r} has an unknown format {structure.get('format')!r}, "
                         f"expected {_FORMAT!r}")
    return _decode(structure["root"], arrays, str(f))


def _decode(node: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    if not isinstance(node, dict) or len(node) not in (1, 2):
        raise ValueError(f"load: {where} holds an entry that is not part of the format: {node!r}")
    kind, payload = next(iter(node.items()))
    if kind in ("tensor", "array"):
        if payload not in arrays:
            raise ValueError(f"load: {where} refers to a missing array {payload!r}")
        return Tensor(arrays[payload], requires_grad=bool(node.get("requires_grad"))) if kind == "tensor" \
            else arrays[payload]
    if kind == "value":
        return payload
    if kind == "dict":
        return {k: _decode(v, arrays, where) for k, v in payload}
    if kind in ("list", "tuple"):
        items = [_decode(v, arrays, where) for v in payload]
        return tuple(items) if kind == "tuple" else items
    raise ValueError(f"load: {where} holds an entry of unknown kind {kind!r}")
