"""Measuring: a case (one row of the table), interleaved timing, medians and paired ratios.

Fairness rules, in one place:

* all implementations run in the same process, one repetition of each in turn, and the
  order rotates every repetition, so drift in the machine's speed (this machine is shared:
  its speed swings from minute to minute) hits them all alike;
* a ratio is taken within a repetition (paired: the runs were seconds apart) and the
  table reports the median of those ratios, with the smallest and largest;
* every implementation is warmed up (first-call costs paid) before the first timed run;
* the garbage collector stays on (users run with it on) but is emptied before each run.

Thread settings are variants of the same implementation, interleaved like the rest:
``default`` leaves every library's threading alone (PyTorch's ``torch.set_num_threads``
untouched, NumPy's BLAS at its own default), ``1`` pins NumPy's BLAS (threadpoolctl) and
PyTorch (``torch.set_num_threads``) to one thread.
NOTE: on a loaded 2-core machine, a multi-threaded BLAS or OpenMP region stalls whenever
its worker thread is descheduled (measured here: MNIST-MLP steps 5-100x slower, changing
from run to run), so the pinned setting is the one whose ratios are reproducible.
"""

from __future__ import annotations

import contextlib
import gc
import math
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

#: every implementation, in table order; "chainrule_compiled" is the eager chainrule step with its
#: loss function captured once by ``chainrule.compile`` and replayed (training workloads only)
IMPLS = ("chainrule", "torch", "numpy", "chainrule_compiled")
#: the implementations every case runs (cases where compile mode applies add "chainrule_compiled")
BASE_IMPLS = ("chainrule", "torch", "numpy")
#: how an implementation is named in tables and text
DISPLAY = {"chainrule_compiled": "chainrule (compiled)"}
#: thread settings: "default" (leave libraries alone) or a thread count pinned for all
THREAD_SETTINGS = ("default", "1")
#: seconds after which a repetition of one implementation stops (see ``Runner``)
MAX_CHUNK_S = 1.0


def _nothing() -> None:
    return None


@dataclass
class Runner:
    """One implementation of one case, set up: ``chunk(rep, deadline)`` does one repetition and
    returns the work done, in the case's unit (ops, steps or samples).

    A chunk stops early once ``time.perf_counter()`` passes ``deadline`` (checked between
    steps), so a stalled thread setting cannot stretch the run; the work it did is counted.
    ``prime`` (memory runners only): one-time work the tracemalloc probe does before it starts
    counting, so that it sees the steady state (compile mode's trace).
    """

    chunk: Callable[[int, float], float]
    warmup: Callable[[], None] = _nothing
    prime: Callable[[], None] = _nothing


@dataclass
class Case:
    """One row of the table: a workload at one size.

    ``make(impl, memory)`` sets an implementation up (outside any timing); with
    ``memory=True`` its ``chunk(0)`` does a short, representative piece of work for the
    peak-memory probe. ``check(impl)`` trains a couple of steps from the shared initial
    weights and returns the values (losses, outputs) that must agree across implementations.
    ``impls``: the implementations this case runs, in table order (a subset of ``IMPLS``).
    """

    name: str
    workload: str
    title: str
    unit: str  # "us/op", "steps/s" or "samples/s"
    detail: str
    reps: int
    make: Callable[[str, bool], Runner]
    check: Callable[[str], list[float]]
    #: extra per-implementation results a run fills in (e.g. the digits run's test accuracy)
    notes: dict[str, dict[str, float]] = field(default_factory=dict)
    #: a repetition of one implementation stops after this many seconds (see ``Runner``)
    max_chunk_s: float = MAX_CHUNK_S
    #: the implementations this case runs
    impls: tuple[str, ...] = BASE_IMPLS


def variant(impl: str, threads: str) -> str:
    """The key of an implementation under a thread setting: ``torch`` or ``torch@1``."""
    return impl if threads == "default" else f"{impl}@{threads}"


def display(impl: str) -> str:
    """An implementation's name in tables and text: ``chainrule (compiled)`` for ``chainrule_compiled``."""
    return DISPLAY.get(impl, impl)


def split_variant(key: str) -> tuple[str, str]:
    impl, _, threads = key.partition("@")
    return impl, threads or "default"


_controller: Any = None


@contextlib.contextmanager
def thread_setting(threads: str) -> Iterator[None]:
    """Pin NumPy's BLAS and PyTorch to ``threads`` threads inside; "default" changes nothing."""
    if threads == "default":
        yield
        return
    global _controller
    import torch
    from threadpoolctl import ThreadpoolController

    if _controller is None:
        _controller = ThreadpoolController()
    n = int(threads)
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with _controller.limit(limits=n, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(before)


@dataclass
class Timing:
    """What one case measured: throughput per repetition per variant (implementation @ threads)."""

    throughput: dict[str, list[float]] = field(default_factory=dict)  # work units per second
    elapsed: dict[str, list[float]] = field(default_factory=dict)  # seconds per repetition
    seconds: float = 0.0

    def median(self, key: str) -> float:
        return statistics.median(self.throughput[key])

    def ratios(self, key: str, other: str) -> list[float]:
        """Speed of ``key`` over speed of ``other``, per repetition (>1: ``key`` is faster)."""
        return [a / b for a, b in zip(self.throughput[key], self.throughput[other])]


def rotation(items: tuple[str, ...], rep: int) -> tuple[str, ...]:
    """The order of the variants in repetition ``rep``: each goes first in turn."""
    k = rep % len(items)
    return items[k:] + items[:k]


def time_case(
    case: Case,
    impls: tuple[str, ...] | None = None,
    settings: tuple[str, ...] = ("default",),
    reps: int | None = None,
) -> Timing:
    """Set up every variant (``impls``: the case's own by default), warm each up, then time
    ``reps`` interleaved repetitions."""
    impls = case.impls if impls is None else impls
    reps = case.reps if reps is None else reps
    started = time.perf_counter()
    keys = tuple(variant(impl, threads) for threads in settings for impl in impls)
    runners = {key: case.make(split_variant(key)[0], False) for key in keys}
    for key in keys:
        with thread_setting(split_variant(key)[1]):
            runners[key].warmup()
    timing = Timing({key: [] for key in keys}, {key: [] for key in keys})
    for rep in range(reps):
        for key in rotation(keys, rep):
            gc.collect()
            with thread_setting(split_variant(key)[1]):
                t0 = time.perf_counter()
                work = runners[key].chunk(rep, t0 + case.max_chunk_s)
                elapsed = time.perf_counter() - t0
            timing.throughput[key].append(work / elapsed)
            timing.elapsed[key].append(elapsed)
    timing.seconds = time.perf_counter() - started
    return timing


NO_DEADLINE = math.inf


def display_value(unit: str, throughput: float) -> float:
    """Throughput in the table's unit: microseconds per op for "us/op", else as is."""
    return 1e6 / throughput if unit == "us/op" else throughput


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def finite_positive(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0
