"""``Tensor``: an n-dimensional array that remembers the op that made it.

A tensor wraps a NumPy ndarray (``.data``). When an op is applied to tensors of
which at least one has ``requires_grad=True``, the result records the op (a node
of the computational graph, ``.grad_fn``) and its inputs; ``backward()`` walks that
graph in reverse and fills ``.grad`` of the leaves.

This module is the data structure only: it sits beneath the ops, which create
tensors, so it cannot call them. Tensor's operators (``+ - * / ** @``, comparisons,
indexing), its math methods (``.exp()``, ``.sum()``, ``.reshape()``, ...) and
``.backward()`` are defined in ``chainrule/autograd/tensor_methods.py``, above the
ops and the engine, and attached to the class when chainrule is imported.
"""

from __future__ import annotations

from collections.abc import Iterator
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
    if dtype.kind == "c":
        # NOTE: PyTorch's complex gradients are conjugate Wirtinger derivatives; chainrule's op rules
        # are the real ones, so a complex gradient would be wrong, not just differently defined.
        raise TypeError(
            f"requires_grad=True on a complex {what} (dtype {dtype}) is not supported: chainrule's gradients "
            "are real (no conjugate-Wirtinger rules); differentiate the real and imaginary parts as real tensors"
        )
    if dtype.kind != "f":
        raise TypeError(
            f"requires_grad=True needs a floating-point {what}, got dtype {dtype}: "
            "only floating-point tensors can have gradients (convert with .astype('float32'))"
        )


def _checked_grad(t: Tensor, value: Any) -> Tensor:
    """``t.grad = value``: a tensor of ``t``'s shape and dtype, or PyTorch's error."""
    if not isinstance(value, Tensor):
        hint = ": wrap it, chainrule.tensor(array)" if isinstance(value, ndarray) else ""
        kind = f"{type(value).__module__}.{type(value).__qualname__}".removeprefix("builtins.")
        raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of type {kind}{hint}")
    if value is t:
        raise RuntimeError("can't assign a tensor as its own grad")
    name = f" {t.name!r}" if t.name else ""
    if value.data.shape != t.data.shape:
        raise RuntimeError(
            f"attempting to assign a gradient of shape {value.data.shape} to the tensor{name} of shape "
            f"{t.data.shape}: the gradient and the tensor must have the same shape"
        )
    if value.data.dtype != t.data.dtype:
        raise RuntimeError(
            f"attempting to assign a gradient of dtype {value.data.dtype} to the tensor{name} of dtype "
            f"{t.data.dtype}: convert it first (grad.astype('{t.data.dtype}'))"
        )
    return value


class Tensor:
    """An ndarray plus what autodiff needs: ``grad``, ``requires_grad`` and the op that made it.

    Create one with ``chainrule.tensor(data, requires_grad=False, dtype=None, name=None)``.
    """

    __slots__ = ("__weakref__", "_grad", "_grad_fn", "_requires_grad", "_version", "data", "name")

    # NumPy defers ``ndarray <op> Tensor`` to Tensor's reflected operators; autograd/tensor_methods.py
    # replaces this with ``__array_ufunc__``, which also lets NumPy functions read tensors' values.
    __array_ufunc__ = None

    data: ndarray
    _grad: Tensor | None
    _requires_grad: bool
    _grad_fn: Op | None
    #: how many in-place operations changed this tensor (``add_``, ``+=``, ...); the graph nodes
    #: that used it remember the version they saw, and backward refuses a changed one
    _version: int
    name: str | None

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None, name: str | None = None) -> None:
        self.data = _to_array(data, dtype)
        self._grad = None
        self._grad_fn = None
        self.name = name
        self._version = 0
        self._requires_grad = False
        if requires_grad:
            self.requires_grad = True

    @staticmethod
    def _wrap(data: ndarray, node: Op | None = None) -> Tensor:
        """Fast internal constructor: no conversion, no checks."""
        t = object.__new__(Tensor)
        t.data = data
        t._grad = None
        t._requires_grad = node is not None
        t._grad_fn = node
        t._version = 0
        t.name = None
        return t

    # ----------------------------------------------------------------- attributes
    @property
    def requires_grad(self) -> bool:
        """Whether gradients flow to (and, for a leaf, accumulate in) this tensor."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if value:
            _check_grad_dtype(self.data.dtype)
        elif self._grad_fn is not None:
            raise RuntimeError("requires_grad can only be switched off on a leaf tensor; use .detach() for a non-leaf")
        self._requires_grad = bool(value)

    @property
    def grad(self) -> Tensor | None:
        """The gradient ``backward()`` accumulated here: a tensor without history, or None (as in PyTorch).

        Its array is ``.grad.data``. Assigning takes None or a tensor of this tensor's shape and dtype
        (PyTorch's checks and exception types); ``del t.grad`` is ``t.grad = None``. With the C
        bookkeeping this property is its C twin (``chainrule/backend/_speedups.c``), which also reuses
        the tensor objects of gradients that nothing else holds any more.
        """
        return self._grad

    @grad.setter
    def grad(self, value: Tensor | None) -> None:
        self._grad = None if value is None else _checked_grad(self, value)

    @grad.deleter
    def grad(self) -> None:
        self._grad = None

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
        return self._grad_fn is None

    @property
    def grad_fn(self) -> Op | None:
        """The graph node (an ``Op`` instance) that made this tensor, or None for a leaf.

        ``grad_fn`` is the canonical name (PyTorch's); ``.op`` is an alias for the same node.
        """
        return self._grad_fn

    op = grad_fn

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
        if self._grad_fn is None:
            if not self._requires_grad:
                raise RuntimeError("retain_grad(): this tensor does not require grad")
        else:
            self._grad_fn.retained = self
        return self

    @property
    def retains_grad(self) -> bool:
        return self._grad_fn is not None and self._grad_fn.retained is self

    # ----------------------------------------------------------------- display
    def __format__(self, spec: str) -> str:
        """``f"{t:.4f}"`` formats a one-element tensor's value (as PyTorch does); ``f"{t}"`` is its repr."""
        if not spec:
            return repr(self)
        if self.data.size != 1:
            raise TypeError(f"format spec {spec!r}: only a one-element tensor formats as a number, got {self.shape}")
        return format(self.data.item(), spec)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(", precision=4)
        extras = [f"dtype={self.data.dtype}"]
        if self._grad_fn is not None:
            extras.append(f"op={self._grad_fn.name}")
        elif self._requires_grad:
            extras.append("requires_grad=True")
        if self.name:
            extras.append(f"name={self.name!r}")
        return f"tensor({body}, {', '.join(extras)})"


def as_tensor(x: Any) -> Tensor:
    """``x`` itself if it is a Tensor, else a new leaf tensor of it (by ``tensor()``'s dtype rule)."""
    return x if isinstance(x, Tensor) else Tensor(x)


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None, name: str | None = None) -> Tensor:
    """Make a leaf tensor (the data is copied).

    Python numbers and (nested) lists become float32 (bools stay bool); NumPy
    arrays keep their dtype, so float64 stays float64 and integer labels stay integer.
    """
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, name=name)
