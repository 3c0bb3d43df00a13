"""Per-op overhead: a chain of small elementwise ops on a 1-element tensor, forward + backward.

The chain repeats ``sigmoid, *4, -2, tanh``: near 0 that cycle is the identity to
first order (sigmoid'(0) * 4 * tanh'(0) = 1), so neither the value nor the gradient
blows up or dies out over a thousand ops, and the gradient stays a meaningful number
to compare across implementations. The arithmetic is trivial, so the time measured is
what each library spends per op around the arithmetic: dispatch, graph recording,
the backward walk.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from benchmarks.harness import Case, Runner

X0 = 0.5
CYCLE = 4  # ops per cycle: sigmoid, mul, sub, tanh


def chain_chainrule(n_ops: int) -> tuple[float, float]:
    import chainrule as cr

    x = cr.tensor(np.array([X0], np.float32), requires_grad=True)
    y = x
    for _ in range(n_ops // CYCLE):
        y = cr.sigmoid(y)
        y = y * 4.0
        y = y - 2.0
        y = cr.tanh(y)
    y.backward()
    return y.data, x.grad


def chain_torch(n_ops: int) -> tuple[Any, Any]:
    import torch

    x = torch.tensor([X0], dtype=torch.float32, requires_grad=True)
    y = x
    for _ in range(n_ops // CYCLE):
        y = torch.sigmoid(y)
        y = y * 4.0
        y = y - 2.0
        y = torch.tanh(y)
    y.backward()
    return y.detach(), x.grad


def chain_numpy(n_ops: int) -> tuple[np.ndarray, np.ndarray]:
    """The same chain with the backward written by hand: save what each local gradient needs."""
    x = np.array([X0], np.float32)
    saved = []
    y = x
    for _ in range(n_ops // CYCLE):
        s = 1 / (1 + np.exp(-y))
        y = s * 4.0
        y = y - 2.0
        t = np.tanh(y)
        saved.append((s, t))
        y = t
    grad = np.ones_like(y)
    for s, t in reversed(saved):
        grad = grad * (1 - t * t)  # tanh
        grad = grad * 4.0  # mul (the sub passes the gradient through)
        grad = grad * (s * (1 - s))  # sigmoid
    return y, grad


CHAINS = {"chainrule": chain_chainrule, "torch": chain_torch, "numpy": chain_numpy}


def cases(smoke: bool, reps: int | None) -> list[Case]:
    n_ops = 100 if smoke else 1000
    # Many short repetitions: a chain takes milliseconds and the machine's speed swings within a
    # second, so short interleaved turns pair the implementations' runs more tightly.
    chains = 1 if smoke else 3  # chains per repetition
    reps = reps or (1 if smoke else 21)

    def make(impl: str, memory: bool) -> Runner:
        chain = CHAINS[impl]
        count = 1 if memory else chains

        def chunk(rep: int, deadline: float) -> float:
            done = 0
            while done < count:
                chain(n_ops)
                done += 1
                if time.perf_counter() > deadline:
                    break
            return float(done * (n_ops // CYCLE) * CYCLE)

        return Runner(chunk=chunk, warmup=lambda: chain(n_ops))

    def check(impl: str) -> list[float]:
        y, grad = CHAINS[impl](n_ops)
        return [float(np.asarray(y)[0]), float(np.asarray(grad)[0])]

    return [
        Case(
            name="per_op",
            workload="per_op",
            title=f"per-op overhead ({n_ops}-op chain)",
            unit="us/op",
            detail=f"{n_ops} elementwise ops (sigmoid, *c, -c, tanh) on a 1-element float32 tensor, "
            f"forward + backward; {chains} chains per repetition",
            reps=reps,
            make=make,
            check=check,
        )
    ]
