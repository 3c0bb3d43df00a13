"""Optimizers and learning-rate schedules (PyTorch's names, formulas and defaults).

opt = chainrule.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
for X, y in loader:
    opt.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward()
    opt.step()
"""

from typing import Any, NamedTuple

from chainrule.optim.adam import Adam, AdamW
from chainrule.optim.lr_scheduler import CosineAnnealingLR, ExponentialLR, LRScheduler, StepLR
from chainrule.optim.optimizer import Optimizer
from chainrule.optim.rmsprop import RMSprop
from chainrule.optim.sgd import SGD

__all__ = [
    "OPTIMIZERS",
    "SGD",
    "Adam",
    "AdamW",
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "Optimizer",
    "RMSprop",
    "Registered",
    "StepLR",
    "get_optimizer",
]


class Registered(NamedTuple):
    """An optimizer known by name, and the learning rate to start from when a tool builds it by name."""

    cls: type[Optimizer]
    lr: float


#: Optimizers by name (``get_optimizer``, the command line's ``--optimizer``). ``lr`` is what they
#: start from when built by name without one (``chainrule train``'s ``--lr`` default): a rate that
#: trains the small networks of the examples. The classes' own defaults are PyTorch's (SGD 1e-3,
#: RMSprop 1e-2), for code written against PyTorch.
OPTIMIZERS: dict[str, Registered] = {
    "sgd": Registered(SGD, 0.1),
    "adam": Registered(Adam, 1e-3),
    "adamw": Registered(AdamW, 1e-3),
    "rmsprop": Registered(RMSprop, 1e-3),
}


def get_optimizer(name: str, params: Any, **options: Any) -> Optimizer:
    """Build an optimizer by name ("sgd", "adam", "adamw", "rmsprop"); without ``lr``, the registry's."""
    try:
        entry = OPTIMIZERS[name.lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}") from None
    options.setdefault("lr", entry.lr)
    return entry.cls(params, **options)
