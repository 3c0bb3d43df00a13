"""Stateless neural-network functions: activations, pooling, dropout, batch norm, losses, penalties.

Everything here is composed from chainrule's differentiable ops, so gradients come from
the engine (no hand-written backward). The layer classes in ``chainrule.nn`` call these.
Losses live in ``chainrule.nn.losses`` and are re-exported here.
"""

from __future__ import annotations

import math
from typing import Any

from chainrule import functional
from chainrule.autograd.grad_mode import no_grad
from chainrule.autograd.tensor import Tensor, as_tensor
from chainrule.functional import elu, leaky_relu, linear, log_softmax, relu, sigmoid, softmax, softplus, tanh
from chainrule.nn.init import RngLike, get_rng
from chainrule.nn.losses import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    hinge_loss,
    l2_penalty,
    mse_loss,
    multi_margin_loss,
    nll_loss,
)


# --------------------------------------------------------------------- activations
def identity(x: Any) -> Tensor:
    """f(x) = x."""
    return as_tensor(x)


def prelu(x: Any, weight: Tensor) -> Tensor:
    """f(x) = x if x > 0 else a x, with a learnable slope ``weight``.

    ``weight`` has one element (shared) or one per channel, the channel axis being axis 1
    (axis 0 for a 1-D input), as in PyTorch. NOTE: at x = 0 the slope side is taken: f'(0) = a.
    """
    x = as_tensor(x)
    w = weight
    if w.size != 1:
        channel_axis = 1 if x.ndim >= 2 else 0
        if x.ndim == 0 or x.shape[channel_axis] != w.size:
            raise ValueError(
                f"prelu: weight has {w.size} slopes but the input of shape {x.shape} has "
                f"{x.shape[channel_axis] if x.ndim else 0} channels on axis {channel_axis}"
            )
        w = functional.reshape(w, (w.size,) + (1,) * (x.ndim - channel_axis - 1))
    return functional.where(x.data > 0, x, w * x)


_GELU_C = math.sqrt(2.0 / math.pi)


def check_gelu_mode(approximate: str) -> None:
    if approximate != "tanh":
        raise ValueError(
            f"gelu: approximate={approximate!r} is not supported; only the tanh approximation "
            "(approximate='tanh') is available because the core has no erf op"
        )


def gelu(x: Any, approximate: str = "tanh") -> Tensor:
    """GELU, tanh approximation: f(x) = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).

    This equals PyTorch's ``gelu(x, approximate="tanh")``. The exact form x Phi(x) needs
    erf, which the core has no op for, so ``approximate="none"`` is refused.
    """
    check_gelu_mode(approximate)
    x = as_tensor(x)
    inner = (x + 0.044715 * (x * x * x)) * _GELU_C
    return 0.5 * x * (1.0 + functional.tanh(inner))


def maxout(x: Any, weight: Tensor, bias: Tensor | None, pieces: int) -> Tensor:
    """Maxout: y_j = max_k (W_{j,k} . x + b_{j,k}), k = 0 .. pieces-1.

    ``weight`` has shape (out_features * pieces, in_features); row j * pieces + k holds piece
    k of output j. The gradient goes to the winning piece (ties split it equally).
    """
    z = linear(x, weight, bias)
    out = z.shape[-1] // pieces
    return functional.max(functional.reshape(z, (*z.shape[:-1], out, pieces)), axis=-1)


# --------------------------------------------------------------------- pooling over an axis
def lp_pool(x: Any, p: float, axis: int = -1, keepdims: bool = False) -> Tensor:
    """Power-average pooling: y = (sum_i x_i^p)^(1/p) over ``axis``, for x_i > 0.

    Gradient: dy/dx_i = (1/p) (sum_j x_j^p)^(1/p - 1) * p x_i^(p-1) = x_i^(p-1) / y^(p-1)
    = (x_i / y)^(p-1). p = 1 is the sum, p -> inf approaches the max.
    NOTE: x_i <= 0 with a non-integer p gives NaN; y = 0 makes the gradient undefined.
    """
    x = as_tensor(x)
    p = float(p)
    if p <= 0:
        raise ValueError(f"lp_pool: p must be positive, got {p}")
    return functional.sum(x**p, axis=axis, keepdims=keepdims) ** (1.0 / p)


def log_avg_pool(x: Any, beta: float, axis: int = -1, keepdims: bool = False) -> Tensor:
    """Log-average-exp pooling: y = (1/beta) ln((1/n) sum_i exp(beta x_i)) over ``axis`` (n entries).

    Computed stably as (logsumexp(beta x) - ln n) / beta. Gradient:
    dy/dx_i = (1/beta) * beta exp(beta x_i) / sum_j exp(beta x_j) = softmax(beta x)_i.
    beta -> 0 approaches the mean, beta -> inf the max.
    """
    x = as_tensor(x)
    beta = float(beta)
    if beta == 0:
        raise ValueError("log_avg_pool: beta must be non-zero (beta -> 0 is the mean)")
    n = x.shape[axis]
    return (functional.logsumexp(x * beta, axis=axis, keepdims=keepdims) - math.log(n)) / beta


# --------------------------------------------------------------------- dropout
def dropout(x: Any, p: float = 0.5, training: bool = True, rng: RngLike = None) -> Tensor:
    """Inverted dropout: zero each element with probability p, scale the rest by 1/(1-p).

    The expected value is unchanged, so nothing needs rescaling at evaluation time; with
    ``training=False`` (or p = 0) x is returned unchanged. ``rng``: a seed or a Generator.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    x = as_tensor(x)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    keep = get_rng(rng).random(x.shape) >= p
    scale = (keep / (1.0 - p)).astype(x.dtype)
    return x * scale


# --------------------------------------------------------------------- batch norm
def _stat_shape(x: Tensor, what: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    if x.ndim not in (2, 3):
        raise ValueError(f"{what}: expected input of shape (N, C) or (N, C, L), got {x.shape}")
    axes = (0,) if x.ndim == 2 else (0, 2)
    bshape = (x.shape[1],) if x.ndim == 2 else (x.shape[1], 1)
    return axes, bshape


def batch_norm(
    x: Any,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Batch normalization over the batch axis (and the length axis of (N, C, L) input).

    Training: y = (x - mean_B) / sqrt(var_B + eps) * weight + bias with the batch's biased
    variance var_B = mean((x - mean_B)^2), and, if running stats are given, in place
    running = (1 - momentum) running + momentum batch, using the UNBIASED batch variance
    (n / (n - 1) var_B) for ``running_var``, exactly as PyTorch. Evaluation: the running
    mean and variance replace the batch statistics.
    """
    x = as_tensor(x)
    axes, bshape = _stat_shape(x, "batch_norm")
    if training:
        n = x.size // x.shape[1]
        if n <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when training, got input {x.shape}")
        mean = functional.mean(x, axis=axes, keepdims=True)
        var = functional.var(x, axis=axes, keepdims=True, correction=0)  # normalize by the biased variance
        if running_mean is not None and running_var is not None:
            with no_grad():
                batch_mean = mean.data.reshape(-1)
                unbiased = var.data.reshape(-1) * (n / (n - 1))
                running_mean.data[...] = (1 - momentum) * running_mean.data + momentum * batch_mean
                running_var.data[...] = (1 - momentum) * running_var.data + momentum * unbiased
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: evaluation mode needs running_mean and running_var")
        mean = Tensor._wrap(running_mean.data.reshape(bshape).astype(x.dtype, copy=False))
        var = Tensor._wrap(running_var.data.reshape(bshape).astype(x.dtype, copy=False))
    out = (x - mean) / functional.sqrt(var + eps)
    if weight is not None:
        out = out * (functional.reshape(weight, bshape) if x.ndim == 3 else weight)
    if bias is not None:
        out = out + (functional.reshape(bias, bshape) if x.ndim == 3 else bias)
    return out


__all__ = [
    "as_tensor",
    "batch_norm",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "dropout",
    "elu",
    "gelu",
    "hinge_loss",
    "identity",
    "l2_penalty",
    "leaky_relu",
    "linear",
    "log_avg_pool",
    "log_softmax",
    "lp_pool",
    "maxout",
    "mse_loss",
    "multi_margin_loss",
    "nll_loss",
    "prelu",
    "relu",
    "sigmoid",
    "softmax",
    "softplus",
    "tanh",
]
