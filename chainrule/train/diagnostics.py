"""``Diagnostics``: a ``fit`` callback that records, per layer and epoch, how backpropagation is doing.

    diag = Diagnostics()
    fit(model, "cross_entropy", opt, (X, y), epochs=10, callbacks=[diag])
    diag.series("layers.0.weight", "grad_norm")        # one number per recorded epoch
    json.dumps(diag.to_dict())                          # what ``chainrule train --diagnostics`` stores

Each record (one per recorded epoch, ``every`` epochs apart starting at epoch 1) holds:

* ``parameters[name]`` for each named parameter ("layers.0.weight"): ``grad_norm`` (the L2 norm
  of the gradient of the batch loss, averaged over the epoch's batches), ``grad_mean_abs``
  (the mean |gradient| element, averaged over batches), ``weight_norm`` (the L2 norm at the
  end of the epoch) and ``update_ratio``: ||W_after - W_before|| / ||W_before|| of one
  optimizer step, averaged over the batches (about 1e-3 is the usual healthy value; 1e-1
  means the steps are large compared with the weights, 1e-6 that learning has stalled).
* ``activations[name]`` for each activation module (ReLU, Sigmoid, Tanh, LeakyReLU, ELU,
  Softplus, GELU, PReLU; found by ``named_modules``): ``kind``, ``mean`` and ``std`` of its
  outputs over the epoch (a mean far from 0 means the next layer's inputs are not
  zero-centred), ``dead_fraction`` (ReLU only: the fraction of units whose output was 0 for
  every training example seen in the epoch) and ``saturated_fraction`` (sigmoid: the fraction
  of outputs below ``SIGMOID_LOW`` = 0.01 or above ``SIGMOID_HIGH`` = 0.99, where the slope
  y(1 - y) is below 0.0099; tanh: |y| above ``TANH_LIMIT`` = 0.99, slope below 0.02).
  Statistics that do not apply are None.

How it observes, without changing what training computes (the weights are bit-for-bit the
same with and without it; a test checks):

* gradients, weights and updates are read in ``on_batch_end``, after ``fit``'s
  ``zero_grad``/``backward``/``step``: ``.grad`` still holds the batch's gradient, and the
  update is the difference from a copy of the parameters taken after the previous step
  (or at the start of the epoch);
* activations are seen by giving each activation module instance, for the duration of
  training, a ``forward`` attribute that calls the class's forward and then summarizes the
  output array. Only training-mode calls with gradients enabled count, so the validation
  pass (``evaluate``: eval mode, ``no_grad``) is left out. ``on_train_end`` removes the
  attributes. ``fit`` does not call ``on_train_end`` when training raises (a diverged loss),
  so the attributes are also removed when ``fit``'s ``FitState`` is freed, i.e. once the
  exception has been handled, and a later ``on_train_begin`` removes any left over.
* with ``fit(compile=True)`` the replayed steps do not run the modules' Python code, so the
  activation statistics are None (gradients, weights and updates are still recorded).

Cost, measured on a shared 2-core machine with one BLAS thread (SGD with momentum, batch 64,
float32): a recorded epoch takes about 1.7x as long as a plain one for digits on an MLP
64-64-32-10 (2.5 -> 4.3 ms per epoch: the engine is so fast on this net that a few passes over
each parameter per batch show) and about 1.5x for 4,000 MNIST images on 784-100-10 (24 -> 36 ms).
The work is a handful of passes over each parameter and activation array per batch, never a
second forward or backward. ``every=5`` records one epoch in five; the others cost almost
nothing (one flag test per activation call and per batch).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from chainrule.autograd.grad_mode import is_grad_enabled
from chainrule.nn.activation import ACTIVATIONS, Identity
from chainrule.train.callbacks import Callback, FitState

#: sigmoid outputs below SIGMOID_LOW or above SIGMOID_HIGH count as saturated (slope y(1-y) < 0.0099)
SIGMOID_LOW, SIGMOID_HIGH = 0.01, 0.99
#: tanh outputs with |y| above TANH_LIMIT count as saturated (slope 1 - y² < 0.02)
TANH_LIMIT = 0.99

#: activation classes observed, by their registry name ("relu", "sigmoid", ...)
OBSERVED: dict[type, str] = {cls: name for name, cls in reversed(ACTIVATIONS.items()) if cls is not Identity}


_sum = np.add.reduce
_any = np.logical_or.reduce


def _num(value: float) -> float | None:
    """A JSON-ready float: None for NaN and infinities (JSON has no such numbers)."""
    value = float(value)
    return value if math.isfinite(value) else None


class _ActivationStats:
    """Running sums over the outputs of one activation module during one epoch."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.reset()

    def reset(self) -> None:
        self.calls = 0
        self.count = 0
        self.total = 0.0
        self.total_sq = 0.0
        self.saturated = 0
        self.alive: np.ndarray | None = None
        self.mixed_shapes = False

    def observe(self, y: np.ndarray) -> None:
        self.calls += 1
        if y.size == 0:
            return
        flat = y.reshape(-1)
        self.count += flat.size
        self.total += float(_sum(flat))
        self.total_sq += float(np.dot(flat, flat))
        if self.kind == "relu":
            # a unit is everything but the example axis: one column per feature
            units = y.reshape(len(y), -1) if y.ndim > 1 else y.reshape(-1, 1)
            fired = _any(units > 0, axis=0)
            if self.alive is None and not self.mixed_shapes:
                self.alive = fired
            elif self.alive is not None and self.alive.shape == fired.shape:
                self.alive |= fired
            else:  # NOTE: one module instance used at two places with different widths
                self.alive, self.mixed_shapes = None, True
        elif self.kind == "sigmoid":
            self.saturated += int(np.count_nonzero((flat < SIGMOID_LOW) | (flat > SIGMOID_HIGH)))
        elif self.kind == "tanh":
            self.saturated += int(np.count_nonzero(np.abs(flat) > TANH_LIMIT))

    def summary(self, batches: int) -> dict[str, Any]:
        complete = self.count > 0 and self.calls >= batches
        mean = self.total / self.count if complete else math.nan
        var = max(self.total_sq / self.count - mean * mean, 0.0) if complete else math.nan
        dead = None
        if complete and self.kind == "relu" and self.alive is not None:
            dead = _num(1.0 - float(np.count_nonzero(self.alive)) / self.alive.size)
        saturated = None
        if complete and self.kind in ("sigmoid", "tanh"):
            saturated = _num(self.saturated / self.count)
        return {
            "kind": self.kind,
            "mean": _num(mean),
            "std": _num(math.sqrt(var)),
            "dead_fraction": dead,
            "saturated_fraction": saturated,
        }


class _ParamStats:
    """Running sums over the gradients and updates of one parameter during one epoch."""

    def __init__(self, param: Any) -> None:
        self.param = param
        self.before = np.array(param.data, copy=True)
        self.delta = np.empty_like(self.before)
        self.reset()

    def reset(self) -> None:
        self.grad_batches = 0
        self.grad_norm = 0.0
        self.grad_abs = 0.0
        self.ratio_batches = 0
        self.ratio = 0.0

    def snapshot(self) -> None:
        np.copyto(self.before, self.param.data)
        flat = self.before.reshape(-1)
        self.before_norm = math.sqrt(float(np.dot(flat, flat)))

    def observe(self) -> None:
        grad = self.param.grad
        if grad is not None and grad.data.size:
            flat = grad.data.reshape(-1)
            self.grad_batches += 1
            self.grad_norm += math.sqrt(float(np.dot(flat, flat)))
            self.grad_abs += float(_sum(np.abs(flat))) / flat.size
        data = self.param.data
        if self.before_norm > 0:
            delta = np.subtract(data, self.before, out=self.delta).reshape(-1)
            self.ratio += math.sqrt(float(np.dot(delta, delta))) / self.before_norm
            self.ratio_batches += 1
        # the weights after this step are the weights before the next one
        self.snapshot()

    def summary(self) -> dict[str, Any]:
        g = self.grad_batches
        return {
            "grad_norm": _num(self.grad_norm / g) if g else None,
            "grad_mean_abs": _num(self.grad_abs / g) if g else None,
            "weight_norm": _num(self.before_norm),
            "update_ratio": _num(self.ratio / self.ratio_batches) if self.ratio_batches else None,
        }


def _named_parameters(model: Any) -> Iterator[tuple[str, Any]]:
    if hasattr(model, "named_parameters"):
        yield from model.named_parameters()
    else:
        for i, p in enumerate(model.parameters()):
            yield f"param.{i}", p


def _restore_forwards(installed: list[tuple[Any, bool, Any]]) -> None:
    """Put back each module's own ``forward`` (remove the instance attribute, or restore a previous one)."""
    while installed:
        module, had_own, previous = installed.pop()
        if had_own:
            module.__dict__["forward"] = previous
        else:
            module.__dict__.pop("forward", None)


class Diagnostics(Callback):
    """Record gradient, weight, update and activation statistics per layer, every ``every`` epochs.

    ``records``: one dict per recorded epoch (see the module docstring for the fields);
    ``to_dict()``: ``{"every", "thresholds", "records"}``, ready for ``json.dumps``.
    Records are those of the last ``fit`` the callback was given to.
    """

    def __init__(self, every: int = 1) -> None:
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"Diagnostics: every must be a positive integer, got {every!r}")
        self.every = int(every)
        self.records: list[dict[str, Any]] = []
        self._params: dict[str, _ParamStats] = {}
        self._activations: dict[str, _ActivationStats] = {}
        self._installed: list[tuple[Any, bool, Any]] = []
        self._finalizer: weakref.finalize | None = None
        self._recording = False
        self._batches = 0

    # ----------------------------------------------------------------- hooks
    def on_train_begin(self, state: FitState) -> None:
        self._detach()
        self.records = []
        model = state.model
        self._params = {name: _ParamStats(p) for name, p in _named_parameters(model) if p is not None}
        self._activations = {}
        if hasattr(model, "named_modules"):
            for name, module in model.named_modules():
                kind = OBSERVED.get(type(module))
                if kind is not None:
                    stats = _ActivationStats(kind)
                    self._activations[name or type(module).__name__] = stats
                    self._wrap(module, stats)
        # NOTE: fit calls on_train_end only when training returns normally; freeing the FitState
        # (after an exception has been handled) takes the wrappers off too.
        self._finalizer = weakref.finalize(state, _restore_forwards, self._installed)

    def on_epoch_begin(self, state: FitState) -> None:
        self._recording = (state.epoch - 1) % self.every == 0
        if not self._recording:
            return
        self._batches = 0
        for p in self._params.values():
            p.reset()
            p.snapshot()
        for a in self._activations.values():
            a.reset()

    def on_batch_end(self, state: FitState) -> None:
        if not self._recording:
            return
        self._batches += 1
        # NOTE: a diverging run overflows float32 norms; they are recorded as None, not warned about twice
        with np.errstate(over="ignore", invalid="ignore"):
            for p in self._params.values():
                p.observe()

    def on_epoch_end(self, state: FitState) -> None:
        if not self._recording:
            return
        self._recording = False
        self.records.append(
            {
                "epoch": int(state.epoch),
                "batches": self._batches,
                "parameters": {name: p.summary() for name, p in self._params.items()},
                "activations": {name: a.summary(self._batches) for name, a in self._activations.items()},
            }
        )

    def on_train_end(self, state: FitState) -> None:
        self._detach()

    # ----------------------------------------------------------------- observing activations
    def _wrap(self, module: Any, stats: _ActivationStats) -> None:
        had_own = "forward" in module.__dict__
        previous = module.__dict__.get("forward")
        original = module.forward
        owner = weakref.ref(self)

        def forward(*args: Any, **kwargs: Any) -> Any:
            out = original(*args, **kwargs)
            diag = owner()
            if diag is not None and diag._recording and module.training and is_grad_enabled():
                data = getattr(out, "data", None)
                if isinstance(data, np.ndarray):
                    with np.errstate(over="ignore", invalid="ignore"):
                        stats.observe(data)
            return out

        self._installed.append((module, had_own, previous))
        module.__dict__["forward"] = forward

    def _detach(self) -> None:
        self._recording = False
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        _restore_forwards(self._installed)
        self._params = {}

    # ----------------------------------------------------------------- results
    def series(self, name: str, key: str) -> list[float | None]:
        """One value per recorded epoch: ``series("layers.0.weight", "grad_norm")``,
        ``series("activations.0", "dead_fraction")``."""
        out = []
        for record in self.records:
            entry = record["parameters"].get(name) or record["activations"].get(name)
            if entry is None:
                known = sorted({*record["parameters"], *record["activations"]})
                raise KeyError(f"Diagnostics.series: no parameter or activation {name!r}; known: {known}")
            if key not in entry:
                raise KeyError(f"Diagnostics.series: {name!r} has no {key!r}; it has {sorted(entry)}")
            out.append(entry[key])
        return out

    def to_dict(self) -> dict[str, Any]:
        """``{"every", "thresholds", "records"}``: plain lists, dicts, floats and None (JSON-ready)."""
        return {
            "every": self.every,
            "thresholds": {"sigmoid": [SIGMOID_LOW, SIGMOID_HIGH], "tanh": TANH_LIMIT},
            "records": [_copy(r) for r in self.records],
        }


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def diagnostics_records(source: Any) -> list[dict[str, Any]]:
    """The records list from a ``Diagnostics``, its ``to_dict()``, a metrics.json dict, or the list itself."""
    if isinstance(source, Diagnostics):
        return source.records
    if isinstance(source, Mapping):
        if "diagnostics" in source:
            return diagnostics_records(source["diagnostics"])
        if "records" in source:
            return list(source["records"])
    if isinstance(source, list):
        return source
    raise TypeError(
        "expected a Diagnostics callback, its to_dict(), a metrics.json dict with 'diagnostics', "
        f"or a list of records; got {type(source).__name__}"
    )


__all__ = ["OBSERVED", "SIGMOID_HIGH", "SIGMOID_LOW", "TANH_LIMIT", "Diagnostics", "diagnostics_records"]
