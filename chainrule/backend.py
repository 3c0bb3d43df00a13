"""The array namespace behind every op.

All op rules call ``xp`` (the NumPy API) instead of importing NumPy directly, so a
library with the same API (CuPy, for a GPU) can be swapped in here later without
touching a single op rule.
"""

from __future__ import annotations

import math
import os
from types import ModuleType

import numpy

xp = numpy
ndarray = numpy.ndarray

__all__ = ["ONE", "ZERO", "accelerated", "const", "const_key", "ndarray", "speedups", "xp"]


def _load_speedups() -> ModuleType | None:
    """The optional C bookkeeping (chainrule/_speedups.c), unless missing or switched off.

    Setting the environment variable ``CHAINRULE_PURE_PYTHON=1`` before importing chainrule
    keeps the pure-Python engine (the tests run the engine both ways).
    """
    if os.environ.get("CHAINRULE_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        from chainrule import _speedups
    except ImportError:
        return None
    return _speedups


speedups = _load_speedups()


def accelerated() -> bool:
    """True when the engine's bookkeeping (apply and the backward walk) runs in C."""
    return speedups is not None


_CONSTANTS: dict[tuple[object, ...], ndarray] = {}


def const_key(value: float, dtype: object) -> tuple[object, ...]:
    """The cache key of a constant: (value, dtype), with the sign for zeros.

    NOTE: -0.0 == 0.0 (and they hash alike), so without the sign a cached +0.0 would be
    returned for -0.0 and the sign of a zero result could flip.
    """
    if value == 0:
        return (value, dtype, math.copysign(1.0, value))
    return (value, dtype)


def const(value: float, dtype: object) -> ndarray:
    """A cached read-only 0-d array of ``dtype``.

    NumPy converts a Python number on every call (about 1 us on a tiny array); a 0-d
    array of the operand's dtype is used as is, so op rules write ``const(1, x.dtype) - x``.
    """
    if value:  # the hot path: no separate key for nonzero values
        array = _CONSTANTS.get((value, dtype))
        if array is not None:
            return array
    key = const_key(value, dtype)
    array = _CONSTANTS.get(key)
    if array is None:
        if len(_CONSTANTS) >= 4096:  # e.g. a learning rate that changes every step
            _CONSTANTS.clear()
        array = xp.asarray(value, dtype=dtype)
        array.flags.writeable = False
        _CONSTANTS[key] = array
    return array


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
