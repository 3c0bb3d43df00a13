"""Ops that move elements without changing them: the gradient is moved back."""

from __future__ import annotations

from typing import Any

from chainrule.backend import ndarray, xp
from chainrule.ops.base import Op, register

Grads = tuple[ndarray | None, ...]


@register
class ReshapeOp(Op):
    """f(x) = x viewed with another shape; the gradient is reshaped back."""

    name = "reshape"
    __slots__ = ("in_shape", "shape")

    def forward(self, x: ndarray, shape: tuple[int, ...]) -> ndarray:
        self.in_shape = x.shape
        out = x.reshape(shape)
        self.shape = out.shape
        return out

    def backward(self, upstream: ndarray) -> Grads:
        return (upstream.reshape(self.in_shape),)


@register
class TransposeOp(Op):
    """f(x) = x with its axes permuted; the gradient is permuted back."""

    name = "transpose"
    __slots__ = ("axes",)

    def forward(self, x: ndarray, axes: tuple[int, ...]) -> ndarray:
        self.axes = axes
        return x.transpose(axes)

    def backward(self, upstream: ndarray) -> Grads:
        inverse = [0] * len(self.axes)
        for i, a in enumerate(self.axes):
            inverse[a] = i
        return (upstream.transpose(inverse),)


@register
class BroadcastToOp(Op):
    """f(x) = x repeated along broadcast axes; the gradient is summed back (by the engine)."""

    name = "broadcast_to"
    __slots__ = ("shape",)

    def forward(self, x: ndarray, shape: tuple[int, ...]) -> ndarray:
        self.shape = shape
        return xp.broadcast_to(x, shape)

    def backward(self, upstream: ndarray) -> Grads:
        return (upstream,)


def _has_array_index(index: Any) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, (ndarray, list)) and xp.asarray(p).dtype.kind != "b" for p in parts)


@register
class IndexOp(Op):
    """f(x) = x[index] (slices, integer arrays, boolean masks).

    The gradient is scattered back into zeros of x's shape. NOTE: with integer-array
    indices an element picked several times gets the sum of its gradients (scatter-add).
    """

    name = "index"
    __slots__ = ("in_shape", "index")

    def forward(self, x: ndarray, index: Any) -> ndarray:
        self.index, self.in_shape = index, x.shape
        return x[index]

    def backward(self, upstream: ndarray) -> Grads:
        grad = xp.zeros(self.in_shape, dtype=upstream.dtype)
        if _has_array_index(self.index):
            xp.add.at(grad, self.index, upstream)
        else:
            grad[self.index] = upstream
        return (grad,)

    def describe(self) -> str:
        return "index=" + _index_text(self.index)


def _index_text(index: Any) -> str:
    parts = index if isinstance(index, tuple) else (index,)
    out = []
    for p in parts:
        if isinstance(p, slice):
            out.append(
                ("" if p.start is None else str(p.start))
                + ":"
                + ("" if p.stop is None else str(p.stop))
                + ("" if p.step is None else f":{p.step}")
            )
        elif isinstance(p, ndarray):
            out.append(f"<{p.dtype} array {p.shape}>")
        else:
            out.append(repr(p))
    return "[" + ", ".join(out) + "]"


@register
class ConcatenateOp(Op):
    """f(x1, ..., xn) = the inputs joined along axis; the gradient is split back."""

    name = "concatenate"
    __slots__ = ("axis", "sizes")

    def forward(self, *arrays: ndarray, axis: int) -> ndarray:
        self.axis = axis
        self.sizes = [a.shape[axis] for a in arrays]
        return xp.concatenate(arrays, axis=axis)

    def backward(self, upstream: ndarray) -> Grads:
        bounds = list(xp.cumsum(self.sizes)[:-1])
        return tuple(xp.split(upstream, bounds, axis=self.axis))


@register
class StackOp(Op):
    """f(x1, ..., xn) = the inputs stacked along a new axis; the gradient is unstacked."""

    name = "stack"
    __slots__ = ("axis",)

    def forward(self, *arrays: ndarray, axis: int) -> ndarray:
        self.axis = axis
        return xp.stack(arrays, axis=axis)

    def backward(self, upstream: ndarray) -> Grads:
        return tuple(xp.moveaxis(upstream, self.axis, 0))
