"""Activation layers: thin modules over the functions in ``chainrule.nn.functional``."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule import functional
from chainrule.autograd.tensor import Tensor
from chainrule.nn import functional as F
from chainrule.nn.module import Module, Parameter, register_module, resolve_dtype


class _Stateless(Module):
    """An activation without parameters; its config is just its type (plus its hyper-parameters)."""

    _fields: tuple[str, ...] = ()

    def get_config(self) -> dict[str, Any]:
        return {"type": type(self).__name__, **{f: getattr(self, f) for f in self._fields}}

    def extra_repr(self) -> str:
        return ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)


@register_module
class Identity(_Stateless):
    """f(x) = x."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, x: Any) -> Tensor:
        return x if isinstance(x, Tensor) else F.identity(x)


@register_module
class Sigmoid(_Stateless):
    """f(x) = 1 / (1 + e^-x);  f' = f (1 - f)."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: Any) -> Tensor:
        return functional.sigmoid(x)


@register_module
class Tanh(_Stateless):
    """f(x) = tanh(x);  f' = 1 - f^2."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: Any) -> Tensor:
        return functional.tanh(x)


@register_module
class ReLU(_Stateless):
    """f(x) = max(0, x);  f'(0) is taken as 0."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: Any) -> Tensor:
        return functional.relu(x)


@register_module
class LeakyReLU(_Stateless):
    """f(x) = x if x > 0 else negative_slope * x (default slope 0.01)."""

    _fields = ("negative_slope",)

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x: Any) -> Tensor:
        return functional.leaky_relu(x, self.negative_slope)


@register_module
class ELU(_Stateless):
    """f(x) = x if x > 0 else alpha (e^x - 1)."""

    _fields = ("alpha",)

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = float(alpha)

    def forward(self, x: Any) -> Tensor:
        return functional.elu(x, self.alpha)


@register_module
class Softplus(_Stateless):
    """f(x) = ln(1 + e^(beta x)) / beta (a smooth ReLU), stable for any x."""

    _fields = ("beta",)

    def __init__(self, beta: float = 1.0) -> None:
        super().__init__()
        self.beta = float(beta)

    def forward(self, x: Any) -> Tensor:
        return functional.softplus(x, self.beta)


@register_module
class GELU(_Stateless):
    """GELU with the tanh approximation (= PyTorch's ``GELU(approximate="tanh")``; see ``nn.functional.gelu``)."""

    _fields = ("approximate",)

    def __init__(self, approximate: str = "tanh") -> None:
        super().__init__()
        F.check_gelu_mode(approximate)
        self.approximate = approximate

    def forward(self, x: Any) -> Tensor:
        return F.gelu(x, self.approximate)


@register_module
class Softmax(_Stateless):
    """softmax along ``axis`` (default the last)."""

    _fields = ("axis",)

    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        self.axis = int(axis)

    def forward(self, x: Any) -> Tensor:
        return functional.softmax(x, self.axis)


@register_module
class LogSoftmax(_Stateless):
    """log-softmax along ``axis`` (default the last)."""

    _fields = ("axis",)

    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        self.axis = int(axis)

    def forward(self, x: Any) -> Tensor:
        return functional.log_softmax(x, self.axis)


@register_module
class Flatten(_Stateless):
    """Merge the axes ``start_dim`` to ``end_dim``: (N, 28, 28) -> (N, 784) with the defaults (PyTorch's).

    ``start_axis`` is the earlier spelling of ``start_dim`` (model files written with it still load).
    """

    _fields = ("start_dim", "end_dim")

    def __init__(self, start_dim: int = 1, end_dim: int = -1, *, start_axis: int | None = None) -> None:
        super().__init__()
        self.start_dim = int(start_dim if start_axis is None else start_axis)
        self.end_dim = int(end_dim)

    def forward(self, x: Any) -> Tensor:
        return functional.flatten(x, self.start_dim, self.end_dim)


@register_module
class PReLU(Module):
    """f(x) = x if x > 0 else a x with a learnable slope a (init 0.25).

    ``num_parameters=1`` shares one slope; ``num_parameters=C`` learns one per channel
    (axis 1 of the input). ``weight`` has shape (num_parameters,).
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25, *, dtype: Any = None) -> None:
        super().__init__()
        self.num_parameters = int(num_parameters)
        self.init = float(init)
        self.weight = Parameter(np.full(self.num_parameters, self.init, dtype=resolve_dtype(dtype)))

    def forward(self, x: Any) -> Tensor:
        return F.prelu(x, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"

    def get_config(self) -> dict[str, Any]:
        return {"type": "PReLU", "num_parameters": self.num_parameters, "init": self.init}


#: Elementwise activations by name, for hidden layers (``make_activation``, ``MLP(activation=...)``,
#: the command line's ``--activation``).
ACTIVATIONS: dict[str, type[Module]] = {
    "relu": ReLU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "leaky_relu": LeakyReLU,
    "elu": ELU,
    "softplus": Softplus,
    "gelu": GELU,
    "prelu": PReLU,
    "identity": Identity,
    "linear": Identity,
}

#: What an output layer may also end in: the normalizations over the last axis.
OUTPUT_ACTIVATIONS: dict[str, type[Module]] = {**ACTIVATIONS, "softmax": Softmax, "log_softmax": LogSoftmax}


def make_activation(name: str | None, dtype: Any = None) -> Module:
    """A fresh activation module from its name (``OUTPUT_ACTIVATIONS``: "relu", "softmax", ...); None: Identity."""
    if name is None:
        return Identity()
    if not isinstance(name, str) or name.lower() not in OUTPUT_ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(sorted(OUTPUT_ACTIVATIONS))} or None")
    cls = OUTPUT_ACTIVATIONS[name.lower()]
    return cls(dtype=dtype) if cls is PReLU else cls()


__all__ = [
    "ACTIVATIONS",
    "ELU",
    "GELU",
    "Flatten",
    "Identity",
    "LeakyReLU",
    "LogSoftmax",
    "OUTPUT_ACTIVATIONS",
    "PReLU",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Tanh",
    "make_activation",
]
