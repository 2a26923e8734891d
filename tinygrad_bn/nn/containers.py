"""Containers: ModuleList and ModuleDict (sub-modules held by index or name), and Identity.

They register what they hold, so its parameters, buffers, train/eval mode,
dtype casts and state dicts follow the container, as in torch.nn.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from tinygrad_bn.nn.module import Module


def _checked(owner: str, where: str, module: Any) -> Module:
    if not isinstance(module, Module):
        raise TypeError(f"{owner}: {where} is a {type(module).__name__}, not a Module")
    return module


class Identity(Module):
    """Returns its input unchanged (a placeholder, e.g. for a layer switched off); ignores arguments."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__()

    def forward(self, input: Any) -> Any:
        return input


class ModuleList(Module):
    """A list of modules, registered as children '0', '1', ...; it has no forward of its own."""

    def __init__(self, modules: Iterable[Module] | None = None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _index(self, i: int) -> int:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"ModuleList: index {i} is out of range for {n} modules")
        return i % n

    def __getitem__(self, i: int | slice) -> Module | ModuleList:
        modules = list(self._modules.values())
        return ModuleList(modules[i]) if isinstance(i, slice) else modules[self._index(i)]

    def __setitem__(self, i: int, module: Module) -> None:
        setattr(self, str(self._index(i)), _checked("ModuleList", f"item {i}", module))

    def __delitem__(self, i: int) -> None:
        modules = list(self._modules.values())
        del modules[self._index(i)]
        for name in list(self._modules):
            delattr(self, name)
        self.extend(modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self._modules.values()))

    def append(self, module: Module) -> ModuleList:
        """Add a module at the end; returns self."""
        setattr(self, str(len(self)), _checked("ModuleList", f"item {len(self)}", module))
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        """Append every module of `modules`; returns self."""
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        """Insert a module before position `index`."""
        modules = list(self._modules.values())
        modules.insert(index, _checked("ModuleList", f"item {index}", module))
        for name in list(self._modules):
            delattr(self, name)
        self.extend(modules)


class ModuleDict(Module):
    """A dict of modules by name, registered as children under those names, in insertion order."""

    def __init__(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]] | None = None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        if key not in self._modules:
            raise KeyError(f"ModuleDict: no module named {key!r}; it holds {list(self._modules)}")
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        if not isinstance(key, str) or not key or "." in key:
            raise KeyError(f"ModuleDict: keys must be non-empty strings without '.', got {key!r}")
        setattr(self, key, _checked("ModuleDict", f"item {key!r}", module))

    def __delitem__(self, key: str) -> None:
        self[key]  # noqa: B018 - the KeyError that names the known keys
        delattr(self, key)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._modules))

    def __contains__(self, key: object) -> bool:
        return key in self._modules

    def keys(self) -> list[str]:
        """The names, in insertion order."""
        return list(self._modules)

    def values(self) -> list[Module]:
        """The modules, in insertion order."""
        return list(self._modules.values())

    def items(self) -> list[tuple[str, Module]]:
        """(name, module) pairs, in insertion order."""
        return list(self._modules.items())

    def pop(self, key: str) -> Module:
        """Remove the module `key` and return it."""
        module = self[key]
        del self[key]
        return module

    def clear(self) -> None:
        """Remove every module."""
        for key in list(self._modules):
            delattr(self, key)

    def update(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]]) -> None:
        """Add (or replace) modules from a mapping or from (name, module) pairs."""
        pairs = modules.items() if isinstance(modules, Mapping) else modules
        for key, module in pairs:
            self[key] = module
