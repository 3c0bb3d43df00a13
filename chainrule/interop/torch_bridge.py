"""chainrule <-> PyTorch: rebuild a model layer by layer in the other engine, with the same weights.

``to_torch(model)`` builds the PyTorch module of the same architecture and copies every
parameter and buffer; ``from_torch(torch_model)`` does the reverse. The two models have the
same ``state_dict()`` keys (chainrule names parameters as PyTorch does), so the weights move
with one strict ``load_state_dict``: nothing is renamed. The mapping, layer by layer:

====================  ===========================================  ===========================
chainrule             PyTorch                                      state_dict keys
====================  ===========================================  ===========================
Linear                torch.nn.Linear                              weight, bias
Sequential            torch.nn.Sequential                          0.weight, 1.running_mean, ...
ModuleList            torch.nn.ModuleList                          0.weight, ...
BatchNorm1d           torch.nn.BatchNorm1d                         weight, bias, running_mean,
                                                                   running_var, num_batches_tracked
PReLU                 torch.nn.PReLU                               weight
Dropout               torch.nn.Dropout                             (none)
ReLU, Sigmoid, ...    torch.nn.ReLU, torch.nn.Sigmoid, ...         (none)
GELU (tanh)           torch.nn.GELU(approximate="tanh")            (none)
Softmax(axis)         torch.nn.Softmax(dim=axis)                   (none)
Maxout                chainrule.interop.torch_bridge TorchMaxout   weight, bias
MLP                   chainrule.interop.torch_bridge TorchMLP      layers.0.weight, ...,
                                                                   activations.0.weight (PReLU)
====================  ===========================================  ===========================

Parameters keep their dtype (float32 or float64), their ``requires_grad`` flag, and every
submodule its training/evaluation mode. torch is imported inside the functions: importing
this module needs only NumPy.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from typing import Any

import numpy as np

from chainrule import nn

INSTALL_HINT = "pip install 'chainrule[interop]'"


class UnsupportedLayerError(TypeError):
    """A layer that the other engine (or the ONNX exporter) has no counterpart for; the message names it."""


def require(package: str) -> Any:
    """Import an optional package (torch, onnx, onnxruntime) or raise an ImportError naming the extra."""
    import importlib

    try:
        return importlib.import_module(package)
    except ImportError as err:
        raise ImportError(f"chainrule.interop needs {package} ({err}); install it with: {INSTALL_HINT}") from None


def _where(path: str) -> str:
    return f" at {path!r}" if path else " (the model itself)"


# --------------------------------------------------------------------- torch classes for Maxout and MLP
@functools.cache
def torch_classes() -> tuple[type, type]:
    """``(TorchMaxout, TorchMLP)``: the PyTorch modules that chainrule's Maxout and MLP become.

    Defined on first use, so that this module can be imported without torch. Their parameter
    names are chainrule's (``weight``/``bias``; ``layers.i``, ``activations.i``,
    ``output_activation``), so state dicts move between the two without renaming.
    """
    torch = require("torch")

    class TorchMaxout(torch.nn.Module):
        """y_j = max_k (W_{j,k} . x + b_{j,k}); weight (out * pieces, in), row j * pieces + k = piece k of unit j."""

        def __init__(
            self, in_features: int, out_features: int, pieces: int = 2, bias: bool = True, dtype: Any = None
        ) -> None:
            super().__init__()
            self.in_features, self.out_features, self.pieces = in_features, out_features, pieces
            rows = out_features * pieces
            self.weight = torch.nn.Parameter(torch.empty(rows, in_features, dtype=dtype))
            self.bias = torch.nn.Parameter(torch.empty(rows, dtype=dtype)) if bias else None
            bound = 1.0 / max(in_features, 1) ** 0.5
            with torch.no_grad():
                self.weight.uniform_(-bound, bound)
                if self.bias is not None:
                    self.bias.uniform_(-bound, bound)

        def forward(self, x: Any) -> Any:
            z = torch.nn.functional.linear(x, self.weight, self.bias)
            return z.unflatten(-1, (self.out_features, self.pieces)).amax(dim=-1)

        def extra_repr(self) -> str:
            return f"in_features={self.in_features}, out_features={self.out_features}, pieces={self.pieces}"

    class TorchMLP(torch.nn.Module):
        """chainrule's MLP in PyTorch: ``layers`` (Linear), ``activations`` between them, ``output_activation``."""

        def __init__(
            self, layers: list[Any], activations: list[Any], output_activation: Any, config: dict[str, Any]
        ) -> None:
            super().__init__()
            self.layers = torch.nn.ModuleList(layers)
            self.activations = torch.nn.ModuleList(activations)
            self.output_activation = output_activation
            self.config = dict(config)

        def forward(self, x: Any) -> Any:
            *hidden, last = self.layers
            for layer, act in zip(hidden, self.activations):
                x = act(layer(x))
            return self.output_activation(last(x))

    return TorchMaxout, TorchMLP


# --------------------------------------------------------------------- chainrule -> torch
def _dtype_of(module: Any) -> np.dtype:
    for p in module.parameters():
        return p.data.dtype
    for b in module.buffers():
        if b.data.dtype.kind == "f":
            return b.data.dtype
    return np.dtype(np.float32)


def _torch_dtype(torch: Any, dtype: np.dtype) -> Any:
    return torch.from_numpy(np.zeros(0, dtype=dtype)).dtype


def _to_torch_layer(torch: Any, m: Any, path: str) -> Any:
    tnn = torch.nn
    TorchMaxout, TorchMLP = torch_classes()
    dt = _torch_dtype(torch, _dtype_of(m))
    kind = type(m)
    if kind is nn.Linear:
        return tnn.Linear(m.in_features, m.out_features, bias=m.bias is not None, dtype=dt)
    if kind is nn.Maxout:
        return TorchMaxout(m.in_features, m.out_features, m.pieces, bias=m.bias is not None, dtype=dt)
    if kind is nn.BatchNorm1d:
        return tnn.BatchNorm1d(
            m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats, dtype=_torch_dtype(torch, _dtype_of(m))
        )
    if kind is nn.PReLU:
        return tnn.PReLU(m.num_parameters, m.init, dtype=dt)
    if kind is nn.Dropout:
        return tnn.Dropout(m.p)
    simple = {
        nn.ReLU: tnn.ReLU,
        nn.Sigmoid: tnn.Sigmoid,
        nn.Tanh: tnn.Tanh,
        nn.Identity: tnn.Identity,
    }
    if kind in simple:
        return simple[kind]()
    if kind is nn.LeakyReLU:
        return tnn.LeakyReLU(m.negative_slope)
    if kind is nn.ELU:
        return tnn.ELU(m.alpha)
    if kind is nn.Softplus:
        return tnn.Softplus(m.beta)
    if kind is nn.GELU:
        return tnn.GELU(approximate=m.approximate)
    if kind is nn.Softmax:
        return tnn.Softmax(dim=m.axis)
    if kind is nn.LogSoftmax:
        return tnn.LogSoftmax(dim=m.axis)
    if kind is nn.Flatten:
        return tnn.Flatten(m.start_dim, m.end_dim)
    if kind is nn.Sequential:
        return tnn.Sequential(OrderedDict((name, _to_torch_layer(torch, c, _join(path, name))) for name, c in _kids(m)))
    if kind is nn.ModuleList:
        return tnn.ModuleList([_to_torch_layer(torch, c, _join(path, name)) for name, c in _kids(m)])
    if kind is nn.MLP:
        layers = [_to_torch_layer(torch, c, _join(path, f"layers.{i}")) for i, c in enumerate(m.layers)]
        acts = [_to_torch_layer(torch, c, _join(path, f"activations.{i}")) for i, c in enumerate(m.activations)]
        out = _to_torch_layer(torch, m.output_activation, _join(path, "output_activation"))
        return TorchMLP(layers, acts, out, m.get_config())
    raise UnsupportedLayerError(
        f"to_torch: unsupported layer {kind.__name__}{_where(path)}; supported: {', '.join(SUPPORTED)}"
    )


def _kids(m: Any) -> list[tuple[str, Any]]:
    return list(m._modules.items())


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


SUPPORTED = (
    "Linear",
    "Maxout",
    "MLP",
    "Sequential",
    "ModuleList",
    "BatchNorm1d",
    "Dropout",
    "PReLU",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "Softplus",
    "GELU",
    "Sigmoid",
    "Tanh",
    "Identity",
    "Softmax",
    "LogSoftmax",
    "Flatten",
)


def to_torch(module: Any) -> Any:
    """The ``torch.nn.Module`` of the same architecture as ``module``, with a copy of its weights.

    Keys of ``state_dict()`` are identical on both sides; parameters keep their dtype and
    ``requires_grad``, every submodule its training mode. A layer with no PyTorch counterpart
    raises ``UnsupportedLayerError`` naming it and where it sits in the model.
    """
    torch = require("torch")
    if not isinstance(module, nn.Module):
        raise TypeError(f"to_torch: expected a chainrule.nn.Module, got {type(module).__name__}")
    if any(c is None for _, m in module.named_modules() for c in m._modules.values()):
        raise UnsupportedLayerError("to_torch: the model has an empty (None) submodule slot")
    model = _to_torch_layer(torch, module, "")
    state = module.state_dict()
    model.load_state_dict({k: torch.from_numpy(np.array(v, copy=True)) for k, v in state.items()}, strict=True)
    frozen = {name for name, p in module.named_parameters() if not p.requires_grad}
    for name, p in model.named_parameters():
        p.requires_grad_(name not in frozen)
    for name, m in module.named_modules():
        model.get_submodule(name).training = m.training
    return model


# --------------------------------------------------------------------- torch -> chainrule
def _np_dtype(torch: Any, dtype: Any, path: str) -> np.dtype:
    names = {torch.float32: np.float32, torch.float64: np.float64, torch.float16: np.float16}
    if dtype not in names:
        raise UnsupportedLayerError(
            f"from_torch: parameters of dtype {dtype}{_where(path)} (chainrule needs float16/32/64)"
        )
    return np.dtype(names[dtype])


def _torch_param_dtype(torch: Any, m: Any, path: str) -> np.dtype:
    for p in m.parameters():
        return _np_dtype(torch, p.dtype, path)
    for b in m.buffers():
        if b.dtype.is_floating_point:
            return _np_dtype(torch, b.dtype, path)
    return np.dtype(np.float32)


def _from_torch_layer(torch: Any, m: Any, path: str) -> nn.Module:
    tnn = torch.nn
    TorchMaxout, TorchMLP = torch_classes()
    kind = type(m)
    if kind is tnn.Linear:
        dt = _torch_param_dtype(torch, m, path)
        return nn.Linear(m.in_features, m.out_features, bias=m.bias is not None, dtype=dt)
    if kind is TorchMaxout:
        dt = _torch_param_dtype(torch, m, path)
        return nn.Maxout(m.in_features, m.out_features, m.pieces, bias=m.bias is not None, dtype=dt)
    if kind is tnn.BatchNorm1d:
        dt = _torch_param_dtype(torch, m, path)
        return nn.BatchNorm1d(m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats, dtype=dt)
    if kind is tnn.PReLU:
        dt = _torch_param_dtype(torch, m, path)
        return nn.PReLU(m.num_parameters, float(m.init), dtype=dt)
    if kind is tnn.Dropout:
        return nn.Dropout(m.p)
    simple = {tnn.ReLU: nn.ReLU, tnn.Sigmoid: nn.Sigmoid, tnn.Tanh: nn.Tanh, tnn.Identity: nn.Identity}
    if kind in simple:
        return simple[kind]()
    if kind is tnn.LeakyReLU:
        return nn.LeakyReLU(m.negative_slope)
    if kind is tnn.ELU:
        return nn.ELU(m.alpha)
    if kind is tnn.Softplus:
        return nn.Softplus(m.beta)
    if kind is tnn.GELU:
        if m.approximate != "tanh":
            raise UnsupportedLayerError(
                f"from_torch: unsupported layer GELU(approximate={m.approximate!r}){_where(path)}; "
                "chainrule has only GELU(approximate='tanh')"
            )
        return nn.GELU("tanh")
    if kind in (tnn.Softmax, tnn.LogSoftmax):
        if m.dim is None:
            raise UnsupportedLayerError(f"from_torch: {kind.__name__} without dim{_where(path)}; give it dim=-1")
        return (nn.Softmax if kind is tnn.Softmax else nn.LogSoftmax)(m.dim)
    if kind is tnn.Flatten:
        return nn.Flatten(m.start_dim, m.end_dim)
    if kind is tnn.Sequential:
        return nn.Sequential(
            OrderedDict((name, _from_torch_layer(torch, c, _join(path, name))) for name, c in m.named_children())
        )
    if kind is tnn.ModuleList:
        return nn.ModuleList([_from_torch_layer(torch, c, _join(path, name)) for name, c in m.named_children()])
    if kind is TorchMLP:
        dt = _torch_param_dtype(torch, m, path)
        config = dict(m.config)
        model = nn.from_config(config)
        model.to(dt)
        for name, child in model.named_modules():
            if name and not isinstance(child, (nn.ModuleList, nn.Linear)):
                theirs = _from_torch_layer(torch, m.get_submodule(name), _join(path, name))
                if theirs.get_config() != child.get_config():
                    raise UnsupportedLayerError(
                        f"from_torch: TorchMLP{_where(path)} has {_join(path, name)} = {theirs.get_config()}, "
                        f"which its config (activation {config.get('activation')!r}) does not describe"
                    )
        return model
    raise UnsupportedLayerError(
        f"from_torch: unsupported layer {kind.__name__}{_where(path)}; supported: "
        + ", ".join(n if n not in ("Maxout", "MLP") else f"Torch{n}" for n in SUPPORTED)
    )


def from_torch(torch_module: Any) -> nn.Module:
    """The chainrule module of the same architecture as ``torch_module``, with a copy of its weights.

    Accepts the PyTorch layers listed in this module's table (and the ``TorchMaxout`` and
    ``TorchMLP`` that ``to_torch`` makes). Anything else, including a subclass with its own
    ``forward``, raises ``UnsupportedLayerError`` naming the layer and its position.
    """
    torch = require("torch")
    if not isinstance(torch_module, torch.nn.Module):
        raise TypeError(f"from_torch: expected a torch.nn.Module, got {type(torch_module).__name__}")
    model = _from_torch_layer(torch, torch_module, "")
    state = {k: v.detach().cpu().numpy() for k, v in torch_module.state_dict().items()}
    model.load_state_dict(state, strict=True)
    frozen = {name for name, p in torch_module.named_parameters() if not p.requires_grad}
    for name, p in model.named_parameters():
        p.requires_grad = name not in frozen
    for name, m in model.named_modules():
        object.__setattr__(m, "training", torch_module.get_submodule(name).training)
    return model


__all__ = ["INSTALL_HINT", "SUPPORTED", "UnsupportedLayerError", "from_torch", "require", "to_torch", "torch_classes"]
