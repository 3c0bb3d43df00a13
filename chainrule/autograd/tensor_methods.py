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
from chainrule.autograd.tensor import Tensor
from chainrule.backend import xp
from chainrule.functional import _binary, _compare, _operand, _reduction
from chainrule.ops.base import apply1, apply2
from chainrule.ops.elementwise import AddOp, DivOp, MulOp, NegOp, PowOp, SubOp
from chainrule.ops.linalg import MatMulOp
from chainrule.ops.reduce import MeanOp, SumOp


class _TensorMethods:
    """The methods ``attach()`` copies onto ``Tensor`` (this class is never instantiated)."""

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

    def any(self) -> bool:
        return bool(self.data.any())

    def all(self) -> bool:
        return bool(self.data.all())

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
