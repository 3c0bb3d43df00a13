"""Tensor's operators and methods, bound to the ops, functions and engine they call.

``Tensor`` (chainrule/autograd/tensor.py) is the data structure beneath the ops: the ops
create tensors, so tensor.py cannot import them without an import cycle. This module sits
above ops, functional and the engine, defines the operators (``+ - * / ** @``, comparisons,
indexing), the math and shape methods (``.exp()``, ``.sum()``, ``.reshape()``, ...),
``.T``, ``.astype()`` and ``.backward()``, and attaches them to ``Tensor`` when it is imported.
``chainrule/__init__.py`` imports it before anything else can make a tensor, so to a user
every method is simply there.

The path of ``a * b``: ``Tensor.__mul__`` below -> ``apply2(MulOp, a, b)`` (chainrule/ops/base.py,
or its C twin) -> ``MulOp.forward`` on the arrays, recording the node -> later ``backward()``
-> chainrule/autograd/engine.py's walk calls ``MulOp.backward`` (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from chainrule import functional
from chainrule.autograd.engine import backward
from chainrule.autograd.grad_mode import state, structure
from chainrule.autograd.tensor import Tensor
from chainrule.backend import xp
from chainrule.functional import _binary, _compare, _operand, _reduction
from chainrule.ops.base import apply1, apply2
from chainrule.ops.elementwise import AddOp, DivOp, MulOp, NegOp, PowOp, SubOp
from chainrule.ops.linalg import MatMulOp
from chainrule.ops.reduce import MeanOp, SumOp

_IN_PLACE = {"add": xp.add, "sub": xp.subtract, "mul": xp.multiply, "div": xp.true_divide}


def _graph_in_place(self: Tensor, other: Any) -> bool:
    """Whether an in-place op on ``self`` is recorded (PyTorch's rule); refuses a leaf that requires grad."""
    if not state.grad_enabled or not (self._requires_grad or (isinstance(other, Tensor) and other._requires_grad)):
        return False
    if self._grad_fn is None and self._requires_grad:
        name = f" {self.name!r}" if self.name else ""
        raise RuntimeError(
            f"in-place operation on the leaf tensor{name} of shape {self.shape}, which requires grad, while "
            "gradients are recorded: the update would become part of the graph. Update parameters inside "
            "`with chainrule.no_grad():` (as optimizers do), or write to .data"
        )
    return True


def _take_over(self: Tensor, compute: Any) -> Tensor:
    """Record an in-place op: ``compute(old)`` on an alias of the current value, then ``self`` becomes its result.

    NOTE: ``self`` gets the result's array and node; the arrays earlier nodes saved stay as they
    were (the alias holds them), and those nodes see the version change and refuse to run backward.
    """
    old = Tensor._wrap(self.data, self._grad_fn)
    old._requires_grad = self._requires_grad
    old._version = self._version
    old.name = self.name
    result = compute(old)
    if result.data.dtype != self.data.dtype:
        result = functional.astype(result, self.data.dtype)
    if result.data.shape != self.data.shape:
        raise RuntimeError(
            f"in-place operation: the result has shape {result.data.shape}, but the tensor has shape "
            f"{self.data.shape} (an in-place result cannot broadcast the tensor itself)"
        )
    self.data = result.data
    self._grad_fn = result._grad_fn
    self._requires_grad = result._requires_grad
    self._version += 1
    structure.in_place += 1
    return self


def _write(self: Tensor, what: str, write: Any) -> Tensor:
    """Change ``self.data`` in place (nothing recorded), with NumPy's same-kind casting; count the version."""
    try:
        write(self.data)
    except (TypeError, ValueError) as err:  # NumPy: a cast across kinds, a shape that does not fit, read-only
        raise RuntimeError(
            f"{what}: cannot change a {self.data.dtype} tensor of shape {self.shape} in place: {err}"
        ) from None
    self._version += 1
    structure.in_place += 1
    return self


def _binary_in_place(self: Tensor, name: str, other: Any) -> Tensor:
    if _graph_in_place(self, other):
        return _take_over(self, lambda old: getattr(functional, name)(old, other))
    value = other.data if isinstance(other, Tensor) else other
    ufunc = _IN_PLACE[name]
    return _write(self, f"{name}_", lambda data: ufunc(data, value, out=data, casting="same_kind"))


def _reflected_compare(forward: Any, backward: Any) -> Any:
    """``a < b`` as NumPy calls it: the tensor's own comparison, turned round when the tensor is on the right."""
    return lambda a, b: _compare(forward, a, b) if isinstance(a, Tensor) else _compare(backward, b, a)


# NumPy's binary ufuncs that meet a tensor as ``ndarray <op> tensor``: the tensor op of the same name
_UFUNC_OPS: dict[Any, Any] = {
    xp.add: lambda a, b: _binary("add", a, b),
    xp.subtract: lambda a, b: _binary("sub", a, b),
    xp.multiply: lambda a, b: _binary("mul", a, b),
    xp.true_divide: lambda a, b: _binary("div", a, b),
    xp.power: lambda a, b: _binary("pow", a, b),
    xp.matmul: lambda a, b: _binary("matmul", a, b),
    xp.less: _reflected_compare(xp.less, xp.greater),
    xp.less_equal: _reflected_compare(xp.less_equal, xp.greater_equal),
    xp.greater: _reflected_compare(xp.greater, xp.less),
    xp.greater_equal: _reflected_compare(xp.greater_equal, xp.less_equal),
    xp.equal: _reflected_compare(xp.equal, xp.equal),
    xp.not_equal: _reflected_compare(xp.not_equal, xp.not_equal),
}


def _truth(t: Tensor, fn: Any, axis: Any, keepdims: Any, dim: Any, keepdim: Any, numpy: dict[str, Any]) -> Any:
    if numpy.pop("out", None) is not None or numpy:
        raise TypeError(f"{fn.__name__}(): unsupported arguments {sorted(numpy) or ['out']}")
    axis = functional._pick(axis, dim, None, "axis", "dim")
    keepdims = bool(functional._pick(keepdims, keepdim, False, "keepdims", "keepdim"))
    if axis is None and not keepdims:
        return bool(fn(t.data))
    return Tensor._wrap(
        xp.asarray(fn(t.data, axis=functional._axes(axis, t.data.ndim, fn.__name__), keepdims=keepdims))
    )


class _TensorMethods:
    """The methods ``attach()`` copies onto ``Tensor`` (this class is never instantiated)."""

    # ----------------------------------------------------------------- NumPy meeting a tensor
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        """NumPy meeting a tensor, as in PyTorch: ``ndarray <op> tensor`` is the tensor op (recorded in
        the graph); a NumPy call that writes into arrays (``p.data -= lr * p.grad``) computes on the
        tensors' values; any other NumPy function works on the values of tensors that do not require
        grad (``np.isinf(p.grad)``) and is refused for those that do (it would leave the graph)."""
        out = kwargs.get("out")
        if method == "__call__" and out is None and not kwargs and len(inputs) == 2 and ufunc in _UFUNC_OPS:
            return _UFUNC_OPS[ufunc](*inputs)
        if out is not None and any(isinstance(o, Tensor) for o in out):
            return NotImplemented
        tensors = [x for x in inputs if isinstance(x, Tensor)]
        if out is None and any(t._requires_grad for t in tensors):
            raise TypeError(
                f"numpy.{ufunc.__name__} on a tensor that requires grad would leave the graph: use the "
                "chainrule function or method (cr.exp(x), x.exp()), or numpy on x.detach()"
            )
        return getattr(ufunc, method)(*[x.data if isinstance(x, Tensor) else x for x in inputs], **kwargs)

    # ----------------------------------------------------------------- conversion
    @property
    def T(self) -> Tensor:
        """All axes reversed (NumPy's ``.T``; for a matrix, the transpose)."""
        return functional.transpose(self)

    def astype(self, dtype: Any) -> Tensor:
        """Convert to ``dtype``; the gradient flows back converted to the original dtype."""
        return functional.astype(self, dtype)

    def float(self) -> Tensor:
        return functional.astype(self, np.float32)

    def double(self) -> Tensor:
        return functional.astype(self, np.float64)

    # ----------------------------------------------------------------- autodiff
    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Backpropagate from this tensor: fill ``.grad`` of every leaf that requires grad.

        Leaf gradients ACCUMULATE across calls (``grad += new``), as in PyTorch:
        clear them between steps with ``t.grad = None`` or ``optimizer.zero_grad()``.
        ``grad`` is the upstream gradient dL/dself; it may be left out only for a
        one-element tensor (it is then 1). The graph's saved intermediates are
        freed afterwards unless ``retain_graph=True``.
        """
        backward(self, grad, retain_graph=retain_graph)

    # ----------------------------------------------------------------- operators
    def __add__(self, other: Any) -> Tensor:
        b = other if type(other) is Tensor else _operand(other, self)
        return NotImplemented if b is None else apply2(AddOp, self, b)

    def __radd__(self, other: Any) -> Tensor:
        a = _operand(other, self)
        return NotImplemented if a is None else apply2(AddOp, a, self)

    def __sub__(self, other: Any) -> Tensor:
        b = other if type(other) is Tensor else _operand(other, self)
        return NotImplemented if b is None else apply2(SubOp, self, b)

    def __rsub__(self, other: Any) -> Tensor:
        a = _operand(other, self)
        return NotImplemented if a is None else apply2(SubOp, a, self)

    def __mul__(self, other: Any) -> Tensor:
        b = other if type(other) is Tensor else _operand(other, self)
        return NotImplemented if b is None else apply2(MulOp, self, b)

    def __rmul__(self, other: Any) -> Tensor:
        a = _operand(other, self)
        return NotImplemented if a is None else apply2(MulOp, a, self)

    def __truediv__(self, other: Any) -> Tensor:
        b = other if type(other) is Tensor else _operand(other, self)
        return NotImplemented if b is None else apply2(DivOp, self, b)

    def __rtruediv__(self, other: Any) -> Tensor:
        a = _operand(other, self)
        return NotImplemented if a is None else apply2(DivOp, a, self)

    def __pow__(self, other: Any) -> Tensor:
        return _binary("pow", self, other)  # a number exponent is the constant-power op

    def __rpow__(self, other: Any) -> Tensor:
        a = _operand(other, self)
        return NotImplemented if a is None else apply2(PowOp, a, self)

    def __matmul__(self, other: Any) -> Tensor:
        b = other if type(other) is Tensor else _operand(other, self)
        return NotImplemented if b is None else apply2(MatMulOp, self, b)

    def __rmatmul__(self, other: Any) -> Tensor:
        a = _operand(other, self)
        return NotImplemented if a is None else apply2(MatMulOp, a, self)

    def __neg__(self) -> Tensor:
        return apply1(NegOp, self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return functional.abs(self)

    def __lt__(self, other: Any) -> Tensor:
        return _compare(xp.less, self, other)

    def __le__(self, other: Any) -> Tensor:
        return _compare(xp.less_equal, self, other)

    def __gt__(self, other: Any) -> Tensor:
        return _compare(xp.greater, self, other)

    def __ge__(self, other: Any) -> Tensor:
        return _compare(xp.greater_equal, self, other)

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return _compare(xp.equal, self, other)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return _compare(xp.not_equal, self, other)

    def __getitem__(self, index: Any) -> Tensor:
        return functional.index(self, index)

    def __setitem__(self, index: Any, value: Any) -> None:
        if self._requires_grad:
            raise RuntimeError(
                "in-place assignment into a tensor that requires grad would corrupt its gradient; "
                "build a new tensor (chainrule.where, concatenate) or assign to .data under no_grad"
            )
        if isinstance(value, Tensor):
            if value._requires_grad:
                raise RuntimeError(
                    "assigning a tensor that requires grad into a tensor would cut it from the graph; "
                    "build the result with chainrule.where or concatenate instead"
                )
            value = value.data
        self.data[index] = value

    # ----------------------------------------------------------------- in place
    # NOTE: PyTorch's semantics: under no_grad (or where nothing requires grad) the array is
    # changed in place; otherwise the op is recorded and the tensor takes over its result; a
    # leaf that requires grad is refused while gradients are recorded. Each one counts the
    # tensor's version, so backward refuses nodes whose inputs changed after they used them.
    def add_(self, other: Any) -> Tensor:
        """self += other, in place (returns self)."""
        return _binary_in_place(self, "add", other)

    def sub_(self, other: Any) -> Tensor:
        """self -= other, in place (returns self)."""
        return _binary_in_place(self, "sub", other)

    def mul_(self, other: Any) -> Tensor:
        """self *= other, in place (returns self)."""
        return _binary_in_place(self, "mul", other)

    def div_(self, other: Any) -> Tensor:
        """self /= other, in place (returns self)."""
        return _binary_in_place(self, "div", other)

    def __iadd__(self, other: Any) -> Tensor:
        return _binary_in_place(self, "add", other)

    def __isub__(self, other: Any) -> Tensor:
        return _binary_in_place(self, "sub", other)

    def __imul__(self, other: Any) -> Tensor:
        return _binary_in_place(self, "mul", other)

    def __itruediv__(self, other: Any) -> Tensor:
        return _binary_in_place(self, "div", other)

    def fill_(self, value: Any) -> Tensor:
        """Set every element to ``value`` (a number or a one-element tensor), in place."""
        if isinstance(value, Tensor):
            if value.data.size != 1:
                raise RuntimeError(f"fill_: the value must have one element, got shape {value.shape}")
            return self.copy_(value.reshape(()))
        if _graph_in_place(self, None):
            # the old value gets gradient 0 (where's rule), as in PyTorch
            return _take_over(self, lambda old: functional.where(False, old, float(value)))
        return _write(self, "fill_", lambda data: xp.copyto(data, value, casting="same_kind"))

    def zero_(self) -> Tensor:
        """Set every element to 0, in place."""
        return self.fill_(0.0)

    def copy_(self, src: Any) -> Tensor:
        """Copy ``src`` (broadcast to this shape, converted to this dtype) into this tensor, in place."""
        if _graph_in_place(self, src):
            source = src if isinstance(src, Tensor) else Tensor._wrap(xp.asarray(src))
            return _take_over(
                self,
                lambda old: functional.where(
                    False, old, functional.broadcast_to(functional.astype(source, self.data.dtype), self.shape)
                ),
            )
        value = src.data if isinstance(src, Tensor) else src
        return _write(
            self, "copy_", lambda data: xp.copyto(data, xp.broadcast_to(value, data.shape), casting="same_kind")
        )

    # ----------------------------------------------------------------- methods
    def add(self, other: Any) -> Tensor:
        return functional.add(self, other)

    def sub(self, other: Any) -> Tensor:
        return functional.sub(self, other)

    def mul(self, other: Any) -> Tensor:
        return functional.mul(self, other)

    def div(self, other: Any) -> Tensor:
        return functional.div(self, other)

    def neg(self) -> Tensor:
        return apply1(NegOp, self)

    def exp(self) -> Tensor:
        return functional.exp(self)

    def log(self) -> Tensor:
        return functional.log(self)

    def sqrt(self) -> Tensor:
        return functional.sqrt(self)

    def abs(self) -> Tensor:
        return functional.abs(self)

    def tanh(self) -> Tensor:
        return functional.tanh(self)

    def sigmoid(self) -> Tensor:
        return functional.sigmoid(self)

    def relu(self) -> Tensor:
        return functional.relu(self)

    def pow(self, exponent: Any) -> Tensor:
        return functional.pow(self, exponent)

    def matmul(self, other: Any) -> Tensor:
        return functional.matmul(self, other)

    def maximum(self, other: Any) -> Tensor:
        return functional.maximum(self, other)

    def minimum(self, other: Any) -> Tensor:
        return functional.minimum(self, other)

    def clip(self, min: Any = None, max: Any = None) -> Tensor:
        return functional.clip(self, min, max)

    clamp = clip

    def sum(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: Any = None) -> Tensor:
        return _reduction(SumOp, self, axis, keepdims, dim, keepdim)

    def mean(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: Any = None) -> Tensor:
        return _reduction(MeanOp, self, axis, keepdims, dim, keepdim)

    def var(self, axis: Any = None, keepdims: bool = False, ddof: int | None = None, **aliases: Any) -> Tensor:
        return functional.var(self, axis, keepdims, ddof, **aliases)

    def std(self, axis: Any = None, keepdims: bool = False, ddof: int | None = None, **aliases: Any) -> Tensor:
        return functional.std(self, axis, keepdims, ddof, **aliases)

    def norm(self, p: Any = "fro", dim: Any = None, keepdim: bool = False, dtype: Any = None, **aliases: Any) -> Tensor:
        return functional.norm(self, p, dim, keepdim, dtype, **aliases)

    def max(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: Any = None) -> Tensor:
        return functional.max(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def min(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: Any = None) -> Tensor:
        return functional.min(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def argmax(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: Any = None) -> Tensor:
        return functional.argmax(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def argmin(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: Any = None) -> Tensor:
        return functional.argmin(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def logsumexp(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: Any = None) -> Tensor:
        return functional.logsumexp(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def softmax(self, axis: Any = None, *, dim: Any = None) -> Tensor:
        return functional.softmax(self, axis, dim=dim)

    def log_softmax(self, axis: Any = None, *, dim: Any = None) -> Tensor:
        return functional.log_softmax(self, axis, dim=dim)

    def any(
        self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: Any = None, **numpy: Any
    ) -> Any:
        """Whether any element is true: a bool over everything, else a bool tensor (``np.any(t)`` works too)."""
        return _truth(self, xp.any, axis, keepdims, dim, keepdim, numpy)

    def all(
        self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: Any = None, **numpy: Any
    ) -> Any:
        """Whether every element is true: a bool over everything, else a bool tensor."""
        return _truth(self, xp.all, axis, keepdims, dim, keepdim, numpy)

    def reshape(self, *shape: Any) -> Tensor:
        return functional.reshape(self, *shape)

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        return functional.flatten(self, start_dim, end_dim)

    def transpose(self, *axes: Any) -> Tensor:
        return functional.transpose(self, *axes)

    def permute(self, *axes: Any) -> Tensor:
        return functional.permute(self, *axes)

    def broadcast_to(self, shape: Sequence[int]) -> Tensor:
        return functional.broadcast_to(self, shape)

    expand = broadcast_to

    def squeeze(self, axis: Any = None, *, dim: Any = None) -> Tensor:
        return functional.squeeze(self, axis, dim=dim)

    def unsqueeze(self, axis: int | None = None, *, dim: int | None = None) -> Tensor:
        return functional.unsqueeze(self, axis, dim=dim)


def attach() -> None:
    """Give ``Tensor`` every method of ``_TensorMethods`` (idempotent)."""
    for name, value in vars(_TensorMethods).items():
        # __hash__ is None here (Python's rule for a class that defines __eq__); Tensor keeps its own
        if name not in ("__module__", "__qualname__", "__doc__", "__dict__", "__weakref__", "__hash__"):
            setattr(Tensor, name, value)


attach()
