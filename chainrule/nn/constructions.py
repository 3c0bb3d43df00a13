"""The lecture's constructions: perceptrons, Boolean functions from truth tables, functions from pulses.

* ``Step`` / ``Sign``: threshold units, step(z) = 1 if z >= 0 else 0 and sign(z) = +1 if z >= 0 else -1;
* ``Perceptron(n_inputs, threshold="step"|"sign")`` and ``perceptron_train``, the perceptron learning rule
  (w := w + lr (y - y_hat) x on every mistake; no gradient involved);
* ``from_truth_table(table)``: a two-layer threshold network computing any Boolean function (one minterm
  detector per row whose output is 1, then an OR); ``xor_network()``: XOR = (x OR y) AND NOT (x AND y);
* ``pulse(a, b, height)`` and ``approximate_1d(f, interval, n_pulses)``: universal approximation by
  construction, a sum of square pulses made of steep sigmoid pairs.

Every network here is an ordinary ``Sequential``/``MLP`` of registered layers, so ``chainrule.save`` and
``chainrule.load`` round-trip it. docs/constructions.md walks through each one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule import functional
from chainrule.autograd.tensor import Tensor
from chainrule.nn.container import Sequential
from chainrule.nn.linear import MLP, Linear
from chainrule.nn.module import Module, Parameter, register_module, resolve_dtype

THRESHOLDS = ("step", "sign")


def threshold_values(z: np.ndarray, kind: str) -> np.ndarray:
    """step: 1 where z >= 0 else 0; sign: +1 where z >= 0 else -1 (NaN gives 0 or -1), in z's dtype."""
    fires = z >= 0
    dtype = z.dtype if z.dtype.kind == "f" else np.dtype(np.float32)
    return fires.astype(dtype) if kind == "step" else np.where(fires, 1, -1).astype(dtype)


def _threshold(x: Any, kind: str) -> Tensor:
    x = x if isinstance(x, Tensor) else Tensor(np.asarray(x, dtype=np.float32))
    values = threshold_values(x.data, kind)
    # NOTE: the derivative of a threshold is 0 wherever it exists (undefined at z = 0; taken as 0, as
    # PyTorch's sign). ``where`` with a condition that is false everywhere keeps the output in the graph
    # with exactly that gradient: backward runs, and every gradient behind a threshold unit is zero.
    never = np.zeros(values.shape, dtype=bool)
    return functional.where(never, x, values)


class _Threshold(Module):
    kind = "step"

    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: Any) -> Tensor:
        return _threshold(x, self.kind)

    @property
    def capturable(self) -> bool:
        # The 0/1 (or +-1) values are computed with NumPy from the input: a replay would reuse the first ones.
        return False

    def get_config(self) -> dict[str, Any]:
        return {"type": type(self).__name__}


@register_module
class Step(_Threshold):
    """f(z) = 1 if z >= 0 else 0;  f' = 0 wherever it exists, so backprop through it gives zero gradients."""

    kind = "step"


@register_module
class Sign(_Threshold):
    """f(z) = +1 if z >= 0 else -1 (for +-1 labels);  f' = 0 wherever it exists."""

    kind = "sign"


def _threshold_module(kind: str) -> Module:
    return Step() if kind == "step" else Sign()


# --------------------------------------------------------------------- perceptron
@register_module
class Perceptron(Module):
    """One linear threshold unit: y = threshold(w . x + b), threshold "step" (0/1) or "sign" (+-1).

    ``weight``: (1, n_inputs) and ``bias``: (1,) as in ``Linear(n_inputs, 1)``, both initialized to zero
    (the perceptron rule's usual start, which its mistake bound assumes). On a batch (N, n_inputs) the
    output has shape (N, 1); ``predict(X)`` gives the N labels as a flat array.
    """

    def __init__(self, n_inputs: int, threshold: str = "step", *, dtype: Any = None) -> None:
        super().__init__()
        if isinstance(n_inputs, bool) or not isinstance(n_inputs, (int, np.integer)) or n_inputs < 1:
            raise ValueError(f"Perceptron: n_inputs must be an integer >= 1, got {n_inputs!r}")
        if threshold not in THRESHOLDS:
            raise ValueError(f"Perceptron: threshold must be 'step' or 'sign', got {threshold!r}")
        dt = resolve_dtype(dtype)
        self.n_inputs = int(n_inputs)
        self.threshold = threshold
        self.weight = Parameter(np.zeros((1, self.n_inputs), dtype=dt))
        self.bias = Parameter(np.zeros(1, dtype=dt))

    def forward(self, x: Any) -> Tensor:
        return _threshold(functional.linear(x, self.weight, self.bias), self.threshold)

    @property
    def capturable(self) -> bool:
        return False  # its threshold is computed with NumPy, as Step's

    def predict(self, X: Any) -> np.ndarray:
        """The labels (0/1 or -1/+1) of the rows of X, shape (N,)."""
        X = _features(X, self.n_inputs, "Perceptron.predict", self.weight.data.dtype)
        return threshold_values(X @ self.weight.data[0] + self.bias.data[0], self.threshold)

    def extra_repr(self) -> str:
        return f"n_inputs={self.n_inputs}, threshold={self.threshold!r}"

    def get_config(self) -> dict[str, Any]:
        return {"type": "Perceptron", "n_inputs": self.n_inputs, "threshold": self.threshold}


@dataclass
class PerceptronResult:
    """What ``perceptron_train`` did.

    ``converged``: an epoch ended with every example classified correctly; ``epochs``: epochs run;
    ``updates``: weight updates made (online: one per mistake; batch: one per epoch with a mistake);
    ``history``: misclassified examples per epoch (online: mistakes made during the epoch; batch: at its
    start); ``separable``: True if converged, False if the weights came back to an earlier epoch's (the
    rule cycles forever, which the convergence theorem rules out for separable data), None if unknown;
    ``message``: one line saying which.
    """

    converged: bool
    epochs: int
    updates: int
    history: list[int] = field(default_factory=list)
    separable: bool | None = None
    message: str = ""

    def __str__(self) -> str:
        return self.message


def perceptron_train(
    model: Perceptron,
    X: Any,
    y: Any,
    mode: str = "online",
    lr: float = 1.0,
    max_epochs: int = 100,
) -> PerceptronResult:
    """Train ``model`` in place with the perceptron learning rule; stop at the first error-free epoch.

    Rule (step, labels 0/1): w := w + lr (y_i - y_hat_i) x_i and b := b + lr (y_i - y_hat_i); with sign
    (labels -1/+1) the update on a mistake is lr y_i x_i, the same rule since (y_i - y_hat_i) / 2 = y_i
    there. ``mode="online"`` updates after each example (in order); ``"batch"`` once per epoch with the
    sum of the updates of every misclassified example. No gradient is computed: the rule only needs the
    sign of the error. On linearly separable data it converges (online: after at most (R / gamma)^2
    mistakes); otherwise it stops after ``max_epochs`` with ``converged=False`` and says so.
    """
    if not isinstance(model, Perceptron):
        raise TypeError(f"perceptron_train: model must be an nn.Perceptron, got {type(model).__name__}")
    if mode not in ("online", "batch"):
        raise ValueError(f"perceptron_train: mode must be 'online' or 'batch', got {mode!r}")
    if not (isinstance(lr, (int, float, np.floating)) and np.isfinite(lr) and lr > 0):
        raise ValueError(f"perceptron_train: lr must be a finite number > 0, got {lr!r}")
    if isinstance(max_epochs, bool) or not isinstance(max_epochs, (int, np.integer)) or max_epochs < 1:
        raise ValueError(f"perceptron_train: max_epochs must be an integer >= 1, got {max_epochs!r}")
    w, b = model.weight.data, model.bias.data
    X = _features(X, model.n_inputs, "perceptron_train", w.dtype)
    y = _labels(y, len(X), model.threshold)
    scale = lr / 2 if model.threshold == "sign" else lr  # sign: (y - y_hat) is +-2 on a mistake
    history: list[int] = []
    seen: dict[bytes, int] = {}
    updates, cycle = 0, None
    for epoch in range(max_epochs):
        state = w.tobytes() + b.tobytes()
        if cycle is None and state in seen:
            cycle = seen[state]
        seen.setdefault(state, epoch)
        if mode == "online":
            mistakes = 0
            for xi, yi in zip(X, y):
                error = yi - threshold_values(xi @ w[0] + b[0], model.threshold)
                if error:
                    w[0] += scale * error * xi
                    b[0] += scale * error
                    mistakes += 1
            updates += mistakes
        else:
            errors = y - threshold_values(X @ w[0] + b[0], model.threshold)
            mistakes = int(np.count_nonzero(errors))
            if mistakes:
                w[0] += scale * (errors @ X)
                b[0] += scale * errors.sum()
                updates += 1
        history.append(mistakes)
        if mistakes == 0:
            message = f"converged after {epoch + 1} epochs and {updates} updates: every example is classified"
            return PerceptronResult(True, epoch + 1, updates, history, True, message)
    if cycle is not None:
        separable: bool | None = False
        message = (
            f"not linearly separable: stopped at max_epochs={max_epochs} with {history[-1]} misclassified; "
            f"the weights at the start of epoch {cycle + 1} came back later, so the rule cycles forever"
        )
    else:
        separable = None
        message = (
            f"did not converge in max_epochs={max_epochs} ({history[-1]} misclassified in the last epoch): the data "
            "are probably not linearly separable (or need more epochs)"
        )
    return PerceptronResult(False, max_epochs, updates, history, separable, message)


def _features(X: Any, n: int, what: str, dtype: np.dtype) -> np.ndarray:
    X = np.asarray(X.data if isinstance(X, Tensor) else X)
    if X.ndim != 2 or X.shape[1] != n or X.dtype.kind not in "biuf":
        raise ValueError(f"{what}: X must be a numeric array of shape (N, {n}), got shape {X.shape} ({X.dtype})")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{what}: X has non-finite values (row {int(np.argwhere(~np.isfinite(X))[0, 0])})")
    return X.astype(dtype)


def _labels(y: Any, m: int, threshold: str) -> np.ndarray:
    y = np.asarray(y.data if isinstance(y, Tensor) else y)
    if y.shape not in ((m,), (m, 1)):
        raise ValueError(f"perceptron_train: y must have shape ({m},) to match X, got {y.shape}")
    y = y.reshape(m).astype(np.float64)
    allowed = (0.0, 1.0) if threshold == "step" else (-1.0, 1.0)
    bad = ~np.isin(y, allowed)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"perceptron_train: a {threshold!r} perceptron needs labels in {{{allowed[0]:g}, {allowed[1]:g}}}, "
            f"got {y[i]:g} at index {i}"
        )
    return y


# --------------------------------------------------------------------- Boolean functions
def _parse_table(table: Any) -> tuple[np.ndarray, np.ndarray]:
    """(inputs (rows, n) of 0/1, outputs (rows,)) from a list of (inputs, output) pairs or a 0/1 array."""
    pairs = (
        isinstance(table, (list, tuple))
        and len(table) > 0
        and all(isinstance(r, (list, tuple)) and len(r) == 2 and np.ndim(r[0]) == 1 for r in table)
    )
    if pairs:
        sizes = {len(r[0]) for r in table}
        if len(sizes) > 1:
            first = len(table[0][0])
            i = next(i for i, r in enumerate(table) if len(r[0]) != first)
            raise ValueError(f"from_truth_table: row {i} has {len(table[i][0])} inputs, row 0 has {first}")
        outputs = [r[1] for r in table]
        if any(np.ndim(o) != 0 for o in outputs):
            i = next(i for i, o in enumerate(outputs) if np.ndim(o) != 0)
            raise ValueError(f"from_truth_table: row {i}'s output must be one 0/1 value, got {outputs[i]!r}")
        rows = np.array([[*r[0], r[1]] for r in table])
    else:
        rows = np.asarray(table)
    if rows.ndim != 2 or rows.shape[1] < 2 or rows.shape[0] == 0:
        raise ValueError(
            "from_truth_table: expected a list of (inputs, output) pairs or a 0/1 array of shape (rows, n + 1) "
            f"whose last column is the output, got shape {rows.shape}"
        )
    if rows.dtype.kind not in "biuf":
        raise ValueError(f"from_truth_table: entries must be the numbers 0 or 1, got an array of {rows.dtype}")
    if not np.all(np.isin(rows, (0, 1))):
        r, c = np.argwhere(~np.isin(rows, (0, 1)))[0]
        raise ValueError(f"from_truth_table: entries must be 0 or 1, got {rows[r, c].item()!r} in row {r}, column {c}")
    rows = rows.astype(np.int64)
    return rows[:, :-1], rows[:, -1]


def _check_rows(inputs: np.ndarray) -> None:
    rows, n = inputs.shape
    if n > 24:
        raise ValueError(f"from_truth_table: {n} inputs need 2^{n} rows; at most 24 inputs are supported")
    codes = inputs @ (1 << np.arange(n - 1, -1, -1))
    first: dict[int, int] = {}
    for i, code in enumerate(codes.tolist()):
        if code in first:
            raise ValueError(
                f"from_truth_table: inputs {tuple(inputs[i].tolist())} appear twice (rows {first[code]} and {i})"
            )
        first[code] = i
    if rows != 2**n:
        missing = sorted(set(range(2**n)) - first.keys())
        shown = ", ".join(str(tuple(int(c) for c in np.binary_repr(m, n))) for m in missing[:8])
        more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        raise ValueError(
            f"from_truth_table: a {n}-input function needs all {2**n} rows, got {rows}; missing inputs: {shown}{more}"
        )


def from_truth_table(table: Any, *, dtype: Any = None) -> Sequential:
    """A two-layer threshold network computing the Boolean function given by its truth table.

    ``table``: a list of ``(inputs, output)`` pairs, e.g. ``[((0, 0), 0), ((0, 1), 1), ...]``, or a 0/1
    array whose last column is the output; every one of the 2^n input rows exactly once, in any order.
    One hidden ``Step`` unit per row whose output is 1, a minterm detector firing only on that row:
    weight +1 for each input that is 1 in the row, -1 for each that is 0, bias 0.5 - (number of ones).
    The output unit is their OR: weights 1, bias -0.5. (A function that is never 1 gets one hidden unit
    that never fires.) Returns ``Sequential(Linear(n, h), Step(), Linear(h, 1), Step())``: on a float
    tensor of 0/1 inputs of shape (N, n) it returns the 0/1 outputs, shape (N, 1).
    """
    inputs, outputs = _parse_table(table)
    _check_rows(inputs)
    n = inputs.shape[1]
    ones = inputs[outputs == 1]
    dt = resolve_dtype(dtype)
    if len(ones):
        hidden_w, hidden_b = 2.0 * ones - 1.0, 0.5 - ones.sum(axis=1)
    else:
        hidden_w, hidden_b = np.zeros((1, n)), np.full(1, -0.5)
    return _threshold_network(hidden_w, hidden_b, np.ones((1, len(hidden_w))), np.full(1, -0.5), dt)


def xor_network(*, dtype: Any = None) -> Sequential:
    """XOR = (x OR y) AND NOT (x AND y) with two hidden threshold units.

    Hidden: OR = step(x + y - 0.5), AND = step(x + y - 1.5); output: step(OR - AND - 0.5).
    """
    hidden_w = np.array([[1.0, 1.0], [1.0, 1.0]])
    hidden_b = np.array([-0.5, -1.5])
    return _threshold_network(hidden_w, hidden_b, np.array([[1.0, -1.0]]), np.array([-0.5]), resolve_dtype(dtype))


def _threshold_network(
    hidden_w: np.ndarray, hidden_b: np.ndarray, out_w: np.ndarray, out_b: np.ndarray, dtype: np.dtype
) -> Sequential:
    hidden = Linear(hidden_w.shape[1], hidden_w.shape[0], dtype=dtype)
    output = Linear(out_w.shape[1], 1, dtype=dtype)
    for layer, w, b in ((hidden, hidden_w, hidden_b), (output, out_w, out_b)):
        layer.weight.data[...] = w
        layer.bias.data[...] = b
    return Sequential(hidden, Step(), output, Step())


# --------------------------------------------------------------------- universal approximation
#: default sharpness: a pulse of width w uses steepness STEEPNESS / w (edges about w / 12 wide, tails e^-25)
STEEPNESS = 50.0


def _sigmoid_pairs(starts: np.ndarray, ends: np.ndarray, heights: np.ndarray, steepness: float, dtype: Any) -> MLP:
    """MLP([1, 2n, 1], sigmoid): units sigmoid(k (x - a_i)), sigmoid(k (x - b_i)); out = sum_i h_i (first - second)."""
    n = len(starts)
    model = MLP([1, 2 * n, 1], activation="sigmoid", dtype=dtype)
    hidden, output = model.layers
    hidden.weight.data[...] = steepness
    hidden.bias.data[...] = -steepness * np.stack([starts, ends], axis=1).reshape(2 * n)
    output.weight.data[...] = np.stack([heights, -heights], axis=1).reshape(1, 2 * n)
    output.bias.data[...] = 0.0
    return model


def _number(value: Any, name: str, what: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not np.isfinite(value)
    ):
        raise ValueError(f"{what}: {name} must be a finite number, got {value!r}")
    return float(value)


def pulse(a: float, b: float, height: float = 1.0, steepness: float | None = None, *, dtype: Any = None) -> MLP:
    """A square pulse of ``height`` on [a, b]: height * (sigmoid(k (x - a)) - sigmoid(k (x - b))).

    Two steep sigmoid hidden units and a linear output: ``MLP([1, 2, 1], activation="sigmoid")``, input
    shape (N, 1). ``steepness`` k defaults to 50 / (b - a); the output is height / 2 at a and b.
    """
    a, b, height = (_number(v, name, "pulse") for v, name in ((a, "a"), (b, "b"), (height, "height")))
    if not a < b:
        raise ValueError(f"pulse: need a < b, got a={a:g}, b={b:g}")
    k = STEEPNESS / (b - a) if steepness is None else _number(steepness, "steepness", "pulse")
    if k <= 0:
        raise ValueError(f"pulse: steepness must be > 0, got {k:g}")
    return _sigmoid_pairs(np.array([a]), np.array([b]), np.array([height]), k, dtype)


def approximate_1d(
    f: Callable[[float], float],
    interval: Sequence[float],
    n_pulses: int,
    steepness: float | None = None,
    *,
    dtype: Any = None,
) -> MLP:
    """A network ``MLP([1, 2 n_pulses, 1], activation="sigmoid")`` whose output approximates f on interval.

    The pulses are centred on n_pulses evenly spaced points t_i from lo to hi (spacing w; w = hi - lo for
    one pulse), each w wide, with height f(t_i). Between two centres the output moves smoothly from one
    height to the next, so for an L-Lipschitz f the error is at most L w, plus tails of order
    e^(-k w / 2) (k: ``steepness``, default 50 / w). Input shape (N, 1), output (N, 1).
    """
    if not (isinstance(interval, (Sequence, np.ndarray)) and len(interval) == 2):
        raise ValueError(f"approximate_1d: interval must be a pair (lo, hi), got {interval!r}")
    lo, hi = (_number(v, name, "approximate_1d") for v, name in zip(interval, ("lo", "hi")))
    if not lo < hi:
        raise ValueError(f"approximate_1d: interval needs lo < hi, got ({lo:g}, {hi:g})")
    if isinstance(n_pulses, bool) or not isinstance(n_pulses, (int, np.integer)) or n_pulses < 1:
        raise ValueError(f"approximate_1d: n_pulses must be an integer >= 1, got {n_pulses!r}")
    if not callable(f):
        raise TypeError(f"approximate_1d: f must be a function of one number, got {type(f).__name__}")
    centres = np.linspace(lo, hi, n_pulses) if n_pulses > 1 else np.array([(lo + hi) / 2])
    width = (hi - lo) / (n_pulses - 1) if n_pulses > 1 else hi - lo
    heights = np.array([float(f(t)) for t in centres])
    if not np.all(np.isfinite(heights)):
        t = centres[~np.isfinite(heights)][0]
        raise ValueError(f"approximate_1d: f({t:g}) is not finite")
    k = STEEPNESS / width if steepness is None else _number(steepness, "steepness", "approximate_1d")
    if k <= 0:
        raise ValueError(f"approximate_1d: steepness must be > 0, got {k:g}")
    return _sigmoid_pairs(centres - width / 2, centres + width / 2, heights, k, dtype)


__all__ = [
    "Perceptron",
    "PerceptronResult",
    "STEEPNESS",
    "Sign",
    "Step",
    "approximate_1d",
    "from_truth_table",
    "perceptron_train",
    "pulse",
    "threshold_values",
    "xor_network",
]
