"""The optional C extension (``chainrule/backend/_speedups.c``): loaded once, checked once.

Two things come from the one extension module:

* ``speedups``: the engine's bookkeeping in C, a drop-in for the Python twins of ``apply``
  (chainrule/ops/base.py, which swaps them in at its end) and of the backward walk
  (chainrule/autograd/engine.py, likewise). The op rules themselves stay in Python.
* ``kernels``: the same module once its array kernels have been compared with this NumPy
  build's results, bit for bit (``None`` if they differ, or without the extension). The op
  rules call a kernel where one exists and fall back to their NumPy code when it declines.

Turn it all off with the environment variable ``CHAINRULE_PURE_PYTHON=1`` (set before
importing chainrule); ``accelerated()`` says which engine runs.
"""

from __future__ import annotations

import os
import warnings
from types import ModuleType

import numpy

from chainrule.backend.array_api import ndarray

__all__ = ["accelerated", "kernels", "speedups"]


def _load_speedups() -> ModuleType | None:
    """The optional C bookkeeping (chainrule/backend/_speedups.c), unless missing or switched off.

    Setting the environment variable ``CHAINRULE_PURE_PYTHON=1`` before importing chainrule
    keeps the pure-Python engine (the tests run the engine both ways).
    """
    if os.environ.get("CHAINRULE_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        from chainrule.backend import _speedups
    except ImportError:
        return None
    return _speedups


speedups = _load_speedups()


def _kernels_agree(k: ModuleType) -> bool:
    """Whether the C extension's array kernels give this NumPy build's results bit for bit.

    The kernels call NumPy's own inner loops the way NumPy's reductions call them (see
    chainrule/backend/_speedups.c). A NumPy build that starts a sum elsewhere or loops differently
    would make them disagree, so chainrule compares them with the rules' NumPy code once, at
    import, on arrays that exercise every step (under a millisecond).
    """
    rng = numpy.random.default_rng(0)
    for dtype in (numpy.float32, numpy.float64):
        x = (rng.standard_normal(300) * numpy.exp(rng.standard_normal(300) * 3)).astype(dtype)
        z, y = (rng.standard_normal((30, 10)) * 3).astype(dtype), numpy.arange(30) % 10  # no e^x underflows
        one, n = numpy.asarray(1, dtype), numpy.asarray(30, dtype)
        small = x[:40] / numpy.asarray(100, dtype)
        top = z.max(axis=1, keepdims=True)
        log_probs = z - (top + numpy.log(numpy.add.reduce(numpy.exp(z - top), axis=1, keepdims=True)))
        loss_and_log_probs = k.small_cross_entropy(z, y, 1)
        grad = numpy.exp(log_probs)
        grad[numpy.arange(30), y] -= 1
        grad *= one / n
        row_sum = z.copy()
        row_sum += x[:10]
        pairs = [
            (k.small_sum(x, False, 1), numpy.add.reduce(x)),
            (k.small_sum(x.reshape(30, 10), True, 30), numpy.add.reduce(x.reshape(30, 10), axis=0) / n),
            (k.small_sigmoid(small, -80.0), one / (one + numpy.exp(-small))),
            (k.fused_grad(0, small, small), small * (one - small * small)),
            (k.small_spread(one, 30, (3,)), numpy.full(3, one / n)),
            (loss_and_log_probs and loss_and_log_probs[1], log_probs),
            (loss_and_log_probs and loss_and_log_probs[0], numpy.add.reduce(-log_probs[numpy.arange(30), y]) / n),
            (k.small_cross_entropy_grad(log_probs, y, one, 30), grad),
        ]
        added = z.copy()
        if not k.small_add_row(added, x[:10]):
            return False
        pairs.append((added, row_sum))
        for got, want in pairs:
            if not isinstance(got, ndarray) or got.dtype != dtype or got.tobytes() != numpy.asarray(want).tobytes():
                return False
    return True


def _load_kernels() -> ModuleType | None:
    """The C extension when its array kernels agree with this NumPy build, else None (with a warning)."""
    if speedups is None:
        return None
    if not _kernels_agree(speedups):
        warnings.warn(
            f"chainrule: the C array kernels do not reproduce NumPy {numpy.__version__}'s results bit for bit; "
            "the op rules use NumPy's code instead (the engine's bookkeeping stays in C)",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return speedups


#: the C kernels of the op rules (fused gradients, sums, cross-entropy; docs/architecture.md), or None
kernels = _load_kernels()


def accelerated() -> bool:
    """True when the engine's bookkeeping (apply and the backward walk) runs in C."""
    return speedups is not None
