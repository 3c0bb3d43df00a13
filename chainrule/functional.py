"""The differentiable functions of chainrule, on tensors (also exported as ``chainrule.<name>``).

Each wraps one registered primitive op (or, for a few conveniences, a composition of
them). Arguments may be tensors, NumPy arrays or Python numbers. Reductions and the
softmax family take ``axis``/``keepdims`` (NumPy's names) and accept PyTorch's
``dim``/``keepdim`` as aliases.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import numpy as np

from chainrule.autograd.factories import shape_arg
from chainrule.autograd.tensor import Tensor
from chainrule.backend import ConstantCache, const, const_key, ndarray, xp
from chainrule.ops.base import apply, apply1, apply2
from chainrule.ops.elementwise import (
    AbsOp,
    AddOp,
    CastOp,
    ClipOp,
    DivOp,
    EluOp,
    ExpOp,
    LeakyReluOp,
    LogOp,
    MaximumOp,
    MinimumOp,
    MulOp,
    NegOp,
    PowOp,
    PowScalarOp,
    ReluOp,
    SigmoidOp,
    SoftplusOp,
    SqrtOp,
    SubOp,
    TanhOp,
    WhereOp,
)
from chainrule.ops.linalg import LinearOp, MatMulOp
from chainrule.ops.loss import CrossEntropyOp
from chainrule.ops.movement import BroadcastToOp, ConcatenateOp, IndexOp, ReshapeOp, StackOp, TransposeOp
from chainrule.ops.reduce import (
    LogSoftmaxOp,
    LogSumExpOp,
    MaxOp,
    MeanOp,
    MinOp,
    NormOp,
    SoftmaxOp,
    StdOp,
    SumOp,
    VarOp,
)

_PY_SCALARS = (int, float, bool)
_F32 = np.dtype(np.float32)


def _lift(value: Any, like: Tensor | None = None, op: str = "op") -> Tensor:
    """Make a constant tensor from a Python number or ndarray.

    NOTE: a Python number takes the dtype of the tensor it meets (when that tensor
    is floating), so ``x32 * 0.5`` stays float32; NumPy values keep their dtype.
    """
    if isinstance(value, Tensor):
        return value
    if isinstance(value, _PY_SCALARS):
        if like is not None and like.data.dtype.kind == "f":
            return Tensor._wrap(xp.asarray(value, dtype=like.data.dtype))
        if isinstance(value, float):
            return Tensor._wrap(xp.asarray(value, dtype=_F32))
        return Tensor._wrap(xp.asarray(value))
    if isinstance(value, (ndarray, np.generic)):
        return Tensor._wrap(xp.asarray(value))
    raise TypeError(
        f"{op}: unsupported operand type {type(value).__name__}; use a Tensor, an ndarray or a Python number"
    )


# backend.const arrays, wrapped once as tensors (the same keys and bound as backend.const's cache)
_CONSTANTS = ConstantCache(lambda value, dtype: Tensor._wrap(const(value, dtype)))


def _operand(value: Any, like: Tensor) -> Tensor | None:
    """The other operand of an operator as a tensor, or None if its type is unsupported.

    Python numbers meeting a floating tensor become read-only constants of that dtype,
    cached so ``x * 0.5`` in a loop does not build a new array every time.
    """
    if isinstance(value, Tensor):
        return value
    kind = type(value)
    if kind is float or kind is int:
        dtype = like.data.dtype
        if dtype.kind == "f":
            key = (value, dtype) if value else const_key(value, dtype)  # inline: the operators' hot path
            wrapped = _CONSTANTS.get(key)
            return _CONSTANTS[key] if wrapped is None else wrapped
    if isinstance(value, (*_PY_SCALARS, ndarray, np.generic)):
        return _lift(value, like)
    return None


_BINARY = {
    "add": AddOp,
    "sub": SubOp,
    "mul": MulOp,
    "div": DivOp,
    "pow": PowOp,
    "matmul": MatMulOp,
    "maximum": MaximumOp,
    "minimum": MinimumOp,
}


def _binary(name: str, a: Any, b: Any) -> Tensor:
    """Apply a binary op; the Python number side takes the tensor side's dtype."""
    if isinstance(a, Tensor):
        if not isinstance(b, Tensor):
            if name == "pow" and isinstance(b, _PY_SCALARS):
                return apply(PowScalarOp, a, exponent=b)
            b = _operand(b, a)
            if b is None:
                return NotImplemented
    elif isinstance(b, Tensor):
        a = _operand(a, b)
        if a is None:
            return NotImplemented
    else:
        a = _lift(a, None, name)
        b = _lift(b, a, name)
    return apply2(_BINARY[name], a, b)


def _binary_fn(name: str, a: Any, b: Any) -> Tensor:
    out = _binary(name, a, b)
    if out is NotImplemented:
        raise TypeError(
            f"{name}: unsupported operand types {type(a).__name__} and {type(b).__name__}; "
            "use Tensors, ndarrays or Python numbers"
        )
    return out


def _compare(ufunc: Any, a: Tensor, b: Any) -> Tensor:
    if isinstance(b, Tensor):
        b = b.data
    elif not isinstance(b, (*_PY_SCALARS, ndarray, np.generic)):
        return NotImplemented
    try:
        return Tensor._wrap(xp.asarray(ufunc(a.data, b)))
    except ValueError as err:
        raise ValueError(f"{ufunc.__name__}: cannot compare shapes {a.shape} and {np.shape(b)}: {err}") from err


def _tensor(x: Any, op: str) -> Tensor:
    if isinstance(x, Tensor):
        return x
    return _lift(x, None, op)


# --------------------------------------------------------------------- axis helpers
def _pick(value: Any, alias: Any, default: Any, name: str, alias_name: str) -> Any:
    if alias is not None:
        if value is not default and value != default:
            raise TypeError(f"give either {name} or {alias_name}, not both")
        return alias
    return value


def _axis1(axis: Any, ndim: int, op: str) -> int:
    """One axis as a non-negative int. As in PyTorch, a 0-d tensor takes axis 0 and -1, and an axis
    out of range is an IndexError."""
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{op}: axis must be a single int, got {axis!r}")
    n = builtins.max(ndim, 1)
    if not -n <= axis < n:
        raise IndexError(
            f"{op}: axis {axis} is out of range for a tensor with {ndim} dimension(s) (expected {-n} to {n - 1})"
        )
    return int(axis) % n


def _axes(axis: Any, ndim: int, op: str) -> tuple[int, ...] | None:
    """Normalize ``axis`` to None or a sorted tuple of non-negative ints (a repeated axis: RuntimeError)."""
    if axis is None:
        return None
    items = axis if isinstance(axis, (tuple, list)) else (axis,)
    for a in items:
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool):
            raise TypeError(f"{op}: axis must be an int or a tuple of ints, got {axis!r}")
    out = [_axis1(a, ndim, op) for a in items]
    if len(set(out)) != len(out):
        raise RuntimeError(f"{op}: axis {axis!r} names the same axis twice")
    # NOTE: a 0-d tensor's axis 0 (or -1) is no axis at all: reducing over it leaves the value as it is
    return tuple(sorted(out)) if ndim else ()


def _reduction(op: Any, x: Any, axis: Any, keepdims: bool, dim: Any, keepdim: Any, **extra: Any) -> Tensor:
    if axis is None and dim is None and keepdim is None and keepdims is False and not extra and isinstance(x, Tensor):
        return apply(op, x, axis=None, keepdims=False)  # the common x.sum() / x.mean(), without the checks
    x = _tensor(x, op.name)
    axis = _pick(axis, dim, None, "axis", "dim")
    keepdims = _pick(keepdims, keepdim, False, "keepdims", "keepdim")
    return apply(op, x, axis=_axes(axis, x.data.ndim, op.name), keepdims=bool(keepdims), **extra)


# --------------------------------------------------------------------- arithmetic
def add(a: Any, b: Any) -> Tensor:
    """a + b (broadcasting)."""
    return _binary_fn("add", a, b)


def sub(a: Any, b: Any) -> Tensor:
    """a - b (broadcasting)."""
    return _binary_fn("sub", a, b)


def mul(a: Any, b: Any) -> Tensor:
    """a * b (broadcasting)."""
    return _binary_fn("mul", a, b)


def div(a: Any, b: Any) -> Tensor:
    """a / b (broadcasting)."""
    return _binary_fn("div", a, b)


def pow(a: Any, exponent: Any) -> Tensor:
    """a ** exponent; a Python-number exponent is a constant, a tensor exponent gets a gradient."""
    return _binary_fn("pow", a, exponent)


def matmul(a: Any, b: Any) -> Tensor:
    """Matrix product a @ b (1-D, 2-D and batched, NumPy's rules)."""
    return _binary_fn("matmul", a, b)


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise max(a, b), the max gate; ties split the gradient equally."""
    return _binary_fn("maximum", a, b)


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise min(a, b); ties split the gradient equally."""
    return _binary_fn("minimum", a, b)


def neg(x: Any) -> Tensor:
    """-x."""
    return apply1(NegOp, _tensor(x, "neg"))


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """Elementwise ``a if condition else b``; the condition gets no gradient."""
    cond = condition.data if isinstance(condition, Tensor) else xp.asarray(condition)
    if cond.dtype != bool:
        cond = cond.astype(bool)
    a_t = a if isinstance(a, Tensor) else None
    b_t = b if isinstance(b, Tensor) else None
    like = a_t if a_t is not None else b_t
    return apply(WhereOp, _lift(a, like, "where"), _lift(b, like, "where"), cond=cond)


def clip(x: Any, min: Any = None, max: Any = None) -> Tensor:
    """Clamp x into [min, max]; the gradient passes inside the range (bounds included)."""
    if min is None and max is None:
        raise ValueError("clip: give min, max or both")
    return apply(ClipOp, _tensor(x, "clip"), lo=min, hi=max)


clamp = clip


def astype(x: Any, dtype: Any) -> Tensor:
    """x converted to ``dtype`` (the gradient is converted back)."""
    x = _tensor(x, "cast")
    if x.data.dtype == np.dtype(dtype):
        return x
    return apply(CastOp, x, dtype=np.dtype(dtype))


# --------------------------------------------------------------------- unary math
def exp(x: Any) -> Tensor:
    """e^x."""
    return apply1(ExpOp, _tensor(x, "exp"))


def log(x: Any) -> Tensor:
    """Natural logarithm ln x."""
    return apply1(LogOp, _tensor(x, "log"))


def sqrt(x: Any) -> Tensor:
    """Square root."""
    return apply1(SqrtOp, _tensor(x, "sqrt"))


def abs(x: Any) -> Tensor:
    """|x| (gradient 0 at 0)."""
    return apply1(AbsOp, _tensor(x, "abs"))


def tanh(x: Any) -> Tensor:
    """Hyperbolic tangent."""
    return apply1(TanhOp, _tensor(x, "tanh"))


def sigmoid(x: Any) -> Tensor:
    """1 / (1 + e^-x), stable for any x."""
    return apply1(SigmoidOp, _tensor(x, "sigmoid"))


def relu(x: Any) -> Tensor:
    """max(0, x) (gradient 0 at 0)."""
    return apply1(ReluOp, _tensor(x, "relu"))


def leaky_relu(x: Any, negative_slope: float = 0.01) -> Tensor:
    """x if x > 0 else negative_slope * x."""
    return apply(LeakyReluOp, _tensor(x, "leaky_relu"), negative_slope=negative_slope)


def elu(x: Any, alpha: float = 1.0) -> Tensor:
    """x if x > 0 else alpha (e^x - 1)."""
    return apply(EluOp, _tensor(x, "elu"), alpha=alpha)


def softplus(x: Any, beta: float = 1.0) -> Tensor:
    """ln(1 + e^(beta x)) / beta, stable for any x."""
    return apply(SoftplusOp, _tensor(x, "softplus"), beta=beta)


# --------------------------------------------------------------------- reductions
def sum(x: Any, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: Any = None) -> Tensor:
    """Sum over ``axis`` (all axes if None)."""
    return _reduction(SumOp, x, axis, keepdims, dim, keepdim)


def mean(x: Any, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: Any = None) -> Tensor:
    """Mean over ``axis`` (all axes if None)."""
    return _reduction(MeanOp, x, axis, keepdims, dim, keepdim)


def _correction(op: str, ddof: Any, correction: Any, unbiased: Any) -> int:
    """The one correction given (PyTorch's ``correction``/``unbiased`` or NumPy's ``ddof``); default 1 (PyTorch)."""
    given = {k: v for k, v in (("ddof", ddof), ("correction", correction), ("unbiased", unbiased)) if v is not None}
    if len(given) > 1:
        raise TypeError(f"{op}: give one of ddof, correction and unbiased, not {' and '.join(given)}")
    if unbiased is not None:
        return 1 if unbiased else 0
    value = next(iter(given.values()), 1)
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
        raise TypeError(f"{op}: the correction must be a non-negative int, got {value!r}")
    return int(value)


def var(
    x: Any,
    axis: Any = None,
    keepdims: bool = False,
    ddof: int | None = None,
    *,
    dim: Any = None,
    keepdim: Any = None,
    correction: int | None = None,
    unbiased: bool | None = None,
) -> Tensor:
    """Variance over ``axis``: sum (x - mean)^2 / max(0, n - correction).

    The default correction is PyTorch's: 1 (the unbiased estimate, dividing by n - 1). NumPy's
    population variance is ``correction=0``, or ``ddof=0`` in NumPy's spelling, or ``unbiased=False``.
    NOTE: where n - correction <= 0 the result is inf (or NaN for 0/0), as in PyTorch, whose
    gradient there divides by n - correction itself (so it is infinite or of the other sign).
    """
    ddof = _correction("var", ddof, correction, unbiased)
    return _reduction(VarOp, x, axis, keepdims, dim, keepdim, ddof=ddof)


def std(
    x: Any,
    axis: Any = None,
    keepdims: bool = False,
    ddof: int | None = None,
    *,
    dim: Any = None,
    keepdim: Any = None,
    correction: int | None = None,
    unbiased: bool | None = None,
) -> Tensor:
    """Standard deviation over ``axis``: sqrt(var), with ``var``'s corrections (default 1, PyTorch's).

    NOTE: where the deviation is 0 its gradient is taken as 0, as PyTorch does (sqrt has no
    derivative at 0; composing sqrt and var would give NaN there).
    """
    ddof = _correction("std", ddof, correction, unbiased)
    return _reduction(StdOp, x, axis, keepdims, dim, keepdim, ddof=ddof)


def norm(
    x: Any,
    p: Any = "fro",
    dim: Any = None,
    keepdim: bool = False,
    dtype: Any = None,
    *,
    axis: Any = None,
    keepdims: Any = None,
) -> Tensor:
    """The vector p-norm over ``dim`` (all elements by default), PyTorch's ``torch.norm``.

    ``p``: 2 or "fro" (the default, sqrt of the sum of squares), 1, any other number, inf, -inf,
    or 0 (the count of nonzero elements). ``dtype`` converts the input first. Matrix norms
    ("nuc", or the spectral norm over two axes) are not provided. At 0 the gradient is taken as
    0, as PyTorch does.
    """
    if isinstance(p, str):
        if p != "fro":
            raise RuntimeError(
                f"norm(): p={p!r} is not supported: chainrule has the vector norms (p a number or 'fro')"
            )
        p = 2
    elif isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise TypeError(f"norm(): p must be a number or 'fro', got {type(p).__name__}")
    x = _tensor(x, "norm")
    if dtype is not None:
        x = astype(x, dtype)
    if x.data.dtype.kind != "f":
        raise RuntimeError(f"norm(): needs a floating-point tensor, got dtype {x.data.dtype} (pass dtype=)")
    if keepdims is not None and keepdim:
        raise TypeError("give either keepdim or keepdims, not both")
    keepdims = bool(keepdim if keepdims is None else keepdims)
    return _reduction(NormOp, x, axis, keepdims, dim, None, ord=float(p))


def max(x: Any, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: Any = None) -> Tensor:
    """Largest element over ``axis``; tied maxima share the gradient equally."""
    return _reduction(MaxOp, x, axis, keepdims, dim, keepdim)


def min(x: Any, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: Any = None) -> Tensor:
    """Smallest element over ``axis``; tied minima share the gradient equally."""
    return _reduction(MinOp, x, axis, keepdims, dim, keepdim)


def logsumexp(x: Any, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: Any = None) -> Tensor:
    """ln sum e^x over ``axis``, computed without overflow."""
    return _reduction(LogSumExpOp, x, axis, keepdims, dim, keepdim)


def _arg(fn: Any, x: Any, axis: Any, keepdims: bool, dim: Any, keepdim: Any, op: str) -> Tensor:
    x = _tensor(x, op)
    axis = _pick(axis, dim, None, "axis", "dim")
    keepdims = bool(_pick(keepdims, keepdim, False, "keepdims", "keepdim"))
    if axis is not None:
        axis = _axis1(axis, x.data.ndim, op)
    return Tensor._wrap(xp.asarray(fn(x.data, axis=axis, keepdims=keepdims)))


def argmax(x: Any, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: Any = None) -> Tensor:
    """Index of the largest element (flat index if axis is None). No gradient."""
    return _arg(xp.argmax, x, axis, keepdims, dim, keepdim, "argmax")


def argmin(x: Any, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: Any = None) -> Tensor:
    """Index of the smallest element (flat index if axis is None). No gradient."""
    return _arg(xp.argmin, x, axis, keepdims, dim, keepdim, "argmin")


def _softmax_axis(axis: int | None, dim: int | None) -> int:
    if axis is not None and dim is not None:
        raise TypeError("give either axis or dim, not both")
    if dim is not None:
        return dim
    return -1 if axis is None else axis


def softmax(x: Any, axis: int | None = None, *, dim: int | None = None) -> Tensor:
    """e^x / sum e^x along ``axis`` (default: the last), exact for inputs of any size."""
    x = _tensor(x, "softmax")
    axis = _softmax_axis(axis, dim)
    return apply(SoftmaxOp, x, axis=_axis1(axis, x.data.ndim, "softmax"))


def log_softmax(x: Any, axis: int | None = None, *, dim: int | None = None) -> Tensor:
    """x - logsumexp(x) along ``axis`` (default: the last)."""
    x = _tensor(x, "log_softmax")
    axis = _softmax_axis(axis, dim)
    return apply(LogSoftmaxOp, x, axis=_axis1(axis, x.data.ndim, "log_softmax"))


# --------------------------------------------------------------------- movement
def reshape(x: Any, *shape: Any) -> Tensor:
    """x with a new shape (one entry may be -1). ``reshape(x, 2, 3)`` or ``reshape(x, (2, 3))``."""
    return apply(ReshapeOp, _tensor(x, "reshape"), shape=shape_arg(shape))


def transpose(x: Any, *axes: Any) -> Tensor:
    """Permute axes.

    ``transpose(x)`` reverses all axes (NumPy's ``.T``); ``transpose(x, (2, 0, 1))`` with a
    tuple permutes (NumPy); ``transpose(x, i, j)`` with two ints swaps axes i and j
    (PyTorch), so ``w.transpose(0, 1)`` transposes a matrix.
    """
    x = _tensor(x, "transpose")
    ndim = x.data.ndim
    if len(axes) == 2 and not isinstance(axes[0], (tuple, list)):
        i, j = _axis1(axes[0], ndim, "transpose"), _axis1(axes[1], ndim, "transpose")
        order = list(range(ndim))
        order[i], order[j] = order[j], order[i]
        return apply(TransposeOp, x, axes=tuple(order))
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    if not axes:
        perm = tuple(range(ndim))[::-1]
    else:
        perm = tuple(_axis1(a, ndim, "transpose") for a in axes)
        if sorted(perm) != list(range(ndim)):
            raise ValueError(f"transpose: axes {axes} are not a permutation of a {ndim}-d tensor's axes")
    return apply(TransposeOp, x, axes=perm)


def permute(x: Any, *axes: Any) -> Tensor:
    """Permute axes: ``permute(x, 2, 0, 1)`` (PyTorch's name for NumPy's transpose(axes))."""
    x = _tensor(x, "permute")
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    if len(axes) != x.data.ndim:
        raise RuntimeError(f"permute: got {len(axes)} axes for a {x.data.ndim}-d tensor")
    perm = tuple(_axis1(a, x.data.ndim, "permute") for a in axes)
    if sorted(perm) != list(range(x.data.ndim)):
        raise RuntimeError(f"permute: axes {axes} are not a permutation of a {x.data.ndim}-d tensor's axes")
    return apply(TransposeOp, x, axes=perm)


def swapaxes(x: Any, axis1: int, axis2: int) -> Tensor:
    """Swap two axes."""
    x = _tensor(x, "swapaxes")
    order = list(range(x.data.ndim))
    i, j = _axis1(axis1, x.data.ndim, "swapaxes"), _axis1(axis2, x.data.ndim, "swapaxes")
    order[i], order[j] = order[j], order[i]
    return apply(TransposeOp, x, axes=tuple(order))


def broadcast_to(x: Any, shape: Sequence[int]) -> Tensor:
    """x repeated to ``shape`` by NumPy's broadcasting rules (the gradient is summed back)."""
    return apply(BroadcastToOp, _tensor(x, "broadcast_to"), shape=tuple(int(s) for s in shape))


def squeeze(x: Any, axis: Any = None, *, dim: Any = None) -> Tensor:
    """Remove axes of length 1: all of them, or those in ``axis`` that have length 1.

    As in PyTorch, a named axis whose length is not 1 is left as it is (NumPy raises there).
    """
    x = _tensor(x, "squeeze")
    axis = _pick(axis, dim, None, "axis", "dim")
    shape = x.data.shape
    axes = _axes(axis, x.data.ndim, "squeeze")
    if axes is None:
        new = tuple(n for n in shape if n != 1)
    else:
        new = tuple(n for i, n in enumerate(shape) if i not in axes or n != 1)
    return apply(ReshapeOp, x, shape=new)


def unsqueeze(x: Any, axis: int | None = None, *, dim: int | None = None) -> Tensor:
    """Insert an axis of length 1 at position ``axis``."""
    x = _tensor(x, "unsqueeze")
    axis = _pick(axis, dim, None, "axis", "dim")
    if axis is None:
        raise TypeError("unsqueeze: give the position of the new axis (axis=...)")
    ndim = x.data.ndim + 1
    a = _axis1(axis, ndim, "unsqueeze")
    shape = list(x.data.shape)
    shape.insert(a, 1)
    return apply(ReshapeOp, x, shape=tuple(shape))


def flatten(x: Any, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge the axes ``start_dim`` to ``end_dim`` (both included) into one; a 0-d tensor becomes 1-d."""
    x = _tensor(x, "flatten")
    shape = x.data.shape
    if not shape:
        _axis1(start_dim, 0, "flatten"), _axis1(end_dim, 0, "flatten")
        return apply(ReshapeOp, x, shape=(1,))
    start, end = _axis1(start_dim, len(shape), "flatten"), _axis1(end_dim, len(shape), "flatten")
    if start > end:
        raise RuntimeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    merged = 1
    for n in shape[start : end + 1]:
        merged *= n
    return apply(ReshapeOp, x, shape=(*shape[:start], merged, *shape[end + 1 :]))


def _index_arg(index: Any) -> Any:
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, list):
        return xp.asarray(index)
    if isinstance(index, tuple):
        return tuple(_index_arg(i) for i in index)
    return index


def index(x: Tensor, index: Any) -> Tensor:
    """x[index] with slices, ints, integer arrays or boolean masks (repeated indices accumulate)."""
    return apply(IndexOp, x, index=_index_arg(index))


def _sequence(tensors: Sequence[Any], op: str) -> list[Tensor]:
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)) or not tensors:
        raise TypeError(f"{op}: expects a non-empty list or tuple of tensors")
    first = next((t for t in tensors if isinstance(t, Tensor)), None)
    return [_lift(t, first, op) for t in tensors]


def concatenate(tensors: Sequence[Any], axis: int = 0, *, dim: int | None = None) -> Tensor:
    """Join tensors along an existing axis."""
    items = _sequence(tensors, "concatenate")
    axis = _pick(axis, dim, 0, "axis", "dim")
    return apply(ConcatenateOp, *items, axis=_axis1(axis, items[0].data.ndim, "concatenate"))


cat = concatenate


def stack(tensors: Sequence[Any], axis: int = 0, *, dim: int | None = None) -> Tensor:
    """Join same-shaped tensors along a new axis."""
    items = _sequence(tensors, "stack")
    axis = _pick(axis, dim, 0, "axis", "dim")
    return apply(StackOp, *items, axis=_axis1(axis, items[0].data.ndim + 1, "stack"))


# --------------------------------------------------------------------- layers
def linear(x: Any, weight: Any, bias: Any = None) -> Tensor:
    """x @ weight.T + bias with weight of shape (out_features, in_features): the fused layer op.

    The op checks the shapes (``Linear.forward``): the error names the layer's shapes.
    """
    if not isinstance(x, Tensor):
        x = _lift(x, None, "linear")
    if not isinstance(weight, Tensor):
        weight = _lift(weight, None, "linear")
    if bias is None:
        return apply(LinearOp, x, weight)
    if not isinstance(bias, Tensor):
        bias = _lift(bias, weight, "linear")
    return apply(LinearOp, x, weight, bias)


# --------------------------------------------------------------------- fused losses
def softmax_cross_entropy(logits: Any, targets: Any, reduction: str = "mean") -> Tensor:
    """Cross-entropy of softmax(logits) (N, C) against class indices (N,), as one fused op.

    L_n = logsumexp(z_n) - z_n[y_n]; the gradient wrt the logits is (softmax(z) - onehot(y)) / N
    for ``reduction="mean"`` ("sum" and "none" also accepted). ``chainrule.nn.functional.cross_entropy``
    adds class weights, ignore_index and probability targets on top.
    """
    z = _tensor(logits, "softmax_cross_entropy")
    y = targets.data if isinstance(targets, Tensor) else xp.asarray(targets)
    if z.data.ndim != 2 or y.shape != z.data.shape[:1]:
        raise ValueError(
            f"softmax_cross_entropy: expected logits (N, C) and N class indices, got shapes {z.shape} and {y.shape}"
        )
    if y.dtype.kind not in "iu":
        raise TypeError(f"softmax_cross_entropy: targets must be integer class indices, got dtype {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= z.data.shape[1]):
        raise IndexError(f"softmax_cross_entropy: targets must lie in 0..{z.data.shape[1] - 1}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"softmax_cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return apply(CrossEntropyOp, z, targets=y, reduction=reduction)
