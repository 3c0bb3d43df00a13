"""Optimizers and learning-rate schedules (PyTorch's names, formulas and defaults).

opt = chainrule.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
for X, y in loader:
    opt.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward()
    opt.step()
"""

from typing import Any

from chainrule.optim.adam import Adam, AdamW
from chainrule.optim.lr_scheduler import CosineAnnealingLR, ExponentialLR, LRScheduler, StepLR
from chainrule.optim.optimizer import Optimizer
from chainrule.optim.rmsprop import RMSprop
from chainrule.optim.sgd import SGD

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "Optimizer",
    "RMSprop",
    "StepLR",
    "get_optimizer",
]

_OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop}


def get_optimizer(name: str, params: Any, **options: Any) -> Optimizer:
    """Build an optimizer by name ("sgd", "adam", "adamw", "rmsprop")."""
    try:
        cls = _OPTIMIZERS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(_OPTIMIZERS)}") from None
    return cls(params, **options)
