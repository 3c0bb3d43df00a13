"""chainrule: backpropagation made real, correct, fast and visible.

An autodiff engine on NumPy tensors with an explicit computational graph and a
PyTorch-like API::

    import chainrule as cr
    x = cr.tensor(-2.0, requires_grad=True)
    y = cr.tensor(5.0, requires_grad=True)
    z = cr.tensor(-4.0, requires_grad=True)
    f = (x + y) * z
    f.backward()
    x.grad, y.grad, z.grad   # -4, -4, 3
"""

from __future__ import annotations

from typing import Any

# Tensor's operators and methods are attached here (see chainrule/autograd/tensor_methods.py).
from chainrule import ops
from chainrule.autograd import tensor_methods  # noqa: F401
from chainrule.autograd.engine import unbroadcast
from chainrule.autograd.factories import (
    arange,
    eye,
    full,
    manual_seed,
    ones,
    ones_like,
    rand,
    randn,
    zeros,
    zeros_like,
)
from chainrule.autograd.function import Function
from chainrule.autograd.grad_mode import detect_anomaly, enable_grad, is_grad_enabled, no_grad
from chainrule.autograd.gradcheck import GradcheckError, gradcheck, numerical_grad
from chainrule.autograd.tensor import Tensor, tensor
from chainrule.functional import (
    abs,
    add,
    argmax,
    argmin,
    astype,
    broadcast_to,
    cat,
    clamp,
    clip,
    concatenate,
    div,
    elu,
    exp,
    flatten,
    leaky_relu,
    linear,
    log,
    log_softmax,
    logsumexp,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mul,
    neg,
    norm,
    permute,
    pow,
    relu,
    reshape,
    sigmoid,
    softmax,
    softmax_cross_entropy,
    softplus,
    sqrt,
    squeeze,
    stack,
    std,
    sub,
    sum,
    swapaxes,
    tanh,
    transpose,
    unsqueeze,
    var,
    where,
)
from chainrule.ops import OPS

__version__ = "0.1.0"

# Submodules above the core load on first use, so ``import chainrule`` needs only NumPy.
_LAZY_MODULES = {"nn", "optim", "data", "cli", "train", "io", "viz", "interop", "sweep", "playground"}
_LAZY_NAMES = {"fit": "train", "save": "io", "load": "io", "compile": "autograd.compile", "explain": "viz"}


def __getattr__(name: str) -> Any:
    import importlib

    if name in _LAZY_MODULES:
        return importlib.import_module(f"chainrule.{name}")
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(f"chainrule.{_LAZY_NAMES[name]}"), name)
    raise AttributeError(f"module 'chainrule' has no attribute {name!r}")


# fmt: off
__all__ = [
    "OPS", "Function", "GradcheckError", "Tensor", "abs", "add", "arange", "argmax", "argmin", "astype",
    "broadcast_to", "cat", "clamp", "clip", "concatenate", "detect_anomaly", "div", "elu", "enable_grad",
    "exp", "eye", "flatten", "full", "gradcheck", "is_grad_enabled", "leaky_relu", "linear", "log",
    "log_softmax", "logsumexp", "manual_seed", "matmul", "max", "maximum", "mean", "min", "minimum", "mul", "neg",
    "no_grad", "norm", "numerical_grad", "ones", "ones_like", "ops", "permute", "pow", "rand", "randn", "relu",
    "reshape", "sigmoid", "softmax", "softmax_cross_entropy", "softplus", "sqrt", "squeeze", "stack", "std", "sub",
    "sum", "swapaxes",
    "tanh", "tensor", "transpose", "unbroadcast", "unsqueeze", "var", "where", "zeros", "zeros_like",
]
# fmt: on
