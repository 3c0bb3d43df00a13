"""Reading (and writing) the IDX files MNIST is distributed in, raw or gzipped.

Layout: two zero bytes, a type code, the number of dimensions d, then d big-endian
uint32 sizes, then the values in C order, big-endian.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("=") if dt.itemsize > 1 else dt: code for code, dt in _DTYPES.items()}


class IDXError(ValueError):
    """A file is not a valid IDX file (the message names the file and what is wrong)."""


def _read_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"IDX file not found: {path}") from None
    if raw[:2] == b"\x1f\x8b":  # the gzip magic number, whatever the file is called
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise IDXError(f"{path}: looks gzipped but cannot be decompressed ({err})") from None
    return raw


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (``.gz`` or raw, detected from the content) into an ndarray of its own shape and type."""
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise IDXError(f"{path}: too short to be an IDX file ({len(raw)} bytes)")
    if raw[0] != 0 or raw[1] != 0:
        raise IDXError(
            f"{path}: bad magic number {raw[:4].hex()} (an IDX file starts with two zero bytes, a type code and "
            "the number of dimensions)"
        )
    code, ndim = raw[2], raw[3]
    if code not in _DTYPES:
        known = ", ".join(f"0x{c:02x}" for c in _DTYPES)
        raise IDXError(f"{path}: unknown IDX type code 0x{code:02x} (known: {known})")
    if ndim == 0:
        raise IDXError(f"{path}: the header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXError(f"{path}: the header declares {ndim} dimensions but the file ends after {len(raw)} bytes")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = _DTYPES[code]
    expected = int(np.prod(shape)) * dtype.itemsize
    actual = len(raw) - header
    if actual != expected:
        raise IDXError(
            f"{path}: the header declares shape {shape} of {dtype.name} ({expected} data bytes) but the file holds "
            f"{actual} data bytes ({'truncated' if actual < expected else 'trailing bytes'})"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzipped when the name ends in ``.gz``)."""
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=") if array.dtype.itemsize > 1 else array.dtype
    if native not in _CODES:
        raise TypeError(
            f"write_idx: IDX cannot store dtype {array.dtype} (uint8, int8, int16, int32, float32, float64)"
        )
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"write_idx: IDX needs 1 to 255 dimensions, got {array.ndim}")
    code = _CODES[native]
    body = (
        bytes([0, 0, code, array.ndim])
        + np.asarray(array.shape, dtype=">u4").tobytes()
        + np.ascontiguousarray(array, dtype=_DTYPES[code]).tobytes()
    )
    path = Path(path)
    path.write_bytes(gzip.compress(body) if path.suffix == ".gz" else body)


def load_mnist_idx(
    images_path: str | os.PathLike, labels_path: str | os.PathLike, flatten: bool = True, scale: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Load an MNIST-style image file (n, rows, cols) and label file (n,) as ``(X, y)``.

    X is float32, scaled to [0, 1] (``scale=False`` keeps 0..255) and flattened to
    (n, rows * cols) unless ``flatten=False``; y is int64.
    """
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3:
        raise IDXError(f"{images_path}: expected images of shape (n, rows, cols), got shape {images.shape}")
    if labels.ndim != 1:
        raise IDXError(f"{labels_path}: expected labels of shape (n,), got shape {labels.shape}")
    if len(images) != len(labels):
        raise IDXError(f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels")
    X = images.astype(np.float32)
    if scale:
        X /= 255.0
    if flatten:
        X = X.reshape(len(X), -1)
    return X, labels.astype(np.int64)
