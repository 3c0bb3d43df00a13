"""``Optimizer``: the base class that owns parameter groups, per-parameter state and ``zero_grad``.

An optimizer holds references to leaf tensors (parameters). ``step()`` reads each
parameter's ``.grad`` (a tensor filled by ``backward()``) and updates ``.data`` IN
PLACE, so every module, view and saved reference sees the new values. Updates never
record a graph: they work on the raw arrays, inside ``no_grad``.

Parameters are given as PyTorch does: an iterable of tensors (``model.parameters()``),
or an iterable of dicts ("parameter groups"), each with a ``"params"`` list and any
hyperparameters that override the optimizer's defaults for that group::

    SGD([{"params": weights, "weight_decay": 1e-4}, {"params": biases}], lr=0.1)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import numpy as np

from chainrule.autograd.engine import clear_grads
from chainrule.autograd.grad_mode import enable_grad, no_grad
from chainrule.autograd.tensor import Tensor

ParamsT = Iterable[Tensor] | Iterable[Mapping[str, Any]]


def check_hyper(
    name: str,
    value: Any,
    *,
    low: float = 0.0,
    high: float | None = None,
    open_high: bool = False,
    owner: str = "optimizer",
) -> float:
    """Validate one hyperparameter: a finite real number in [low, high] (or [low, high))."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{owner}: {name} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{owner}: {name} must be finite, got {value}")
    if value < low:
        raise ValueError(f"{owner}: invalid {name} {value}: it must be >= {low}")
    if high is not None and (value >= high if open_high else value > high):
        bound = f"< {high}" if open_high else f"<= {high}"
        raise ValueError(f"{owner}: invalid {name} {value}: it must be {bound}")
    return value


class Optimizer:
    """Base class of all optimizers.

    Subclasses set ``defaults`` (a dict of hyperparameters), declare which of them are
    bounded numbers (``_numbers``) and which are switches (``_switches``), check anything
    else in ``_validate(group)``, and implement ``_update(param, grad, state, group)``, which
    changes ``param.data`` in place. ``state`` is the per-parameter dict (momentum
    buffers, step counts), created empty on the parameter's first update.
    """

    #: hyperparameters every optimizer has: checked numbers (``check_hyper`` bounds) and switches
    _numbers: ClassVar[dict[str, dict[str, Any]]] = {"lr": {}, "weight_decay": {}}
    _switches: ClassVar[tuple[str, ...]] = ("maximize",)

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[Tensor, dict[str, Any]] = {}
        if isinstance(params, Tensor):
            raise TypeError(
                f"{type(self).__name__}: params must be an iterable of tensors or of dicts, got a single Tensor: "
                "wrap it in a list ([t]) or pass model.parameters()"
            )
        if hasattr(params, "parameters") and callable(params.parameters):
            raise TypeError(
                f"{type(self).__name__}: got a model ({type(params).__name__}); pass model.parameters() instead"
            )
        if isinstance(params, (str, bytes, Mapping)) or not isinstance(params, Iterable):
            raise TypeError(
                f"{type(self).__name__}: params must be an iterable of tensors or of dicts, got {type(params).__name__}"
            )
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list (does the model have parameters?)")
        if not isinstance(groups[0], Mapping):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ----------------------------------------------------------------- groups
    def add_param_group(self, group: Mapping[str, Any]) -> None:
        """Add a group of parameters (a dict with ``"params"`` and optional hyperparameter overrides)."""
        name = type(self).__name__
        if not isinstance(group, Mapping) or "params" not in group:
            raise TypeError(f"{name}: a parameter group must be a dict with a 'params' entry, got {group!r}")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        if not params:
            raise ValueError(f"{name}: a parameter group has an empty 'params' list")
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: can only optimize Tensors, got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(
                    f"{name}: can't optimize a non-leaf tensor (made by op {p.op.name}); optimize the leaf "
                    "tensors it was computed from"
                )
            if p.dtype.kind != "f":
                raise TypeError(f"{name}: parameters must be floating-point tensors, got dtype {p.dtype}")
        frozen = [i for i, p in enumerate(params) if not p.requires_grad]
        if frozen:
            # NOTE: PyTorch accepts these silently; they never get a gradient, so they never change
            warnings.warn(
                f"{name}: {len(frozen)} of {len(params)} tensors (positions {frozen[:5]}) do not require grad and "
                "will never be updated; make them with requires_grad=True (nn.Parameter does) or leave them out",
                UserWarning,
                stacklevel=3,
            )
        unknown = set(group) - set(self.defaults) - {"params", "initial_lr", "name"}
        if unknown:
            raise TypeError(
                f"{name}: unknown hyperparameter(s) {sorted(unknown)} in a parameter group; "
                f"known: {sorted(self.defaults)}"
            )
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params) or any(id(p) in seen for p in params):
            raise ValueError(f"{name}: a parameter appears more than once (in one group or in several)")
        full = {**self.defaults, **group, "params": params}
        self._validate(full)
        self.param_groups.append(full)

    def _validate(self, group: dict[str, Any]) -> None:
        """Check the hyperparameters of one group: numbers within their bounds, switches as bools.

        Subclasses with other rules extend this (raising ValueError or TypeError).
        """
        owner = type(self).__name__
        for name, bounds in self._numbers.items():
            if name in group:
                group[name] = check_hyper(name, group[name], owner=owner, **bounds)
        for name in self._switches:
            if name in group:
                group[name] = bool(group[name])

    # ----------------------------------------------------------------- stepping
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients: ``.grad = None`` (the default), or fill them with zeros in place."""
        for group in self.param_groups:
            if set_to_none:
                clear_grads(group["params"])
                continue
            with no_grad():
                for p in group["params"]:
                    if p.grad is not None:
                        p.grad.zero_()

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient (parameters whose ``.grad`` is None are skipped).

        ``closure``, if given, recomputes the loss (zero_grad, forward, backward) and
        returns it; it is called once before the update and its loss returned.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    grad = p.grad
                    if grad is None:
                        continue
                    grad = grad.data
                    if grad.shape != p.data.shape or grad.dtype != p.data.dtype:
                        grad = self._checked_grad(p, grad)
                    state = self.state.get(p)
                    if state is None:
                        state = self.state[p] = {}
                    self._update(p, grad, state, group)
        return loss

    def _checked_grad(self, p: Tensor, grad: np.ndarray) -> np.ndarray:
        """A gradient whose shape or dtype differs from its parameter's: an error, or converted to the dtype."""
        if grad.shape != p.data.shape:
            raise ValueError(
                f"{type(self).__name__}: parameter {p.name or ''} of shape {p.shape} has a gradient "
                f"of shape {grad.shape}"
            )
        return grad.astype(p.data.dtype)

    def _update(self, param: Tensor, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        raise NotImplementedError

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state as plain data: per-parameter buffers (copied) keyed by position, and the groups.

        Parameters are numbered in order across groups; ``load_state_dict`` on an optimizer built
        over the same parameters, in the same order, restores it.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state:
                    state[index[id(p)]] = {
                        k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in self.state[p].items()
                    }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore what ``state_dict()`` returned (hyperparameters and buffers)."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
            len(g["params"]) != len(mine["params"]) for g, mine in zip(groups, self.param_groups)
        ):
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: the saved groups do not match this optimizer's "
                "(different number of groups or of parameters per group)"
            )
        params = {}
        for saved, mine in zip(groups, self.param_groups):
            for i, p in zip(saved["params"], mine["params"]):
                params[i] = p
            for k, v in saved.items():
                if k != "params":
                    mine[k] = v
        self.state = {}
        for i, buffers in state_dict["state"].items():
            p = params[int(i)]
            self.state[p] = {
                k: (np.array(v, dtype=p.data.dtype) if isinstance(v, np.ndarray) else v) for k, v in buffers.items()
            }

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"  group {i}: {len(group['params'])} tensor(s)")
            for k in sorted(group):
                if k != "params":
                    lines.append(f"    {k}: {group[k]}")
        lines.append(")")
        return "\n".join(lines)
