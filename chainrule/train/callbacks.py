"""What the fit loop reports to: ``History``, callbacks (``EarlyStopping``, ``LambdaCallback``) and progress.

    class PrintLR(Callback):
        def on_epoch_end(self, state: FitState) -> None:
            print(state.epoch, state.logs["lr"])

``fit`` calls each hook of each callback with the one ``FitState`` it updates as it goes;
a callback ends training by setting ``state.stop_training = True``.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


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


def progress_bar(enabled: bool, epochs: int) -> Any:
    """A tqdm bar over ``epochs`` on stderr, or None when ``enabled`` is false."""
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


__all__ = [
    "Callback",
    "EarlyStopping",
    "FitState",
    "History",
    "LambdaCallback",
    "format_logs",
    "progress_bar",
    "progress_enabled",
]
