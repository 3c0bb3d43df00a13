"""Training: the ``fit`` loop, ``evaluate`` and ``predict``, callbacks and history, losses and metrics by name.

* ``loop``: ``fit``, ``evaluate``, ``predict``, ``param_groups``;
* ``callbacks``: ``History``, ``Callback``, ``EarlyStopping``, ``LambdaCallback``, the progress display;
* ``objectives``: losses and metrics given by name (``"cross_entropy"``, ``"accuracy"``).

``chainrule.fit`` is ``chainrule.train.fit``.
"""

from chainrule.train.callbacks import (
    Callback,
    EarlyStopping,
    FitState,
    History,
    LambdaCallback,
    format_logs,
    progress_enabled,
)
from chainrule.train.loop import evaluate, fit, param_groups, predict
from chainrule.train.objectives import accuracy, resolve_loss, resolve_metrics

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
