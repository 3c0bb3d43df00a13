"""Losses: the functions (re-exported by ``nn.functional``), weight penalties, and the loss modules.

The functions are composed from chainrule ops; the modules (``MSELoss``, ``BCELoss``,
``BCEWithLogitsLoss``, ``CrossEntropyLoss``, ``NLLLoss``, ``MultiMarginLoss``) call them as
``loss_fn(prediction, target)``.

Conventions (see docs/nn.md):

* ``reduction``: "mean" (default), "sum" or "none"; ``mse_loss`` also takes "half_sum",
  E = 1/2 sum (t - o)^2, the classic backprop-lecture error.
* ``multi_margin_loss`` follows the CS231n SVM: L_i = sum_{j != y_i} max(0, s_j - s_{y_i} + delta),
  averaged over examples and NOT divided by the number of classes C. PyTorch's
  ``MultiMarginLoss`` divides each L_i by C, so ours = PyTorch's * C.
* ``l2_penalty(params, lam)`` = lam * sum W^2 over weight matrices (biases excluded);
  ``l2_penalty(params, lam, m=num_examples)`` = lam / (2 m) * sum W^2, the lecture convention.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from chainrule import functional
from chainrule.autograd.tensor import Tensor, as_tensor
from chainrule.nn.module import Module, register_module


def _target_like(target: Any, pred: Tensor, what: str) -> Tensor:
    """A float target of pred's dtype and shape (a Tensor target keeps its graph)."""
    dtype = pred.data.dtype
    if isinstance(target, Tensor):
        t = target if target.data.dtype == dtype else functional.astype(target, dtype)
    else:
        t = Tensor._wrap(np.asarray(target, dtype=dtype))
    if t.data.shape != pred.data.shape:
        raise ValueError(
            f"{what}: target of shape {t.shape} does not match input of shape {pred.shape} "
            "(reshape one of them; e.g. a (N,) target against (N, 1) predictions)"
        )
    return t


def _reduce(loss: Tensor, reduction: str, what: str, half_sum: bool = False) -> Tensor:
    if reduction == "mean":
        return functional.mean(loss)
    if reduction == "sum":
        return functional.sum(loss)
    if reduction == "none":
        return loss
    if half_sum and reduction == "half_sum":
        return 0.5 * functional.sum(loss)
    options = "'mean', 'sum', 'none'" + (" or 'half_sum'" if half_sum else "")
    raise ValueError(f"{what}: reduction must be {options}, got {reduction!r}")


# --------------------------------------------------------------------- regression
def mse_loss(pred: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Squared error (o - t)^2, reduced: "mean", "sum", "none" or "half_sum" (E = 1/2 sum (t - o)^2).

    Gradient of "half_sum" wrt o: o - t.
    """
    pred = as_tensor(pred)
    diff = pred - _target_like(target, pred, "mse_loss")
    return _reduce(diff * diff, reduction, "mse_loss", half_sum=True)


# --------------------------------------------------------------------- binary classification
def _clamped_log(p: Tensor) -> Tensor:
    """ln p with the result clamped at -100 (PyTorch's BCE rule), finite gradient everywhere.

    NOTE: p is first raised to the smallest positive value of its dtype, so ln never sees 0
    and 0 * (1/0) = NaN cannot appear in the backward pass; where the clamp is active the
    gradient is 0.
    """
    tiny = float(np.finfo(p.dtype).smallest_subnormal)
    return functional.clip(functional.log(functional.clip(p, min=tiny)), min=-100.0)


def binary_cross_entropy(probs: Any, targets: Any, weight: Any = None, reduction: str = "mean") -> Tensor:
    """-[t ln p + (1 - t) ln(1 - p)] on probabilities p in [0, 1]; each log is clamped at -100 as in PyTorch.

    Gradient wrt p (away from the clamp): (p - t) / (p (1 - p)). Prefer
    ``binary_cross_entropy_with_logits`` for numerical stability.
    """
    p = as_tensor(probs)
    if p.size and (float(p.data.min()) < 0 or float(p.data.max()) > 1):
        raise ValueError(
            "binary_cross_entropy: inputs must be probabilities in [0, 1] (apply sigmoid first, "
            "or use binary_cross_entropy_with_logits on raw scores)"
        )
    t = _target_like(targets, p, "binary_cross_entropy")
    loss = -(t * _clamped_log(p) + (1.0 - t) * _clamped_log(1.0 - p))
    if weight is not None:
        loss = loss * _weight(weight, loss)
    return _reduce(loss, reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(
    logits: Any, targets: Any, weight: Any = None, pos_weight: Any = None, reduction: str = "mean"
) -> Tensor:
    """BCE on raw scores x: softplus(x) - t x = -[t ln sigmoid(x) + (1 - t) ln(1 - sigmoid(x))].

    Stable for any x (|x| = 1e4 included): softplus is evaluated without overflow.
    Gradient wrt x: sigmoid(x) - t. With ``pos_weight`` w_p (PyTorch's):
    (1 - t) x + (1 + (w_p - 1) t) softplus(-x).
    """
    x = as_tensor(logits)
    t = _target_like(targets, x, "binary_cross_entropy_with_logits")
    if pos_weight is None:
        loss = functional.softplus(x) - t * x
    else:
        pw = _weight(pos_weight, x)
        loss = (1.0 - t) * x + (1.0 + (pw - 1.0) * t) * functional.softplus(-x)
    if weight is not None:
        loss = loss * _weight(weight, loss)
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


def _weight(w: Any, like: Tensor) -> Tensor:
    if isinstance(w, Tensor):
        return w
    return Tensor._wrap(np.asarray(w, dtype=like.dtype))


# --------------------------------------------------------------------- multi-class
def _class_indices(targets: Any, n: int, classes: int, what: str, ignore_index: int | None) -> np.ndarray:
    y = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
    if y.dtype.kind not in "iu":
        raise TypeError(
            f"{what}: class-index targets must be integers, got dtype {y.dtype} "
            "(for probability targets pass an array of the logits' shape)"
        )
    if y.shape != (n,):
        raise ValueError(f"{what}: expected {n} class indices (shape ({n},)), got shape {y.shape}")
    valid = y != ignore_index if ignore_index is not None else np.ones(n, dtype=bool)
    bad = valid & ((y < 0) | (y >= classes))
    if bad.any():
        raise IndexError(f"{what}: target {int(y[bad][0])} is out of range for {classes} classes (0..{classes - 1})")
    return y


def _batched(scores: Tensor, targets: Any, what: str) -> tuple[Tensor, Any, bool]:
    """Promote unbatched (C,) scores with a scalar target to a batch of one."""
    if scores.ndim == 1:
        y = targets.data if isinstance(targets, Tensor) else np.asarray(targets)
        if y.ndim == 0:
            return functional.reshape(scores, (1, -1)), y.reshape(1), True
        if y.shape == scores.shape:
            return functional.reshape(scores, (1, -1)), y.reshape(1, -1), True
    if scores.ndim != 2:
        raise ValueError(f"{what}: expected scores of shape (N, C) (or (C,) for one example), got {scores.shape}")
    return scores, targets, False


def nll_loss(
    log_probs: Any, targets: Any, weight: Any = None, ignore_index: int = -100, reduction: str = "mean"
) -> Tensor:
    """Negative log-likelihood: L_i = -w_{y_i} log_probs[i, y_i] for class indices y_i.

    "mean" divides by the sum of the weights of the counted examples (by N without weights),
    as PyTorch; targets equal to ``ignore_index`` contribute nothing.
    """
    lp, targets, single = _batched(as_tensor(log_probs), targets, "nll_loss")
    n, c = lp.shape
    y = _class_indices(targets, n, c, "nll_loss", ignore_index)
    valid = y != ignore_index
    safe = np.where(valid, y, 0)
    w = np.ones(c, dtype=lp.dtype) if weight is None else np.asarray(as_tensor(weight).data, dtype=lp.dtype)
    if w.shape != (c,):
        raise ValueError(f"nll_loss: weight must have one entry per class ({c}), got shape {w.shape}")
    coef = (w[safe] * valid).astype(lp.dtype)
    loss = -(lp[np.arange(n), safe] * coef)
    if reduction == "mean":
        return functional.sum(loss) / float(coef.sum())
    if reduction == "none" and single:
        return functional.reshape(loss, ())
    return _reduce(loss, reduction, "nll_loss")


def cross_entropy(
    logits: Any, targets: Any, weight: Any = None, ignore_index: int = -100, reduction: str = "mean"
) -> Tensor:
    """Softmax cross-entropy of raw scores (N, C) against class indices (N,) or probabilities (N, C).

    L_i = -ln softmax(z_i)[y_i] = logsumexp(z_i) - z_{i, y_i}; with probability targets
    L_i = -sum_c y_ic ln softmax(z_i)_c. Gradient of the mean wrt the logits:
    (softmax(z) - Y) / N, Y the one-hot (or probability) targets. Computed as
    log_softmax + indexing, stable for any logits; for class indices without weights this
    is the fused ``cross_entropy`` op, whose rule is exactly (softmax(z) - onehot(y)) / N.
    """
    z, targets, single = _batched(as_tensor(logits), targets, "cross_entropy")
    if weight is None and not single and z.ndim == 2:
        fused = _fused_cross_entropy(z, targets, reduction)
        if fused is not None:
            return fused
    lp = functional.log_softmax(z, axis=1)
    y_arr = targets.data if isinstance(targets, Tensor) else np.asarray(targets)
    if y_arr.dtype.kind == "f" and y_arr.shape == z.shape:
        probs = _target_like(targets, z, "cross_entropy")
        terms = lp * probs
        if weight is not None:
            terms = terms * _weight(weight, z)
        loss = -functional.sum(terms, axis=1)
        if single and reduction == "none":
            return functional.reshape(loss, ())
        return _reduce(loss, reduction, "cross_entropy")
    _class_indices(targets, z.shape[0], z.shape[1], "cross_entropy", ignore_index)  # errors name this function
    out = nll_loss(lp, targets, weight=weight, ignore_index=ignore_index, reduction=reduction)
    if single and reduction == "none":
        return functional.reshape(out, ())
    return out


def _fused_cross_entropy(z: Tensor, targets: Any, reduction: str) -> Tensor | None:
    """The fused op for the common case (class indices, no weights, nothing ignored), else None."""
    y = targets.data if isinstance(targets, Tensor) else targets
    if not isinstance(y, np.ndarray) or y.dtype.kind not in "iu" or reduction not in ("mean", "sum", "none"):
        return None
    if y.shape != z.shape[:1] or y.size == 0:
        return None
    try:
        return functional.softmax_cross_entropy(z, y, reduction=reduction)
    except IndexError:
        return None  # ignored or out-of-range targets: the general path handles or names them


def multi_margin_loss(scores: Any, targets: Any, margin: float = 1.0, p: int = 1, reduction: str = "mean") -> Tensor:
    """Multiclass SVM hinge loss (CS231n): L_i = sum_{j != y_i} max(0, s_j - s_{y_i} + delta), delta = ``margin``.

    "mean" averages over the N examples only. NOTE: PyTorch's ``multi_margin_loss`` also
    divides each L_i by the number of classes C, so this value = PyTorch's * C. ``p=2``
    squares each hinge term. Gradient: ds_j = 1[margin_j > 0] for j != y_i and
    ds_{y_i} = -(number of positive margins).
    """
    s, targets, single = _batched(as_tensor(scores), targets, "multi_margin_loss")
    if p not in (1, 2):
        raise ValueError(f"multi_margin_loss: p must be 1 or 2, got {p}")
    n, c = s.shape
    y = _class_indices(targets, n, c, "multi_margin_loss", None)
    correct = functional.reshape(s[np.arange(n), y], (n, 1))
    hinge = functional.relu(s - correct + float(margin))
    if p == 2:
        hinge = hinge * hinge
    others = np.ones((n, c), dtype=s.dtype)
    others[np.arange(n), y] = 0
    loss = functional.sum(hinge * others, axis=1)
    if single and reduction == "none":
        return functional.reshape(loss, ())
    return _reduce(loss, reduction, "multi_margin_loss")


hinge_loss = multi_margin_loss


# --------------------------------------------------------------------- regularization
def _weight_matrices(model_or_params: Any) -> list[Tensor]:
    if hasattr(model_or_params, "named_parameters"):
        params = [p for _, p in model_or_params.named_parameters()]
    elif isinstance(model_or_params, Tensor):
        params = [model_or_params]
    elif isinstance(model_or_params, Iterable):
        params = list(model_or_params)
    else:
        raise TypeError(
            f"l2_penalty: expected a Module or an iterable of tensors, got {type(model_or_params).__name__}"
        )
    return [p for p in params if isinstance(p, Tensor) and p.ndim >= 2]


def l2_penalty(model_or_params: Any, lam: float, m: int | None = None) -> Tensor:
    """L2 weight penalty over weight matrices (tensors with >= 2 axes; biases and 1-D scales excluded).

    * ``m=None``:  lam * sum W^2 (gradient 2 lam W; SGD ``weight_decay=wd`` matches lam = wd / 2).
    * ``m=N``:     lam / (2 N) * sum W^2, the lecture convention with N training examples
                   (gradient lam / N * W).
    """
    weights = _weight_matrices(model_or_params)
    if not weights:
        return Tensor(np.zeros((), dtype=np.float32))
    total = functional.sum(weights[0] * weights[0])
    for w in weights[1:]:
        total = total + functional.sum(w * w)
    if m is None:
        return total * float(lam)
    if m <= 0:
        raise ValueError(f"l2_penalty: m (the number of examples) must be positive, got {m}")
    return total * (float(lam) / (2.0 * m))


# --------------------------------------------------------------------- loss modules


class _Loss(Module):
    _fields: tuple[str, ...] = ("reduction",)

    def extra_repr(self) -> str:
        return ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"type": type(self).__name__}
        for f in self._fields:
            value = getattr(self, f)
            if isinstance(value, (Tensor, np.ndarray)):
                value = np.asarray(value.data if isinstance(value, Tensor) else value).tolist()
            config[f] = value
        return config


@register_module
class MSELoss(_Loss):
    """Squared error; ``reduction="half_sum"`` gives E = 1/2 sum (t - o)^2."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, pred: Any, target: Any) -> Tensor:
        return mse_loss(pred, target, self.reduction)


@register_module
class BCELoss(_Loss):
    """Binary cross-entropy on probabilities (logs clamped at -100)."""

    _fields = ("weight", "reduction")

    def __init__(self, weight: Any = None, reduction: str = "mean") -> None:
        super().__init__()
        self.weight = weight
        self.reduction = reduction

    def forward(self, probs: Any, targets: Any) -> Tensor:
        return binary_cross_entropy(probs, targets, self.weight, self.reduction)


@register_module
class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on raw scores, stable for any logit."""

    _fields = ("weight", "pos_weight", "reduction")

    def __init__(self, weight: Any = None, pos_weight: Any = None, reduction: str = "mean") -> None:
        super().__init__()
        self.weight, self.pos_weight, self.reduction = weight, pos_weight, reduction

    def forward(self, logits: Any, targets: Any) -> Tensor:
        return binary_cross_entropy_with_logits(logits, targets, self.weight, self.pos_weight, self.reduction)


@register_module
class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy of logits (N, C) against class indices (N,) or probabilities (N, C)."""

    _fields = ("weight", "ignore_index", "reduction")

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean") -> None:
        super().__init__()
        self.weight, self.ignore_index, self.reduction = weight, int(ignore_index), reduction

    def forward(self, logits: Any, targets: Any) -> Tensor:
        return cross_entropy(logits, targets, self.weight, self.ignore_index, self.reduction)


@register_module
class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities (N, C) against class indices (N,)."""

    _fields = ("weight", "ignore_index", "reduction")

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean") -> None:
        super().__init__()
        self.weight, self.ignore_index, self.reduction = weight, int(ignore_index), reduction

    def forward(self, log_probs: Any, targets: Any) -> Tensor:
        return nll_loss(log_probs, targets, self.weight, self.ignore_index, self.reduction)


@register_module
class MultiMarginLoss(_Loss):
    """Multiclass SVM hinge loss, CS231n convention (NOT divided by C; PyTorch's value * C)."""

    _fields = ("margin", "p", "reduction")

    def __init__(self, margin: float = 1.0, p: int = 1, reduction: str = "mean") -> None:
        super().__init__()
        self.margin, self.p, self.reduction = float(margin), int(p), reduction

    def forward(self, scores: Any, targets: Any) -> Tensor:
        return multi_margin_loss(scores, targets, self.margin, self.p, self.reduction)


HingeLoss = MultiMarginLoss


__all__ = [
    "BCELoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "HingeLoss",
    "MSELoss",
    "MultiMarginLoss",
    "NLLLoss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "hinge_loss",
    "l2_penalty",
    "mse_loss",
    "multi_margin_loss",
    "nll_loss",
]
