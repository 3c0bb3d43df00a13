"""Cached read-only constants: ``const(value, dtype)``, ``ONE[dtype]``, ``ZERO[dtype]``.

NumPy converts a Python number on every call (about 1 us on a tiny array); a 0-d array of
the operand's dtype is used as is, so op rules write ``const(1, x.dtype) - x``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from chainrule.backend.array_api import ndarray, xp

__all__ = ["ONE", "ZERO", "ConstantCache", "const", "const_key"]


def const_key(value: float, dtype: object) -> tuple[object, ...]:
    """The cache key of a constant: (value, dtype), with the sign for zeros.

    NOTE: -0.0 == 0.0 (and they hash alike), so without the sign a cached +0.0 would be
    returned for -0.0 and the sign of a zero result could flip.
    """
    if value == 0:
        return (value, dtype, math.copysign(1.0, value))
    return (value, dtype)


class ConstantCache(dict):
    """Constants keyed by ``const_key(value, dtype)``, made on first use by ``make(value, dtype)``.

    The cache is emptied when it reaches ``LIMIT`` entries (e.g. a learning rate that changes
    every step would otherwise grow it without bound). Hot paths read it with ``.get(key)``
    first and index it (``cache[key]``, which makes the entry) only on a miss.
    """

    LIMIT = 4096

    def __init__(self, make: Callable[[float, Any], Any]) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, key: tuple[Any, ...]) -> Any:
        if len(self) >= self.LIMIT:
            self.clear()
        made = self[key] = self.make(key[0], key[1])
        return made


def _read_only(value: float, dtype: Any) -> ndarray:
    array = xp.asarray(value, dtype=dtype)
    array.flags.writeable = False
    return array


_ARRAYS = ConstantCache(_read_only)


def const(value: float, dtype: object) -> ndarray:
    """A cached read-only 0-d array of ``dtype`` holding ``value``."""
    if value:  # the hot path: no separate key for nonzero values
        array = _ARRAYS.get((value, dtype))
        if array is not None:
            return array
    return _ARRAYS[const_key(value, dtype)]


class _PerDtype(dict):
    """``ONE[x.dtype]``: the cached constant of one value for each dtype.

    The op rules' most frequent constants; a dict lookup costs a third of a ``const`` call.
    """

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def __missing__(self, dtype: object) -> ndarray:
        array = self[dtype] = const(self.value, dtype)
        return array


ONE = _PerDtype(1)
ZERO = _PerDtype(0)
