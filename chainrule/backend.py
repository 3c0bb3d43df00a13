"""The array namespace behind every op.

All op rules call ``xp`` (the NumPy API) instead of importing NumPy directly, so a
library with the same API (CuPy, for a GPU) can be swapped in here later without
touching a single op rule.
"""

from __future__ import annotations

import math
import os
import warnings
from types import ModuleType

import numpy

xp = numpy
ndarray = numpy.ndarray

__all__ = ["ONE", "ZERO", "accelerated", "const", "const_key", "kernels", "ndarray", "speedups", "xp"]


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


def _kernels_agree(k: ModuleType) -> bool:
    """Whether the C extension's array kernels give this NumPy build's results bit for bit.

    The kernels call NumPy's own inner loops the way NumPy's reductions call them (see
    chainrule/_speedups.c). A NumPy build that starts a sum elsewhere or loops differently
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


#: the C kernels of the op rules (fused gradients, sums, cross-entropy; docs/engine.md), or None
kernels = _load_kernels()


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
