"""``Tensor``: an n-dimensional array that remembers the op that made it.

A tensor wraps a NumPy ndarray (``.data``). When an op is applied to tensors of
which at least one has ``requires_grad=True``, the result records the op (a node
of the computational graph) and its inputs; ``backward()`` walks that graph in
reverse and fills ``.grad`` of the leaves.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from chainrule.backend import ndarray, xp

if TYPE_CHECKING:
    from chainrule.ops.base import Op

_FLOAT32 = np.dtype(np.float32)
_SCALARS = (int, float, bool, np.number, np.bool_)


def _to_array(data: Any, dtype: Any = None) -> ndarray:
    """Convert user data to an ndarray by chainrule's dtype rule.

    NumPy arrays and NumPy scalars keep their dtype; Python numbers, lists and
    tuples become float32 (bools stay bool), as in PyTorch's default dtype.
    """
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return xp.array(data, dtype=dtype)
    if isinstance(data, (ndarray, np.generic)):
        if data.dtype.kind not in "biufc":
            raise TypeError(f"tensor(): cannot make a tensor from an array of dtype {data.dtype}; give numbers")
        return xp.array(data)
    try:
        array = xp.asarray(data)
    except (ValueError, TypeError) as err:
        raise TypeError(f"tensor(): cannot make a tensor from {type(data).__name__}: {err}") from err
    if array.dtype.kind in "iuf":
        return array.astype(_FLOAT32)
    if array.dtype.kind == "b":
        return array
    raise TypeError(
        f"tensor(): cannot make a tensor from {type(data).__name__} "
        f"(NumPy reads it as dtype {array.dtype}); give numbers, nested lists of numbers or an ndarray"
    )


def _check_grad_dtype(dtype: np.dtype, what: str = "tensor") -> None:
    if dtype.kind not in "fc":
        raise TypeError(
            f"requires_grad=True needs a floating-point {what}, got dtype {dtype}: "
            "only floating-point tensors can have gradients (convert with .astype('float32'))"
        )


class Tensor:
    """An ndarray plus what autodiff needs: ``grad``, ``requires_grad`` and the op that made it.

    Create one with ``chainrule.tensor(data, requires_grad=False, dtype=None, name=None)``.
    """

    __slots__ = ("__weakref__", "_node", "_rg", "data", "grad", "name")

    # Make NumPy hand ``ndarray <op> Tensor`` back to Tensor's reflected operators.
    __array_ufunc__ = None

    data: ndarray
    grad: ndarray | None
    _rg: bool
    _node: Op | None
    name: str | None

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None, name: str | None = None) -> None:
        self.data = _to_array(data, dtype)
        self.grad = None
        self._node = None
        self.name = name
        self._rg = False
        if requires_grad:
            self.requires_grad = True

    @staticmethod
    def _wrap(data: ndarray, node: Op | None = None) -> Tensor:
        """Fast internal constructor: no conversion, no checks."""
        t = object.__new__(Tensor)
        t.data = data
        t.grad = None
        t._rg = node is not None
        t._node = node
        t.name = None
        return t

    # ----------------------------------------------------------------- attributes
    @property
    def requires_grad(self) -> bool:
        """Whether gradients flow to (and, for a leaf, accumulate in) this tensor."""
        return self._rg

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if value:
            _check_grad_dtype(self.data.dtype)
        elif self._node is not None:
            raise RuntimeError("requires_grad can only be switched off on a leaf tensor; use .detach() for a non-leaf")
        self._rg = bool(value)

    def requires_grad_(self, value: bool = True) -> Tensor:
        """Set ``requires_grad`` in place and return self."""
        self.requires_grad = value
        return self

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        """True for tensors not made by a recorded op (user-created tensors, parameters)."""
        return self._node is None

    @property
    def op(self) -> Op | None:
        """The graph node that made this tensor, or None for a leaf."""
        return self._node

    grad_fn = op

    @property
    def T(self) -> Tensor:
        """All axes reversed (NumPy's ``.T``; for a matrix, the transpose)."""
        return _F.transpose(self)

    # ----------------------------------------------------------------- conversion
    def numpy(self) -> ndarray:
        """The underlying ndarray (shared, not copied)."""
        return self.data

    def item(self) -> Any:
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item(): only one-element tensors convert to a Python number, got shape {self.shape}")
        return self.data.item()

    def tolist(self) -> Any:
        return self.data.tolist()

    def detach(self) -> Tensor:
        """A new leaf sharing this tensor's data, cut from the graph."""
        return Tensor._wrap(self.data)

    def astype(self, dtype: Any) -> Tensor:
        """Convert to ``dtype``; the gradient flows back converted to the original dtype."""
        return _F.astype(self, dtype)

    def float(self) -> Tensor:
        return _F.astype(self, np.float32)

    def double(self) -> Tensor:
        return _F.astype(self, np.float64)

    def __array__(self, dtype: Any = None, copy: Any = None) -> ndarray:
        # NOTE: NumPy 2 relies on us for ``copy``: np.array(t) passes copy=True and does not
        # copy again, so returning ``self.data`` would let the caller write into this tensor.
        if dtype is not None and np.dtype(dtype) != self.data.dtype:
            if copy is False:
                raise ValueError(f"converting a {self.data.dtype} tensor to {np.dtype(dtype)} needs a copy")
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous: use .any() or .all()")
        return bool(self.data)

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self) -> Iterator[Tensor]:
        for i in range(len(self)):
            yield self[i]

    __hash__ = object.__hash__

    # ----------------------------------------------------------------- autodiff
    def retain_grad(self) -> Tensor:
        """Keep ``.grad`` of this non-leaf tensor after backward (leaves always keep theirs)."""
        if self._node is None:
            if not self._rg:
                raise RuntimeError("retain_grad(): this tensor does not require grad")
        else:
            self._node.retained = self
        return self

    @property
    def retains_grad(self) -> bool:
        return self._node is not None and self._node.retained is self

    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Backpropagate from this tensor: fill ``.grad`` of every leaf that requires grad.

        Leaf gradients ACCUMULATE across calls (``grad += new``), as in PyTorch:
        clear them between steps with ``t.grad = None`` or ``optimizer.zero_grad()``.
        ``grad`` is the upstream gradient dL/dself; it may be left out only for a
        one-element tensor (it is then 1). The graph's saved intermediates are
        freed afterwards unless ``retain_graph=True``.
        """
        _backward(self, grad, retain_graph=retain_graph)

    # ----------------------------------------------------------------- display
    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(", precision=4)
        extras = [f"dtype={self.data.dtype}"]
        if self._node is not None:
            extras.append(f"op={self._node.name}")
        elif self._rg:
            extras.append("requires_grad=True")
        if self.name:
            extras.append(f"name={self.name!r}")
        return f"tensor({body}, {', '.join(extras)})"

    # ----------------------------------------------------------------- operators
    def __add__(self, other: Any) -> Tensor:
        b = other if type(other) is Tensor else _F._operand(other, self)
        return NotImplemented if b is None else _apply2(_O.Add, self, b)

    def __radd__(self, other: Any) -> Tensor:
        a = _F._operand(other, self)
        return NotImplemented if a is None else _apply2(_O.Add, a, self)

    def __sub__(self, other: Any) -> Tensor:
        b = other if type(other) is Tensor else _F._operand(other, self)
        return NotImplemented if b is None else _apply2(_O.Sub, self, b)

    def __rsub__(self, other: Any) -> Tensor:
        a = _F._operand(other, self)
        return NotImplemented if a is None else _apply2(_O.Sub, a, self)

    def __mul__(self, other: Any) -> Tensor:
        b = other if type(other) is Tensor else _F._operand(other, self)
        return NotImplemented if b is None else _apply2(_O.Mul, self, b)

    def __rmul__(self, other: Any) -> Tensor:
        a = _F._operand(other, self)
        return NotImplemented if a is None else _apply2(_O.Mul, a, self)

    def __truediv__(self, other: Any) -> Tensor:
        b = other if type(other) is Tensor else _F._operand(other, self)
        return NotImplemented if b is None else _apply2(_O.Div, self, b)

    def __rtruediv__(self, other: Any) -> Tensor:
        a = _F._operand(other, self)
        return NotImplemented if a is None else _apply2(_O.Div, a, self)

    def __pow__(self, other: Any) -> Tensor:
        return _F._binary("pow", self, other)  # a number exponent is the constant-power op

    def __rpow__(self, other: Any) -> Tensor:
        a = _F._operand(other, self)
        return NotImplemented if a is None else _apply2(_O.Pow, a, self)

    def __matmul__(self, other: Any) -> Tensor:
        b = other if type(other) is Tensor else _F._operand(other, self)
        return NotImplemented if b is None else _apply2(_O.MatMul, self, b)

    def __rmatmul__(self, other: Any) -> Tensor:
        a = _F._operand(other, self)
        return NotImplemented if a is None else _apply2(_O.MatMul, a, self)

    def __neg__(self) -> Tensor:
        return _apply1(_O.Neg, self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return _F.abs(self)

    def __lt__(self, other: Any) -> Tensor:
        return _F._compare(xp.less, self, other)

    def __le__(self, other: Any) -> Tensor:
        return _F._compare(xp.less_equal, self, other)

    def __gt__(self, other: Any) -> Tensor:
        return _F._compare(xp.greater, self, other)

    def __ge__(self, other: Any) -> Tensor:
        return _F._compare(xp.greater_equal, self, other)

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return _F._compare(xp.equal, self, other)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return _F._compare(xp.not_equal, self, other)

    def __getitem__(self, index: Any) -> Tensor:
        return _F.index(self, index)

    def __setitem__(self, index: Any, value: Any) -> None:
        if self._rg:
            raise RuntimeError(
                "in-place assignment into a tensor that requires grad would corrupt its gradient; "
                "build a new tensor (chainrule.where, concatenate) or assign to .data under no_grad"
            )
        if isinstance(value, Tensor):
            if value._rg:
                raise RuntimeError(
                    "assigning a tensor that requires grad into a tensor would cut it from the graph; "
                    "build the result with chainrule.where or concatenate instead"
                )
            value = value.data
        self.data[index] = value

    # ----------------------------------------------------------------- methods
    def exp(self) -> Tensor:
        return _F.exp(self)

    def log(self) -> Tensor:
        return _F.log(self)

    def sqrt(self) -> Tensor:
        return _F.sqrt(self)

    def abs(self) -> Tensor:
        return _F.abs(self)

    def tanh(self) -> Tensor:
        return _F.tanh(self)

    def sigmoid(self) -> Tensor:
        return _F.sigmoid(self)

    def relu(self) -> Tensor:
        return _F.relu(self)

    def pow(self, exponent: Any) -> Tensor:
        return _F.pow(self, exponent)

    def matmul(self, other: Any) -> Tensor:
        return _F.matmul(self, other)

    def maximum(self, other: Any) -> Tensor:
        return _F.maximum(self, other)

    def minimum(self, other: Any) -> Tensor:
        return _F.minimum(self, other)

    def clip(self, min: Any = None, max: Any = None) -> Tensor:
        return _F.clip(self, min, max)

    clamp = clip

    def sum(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: Any = None) -> Tensor:
        return _F._reduction(_R.Sum, self, axis, keepdims, dim, keepdim)

    def mean(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: Any = None) -> Tensor:
        return _F._reduction(_R.Mean, self, axis, keepdims, dim, keepdim)

    def var(self, axis: Any = None, keepdims: bool = False, ddof: int = 0, **aliases: Any) -> Tensor:
        return _F.var(self, axis, keepdims, ddof, **aliases)

    def max(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: Any = None) -> Tensor:
        return _F.max(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def min(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: Any = None) -> Tensor:
        return _F.min(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def argmax(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: Any = None) -> Tensor:
        return _F.argmax(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def argmin(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: Any = None) -> Tensor:
        return _F.argmin(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def logsumexp(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: Any = None) -> Tensor:
        return _F.logsumexp(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def softmax(self, axis: Any = None, *, dim: Any = None) -> Tensor:
        return _F.softmax(self, axis, dim=dim)

    def log_softmax(self, axis: Any = None, *, dim: Any = None) -> Tensor:
        return _F.log_softmax(self, axis, dim=dim)

    def any(self) -> bool:
        return bool(self.data.any())

    def all(self) -> bool:
        return bool(self.data.all())

    def reshape(self, *shape: Any) -> Tensor:
        return _F.reshape(self, *shape)

    view = reshape

    def flatten(self, start_axis: int = 0) -> Tensor:
        return _F.reshape(self, (*self.shape[:start_axis], -1))

    def transpose(self, *axes: Any) -> Tensor:
        return _F.transpose(self, *axes)

    def permute(self, *axes: Any) -> Tensor:
        return _F.permute(self, *axes)

    def broadcast_to(self, shape: Sequence[int]) -> Tensor:
        return _F.broadcast_to(self, shape)

    expand = broadcast_to

    def squeeze(self, axis: Any = None, *, dim: Any = None) -> Tensor:
        return _F.squeeze(self, axis, dim=dim)

    def unsqueeze(self, axis: int | None = None, *, dim: int | None = None) -> Tensor:
        return _F.unsqueeze(self, axis, dim=dim)


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None, name: str | None = None) -> Tensor:
    """Make a leaf tensor (the data is copied).

    Python numbers and (nested) lists become float32 (bools stay bool); NumPy
    arrays keep their dtype, so float64 stays float64 and integer labels stay integer.
    """
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, name=name)


# Imported last: these modules need Tensor defined first.
from chainrule import functional as _F  # noqa: E402
from chainrule.ops import elementwise as _E  # noqa: E402
from chainrule.ops import linalg as _L  # noqa: E402
from chainrule.ops import reduce as _R  # noqa: E402
from chainrule.ops.base import apply1 as _apply1  # noqa: E402
from chainrule.ops.base import apply2 as _apply2  # noqa: E402


# engine imports this module; bind its backward once both are loaded.
def _backward(root: Tensor, grad: Any, retain_graph: bool) -> None:
    global _backward
    from chainrule.engine import backward

    _backward = backward
    backward(root, grad, retain_graph=retain_graph)


class _O:
    """The op classes the operators dispatch to."""

    Add, Sub, Mul, Div, Pow, Neg = _E.Add, _E.Sub, _E.Mul, _E.Div, _E.Pow, _E.Neg
    MatMul = _L.MatMul
