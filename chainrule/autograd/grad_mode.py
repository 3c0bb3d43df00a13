"""Switches that change what the engine records: ``no_grad`` and ``detect_anomaly``."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class _State(threading.local):
    # Class attributes are the defaults every new thread sees.
    grad_enabled = True
    anomaly = False
    # While ``chainrule.compile`` traces a function: the list every applied op is appended to.
    tape: list | None = None
    # True when apply() must call its watchers (anomaly checks or tracing): one flag to test.
    watch = False
    # The three flags above in one number, for the C engine (chainrule/backend/_speedups.c) to read once
    # per op: 0 record nothing (no_grad), 1 record the graph, 2 watchers on (take the Python path).
    mode = 1


def refresh_flags() -> None:
    """Recompute the flags derived from ``grad_enabled``, ``anomaly`` and ``tape``."""
    state.watch = watch = state.anomaly or state.tape is not None
    state.mode = 2 if watch else int(state.grad_enabled)


state = _State()


class _Structure:
    """A count of parameter, buffer and submodule assignments in every ``nn.Module`` (all threads).

    ``nn.Module`` bumps it when a parameter object is put in place or taken out; a function
    captured by ``chainrule.compile`` holds the parameter objects it saw, so it retraces when
    the count has moved (in-place changes to ``.data`` need no retrace: a replay reads them).
    """

    version = 0
    #: how many in-place tensor operations ran (``add_``, ``+=``, ...): while 0, no tensor's
    #: version can differ from 0, so a compiled replay need not record its inputs' versions
    in_place = 0


structure = _Structure()


class _Switch:
    """A context manager that is also a decorator, with or without parentheses (as in PyTorch)."""

    _attr = ""
    _value = False

    def __new__(cls, fn: Callable[..., Any] | None = None) -> Any:
        self = super().__new__(cls)
        # ``@no_grad`` (no parentheses) hands the function straight to the constructor.
        return self if fn is None else self(fn)

    def __enter__(self) -> None:
        self._previous = getattr(state, self._attr)
        setattr(state, self._attr, self._value)
        refresh_flags()

    def __exit__(self, *exc: object) -> None:
        setattr(state, self._attr, self._previous)
        refresh_flags()

    def __call__(self, fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with type(self)():
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class _GradSwitch(_Switch):
    """``no_grad`` and ``enable_grad``: only ``grad_enabled`` and the mode derived from it change.

    NOTE: the watchers flag cannot change here, so the mode is set directly instead of through
    ``refresh_flags``: a quarter of the thread-local reads and writes (``with no_grad()`` wraps
    every optimizer step and evaluation batch).
    """

    def __enter__(self) -> None:
        st = state
        self._previous = st.grad_enabled
        st.grad_enabled = value = self._value
        st.mode = 2 if st.watch else int(value)

    def __exit__(self, *exc: object) -> None:
        st = state
        st.grad_enabled = value = self._previous
        st.mode = 2 if st.watch else int(value)


class no_grad(_GradSwitch):
    """Record no graph inside: results have ``requires_grad=False``.

    Use it for evaluation and for parameter updates::

        with chainrule.no_grad():
            preds = model(x)

        @chainrule.no_grad()
        def evaluate(...): ...
    """

    _attr = "grad_enabled"
    _value = False


class enable_grad(_GradSwitch):
    """Record the graph again inside a ``no_grad`` block."""

    _attr = "grad_enabled"
    _value = True


class detect_anomaly(_Switch):
    """Raise at the first op whose forward output or backward gradient is not finite.

    The error names the op and the line of user code that created it. Costs time:
    use it to debug, not to train.
    """

    _attr = "anomaly"
    _value = True


def is_grad_enabled() -> bool:
    """True unless inside ``no_grad``."""
    return state.grad_enabled
