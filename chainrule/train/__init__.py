"""Training: the ``fit`` loop, ``evaluate`` and ``predict``, callbacks and history, losses and metrics by name.

* ``loop``: ``fit``, ``evaluate``, ``predict``, ``param_groups``;
* ``callbacks``: ``History``, ``Callback``, ``EarlyStopping``, ``LambdaCallback``, the progress display;
* ``objectives``: losses and metrics given by name (``"cross_entropy"``, ``"accuracy"``);
* ``regression``: ``linear_regression_gd``, ``logistic_regression_gd`` (the lecture's gradient descent);
* ``diagnostics``: ``Diagnostics``, a callback recording gradient, weight, update and activation statistics.

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
from chainrule.train.diagnostics import Diagnostics
from chainrule.train.loop import evaluate, fit, param_groups, predict
from chainrule.train.objectives import accuracy, resolve_loss, resolve_metrics
from chainrule.train.regression import RegressionResult, linear_regression_gd, logistic_regression_gd

__all__ = [
    "Callback",
    "Diagnostics",
    "EarlyStopping",
    "FitState",
    "History",
    "LambdaCallback",
    "RegressionResult",
    "accuracy",
    "evaluate",
    "fit",
    "format_logs",
    "linear_regression_gd",
    "logistic_regression_gd",
    "param_groups",
    "predict",
    "progress_enabled",
    "resolve_loss",
    "resolve_metrics",
]
