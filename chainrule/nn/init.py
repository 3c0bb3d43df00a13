"""Weight initialization: fill a tensor in place (no graph is recorded) and return it.

Every function takes ``rng=``: an int seed or a ``numpy.random.Generator``. With
``rng=None`` the module-wide generator is used; ``manual_seed(s)`` resets it, so a
script that calls ``manual_seed(0)`` before building its model is repeatable.

Fans of a weight of shape (out_features, in_features, *kernel): fan_in = in * prod(kernel),
fan_out = out * prod(kernel) (PyTorch's rule; a 1-D tensor has fan_in = fan_out = its length).

Defaults used by the layers:

* ``Linear`` / ``Maxout``: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), which is
  PyTorch's ``kaiming_uniform_(a=sqrt(5))``.
* ``PReLU``: slope 0.25.  ``BatchNorm1d``: weight 1, bias 0.
* The classic course initialization ``eps_uniform_`` draws U(-eps, eps) with
  eps = sqrt(6) / sqrt(fan_in + fan_out) (``eps_init``), which equals ``xavier_uniform_``.
"""

from __future__ import annotations

import math
from typing import Any

from chainrule.autograd.factories import RngLike, get_rng, manual_seed
from chainrule.autograd.tensor import Tensor


def _fill(t: Tensor, values: Any) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"init functions fill a Tensor or Parameter in place, got {type(t).__name__}")
    t.data[...] = values
    return t


def fan_in_and_fan_out(shape: tuple[int, ...] | Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of ``shape`` = (out, in, *kernel)."""
    if isinstance(shape, Tensor):
        shape = shape.shape
    if len(shape) == 0:
        raise ValueError("fan_in_and_fan_out: a 0-d tensor has no fans")
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[2:]) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for an activation (PyTorch's table): relu sqrt(2), tanh 5/3, sigmoid 1, ..."""
    linear_like = {"linear", "identity", "sigmoid", "conv1d", "conv2d", "conv3d"}
    if nonlinearity in linear_like:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}")


# --------------------------------------------------------------------- basic fills
def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0, rng: RngLike = None) -> Tensor:
    """Fill with samples from U(a, b)."""
    return _fill(t, get_rng(rng).uniform(a, b, size=t.shape))


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0, rng: RngLike = None) -> Tensor:
    """Fill with samples from N(mean, std^2) (PyTorch's argument order: mean, then std)."""
    return _fill(t, get_rng(rng).normal(mean, std, size=t.shape))


def constant_(t: Tensor, value: float) -> Tensor:
    """Fill with ``value``."""
    return _fill(t, value)


def zeros_(t: Tensor) -> Tensor:
    """Fill with 0 (for a weight matrix this makes all hidden units identical: see the symmetry problem)."""
    return _fill(t, 0)


def ones_(t: Tensor) -> Tensor:
    """Fill with 1."""
    return _fill(t, 1)


# --------------------------------------------------------------------- the classic epsilon rule
def eps_init(fan_in: int, fan_out: int) -> float:
    """eps = sqrt(6) / sqrt(fan_in + fan_out): the half-width of the classic U(-eps, eps) init.

    For the classic 400-25 hidden layer, eps = sqrt(6)/sqrt(425) ~ 0.119.
    """
    return math.sqrt(6.0) / math.sqrt(fan_in + fan_out)


def eps_uniform_(t: Tensor, eps: float | None = None, rng: RngLike = None) -> Tensor:
    """Fill with U(-eps, eps); eps defaults to ``eps_init(fan_in, fan_out)`` of ``t``'s shape."""
    if eps is None:
        eps = eps_init(*fan_in_and_fan_out(t))
    return uniform_(t, -eps, eps, rng=rng)


# --------------------------------------------------------------------- Glorot / He
def xavier_uniform_(t: Tensor, gain: float = 1.0, rng: RngLike = None) -> Tensor:
    """Glorot uniform: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fan_in_and_fan_out(t)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -bound, bound, rng=rng)


def xavier_normal_(t: Tensor, gain: float = 1.0, rng: RngLike = None) -> Tensor:
    """Glorot normal: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = fan_in_and_fan_out(t)
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), rng=rng)


def _kaiming_std(t: Tensor, a: float, mode: str, nonlinearity: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming init: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = fan_in_and_fan_out(t)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(
    t: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", rng: RngLike = None
) -> Tensor:
    """He uniform: U(-b, b) with b = gain * sqrt(3 / fan); with the defaults gain = sqrt(2) (ReLU)."""
    bound = math.sqrt(3.0) * _kaiming_std(t, a, mode, nonlinearity)
    return uniform_(t, -bound, bound, rng=rng)


def kaiming_normal_(
    t: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", rng: RngLike = None
) -> Tensor:
    """He normal: N(0, std^2) with std = gain / sqrt(fan); with the defaults std = sqrt(2 / fan_in)."""
    return normal_(t, 0.0, _kaiming_std(t, a, mode, nonlinearity), rng=rng)


glorot_uniform_ = xavier_uniform_
glorot_normal_ = xavier_normal_
he_uniform_ = kaiming_uniform_
he_normal_ = kaiming_normal_


def default_linear_(weight: Tensor, bias: Tensor | None = None, rng: RngLike = None) -> None:
    """The ``Linear`` default: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's)."""
    gen = get_rng(rng)
    fan_in, _ = fan_in_and_fan_out(weight)
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    uniform_(weight, -bound, bound, rng=gen)
    if bias is not None:
        uniform_(bias, -bound, bound, rng=gen)


__all__ = [
    "calculate_gain",
    "constant_",
    "default_linear_",
    "eps_init",
    "eps_uniform_",
    "fan_in_and_fan_out",
    "get_rng",
    "glorot_normal_",
    "glorot_uniform_",
    "he_normal_",
    "he_uniform_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "manual_seed",
    "normal_",
    "ones_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]
