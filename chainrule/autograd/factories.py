"""Tensor factories: zeros, ones, full, arange, eye, and seeded random tensors."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.autograd.tensor import Tensor, _check_grad_dtype
from chainrule.backend import xp

_F32 = np.dtype(np.float32)


def _shape(shape: tuple[Any, ...]) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def _leaf(data: np.ndarray, requires_grad: bool, name: str | None = None) -> Tensor:
    t = Tensor._wrap(data)
    if requires_grad:
        _check_grad_dtype(data.dtype)
        t._requires_grad = True
    t.name = name
    return t


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def zeros(*shape: Any, dtype: Any = _F32, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros (float32 unless ``dtype`` says otherwise)."""
    return _leaf(xp.zeros(_shape(shape), dtype=dtype), requires_grad)


def ones(*shape: Any, dtype: Any = _F32, requires_grad: bool = False) -> Tensor:
    """A tensor of ones."""
    return _leaf(xp.ones(_shape(shape), dtype=dtype), requires_grad)


def full(shape: Any, value: float, dtype: Any = _F32, requires_grad: bool = False) -> Tensor:
    """A tensor filled with ``value``."""
    return _leaf(xp.full(_shape((shape,)), value, dtype=dtype), requires_grad)


def zeros_like(t: Tensor, requires_grad: bool = False) -> Tensor:
    return _leaf(xp.zeros_like(t.data), requires_grad)


def ones_like(t: Tensor, requires_grad: bool = False) -> Tensor:
    return _leaf(xp.ones_like(t.data), requires_grad)


def arange(start: float, stop: float | None = None, step: float = 1, dtype: Any = None) -> Tensor:
    """Evenly spaced values: integer arguments give an int64 tensor, a float argument float32 (as PyTorch)."""
    data = xp.arange(start, stop, step, dtype=dtype) if stop is not None else xp.arange(start, step=step, dtype=dtype)
    if dtype is None and data.dtype.kind == "f":
        # NOTE: NumPy gives float64 here; chainrule's rule is that Python floats make float32.
        data = data.astype(_F32)
    return _leaf(data, False)


def eye(n: int, dtype: Any = _F32, requires_grad: bool = False) -> Tensor:
    """The n x n identity matrix."""
    return _leaf(xp.eye(n, dtype=dtype), requires_grad)


def randn(
    *shape: Any, seed: int | np.random.Generator | None = None, dtype: Any = _F32, requires_grad: bool = False
) -> Tensor:
    """Standard normal samples; pass ``seed`` (an int or a NumPy Generator) for repeatable runs."""
    return _leaf(_rng(seed).standard_normal(_shape(shape)).astype(dtype), requires_grad)


def rand(
    *shape: Any, seed: int | np.random.Generator | None = None, dtype: Any = _F32, requires_grad: bool = False
) -> Tensor:
    """Uniform samples in [0, 1)."""
    return _leaf(_rng(seed).random(_shape(shape)).astype(dtype), requires_grad)
