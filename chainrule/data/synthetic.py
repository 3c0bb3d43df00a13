"""Generated data sets: logic gates, 2-D classification toys and 1-D regression curves.

Every generator takes a ``seed`` and returns ``(X, y)``: float32 features of shape (n, 2)
(or (n, 1) for the 1-D curves) and int64 class labels of shape (n,) (float32 targets of
shape (n, 1) for regression). Nothing is downloaded; the same seed gives the same set.
"""

from __future__ import annotations

import numpy as np

_GATES = {
    "xor": [0, 1, 1, 0],
    "and": [0, 0, 0, 1],
    "or": [0, 1, 1, 1],
}
_TRUTH_INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)


def _check(n: int, noise: float, name: str, minimum: int = 1) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < minimum:
        raise ValueError(f"{name}: n must be an integer >= {minimum}, got {n!r}")
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"{name}: noise must be a finite number >= 0, got {noise!r}")


def _gate(name: str, repeat: int, noise: float, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    _check(repeat, noise, name)
    X = np.tile(_TRUTH_INPUTS, (repeat, 1))
    y = np.tile(np.array(_GATES[name], dtype=np.int64), repeat)
    if noise:
        X = X + np.random.default_rng(seed).normal(0.0, noise, X.shape).astype(np.float32)
    return X, y


def xor(repeat: int = 1, noise: float = 0.0, seed: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """The XOR truth table: inputs (0,0) (0,1) (1,0) (1,1) -> 0 1 1 0; ``repeat`` copies, Gaussian ``noise``."""
    return _gate("xor", repeat, noise, seed)


def and_(repeat: int = 1, noise: float = 0.0, seed: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """The AND truth table (0 0 0 1): linearly separable, a single neuron learns it."""
    return _gate("and", repeat, noise, seed)


def or_(repeat: int = 1, noise: float = 0.0, seed: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """The OR truth table (0 1 1 1): linearly separable."""
    return _gate("or", repeat, noise, seed)


def circle(n: int = 400, noise: float = 0.05, seed: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """A disk of class 1 (radius < 0.5) inside a ring of class 0 (radius 0.7 to 1); not linearly separable."""
    _check(n, noise, "circle", 2)
    rng = np.random.default_rng(seed)
    inner = n // 2
    radius = np.concatenate([rng.uniform(0.0, 0.5, inner), rng.uniform(0.7, 1.0, n - inner)])
    angle = rng.uniform(0.0, 2 * np.pi, n)
    X = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1) + rng.normal(0.0, noise, (n, 2))
    y = np.concatenate([np.ones(inner, np.int64), np.zeros(n - inner, np.int64)])
    return _shuffled(X, y, rng)


def spiral(
    n: int = 300, noise: float = 0.05, seed: int | None = 0, classes: int = 2, turns: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """``classes`` interleaved spiral arms from the origin (the CS231n set for ``classes=3``)."""
    _check(n, noise, "spiral", classes)
    if classes < 2:
        raise ValueError(f"spiral: classes must be >= 2, got {classes}")
    rng = np.random.default_rng(seed)
    counts = np.full(classes, n // classes)
    counts[: n % classes] += 1
    parts_X, parts_y = [], []
    for k, m in enumerate(counts):
        r = np.linspace(0.05, 1.0, m)
        theta = 2 * np.pi * (turns * r + k / classes)
        parts_X.append(np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1))
        parts_y.append(np.full(m, k, np.int64))
    X = np.concatenate(parts_X) + rng.normal(0.0, noise, (n, 2))
    return _shuffled(X, np.concatenate(parts_y), rng)


def blobs(n: int = 300, noise: float = 0.15, seed: int | None = 0, centers: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian clusters (standard deviation ``noise``) around ``centers`` points evenly spaced on the unit circle."""
    _check(n, noise, "blobs", centers)
    if centers < 2:
        raise ValueError(f"blobs: centers must be >= 2, got {centers}")
    rng = np.random.default_rng(seed)
    y = np.arange(n, dtype=np.int64) % centers
    angle = 2 * np.pi * np.arange(centers) / centers + np.pi / 2
    means = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    X = means[y] + rng.normal(0.0, noise, (n, 2))
    return _shuffled(X, y, rng)


def moons(n: int = 400, noise: float = 0.1, seed: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles (scikit-learn's ``make_moons`` shape)."""
    _check(n, noise, "moons", 2)
    rng = np.random.default_rng(seed)
    upper = n // 2
    t_up = np.linspace(0.0, np.pi, upper)
    t_down = np.linspace(0.0, np.pi, n - upper)
    X = np.concatenate(
        [
            np.stack([np.cos(t_up), np.sin(t_up)], axis=1),
            np.stack([1.0 - np.cos(t_down), 0.5 - np.sin(t_down)], axis=1),
        ]
    )
    X = X + rng.normal(0.0, noise, X.shape)
    y = np.concatenate([np.zeros(upper, np.int64), np.ones(n - upper, np.int64)])
    return _shuffled(X, y, rng)


def xor_quadrants(
    n: int = 400, noise: float = 0.0, seed: int | None = 0, margin: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Points in [-1, 1]² labeled 1 where x·y > 0 (quadrants I and III): XOR in the plane.

    Points within ``margin`` of an axis are pushed out so the classes have a gap; ``noise``
    then jitters them.
    """
    _check(n, noise, "xor_quadrants", 2)
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, (n, 2))
    X = np.sign(X) * (margin + (1.0 - margin) * np.abs(X))
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    X = X + rng.normal(0.0, noise, X.shape)
    return X.astype(np.float32), y


def three_class(n: int = 450, noise: float = 0.05, seed: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """The plane cut into three 120-degree sectors around the origin, one class each.

    Linearly separable by a softmax classifier (three half-plane comparisons), but not by
    any single line: the smallest set that needs more than one output unit.
    """
    _check(n, noise, "three_class", 3)
    rng = np.random.default_rng(seed)
    y = np.arange(n, dtype=np.int64) % 3
    # Keep points away from the sector borders so the classes have a margin before the noise.
    angle = 2 * np.pi * (y + rng.uniform(0.1, 0.9, n)) / 3
    radius = rng.uniform(0.2, 1.0, n)
    X = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1) + rng.normal(0.0, noise, (n, 2))
    return _shuffled(X, y, rng)


def sine(n: int = 200, noise: float = 0.05, seed: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """1-D regression: y = sin(x) + noise for x uniform in [-π, π]; X and y of shape (n, 1)."""
    _check(n, noise, "sine")
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(-np.pi, np.pi, n))
    y = np.sin(x) + rng.normal(0.0, noise, n)
    return x[:, None].astype(np.float32), y[:, None].astype(np.float32)


def square_pulse(
    n: int = 200, noise: float = 0.02, seed: int | None = 0, width: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """1-D regression: y = 1 for |x| < width/2, else 0, for x uniform in [-2, 2] (a function with jumps)."""
    _check(n, noise, "square_pulse")
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(-2.0, 2.0, n))
    y = (np.abs(x) < width / 2).astype(np.float64) + rng.normal(0.0, noise, n)
    return x[:, None].astype(np.float32), y[:, None].astype(np.float32)


def _shuffled(X: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(len(X))
    return X[order].astype(np.float32), y[order]
