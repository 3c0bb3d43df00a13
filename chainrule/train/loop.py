"""The training loop: ``fit``, ``evaluate``, ``predict`` and ``param_groups``.

    model = nn.MLP([64, 64, 10])
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    history = chainrule.fit(model, "cross_entropy", opt, (X_train, y_train), epochs=30,
                            batch_size=64, validation=(X_val, y_val))
    history.val_accuracy[-1]

One epoch = one pass over the shuffled training set in minibatches: forward, loss,
``zero_grad``, ``backward``, ``step``. The reported ``loss`` and ``accuracy`` of an epoch
are averages over its minibatches, measured as they were trained on (as Keras and most
PyTorch loops report); ``val_*`` values are measured after the epoch, in eval mode.

``History``, the callbacks and the progress display live in ``chainrule.train.callbacks``, losses
and metrics by name in ``chainrule.train.objectives``; ``chainrule.train`` exports them all.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from chainrule.autograd.grad_mode import no_grad
from chainrule.autograd.tensor import Tensor
from chainrule.data.loader import DataLoader, as_array
from chainrule.train.callbacks import (
    Callback,
    FitState,
    History,
    LambdaCallback,
    format_logs,
    progress_bar,
    progress_enabled,
)
from chainrule.train.objectives import LossLike, MetricFn, resolve_loss, resolve_metrics


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


def _features(X: Any, dtype: np.dtype | None) -> Any:
    # NOTE: float64 data fed to a float32 model would make every product float64 (slow, and a
    # different result); features are converted to the parameters' dtype once, up front.
    if X is None or dtype is None or X.dtype.kind != "f" or X.dtype == dtype:
        return X
    return X.astype(dtype)


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
    compile: bool = False,
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
    * ``compile``: capture the forward pass and loss once with ``chainrule.compile`` and replay
      it on every batch (faster for small networks, bit-for-bit the same weights). Refused
      for models with modules that are not capturable in training mode (Dropout, BatchNorm1d).
    """
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"fit: epochs must be a non-negative integer, got {epochs!r}")
    loss_fn, _, threshold = resolve_loss(loss)
    dtype = _param_dtype(model)
    if isinstance(data, DataLoader):
        loader, y_all = data, data.y
        if _features(loader.X, dtype) is not loader.X or _features(loader.y, dtype) is not loader.y:
            # A converted copy that shares the loader's generator (the caller's loader is left as it is).
            loader = DataLoader(
                _features(data.X, dtype),
                _features(data.y, dtype),
                data.batch_size,
                data.shuffle,
                data.drop_last,
                data.rng,
            )
    else:
        X, y_all = _split_data(data)
        # NOTE: one full batch is not shuffled: the order cannot change the update, only its rounding.
        # NOTE: real-valued targets too: the losses would convert them to the outputs' dtype anyway.
        loader = DataLoader(
            _features(X, dtype),
            _features(y_all, dtype),
            batch_size=batch_size,
            shuffle=shuffle and batch_size is not None,
            seed=seed,
        )
    metric_fns = resolve_metrics(metrics, threshold, y_all)
    if validation is not None:
        X_val, y_val = _split_data(validation)
        X_val = _features(X_val, dtype)
    step = _compiled_step(model, loss_fn) if compile else None
    hooks = [cb if isinstance(cb, Callback) else LambdaCallback(on_epoch_end=cb) for cb in callbacks]
    history = History()
    state = FitState(model, optimizer, history, int(epochs))
    bar = progress_bar(progress_enabled(progress), int(epochs))
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
                    if step is None:
                        out = model(xb)
                        value = loss_fn(out, yb)
                    else:
                        value, out = step(xb, yb)
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
    except BaseException:
        # NOTE: callbacks end even when training fails (Diagnostics unhooks its activations,
        # EarlyStopping restores the best weights); the training error is the one raised.
        for cb in hooks:
            with contextlib.suppress(Exception):
                cb.on_train_end(state)
        raise
    finally:
        if bar is not None:
            bar.close()
    for cb in hooks:
        cb.on_train_end(state)
    return history


def _compiled_step(model: Any, loss_fn: Callable[[Tensor, Tensor], Tensor]) -> Any:
    """forward + loss captured by ``chainrule.compile``; returns (loss, outputs) per batch."""
    from chainrule.autograd.compile import compile as capture

    modules = list(model.modules()) if hasattr(model, "modules") else []
    with _Mode(model, True):
        blocked = sorted({type(m).__name__ for m in modules if not m.capturable})
    if blocked:
        raise ValueError(
            f"fit(compile=True): {', '.join(blocked)} draw random numbers or update state outside "
            "chainrule ops in training mode, which a replay cannot repeat; use compile=False"
        )

    def forward_and_loss(xb: Tensor, yb: Tensor) -> tuple[Tensor, Tensor]:
        out = model(xb)
        return loss_fn(out, yb), out

    return capture(forward_and_loss)


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


__all__ = ["evaluate", "fit", "param_groups", "predict"]
