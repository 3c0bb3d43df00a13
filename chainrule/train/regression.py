"""Linear and logistic regression trained by full-batch gradient descent, with the engine's gradients.

Both minimise a mean loss over m examples with the lecture's update, in which x_i carries a constant 1
for the bias (the bias is the weight of that feature)::

    linear:    J(W) = 1/(2m) sum_i (W x_i - y_i)^2               W := W - alpha (1/m) sum_i (W x_i - y_i) x_i
    logistic:  J(W) = 1/m sum_i -[y_i ln s_i + (1 - y_i) ln(1 - s_i)], s_i = sigmoid(W x_i)
                                                                 W := W - alpha (1/m) sum_i (s_i - y_i) x_i

The gradient is not written out here: each step builds J with chainrule ops and calls ``loss.backward()``,
and tests/test_constructions.py checks that the step equals the formula above.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule import functional
from chainrule.autograd.grad_mode import no_grad
from chainrule.autograd.tensor import Tensor


@dataclass
class RegressionResult:
    """The fitted model and how the descent went.

    ``weight``: (n,) for a 1-D target, (k, n) for k targets (linear only); ``bias``: a float or (k,);
    ``history``: J before each step, then J at the end (``epochs + 1`` values); ``epochs``: steps taken;
    ``converged``: the largest gradient entry fell to ``tol`` (always False without ``tol``).
    """

    kind: str
    weight: np.ndarray
    bias: Any
    history: list[float] = field(default_factory=list)
    epochs: int = 0
    converged: bool = False

    def predict(self, X: Any) -> np.ndarray:
        """linear: X w + b; logistic: the probability sigmoid(X w + b) that y = 1."""
        X = np.asarray(X, dtype=self.weight.dtype)
        z = X @ self.weight.T + self.bias
        return z if self.kind == "linear" else 1.0 / (1.0 + np.exp(-z))


def linear_regression_gd(
    X: Any,
    y: Any,
    lr: float = 0.1,
    epochs: int = 1000,
    *,
    tol: float | None = None,
    init: tuple[Any, Any] | None = None,
    dtype: Any = np.float64,
) -> RegressionResult:
    """Least squares by gradient descent: W := W - lr (1/m) sum_i (W x_i - y_i) x_i, ``epochs`` times.

    ``X``: (m, n); ``y``: (m,) or (m, k). ``init``: (weight, bias) to start from (default zeros);
    ``tol``: stop once every gradient entry is at most ``tol`` in absolute value. float64 by default,
    so the result can be compared with the closed-form least-squares solution.
    """
    return _descend("linear", X, y, lr, epochs, tol, init, dtype)


def logistic_regression_gd(
    X: Any,
    y: Any,
    lr: float = 0.1,
    epochs: int = 1000,
    *,
    tol: float | None = None,
    init: tuple[Any, Any] | None = None,
    dtype: Any = np.float64,
) -> RegressionResult:
    """Logistic regression (labels 0/1) by gradient descent on the mean cross-entropy, no penalty.

    W := W - lr (1/m) sum_i (sigmoid(W x_i) - y_i) x_i. ``X``: (m, n); ``y``: (m,) of 0/1. On linearly
    separable data the minimum is at infinity and the weights grow without bound.
    """
    return _descend("logistic", X, y, lr, epochs, tol, init, dtype)


def _descend(
    kind: str, X: Any, y: Any, lr: float, epochs: int, tol: float | None, init: Any, dtype: Any
) -> RegressionResult:
    what = f"{kind}_regression_gd"
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"{what}: dtype must be a floating type, got {dt}")
    X = np.asarray(X.data if isinstance(X, Tensor) else X)
    y = np.asarray(y.data if isinstance(y, Tensor) else y)
    if X.ndim != 2 or X.shape[0] == 0 or X.dtype.kind not in "biuf":
        raise ValueError(f"{what}: X must be a numeric array of shape (m, n) with m >= 1, got shape {X.shape}")
    m, n = X.shape
    flat = y.ndim == 1
    if kind == "logistic" and not flat:
        raise ValueError(f"{what}: y must have shape ({m},) (one 0/1 label per row of X), got {y.shape}")
    if y.ndim not in (1, 2) or y.shape[0] != m or y.dtype.kind not in "biuf":
        raise ValueError(f"{what}: y must be numeric of shape ({m},) or ({m}, k) to match X, got shape {y.shape}")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise ValueError(f"{what}: X and y must be finite")
    if kind == "logistic" and not np.all(np.isin(y, (0, 1))):
        raise ValueError(f"{what}: labels must be 0 or 1, got {y[~np.isin(y, (0, 1))][0]!r}")
    if not (isinstance(lr, (int, float, np.floating)) and np.isfinite(lr) and lr > 0):
        raise ValueError(f"{what}: lr must be a finite number > 0, got {lr!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"{what}: epochs must be an integer >= 0, got {epochs!r}")
    if tol is not None and not (np.isfinite(tol) and tol >= 0):
        raise ValueError(f"{what}: tol must be a finite number >= 0 or None, got {tol!r}")
    Y = y.reshape(m, -1).astype(dt)
    k = Y.shape[1]
    # The bias is the weight of a constant feature x_0 = 1 (the lecture's W x_i), the first column of W.
    inputs = Tensor(np.concatenate([np.ones((m, 1)), X], axis=1).astype(dt))
    W = Tensor(_initial(init, k, n, flat, dt, what), requires_grad=True)
    targets = Tensor(Y)
    history: list[float] = []
    converged, step = False, 0
    for step in range(epochs + 1):
        z = functional.matmul(inputs, W.T)  # (m, k): row i is W x_i
        if kind == "linear":
            loss = ((z - targets) ** 2).sum() / (2 * m)
        else:
            # NOTE: softplus(z) - y z is -[y ln s + (1 - y) ln(1 - s)], stable for any z
            loss = (functional.softplus(z) - targets * z).sum() / m
        history.append(float(loss.item()))
        if step == epochs:
            break
        W.grad = None
        loss.backward()
        if tol is not None and np.max(np.abs(W.grad.data)) <= tol:
            converged = True
            break
        with no_grad():
            W -= lr * W.grad
    weight, bias = W.data[:, 1:].copy(), W.data[:, 0].copy()
    if flat:
        weight, bias = weight[0], float(bias[0])
    return RegressionResult(kind, weight, bias, history, step, converged)


def _initial(init: Any, k: int, n: int, flat: bool, dt: np.dtype, what: str) -> np.ndarray:
    if init is None:
        return np.zeros((k, n + 1), dtype=dt)
    try:
        weight, bias = init
    except (TypeError, ValueError):
        raise ValueError(f"{what}: init must be a (weight, bias) pair, got {init!r}") from None
    want = (n,) if flat else (k, n)
    if np.shape(weight) != want:
        raise ValueError(f"{what}: init weight must have shape {want}, got {np.shape(weight)}")
    weight = np.asarray(weight, dtype=dt).reshape(k, n)
    bias = np.asarray(bias, dtype=dt).reshape(-1)
    if bias.size != k:
        raise ValueError(f"{what}: init bias must have {k} value(s), got {bias.size}")
    return np.concatenate([bias[:, None], weight], axis=1)


__all__ = ["RegressionResult", "linear_regression_gd", "logistic_regression_gd"]
