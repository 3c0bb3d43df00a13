"""Loss modules: ``MSELoss``, ``BCELoss``, ``BCEWithLogitsLoss``, ``CrossEntropyLoss``, ``NLLLoss``,
``MultiMarginLoss``: callable as ``loss_fn(prediction, target)``. The math and the conventions
are in ``chainrule.nn.losses`` (re-exported by ``chainrule.nn.functional``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.autograd.tensor import Tensor
from chainrule.nn import losses as L
from chainrule.nn.module import Module, register_module


class _Loss(Module):
    _fields: tuple[str, ...] = ("reduction",)

    def extra_repr(self) -> str:
        return ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"type": type(self).__name__}
        for f in self._fields:
            value = getattr(self, f)
            if isinstance(value, (Tensor, np.ndarray)):
                value = np.asarray(value.data if isinstance(value, Tensor) else value).tolist()
            config[f] = value
        return config


@register_module
class MSELoss(_Loss):
    """Squared error; ``reduction="half_sum"`` gives E = 1/2 sum (t - o)^2."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, pred: Any, target: Any) -> Tensor:
        return L.mse_loss(pred, target, self.reduction)


@register_module
class BCELoss(_Loss):
    """Binary cross-entropy on probabilities (logs clamped at -100)."""

    _fields = ("weight", "reduction")

    def __init__(self, weight: Any = None, reduction: str = "mean") -> None:
        super().__init__()
        self.weight = weight
        self.reduction = reduction

    def forward(self, probs: Any, targets: Any) -> Tensor:
        return L.binary_cross_entropy(probs, targets, self.weight, self.reduction)


@register_module
class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on raw scores, stable for any logit."""

    _fields = ("weight", "pos_weight", "reduction")

    def __init__(self, weight: Any = None, pos_weight: Any = None, reduction: str = "mean") -> None:
        super().__init__()
        self.weight, self.pos_weight, self.reduction = weight, pos_weight, reduction

    def forward(self, logits: Any, targets: Any) -> Tensor:
        return L.binary_cross_entropy_with_logits(logits, targets, self.weight, self.pos_weight, self.reduction)


@register_module
class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy of logits (N, C) against class indices (N,) or probabilities (N, C)."""

    _fields = ("weight", "ignore_index", "reduction")

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean") -> None:
        super().__init__()
        self.weight, self.ignore_index, self.reduction = weight, int(ignore_index), reduction

    def forward(self, logits: Any, targets: Any) -> Tensor:
        return L.cross_entropy(logits, targets, self.weight, self.ignore_index, self.reduction)


@register_module
class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities (N, C) against class indices (N,)."""

    _fields = ("weight", "ignore_index", "reduction")

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean") -> None:
        super().__init__()
        self.weight, self.ignore_index, self.reduction = weight, int(ignore_index), reduction

    def forward(self, log_probs: Any, targets: Any) -> Tensor:
        return L.nll_loss(log_probs, targets, self.weight, self.ignore_index, self.reduction)


@register_module
class MultiMarginLoss(_Loss):
    """Multiclass SVM hinge loss, CS231n convention (NOT divided by C; PyTorch's value * C)."""

    _fields = ("margin", "p", "reduction")

    def __init__(self, margin: float = 1.0, p: int = 1, reduction: str = "mean") -> None:
        super().__init__()
        self.margin, self.p, self.reduction = float(margin), int(p), reduction

    def forward(self, scores: Any, targets: Any) -> Tensor:
        return L.multi_margin_loss(scores, targets, self.margin, self.p, self.reduction)


HingeLoss = MultiMarginLoss

__all__ = [
    "BCELoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "HingeLoss",
    "MSELoss",
    "MultiMarginLoss",
    "NLLLoss",
]
