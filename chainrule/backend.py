"""The array namespace behind every op.

All op rules call ``xp`` (the NumPy API) instead of importing NumPy directly, so a
library with the same API (CuPy, for a GPU) can be swapped in here later without
touching a single op rule.
"""

from __future__ import annotations

import numpy

xp = numpy
ndarray = numpy.ndarray

__all__ = ["xp", "ndarray"]
