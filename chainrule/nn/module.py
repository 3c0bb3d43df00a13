"""``Module`` and ``Parameter``: the containers that hold a model's weights.

A ``Module`` registers every ``Parameter`` and every sub-``Module`` assigned to one of
its attributes, so ``named_parameters()`` can walk the whole model and name each
weight by its attribute path ("layers.0.weight"), as in PyTorch::

    class TwoLayer(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.Linear(2, 3)
            self.out = nn.Linear(3, 1)

        def forward(self, x):
            return self.out(self.hidden(x).tanh())

Buffers (``register_buffer``) are tensors that belong to the model's state but get
no gradient, such as BatchNorm's running statistics; they travel in ``state_dict()``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from chainrule.autograd.engine import clear_grads
from chainrule.autograd.grad_mode import structure
from chainrule.autograd.tensor import Tensor

_F32 = np.dtype(np.float32)


class Parameter(Tensor):
    """A leaf tensor that a ``Module`` registers as a learnable weight (``requires_grad=True``).

    ``Parameter(data)`` copies ``data``; Python numbers and lists become float32, NumPy
    arrays keep their dtype (pass ``dtype=`` to choose). Results of ops on a parameter
    are plain tensors.
    """

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True, dtype: Any = None, name: str | None = None) -> None:
        super().__init__(data, requires_grad=requires_grad, dtype=dtype, name=name)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class StateDictKeyError(KeyError):
    """``load_state_dict(strict=True)`` found missing or unexpected keys (the message lists them)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict`` could not match: keys the model wanted and keys it did not know."""

    missing_keys: list[str]
    unexpected_keys: list[str]


# --------------------------------------------------------------------- config registry
_REGISTRY: dict[str, type[Module]] = {}


def register_module(cls: type[Module]) -> type[Module]:
    """Class decorator: make ``from_config({"type": cls.__name__, ...})`` able to rebuild ``cls``.

    The class must also define ``get_config()`` returning its constructor's keyword arguments
    (JSON-serializable). Every built-in layer is registered.
    """
    name = cls.__name__
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(f"register_module: a different module class named {name!r} is already registered")
    _REGISTRY[name] = cls
    return cls


def from_config(config: Mapping[str, Any]) -> Module:
    """Build a fresh (newly initialized) module from ``get_config()`` output, e.g. ``{"type": "MLP", ...}``."""
    if not isinstance(config, Mapping) or "type" not in config:
        raise ValueError(f"from_config: expected a dict with a 'type' key, got {config!r}")
    kind = config["type"]
    cls = _REGISTRY.get(kind)
    if cls is None:
        raise ValueError(
            f"from_config: unknown module type {kind!r}; known types: {', '.join(sorted(_REGISTRY))} "
            "(decorate a custom class with chainrule.nn.register_module to add it)"
        )
    return cls.from_config(config)


# --------------------------------------------------------------------- Module
class Module:
    """Base class of every layer and model: override ``forward``; call the module to run it."""

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        out = self.forward(*args, **kwargs)
        node = getattr(out, "_grad_fn", None)
        if node is not None and node.scope is None:
            # NOTE: the node that made the output remembers the innermost module call (a Sequential's
            # output node is its last layer's) and its arguments, so chainrule.viz.draw can draw one
            # box per call; backward lets go of them with the node's inputs. Measured: 0.05 us a call.
            node.scope = (self, args)
        return out

    # ----------------------------------------------------------------- registration
    def _check_init(self) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__}: call super().__init__() at the start of __init__ "
                "before assigning parameters or submodules"
            )

    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        if name in d and d[name] is value:
            return  # ``self.weight = self.weight``: nothing changes
        if isinstance(value, Parameter):
            self._check_init()
            self._put("_parameters", name, value)
        elif isinstance(value, Module):
            self._check_init()
            self._put("_modules", name, value)
        elif "_parameters" in d and name in d["_parameters"]:
            if value is not None:
                raise TypeError(
                    f"cannot assign a {type(value).__name__} to parameter {name!r} of {type(self).__name__}: "
                    "assign an nn.Parameter (or None)"
                )
            d["_parameters"][name] = d[name] = None
            structure.version += 1
        elif "_buffers" in d and name in d["_buffers"]:
            d["_buffers"][name] = d[name] = None if value is None else _as_buffer(value, name)
            structure.version += 1
        elif "_modules" in d and name in d["_modules"]:
            if value is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} to submodule {name!r}: assign a Module")
            d["_modules"][name] = d[name] = None
            structure.version += 1
        else:
            object.__setattr__(self, name, value)

    # NOTE: the registries (_parameters, _buffers, _modules) are the truth; every entry is also
    # mirrored in the instance __dict__ under its name, so ``self.weight`` is an ordinary attribute
    # lookup (measured: 0.05 us) instead of a failed one followed by ``__getattr__`` (about 1 us,
    # paid for every parameter and submodule of every forward). Only _put, _forget, __setattr__
    # and __delattr__ write the registries, and each keeps the mirror in step.
    def _put(self, table: str, name: str, value: Any) -> None:
        # Replacing an entry keeps its position (so "0", "1", ... stay in order).
        d = self.__dict__
        if name not in d[table]:
            self._forget(name)
        d[table][name] = d[name] = value
        structure.version += 1  # chainrule.compile retraces functions that captured the old object

    def _forget(self, name: str) -> None:
        for key in ("_parameters", "_buffers", "_modules"):
            self.__dict__[key].pop(name, None)
        self.__dict__.pop(name, None)
        structure.version += 1

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails (the mirror makes that rare): look in the registries.
        d = self.__dict__
        for key in ("_parameters", "_buffers", "_modules"):
            table = d.get(key)
            if table is not None and name in table:
                return table[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        d = self.__dict__
        for key in ("_parameters", "_buffers", "_modules"):
            if name in d.get(key, ()):
                del d[key][name]
                d.pop(name, None)
                d["_non_persistent"].discard(name)
                structure.version += 1
                return
        object.__delattr__(self, name)

    def __dir__(self) -> list[str]:
        extra = [*self._parameters, *self._buffers, *self._modules]
        return sorted(set(super().__dir__()) | set(extra))

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` under ``name`` (same as assigning it as an attribute)."""
        self._check_init()
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be an nn.Parameter or None, got {type(param).__name__}")
        self._put("_parameters", name, param)

    def register_buffer(self, name: str, value: Any, persistent: bool = True) -> None:
        """Register state that is not learned (no gradient), e.g. running statistics.

        Stored as a ``Tensor`` without grad; ``persistent=False`` keeps it out of ``state_dict``.
        """
        self._check_init()
        self._put("_buffers", name, None if value is None else _as_buffer(value, name))
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register a submodule under ``name``."""
        self._check_init()
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module, got {type(module).__name__}")
        self._put("_modules", name, module)

    # ----------------------------------------------------------------- traversal
    def named_modules(self, prefix: str = "", memo: set[int] | None = None) -> Iterator[tuple[str, Module]]:
        """Every module in the tree (this one first, named ``prefix``), each once."""
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """The direct submodules with their attribute names."""
        for name, child in self._modules.items():
            if child is not None:
                yield name, child

    def children(self) -> Iterator[Module]:
        for _, child in self.named_children():
            yield child

    def _named_members(self, table: str, prefix: str, recurse: bool) -> Iterator[tuple[str, Any]]:
        seen: set[int] = set()
        modules = self.named_modules(prefix) if recurse else iter([(prefix, self)])
        for mod_prefix, module in modules:
            for name, value in getattr(module, table).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) pairs, e.g. ("layers.0.weight", ...); shared parameters appear once."""
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Total number of scalar weights."""
        return sum(p.size for p in self.parameters() if p.requires_grad or not trainable_only)

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every submodule (children first) and on self; returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ----------------------------------------------------------------- modes and grads
    def train(self, mode: bool = True) -> Module:
        """Set training mode (Dropout active, BatchNorm uses batch statistics) here and below."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Set evaluation mode: same as ``train(False)``."""
        return self.train(False)

    @property
    def capturable(self) -> bool:
        """Whether a forward pass of this module alone is a fixed composition of chainrule ops.

        ``chainrule.compile`` replays ops only; a module that draws random numbers or updates
        state with NumPy in its forward (Dropout, BatchNorm1d in training mode) says False.
        """
        return True

    def zero_grad(self) -> None:
        """Clear every parameter's gradient (sets ``.grad`` to None)."""
        clear_grads(list(self.parameters()))

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freeze (False) or unfreeze (True) every parameter."""
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    # ----------------------------------------------------------------- dtype
    def to(self, dtype: Any) -> Module:
        """Convert every floating parameter and buffer to ``dtype`` in place (same Parameter objects)."""
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"Module.to: expected a floating dtype, got {dtype}")
        for t in [*self.parameters(), *self.buffers()]:
            if t.data.dtype.kind == "f" and t.data.dtype != dtype:
                t.data = t.data.astype(dtype)
                if t.grad is not None:
                    t.grad = t.grad.astype(dtype)
        return self

    def double(self) -> Module:
        """Convert parameters and buffers to float64 (for gradient checks)."""
        return self.to(np.float64)

    def float(self) -> Module:
        """Convert parameters and buffers to float32."""
        return self.to(np.float32)

    # ----------------------------------------------------------------- state
    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Name -> ndarray copy of every parameter and persistent buffer."""
        state: OrderedDict[str, np.ndarray] = OrderedDict()
        for prefix, module in self.named_modules():
            dot = f"{prefix}." if prefix else ""
            for name, p in module._parameters.items():
                if p is not None:
                    state[dot + name] = np.array(p.data, copy=True)
            for name, b in module._buffers.items():
                if b is not None and name not in module._non_persistent:
                    state[dot + name] = np.array(b.data, copy=True)
        return state

    def _state_targets(self) -> OrderedDict[str, Tensor]:
        targets: OrderedDict[str, Tensor] = OrderedDict()
        for prefix, module in self.named_modules():
            dot = f"{prefix}." if prefix else ""
            for name, p in module._parameters.items():
                if p is not None:
                    targets.setdefault(dot + name, p)
            for name, b in module._buffers.items():
                if b is not None and name not in module._non_persistent:
                    targets.setdefault(dot + name, b)
        return targets

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy arrays from ``state`` (name -> ndarray/Tensor) into this model's parameters and buffers.

        Values are copied into the existing arrays (converted to each parameter's own dtype), so
        the Parameter objects an optimizer holds stay the same. With ``strict`` (the default)
        missing or unexpected keys raise ``StateDictKeyError`` (a ``KeyError``) listing them; a shape
        mismatch always raises ``ValueError`` naming the key, the expected and the given shape.
        Nothing is changed if any check fails. Returns (missing_keys, unexpected_keys).
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"load_state_dict: expected a mapping of name -> array, got {type(state).__name__}")
        targets = self._state_targets()
        missing = [k for k in targets if k not in state]
        unexpected = [k for k in state if k not in targets]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing keys: {', '.join(repr(k) for k in missing)}")
            if unexpected:
                parts.append(f"unexpected keys: {', '.join(repr(k) for k in unexpected)}")
            raise StateDictKeyError(f"load_state_dict into {type(self).__name__} failed: " + "; ".join(parts))
        arrays = {}
        bad = []
        for key, target in targets.items():
            if key not in state:
                continue
            value = state[key]
            array = np.asarray(value.data if isinstance(value, Tensor) else value)
            if array.shape != target.data.shape:
                bad.append(f"shape mismatch for {key!r}: expected shape {target.data.shape}, got shape {array.shape}")
            elif target.data.dtype.kind == "f" and array.dtype.kind in "fiu" and array.size:
                # NOTE: a value beyond the parameter dtype's range would silently become inf
                limit = np.finfo(target.data.dtype).max
                finite = np.isfinite(array)
                if np.any(np.abs(array[finite]) > limit):
                    bad.append(f"{key!r}: values beyond {target.data.dtype}'s range (|x| > {limit:.4g})")
            arrays[key] = array
        if bad:
            raise ValueError(f"load_state_dict into {type(self).__name__}: " + "; ".join(bad))
        for key, array in arrays.items():
            target = targets[key]
            if target.data.flags.writeable:
                np.copyto(target.data, array, casting="unsafe")
            else:
                target.data = np.array(array, dtype=target.data.dtype, copy=True)
        return IncompatibleKeys(missing, unexpected)

    # ----------------------------------------------------------------- config
    def get_config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this module, as JSON-ready data with a "type" key.

        Built-in layers define it; a custom module must define it (and be decorated with
        ``nn.register_module``) to be saved with its architecture by ``chainrule.save``.
        """
        raise NotImplementedError(
            f"{type(self).__name__} has no get_config(): define get_config() returning its constructor "
            "arguments and decorate the class with chainrule.nn.register_module, or save only its weights"
        )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Module:
        """Rebuild from ``get_config()`` output (default: call the class with the non-"type" keys)."""
        kwargs = {k: v for k, v in config.items() if k != "type"}
        try:
            return cls(**kwargs)
        except TypeError as err:
            raise ValueError(f"from_config: cannot build {cls.__name__} from {dict(config)!r}: {err}") from err

    # ----------------------------------------------------------------- display
    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's one-line repr."""
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, child in self._modules.items():
            text = repr(child).replace("\n", "\n  ")
            lines.append(f"({name}): {text}")
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        extra = self.extra_repr()
        body = ([f"  {extra}"] if extra else []) + [f"  {line}" for line in lines]
        return f"{type(self).__name__}(\n" + "\n".join(body) + "\n)"


def _as_buffer(value: Any, name: str) -> Tensor:
    if isinstance(value, Tensor):
        if value.requires_grad:
            raise TypeError(f"buffer {name!r} must not require grad; register it as a Parameter instead")
        return value
    if isinstance(value, (np.ndarray, np.generic, int, float, bool, list, tuple)):
        return Tensor(np.asarray(value))
    raise TypeError(f"buffer {name!r} must be a Tensor or an ndarray, got {type(value).__name__}")


def resolve_dtype(dtype: Any) -> np.dtype:
    """Check a parameter dtype argument (float32 by default)."""
    dt = _F32 if dtype is None else np.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"parameters need a floating dtype, got {dt}")
    return dt


__all__ = [
    "IncompatibleKeys",
    "Module",
    "Parameter",
    "StateDictKeyError",
    "from_config",
    "register_module",
    "resolve_dtype",
]
