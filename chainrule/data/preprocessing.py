"""Splitting and scaling: ``train_test_split``, ``Standardizer``, ``standardize``, ``one_hot``."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.data.loader import as_array


def _n_test(n: int, test_size: float | int) -> int:
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float, np.integer, np.floating)):
        raise TypeError(f"train_test_split: test_size must be a fraction or a count, got {test_size!r}")
    if isinstance(test_size, (float, np.floating)):
        if not 0.0 < test_size < 1.0:
            raise ValueError(f"train_test_split: a fractional test_size must lie in (0, 1), got {test_size}")
        n_test = int(np.ceil(test_size * n))  # sklearn's rounding: the test side gets the ceiling
    else:
        n_test = int(test_size)
    if not 0 < n_test < n:
        raise ValueError(
            f"train_test_split: test_size={test_size} leaves {n_test} test and {n - n_test} train samples of {n}; "
            "both sides need at least one"
        )
    return n_test


def split_indices(
    n: int,
    test_size: float | int = 0.2,
    seed: int | np.random.Generator | None = 0,
    stratify: Any = None,
    shuffle: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """The (train, test) index arrays that ``train_test_split`` uses."""
    n_test = _n_test(n, test_size)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if stratify is None:
        order = rng.permutation(n) if shuffle else np.arange(n)
        return order[n_test:], order[:n_test]
    if not shuffle:
        raise ValueError("train_test_split: stratify needs shuffle=True")
    labels = as_array(stratify, "stratify")
    if labels.shape[:1] != (n,):
        raise ValueError(f"train_test_split: stratify has shape {labels.shape}, expected ({n},)")
    classes, inverse = np.unique(labels, return_inverse=True)
    counts = np.bincount(inverse, minlength=len(classes))
    # Largest-remainder allocation: each class gets its share of the test set, the total is exactly n_test.
    share = counts * n_test / n
    take = np.floor(share).astype(int)
    leftover = n_test - take.sum()
    take[np.argsort(-(share - take), kind="stable")[:leftover]] += 1
    test_parts, train_parts = [], []
    for c, k in enumerate(take):
        members = rng.permutation(np.flatnonzero(inverse == c))
        test_parts.append(members[:k])
        train_parts.append(members[k:])
    return rng.permutation(np.concatenate(train_parts)), rng.permutation(np.concatenate(test_parts))


def train_test_split(
    X: Any,
    y: Any,
    test_size: float | int = 0.2,
    seed: int | np.random.Generator | None = 0,
    stratify: bool | Any = False,
    shuffle: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split into ``X_train, X_test, y_train, y_test`` (scikit-learn's order).

    ``test_size`` is a fraction in (0, 1) (the test side gets ``ceil(test_size * n)``) or a
    count. Samples are shuffled first (by ``seed``), so data stored sorted by class (like
    MNIST-5k) splits fairly. ``stratify=True`` keeps each class's share equal on both sides
    (pass an array to stratify by other labels). The same seed gives the same split.
    """
    X, y = as_array(X, "X"), as_array(y, "y")
    if len(X) != len(y):
        raise ValueError(f"train_test_split: X has {len(X)} samples but y has {len(y)}")
    labels = (y if stratify is True else None) if isinstance(stratify, bool) else stratify
    train, test = split_indices(len(X), test_size, seed, labels, shuffle)
    return X[train], X[test], y[train], y[test]


class Standardizer:
    """Scale each feature to zero mean and unit variance: ``(x - mean) / std``, fitted on training data only.

    Features with zero spread (blank pixels) keep ``std = 1`` so they map to 0 instead of NaN.
    """

    def __init__(self, mean: Any = None, std: Any = None) -> None:
        self.mean = None if mean is None else np.asarray(mean)
        self.std = None if std is None else np.asarray(std)

    def fit(self, X: Any) -> Standardizer:
        X = as_array(X, "Standardizer.fit X")
        if len(X) == 0:
            raise ValueError("Standardizer.fit: no samples")
        self.mean = X.mean(axis=0)
        std = X.std(axis=0)
        self.std = np.where(std > 1e-12, std, 1.0).astype(self.mean.dtype)
        return self

    def _check(self) -> None:
        if self.mean is None or self.std is None:
            raise RuntimeError("Standardizer: call fit(X_train) first")

    def transform(self, X: Any) -> np.ndarray:
        self._check()
        X = as_array(X, "Standardizer.transform X")
        if X.shape[1:] != self.mean.shape:
            raise ValueError(f"Standardizer: fitted on features of shape {self.mean.shape}, got {X.shape[1:]}")
        out = (X - self.mean) / self.std
        return out.astype(X.dtype) if X.dtype.kind == "f" else out

    def fit_transform(self, X: Any) -> np.ndarray:
        return self.fit(X).transform(X)

    def inverse_transform(self, X: Any) -> np.ndarray:
        self._check()
        return as_array(X) * self.std + self.mean

    def to_dict(self) -> dict[str, list]:
        """Plain lists (JSON-ready); ``Standardizer.from_dict`` rebuilds it."""
        self._check()
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Standardizer:
        return cls(np.asarray(state["mean"]), np.asarray(state["std"]))

    def __repr__(self) -> str:
        shape = None if self.mean is None else self.mean.shape
        return f"Standardizer(features={shape})"


def standardize(X_train: Any, *others: Any) -> tuple[Any, ...]:
    """Fit a ``Standardizer`` on ``X_train`` and apply it to it and to every other array given.

    X_train, X_test, scaler = standardize(X_train, X_test)
    """
    scaler = Standardizer().fit(X_train)
    return (scaler.transform(X_train), *(scaler.transform(X) for X in others), scaler)


def one_hot(labels: Any, num_classes: int | None = None, dtype: Any = np.float32) -> np.ndarray:
    """Integer labels of shape (n,) -> an (n, num_classes) matrix of 0/1."""
    labels = as_array(labels, "one_hot labels")
    if labels.dtype.kind not in "iu":
        if labels.dtype.kind == "f" and np.all(labels == np.round(labels)):
            labels = labels.astype(np.int64)
        else:
            raise TypeError(f"one_hot: labels must be integers, got dtype {labels.dtype}")
    k = int(labels.max()) + 1 if num_classes is None else int(num_classes)
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"one_hot: labels must lie in [0, {k}), got range [{labels.min()}, {labels.max()}]")
    out = np.zeros((labels.size, k), dtype=dtype)
    out[np.arange(labels.size), labels.ravel()] = 1
    return out.reshape(*labels.shape, k)
