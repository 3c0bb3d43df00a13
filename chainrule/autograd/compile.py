"""Capture and replay: ``chainrule.compile(fn)`` for functions whose graph does not change.

The first call with a given signature (the shapes, dtypes and requires_grad of the
arguments) runs ``fn`` eagerly while recording every op applied (the tape). Later
calls with the same signature replay the tape: each op's forward runs on the new
arrays, without creating tensors or graph nodes, and ``backward()`` on the result
runs the op rules in the order the eager engine would, precomputed once, so the
numbers are identical to eager mode.

What is captured is the ops: the function's Python code does not run again. So the
function must be a fixed composition of chainrule ops over its arguments and over
tensors that exist outside it (parameters, whose current ``.data`` is read on every
call). Not captured: Python control flow that depends on values, NumPy work done
outside ops (random dropout masks, BatchNorm running-statistics updates), and tensors
built inside ``fn`` from data (pass such data as an argument). A new argument
signature is traced afresh (up to ``max_traces``; then a ``CompileError``).
"""

from __future__ import annotations

import builtins
import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule.autograd.engine import _count_uses, accumulate_leaf, unbroadcast
from chainrule.autograd.grad_mode import no_grad, refresh_flags, state, structure
from chainrule.autograd.tensor import Tensor
from chainrule.backend import ndarray, xp
from chainrule.ops.base import Op, versions_of


class CompileError(RuntimeError):
    """The function cannot be captured, or a replayed result is used out of order."""


_ARG, _SLOT, _EXT = 0, 1, 2
_new = object.__new__


class _ArgRef:
    """Marks an array inside an op's attributes that is an argument's data."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


def _substitute(value: Any, arg_ids: dict[int, int]) -> Any:
    if isinstance(value, ndarray) and id(value) in arg_ids:
        return _ArgRef(arg_ids[id(value)])
    if isinstance(value, tuple):
        return tuple(_substitute(v, arg_ids) for v in value)
    return value


def _has_ref(value: Any) -> bool:
    if isinstance(value, _ArgRef):
        return True
    return isinstance(value, tuple) and any(_has_ref(v) for v in value)


def _fresh(node: Op) -> Op:
    """A new node of the same op; forward sets its attributes again on every replay."""
    clone = object.__new__(type(node))
    clone.saved = None
    clone.inputs = ()
    clone.needs_input_grad = getattr(node, "needs_input_grad", ())
    clone.retained = None
    clone.trace = None
    clone.scope = None
    clone.versions = None
    return clone


class _Program:
    """One traced signature: the forward steps and the backward schedule."""

    def __init__(self, args: tuple[Tensor, ...], tape: list[Any], outputs: tuple[Tensor, ...]) -> None:
        slot_of: dict[int, int] = {id(a): i for i, a in enumerate(args)}
        arg_ids = {id(a.data): i for i, a in enumerate(args)}
        nargs = len(args)
        self.nargs = nargs
        self.steps: list[tuple[Op, list[tuple[int, Any]], dict[str, Any]]] = []
        node_index: dict[int, int] = {}
        for k, (node, inputs, attrs, out) in enumerate(tape):
            refs: list[tuple[int, Any]] = []
            for t in inputs:
                slot = slot_of.get(id(t))
                if slot is None and t._grad_fn is None and not t._requires_grad:
                    # A new constant tensor around an argument's own array is that argument.
                    slot = arg_ids.get(id(t.data))
                if slot is not None:
                    refs.append((_SLOT, slot))
                elif t._grad_fn is not None:
                    raise CompileError(
                        f"compile: op '{node.name}' uses a tensor computed outside the compiled function "
                        f"(made by '{t._grad_fn.name}'): pass it as an argument or detach it"
                    )
                else:
                    refs.append((_EXT, t))
            attrs = {name: _substitute(value, arg_ids) for name, value in attrs.items()}
            slot_of[id(out)] = nargs + k
            node_index[id(node)] = k
            self.steps.append((node, refs, attrs))
        self.output_slots = []
        for o in outputs:
            if id(o) not in slot_of:
                raise CompileError("compile: fn must return tensors computed from its arguments by chainrule ops")
            self.output_slots.append(slot_of[id(o)])
        self.differentiable = bool(outputs) and outputs[0]._grad_fn is not None
        if self.differentiable:
            self._schedule(outputs[0], node_index, args)
        self.generation = 0
        self.verified = False
        # The replay runs on fresh nodes of the same ops: the traced call's graph stays valid
        # for its own backward, and its batch and activations are not kept alive here.
        self.steps = [(_fresh(node), refs, attrs) for node, refs, attrs in self.steps]
        self._generate()

    def _schedule(self, root: Tensor, node_index: dict[int, int], args: tuple[Tensor, ...]) -> None:
        """Replicate the engine's processing order once (it depends only on the graph)."""
        for node in _count_uses(root._grad_fn):
            if id(node) not in node_index:
                raise CompileError(
                    f"compile: op '{node.name}' was not recorded by the tracer "
                    "(custom chainrule.Function ops cannot be captured yet)"
                )
        uses = _count_uses(root._grad_fn)
        arg_slot = {id(a): i for i, a in enumerate(args)}
        self.root_index = node_index[id(root._grad_fn)]
        leaves: list[Tensor] = []
        self.grad_args = [i for i, a in enumerate(args) if a._requires_grad]
        order: list[tuple[int, list[tuple[int, Any, tuple[int, ...]]]]] = []
        has_grad = {id(root._grad_fn)}
        ready = [root._grad_fn]
        while ready:
            node = ready.pop()
            edges: list[tuple[int, Any, tuple[int, ...]]] = []
            for t, need in zip(node.inputs, node.needs_input_grad):
                parent = t._grad_fn
                shape = t.data.shape
                if parent is None:
                    if not t._requires_grad:
                        edges.append((-1, None, shape))
                    elif id(t) in arg_slot:
                        edges.append((_ARG, arg_slot[id(t)], shape))
                    else:
                        if all(leaf is not t for leaf in leaves):
                            leaves.append(t)
                        edges.append((_EXT, t, shape))
                    continue
                edges.append((_SLOT, node_index[id(parent)], shape))
                if need:
                    has_grad.add(id(parent))
                uses[parent] -= 1
                if uses[parent] == 0 and id(parent) in has_grad:
                    ready.append(parent)
            order.append((node_index[id(node)], edges))
        self.order = order
        self.leaves = tuple(leaves)
        self.needs = (True,) * (len(self.grad_args) + len(self.leaves))

    # The replay is generated as straight-line Python source, one line per op, so a step
    # costs the op rules themselves and little else (no loops over tables, no lookups).
    def _generate(self) -> None:
        names: dict[str, Any] = {"ndarray": ndarray, "asarray": xp.asarray, "unbroadcast": unbroadcast}
        names["accumulate"] = accumulate_leaf

        def constant(value: Any) -> str:
            key = f"C{len(names)}"
            names[key] = value
            return key

        def expression(value: Any) -> str:
            if isinstance(value, _ArgRef):
                return f"a{value.index}"
            if isinstance(value, tuple) and _has_ref(value):
                return "(" + "".join(expression(v) + ", " for v in value) + ")"
            return constant(value)

        def ref(kind: int, target: Any) -> str:
            if kind == _SLOT:
                return f"a{target}" if target < self.nargs else f"v{target - self.nargs}"
            return constant(target) + ".data"

        # The trailing comments name each line's op, so that source() reads as the chain rule;
        # comments compile to nothing, so the replay runs exactly the same code.
        def op_name(index: int) -> str:
            name = self.steps[index][0].name
            return name if name.isidentifier() else ascii(name)  # never a line break inside a comment

        def into(kind: int, target: Any) -> str:
            if kind == _SLOT:
                return f"v{target} ({op_name(target)})"
            return "a parameter's .grad" if kind == _EXT else f"argument {target} (a{target})"

        lines = ["def forward(args):"]
        lines += [f"    a{i} = args[{i}].data" for i in range(self.nargs)]
        for k, (node, refs, attrs) in enumerate(self.steps):
            names[f"N{k}"] = node
            call = [ref(kind, target) for kind, target in refs]
            call += [f"{key}={expression(value)}" for key, value in attrs.items()]
            lines.append(f"    v{k} = N{k}.forward({', '.join(call)})  # {op_name(k)}")
            lines.append(f"    if v{k}.__class__ is not ndarray: v{k} = asarray(v{k})")
        outs = [ref(_SLOT, slot) for slot in self.output_slots]
        lines.append(f"    return [{', '.join(outs)}]")

        if self.differentiable:
            lines.append("def backward(upstream):")
            pending = {index for index, _ in self.order}
            lines += [f"    p{i} = None" for i in sorted(pending)]
            lines += [f"    ga{i} = None" for i in range(self.nargs)]
            lines.append(f"    p{self.root_index} = upstream")
            for index, edges in self.order:
                name = op_name(index)
                lines.append(f"    g = p{index}  # dL/dv{index}, the upstream gradient of {name}")
                lines.append("    if g is not None:")
                lines.append(f"        p{index} = None")
                lines.append(f"        d = N{index}._vjp(g)  # {name} backward: local gradient x upstream")
                lines.append(f"        N{index}.saved = None")
                for i, (kind, target, shape) in enumerate(edges):
                    if kind == -1:
                        continue
                    lines.append(f"        dg = d[{i}]  # {name} -> {into(kind, target)}")
                    lines.append("        if dg is not None:")
                    lines.append(f"            if dg.shape != {shape!r}: dg = unbroadcast(dg, {shape!r})")
                    if kind == _SLOT:
                        lines.append(f"            p{target} = dg if p{target} is None else p{target} + dg")
                    elif kind == _EXT:
                        lines.append(f"            accumulate({constant(target)}, dg, g)")
                    else:
                        lines.append(f"            ga{target} = dg if ga{target} is None else ga{target} + dg")
            # what the result's node hands the engine: a gradient per input (the arguments that
            # need one, then the outside leaves, whose gradients were accumulated above)
            result = [f"ga{i}" for i in self.grad_args] + ["None"] * len(self.leaves)
            lines.append(f"    return ({''.join(r + ', ' for r in result)})")
        self.source = "\n".join(lines) + "\n"
        exec(builtins.compile(self.source, "<chainrule.compile replay>", "exec"), names)
        self._forward = names["forward"]
        self._backward = names.get("backward")


class _Replayed(Op):
    """The node of a replayed result: its rule runs the whole captured backward."""

    __slots__ = ("program", "generation")
    name = "compiled"

    def backward(self, upstream: ndarray) -> tuple[ndarray | None, ...]:
        if self.generation != self.program.generation:
            raise CompileError(
                "compile: this result's intermediates were overwritten by a later call of the compiled "
                "function; call backward() before calling the function again"
            )
        return self.program._backward(upstream)

    _vjp = backward


class CompiledFunction:
    """A function captured by ``chainrule.compile``; call it like the original."""

    def __init__(self, fn: Callable[..., Any], max_traces: int = 8) -> None:
        if not callable(fn):
            raise TypeError(f"compile: expected a function to capture, got {type(fn).__name__} {fn!r:.40}")
        self.fn = fn
        self.max_traces = max_traces
        self.programs: dict[tuple[Any, ...], _Program] = {}
        self.structure = structure.version
        functools.update_wrapper(self, fn)

    def source(self) -> str:
        """The generated replay code of the most recently traced signature: forward, then backward.

        It reads as the chain rule written out: one line per op forward, and for backward one
        local-gradient call per op with the downstream gradients routed to their inputs.
        """
        if not self.programs:
            raise CompileError("compile: call the function once so it is traced")
        return list(self.programs.values())[-1].source

    # NOTE: __call__ is on every replayed step: the signature is built in one loop without
    # comprehensions (each is a function call in Python 3.11), and the result's tensor and node
    # are filled in place (measured: about 2 us less per call than the straightforward version).
    def __call__(self, *args: Any) -> Any:
        if self.structure != structure.version:
            # NOTE: a module's parameter, buffer or submodule object was replaced (or modules were
            # built) since the traces were made: they may hold the old objects, so trace afresh.
            self.programs.clear()
            self.structure = structure.version
        tensors = args
        for a in args:
            if not isinstance(a, Tensor):
                tensors = tuple([a if isinstance(a, Tensor) else Tensor._wrap(np.asarray(a)) for a in args])
                break
        signature = [state.grad_enabled]
        for t in tensors:
            data = t.data
            signature += (data.shape, data.dtype, t._requires_grad)
        key = tuple(signature)
        program = self.programs.get(key)
        if program is None:
            return self._trace(tensors, key)
        program.generation += 1
        values = program._forward(tensors)
        if not program.verified:
            self._verify(program, tensors, values)
        first = _new(Tensor)
        first.data = values[0]
        first._grad = None
        first.name = None
        first._version = 0
        if program.differentiable:
            node = _new(_Replayed)
            node.saved = None
            node.program = program
            node.generation = program.generation
            grad_args = program.grad_args
            node.inputs = tuple([tensors[i] for i in grad_args]) + program.leaves if grad_args else program.leaves
            node.needs_input_grad = program.needs
            node.retained = None
            node.trace = None
            node.scope = None
            node.versions = versions_of(node.inputs) if structure.in_place else None
            first._requires_grad = True
            first._grad_fn = node
        else:
            first._requires_grad = False
            first._grad_fn = None
        if self._single:
            return first
        return (first, *[Tensor._wrap(v) for v in values[1:]])

    def _verify(self, program: _Program, args: tuple[Tensor, ...], values: list[ndarray]) -> None:
        """On a signature's first replay, run ``fn`` eagerly too and demand the same outputs, bit for bit.

        A replay repeats ops only; a function that builds tensors from fresh data inside, or
        draws random numbers with NumPy, would silently replay stale values. This catches it.
        """
        with no_grad():
            result = self.fn(*args)
        expected = (result,) if isinstance(result, Tensor) else tuple(result)
        for k, (want, got) in enumerate(zip(expected, values)):
            if not np.array_equal(want.data, got, equal_nan=True):
                raise CompileError(
                    f"compile: replaying {getattr(self.fn, '__name__', 'fn')} does not reproduce it (output {k} "
                    "differs): it must use something besides chainrule ops on its arguments and parameters, "
                    "such as tensors built from data inside it, random numbers drawn with NumPy (Dropout) "
                    "or state updated outside ops (BatchNorm in training mode). Pass such data as arguments, "
                    "or call the function uncompiled."
                )
        program.verified = True

    def _trace(self, args: tuple[Tensor, ...], key: tuple[Any, ...]) -> Any:
        if len(self.programs) >= self.max_traces:
            raise CompileError(
                f"compile: {getattr(self.fn, '__name__', 'fn')} was traced for {self.max_traces} different "
                "argument signatures (shapes/dtypes); its graph keeps changing, so call it uncompiled"
            )
        tape: list[Any] = []
        previous = state.tape
        state.tape = tape
        refresh_flags()
        try:
            result = self.fn(*args)
        finally:
            state.tape = previous
            refresh_flags()
        self._single = isinstance(result, Tensor)
        outputs = (result,) if self._single else tuple(result) if isinstance(result, (tuple, list)) else (result,)
        if not outputs or not all(isinstance(o, Tensor) for o in outputs):
            kinds = ", ".join(type(o).__name__ for o in outputs) or "nothing"
            raise CompileError(f"compile: fn must return a Tensor or a tuple of Tensors, got {kinds}")
        self.programs[key] = _Program(args, tape, outputs)
        return result


def compile(fn: Callable[..., Any] | None = None, *, max_traces: int = 8) -> Any:
    """Capture ``fn`` (forward to a loss) once and replay it on later calls.

    ``loss = step(x, y); loss.backward()`` then works as in eager mode, with the same
    numbers. Only the first returned tensor is differentiable; others are values.
    Usable as ``@chainrule.compile`` or ``chainrule.compile(fn, max_traces=...)``.
    """
    if fn is None:
        return functools.partial(compile, max_traces=max_traces)
    return CompiledFunction(fn, max_traces=max_traces)
