"""The training loop: ``fit``, ``evaluate``, ``predict``, ``History`` and callbacks.

    model = nn.MLP([64, 64, 10])
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    history = chainrule.fit(model, "cross_entropy", opt, (X_train, y_train), epochs=30,
                            batch_size=64, validation=(X_val, y_val))
    history.val_accuracy[-1]

One epoch = one pass over the shuffled training set in minibatches: forward, loss,
``zero_grad``, ``backward``, ``step``. The reported ``loss`` and ``accuracy`` of an epoch
are averages over its minibatches, measured as they were trained on (as Keras and most
PyTorch loops report); ``val_*`` values are measured after the epoch, in eval mode.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.data.loader import DataLoader, as_array
from chainrule.grad_mode import no_grad
from chainrule.tensor import Tensor

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
    from chainrule import functional as F

    t = _float_targets(scores, targets, one_hot=False)
    if np.all((t == 0) | (t == 1)):
        t = 2 * t - 1
    return F.mean(F.relu(1.0 - scores * t))


def resolve_loss(loss: LossLike) -> tuple[Callable[[Tensor, Any], Tensor], str, float]:
    """(loss function, name, decision threshold for one-output accuracy) of a loss given by name or callable.

    Names: "cross_entropy" (softmax CE on logits, integer labels), "nll" (on log-probabilities),
    "mse" (integer labels become one-hot when there are several outputs), "bce" (binary CE
    on probabilities, i.e. after a sigmoid), "bce_with_logits", "hinge" (multi-class SVM
    loss, or mean(max(0, 1 - t s)) for one output). The threshold is 0.5 for losses on
    probabilities and 0 for losses on raw scores.
    """
    from chainrule.nn import functional as NF

    if callable(loss):
        return loss, getattr(loss, "__name__", type(loss).__name__), 0.5
    if not isinstance(loss, str):
        raise TypeError(f"loss must be a name or a callable(outputs, targets) -> Tensor, got {type(loss).__name__}")
    key = loss.lower().replace("-", "_")

    def hinge(out: Tensor, t: Any) -> Tensor:
        return NF.multi_margin_loss(out, t) if out.ndim == 2 and out.shape[1] > 1 else _binary_hinge(out, t)

    table: dict[str, tuple[Callable[[Tensor, Any], Tensor], float]] = {
        "cross_entropy": (NF.cross_entropy, 0.0),
        "nll": (NF.nll_loss, 0.0),
        "mse": (lambda out, t: NF.mse_loss(out, _float_targets(out, t, one_hot=True)), 0.5),
        "bce": (lambda out, t: NF.binary_cross_entropy(out, _float_targets(out, t, one_hot=False)), 0.5),
        "bce_with_logits": (
            lambda out, t: NF.binary_cross_entropy_with_logits(out, _float_targets(out, t, one_hot=False)),
            0.0,
        ),
        "hinge": (hinge, 0.0),
    }
    aliases = {
        "ce": "cross_entropy",
        "crossentropy": "cross_entropy",
        "nll_loss": "nll",
        "mse_loss": "mse",
        "binary_cross_entropy": "bce",
        "binary_cross_entropy_with_logits": "bce_with_logits",
        "svm": "hinge",
        "multi_margin": "hinge",
    }
    key = aliases.get(key, key)
    if key not in table:
        raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(table)} or pass a callable")
    fn, threshold = table[key]
    return fn, key, threshold


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


# ===================================================================== history and callbacks
class History:
    """Per-epoch records: ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``, ``time`` (seconds), ``lr``, ...

    ``history["loss"]`` and ``history.loss`` are the same list; ``to_dict()`` gives them all.
    ``stopped_epoch`` is set when a callback stopped training early.
    """

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epochs: list[int] = []
        self.stopped_epoch: int | None = None

    def record(self, epoch: int, logs: Mapping[str, float]) -> None:
        self.epochs.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, [math.nan] * (len(self.epochs) - 1)).append(float(value))

    def __getitem__(self, key: str) -> list[float]:
        return self.history[key]

    def __getattr__(self, key: str) -> list[float]:
        if key.startswith("_") or key in ("history", "epochs", "stopped_epoch"):
            raise AttributeError(key)
        if key in ("loss", "accuracy", "val_loss", "val_accuracy", "time", "lr"):
            return self.__dict__["history"].get(key, [])
        try:
            return self.__dict__["history"][key]
        except KeyError:
            raise AttributeError(f"History has no record {key!r}; it has {sorted(self.history)}") from None

    def __len__(self) -> int:
        return len(self.epochs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "epochs": list(self.epochs),
            **{k: list(v) for k, v in self.history.items()},
            "stopped_epoch": self.stopped_epoch,
        }

    def __repr__(self) -> str:
        last = ", ".join(f"{k}={v[-1]:.4g}" for k, v in self.history.items() if v and k != "time")
        return f"History({len(self)} epochs{': ' + last if last else ''})"


@dataclass
class FitState:
    """What callbacks see: the model, optimizer, history, the current epoch (1-based) and its logs.

    Set ``stop_training = True`` to end training after the current epoch.
    """

    model: Any
    optimizer: Any
    history: History
    epochs: int
    epoch: int = 0
    batch: int = 0
    logs: dict[str, float] = field(default_factory=dict)
    stop_training: bool = False


class Callback:
    """Base class: override any of the hooks; each receives the ``FitState``."""

    def on_train_begin(self, state: FitState) -> None: ...

    def on_epoch_begin(self, state: FitState) -> None: ...

    def on_batch_end(self, state: FitState) -> None: ...

    def on_epoch_end(self, state: FitState) -> None: ...

    def on_train_end(self, state: FitState) -> None: ...


class LambdaCallback(Callback):
    """A callback from plain functions: ``LambdaCallback(on_epoch_end=lambda state: ...)``."""

    def __init__(self, **hooks: Callable[[FitState], None]) -> None:
        for name, fn in hooks.items():
            if not hasattr(Callback, name):
                raise TypeError(f"LambdaCallback: unknown hook {name!r}")
            setattr(self, name, fn)


def _snapshot(model: Any) -> Any:
    if hasattr(model, "state_dict"):
        return model.state_dict()
    return [p.data.copy() for p in model.parameters()]


def _restore(model: Any, snapshot: Any) -> None:
    if hasattr(model, "load_state_dict"):
        model.load_state_dict(snapshot)
    else:
        for p, saved in zip(model.parameters(), snapshot):
            p.data[...] = saved


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    ``mode``: "min", "max", or "auto" (max for names containing "acc", else min).
    ``restore_best=True`` puts back the weights of the best epoch when training ends.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 5,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best: bool = True,
    ) -> None:
        if patience < 0:
            raise ValueError(f"EarlyStopping: patience must be >= 0, got {patience}")
        if min_delta < 0:
            raise ValueError(f"EarlyStopping: min_delta must be >= 0, got {min_delta}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'auto', 'min' or 'max', got {mode!r}")
        self.monitor, self.patience, self.min_delta, self.restore_best = monitor, patience, min_delta, restore_best
        self.mode = ("max" if "acc" in monitor else "min") if mode == "auto" else mode

    def on_train_begin(self, state: FitState) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch: int | None = None
        self.wait = 0
        self.best_weights = None

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, state: FitState) -> None:
        if self.monitor not in state.logs:
            raise KeyError(
                f"EarlyStopping: monitored value {self.monitor!r} is not logged; available: {sorted(state.logs)} "
                "(val_* values need fit(..., validation=(X_val, y_val)))"
            )
        value = state.logs[self.monitor]
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, state.epoch, 0
            if self.restore_best:
                self.best_weights = _snapshot(state.model)
        else:
            self.wait += 1
            if self.wait > self.patience:
                state.stop_training = True
                state.history.stopped_epoch = state.epoch

    def on_train_end(self, state: FitState) -> None:
        if self.restore_best and self.best_weights is not None and self.best_epoch != state.epoch:
            _restore(state.model, self.best_weights)


# ===================================================================== progress
def progress_enabled(progress: bool | None) -> bool:
    """Whether to draw a progress bar: ``progress`` if given, else only on an interactive stderr outside CI."""
    if progress is not None:
        return bool(progress)
    if os.environ.get("CI"):
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _progress_bar(enabled: bool, epochs: int) -> Any:
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise ImportError("fit(progress=True) needs tqdm: pip install tqdm (or pass progress=False)") from None
    return tqdm(total=epochs, desc="training", unit="epoch", file=sys.stderr, dynamic_ncols=True, leave=True)


def format_logs(epoch: int, epochs: int, logs: Mapping[str, float]) -> str:
    """One line per epoch: ``epoch  3/30  loss 0.1234  accuracy 0.9650  ...  0.12 s``."""
    width = len(str(epochs))
    parts = [f"epoch {epoch:>{width}}/{epochs}"]
    for key, value in logs.items():
        if key in ("time", "lr"):
            continue
        parts.append(f"{key} {value:.4f}")
    parts.append(f"{logs.get('time', 0.0):.2f} s")
    return "  ".join(parts)


# ===================================================================== fit / evaluate / predict
def _split_data(data: Any) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(data, "X") and hasattr(data, "y"):
        return as_array(data.X, "X"), as_array(data.y, "y")
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return as_array(data[0], "X"), as_array(data[1], "y")
    raise TypeError(f"data must be an (X, y) pair, a DataLoader or a Dataset, got {type(data).__name__}")


def _param_dtype(model: Any) -> np.dtype | None:
    params = getattr(model, "parameters", None)
    if params is None:
        return None
    for p in params():
        if p.dtype.kind == "f":
            return p.dtype
    return None


def _features(X: np.ndarray, dtype: np.dtype | None) -> np.ndarray:
    # NOTE: float64 data fed to a float32 model would make every product float64 (slow, and a
    # different result); features are converted to the parameters' dtype once, up front.
    return X.astype(dtype) if dtype is not None and X.dtype.kind == "f" and X.dtype != dtype else X


class _Mode:
    """Switch a module to eval (or train) mode and put the previous mode back afterwards."""

    def __init__(self, model: Any, training: bool) -> None:
        self.model, self.training = model, training

    def __enter__(self) -> None:
        self.previous = getattr(self.model, "training", None)
        if hasattr(self.model, "train"):
            self.model.train(self.training)

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            self.model.train(self.previous)


def predict(model: Any, X: Any, batch_size: int | None = 1024) -> np.ndarray:
    """The model's outputs on ``X`` as an ndarray, computed under ``no_grad`` in eval mode."""
    X = _features(as_array(X, "X"), _param_dtype(model))
    n = len(X)
    step = n if batch_size is None else max(1, int(batch_size))
    outs = []
    with no_grad(), _Mode(model, False):
        for start in range(0, n, step):
            out = model(Tensor(X[start : start + step]))
            outs.append(as_array(out))
    return np.concatenate(outs) if outs else np.empty((0,))


def evaluate(
    model: Any,
    X: Any,
    y: Any,
    loss: LossLike | None = None,
    metrics: Sequence[str | MetricFn] | Mapping[str, MetricFn] = ("accuracy",),
    batch_size: int | None = 1024,
) -> dict[str, float]:
    """Loss (if ``loss`` is given) and metrics of ``model`` on ``(X, y)``, in eval mode without a graph."""
    y = as_array(y, "y")
    outputs = predict(model, X, batch_size)
    threshold = 0.5
    result: dict[str, float] = {}
    if loss is not None:
        loss_fn, _, threshold = resolve_loss(loss)
        with no_grad():
            result["loss"] = float(as_array(loss_fn(Tensor(outputs), Tensor(y))))
    for name, fn in resolve_metrics(metrics, threshold, y).items():
        result[name] = float(fn(outputs, y))
    return result


def fit(
    model: Any,
    loss: LossLike,
    optimizer: Any,
    data: Any,
    epochs: int = 10,
    batch_size: int | None = 32,
    validation: tuple[Any, Any] | None = None,
    metrics: Sequence[str | MetricFn] | Mapping[str, MetricFn] = ("accuracy",),
    callbacks: Iterable[Callback | Callable[[FitState], None]] = (),
    shuffle: bool = True,
    seed: int | None = 0,
    progress: bool | None = None,
    verbose: bool = False,
    scheduler: Any = None,
) -> History:
    """Train ``model`` for ``epochs`` passes over ``data`` and return the ``History``.

    * ``loss``: a name ("cross_entropy", "mse", "bce", "bce_with_logits", "hinge", "nll") or a
      callable(outputs, targets) -> scalar Tensor (which may add a weight penalty).
    * ``data``: an ``(X, y)`` pair of arrays, a ``Dataset``, or a ready ``DataLoader`` (then
      ``batch_size``, ``shuffle`` and ``seed`` are the loader's). ``batch_size=None`` is
      full-batch gradient descent. Floating features are converted to the model's dtype.
    * ``validation``: ``(X_val, y_val)``, evaluated after every epoch (``val_loss``, ``val_*``).
    * ``metrics``: names ("accuracy", "mse", "mae") or callables(outputs, targets) -> float, on
      ndarrays; "accuracy" is skipped for real-valued targets.
    * ``callbacks``: ``Callback`` objects (e.g. ``EarlyStopping``) or functions called with the
      ``FitState`` after each epoch. ``scheduler``: stepped once after each epoch.
    * ``seed`` fixes the shuffling: with a seeded model initialization, two runs give
      bit-for-bit identical weights.
    * ``progress``: a tqdm bar on stderr showing epoch, loss and accuracy (None = only when
      stderr is a terminal and the CI variable is unset). ``verbose``: print a line per epoch.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"fit: epochs must be a non-negative integer, got {epochs!r}")
    loss_fn, _, threshold = resolve_loss(loss)
    dtype = _param_dtype(model)
    if isinstance(data, DataLoader):
        loader, y_all = data, data.y
        if loader.X.dtype.kind == "f" and dtype is not None and loader.X.dtype != dtype:
            # A converted copy that shares the loader's generator (the caller's loader is left as it is).
            loader = DataLoader(
                _features(data.X, dtype), data.y, data.batch_size, data.shuffle, data.drop_last, data.rng
            )
    else:
        X, y_all = _split_data(data)
        # NOTE: one full batch is not shuffled: the order cannot change the update, only its rounding.
        loader = DataLoader(
            _features(X, dtype), y_all, batch_size=batch_size, shuffle=shuffle and batch_size is not None, seed=seed
        )
    metric_fns = resolve_metrics(metrics, threshold, y_all)
    if validation is not None:
        X_val, y_val = _split_data(validation)
        X_val = _features(X_val, dtype)
    hooks = [cb if isinstance(cb, Callback) else LambdaCallback(on_epoch_end=cb) for cb in callbacks]
    history = History()
    state = FitState(model, optimizer, history, int(epochs))
    bar = _progress_bar(progress_enabled(progress), int(epochs))
    say = print if bar is None else bar.write
    for cb in hooks:
        cb.on_train_begin(state)
    try:
        for epoch in range(1, int(epochs) + 1):
            state.epoch, state.logs = epoch, {}
            for cb in hooks:
                cb.on_epoch_begin(state)
            start = time.perf_counter()
            totals = dict.fromkeys(["loss", *metric_fns], 0.0)
            seen = 0
            with _Mode(model, True):
                for b, (xb, yb) in enumerate(loader):
                    out = model(xb)
                    value = loss_fn(out, yb)
                    optimizer.zero_grad()
                    value.backward()
                    optimizer.step()
                    batch_loss = float(value.data)
                    if not math.isfinite(batch_loss):
                        raise FloatingPointError(
                            f"fit: the loss became {batch_loss} at epoch {epoch}, batch {b + 1}: training diverged "
                            "(lower the learning rate, or check the data for NaN/inf)"
                        )
                    n = len(xb)
                    seen += n
                    totals["loss"] += batch_loss * n
                    for name, fn in metric_fns.items():
                        totals[name] += fn(out.data, yb.data) * n
                    state.batch = b + 1
                    for cb in hooks:
                        cb.on_batch_end(state)
            logs = {k: v / seen for k, v in totals.items()}
            if validation is not None:
                val = evaluate(model, X_val, y_val, loss=loss_fn, metrics=metric_fns)
                logs.update({f"val_{k}": v for k, v in val.items()})
            logs["time"] = time.perf_counter() - start
            groups = getattr(optimizer, "param_groups", None)
            if groups:
                logs["lr"] = float(groups[0]["lr"])
            state.logs = logs
            history.record(epoch, logs)
            if scheduler is not None:
                scheduler.step()
            for cb in hooks:
                cb.on_epoch_end(state)
            if bar is not None:
                bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items() if k not in ("time", "lr")}, refresh=False)
                bar.update(1)
            if verbose:
                say(format_logs(epoch, int(epochs), logs))
            if state.stop_training:
                break
    finally:
        if bar is not None:
            bar.close()
    for cb in hooks:
        cb.on_train_end(state)
    return history


def param_groups(model: Any, weight_decay: float) -> list[dict[str, Any]]:
    """Two optimizer groups: weight matrices with ``weight_decay``, everything else (biases, scales) without.

    Weight decay λ on a weight W is the gradient of the penalty (λ/2)‖W‖²; the lecture
    convention (λ_c / 2m)‖W‖² with m training examples is ``weight_decay = λ_c / m``.
    """
    params = list(model.parameters())
    decay = [p for p in params if p.ndim >= 2]
    rest = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}] if decay else []
    return groups + ([{"params": rest, "weight_decay": 0.0}] if rest else [])


__all__ = [
    "Callback",
    "EarlyStopping",
    "FitState",
    "History",
    "LambdaCallback",
    "accuracy",
    "evaluate",
    "fit",
    "format_logs",
    "param_groups",
    "predict",
    "progress_enabled",
    "resolve_loss",
    "resolve_metrics",
]
