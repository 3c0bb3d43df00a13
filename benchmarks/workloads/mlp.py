"""MLP workloads: XOR, the MNIST-shaped MLP (training at three batch sizes, and inference), a deep narrow net.

The training cases also run ``chainrule_compiled`` (compile mode); inference does not.

A repetition is a contiguous slice of the run: the epoch (or the step budget) is cut
into ``reps`` slices and the implementations take turns on the same slice, so over a
full run each implementation trains exactly one epoch (or the stated number of steps).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import numpy as np

from benchmarks.harness import IMPLS, Case, Runner
from benchmarks.workloads.common import (
    MLPSpec,
    as_impl_array,
    init_layers,
    make_mlp,
    no_grad,
    random_classification,
    to_float,
)

MNIST_SIZES = (784, 256, 128, 10)
MNIST_SAMPLES = 60_000
CHECK_STEPS = 3


@functools.lru_cache(maxsize=2)
def mnist_like(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Random data shaped like MNIST: n x 784 float32 inputs, labels 0..9."""
    return random_classification(n, 784, 10, seed=1)


def xor_data() -> tuple[np.ndarray, np.ndarray]:
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    y = np.array([[0], [1], [1], [0]], np.float32)
    return x, y


def deep_data(batch: int) -> tuple[np.ndarray, np.ndarray]:
    return random_classification(batch, 32, 10, seed=2)


def train_case(
    *,
    name: str,
    workload: str,
    title: str,
    unit: str,
    detail: str,
    spec: MLPSpec,
    data: Callable[[bool], tuple[np.ndarray, np.ndarray]],
    batch: int | None,
    steps_per_rep: int,
    reps: int,
    memory_steps: int = 4,
) -> Case:
    """A training case. ``batch=None``: full-batch steps on the whole data set, else minibatches
    walking through the data in order (repetition ``r`` trains on slice ``r`` of the epoch)."""

    def make(impl: str, memory: bool) -> Runner:
        x, y = data(memory)
        model = make_mlp(impl, spec, init_layers(spec.sizes, seed=0))
        xs, ys = as_impl_array(impl, x), as_impl_array(impl, y)
        steps = memory_steps if memory else steps_per_rep
        first = (xs, ys) if batch is None else (xs[:batch], ys[:batch])
        # compile mode's trace: the timed runs pay it in their warm-up; the peak-RSS probe counts it
        # (it runs from cold, like every implementation); the tracemalloc probe primes first, to see the replay
        prime = functools.partial(model.prime, *first) if hasattr(model, "prime") else lambda: None

        if batch is None:

            def chunk(rep: int, deadline: float) -> float:
                done = 0
                while done < steps:
                    loss = model.step(xs, ys)
                    done += 1
                    if time.perf_counter() > deadline:
                        break
                to_float(loss)
                return float(done)

            return Runner(chunk=chunk, warmup=lambda: model.step(xs, ys), prime=prime)

        def chunk(rep: int, deadline: float) -> float:
            start = rep % reps * steps * batch
            end = start + steps * batch
            i = start
            while i < end:
                loss = model.step(xs[i : i + batch], ys[i : i + batch])
                i += batch
                if time.perf_counter() > deadline:
                    break
            to_float(loss)
            return float(i - start)

        return Runner(chunk=chunk, warmup=lambda: model.step(xs[:batch], ys[:batch]), prime=prime)

    def check(impl: str) -> list[float]:
        x, y = data(True)
        model = make_mlp(impl, spec, init_layers(spec.sizes, seed=0))
        xs, ys = as_impl_array(impl, x), as_impl_array(impl, y)
        if batch is None:
            return [to_float(model.step(xs, ys)) for _ in range(CHECK_STEPS)]
        b = batch
        return [to_float(model.step(xs[i * b : (i + 1) * b], ys[i * b : (i + 1) * b])) for i in range(CHECK_STEPS)]

    return Case(name, workload, title, unit, detail, reps, make, check, impls=IMPLS)


def inference_case(batch: int, n: int, reps: int) -> Case:
    spec = MLPSpec(MNIST_SIZES)
    steps_per_rep = max(1, n // batch // reps)

    def make(impl: str, memory: bool) -> Runner:
        x, _ = mnist_like(2 * batch if memory else n)
        model = make_mlp(impl, spec, init_layers(spec.sizes, seed=0))
        xs = as_impl_array(impl, x)
        steps = 2 if memory else steps_per_rep

        def chunk(rep: int, deadline: float) -> float:
            start = rep % reps * steps * batch
            end = start + steps * batch
            i = start
            with no_grad(impl):
                while i < end:
                    out = model.forward(xs[i : i + batch])
                    i += batch
                    if time.perf_counter() > deadline:
                        break
            to_float(out[0, 0])
            return float(i - start)

        def warmup() -> None:
            with no_grad(impl):
                model.forward(xs[:batch])

        return Runner(chunk=chunk, warmup=warmup)

    def check(impl: str) -> list[float]:
        x, _ = mnist_like(2 * batch)
        model = make_mlp(impl, spec, init_layers(spec.sizes, seed=0))
        with no_grad(impl):
            out = np.asarray(model.forward(as_impl_array(impl, x[:4])))
        return [float(v) for v in out.ravel()]

    return Case(
        name=f"mnist_infer_b{batch}",
        workload="mnist_infer",
        title=f"MNIST MLP inference, batch {batch}",
        unit="samples/s",
        detail=f"784-256-128-10 ReLU forward only (no_grad), {steps_per_rep * reps * batch} samples "
        f"in batches of {batch}",
        reps=reps,
        make=make,
        check=check,
    )


def xor_cases(smoke: bool, reps: int | None) -> list[Case]:
    # 2,000 steps take a fraction of a second, and this row's ratio sits near its target: three
    # times 2,000 steps in many short interleaved turns pair the runs tightly and steady the median
    reps = reps or (1 if smoke else 48)
    total = 20 if smoke else 6000
    steps = max(1, total // reps)
    return [
        train_case(
            name="xor",
            workload="xor",
            title="XOR 2-4-1 MLP, full batch",
            unit="steps/s",
            detail=f"2-4-1, tanh hidden, sigmoid output, MSE, SGD lr 0.5, 4 samples; {steps * reps} steps",
            spec=MLPSpec((2, 4, 1), hidden="tanh", head="sigmoid_mse", lr=0.5),
            data=lambda memory: xor_data(),
            batch=None,
            steps_per_rep=steps,
            reps=reps,
        )
    ]


def mnist_cases(smoke: bool, reps: int | None) -> list[Case]:
    # many short interleaved turns (about 0.05 s each): the machine's speed swings within seconds
    reps = reps or (1 if smoke else 24)
    out = []
    for batch in (32, 128, 1024):
        n = 2 * batch * reps if smoke else MNIST_SAMPLES  # smoke: two steps per repetition
        steps = max(1, n // batch // reps)

        def data(memory: bool, batch: int = batch, n: int = n) -> tuple[np.ndarray, np.ndarray]:
            return mnist_like(max(CHECK_STEPS, 4) * batch if memory else n)

        out.append(
            train_case(
                name=f"mnist_mlp_b{batch}",
                workload="mnist_mlp",
                title=f"MNIST MLP training, batch {batch}",
                unit="samples/s",
                detail=f"784-256-128-10 ReLU, softmax cross-entropy, SGD lr 0.05; "
                f"{steps * reps * batch} random samples (one epoch) in batches of {batch}",
                spec=MLPSpec(MNIST_SIZES, hidden="relu", head="ce", lr=0.05),
                data=data,
                batch=batch,
                steps_per_rep=steps,
                reps=reps,
            )
        )
    return out


def deep_cases(smoke: bool, reps: int | None) -> list[Case]:
    reps = reps or (1 if smoke else 5)
    total = 3 if smoke else 1000
    steps = max(1, total // reps)
    batch = 64
    return [
        train_case(
            name="deep_narrow",
            workload="deep_narrow",
            title="deep narrow MLP (20 x 32, tanh)",
            unit="steps/s",
            detail=f"20 linear layers of 32 units (32-32-...-32-10), tanh, softmax cross-entropy, "
            f"SGD lr 0.05, batch {batch}; {steps * reps} steps on one batch",
            spec=MLPSpec((32,) * 20 + (10,), hidden="tanh", head="ce", lr=0.05),
            data=lambda memory: deep_data(batch),
            batch=None,
            steps_per_rep=steps,
            reps=reps,
        )
    ]


def inference_cases(smoke: bool, reps: int | None) -> list[Case]:
    reps = reps or (1 if smoke else 4)
    return [inference_case(batch, 2 * batch * reps if smoke else MNIST_SAMPLES, reps) for batch in (32, 1024)]
