"""Losses and metrics by name, as ``fit`` and ``evaluate`` take them.

    loss_fn, name, threshold = resolve_loss("bce_with_logits")   # threshold 0.0: raw scores
    resolve_metrics(("accuracy", "mse"), threshold, y)           # {"accuracy": fn, "mse": fn}

A loss is a callable(outputs, targets) -> scalar Tensor; a metric is a callable(outputs,
targets) -> float on ndarrays. The decision threshold of a loss is where one output unit
splits class 0 from class 1: 0.5 on probabilities, 0 on raw scores.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from chainrule import functional
from chainrule.autograd.tensor import Tensor
from chainrule.data.loader import as_array
from chainrule.nn import functional as F

LossLike = str | Callable[[Tensor, Any], Tensor]
MetricFn = Callable[[np.ndarray, np.ndarray], float]


# ===================================================================== losses by name
def _float_targets(outputs: Tensor, targets: Any, one_hot: bool) -> np.ndarray:
    """Targets as a float array of the outputs' shape: (N,) -> (N, 1), class labels -> one-hot."""
    t = as_array(targets, "targets")
    if one_hot and t.ndim == 1 and outputs.ndim == 2 and outputs.shape[1] > 1 and t.dtype.kind in "iub":
        eye = np.zeros(outputs.shape, dtype=outputs.dtype)
        eye[np.arange(len(t)), t] = 1
        return eye
    if t.shape != outputs.shape and t.size == outputs.data.size:
        t = t.reshape(outputs.shape)
    return t.astype(outputs.dtype, copy=False)


def _binary_hinge(scores: Tensor, targets: Any) -> Tensor:
    """mean(max(0, 1 - t s)) with labels t in {-1, +1} (0/1 labels are mapped to -1/+1)."""
    t = _float_targets(scores, targets, one_hot=False)
    if np.all((t == 0) | (t == 1)):
        t = 2 * t - 1
    return functional.mean(functional.relu(1.0 - scores * t))


def _hinge(out: Tensor, t: Any) -> Tensor:
    return F.multi_margin_loss(out, t) if out.ndim == 2 and out.shape[1] > 1 else _binary_hinge(out, t)


class Loss(NamedTuple):
    """A loss known by name: the function, and what a model trained with it needs at its output."""

    fn: Callable[[Tensor, Any], Tensor]
    #: where one output unit splits class 0 from class 1: 0.5 on probabilities, 0 on raw scores
    threshold: float
    #: one output unit for two classes (the binary losses), else one per class
    one_output: bool = False
    #: the output activation the loss expects (None: raw scores)
    output_activation: str | None = None


#: Losses by name (``fit``, ``evaluate``, the command line's ``--loss``).
LOSSES: dict[str, Loss] = {
    "cross_entropy": Loss(F.cross_entropy, 0.0),
    "nll": Loss(F.nll_loss, 0.0, output_activation="log_softmax"),
    "mse": Loss(lambda out, t: F.mse_loss(out, _float_targets(out, t, one_hot=True)), 0.5),
    "bce": Loss(
        lambda out, t: F.binary_cross_entropy(out, _float_targets(out, t, one_hot=False)),
        0.5,
        one_output=True,
        output_activation="sigmoid",
    ),
    "bce_with_logits": Loss(
        lambda out, t: F.binary_cross_entropy_with_logits(out, _float_targets(out, t, one_hot=False)),
        0.0,
        one_output=True,
    ),
    "hinge": Loss(_hinge, 0.0),
}

#: Other spellings ``resolve_loss`` accepts.
LOSS_ALIASES = {
    "ce": "cross_entropy",
    "crossentropy": "cross_entropy",
    "nll_loss": "nll",
    "mse_loss": "mse",
    "binary_cross_entropy": "bce",
    "binary_cross_entropy_with_logits": "bce_with_logits",
    "svm": "hinge",
    "multi_margin": "hinge",
}


def resolve_loss(loss: LossLike) -> tuple[Callable[[Tensor, Any], Tensor], str, float]:
    """(loss function, name, decision threshold for one-output accuracy) of a loss given by name or callable.

    Names: "cross_entropy" (softmax CE on logits, integer labels), "nll" (on log-probabilities),
    "mse" (integer labels become one-hot when there are several outputs), "bce" (binary CE
    on probabilities, i.e. after a sigmoid), "bce_with_logits", "hinge" (multi-class SVM
    loss, or mean(max(0, 1 - t s)) for one output). The threshold is 0.5 for losses on
    probabilities and 0 for losses on raw scores.
    """
    if callable(loss):
        return loss, getattr(loss, "__name__", type(loss).__name__), 0.5
    if not isinstance(loss, str):
        raise TypeError(f"loss must be a name or a callable(outputs, targets) -> Tensor, got {type(loss).__name__}")
    key = loss.lower().replace("-", "_")
    key = LOSS_ALIASES.get(key, key)
    if key not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)} or pass a callable")
    entry = LOSSES[key]
    return entry.fn, key, entry.threshold


# ===================================================================== metrics
def accuracy(outputs: Any, targets: Any, threshold: float = 0.5) -> float:
    """Fraction of correct predictions: argmax over several outputs, ``output > threshold`` for one."""
    out, t = as_array(outputs), as_array(targets)
    if out.ndim == 2 and out.shape[1] > 1:
        pred = out.argmax(axis=1)
        truth = t.argmax(axis=1) if t.ndim == 2 and t.shape == out.shape else t.reshape(-1)
    else:
        pred = (out.reshape(-1) > threshold).astype(np.int64)
        truth = t.reshape(-1)
        if truth.dtype.kind == "f" or np.any(truth < 0):
            # Real-valued 0/1 targets, or -1/+1 labels: class 1 is the upper half.
            truth = (truth > (0.0 if np.any(truth < 0) else 0.5)).astype(np.int64)
    return float(np.mean(pred == truth)) if len(truth) else float("nan")


def _mse(outputs: np.ndarray, targets: np.ndarray) -> float:
    return float(np.mean((outputs - targets.reshape(outputs.shape)) ** 2))


def _mae(outputs: np.ndarray, targets: np.ndarray) -> float:
    return float(np.mean(np.abs(outputs - targets.reshape(outputs.shape))))


def _is_labels(y: np.ndarray) -> bool:
    return y.dtype.kind in "iub" or bool(np.all((y == 0) | (y == 1)))


def resolve_metrics(
    metrics: Sequence[str | MetricFn] | Mapping[str, MetricFn], threshold: float, y: np.ndarray | None = None
) -> dict[str, MetricFn]:
    """Metric names ("accuracy", "mse", "mae") or callables(outputs, targets) -> float, as a name -> function map.

    "accuracy" is left out when the targets ``y`` are real-valued (a regression problem).
    """
    if isinstance(metrics, Mapping):
        return dict(metrics)
    if isinstance(metrics, str):
        metrics = (metrics,)
    out: dict[str, MetricFn] = {}
    for m in metrics:
        if callable(m):
            out[getattr(m, "__name__", f"metric{len(out)}")] = m
        elif m in ("accuracy", "acc"):
            if y is None or _is_labels(y):
                out["accuracy"] = lambda o, t: accuracy(o, t, threshold)
        elif m in ("mse", "mae"):
            out[m] = _mse if m == "mse" else _mae
        else:
            raise ValueError(f"unknown metric {m!r}; use 'accuracy', 'mse', 'mae' or a callable(outputs, targets)")
    return out


__all__ = ["LOSSES", "LOSS_ALIASES", "Loss", "LossLike", "MetricFn", "accuracy", "resolve_loss", "resolve_metrics"]
