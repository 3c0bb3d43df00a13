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
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise FileNotFoundError(f"cannot write {target}: the folder {directory} does not exist")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            _write_all(f, data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)
    return target


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
    return atomic_write_bytes(path, st_save(state, metadata=meta))


def _version() -> str:
    import chainrule

    return chainrule.__version__


# --------------------------------------------------------------------- reading
def _read(path: str | os.PathLike[str], require_chainrule: bool) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    from safetensors.numpy import load as st_load

    data = Path(path).read_bytes()
    if len(data) < 8:
        raise ModelFileError(path, f"only {len(data)} bytes: too short to be a safetensors model file")
    n = int.from_bytes(data[:8], "little")
    if n > len(data) - 8:
        raise ModelFileError(
            path, f"not a safetensors file, or truncated: its header claims {n} bytes but the file has {len(data)}"
        )
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFileError(path, f"not a safetensors file (unreadable header: {err})") from None
    if not isinstance(header, dict):
        raise ModelFileError(path, "not a safetensors file (the header is not a JSON object)")
    meta = header.get("__metadata__") or {}
    if require_chainrule and (not isinstance(meta, dict) or meta.get("format") != FORMAT):
        raise ModelFileError(
            path,
            "a safetensors file without chainrule metadata (not written by chainrule.save); "
            "its tensors can be read with chainrule.io.load_state_dict(path)",
        )
    try:
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
    except (TypeError, KeyError, IndexError, ValueError) as err:
        raise ModelFileError(path, f"corrupted safetensors header ({err!r})") from None
    expected = 8 + n + max(ends, default=0)
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise ModelFileError(path, f"{what}: expected {expected} bytes from its header, found {len(data)}")
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


def load(path: str | os.PathLike[str]) -> Any:
    """Rebuild the model saved by ``save(model, path)``: architecture from the config, then the weights.

    Parameters keep the dtypes they were saved with; the training/eval mode is restored.
    Raises ``ModelFileError`` (a ValueError) naming the file if it is not a complete
    chainrule model file.
    """
    from chainrule import nn

    tensors, meta = _read(path, require_chainrule=True)
    config = _json(path, meta, "config")
    if config is None:
        raise ModelFileError(
            path,
            "holds weights only (no architecture): build the model and call chainrule.io.load_weights(model, path)",
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
    "load",
    "load_state_dict",
    "load_weights",
    "read_metadata",
    "save",
]
