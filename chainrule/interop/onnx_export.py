"""Export a chainrule model to ONNX, for inference in ONNX Runtime or any other ONNX engine.

``to_onnx(model, example_input, "model.onnx")`` writes the model's evaluation-mode forward
pass as an ONNX graph built with the ``onnx`` package's helpers: one input named "input"
and one output named "output", whose first axis is the dynamic dimension "batch"; weights are
initializers named by their ``state_dict()`` keys ("layers.0.weight"). The graph passes
``onnx.checker.check_model`` before it is written (atomically: a temporary file renamed into
place). Layer by layer:

* Linear: ``Gemm`` (transB=1) on 2-D input, ``MatMul`` + ``Add`` on more axes;
* Maxout: the same, then ``Reshape`` to (..., out, pieces) and ``ReduceMax`` over the pieces;
* BatchNorm1d: ``BatchNormalization`` with the running statistics (inference form);
* Dropout, Identity: nothing (Dropout is the identity in evaluation mode);
* ReLU, Sigmoid, Tanh, Softmax, LogSoftmax: the ONNX op of the same name;
* GELU (tanh): ``Gelu(approximate="tanh")`` from opset 20, its formula below that;
* PReLU, LeakyReLU, ELU, Softplus: ``PRelu``, ``LeakyRelu``, ``Elu``, ``Softplus`` (with beta: times
  and divided by beta) in float32; in float64 their elementwise formulas (``Where``, ``Exp``, ...),
  because ONNX Runtime's CPU provider has no double kernels for those four ops;
* Flatten: ``Flatten`` or ``Reshape``; Sequential and MLP: their layers in order.

onnx is imported inside the functions: importing this module needs only NumPy.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from chainrule import nn
from chainrule.autograd.grad_mode import no_grad
from chainrule.autograd.tensor import Tensor
from chainrule.interop import torch_bridge
from chainrule.interop.torch_bridge import UnsupportedLayerError, require
from chainrule.io import atomic_write_bytes

DEFAULT_OPSET = 20
MIN_OPSET = 18
INPUT_NAME = "input"
OUTPUT_NAME = "output"
BATCH_DIM = "batch"


class _Graph:
    """The nodes and initializers of the graph being built, and fresh names for them."""

    def __init__(self, onnx: Any, dtype: np.dtype, opset: int) -> None:
        self.onnx = onnx
        self.dtype = dtype
        self.opset = opset
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._names: set[str] = {INPUT_NAME, OUTPUT_NAME}
        self._count = 0

    def fresh(self, hint: str) -> str:
        name = hint
        while name in self._names:
            self._count += 1
            name = f"{hint}_{self._count}"
        self._names.add(name)
        return name

    def constant(self, hint: str, array: Any, dtype: Any = None) -> str:
        """An initializer holding ``array`` (in the model's dtype unless ``dtype`` is given)."""
        value = np.array(array, dtype=self.dtype if dtype is None else dtype, copy=True)
        name = self.fresh(hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(value, name))
        return name

    def scalar(self, value: float) -> str:
        return self.constant("const", value)

    def op(self, op_type: str, inputs: list[str], hint: str, **attrs: Any) -> str:
        out = self.fresh(hint)
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out


# --------------------------------------------------------------------- one emitter per layer
def _linear(g: _Graph, x: str, rank: int, weight: Any, bias: Any, prefix: str) -> str:
    w = weight.data
    if rank == 2:
        inputs = [x, g.constant(f"{prefix}weight", w)]
        if bias is not None:
            inputs.append(g.constant(f"{prefix}bias", bias.data))
        return g.op("Gemm", inputs, f"{prefix}gemm", transB=1)
    y = g.op("MatMul", [x, g.constant(f"{prefix}weight_t", w.T)], f"{prefix}matmul")
    return y if bias is None else g.op("Add", [y, g.constant(f"{prefix}bias", bias.data)], f"{prefix}add")


def _where_positive(g: _Graph, x: str, negative: str, hint: str) -> str:
    positive = g.op("Greater", [x, g.scalar(0.0)], f"{hint}_positive")
    return g.op("Where", [positive, x, negative], hint)


def _softplus(g: _Graph, x: str, beta: float, hint: str) -> str:
    z = x if beta == 1.0 else g.op("Mul", [x, g.scalar(beta)], f"{hint}_scaled")
    if g.dtype == np.float32:
        y = g.op("Softplus", [z], hint)
    else:
        # NOTE: the stable form max(z, 0) + log(1 + e^-|z|): e^z alone overflows for large z
        tail = g.op("Exp", [g.op("Neg", [g.op("Abs", [z], f"{hint}_abs")], f"{hint}_neg")], f"{hint}_exp")
        log = g.op("Log", [g.op("Add", [tail, g.scalar(1.0)], f"{hint}_1p")], f"{hint}_log")
        y = g.op("Add", [g.op("Relu", [z], f"{hint}_relu"), log], hint)
    return y if beta == 1.0 else g.op("Div", [y, g.scalar(beta)], f"{hint}_unscaled")


def _gelu(g: _Graph, x: str, hint: str) -> str:
    if g.opset >= 20:
        return g.op("Gelu", [x], hint, approximate="tanh")
    cube = g.op("Mul", [g.op("Mul", [x, x], f"{hint}_sq"), x], f"{hint}_cube")
    inner = g.op("Add", [x, g.op("Mul", [cube, g.scalar(0.044715)], f"{hint}_c3")], f"{hint}_inner")
    t = g.op("Tanh", [g.op("Mul", [inner, g.scalar(np.sqrt(2.0 / np.pi))], f"{hint}_arg")], f"{hint}_tanh")
    half = g.op("Mul", [x, g.scalar(0.5)], f"{hint}_half")
    return g.op("Mul", [half, g.op("Add", [t, g.scalar(1.0)], f"{hint}_1p")], hint)


def _emit(g: _Graph, m: Any, x: str, value: np.ndarray, path: str) -> tuple[str, np.ndarray]:
    """Append the nodes of layer ``m`` applied to ``x``; ``value`` is x on the example (for the shapes)."""
    kind = type(m)
    hint = path or kind.__name__.lower()
    prefix = f"{path}." if path else ""
    rank = value.ndim
    if kind is nn.Sequential:
        for name, child in m._modules.items():
            x, value = _emit(g, child, x, value, f"{prefix}{name}")
        return x, value
    if kind is nn.MLP:
        *hidden, last = m.layers
        for i, (layer, act) in enumerate(zip(hidden, m.activations)):
            x, value = _emit(g, layer, x, value, f"{prefix}layers.{i}")
            x, value = _emit(g, act, x, value, f"{prefix}activations.{i}")
        x, value = _emit(g, last, x, value, f"{prefix}layers.{len(hidden)}")
        return _emit(g, m.output_activation, x, value, f"{prefix}output_activation")

    if kind.__name__ not in SUPPORTED or getattr(nn, kind.__name__, None) is not kind:
        where = f" at {path!r}" if path else ""
        raise UnsupportedLayerError(
            f"to_onnx: unsupported layer {kind.__name__}{where}; supported: {', '.join(SUPPORTED)}"
        )
    out = np.asarray(m(Tensor(value)).data)
    if kind in (nn.Identity, nn.Dropout):
        return x, out
    if kind is nn.Linear:
        y = _linear(g, x, rank, m.weight, m.bias, prefix)
    elif kind is nn.Maxout:
        z = _linear(g, x, rank, m.weight, m.bias, prefix)
        shape = g.constant(f"{prefix}pieces_shape", [0] * (rank - 1) + [m.out_features, m.pieces], np.int64)
        grouped = g.op("Reshape", [z, shape], f"{prefix}grouped")
        axes = g.constant(f"{prefix}pieces_axis", [-1], np.int64)
        y = g.op("ReduceMax", [grouped, axes], f"{prefix}max", keepdims=0)
    elif kind is nn.BatchNorm1d:
        if not m.track_running_stats:
            raise UnsupportedLayerError(
                f"to_onnx: unsupported layer BatchNorm1d(track_running_stats=False) at {path!r}: "
                "it normalizes with batch statistics even in evaluation mode"
            )
        c = m.num_features
        scale = m.weight.data if m.weight is not None else np.ones(c)
        shift = m.bias.data if m.bias is not None else np.zeros(c)
        inputs = [
            x,
            g.constant(f"{prefix}weight", scale),
            g.constant(f"{prefix}bias", shift),
            g.constant(f"{prefix}running_mean", m.running_mean.data),
            g.constant(f"{prefix}running_var", m.running_var.data),
        ]
        y = g.op("BatchNormalization", inputs, f"{prefix}batchnorm", epsilon=m.eps)
    elif kind is nn.PReLU:
        slope = m.weight.data
        if slope.size != 1:
            slope = slope.reshape((slope.size,) + (1,) * max(rank - 2, 0))
        w = g.constant(f"{prefix}weight", slope)
        if g.dtype == np.float32:
            y = g.op("PRelu", [x, w], hint)
        else:
            y = _where_positive(g, x, g.op("Mul", [x, w], f"{hint}_neg"), hint)
    elif kind in (nn.ReLU, nn.Sigmoid, nn.Tanh):
        y = g.op({nn.ReLU: "Relu", nn.Sigmoid: "Sigmoid", nn.Tanh: "Tanh"}[kind], [x], hint)
    elif kind is nn.LeakyReLU:
        if g.dtype == np.float32:
            y = g.op("LeakyRelu", [x], hint, alpha=m.negative_slope)
        else:
            y = _where_positive(g, x, g.op("Mul", [x, g.scalar(m.negative_slope)], f"{hint}_neg"), hint)
    elif kind is nn.ELU:
        if g.dtype == np.float32:
            y = g.op("Elu", [x], hint, alpha=m.alpha)
        else:
            expm1 = g.op("Sub", [g.op("Exp", [x], f"{hint}_exp"), g.scalar(1.0)], f"{hint}_expm1")
            y = _where_positive(g, x, g.op("Mul", [expm1, g.scalar(m.alpha)], f"{hint}_neg"), hint)
    elif kind is nn.Softplus:
        y = _softplus(g, x, m.beta, hint)
    elif kind is nn.GELU:
        y = _gelu(g, x, hint)
    elif kind in (nn.Softmax, nn.LogSoftmax):
        y = g.op("Softmax" if kind is nn.Softmax else "LogSoftmax", [x], hint, axis=m.axis)
    elif kind is nn.Flatten:
        start = m.start_dim % rank if rank else 0
        if start == 0:
            raise UnsupportedLayerError(f"to_onnx: Flatten(start_dim=0) at {path!r} would merge the batch axis")
        if start == 1 and out.ndim == 2:
            y = g.op("Flatten", [x], hint, axis=1)
        else:
            y = g.op("Reshape", [x, g.constant(f"{prefix}shape", [0, *out.shape[1:]], np.int64)], hint)
    else:  # pragma: no cover - every name in SUPPORTED has a branch above
        raise AssertionError(kind)
    return y, out


# every layer the PyTorch bridge knows except ModuleList, which has no forward of its own to export
SUPPORTED = tuple(name for name in torch_bridge.SUPPORTED if name != "ModuleList")


# --------------------------------------------------------------------- the model
def _model_dtype(module: Any) -> np.dtype:
    dtypes = {t.data.dtype for t in [*module.parameters(), *module.buffers()] if t.data.dtype.kind == "f"}
    if len(dtypes) > 1:
        raise ValueError(
            f"to_onnx: the model mixes dtypes {sorted(str(d) for d in dtypes)}; convert it with "
            "model.float() or model.double() first"
        )
    dtype = dtypes.pop() if dtypes else np.dtype(np.float32)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"to_onnx: parameters of dtype {dtype} (export float32 or float64)")
    return dtype


def build_onnx(module: Any, example_input: Any, opset: int = DEFAULT_OPSET) -> Any:
    """The ``onnx.ModelProto`` of ``module``'s evaluation-mode forward pass (checked, not written).

    ``example_input``: one batch, shape (N, features...); it fixes every axis but the first,
    which becomes the dynamic dimension "batch". Input and output have the model's dtype.
    """
    onnx = require("onnx")
    if not isinstance(module, nn.Module):
        raise TypeError(f"to_onnx: expected a chainrule.nn.Module, got {type(module).__name__}")
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < MIN_OPSET:
        raise ValueError(f"to_onnx: opset must be an integer >= {MIN_OPSET}, got {opset!r}")
    newest = onnx.defs.onnx_opset_version()
    if opset > newest:
        raise ValueError(f"to_onnx: opset {opset} is newer than this onnx package knows ({newest})")
    dtype = _model_dtype(module)
    example = np.asarray(example_input.data if isinstance(example_input, Tensor) else example_input)
    if example.ndim < 1 or example.shape[0] < 1 or example.dtype.kind not in "fiub":
        raise ValueError(
            f"to_onnx: example_input must be a numeric batch of shape (N, features...) with N >= 1, "
            f"got shape {example.shape} and dtype {example.dtype}"
        )
    example = example.astype(dtype)
    graph = _Graph(onnx, dtype, opset)
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        with no_grad():
            last, value = _emit(graph, module, INPUT_NAME, example, "")
    finally:
        for m, mode in modes:
            object.__setattr__(m, "training", mode)
    if last == INPUT_NAME:
        graph.nodes.append(onnx.helper.make_node("Identity", [INPUT_NAME], [OUTPUT_NAME], name="identity"))
    else:
        node = next(n for n in graph.nodes if last in n.output)
        node.output[list(node.output).index(last)] = OUTPUT_NAME
    elem = onnx.helper.np_dtype_to_tensor_dtype(dtype)
    inputs = [onnx.helper.make_tensor_value_info(INPUT_NAME, elem, [BATCH_DIM, *example.shape[1:]])]
    outputs = [onnx.helper.make_tensor_value_info(OUTPUT_NAME, elem, [BATCH_DIM, *value.shape[1:]])]
    g = onnx.helper.make_graph(graph.nodes, type(module).__name__, inputs, outputs, graph.initializers)
    model = onnx.helper.make_model(
        g, opset_imports=[onnx.helper.make_opsetid("", opset)], producer_name="chainrule", producer_version=_version()
    )
    # NOTE: the lowest IR version that carries this opset, so that runtimes older than this onnx package read it
    model.ir_version = onnx.helper.find_min_ir_version_for(list(model.opset_import))
    onnx.checker.check_model(model, full_check=True)
    return model


def _version() -> str:
    import chainrule

    return chainrule.__version__


def to_onnx(module: Any, example_input: Any, path: str | os.PathLike[str], *, opset: int = DEFAULT_OPSET) -> Path:
    """Write ``module`` as an ONNX model to ``path`` (see ``build_onnx``); returns the path.

    Raises ``UnsupportedLayerError`` naming a layer that has no ONNX form here, and an
    ImportError naming ``pip install 'chainrule[interop]'`` when onnx is missing. The file is
    written to a temporary and renamed into place, so ``path`` never holds a partial model.
    """
    model = build_onnx(module, example_input, opset)
    return atomic_write_bytes(path, model.SerializeToString())


__all__ = ["BATCH_DIM", "DEFAULT_OPSET", "INPUT_NAME", "OUTPUT_NAME", "SUPPORTED", "build_onnx", "to_onnx"]
