"""Save and load models: safetensors weights plus the architecture as JSON, written atomically.

File format (a plain safetensors file; see docs/io.md):

* tensors: the model's ``state_dict()`` (parameters and buffers, dotted names, own dtypes);
* ``__metadata__`` (string -> string): ``format`` = "chainrule", ``format_version`` = "1",
  ``chainrule_version``, ``config`` = JSON of ``model.get_config()`` (absent for weights-only
  files), ``training`` = "true"/"false", ``sha256`` = a digest of every tensor's name, dtype,
  shape and bytes (detects corruption the safetensors layout cannot), and ``user`` = JSON of
  the caller's extra metadata.

No pickle is involved: loading a file never runs code from it. ``chainrule.save`` and
``chainrule.load`` are these ``save`` and ``load``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.autograd.tensor import Tensor

FORMAT = "chainrule"
FORMAT_VERSION = "1"
_CHUNK = 1 << 20


class ModelFileError(ValueError):
    """A file is not a (valid, complete) chainrule model file; ``.path`` names it."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


# --------------------------------------------------------------------- writing
def _write_all(fileobj: Any, data: bytes) -> None:
    """Write ``data`` in chunks (a separate function so tests can simulate a crash midway)."""
    view = memoryview(data)
    for start in range(0, len(view), _CHUNK):
        fileobj.write(view[start : start + _CHUNK])


def _fsync_dir(directory: Path) -> None:
    # Make the rename itself durable; not every platform can open a directory.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, fsync, ``os.replace``.

    A crash or an exception at any point leaves either the old file or the new one under
    ``path``, never a partial file, and the temp file is removed.
    """
    return atomic_write_many({path: data})[0]


def json_default(value: Any) -> Any:
    """``json.dumps(..., default=json_default)``: NumPy scalars and arrays as Python numbers and lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON-serializable: {type(value).__name__}")


def atomic_write_many(files: Mapping[str | os.PathLike[str], bytes]) -> list[Path]:
    """Write several files so that none replaces its old version until every new one is complete.

    Each is written to a temporary in its own folder and synced; only then are they renamed into
    place, one after another. An error while writing leaves every old file as it was.
    """
    written: list[tuple[str, Path]] = []
    try:
        for path, data in files.items():
            target = Path(path)
            directory = target.parent if str(target.parent) else Path(".")
            if not directory.is_dir():
                raise FileNotFoundError(f"cannot write {target}: the folder {directory} does not exist")
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
            written.append((tmp, target))
            with os.fdopen(fd, "wb") as f:
                _write_all(f, data)
                f.flush()
                os.fsync(f.fileno())
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        for tmp, target in written:
            os.replace(tmp, target)
    except BaseException:
        for tmp, _ in written:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise
    for directory in {target.parent for _, target in written}:
        _fsync_dir(directory)
    return [target for _, target in written]


def _digest(tensors: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        a = np.array(tensors[name], order="C", copy=None)
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _arrays(state: Mapping[str, Any]) -> dict[str, np.ndarray]:
    out = {}
    for name, value in state.items():
        if not isinstance(name, str):
            raise TypeError(f"save: state keys must be strings, got {name!r}")
        array = np.asarray(value.data if isinstance(value, Tensor) else value)
        out[name] = np.array(array, order="C", copy=None)
    return out


def save(
    model: Any,
    path: str | os.PathLike[str],
    *,
    weights_only: bool = False,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Save ``model`` (a Module) with its architecture, or only weights, to ``path`` (".safetensors").

    The architecture comes from ``model.get_config()`` (every built-in layer, MLP and
    Sequential/ModuleList of them have one), so ``load(path)`` rebuilds the model without
    the code that built it. For a custom module without ``get_config``, pass
    ``weights_only=True`` and restore with ``load_weights(model, path)``; a plain mapping of
    name -> array is saved as weights only. ``metadata``: extra JSON-ready data (``read_metadata``).
    """
    return atomic_write_bytes(path, model_bytes(model, weights_only=weights_only, metadata=metadata))


def model_bytes(model: Any, *, weights_only: bool = False, metadata: Mapping[str, Any] | None = None) -> bytes:
    """The bytes ``save`` writes (for writing several files together with ``atomic_write_many``)."""
    from safetensors.numpy import save as st_save

    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "chainrule_version": _version()}
    if isinstance(model, Mapping):
        state = _arrays(model)
    else:
        if not hasattr(model, "state_dict"):
            raise TypeError(f"save: expected a Module or a mapping of name -> array, got {type(model).__name__}")
        state = _arrays(model.state_dict())
        meta["training"] = "true" if getattr(model, "training", False) else "false"
        if not weights_only:
            try:
                config = model.get_config()
            except NotImplementedError as err:
                raise TypeError(
                    f"save: cannot record the architecture of {type(model).__name__}: {err}. "
                    "Pass weights_only=True and load with chainrule.io.load_weights(model, path)"
                ) from err
            meta["config"] = json.dumps(config, sort_keys=True)
    if metadata is not None:
        meta["user"] = json.dumps(dict(metadata), sort_keys=True)
    meta["sha256"] = _digest(state)
    return st_save(state, metadata=meta)


def _version() -> str:
    import chainrule

    return chainrule.__version__


# --------------------------------------------------------------------- reading
#: the largest header accepted (safetensors' own limit is 100 MB)
MAX_HEADER = 100 * 1024 * 1024


def _read_header(path: str | os.PathLike[str], require_chainrule: bool) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(header length, header, metadata), read and checked before any tensor data is read."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < 8:
            raise ModelFileError(path, f"only {size} bytes: too short to be a safetensors model file")
        n = int.from_bytes(f.read(8), "little")
        if n > size - 8 or n > MAX_HEADER:
            raise ModelFileError(
                path, f"not a safetensors file, or truncated: its header claims {n} bytes but the file has {size}"
            )
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFileError(path, f"not a safetensors file (unreadable header: {err})") from None
    if not isinstance(header, dict):
        raise ModelFileError(path, "not a safetensors file (the header is not a JSON object)")
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ModelFileError(path, "corrupted safetensors header (__metadata__ must map strings to strings)")
    if require_chainrule:
        if meta.get("format") != FORMAT:
            raise ModelFileError(
                path,
                "a safetensors file without chainrule metadata (not written by chainrule.save); "
                "its tensors can be read with chainrule.io.load_state_dict(path)",
            )
        if meta.get("format_version") != FORMAT_VERSION:
            raise ModelFileError(
                path,
                f"format_version {meta.get('format_version')!r} is not one this chainrule reads ({FORMAT_VERSION!r}); "
                "it was written by another version of chainrule",
            )
    try:
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
    except (TypeError, KeyError, IndexError, ValueError) as err:
        raise ModelFileError(path, f"corrupted safetensors header ({err!r})") from None
    expected = 8 + n + max(ends, default=0)
    if size != expected:
        what = "truncated" if size < expected else "has trailing bytes"
        raise ModelFileError(path, f"{what}: expected {expected} bytes from its header, found {size}")
    return n, header, meta


def _stored_shapes(header: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for name, entry in header.items():
        if name != "__metadata__":
            try:
                shapes[name] = tuple(int(s) for s in entry["shape"])
            except (TypeError, KeyError, ValueError):
                shapes[name] = ()
    return shapes


def _read(path: str | os.PathLike[str], require_chainrule: bool) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    from safetensors.numpy import load as st_load

    _, _, meta = _read_header(path, require_chainrule)  # sizes checked before the data is read
    data = Path(path).read_bytes()
    try:
        tensors = {k: np.array(v) for k, v in st_load(data).items()}
    except Exception as err:  # safetensors raises its own error types
        raise ModelFileError(path, f"corrupted safetensors data: {err}") from err
    digest = meta.get("sha256") if isinstance(meta, dict) else None
    if digest is not None and digest != _digest(tensors):
        raise ModelFileError(path, "corrupted: the tensors do not match the checksum stored in the file")
    return tensors, meta


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The file's chainrule metadata with ``config`` and ``user`` decoded from JSON (None if absent)."""
    _, meta = _read(path, require_chainrule=True)
    out: dict[str, Any] = dict(meta)
    for key in ("config", "user"):
        out[key] = _json(path, meta, key)
    return out


def _json(path: Any, meta: Mapping[str, str], key: str) -> Any:
    if key not in meta:
        return None
    try:
        return json.loads(meta[key])
    except json.JSONDecodeError as err:
        raise ModelFileError(path, f"corrupted metadata: {key!r} is not valid JSON ({err})") from None


def load_state_dict(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The name -> ndarray weights stored in any safetensors file (chainrule's or another's)."""
    tensors, _ = _read(path, require_chainrule=False)
    return tensors


def load_weights(model: Any, path: str | os.PathLike[str], strict: bool = True) -> Any:
    """Copy the weights in ``path`` into an existing ``model`` (``Module.load_state_dict`` rules).

    Returns (missing_keys, unexpected_keys); with ``strict`` a mismatch raises (naming the keys).
    """
    return model.load_state_dict(load_state_dict(path), strict=strict)


#: sizes up to this may be architecture settings (pieces, pooling p) that are no tensor's dimension
_SMALL = 1024


def _check_config_sizes(path: Any, config: Any, shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Refuse a config that names a layer larger than every stored tensor, before building anything.

    NOTE: every layer size of a real model is a dimension of one of its weights, so a size the
    stored tensors do not have means a tampered or mismatched config, and building it could
    allocate far more memory than the file holds (64-20000-20000-10 from a 27 KB file: 4.7 GB).
    """
    dims = {d for shape in shapes.values() for d in shape}
    stack = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) > _SMALL and abs(item) not in dims:
            largest = max(dims, default=0)
            raise ModelFileError(
                path,
                f"its architecture names a size of {item}, but no stored tensor has that dimension "
                f"(the largest is {largest}): the config does not describe these weights",
            )


def load(path: str | os.PathLike[str]) -> Any:
    """Rebuild the model saved by ``save(model, path)``: architecture from the config, then the weights.

    Parameters keep the dtypes they were saved with; the training/eval mode is restored.
    Raises ``ModelFileError`` (a ValueError) naming the file if it is not a complete
    chainrule model file.
    """
    from chainrule import nn

    _, header, meta = _read_header(path, require_chainrule=True)
    config = _json(path, meta, "config")
    if config is None:
        raise ModelFileError(
            path,
            "holds weights only (no architecture): build the model and call chainrule.io.load_weights(model, path)",
        )
    _check_config_sizes(path, config, _stored_shapes(header))
    tensors, meta = _read(path, require_chainrule=True)
    bad = sorted(k for k, v in tensors.items() if v.dtype.kind in "fc" and not np.isfinite(v).all())
    if bad:
        warnings.warn(
            f"{path}: the weights hold NaN or infinite values ({', '.join(bad[:5])}"
            f"{', ...' if len(bad) > 5 else ''}): the model will compute NaN or inf",
            RuntimeWarning,
            stacklevel=2,
        )
    try:
        model = nn.from_config(config)
    except (ValueError, TypeError, KeyError) as err:
        raise ModelFileError(path, f"cannot rebuild the architecture from its config: {err}") from err
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        saved = tensors.get(name)
        if saved is not None and saved.dtype.kind == "f" and t.data.dtype.kind == "f" and saved.dtype != t.data.dtype:
            t.data = t.data.astype(saved.dtype)
    try:
        model.load_state_dict(tensors, strict=True)
    except (KeyError, ValueError) as err:
        raise ModelFileError(path, f"weights do not fit the architecture in its config: {err}") from err
    model.train(meta.get("training", "false") == "true")
    return model


__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "ModelFileError",
    "atomic_write_bytes",
    "atomic_write_many",
    "json_default",
    "load",
    "load_state_dict",
    "load_weights",
    "model_bytes",
    "read_metadata",
    "save",
]
