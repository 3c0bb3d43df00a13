"""Containers: ``Sequential`` (modules applied in order) and ``ModuleList`` (a registered list)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from chainrule.nn.module import Module, from_config, register_module


@register_module
class Sequential(Module):
    """Modules applied one after another: ``Sequential(Linear(2, 3), ReLU(), Linear(3, 1))``.

    Children are named "0", "1", ... (or by the keys of a single ``dict`` argument).
    """

    def __init__(self, *modules: Module | Mapping[str, Module]) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], Mapping):
            for name, m in modules[0].items():
                self.add_module(str(name), m)
        else:
            for i, m in enumerate(modules):
                if not isinstance(m, Module):
                    raise TypeError(f"Sequential: argument {i} is a {type(m).__name__}, not a Module")
                self.add_module(str(i), m)

    def forward(self, x: Any) -> Any:
        for m in self._modules.values():
            x = m(x)
        return x

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index: int | slice) -> Any:
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict(items[index]))
        return items[_list_index(index, len(items), "Sequential")][1]

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self._modules)), module)
        return self

    def get_config(self) -> dict[str, Any]:
        names = list(self._modules)
        config: dict[str, Any] = {"type": "Sequential", "layers": [m.get_config() for m in self._modules.values()]}
        if names != [str(i) for i in range(len(names))]:
            config["names"] = names
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Module:
        layers = [from_config(c) for c in config.get("layers", [])]
        names = config.get("names")
        if names is not None:
            return cls(OrderedDict(zip(names, layers)))
        return cls(*layers)


@register_module
class ModuleList(Module):
    """A list of modules whose parameters are registered (names "0", "1", ...); no forward of its own."""

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index: int | slice) -> Any:
        items = list(self._modules.values())
        if isinstance(index, slice):
            return ModuleList(items[index])
        return items[_list_index(index, len(items), "ModuleList")]

    def __setitem__(self, index: int, module: Module) -> None:
        i = _list_index(index, len(self._modules), "ModuleList")
        self.add_module(str(i), module)

    def append(self, module: Module) -> ModuleList:
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList.append: expected a Module, got {type(module).__name__}")
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        items = list(self._modules.values())
        items.insert(index, module)
        for name in list(self._modules):
            self._forget(name)
        self.extend(items)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ModuleList has no forward(): iterate over it and call each module")

    def get_config(self) -> dict[str, Any]:
        return {"type": "ModuleList", "modules": [m.get_config() for m in self._modules.values()]}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Module:
        return cls([from_config(c) for c in config.get("modules", [])])


def _list_index(index: int, n: int, what: str) -> int:
    if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
        raise TypeError(f"{what} indices must be integers or slices, not {type(index).__name__}")
    if not -n <= index < n:
        raise IndexError(f"{what} index {index} is out of range for length {n}")
    return int(index) % n


__all__ = ["ModuleList", "Sequential"]
