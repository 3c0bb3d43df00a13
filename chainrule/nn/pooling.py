"""Pooling over one axis: ``LPPool`` (power average) and ``LogAvgPool`` (log-average-exp)."""

from __future__ import annotations

from typing import Any

from chainrule.autograd.tensor import Tensor
from chainrule.nn import functional as F
from chainrule.nn.module import Module, register_module


@register_module
class LPPool(Module):
    """y = (sum_i x_i^p)^(1/p) over ``axis`` (inputs > 0); dy/dx_i = (x_i / y)^(p-1). See ``nn.functional.lp_pool``."""

    def __init__(self, p: float, axis: int = -1, keepdims: bool = False) -> None:
        super().__init__()
        if p <= 0:
            raise ValueError(f"LPPool: p must be positive, got {p}")
        self.p, self.axis, self.keepdims = float(p), int(axis), bool(keepdims)

    def forward(self, x: Any) -> Tensor:
        return F.lp_pool(x, self.p, self.axis, self.keepdims)

    def extra_repr(self) -> str:
        return f"p={self.p}, axis={self.axis}"

    def get_config(self) -> dict[str, Any]:
        return {"type": "LPPool", "p": self.p, "axis": self.axis, "keepdims": self.keepdims}


@register_module
class LogAvgPool(Module):
    """y = (1/beta) ln((1/n) sum_i exp(beta x_i)) over ``axis``; dy/dx_i = softmax(beta x)_i.

    See ``nn.functional.log_avg_pool``.
    """

    def __init__(self, beta: float, axis: int = -1, keepdims: bool = False) -> None:
        super().__init__()
        if beta == 0:
            raise ValueError("LogAvgPool: beta must be non-zero")
        self.beta, self.axis, self.keepdims = float(beta), int(axis), bool(keepdims)

    def forward(self, x: Any) -> Tensor:
        return F.log_avg_pool(x, self.beta, self.axis, self.keepdims)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, axis={self.axis}"

    def get_config(self) -> dict[str, Any]:
        return {"type": "LogAvgPool", "beta": self.beta, "axis": self.axis, "keepdims": self.keepdims}


__all__ = ["LPPool", "LogAvgPool"]
