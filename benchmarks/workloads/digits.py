"""The digits training run end to end: 8x8 digits (scikit-learn's load_digits), an MLP, some epochs.

One repetition is a whole run from the shared initial weights: split and convert the data,
train with a fresh shuffle every epoch (the same permutations for every implementation),
then measure test accuracy. Reading the data file is done once, outside the timing.
For ``chainrule_compiled`` a run builds its compiled step afresh, so every repetition pays
its traces (the full batch, and the smaller last batch of an epoch) inside the timing.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import math
import os
import time
from typing import Any

import numpy as np

from benchmarks.harness import IMPLS, Case, Runner
from benchmarks.workloads.common import MLPSpec, as_impl_array, init_layers, make_mlp, no_grad, to_float

SPEC = MLPSpec((64, 64, 10), hidden="relu", head="ce", lr=0.1)
BATCH = 32
TRAIN = 1437  # 80% of the 1797 images


@functools.lru_cache(maxsize=1)
def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """(1797 x 64 float32 pixels scaled to [0, 1], int64 labels), from scikit-learn's bundled file.

    The CSV is read directly (it is what ``sklearn.datasets.load_digits`` reads) because
    importing scikit-learn costs seconds in every memory-probe subprocess.
    """
    spec = importlib.util.find_spec("sklearn")
    path = os.path.join(os.path.dirname(spec.origin), "datasets", "data", "digits.csv.gz") if spec else ""
    if os.path.exists(path):
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",")
        pixels, labels = table[:, :-1], table[:, -1]
    else:
        from sklearn.datasets import load_digits as sk_load_digits

        bunch = sk_load_digits()
        pixels, labels = bunch.data, bunch.target
    return (pixels / 16.0).astype(np.float32), labels.astype(np.int64)


def _take(impl: str, array: Any, order: np.ndarray) -> Any:
    if impl == "torch":
        import torch

        return array[torch.from_numpy(order)]
    return array[order]


def _argmax(impl: str, out: Any) -> np.ndarray:
    if impl == "torch":
        return out.argmax(dim=1).numpy()
    return np.asarray(out).argmax(axis=1)


def train_digits(
    impl: str, epochs: int, max_steps: int | None = None, deadline: float = math.inf
) -> tuple[list[float], float, int]:
    """Train from scratch (stopping after ``max_steps`` steps or at ``deadline``), then test.

    Returns the loss of every step, the test accuracy and the number of samples trained on.
    """
    pixels, labels = load_digits()
    split = np.random.default_rng(0).permutation(len(pixels))
    train, test = split[:TRAIN], split[TRAIN:]
    x_train, y_train = as_impl_array(impl, pixels[train]), as_impl_array(impl, labels[train])
    x_test = as_impl_array(impl, pixels[test])
    model = make_mlp(impl, SPEC, init_layers(SPEC.sizes, seed=0))
    rng = np.random.default_rng(3)
    losses: list[float] = []
    seen = 0
    stop = False
    for _ in range(epochs):
        order = rng.permutation(TRAIN)
        xe, ye = _take(impl, x_train, order), _take(impl, y_train, order)
        for i in range(0, TRAIN, BATCH):
            xb, yb = xe[i : i + BATCH], ye[i : i + BATCH]
            losses.append(to_float(model.step(xb, yb)))
            seen += len(yb)
            stop = len(losses) == max_steps or time.perf_counter() > deadline
            if stop:
                break
        if stop:
            break
    with no_grad(impl):
        predicted = _argmax(impl, model.forward(x_test))
    accuracy = float((predicted == labels[test]).mean())
    return losses, accuracy, seen


def cases(smoke: bool, reps: int | None) -> list[Case]:
    reps = reps or (1 if smoke else 5)
    epochs = 1 if smoke else 10
    max_steps = 4 if smoke else None  # smoke: a few steps of the first epoch, then the test accuracy
    accuracy: dict[str, float] = {}

    def make(impl: str, memory: bool) -> Runner:
        load_digits()

        def chunk(rep: int, deadline: float) -> float:
            if memory:
                train_digits(impl, 1, max_steps=8)
                return 8.0 * BATCH
            _, acc, seen = train_digits(impl, epochs, max_steps, deadline)
            if seen == epochs * TRAIN:  # a run cut short by the deadline has not trained fully
                accuracy[impl] = acc
            return float(seen)

        return Runner(chunk=chunk, warmup=lambda: train_digits(impl, 1, max_steps=2))

    def check(impl: str) -> list[float]:
        losses, _, _ = train_digits(impl, 1, max_steps=3)
        return losses

    case = Case(
        name="digits",
        workload="digits",
        title=f"digits end to end ({epochs} epoch{'s' if epochs > 1 else ''})",
        unit="samples/s",
        detail=f"load_digits 8x8, 64-64-10 ReLU MLP, cross-entropy, SGD lr {SPEC.lr}, batch {BATCH}, "
        f"{TRAIN} training images, {epochs} epochs with reshuffling, then test accuracy",
        reps=reps,
        make=make,
        check=check,
        notes={"test accuracy": accuracy},
        impls=IMPLS,
    )
    return [case]
