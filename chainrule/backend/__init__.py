"""What the op rules compute with, in three parts:

* ``array_api``: the array namespace ``xp`` (NumPy) and ``ndarray``;
* ``constants``: cached read-only constants (``const``, ``ONE``, ``ZERO``);
* ``accelerator``: the optional C extension (``_speedups.c``): the engine's bookkeeping
  (``speedups``) and the rules' array kernels (``kernels``), both ``None`` under
  ``CHAINRULE_PURE_PYTHON=1`` or without a C compiler at install time.
"""

from chainrule.backend.accelerator import accelerated, kernels, speedups
from chainrule.backend.array_api import ndarray, xp
from chainrule.backend.constants import ONE, ZERO, ConstantCache, const, const_key

__all__ = ["ONE", "ZERO", "ConstantCache", "accelerated", "const", "const_key", "kernels", "ndarray", "speedups", "xp"]
