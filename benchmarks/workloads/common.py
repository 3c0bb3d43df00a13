"""The MLP that most workloads train, written three times: chainrule, PyTorch, NumPy by hand.

All three start from the same float32 weights (``init_layers``) and see the same
arrays, so their losses agree step by step to float32 rounding. The chainrule side
uses only core ops (``linear``, ``relu``/``tanh``, the fused ``softmax_cross_entropy``
or ``sigmoid`` and a squared error, ``mean``, ``backward``) and a manual SGD update of
``.data``; the PyTorch side mirrors it (``F.linear``, ``F.log_softmax`` + ``F.nll_loss``,
in-place SGD on the parameters under ``torch.no_grad``); the NumPy side writes the
forward and the backward out by hand and is the floor any autodiff engine on NumPy pays
at least.

A fourth variant, ``chainrule_compiled``, is the chainrule step with its loss function
(forward + loss) wrapped once in ``chainrule.compile``: the first call with a batch shape
traces the ops, later calls replay them and ``loss.backward()`` runs the captured backward.
Everything else (zeroing grads, the SGD update) is the eager chainrule step's code, and its
losses are bit-for-bit the eager ones.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.harness import IMPLS  # noqa: F401  (re-exported for the workloads)

Layers = list[tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class MLPSpec:
    """An MLP: layer widths, the hidden activation, the head and the SGD step size."""

    sizes: tuple[int, ...]
    hidden: str = "relu"  # "relu" | "tanh"
    head: str = "ce"  # "ce": softmax cross-entropy on integer labels; "sigmoid_mse": mean (sigmoid(out) - y)^2
    lr: float = 0.05


def init_layers(sizes: tuple[int, ...], seed: int) -> Layers:
    """PyTorch's default Linear init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), from a seeded NumPy RNG."""
    rng = np.random.default_rng(seed)
    layers = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        bound = 1.0 / np.sqrt(fan_in)
        weight = rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32)
        bias = rng.uniform(-bound, bound, fan_out).astype(np.float32)
        layers.append((weight, bias))
    return layers


def random_classification(n: int, features: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian float32 inputs and uniform int64 labels (the shape of a real task, no real signal)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, features), dtype=np.float32)
    y = rng.integers(0, classes, n).astype(np.int64)
    return x, y


# --------------------------------------------------------------------- NumPy by hand
class NumpyMLP:
    """Forward and backward written out with NumPy; no graph, no autodiff."""

    def __init__(self, spec: MLPSpec, layers: Layers) -> None:
        self.spec = spec
        self.params = [(w.copy(), b.copy()) for w, b in layers]
        self._rows: dict[int, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        h = x
        last = len(self.params) - 1
        for i, (w, b) in enumerate(self.params):
            h = h @ w.T
            h += b
            if i < last:
                h = np.maximum(h, 0) if self.spec.hidden == "relu" else np.tanh(h)
        return h

    def step(self, x: np.ndarray, y: np.ndarray) -> Any:
        spec, params = self.spec, self.params
        relu = spec.hidden == "relu"
        last = len(params) - 1
        inputs = [x]  # the input of every layer
        h = x
        for i, (w, b) in enumerate(params):
            h = h @ w.T
            h += b
            if i < last:
                h = np.maximum(h, 0) if relu else np.tanh(h)
                inputs.append(h)
        if spec.head == "ce":
            n = len(y)
            rows = self._rows.get(n)
            if rows is None:
                rows = self._rows[n] = np.arange(n)
            shifted = h - h.max(axis=1, keepdims=True)
            e = np.exp(shifted)
            total = e.sum(axis=1, keepdims=True)
            loss = -(shifted[rows, y] - np.log(total[:, 0])).mean()
            grad = e / total
            grad[rows, y] -= 1
            grad /= n
        else:
            p = 1 / (1 + np.exp(-h))
            diff = p - y
            loss = (diff * diff).mean()
            grad = (2 / diff.size) * diff * (p * (1 - p))
        lr = spec.lr
        for i in range(last, -1, -1):
            w, b = params[i]
            h_in = inputs[i]
            grad_w = grad.T @ h_in
            grad_b = grad.sum(axis=0)
            if i > 0:
                grad = grad @ w
                grad *= (h_in > 0) if relu else (1 - h_in * h_in)
            w -= lr * grad_w
            b -= lr * grad_b
        return loss


# --------------------------------------------------------------------- chainrule
class ChainruleMLP:
    """The same MLP with chainrule core ops and a manual SGD update."""

    def __init__(self, spec: MLPSpec, layers: Layers) -> None:
        import chainrule as cr

        self.cr = cr
        self.spec = spec
        self.params = [(cr.tensor(w, requires_grad=True), cr.tensor(b, requires_grad=True)) for w, b in layers]
        self.flat = [p for pair in self.params for p in pair]

    def forward(self, x: Any) -> Any:
        cr = self.cr
        act = cr.relu if self.spec.hidden == "relu" else cr.tanh
        h = x
        last = len(self.params) - 1
        for i, (w, b) in enumerate(self.params):
            h = cr.linear(h, w, b)
            if i < last:
                h = act(h)
        return h

    def loss_of(self, out: Any, y: Any) -> Any:
        cr = self.cr
        if self.spec.head == "ce":
            return cr.softmax_cross_entropy(out, y)  # the fused op, as the NumPy floor and torch fuse it
        diff = cr.sigmoid(out) - y
        return (diff * diff).mean()

    def step(self, x: Any, y: Any) -> Any:
        return self.update(self.loss_of(self.forward(x), y))

    def update(self, loss: Any) -> Any:
        """Zero the gradients, backward, SGD on ``.data``; returns the loss."""
        for p in self.flat:
            p.grad = None
        loss.backward()
        lr = self.spec.lr
        for p in self.flat:  # NumPy on the arrays, as the floor does: no graph, so no no_grad() needed
            p.data -= lr * p.grad.data  # .grad is a tensor (as in PyTorch); .data is its array
        return loss


class ChainruleCompiledMLP(ChainruleMLP):
    """The eager chainrule step with forward + loss captured once by ``chainrule.compile``.

    The batch and the targets are the compiled function's arguments (Tensors); the
    parameters are read afresh on every call, so the SGD update is seen. A batch of a new
    shape (a smaller last batch) traces a second signature.
    """

    def __init__(self, spec: MLPSpec, layers: Layers) -> None:
        super().__init__(spec, layers)
        self.compiled = self.cr.compile(lambda x, y: self.loss_of(self.forward(x), y))

    def step(self, x: Any, y: Any) -> Any:
        return self.update(self.compiled(x, y))

    def prime(self, x: Any, y: Any) -> None:
        """Trace for this batch shape and run the traced backward, leaving weights and grads as they
        were: what the memory probe does in setup, so that it measures the replay."""
        self.compiled(x, y).backward()
        for p in self.flat:
            p.grad = None


# --------------------------------------------------------------------- PyTorch
class TorchMLP:
    """The same MLP in eager PyTorch, op for op."""

    def __init__(self, spec: MLPSpec, layers: Layers) -> None:
        import torch
        import torch.nn.functional as F

        self.torch, self.F = torch, F
        self.spec = spec
        self.params = [
            (torch.from_numpy(w.copy()).requires_grad_(), torch.from_numpy(b.copy()).requires_grad_())
            for w, b in layers
        ]
        self.flat = [p for pair in self.params for p in pair]

    def forward(self, x: Any) -> Any:
        F = self.F
        act = F.relu if self.spec.hidden == "relu" else self.torch.tanh
        h = x
        last = len(self.params) - 1
        for i, (w, b) in enumerate(self.params):
            h = F.linear(h, w, b)
            if i < last:
                h = act(h)
        return h

    def step(self, x: Any, y: Any) -> Any:
        torch, F = self.torch, self.F
        out = self.forward(x)
        if self.spec.head == "ce":
            loss = F.nll_loss(F.log_softmax(out, dim=-1), y)
        else:
            diff = torch.sigmoid(out) - y
            loss = (diff * diff).mean()
        for p in self.flat:
            p.grad = None
        loss.backward()
        lr = self.spec.lr
        with torch.no_grad():
            for p in self.flat:
                p.sub_(lr * p.grad)
        return loss


class ChainruleNNMLP(ChainruleMLP):
    """The same MLP through chainrule's user-level API: ``nn.MLP``, ``nn.CrossEntropyLoss`` /
    ``nn.MSELoss`` and ``optim.SGD`` (used when the benchmarks run with ``--api nn``)."""

    def __init__(self, spec: MLPSpec, layers: Layers) -> None:
        import chainrule as cr
        from chainrule import nn, optim

        self.cr = cr
        self.spec = spec
        self.model = nn.MLP([layers[0][0].shape[1], *(w.shape[0] for w, _ in layers)], activation=spec.hidden)
        for layer, (w, b) in zip(self.model.layers, layers):
            layer.weight.data[...] = w
            layer.bias.data[...] = b
        self.params = [(layer.weight, layer.bias) for layer in self.model.layers]
        self.loss_fn = nn.CrossEntropyLoss() if spec.head == "ce" else nn.MSELoss()
        self.optimizer = optim.SGD(self.model.parameters(), lr=spec.lr)

    def forward(self, x: Any) -> Any:
        return self.model(x)

    def loss_of(self, out: Any, y: Any) -> Any:
        return self.loss_fn(out if self.spec.head == "ce" else self.cr.sigmoid(out), y)

    def update(self, loss: Any) -> Any:
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss


class ChainruleCompiledNNMLP(ChainruleNNMLP):
    """``--api nn`` with compile mode: ``nn.MLP`` + the ``nn`` loss captured by ``chainrule.compile``,
    ``optim.SGD`` as in eager mode."""

    def __init__(self, spec: MLPSpec, layers: Layers) -> None:
        super().__init__(spec, layers)
        self.compiled = self.cr.compile(lambda x, y: self.loss_of(self.model(x), y))

    def step(self, x: Any, y: Any) -> Any:
        return self.update(self.compiled(x, y))

    def prime(self, x: Any, y: Any) -> None:
        self.compiled(x, y).backward()
        self.optimizer.zero_grad()


class TorchNNMLP(TorchMLP):
    """``--api nn`` for PyTorch: ``torch.nn`` layers, an ``nn`` loss module and ``torch.optim.SGD``,
    as a PyTorch user writes it (the counterpart of ``ChainruleNNMLP``)."""

    def __init__(self, spec: MLPSpec, layers: Layers) -> None:
        import torch

        self.torch, self.F = torch, torch.nn.functional
        self.spec = spec
        modules: list[Any] = []
        for i, (w, b) in enumerate(layers):
            linear = torch.nn.Linear(w.shape[1], w.shape[0])
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(w))
                linear.bias.copy_(torch.from_numpy(b))
            modules.append(linear)
            if i < len(layers) - 1:
                modules.append(torch.nn.ReLU() if spec.hidden == "relu" else torch.nn.Tanh())
        self.model = torch.nn.Sequential(*modules)
        self.params = [(m.weight, m.bias) for m in modules if isinstance(m, torch.nn.Linear)]
        self.flat = [p for pair in self.params for p in pair]
        self.loss_fn = torch.nn.CrossEntropyLoss() if spec.head == "ce" else torch.nn.MSELoss()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=spec.lr)

    def forward(self, x: Any) -> Any:
        return self.model(x)

    def step(self, x: Any, y: Any) -> Any:
        out = self.model(x)
        loss = self.loss_fn(out if self.spec.head == "ce" else self.torch.sigmoid(out), y)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss


#: how the MLP workloads are written: "core" (core ops and a manual SGD update, both libraries) or
#: "nn" (each library's user API: nn layers, an nn loss module, optim.SGD)
CHAINRULE_API = {"api": "core"}

#: the implementations whose tensors are chainrule's
CHAINRULE_IMPLS = ("chainrule", "chainrule_compiled")


def make_mlp(impl: str, spec: MLPSpec, layers: Layers) -> Any:
    if CHAINRULE_API["api"] == "nn" and impl != "numpy":
        nn_kinds = {"chainrule": ChainruleNNMLP, "chainrule_compiled": ChainruleCompiledNNMLP, "torch": TorchNNMLP}
        return nn_kinds[impl](spec, layers)
    kinds = {
        "chainrule": ChainruleMLP,
        "chainrule_compiled": ChainruleCompiledMLP,
        "torch": TorchMLP,
        "numpy": NumpyMLP,
    }
    return kinds[impl](spec, layers)


def as_impl_array(impl: str, array: np.ndarray) -> Any:
    """The array as the implementation's own tensor type (sharing memory where it can)."""
    if impl in CHAINRULE_IMPLS:
        import chainrule as cr

        return cr.tensor(array)
    if impl == "torch":
        import torch

        return torch.from_numpy(array)
    return array


def no_grad(impl: str) -> Any:
    """The implementation's "record no graph" context (nothing to switch off for NumPy)."""
    if impl in CHAINRULE_IMPLS:
        import chainrule as cr

        return cr.no_grad()
    if impl == "torch":
        import torch

        return torch.no_grad()
    import contextlib

    return contextlib.nullcontext()


def to_float(value: Any) -> float:
    """A loss of any implementation as a Python float."""
    return float(value.item() if hasattr(value, "item") else value)
