"""The playground's network: features, the loss of each task, and what the views need from the engine.

Everything here runs on chainrule itself: the model is an ``nn.MLP``, training is the engine's
backward pass and an ``optim`` optimizer, grids are evaluated under ``no_grad`` in one batch,
and the backward-step record comes from ``chainrule.explain``.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from chainrule import functional as cf
from chainrule.autograd.grad_mode import no_grad
from chainrule.autograd.tensor import Tensor
from chainrule.nn import MLP
from chainrule.optim import SGD, Adam

#: output activation shown for each (loss, classes); None: the loss reads z directly
OUTPUT_ACTIVATION = {
    ("mse", 2): "sigmoid",
    ("cross_entropy", 2): "sigmoid",
    ("hinge", 2): "linear",
    ("mse", 3): "softmax",
    ("cross_entropy", 3): "softmax",
    ("hinge", 3): "linear",
}


def features(X: np.ndarray, names: list[str]) -> np.ndarray:
    """The input features of points ``X`` ((n, 2), or (n, 1) for regression) as float32 (n, len(names))."""
    x1 = X[:, 0]
    x2 = X[:, 1] if X.shape[1] > 1 else np.zeros_like(x1)
    table = {
        "x1": lambda: x1,
        "x2": lambda: x2,
        "x1sq": lambda: x1 * x1,
        "x2sq": lambda: x2 * x2,
        "x1x2": lambda: x1 * x2,
        "sin_x1": lambda: np.sin(x1),
        "sin_x2": lambda: np.sin(x2),
    }
    return np.stack([table[n]() for n in names], axis=1).astype(np.float32)


def targets(task: str, classes: int, labels_or_y: np.ndarray) -> np.ndarray:
    """Float targets the losses read: t in {0, 1} (n, 1) for 2 classes, one-hot (n, 3), or y (n, 1)."""
    if task == "regression":
        return labels_or_y.astype(np.float32).reshape(-1, 1)
    if classes == 2:
        return labels_or_y.astype(np.float32).reshape(-1, 1)
    return np.eye(3, dtype=np.float32)[labels_or_y.astype(np.int64)]


def data_loss(z: Tensor, t: Tensor, loss: str, task: str, classes: int) -> Tensor:
    """The mean data loss of scores ``z`` against float targets ``t`` (PROTOCOL.md, "Output layer and loss").

    Written with ops on ``t`` only (no index arrays), so a captured (compiled) step stays right
    for every batch; tests check each against PyTorch's loss of the same name.
    """
    if task == "regression":
        d = z - t
        return cf.mean(d * d)
    if classes == 2:
        if loss == "mse":
            d = cf.sigmoid(z) - t
            return cf.mean(d * d)
        if loss == "cross_entropy":
            return cf.mean(cf.softplus(z) - t * z)  # binary cross-entropy from the logit, stable
        return cf.mean(cf.relu(1.0 - (2.0 * t - 1.0) * z))  # hinge with s = 2t - 1 = ±1
    if loss == "mse":
        d = cf.softmax(z, axis=1) - t
        return cf.mean(d * d)
    if loss == "cross_entropy":
        return cf.mean(-cf.sum(t * cf.log_softmax(z, axis=1), axis=1))
    correct = cf.sum(z * t, axis=1, keepdims=True)
    return cf.mean(cf.sum(cf.relu(z - correct + 1.0) * (1.0 - t), axis=1))  # multi-class hinge (CS231n)


def shown_output(z: np.ndarray, task: str, loss: str, classes: int) -> np.ndarray:
    """What the page shows for scores z: class probabilities (n, classes), or y (n, 1) for regression."""
    if task == "regression":
        return z
    if classes == 2:
        p = 1.0 / (1.0 + np.exp(-np.clip(z[:, :1], -60, 60)))
        return np.concatenate([1.0 - p, p], axis=1)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def predicted_class(z: np.ndarray, classes: int) -> np.ndarray:
    return (z[:, 0] > 0).astype(np.int64) if classes == 2 else z.argmax(axis=1)


def make_model(sizes: list[int], activation: str, seed: int) -> MLP:
    return MLP(sizes, activation=activation, output_activation=None, rng=np.random.default_rng(seed))


def make_optimizer(model: MLP, name: str, lr: float) -> Any:
    params = list(model.parameters())
    if name == "adam":
        return Adam(params, lr=lr)
    return SGD(params, lr=lr, momentum=0.9 if name == "momentum" else 0.0)


def hidden_forward(model: MLP, x: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Every hidden layer's activations and the output scores for a batch, under ``no_grad``."""
    hidden: list[np.ndarray] = []
    with no_grad(), np.errstate(all="ignore"):  # a diverged run shows null/0, it does not warn per frame
        a = Tensor(x)
        *layers, last = model.layers
        for layer, act in zip(layers, model.activations):
            a = act(layer(a))
            hidden.append(a.data)
        z = last(a).data
    return hidden, z


# ------------------------------------------------------------------ encodings for the page
def sig(a: Any, digits: int = 5) -> Any:
    """Round to ``digits`` significant digits, as nested lists (display numbers)."""
    a = np.asarray(a, dtype=np.float64)
    with np.errstate(all="ignore"):
        mag = np.floor(np.log10(np.abs(a)))
        mag = np.where(np.isfinite(mag), mag, 0.0)
        scale = 10.0 ** (digits - 1 - mag)
        out = np.round(a * scale) / scale
    if np.isfinite(out).all():
        return out.tolist()
    # NOTE: JSON has no NaN/inf: a value that overflowed (a diverging run) is sent as null
    return np.where(np.isfinite(out), out, None).tolist()


def sig1(x: float, digits: int = 5) -> float | None:
    return float(f"{x:.{digits}g}") if np.isfinite(x) else None


def grid_cells(domain: list[float], rows: int, cols: int) -> np.ndarray:
    """Cell centres, row 0 at the top (y max), as (rows * cols, 2) row-major."""
    x0, x1, y0, y1 = domain
    xs = x0 + (np.arange(cols) + 0.5) * (x1 - x0) / cols
    ys = y1 - (np.arange(rows) + 0.5) * (y1 - y0) / rows
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def encode_grid(values: np.ndarray, rows: int, cols: int, lo: float | None = None, hi: float | None = None) -> dict:
    """One grid as ``{"shape", "lo", "hi", "data"}``: base64 of one byte a cell (PROTOCOL.md, "View")."""
    v = np.asarray(values, dtype=np.float64).reshape(rows * cols)
    v = np.where(np.isfinite(v), v, 0.0)
    lo = float(v.min()) if lo is None else lo
    hi = float(v.max()) if hi is None else hi
    if hi > lo:
        q = np.clip(np.rint((v - lo) * (255.0 / (hi - lo))), 0, 255).astype(np.uint8)
    else:
        q = np.zeros(v.shape, dtype=np.uint8)
    return {"shape": [rows, cols], "lo": sig1(lo), "hi": sig1(hi), "data": base64.b64encode(q.tobytes()).decode()}


def decode_grid(grid: dict) -> np.ndarray:
    """The values of an encoded grid (to 1/255 of its range), shape (rows, cols)."""
    rows, cols = grid["shape"]
    q = np.frombuffer(base64.b64decode(grid["data"]), dtype=np.uint8).astype(np.float64)
    return (grid["lo"] + (grid["hi"] - grid["lo"]) * q / 255.0).reshape(rows, cols)


__all__ = ["data_loss", "decode_grid", "encode_grid", "features", "make_model", "targets"]
