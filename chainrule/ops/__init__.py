"""The registry of primitive ops (``OPS``): importing this package registers them all."""

from chainrule.ops import elementwise, linalg, loss, movement, reduce  # noqa: F401  (registers the ops)
from chainrule.ops.base import OPS, Op, apply, register

__all__ = ["OPS", "Op", "apply", "register"]
