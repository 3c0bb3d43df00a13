"""The op base class, the registry of primitive ops, and ``apply`` (forward + graph recording).

Every primitive op is one ``Op`` subclass with its forward and its local gradient
(vector-Jacobian product) side by side::

    @register
    class MulOp(Op):
        "f(a, b) = a * b"
        def forward(self, a, b):
            self.saved = (a, b)
            return a * b
        def backward(self, upstream):
            a, b = self.saved
            return (upstream * b if self.needs_input_grad[0] else None,
                    upstream * a if self.needs_input_grad[1] else None)

An instance of the op is the graph node: it holds the input tensors, which inputs
need a gradient, and what the forward saved for the backward. ``backward`` returns
one gradient per input, in the *broadcast* shape is fine: the engine sums it back
to the input's own shape in one place (``unbroadcast``).
"""

from __future__ import annotations

import os
import traceback
from typing import Any, ClassVar

from chainrule.autograd.grad_mode import state
from chainrule.autograd.tensor import Tensor, _checked_grad
from chainrule.backend import ndarray, speedups, xp

#: name -> op class, for tests, gradient checks and graph drawing to enumerate.
OPS: dict[str, type[Op]] = {}

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Op:
    """A node of the computational graph: one application of a primitive op."""

    __slots__ = ("__weakref__", "inputs", "needs_input_grad", "retained", "saved", "scope", "trace", "versions")

    #: short name used in the registry, error messages and graph drawings
    name: ClassVar[str] = "op"

    inputs: tuple[Tensor, ...]
    needs_input_grad: tuple[bool, ...]
    saved: Any
    trace: str | None
    retained: Tensor | None
    #: the innermost ``nn.Module`` call whose output this node made, and that call's positional
    #: arguments (set by ``Module.__call__``; for ``viz.draw(collapse_modules=True)``); backward
    #: clears it with the node's other references
    scope: tuple[Any, tuple[Any, ...]] | None
    #: the inputs' ``_version`` when this node used them, or None when every one was 0
    versions: tuple[int, ...] | None

    def forward(self, *arrays: ndarray, **attrs: Any) -> ndarray:
        raise NotImplementedError

    def backward(self, upstream: ndarray) -> tuple[ndarray | None, ...]:
        raise NotImplementedError

    # The engine calls ``node._vjp(upstream)``; for built-in ops it *is* ``backward``.
    def _vjp(self, upstream: ndarray) -> tuple[ndarray | None, ...]:
        return self.backward(upstream)

    def describe(self) -> str:
        """Extra attributes for graph drawings and reprs (``axis=1`` and so on)."""
        parts = []
        for slot in getattr(type(self), "__slots__", ()):
            if slot in Op.__slots__:
                continue
            value = getattr(self, slot, None)
            if value is not None and not isinstance(value, ndarray):
                parts.append(f"{slot}={value!r}")
        return ", ".join(parts)

    def __repr__(self) -> str:
        extra = self.describe()
        return f"<{self.name}{' ' + extra if extra else ''}>"


def versions_of(inputs: tuple[Tensor, ...]) -> tuple[int, ...] | None:
    """The inputs' versions for ``Op.versions``: None when all are 0 (the common case)."""
    for t in inputs:
        if t._version:
            return tuple([t._version for t in inputs])
    return None


def register(cls: type[Op]) -> type[Op]:
    """Add a primitive op class to the registry (``OPS``) under ``cls.name``."""
    if cls.name in OPS:
        raise ValueError(f"op name {cls.name!r} is registered twice")
    cls._vjp = cls.backward  # type: ignore[method-assign]
    OPS[cls.name] = cls
    return cls


def user_frame() -> str:
    """The first stack frame outside chainrule, as 'file:line: code' (for anomaly reports)."""
    for frame in reversed(traceback.extract_stack()):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR + os.sep):
            return f'File "{frame.filename}", line {frame.lineno}: {frame.line}'
    return "<unknown>"


def _shapes(inputs: tuple[Tensor, ...]) -> str:
    return " and ".join(str(t.data.shape) for t in inputs)


def _forward_error(op: type[Op], inputs: tuple[Tensor, ...], err: Exception) -> Exception:
    shapes = _shapes(inputs)
    dtypes = ", ".join(str(t.data.dtype) for t in inputs)
    return type(err)(f"{op.name}: cannot apply to inputs of shapes {shapes} (dtypes {dtypes}): {err}")


def _raise_forward_error(op: type[Op], inputs: tuple[Tensor, ...], err: Exception) -> None:
    """What the C ``apply``, ``apply1`` and ``apply2`` call when a forward raises ValueError or IndexError."""
    raise _forward_error(op, inputs, err) from err


def check_finite(what: str, node: Op, array: ndarray) -> None:
    if array.dtype.kind in "fc" and not xp.isfinite(array).all():
        trace = getattr(node, "trace", None) or user_frame()
        where = f"\n  created at {trace}"
        raise FloatingPointError(
            f"detect_anomaly: {what} of op '{node.name}' is not finite "
            f"(shape {array.shape}, {int((~xp.isfinite(array)).sum())} non-finite values){where}"
        )


_new = object.__new__

# NOTE: apply, apply1 and apply2 fill the new node and tensor with the same lines, on purpose:
# they are the hottest Python in the engine (every op of every step when the C extension is
# absent), a shared helper would cost a call per op, and each is the reference twin of a C
# entry point in chainrule/backend/_speedups.c, which tests/test_speedups.py compares them with.


def apply(op: type[Op], *inputs: Tensor, **attrs: Any) -> Tensor:
    """Run ``op`` forward on the inputs' arrays and, if any input needs a gradient, record it."""
    node = _new(op)
    node.saved = None
    try:
        if len(inputs) == 2:
            a, b = inputs
            data = node.forward(a.data, b.data, **attrs)
            needs = (a._requires_grad, b._requires_grad)
        elif len(inputs) == 1:
            data = node.forward(inputs[0].data, **attrs)
            needs = (inputs[0]._requires_grad,)
        else:
            data = node.forward(*[t.data for t in inputs], **attrs)
            needs = tuple([t._requires_grad for t in inputs])
    except (ValueError, IndexError) as err:
        raise _forward_error(op, inputs, err) from err
    if type(data) is not ndarray:
        data = xp.asarray(data)
    out = _new(Tensor)
    out.data = data
    out._grad = None
    out.name = None
    out._version = 0
    if True in needs and state.grad_enabled:
        node.inputs = inputs
        node.needs_input_grad = needs
        node.retained = None
        node.trace = None
        node.scope = None
        node.versions = versions_of(inputs)
        out._requires_grad = True
        out._grad_fn = node
    else:
        out._requires_grad = False
        out._grad_fn = None
    if state.watch:
        _watch(node, inputs, attrs, out)
    return out


# NOTE: apply1 and apply2 repeat apply's body on purpose: they are the hot path of every
# operator and unary function, and packing *inputs/**attrs or calling a shared helper
# costs about 0.5 us per op (measured: docs/benchmarks.md, per-op overhead).
def apply1(op: type[Op], x: Tensor) -> Tensor:
    """``apply`` for a one-input op without attributes: the hot path of unary functions."""
    node = _new(op)
    node.saved = None
    try:
        data = node.forward(x.data)
    except (ValueError, IndexError) as err:
        raise _forward_error(op, (x,), err) from err
    if type(data) is not ndarray:
        data = xp.asarray(data)
    out = _new(Tensor)
    out.data = data
    out._grad = None
    out.name = None
    out._version = 0
    if x._requires_grad and state.grad_enabled:
        node.inputs = (x,)
        node.needs_input_grad = (True,)
        node.retained = None
        node.trace = None
        node.scope = None
        node.versions = (x._version,) if x._version else None
        out._requires_grad = True
        out._grad_fn = node
    else:
        out._requires_grad = False
        out._grad_fn = None
    if state.watch:
        _watch(node, (x,), {}, out)
    return out


def apply2(op: type[Op], a: Tensor, b: Tensor) -> Tensor:
    """``apply`` for a two-input op without attributes: the hot path of the arithmetic operators."""
    node = _new(op)
    node.saved = None
    try:
        data = node.forward(a.data, b.data)
    except (ValueError, IndexError) as err:
        raise _forward_error(op, (a, b), err) from err
    if type(data) is not ndarray:
        data = xp.asarray(data)
    out = _new(Tensor)
    out.data = data
    out._grad = None
    out.name = None
    out._version = 0
    if (a._requires_grad or b._requires_grad) and state.grad_enabled:
        node.inputs = (a, b)
        node.needs_input_grad = (a._requires_grad, b._requires_grad)
        node.retained = None
        node.trace = None
        node.scope = None
        node.versions = (a._version, b._version) if a._version or b._version else None
        out._requires_grad = True
        out._grad_fn = node
    else:
        out._requires_grad = False
        out._grad_fn = None
    if state.watch:
        _watch(node, (a, b), {}, out)
    return out


def _watch(node: Op, inputs: tuple[Tensor, ...], attrs: dict[str, Any], out: Tensor) -> None:
    """The slow path of apply: anomaly checks and compile tracing."""
    if state.anomaly:
        if out._grad_fn is not None:
            node.trace = user_frame()
        check_finite("forward output", node, out.data)
    if state.tape is not None:
        state.tape.append((node, inputs, attrs, out))


# The Python twins stay reachable: the C versions hand every unusual case (watchers on,
# a subclass with its own __new__, a non-tensor input) to them.
apply_python, apply1_python, apply2_python = apply, apply1, apply2

if speedups is not None:
    speedups.configure_apply(
        tensor_type=Tensor,
        op_type=Op,
        state=state,
        apply=apply_python,
        apply1=apply1_python,
        apply2=apply2_python,
        raise_forward_error=_raise_forward_error,
        asarray=xp.asarray,
        checked_grad=_checked_grad,
    )
    apply, apply1, apply2 = speedups.apply, speedups.apply1, speedups.apply2

__all__ = ["OPS", "Op", "apply", "apply1", "apply2", "check_finite", "register", "user_frame"]
