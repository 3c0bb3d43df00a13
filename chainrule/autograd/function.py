"""User-defined differentiable ops, PyTorch style.

Subclass ``Function`` and write the forward and the local gradient side by side::

    class LpPool(chainrule.Function):
        '''y = (sum_i x_i^p)^(1/p) over the last axis, for x > 0.'''

        @staticmethod
        def forward(ctx, x, p):
            y = (x ** p).sum(axis=-1) ** (1 / p)
            ctx.save_for_backward(x, y)
            ctx.p = p
            return y

        @staticmethod
        def backward(ctx, grad_output):
            x, y = ctx.saved_tensors
            # dy/dx_i = (x_i / y)^(p-1)
            return grad_output[..., None] * (x / y[..., None]) ** (ctx.p - 1), None

    y = LpPool.apply(x, 3.0)

``forward`` receives NumPy arrays in place of tensors (other arguments as given) and
returns an array; ``backward`` receives the upstream gradient as an array and returns
one gradient per ``forward`` argument (``None`` for arguments that need none).
A gradient may come back in a broadcast shape: it is summed back to the input's shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.autograd.grad_mode import state
from chainrule.autograd.tensor import Tensor
from chainrule.backend import ndarray, xp
from chainrule.ops.base import Op, check_finite, user_frame, versions_of


def _constant(value: Any) -> Tensor:
    holder = np.empty((), dtype=object)
    holder[()] = value
    return Tensor._wrap(holder)


class Function(Op):
    """Base class for user-defined ops: define static ``forward(ctx, ...)`` and ``backward(ctx, g)``.

    The instance passed as ``ctx`` is the graph node; store anything on it.
    """

    # No __slots__: a ctx takes any attribute, as in PyTorch.

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__

    def save_for_backward(self, *arrays: Any) -> None:
        """Keep arrays for backward (freed after backward unless retain_graph=True)."""
        self.saved = tuple(a.data if isinstance(a, Tensor) else a for a in arrays)

    @property
    def saved_tensors(self) -> tuple[Any, ...]:
        return self.saved if self.saved is not None else ()

    @staticmethod
    def forward(ctx: Any, *args: Any) -> Any:  # type: ignore[override]
        raise NotImplementedError("a Function subclass must define forward(ctx, *inputs)")

    @staticmethod
    def backward(ctx: Any, grad_output: ndarray) -> Any:  # type: ignore[override]
        raise NotImplementedError("a Function subclass must define backward(ctx, grad_output)")

    @classmethod
    def apply(cls, *args: Any) -> Tensor:
        """Run forward on the arguments and record the op in the graph."""
        ctx = object.__new__(cls)
        ctx.saved = None
        ctx.retained = None
        ctx.trace = None
        ctx.scope = None
        inputs = tuple(a if isinstance(a, Tensor) else _constant(a) for a in args)
        ctx.needs_input_grad = tuple(t._requires_grad for t in inputs)
        out = cls.forward(ctx, *[a.data if isinstance(a, Tensor) else a for a in args])
        if isinstance(out, Tensor):
            out = out.data
        if isinstance(out, (tuple, list)):
            # NOTE: np.asarray would silently stack several outputs into one array.
            raise TypeError(
                f"{cls.name}.forward returned a {type(out).__name__} of {len(out)} values; a Function "
                "has one output: return a single array (split several results into several Functions)"
            )
        if not isinstance(out, ndarray):
            out = xp.asarray(out)
        if state.grad_enabled and any(ctx.needs_input_grad):
            ctx.inputs = inputs
            ctx.versions = versions_of(inputs)
            if state.anomaly:
                ctx.trace = user_frame()
                check_finite("forward output", ctx, out)
            return Tensor._wrap(out, ctx)
        return Tensor._wrap(out)

    def _vjp(self, upstream: ndarray) -> tuple[ndarray | None, ...]:
        grads = type(self).backward(self, upstream)
        if not isinstance(grads, tuple):
            grads = (grads,)
        if len(grads) != len(self.inputs):
            raise RuntimeError(
                f"{self.name}.backward returned {len(grads)} gradient(s) but forward took "
                f"{len(self.inputs)} argument(s): return one per argument (None where there is none)"
            )
        out: list[ndarray | None] = []
        for i, (t, g) in enumerate(zip(self.inputs, grads)):
            if g is None or not self.needs_input_grad[i]:
                out.append(None)
                continue
            g = xp.asarray(g.data if isinstance(g, Tensor) else g)
            # NOTE: a gradient may be larger than its input (a broadcast shape, summed back by
            # the engine) but never smaller: silently stretching it would hide a wrong backward.
            try:
                fits = np.broadcast_shapes(g.shape, t.data.shape) == g.shape
            except ValueError:
                fits = False
            if not fits:
                raise RuntimeError(
                    f"{self.name}.backward returned a gradient of shape {g.shape} for argument {i} "
                    f"of shape {t.data.shape}: return the input's shape (or a shape it broadcasts to)"
                )
            out.append(g)
        return tuple(out)
