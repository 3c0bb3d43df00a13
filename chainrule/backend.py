"""The array namespace behind every op.

All op rules call ``xp`` (the NumPy API) instead of importing NumPy directly, so a
library with the same API (CuPy, for a GPU) can be swapped in here later without
touching a single op rule.
"""

from __future__ import annotations

import numpy

xp = numpy
ndarray = numpy.ndarray

__all__ = ["const", "ndarray", "xp"]


_CONSTANTS: dict[tuple[object, object], ndarray] = {}


def const(value: float, dtype: object) -> ndarray:
    """A cached read-only 0-d array of ``dtype``.

    NumPy converts a Python number on every call (about 1 us on a tiny array); a 0-d
    array of the operand's dtype is used as is, so op rules write ``const(1, x.dtype) - x``.
    """
    key = (value, dtype)
    array = _CONSTANTS.get(key)
    if array is None:
        if len(_CONSTANTS) >= 4096:  # e.g. a learning rate that changes every step
            _CONSTANTS.clear()
        array = xp.asarray(value, dtype=dtype)
        array.flags.writeable = False
        _CONSTANTS[key] = array
    return array
