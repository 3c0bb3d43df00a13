"""``DataLoader``: seeded minibatches over in-memory arrays."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from chainrule.autograd.tensor import Tensor, tensor


def as_array(data: Any, what: str = "X") -> np.ndarray:
    """An ndarray view of ``data`` (a Tensor's ``.data``, an ndarray, or anything NumPy converts)."""
    if isinstance(data, Tensor):
        return data.data
    array = np.asarray(data)
    if array.dtype == object:
        raise TypeError(f"{what}: cannot convert {type(data).__name__} to a numeric array")
    return array


class DataLoader:
    """Iterate over ``(X_batch, y_batch)`` minibatches of two aligned arrays.

    Batches are chainrule ``Tensor`` s (leaves, no gradient), of the arrays' own dtypes
    (so float32 features stay float32 and integer labels stay integer). ``batch_size=None``
    gives the whole set as one batch (full-batch gradient descent). With ``shuffle=True``
    each pass (epoch) draws a new permutation from a generator seeded once by ``seed``:
    two loaders built with the same seed yield the same sequence of batches, epoch after
    epoch. ``seed`` may also be a ``numpy.random.Generator`` (then it is used, not copied).
    ``drop_last=True`` skips a final batch smaller than ``batch_size``. ``y`` may be None
    (then batches are single tensors).

        loader = DataLoader(X_train, y_train, batch_size=64, shuffle=True, seed=0)
        for xb, yb in loader: ...
    """

    def __init__(
        self,
        X: Any,
        y: Any = None,
        batch_size: int | None = 32,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        self.X = as_array(X, "DataLoader X")
        self.y = None if y is None else as_array(y, "DataLoader y")
        if self.X.ndim == 0:
            raise ValueError("DataLoader: X must have at least one axis (samples along axis 0)")
        if self.y is not None and (self.y.ndim == 0 or len(self.y) != len(self.X)):
            raise ValueError(
                f"DataLoader: X has {len(self.X)} samples but y has shape {self.y.shape}; they must align on axis 0"
            )
        if len(self.X) == 0:
            raise ValueError("DataLoader: the data set is empty")
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1
        ):
            raise ValueError(f"DataLoader: batch_size must be a positive integer or None, got {batch_size!r}")
        self.batch_size = len(self.X) if batch_size is None else int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        if self.drop_last and len(self) == 0:
            raise ValueError(
                f"DataLoader: drop_last=True with batch_size {self.batch_size} > {len(self.X)} samples gives no batch"
            )

    @property
    def num_samples(self) -> int:
        return len(self.X)

    def __len__(self) -> int:
        """Number of batches per pass."""
        full, rest = divmod(len(self.X), self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def indices(self) -> np.ndarray:
        """The sample order of the next pass (draws from the generator when shuffling)."""
        n = len(self.X)
        return self.rng.permutation(n) if self.shuffle else np.arange(n)

    def __iter__(self) -> Iterator[Any]:
        order = self.indices()
        whole = not self.shuffle and self.batch_size >= len(self.X)
        for b in range(len(self)):
            if whole:
                xb, yb = self.X, self.y
            else:
                idx = order[b * self.batch_size : (b + 1) * self.batch_size]
                xb = self.X[idx]
                yb = None if self.y is None else self.y[idx]
            if self.y is None:
                yield tensor(xb)
            else:
                yield tensor(xb), tensor(yb)

    def __repr__(self) -> str:
        return (
            f"DataLoader({self.num_samples} samples, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"drop_last={self.drop_last}, {len(self)} batches)"
        )
