"""``Dropout``: inverted dropout, active only in training mode."""

from __future__ import annotations

from typing import Any

from chainrule.autograd.tensor import Tensor
from chainrule.nn import functional as F
from chainrule.nn import init
from chainrule.nn.module import Module, register_module


@register_module
class Dropout(Module):
    """Zero each element with probability ``p`` and scale the survivors by 1/(1-p) (training mode only).

    In evaluation mode (``model.eval()``) it is the identity. ``rng``: a seed or a NumPy
    Generator owned by this layer, for repeatable masks; None draws from ``nn.init``'s
    module-wide generator (reset by ``nn.init.manual_seed``).
    """

    def __init__(self, p: float = 0.5, rng: init.RngLike = None) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = float(p)
        self.rng = None if rng is None else init.get_rng(rng)

    def forward(self, x: Any) -> Tensor:
        return F.dropout(x, self.p, training=self.training, rng=self.rng)

    @property
    def capturable(self) -> bool:
        # The mask is drawn with NumPy on every call: a replay would reuse the first one.
        return not self.training or self.p == 0.0

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def get_config(self) -> dict[str, Any]:
        return {"type": "Dropout", "p": self.p}


__all__ = ["Dropout"]
