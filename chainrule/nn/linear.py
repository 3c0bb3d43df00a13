"""Fully connected layers: ``Linear``, ``Maxout`` and the ``MLP`` built from them.

Weight layout (PyTorch's): ``weight`` has shape (out_features, in_features), so row j
holds the incoming weights of output unit j and, per example, y = W x + b. On a batch
X of shape (N, in_features) (one example per row) that is Y = X W^T + b, computed by
the fused ``chainrule.linear`` op.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from chainrule import functional
from chainrule.autograd.tensor import Tensor
from chainrule.nn import functional as F
from chainrule.nn import init
from chainrule.nn.activation import make_activation
from chainrule.nn.container import ModuleList
from chainrule.nn.module import Module, Parameter, register_module, resolve_dtype


@register_module
class Linear(Module):
    """y = W x + b per example; on a batch (N, in) -> (N, out): Y = X W^T + b.

    ``weight``: (out_features, in_features); ``bias``: (out_features,).
    Default init (PyTorch's): weight and bias ~ U(-1/sqrt(in_features), 1/sqrt(in_features)).
    ``rng``: a seed or Generator for that init; ``dtype``: float32 unless given.
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, *, dtype: Any = None, rng: init.RngLike = None
    ) -> None:
        super().__init__()
        if in_features < 0 or out_features < 0:
            raise ValueError(f"Linear: feature sizes must be non-negative, got ({in_features}, {out_features})")
        dt = resolve_dtype(dtype)
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.weight = Parameter(np.empty((self.out_features, self.in_features), dtype=dt))
        self.bias = Parameter(np.empty(self.out_features, dtype=dt)) if bias else None
        self.reset_parameters(rng)

    def reset_parameters(self, rng: init.RngLike = None) -> None:
        """Re-draw weight and bias from U(-1/sqrt(in), 1/sqrt(in))."""
        init.default_linear_(self.weight, self.bias, rng=rng)

    def forward(self, x: Any) -> Tensor:
        return functional.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"

    def get_config(self) -> dict[str, Any]:
        return {
            "type": "Linear",
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.bias is not None,
        }


@register_module
class Maxout(Module):
    """Maxout unit: y_j = max over k of (W_{j,k} . x + b_{j,k}), k = 1 .. pieces.

    ``weight``: (out_features * pieces, in_features), row j * pieces + k = piece k of
    output j; ``bias``: (out_features * pieces,). Same default init as ``Linear``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        pieces: int = 2,
        bias: bool = True,
        *,
        dtype: Any = None,
        rng: init.RngLike = None,
    ) -> None:
        super().__init__()
        if pieces < 1:
            raise ValueError(f"Maxout: pieces must be >= 1, got {pieces}")
        dt = resolve_dtype(dtype)
        self.in_features, self.out_features, self.pieces = int(in_features), int(out_features), int(pieces)
        rows = self.out_features * self.pieces
        self.weight = Parameter(np.empty((rows, self.in_features), dtype=dt))
        self.bias = Parameter(np.empty(rows, dtype=dt)) if bias else None
        init.default_linear_(self.weight, self.bias, rng=rng)

    def forward(self, x: Any) -> Tensor:
        return F.maxout(x, self.weight, self.bias, self.pieces)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, pieces={self.pieces}, "
            f"bias={self.bias is not None}"
        )

    def get_config(self) -> dict[str, Any]:
        return {
            "type": "Maxout",
            "in_features": self.in_features,
            "out_features": self.out_features,
            "pieces": self.pieces,
            "bias": self.bias is not None,
        }


@register_module
class MLP(Module):
    """A multilayer perceptron: Linear layers of ``sizes`` with ``activation`` between them.

    ``MLP([784, 25, 10], activation="sigmoid")`` = Linear(784, 25) -> sigmoid -> Linear(25, 10).
    ``output_activation`` (None = no activation, i.e. raw scores for a logits-based loss)
    follows the last layer. Activations by name: relu, sigmoid, tanh, leaky_relu, elu,
    softplus, gelu, prelu (one learnable slope per hidden layer), identity, softmax,
    log_softmax. Parameters are named "layers.0.weight", "layers.0.bias", "layers.1.weight", ...
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str | None = "relu",
        output_activation: str | None = None,
        bias: bool = True,
        *,
        dtype: Any = None,
        rng: init.RngLike = None,
    ) -> None:
        super().__init__()
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2:
            raise ValueError(f"MLP: sizes needs at least an input and an output size, got {sizes}")
        make_activation(activation)  # validate the name even when there is no hidden layer
        gen = init.get_rng(rng)
        self.sizes = sizes
        self.activation_name = activation
        self.output_activation_name = output_activation
        self.layers = ModuleList(Linear(a, b, bias=bias, dtype=dtype, rng=gen) for a, b in itertools.pairwise(sizes))
        self.activations = ModuleList(make_activation(activation, dtype=dtype) for _ in range(len(sizes) - 2))
        self.output_activation = make_activation(output_activation, dtype=dtype)

    def forward(self, x: Any) -> Tensor:
        # NOTE: the registries' own iterators, without ModuleList.__iter__ or a list per call (measured:
        # 0.3 us less a step on the XOR net); the layers outnumber the hidden activations by one
        layers = iter(self.layers._modules.values())
        for act in self.activations._modules.values():
            x = act(next(layers)(x))
        return self.output_activation(next(layers)(x))

    def extra_repr(self) -> str:
        return (
            f"sizes={self.sizes}, activation={self.activation_name!r}, "
            f"output_activation={self.output_activation_name!r}"
        )

    def get_config(self) -> dict[str, Any]:
        return {
            "type": "MLP",
            "sizes": list(self.sizes),
            "activation": self.activation_name,
            "output_activation": self.output_activation_name,
            "bias": self.layers[0].bias is not None,
        }


__all__ = ["MLP", "Linear", "Maxout"]
