"""Tensor factories: zeros, ones, full, arange, eye, and seeded random tensors."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.autograd.tensor import Tensor, _check_grad_dtype
from chainrule.backend import xp

_F32 = np.dtype(np.float32)


def shape_arg(shape: tuple[Any, ...]) -> tuple[int, ...]:
    """A shape given as ``f(2, 3)`` or ``f((2, 3))`` (the ``*shape`` of factories and ``reshape``), as ints."""
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


RngLike = int | np.random.Generator | None

_default_rng = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reset the generator used when no seed is given (``randn``, ``rand``, layers' initialization)."""
    global _default_rng
    _default_rng = np.random.default_rng(seed)
    return _default_rng


def get_rng(rng: RngLike = None) -> np.random.Generator:
    """A Generator from ``rng``: a Generator is used as is, an int seeds a new one, None gives the default."""
    if rng is None:
        return _default_rng
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be an int seed, a numpy.random.Generator or None, got {type(rng).__name__}")


def zeros(*shape: Any, dtype: Any = _F32, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros (float32 unless ``dtype`` says otherwise)."""
    return _leaf(xp.zeros(shape_arg(shape), dtype=dtype), requires_grad)


def ones(*shape: Any, dtype: Any = _F32, requires_grad: bool = False) -> Tensor:
    """A tensor of ones."""
    return _leaf(xp.ones(shape_arg(shape), dtype=dtype), requires_grad)


def full(shape: Any, value: float, dtype: Any = _F32, requires_grad: bool = False) -> Tensor:
    """A tensor filled with ``value``."""
    return _leaf(xp.full(shape_arg((shape,)), value, dtype=dtype), requires_grad)


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
    return _leaf(get_rng(seed).standard_normal(shape_arg(shape)).astype(dtype), requires_grad)


def rand(
    *shape: Any, seed: int | np.random.Generator | None = None, dtype: Any = _F32, requires_grad: bool = False
) -> Tensor:
    """Uniform samples in [0, 1)."""
    return _leaf(get_rng(seed).random(shape_arg(shape)).astype(dtype), requires_grad)
