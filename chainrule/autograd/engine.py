"""``backward()``: the reverse-mode walk over the computational graph.

1. Count, for every node reachable from the output, how many of its output's uses
   lie on the graph (an iterative depth-first pass: no recursion limit).
2. Start from the output with the upstream gradient; a node runs its local rule
   (``downstream = local gradient x upstream``) once all its consumers have added
   their contributions (gradients add at branches). This is a reverse topological order.
3. Sum each input gradient back to the input's own shape (``unbroadcast``), add it to
   the input's pending gradient (or, for a leaf, to ``.grad``), and release what the
   node saved for backward, and its inputs, unless ``retain_graph=True``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from chainrule.autograd.grad_mode import state
from chainrule.autograd.tensor import Tensor
from chainrule.backend import ONE, ndarray, speedups, xp
from chainrule.ops.base import check_finite

if TYPE_CHECKING:
    from chainrule.ops.base import Op


class _Released:
    """Marker left in ``node.saved`` once backward has freed the node's intermediates."""

    def __repr__(self) -> str:
        return "<released>"


RELEASED = _Released()


def unbroadcast(grad: ndarray, shape: tuple[int, ...]) -> ndarray:
    """Sum ``grad`` over the axes that broadcasting added or stretched, giving ``shape``.

    This is the one place where broadcasting is undone: a broadcast input was used
    once per copy, so its gradient is the sum over the copies.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    if grad.shape != shape:
        grad = xp.broadcast_to(grad, shape)
    return grad


def _upstream_for(root: Tensor, grad: Any) -> ndarray:
    if grad is None:
        if root.data.size != 1:
            raise RuntimeError(
                f"backward(): the output has shape {root.shape}, so it needs an upstream gradient "
                f"of that shape: call .backward(grad) (for a loss, reduce it to a scalar first, e.g. .sum())"
            )
        # NOTE: a cached read-only 1: op rules never write into their upstream gradient.
        return ONE[root.data.dtype] if root.data.ndim == 0 else xp.ones_like(root.data)
    upstream = grad.data if isinstance(grad, Tensor) else xp.asarray(grad, dtype=root.data.dtype)
    if upstream.shape != root.shape:
        raise ValueError(
            f"backward(): upstream gradient has shape {upstream.shape} but the output has shape {root.shape}"
        )
    return upstream


#: a gradient's tensor (no history) around an array; the C extension's reuses tensor objects
_new_grad = Tensor._wrap


def clear_grads(tensors: Iterable[Tensor]) -> None:
    """``t.grad = None`` for each tensor: ``zero_grad``'s loop (in C where the extension is built)."""
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"clear_grads(): item {i} is a {type(t).__name__}, not a tensor")
        t.grad = None


def _grad_array(t: Tensor) -> ndarray | None:
    """The array of ``t.grad``, or None."""
    g = t._grad
    return None if g is None else g.data


def _accumulate_leaf(leaf: Tensor, grad: ndarray, upstream: ndarray) -> None:
    """Add ``grad`` into ``leaf.grad``: a new tensor (without history) holding the sum, as in PyTorch."""
    if type(grad) is not ndarray:  # a rule's NumPy scalar (0-d results)
        grad = xp.asarray(grad)
    if grad.dtype != leaf.data.dtype:
        grad = grad.astype(leaf.data.dtype)
    earlier = _grad_array(leaf)
    if earlier is None:
        # NOTE: never store an array another node may also hold (the upstream passed
        # through unchanged, or a view of it): later in-place updates would leak.
        if grad is upstream or grad.base is not None:
            grad = grad.copy()
        leaf._grad = _new_grad(grad)
    else:
        if earlier.shape != grad.shape:
            name = f" {leaf.name!r}" if leaf.name else ""
            raise RuntimeError(
                f"backward(): the leaf tensor{name} of shape {leaf.shape} holds a .grad of shape "
                f"{earlier.shape}, so its gradient of shape {grad.shape} cannot be added: set .grad "
                "to None (or a tensor of the tensor's shape) before backward"
            )
        leaf._grad = _new_grad(xp.asarray(earlier + grad))  # 0-d + 0-d gives a NumPy scalar


def _keep_retained(kept: Tensor, grad: ndarray) -> None:
    """``retain_grad()``: the non-leaf tensor ``kept`` receives its gradient."""
    earlier = _grad_array(kept)
    kept._grad = _new_grad(xp.array(grad) if earlier is None else xp.asarray(earlier + grad))


def _count_uses(root: Op) -> dict[Op, int]:
    uses: dict[Op, int] = {root: 0}
    stack = [root]
    while stack:
        node = stack.pop()
        for t in node.inputs:
            parent = t._grad_fn
            if parent is not None:
                if parent in uses:
                    uses[parent] += 1
                else:
                    uses[parent] = 1
                    stack.append(parent)
    return uses


_SECOND_BACKWARD = (
    "backward(): trying to backward through op '{name}' a second time, but its saved "
    "intermediate values were freed by the first backward. Pass retain_graph=True to the "
    "first backward() if you need to backpropagate through the same graph again."
)


def _second_backward(node: Op) -> None:
    raise RuntimeError(_SECOND_BACKWARD.format(name=node.name))


def _check_versions(node: Op) -> None:
    """Raise if an input of ``node`` was changed in place after the node used it.

    NOTE: the node's rule may have saved that input's values (mul saves both factors), so its
    gradient would be computed from values that are no longer there: PyTorch refuses it too.
    """
    recorded = getattr(node, "versions", None)
    for i, t in enumerate(node.inputs):
        now = getattr(t, "_version", 0)
        then = recorded[i] if recorded is not None else 0
        if now != then:
            name = f" {t.name!r}" if getattr(t, "name", None) else ""
            raise RuntimeError(
                f"backward(): input {i}{name} of op '{node.name}' (shape {t.shape}) was modified by an in-place "
                f"operation after the op used it (its version is {now}, the op saw version {then}), so the "
                "gradient would use values that are gone: compute with an out-of-place operation (x = x + y "
                "instead of x += y), or change it only after backward()"
            )


class BackwardObserver(Protocol):
    """What ``backward(..., observer=...)`` reports, step by step (``chainrule.explain`` records it).

    ``step`` is called once per node, in the order the walk runs them, right after the node's
    rule computed ``downstream`` (one array or None per input, before ``unbroadcast``) from
    ``upstream`` and while its saved values are still there. ``arrive`` is called for every
    gradient that reaches an input tensor (after ``unbroadcast``); ``total`` is what that input
    holds after the addition, ``is total`` the contribution itself when it was the first to arrive.
    """

    def step(self, node: Op, upstream: ndarray, downstream: tuple[ndarray | None, ...]) -> None: ...

    def arrive(self, node: Op, target: Tensor, contribution: ndarray, total: ndarray) -> None: ...


def _changed(inputs: tuple[Tensor, ...]) -> bool:
    for t in inputs:
        if t._version:
            return True
    return False


def backward(
    root: Tensor, grad: Any = None, retain_graph: bool = False, observer: BackwardObserver | None = None
) -> None:
    """Backpropagate from ``root``; see ``Tensor.backward``.

    With an ``observer``, the walk runs in Python (never the C twin) and reports each step to it.
    """
    node = root._grad_fn
    if grad is None and node is not None and root.data.ndim == 0:
        upstream = ONE[root.data.dtype]  # the common ``loss.backward()``: nothing to check
    else:
        if not root._requires_grad:
            raise RuntimeError(
                "backward(): this tensor does not require grad and has no graph: make the inputs "
                "with requires_grad=True (and do not compute it under no_grad)"
            )
        upstream = _upstream_for(root, grad)
        if node is None:
            _accumulate_leaf(root, upstream, upstream)
            return

    anomaly = state.anomaly
    if _walk is not None and not anomaly and observer is None:
        _walk(node, upstream, retain_graph)
        return
    uses = _count_uses(root._grad_fn)
    pending: dict[Op, ndarray] = {root._grad_fn: upstream}
    ready = [root._grad_fn]
    pop_ready, push_ready, pop_pending, get_pending = ready.pop, ready.append, pending.pop, pending.get
    while ready:
        node = pop_ready()
        g = pop_pending(node)
        if node.retained is not None:
            _keep_retained(node.retained, g)
        if node.saved is RELEASED:
            _second_backward(node)
        if node.versions is not None or _changed(node.inputs):
            _check_versions(node)
        downstream = node._vjp(g)
        inputs = node.inputs
        if observer is not None:
            observer.step(node, g, downstream)
        if not retain_graph:
            # NOTE: the node lets go of its saved values and of its inputs, as PyTorch's graph
            # frees its saved tensors: a loss kept alive after backward (``loss = step()`` until
            # the next step) must not keep every activation of its step alive with it.
            node.saved = RELEASED
            node.inputs = ()
            node.scope = None
        for t, dg in zip(inputs, downstream):
            parent = t._grad_fn
            if dg is not None:
                shape = t.data.shape
                if dg.shape != shape:
                    dg = unbroadcast(dg, shape)
                if anomaly:
                    check_finite("gradient flowing back to input", node, dg)
                if parent is None:
                    if t._requires_grad:
                        _accumulate_leaf(t, dg, g)
                        if observer is not None:
                            observer.arrive(node, t, dg, t._grad.data)
                    continue
                # NOTE: gradients add at branches: a parent used twice gets the sum.
                earlier = get_pending(parent)
                pending[parent] = dg if earlier is None else earlier + dg
                if observer is not None:
                    observer.arrive(node, t, dg, pending[parent])
                left = uses[parent] - 1
                uses[parent] = left
                if left == 0:
                    push_ready(parent)
            elif parent is not None:
                left = uses[parent] - 1
                uses[parent] = left
                if left == 0:
                    if parent in pending:
                        push_ready(parent)
                    elif not retain_graph:
                        parent.saved = RELEASED
                        parent.inputs = ()
                        parent.scope = None


# The same walk in C (chainrule/backend/_speedups.c), used unless anomaly checks are on.
_walk = None
#: ``_accumulate_leaf`` for callers outside the walk (``chainrule.compile``'s replay): C where built
accumulate_leaf = _accumulate_leaf
if speedups is not None:
    speedups.configure_walk(
        released=RELEASED,
        unbroadcast=unbroadcast,
        accumulate_leaf=_accumulate_leaf,
        keep_retained=_keep_retained,
        second_backward=_second_backward,
        check_versions=_check_versions,
    )
    _walk = speedups.walk
    _new_grad = speedups.grad_tensor
    clear_grads = speedups.clear_grads  # the C twin
    accumulate_leaf = speedups.accumulate_leaf
