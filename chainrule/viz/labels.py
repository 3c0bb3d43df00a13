"""What ``draw`` and ``explain`` share: one walk of the graph, stable labels, and number formatting.

``build_index`` walks the graph from an output once (iteratively: graphs may be 100,000 ops
deep) and lists every op node and every leaf tensor in a deterministic order, inputs before
the ops that use them, so a node has the same label in a drawing and in an explanation:
``mul_1``, ``add_2`` for ops, ``leaf_1`` for inputs that require grad, ``const_1`` for the
others, unless a name is known (a parameter's dotted name from ``model=``/``names=``, or the
``name=`` the tensor was given).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.autograd.engine import RELEASED
from chainrule.autograd.tensor import Tensor
from chainrule.nn.module import Module, Parameter
from chainrule.ops.base import Op

#: tensors with at most this many elements are shown element by element
SMALL_SIZE = 12

_FREED = (
    "{who}: backward() already freed this graph (op '{op}' released its saved values and inputs), "
    "so it cannot be walked again: call {who} before backward(), or pass retain_graph=True to "
    "backward(){hint}"
)
_HINTS = {
    "draw()": ", or draw an explanation: chainrule.viz.draw(chainrule.explain(t)) (explain runs backward itself)",
    "explain()": " (explain runs backward itself: call it in place of backward())",
}


@dataclass(slots=True)
class Entry:
    """One node of the drawing: an op application, or a leaf tensor (an input, a parameter, a constant)."""

    index: int
    kind: str  #: "op", "param" (a Parameter), "leaf" (another leaf that requires grad) or "const"
    label: str
    tensor: Tensor  #: the op's output, or the leaf itself (its ``.data`` is the value shown)
    node: Op | None = None
    op: str = ""  #: the op's registry name ("mul")
    detail: str = ""  #: ``node.describe()`` (``axis=(1,)`` and so on)
    inputs: list[int] = field(default_factory=list)  #: entry indices of the op's inputs, in argument order
    #: ``node.scope`` when the graph was walked (the module call that made this output, and its
    #: arguments); kept here because backward clears it from the node
    scope: Any = None

    @property
    def requires_grad(self) -> bool:
        return self.tensor._requires_grad


@dataclass(slots=True)
class GraphIndex:
    """The entries of one graph, inputs first; ``entries[-1]`` is the output's."""

    entries: list[Entry]
    by_key: dict[int, int]  #: id(op node or leaf tensor) -> entry index
    module_label: ModuleNames  #: a module call's name ("0" from ``model``, else ``Linear_1``)

    @property
    def root(self) -> Entry:
        return self.entries[-1]

    def find(self, tensor: Tensor) -> Entry | None:
        """The entry showing ``tensor`` (the op that made it, or the leaf), or None."""
        key = tensor._grad_fn if tensor._grad_fn is not None else tensor
        i = self.by_key.get(id(key))
        return None if i is None else self.entries[i]


def known_names(names: Any = None, model: Any = None) -> tuple[dict[int, str], dict[int, str]]:
    """id(tensor) -> name and id(module) -> name, from a Module and/or a mapping of name -> tensor."""
    tensor_names: dict[int, str] = {}
    module_names: dict[int, str] = {}
    for source in (model, names):  # names= wins over model= where both name a tensor
        if source is None:
            continue
        if isinstance(source, Module):
            for name, module in source.named_modules():
                module_names.setdefault(id(module), name)
            items = list(source.named_parameters()) + list(source.named_buffers())
        elif isinstance(source, Mapping):
            items = list(source.items())
        else:
            raise TypeError(
                f"names/model: expected an nn.Module or a mapping of name -> tensor, got {type(source).__name__}"
            )
        for name, t in items:
            if not isinstance(t, Tensor):
                raise TypeError(f"names: {name!r} maps to a {type(t).__name__}, not a tensor")
            tensor_names[id(t)] = str(name)
    return tensor_names, module_names


def build_index(root: Tensor, names: Any = None, model: Any = None, *, who: str = "draw()") -> GraphIndex:
    """Walk the graph of ``root`` (iteratively, post-order) and label every node."""
    if not isinstance(root, Tensor):
        raise TypeError(f"{who}: expected a chainrule Tensor, got {type(root).__name__}")
    tensor_names, module_names = known_names(names, model)
    entries: list[Entry] = []
    by_key: dict[int, int] = {}
    first = root._grad_fn if root._grad_fn is not None else root
    seen = {id(first)}
    # Each frame: [node or leaf, the tensor it stands for, next input to visit].
    stack: list[list[Any]] = [[first, root, 0]]
    while stack:
        frame = stack[-1]
        obj = frame[0]
        if type(obj) is not Tensor and isinstance(obj, Op):
            if obj.saved is RELEASED:
                hint = _HINTS.get(who, "")
                raise RuntimeError(_FREED.format(who=who, op=obj.name, hint=hint))
            inputs = obj.inputs
            i = frame[2]
            if i < len(inputs):
                frame[2] = i + 1
                t = inputs[i]
                child = t._grad_fn if t._grad_fn is not None else t
                if id(child) not in seen:
                    seen.add(id(child))
                    stack.append([child, t, 0])
                continue
            stack.pop()
            by_key[id(obj)] = len(entries)
            entries.append(
                Entry(
                    len(entries),
                    "op",
                    "",
                    frame[1],
                    obj,
                    obj.name,
                    obj.describe(),
                    [by_key[id(t._grad_fn if t._grad_fn is not None else t)] for t in inputs],
                    getattr(obj, "scope", None),
                )
            )
        else:
            stack.pop()
            kind = "leaf" if obj._requires_grad else "const"
            if isinstance(obj, Parameter):
                kind = "param"
            by_key[id(obj)] = len(entries)
            entries.append(Entry(len(entries), kind, "", obj))
    module_label = ModuleNames(module_names)
    for module in scope_modules(entries):  # number the module calls in walk order, inputs first
        module_label(module)
    _label(entries, tensor_names, module_label)
    return GraphIndex(entries, by_key, module_label)


class ModuleNames:
    """A module call's name: its dotted name in ``model`` ("0"), else its class numbered (``Linear_1``)."""

    def __init__(self, given: dict[int, str]) -> None:
        self.given = given
        self._auto: dict[int, str] = {}
        self._counts: dict[str, int] = {}

    def __call__(self, module: Module) -> str:
        name = self.given.get(id(module))
        if name is not None:
            return name or type(module).__name__  # "": the model itself
        # NOTE: numbered on first use, in walk order, so the same graph always gets the same names.
        auto = self._auto.get(id(module))
        if auto is None:
            cls = type(module).__name__
            count = self._counts.get(cls, 0) + 1
            self._counts[cls] = count
            auto = self._auto[id(module)] = f"{cls}_{count}"
        return auto


def scope_modules(entries: list[Entry]) -> list[Module]:
    """The modules whose calls made nodes of this graph, each once, in walk order."""
    modules: dict[int, Module] = {}
    for e in entries:
        scope = e.scope
        if scope is not None:
            modules.setdefault(id(scope[0]), scope[0])
    return list(modules.values())


def _scope_names(entries: list[Entry], module_names: ModuleNames) -> dict[int, str]:
    """Names for parameters that no mapping named, from the modules that used them (``Linear_1.weight``)."""
    named: dict[int, str] = {}
    for module in scope_modules(entries):
        prefix = module_names(module)
        for name, p in module.named_parameters():
            named.setdefault(id(p), f"{prefix}.{name}")
    return named


def _label(entries: list[Entry], tensor_names: dict[int, str], module_names: ModuleNames) -> None:
    scoped = _scope_names(entries, module_names) if any(e.kind == "param" for e in entries) else {}
    given: list[str | None] = []
    for e in entries:
        t = e.tensor
        name = tensor_names.get(id(t)) or t.name or (scoped.get(id(t)) if e.kind == "param" else None)
        given.append(name or None)
    used = {name for name in given if name}
    counters: dict[str, int] = {}
    taken: set[str] = set()
    for e, name in zip(entries, given):
        if name:
            label, k = name, 1
            while label in taken:  # two tensors the user named alike
                k += 1
                label = f"{name}#{k}"
        else:
            stem = e.op if e.kind == "op" else ("const" if e.kind == "const" else "leaf")
            k = counters.get(stem, 0)
            while True:
                k += 1
                label = f"{stem}_{k}"
                if label not in used and label not in taken:
                    break
            counters[stem] = k
        taken.add(label)
        e.label = label


# --------------------------------------------------------------------- numbers
def fmt(x: Any, precision: int = 4) -> str:
    """One number, short: ``-12``, ``0.7311``, ``1.2e-05``, ``nan``, ``inf``."""
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (complex, np.complexfloating)):
        return f"{complex(x):.{precision}g}"
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    text = f"{x:.{precision}g}"
    return "0" if text == "-0" else text


def nested(a: np.ndarray, precision: int) -> str:
    if a.ndim == 0:
        return fmt(a.item(), precision)
    return "[" + ", ".join(nested(row, precision) for row in a) + "]"


def is_small(a: np.ndarray) -> bool:
    return a.size <= SMALL_SIZE


def stats(a: np.ndarray) -> dict[str, float]:
    """min, mean, max and the 2-norm of a non-empty numeric array (as Python floats)."""
    values = a.astype(np.float64, copy=False) if a.dtype.kind in "biu" else a
    with np.errstate(all="ignore"):
        return {
            "min": float(values.min().real) if values.dtype.kind == "c" else float(values.min()),
            "mean": float(np.mean(values).real),
            "max": float(values.max().real) if values.dtype.kind == "c" else float(values.max()),
            "norm": float(np.sqrt(np.sum(np.abs(values) ** 2))),
        }


def shape_text(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def value_lines(a: np.ndarray, precision: int = 4) -> list[str]:
    """A value for a drawing: its numbers if small (one line per row of a matrix), else shape and statistics."""
    if a.ndim == 0:
        return [fmt(a.item(), precision)]
    if a.size == 0:
        return [f"empty {shape_text(a.shape)} {a.dtype}"]
    if is_small(a):
        rows = [nested(a, precision)] if a.ndim == 1 else [nested(row, precision) for row in a]
        if a.ndim > 2:
            rows = [nested(a, precision)]
        return [*rows, f"{shape_text(a.shape)} {a.dtype}"]
    s = stats(a)
    return [
        f"{shape_text(a.shape)} {a.dtype}",
        f"min {fmt(s['min'], precision)}  mean {fmt(s['mean'], precision)}  max {fmt(s['max'], precision)}",
        f"norm {fmt(s['norm'], precision)}",
    ]


def value_text(a: np.ndarray, precision: int = 4) -> str:
    """A value on one line (for tables): ``-4``, ``[1, 2] (2,)``, ``(64, 10) float32 mean 0.01 ...``."""
    if a.ndim == 0:
        return fmt(a.item(), precision)
    if a.size == 0:
        return f"empty {shape_text(a.shape)}"
    if is_small(a):
        return f"{nested(a, precision)} {shape_text(a.shape)}"
    s = stats(a)
    return (
        f"{shape_text(a.shape)} {a.dtype} min {fmt(s['min'], precision)} mean {fmt(s['mean'], precision)} "
        f"max {fmt(s['max'], precision)} norm {fmt(s['norm'], precision)}"
    )


#: arrays larger than this are summarised (shape, dtype, statistics) in ``to_dict``
JSON_MAX_SIZE = 10_000


def _json_number(x: Any) -> Any:
    if isinstance(x, bool):
        return x
    if isinstance(x, int):
        return x
    if isinstance(x, complex):
        return {"real": _json_number(x.real), "imag": _json_number(x.imag)}
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def _json_nested(value: Any) -> Any:
    if isinstance(value, list):
        return [_json_nested(v) for v in value]
    return _json_number(value)


def to_json(a: Any) -> Any:
    """An array (or number) as JSON-ready data: a float, nested lists of floats, or a summary for large arrays.

    NaN and infinities become the strings ``"nan"``, ``"inf"`` and ``"-inf"``.
    """
    if a is None:
        return None
    if not isinstance(a, np.ndarray):
        return _json_number(a.item() if isinstance(a, np.generic) else a)
    if a.size > JSON_MAX_SIZE:
        summary = {k: _json_number(v) for k, v in stats(a).items()}
        return {"shape": list(a.shape), "dtype": str(a.dtype), **summary}
    return _json_nested(a.tolist())


__all__ = [
    "Entry",
    "GraphIndex",
    "build_index",
    "fmt",
    "nested",
    "known_names",
    "ModuleNames",
    "scope_modules",
    "shape_text",
    "stats",
    "to_json",
    "value_lines",
    "value_text",
]
