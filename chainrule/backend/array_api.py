"""The array namespace behind every op: ``xp`` (the NumPy API) and its array type ``ndarray``.

Op rules call ``xp.exp``, ``xp.zeros`` and so on instead of importing NumPy directly, so a
library with the same API (CuPy, for a GPU) could be swapped in here without touching a rule.
"""

from __future__ import annotations

import numpy

xp = numpy
ndarray = numpy.ndarray

__all__ = ["ndarray", "xp"]
