"""Numerical gradient checking by central differences.

For every input that requires grad, each element theta_i in turn is moved by +eps
and -eps with all others unchanged, and (J(theta + eps) - J(theta - eps)) / (2 eps)
is compared with the gradient backpropagation computed. J is the function's output
if it has one element; otherwise J = sum(output * R) for a fixed random R, which
checks a random combination of the Jacobian's rows.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from chainrule.autograd.grad_mode import enable_grad, no_grad
from chainrule.autograd.tensor import Tensor


class GradcheckError(AssertionError):
    """Backpropagation and central differences disagree (the message says where)."""


def _as_list(inputs: Any) -> list[Any]:
    if isinstance(inputs, Tensor):
        return [inputs]
    return list(inputs)


def _objective(fn: Callable[..., Tensor], inputs: list[Any]) -> Callable[[], Tensor]:
    weights: dict[tuple[int, ...], np.ndarray] = {}

    def J() -> Tensor:
        out = fn(*inputs)
        if not isinstance(out, Tensor):
            raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
        if out.size == 1:
            return out.sum()
        if out.shape not in weights:
            weights[out.shape] = np.random.default_rng(0).standard_normal(out.shape)
        return (out * weights[out.shape].astype(out.dtype)).sum()

    return J


def _numeric(J: Callable[[], Tensor], inputs: list[Any], eps: float) -> list[np.ndarray | None]:
    grads: list[np.ndarray | None] = []
    with no_grad():
        for t in inputs:
            if not (isinstance(t, Tensor) and t.requires_grad):
                grads.append(None)
                continue
            data = t.data
            if not data.flags.writeable:
                raise ValueError("gradcheck: an input's data is read-only; pass tensors that own their data")
            grad = np.zeros(data.shape, dtype=np.float64)
            # NOTE: index element by element (not through a flat reshape, which copies a
            # non-C-contiguous array) so the perturbation reaches any memory layout.
            for i in np.ndindex(data.shape):
                original = data[i].copy()
                try:
                    data[i] = original + eps
                    plus = float(J().data)
                    data[i] = original - eps
                    minus = float(J().data)
                finally:
                    data[i] = original  # restored exactly, even if fn raises
                grad[i] = (plus - minus) / (2 * eps)
            grads.append(grad)
    return grads


def _graph_leaves(root: Tensor) -> list[Tensor]:
    """Every leaf requiring grad that ``root``'s graph reaches (iteratively)."""
    leaves: dict[int, Tensor] = {}
    seen: set[int] = set()
    stack = [root]
    while stack:
        t = stack.pop()
        node = t._grad_fn
        if node is None:
            if t._requires_grad:
                leaves[id(t)] = t
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(node.inputs)
    return list(leaves.values())


def _analytic(J: Callable[[], Tensor], inputs: list[Any]) -> list[np.ndarray | None]:
    with enable_grad():
        out = J()
    # NOTE: backward also fills .grad of leaves fn uses but the check does not perturb
    # (e.g. other module parameters); keep every leaf's gradient as it was.
    touched = _graph_leaves(out) + [t for t in inputs if isinstance(t, Tensor)]
    saved = [(t, t.grad) for t in touched]
    try:
        for t, _ in saved:
            t.grad = None
        out.backward()
        return [
            (np.zeros(t.shape) if t.grad is None else np.array(t.grad, dtype=np.float64))
            if isinstance(t, Tensor) and t.requires_grad
            else None
            for t in inputs
        ]
    finally:
        for t, g in saved:
            t.grad = g


def _warn_precision(inputs: list[Any]) -> None:
    for i, t in enumerate(inputs):
        if isinstance(t, Tensor) and t.requires_grad and t.dtype != np.float64:
            warnings.warn(
                f"gradcheck: input {i} is {t.dtype}; central differences with a small eps need "
                "float64 (use tensor(..., dtype='float64')) or the check will report rounding noise",
                stacklevel=3,
            )


def numerical_grad(
    fn: Callable[..., Tensor], inputs: Sequence[Any] | Tensor, eps: float = 1e-6
) -> list[np.ndarray | None]:
    """Central-difference gradients of fn's objective, one array per input (None if no grad)."""
    items = _as_list(inputs)
    _warn_precision(items)
    return _numeric(_objective(fn, items), items, eps)


def gradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence[Any] | Tensor,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
) -> bool:
    """Check backprop against central differences for every input that requires grad.

    Passes when |analytic - numeric| <= atol + rtol * |numeric| for every element,
    and returns True; otherwise raises ``GradcheckError`` naming the input, its worst
    element, both values and their relative error. Inputs are perturbed in place
    (so module parameters work) and restored exactly; their ``.grad`` is left as it was.
    """
    items = _as_list(inputs)
    if not any(isinstance(t, Tensor) and t.requires_grad for t in items):
        raise ValueError("gradcheck: no input requires grad, so there is nothing to check")
    _warn_precision(items)
    J = _objective(fn, items)
    analytic = _analytic(J, items)
    numeric = _numeric(J, items, eps)
    for i, (t, ana, num) in enumerate(zip(items, analytic, numeric)):
        if ana is None or num is None:
            continue
        excess = np.abs(ana - num) - (atol + rtol * np.abs(num))
        if (excess.size and (excess > 0).any()) or not np.isfinite(ana).all():
            flat = int(np.nanargmax(np.where(np.isfinite(ana), excess, np.inf)))
            where = np.unravel_index(flat, ana.shape) if ana.ndim else ()
            a, n = float(ana[where]), float(num[where])
            rel = abs(a - n) / max(abs(a), abs(n), 1e-300)
            label = f"input {i}" + (f" ({t.name!r})" if t.name else "")
            index = tuple(int(k) for k in where)
            low = [f"{j}: {u.dtype}" for j, u in enumerate(items) if isinstance(u, Tensor) and u.dtype != np.float64]
            hint = (
                f"; the inputs are not float64 ({', '.join(low)}): central differences with eps={eps} measure "
                "rounding noise in lower precision, so make them with dtype='float64' and check again"
                if low
                else ""
            )
            raise GradcheckError(
                f"gradcheck failed for {label} of shape {t.shape}: worst element at index {index}: "
                f"analytic {a:.10g}, numeric {n:.10g}, relative error {rel:.3g} "
                f"(atol={atol}, rtol={rtol}, eps={eps}; {int((excess > 0).sum())} of {excess.size} elements off){hint}"
            )
    return True
