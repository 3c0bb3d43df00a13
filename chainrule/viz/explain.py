"""``explain``: the backward pass, one row per step, with the engine's own numbers.

``explain(f)`` runs ``backward`` once, with an observer (``engine.backward(observer=...)``)
that records each step as the engine runs it: the node, its inputs' values, the upstream
gradient, the local gradient and the downstream gradient (local x upstream) sent to each
input, and where contributions from several branches are summed. Nothing is recomputed by a
second implementation: the downstream gradients and sums are the arrays the engine made, and
the local gradient is the node's own rule (``node._vjp``) applied to unit upstream vectors
while the node still holds its saved values.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.autograd import engine
from chainrule.autograd.tensor import Tensor
from chainrule.ops.base import Op
from chainrule.viz import report
from chainrule.viz.labels import GraphIndex, build_index

#: the local gradient is shown as a Jacobian (the rule applied to each unit upstream vector)
#: when output size x input size is at most this; larger ones are shown as the VJP with shapes
JACOBIAN_MAX = 64
#: sigmoid/tanh count as saturated where their local derivative is below this
SATURATED = 1e-3


@dataclass(slots=True)
class StepInput:
    """What one backward step sent to one input of its node."""

    position: int  #: the argument position
    name: str  #: the input's label (as in ``draw``)
    value: np.ndarray  #: the input's forward value
    requires_grad: bool
    #: d output / d input: a float when both are single numbers, a Jacobian of shape
    #: output.shape + input.shape when small, else None (see ``downstream`` and the shapes)
    local: float | np.ndarray | None = None
    #: the gradient this step added to the input (the engine's array, in the input's shape)
    downstream: np.ndarray | None = None
    rule_shape: tuple[int, ...] | None = None  #: shape the rule returned, before broadcasting was summed out
    summed: bool = False  #: added to contributions that arrived earlier from other branches
    total: np.ndarray | None = None  #: the input's gradient so far in this pass, after this addition


@dataclass(slots=True)
class Step:
    """One backward step: a node's rule turned its upstream gradient into its inputs' gradients."""

    index: int  #: 1, 2, ... in the order the engine ran the steps
    node: str  #: the node's label (as in ``draw``)
    op: str
    detail: str
    output: np.ndarray  #: the node's forward value
    upstream: np.ndarray  #: d(output of explain) / d(this node's output): the gradient that reached it
    branches: int  #: how many contributions were summed into ``upstream`` (0: the seed of the output)
    inputs: list[StepInput] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _copy(a: Any) -> np.ndarray:
    return np.array(a, copy=True)


def _nonfinite(a: np.ndarray) -> str | None:
    if a.dtype.kind not in "fc" or a.size == 0:
        return None
    finite = np.isfinite(a)
    if finite.all():
        return None
    nan = int(np.isnan(a).sum())
    inf = int(a.size - finite.sum()) - nan
    parts = ([f"NaN ({nan})" if a.size > 1 else "NaN"] if nan else []) + (
        [f"inf ({inf})" if a.size > 1 else "inf"] if inf else []
    )
    return " and ".join(parts)


def _count(mask: np.ndarray) -> tuple[int, int]:
    return int(np.count_nonzero(mask)), int(mask.size)


def _where(k: int, n: int) -> str:
    return "" if n == 1 else f" at {k} of {n} elements"


def _notes(node: Op, output: np.ndarray, inputs: tuple[Tensor, ...]) -> list[str]:
    """The kinks and ties of this node's rule at its current inputs (what the local gradient chose there)."""
    notes: list[str] = []
    name = node.name
    saved = node.saved
    if name in ("max", "min") and isinstance(saved, np.ndarray) and saved.size:
        per_slice = saved.sum(axis=getattr(node, "axis", None), keepdims=True)
        if (per_slice > 1).any():
            notes.append(
                f"tie: {int(per_slice.max())} elements share the {name}imum; the gradient is split equally among them"
            )
    elif name in ("maximum", "minimum") and isinstance(saved, tuple):
        k, n = _count(np.broadcast_to(saved[0] == saved[1], output.shape))
        if k:
            notes.append(f"tie: both inputs are equal{_where(k, n)}; each gets half of the upstream gradient")
    elif name in ("relu", "leaky_relu", "abs") and inputs:
        x = inputs[0].data
        k, n = _count(x == 0)
        if k:
            rule = {"relu": "relu'(0) = 0: no gradient passes there", "abs": "abs'(0) = 0"}.get(
                name, "f'(0) = the negative slope"
            )
            notes.append(f"{name} at 0{_where(k, n)}: {rule}")
        if name == "relu" and x.size and (x < 0).all():
            notes.append("relu inactive (every input < 0): the gradient is 0")
    elif name in ("sigmoid", "tanh") and output.dtype.kind == "f" and output.size:
        with np.errstate(all="ignore"):
            local = output * (1 - output) if name == "sigmoid" else 1 - output * output
        k, n = _count(local < SATURATED)
        if k:
            notes.append(
                f"{name} saturated{_where(k, n)} (local gradient below {SATURATED:g}): the gradient nearly vanishes"
            )
    elif name == "clip" and inputs:
        x = inputs[0].data
        at = np.zeros(x.shape, dtype=bool)
        for bound in (getattr(node, "lo", None), getattr(node, "hi", None)):
            if bound is not None:
                at |= x == bound
        k, n = _count(at)
        if k:
            notes.append(f"clip at a bound{_where(k, n)}: the bound counts as inside, the gradient passes")
    bad = _nonfinite(output)
    if bad:
        notes.append(f"the forward value holds {bad}")
    return notes


class _Recorder:
    """The observer ``explain`` hands to ``engine.backward``: it keeps what each step computed."""

    def __init__(self, index: GraphIndex, had_grad: set[int], values: dict[int, np.ndarray]) -> None:
        self.index = index
        self.values = values  # entry index -> the value at the time of the pass (a copy)
        self.had_grad = had_grad  # leaves whose .grad held an earlier pass's gradient
        self.rows: list[Step] = []
        self.arrivals: dict[int, int] = {}  # entry index -> contributions this pass
        self.totals: dict[int, np.ndarray] = {}  # entry index -> gradient this pass
        self._inputs: tuple[Tensor, ...] = ()
        self._downstream: tuple[np.ndarray | None, ...] = ()
        self._cursor = 0

    def step(self, node: Op, upstream: np.ndarray, downstream: tuple[np.ndarray | None, ...]) -> None:
        index = self.index
        entry = index.entries[index.by_key[id(node)]]
        inputs = node.inputs
        self._inputs, self._downstream, self._cursor = inputs, downstream, 0
        self.totals[entry.index] = _copy(upstream)
        row = Step(
            len(self.rows) + 1,
            entry.label,
            entry.op,
            entry.detail,
            self.values[entry.index],
            self.totals[entry.index],
            self.arrivals.get(entry.index, 0),
        )
        for position, t in enumerate(inputs):
            found = index.find(t)
            dg = downstream[position] if position < len(downstream) else None
            row.inputs.append(
                StepInput(
                    position,
                    found.label if found is not None else "?",
                    self.values[found.index] if found is not None else _copy(t.data),
                    t._requires_grad,
                    rule_shape=None if dg is None else tuple(dg.shape),
                )
            )
        self._local(node, upstream, downstream, row)
        row.notes.extend(_notes(node, row.output, inputs))
        bad = _nonfinite(upstream)
        if bad:
            row.notes.append(f"the upstream gradient holds {bad}")
        self.rows.append(row)

    def _local(self, node: Op, upstream: np.ndarray, downstream: tuple[np.ndarray | None, ...], row: Step) -> None:
        """d output / d input from the node's own rule: ``node._vjp`` of each unit upstream vector."""
        m = upstream.size
        wanted = [
            i
            for i, d in enumerate(downstream)
            if d is not None and i < len(row.inputs) and row.inputs[i].requires_grad
            and 0 < m * row.inputs[i].value.size <= JACOBIAN_MAX
        ]  # fmt: skip
        if not wanted:
            return
        rows: dict[int, list[np.ndarray]] = {i: [] for i in wanted}
        try:
            # NOTE: the same rule the engine just ran, on unit vectors; warnings were already
            # raised by the real pass, so they are not repeated.
            with np.errstate(all="ignore"):
                for k in range(m):
                    unit = np.zeros(upstream.shape, dtype=upstream.dtype)
                    unit.flat[k] = 1
                    grads = node._vjp(unit)
                    for i in wanted:
                        g = np.asarray(grads[i])
                        shape = row.inputs[i].value.shape
                        rows[i].append(_copy(engine.unbroadcast(g, shape) if g.shape != shape else g))
        except Exception as err:  # a user Function whose backward cannot run twice: say so, in the row
            row.notes.append(f"local gradient not available: {node.name}'s rule raised {type(err).__name__}: {err}")
            return
        for i in wanted:
            jacobian = np.stack(rows[i]).reshape(upstream.shape + row.inputs[i].value.shape)
            row.inputs[i].local = jacobian.item() if jacobian.size == 1 else jacobian

    def arrive(self, node: Op, target: Tensor, contribution: np.ndarray, total: np.ndarray) -> None:
        inputs, downstream = self._inputs, self._downstream
        position = self._cursor
        while position < len(inputs) and not (inputs[position] is target and downstream[position] is not None):
            position += 1
        self._cursor = position + 1
        entry = self.index.find(target)
        if entry is None or position >= len(inputs):  # pragma: no cover - the walk and the index agree
            return
        count = self.arrivals.get(entry.index, 0) + 1
        self.arrivals[entry.index] = count
        if target._grad_fn is None and entry.index in self.had_grad:
            # NOTE: .grad also holds an earlier pass's gradient: this pass's own sum is kept here,
            # added in the engine's order and dtype, as .grad would hold it without the earlier pass.
            own = contribution.astype(target.data.dtype, copy=False)
            total = _copy(own) if count == 1 else self.totals[entry.index] + own
        else:
            total = _copy(total)
        self.totals[entry.index] = total
        item = self.rows[-1].inputs[position]
        item.downstream = _copy(contribution)
        item.summed = count > 1
        item.total = total
        bad = _nonfinite(contribution)
        if bad:
            self.rows[-1].notes.append(f"the gradient to {item.name} holds {bad}")


class Explanation:
    """The recorded backward pass: ``.rows`` (one ``Step`` each), ``.value``, ``.grads``, and its renderings.

    ``str()`` is a plain-text table; ``.to_markdown()``, ``.to_html()`` and ``.to_dict()``
    (JSON-ready) give the same rows; ``.draw()`` draws the graph with every node's gradient.
    """

    def __init__(
        self,
        index: GraphIndex,
        rows: list[Step],
        entry_grads: dict[int, np.ndarray],
        values: dict[int, np.ndarray],
        precision: int = 4,
    ) -> None:
        self.index = index
        self.rows = rows
        self.entry_grads = entry_grads
        self.values = values
        self.precision = precision
        root = index.root
        data = values[root.index]
        self.output = root.label
        #: the output's value: a float for a 0-d output, else an array
        self.value: float | np.ndarray = float(data) if data.ndim == 0 and data.dtype.kind in "fiub" else _copy(data)
        #: label -> the gradient this pass gave each leaf that requires grad
        self.grads: dict[str, np.ndarray] = {
            e.label: entry_grads[e.index]
            for e in index.entries
            if e.node is None and e.requires_grad and e.index in entry_grads
        }

    steps = property(lambda self: self.rows, doc="Alias of ``rows``.")

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[Step]:
        return iter(self.rows)

    def graph_record(self) -> tuple[GraphIndex, dict[int, np.ndarray], dict[int, np.ndarray]]:
        """The walked graph, each entry's gradient and its value at the time, for ``chainrule.viz.draw``."""
        return self.index, self.entry_grads, self.values

    def draw(self, **options: Any) -> Any:
        """``chainrule.viz.draw`` of this graph, every node with the gradient of this pass."""
        from chainrule.viz.graph import draw

        return draw(self, **options)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"output", "value", "grads", "steps"}``; NaN/inf as "nan"/"inf"/"-inf"."""
        return report.to_dict(self)

    def to_markdown(self) -> str:
        return report.to_markdown(self)

    def to_html(self) -> str:
        return report.to_html(self)

    def _repr_html_(self) -> str:
        return self.to_html()

    def __str__(self) -> str:
        return report.to_text(self)

    __repr__ = __str__


def explain(
    tensor: Tensor,
    grad: Any = None,
    *,
    names: Any = None,
    model: Any = None,
    retain_graph: bool = False,
    precision: int = 4,
) -> Explanation:
    """Run backward from ``tensor`` once and explain it, step by step, with the engine's numbers.

    ``grad`` is the upstream gradient for a non-scalar output (as for ``backward``). Leaves'
    ``.grad`` end up exactly as a plain ``tensor.backward(grad)`` would leave them
    (accumulating into an earlier pass's gradient); the explanation shows this pass alone.
    ``names=`` (a mapping of name -> tensor, or an ``nn.Module``) or ``model=`` name the
    parameters (``0.weight``). The graph must still be there: call ``explain`` instead of
    ``backward()``, or after ``backward(retain_graph=True)``.
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"explain(): expected a chainrule Tensor, got {type(tensor).__name__}")
    if not tensor._requires_grad:
        raise RuntimeError(
            "explain(): this tensor does not require grad, so it has no graph to explain: make the "
            "inputs with requires_grad=True (and do not compute it under no_grad)"
        )
    index = build_index(tensor, names, model, who="explain()")
    had_grad = {e.index for e in index.entries if e.node is None and e.tensor.grad is not None}
    # NOTE: values are copied once, before the pass: an optimizer step that later updates the
    # parameters in place must not change what the explanation shows.
    values = {e.index: _copy(e.tensor.data) for e in index.entries}
    recorder = _Recorder(index, had_grad, values)
    engine.backward(tensor, grad, retain_graph=retain_graph, observer=recorder)
    grads = recorder.totals
    if tensor._grad_fn is None:  # a leaf: backward only adds the upstream gradient to .grad
        data = tensor.data
        if grad is None:
            seed = np.ones_like(data)
        else:
            seed = np.array(grad.data if isinstance(grad, Tensor) else grad, dtype=data.dtype)
        grads[index.root.index] = seed
    return Explanation(index, recorder.rows, grads, values, precision)


__all__ = ["Explanation", "Step", "StepInput", "explain"]
