"""The playground's messages: decoding and validation (see PROTOCOL.md in this folder).

``decode(raw)`` turns one WebSocket text message into a validated, normalized dict, or raises
``ProtocolError`` with a one-line message that names the field and what was wrong. Nothing is
evaluated: the text is parsed with ``json.loads`` (NaN/Infinity refused), then every field is
checked for its type and range. Pure Python, no web imports.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

#: limits (PROTOCOL.md, "Limits")
MAX_MESSAGE_BYTES = 1 << 20
MAX_POINTS = 10_000
MAX_LAYERS = 8
MAX_NEURONS = 64
MAX_COORD = 1000.0
MAX_TRAIN_STEPS = 100_000
MAX_STEPS_PER_FRAME = 1000
MAX_DEPTH = 8
MAX_SEED = 2**31 - 1
MAX_ID = 2**53

TASKS = ("classification", "regression")
ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "linear")
LOSSES = ("mse", "cross_entropy", "hinge")
OPTIMIZERS = ("sgd", "momentum", "adam")
FEATURES = ("x1", "x2", "x1sq", "x2sq", "x1x2", "sin_x1", "sin_x2")
REGRESSION_FEATURES = ("x1", "x1sq", "sin_x1")

DEFAULT_CONFIG: dict[str, Any] = {
    "task": "classification",
    "hidden": [4],
    "activation": "sigmoid",
    "loss": "mse",
    "optimizer": "sgd",
    "lr": 0.5,
    "batch_size": None,
    "l2": 0.0,
    "seed": 0,
    "features": ["x1", "x2"],
    "test_fraction": 0.2,
    "grid": 64,
    "discretize": False,
}
DEFAULT_DOMAIN = {"classification": [-1.5, 1.5, -1.5, 1.5], "regression": [-3.5, 3.5, -1.5, 1.5]}
DEFAULT_FEATURES = {"classification": ["x1", "x2"], "regression": ["x1"]}


class ProtocolError(ValueError):
    """A refused message: ``str(err)`` is the one-line reason, ``for_type`` the message's type (or None)."""

    def __init__(self, message: str, for_type: str | None = None) -> None:
        super().__init__(message)
        self.for_type = for_type
        self.reply_to: int | None = None  #: the refused message's "id", when it had a valid one


# ------------------------------------------------------------------ field checks
def _kind(v: Any) -> str:
    return (
        "null" if v is None else {bool: "bool", int: "int", float: "float", str: "str"}.get(type(v), type(v).__name__)
    )


def _show(v: Any) -> str:
    text = json.dumps(v) if isinstance(v, (int, float, str, bool, type(None))) else _kind(v)
    return text if len(text) <= 40 else text[:37] + "..."


def check_int(where: str, v: Any, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ProtocolError(f"{where}: expected an integer, got {_kind(v)} {_show(v)}")
    if not lo <= v <= hi:
        raise ProtocolError(f"{where}: must be {lo}..{hi}, got {v}")
    return v


def check_float(where: str, v: Any, lo: float, hi: float, *, open_lo: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ProtocolError(f"{where}: expected a number, got {_kind(v)} {_show(v)}")
    v = float(v)
    if not math.isfinite(v):
        raise ProtocolError(f"{where}: must be a finite number, got {v}")
    if v < lo or v > hi or (open_lo and v == lo):
        raise ProtocolError(f"{where}: must be {'>' if open_lo else '>='} {lo:g} and <= {hi:g}, got {v:g}")
    return v


def check_bool(where: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise ProtocolError(f"{where}: expected true or false, got {_kind(v)} {_show(v)}")
    return v


def check_choice(where: str, v: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(v, str):
        raise ProtocolError(f"{where}: expected a string, got {_kind(v)} {_show(v)}")
    if v not in choices:
        raise ProtocolError(f"{where}: unknown name {_show(v)}; choose one of {', '.join(choices)}")
    return v


def check_list(where: str, v: Any, max_len: int, min_len: int = 0) -> list[Any]:
    if not isinstance(v, list):
        raise ProtocolError(f"{where}: expected a list, got {_kind(v)} {_show(v)}")
    if not min_len <= len(v) <= max_len:
        raise ProtocolError(f"{where}: expected {min_len}..{max_len} entries, got {len(v)}")
    return v


def check_object(where: str, v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise ProtocolError(f"{where}: expected an object, got {_kind(v)} {_show(v)}")
    return v


def _hidden(where: str, v: Any) -> list[int]:
    check_list(where, v, MAX_LAYERS)
    return [check_int(f"{where}[{i}]", n, 1, MAX_NEURONS) for i, n in enumerate(v)]


def _features(where: str, v: Any) -> list[str]:
    check_list(where, v, len(FEATURES), 1)
    names = [check_choice(f"{where}[{i}]", f, FEATURES) for i, f in enumerate(v)]
    if len(set(names)) != len(names):
        raise ProtocolError(f"{where}: a feature is listed twice in {names}")
    return names


CONFIG_FIELDS: dict[str, Callable[[str, Any], Any]] = {
    "task": lambda w, v: check_choice(w, v, TASKS),
    "hidden": _hidden,
    "activation": lambda w, v: check_choice(w, v, ACTIVATIONS),
    "loss": lambda w, v: check_choice(w, v, LOSSES),
    "optimizer": lambda w, v: check_choice(w, v, OPTIMIZERS),
    "lr": lambda w, v: check_float(w, v, 0.0, 10.0, open_lo=True),
    "batch_size": lambda w, v: None if v is None else check_int(w, v, 1, MAX_POINTS),
    "l2": lambda w, v: check_float(w, v, 0.0, 10.0),
    "seed": lambda w, v: check_int(w, v, 0, MAX_SEED),
    "features": _features,
    "test_fraction": lambda w, v: check_float(w, v, 0.0, 0.9),
    "grid": lambda w, v: check_int(w, v, 8, 128),
    "discretize": check_bool,
}


def check_config_fields(fields: dict[str, Any], where: str = "config") -> dict[str, Any]:
    """Each given config field checked and normalized (a partial config)."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if name not in CONFIG_FIELDS:
            raise ProtocolError(f"{where}: unknown field {name!r}; fields are {', '.join(CONFIG_FIELDS)}")
        out[name] = CONFIG_FIELDS[name](f"{where}.{name}", value)
    return out


def check_config_consistent(config: dict[str, Any], where: str = "config") -> None:
    """The rules between fields of a whole config (what a regression task allows)."""
    if config["task"] == "regression":
        if config["loss"] != "mse":
            raise ProtocolError(f"{where}.loss: regression allows only 'mse', got {config['loss']!r}")
        bad = [f for f in config["features"] if f not in REGRESSION_FEATURES]
        if bad:
            raise ProtocolError(
                f"{where}.features: regression has one input x1; {', '.join(bad)} not allowed "
                f"(choose from {', '.join(REGRESSION_FEATURES)})"
            )


def check_config(fields: dict[str, Any], where: str = "config") -> dict[str, Any]:
    """A whole config: every field present and valid, and consistent."""
    check_object(where, fields)
    missing = [k for k in CONFIG_FIELDS if k not in fields]
    if missing:
        raise ProtocolError(f"{where}: missing field(s) {', '.join(missing)}")
    config = check_config_fields(fields, where)
    check_config_consistent(config, where)
    return config


def check_point(where: str, v: Any, task: str) -> tuple[float, float, int] | tuple[float, float]:
    if task == "classification":
        if not isinstance(v, list) or len(v) != 3:
            raise ProtocolError(f"{where}: a classification point is [x1, x2, label], got {_show(v)}")
        x1 = check_float(f"{where}[0]", v[0], -MAX_COORD, MAX_COORD)
        x2 = check_float(f"{where}[1]", v[1], -MAX_COORD, MAX_COORD)
        return x1, x2, check_int(f"{where}[2] (label)", v[2], 0, 2)
    if not isinstance(v, list) or len(v) != 2:
        raise ProtocolError(f"{where}: a regression point is [x, y], got {_show(v)}")
    return check_float(f"{where}[0]", v[0], -MAX_COORD, MAX_COORD), check_float(
        f"{where}[1]", v[1], -MAX_COORD, MAX_COORD
    )


def check_points(where: str, v: Any, task: str) -> list[Any]:
    check_list(where, v, MAX_POINTS)
    return [check_point(f"{where}[{i}]", p, task) for i, p in enumerate(v)]


def check_domain(where: str, v: Any) -> list[float]:
    check_list(where, v, 4, 4)
    d = [check_float(f"{where}[{i}]", x, -MAX_COORD, MAX_COORD) for i, x in enumerate(v)]
    if not (d[0] < d[1] and d[2] < d[3]):
        raise ProtocolError(
            f"{where}: expected [x_min, x_max, y_min, y_max] with x_min < x_max, y_min < y_max, got {d}"
        )
    return d


# ------------------------------------------------------------------ messages
def _opt_id(where: str, v: Any) -> int:
    return check_int(where, v, 0, MAX_ID)


_Field = tuple[Callable[[str, Any], Any], bool, Any]  # (check, required, default)

#: message type -> field -> (check, required, default); "points"/"point" are checked by the session (task-dependent)
MESSAGES: dict[str, dict[str, _Field]] = {
    "hello": {},
    "config": {name: (check, False, None) for name, check in CONFIG_FIELDS.items()},
    "data": {
        "points": (lambda w, v: check_list(w, v, MAX_POINTS), True, None),
        "domain": (check_domain, False, None),
        "task": (lambda w, v: check_choice(w, v, TASKS), False, None),
    },
    "domain": {"domain": (check_domain, True, None)},
    "preset": {
        "name": (lambda w, v: check_choice(w, v, _preset_names()), True, None),
        "n": (lambda w, v: check_int(w, v, 4, MAX_POINTS), False, None),
        "noise": (lambda w, v: check_float(w, v, 0.0, 2.0), False, None),
        "seed": (lambda w, v: check_int(w, v, 0, MAX_SEED), False, None),
    },
    "add_point": {"point": (lambda w, v: v, True, None)},
    "remove_point": {"index": (lambda w, v: check_int(w, v, 0, MAX_POINTS - 1), True, None)},
    "train": {"steps": (lambda w, v: check_int(w, v, 1, MAX_TRAIN_STEPS), False, 100)},
    "step": {},
    "animate": {
        "running": (check_bool, True, None),
        "steps_per_frame": (lambda w, v: check_int(w, v, 1, MAX_STEPS_PER_FRAME), False, None),
    },
    "ack": {"frame": (lambda w, v: check_int(w, v, 0, MAX_ID), True, None)},
    "reset": {},
    "forward": {"index": (lambda w, v: check_int(w, v, 0, MAX_POINTS - 1), True, None)},
    "backward": {"index": (lambda w, v: check_int(w, v, 0, MAX_POINTS - 1), True, None)},
    "export": {},
    "import": {"scene": (check_object, True, None)},
    "presets": {},
}


def _preset_names() -> tuple[str, ...]:
    from chainrule.playground.scenes import PRESETS

    return tuple(PRESETS)


def _depth(v: Any) -> int:
    """Nesting depth of a parsed JSON value, without recursion (a hostile message may nest deeply)."""
    deepest, stack = 0, [(v, 1)]
    while stack:
        item, d = stack.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, d)
            if deepest > MAX_DEPTH:
                return deepest
            stack.extend((x, d + 1) for x in (item.values() if isinstance(item, dict) else item))
    return deepest


def _refuse_constant(name: str) -> Any:
    raise ProtocolError(f"message: {name} is not a number JSON allows; send finite numbers")


def parse_json(raw: str | bytes, what: str = "message") -> Any:
    """``json.loads`` with the size limit, NaN/Infinity refused and the nesting depth checked."""
    size = len(raw.encode("utf-8", "surrogatepass")) if isinstance(raw, str) else len(raw)
    if size > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"{what}: {size} bytes is over the limit of {MAX_MESSAGE_BYTES} bytes")
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except ProtocolError:
        raise
    except RecursionError:
        raise ProtocolError(f"{what}: nested more than {MAX_DEPTH} levels deep") from None
    except (ValueError, TypeError) as err:
        raise ProtocolError(f"{what}: not valid JSON ({str(err).splitlines()[0]})") from None
    if _depth(value) > MAX_DEPTH:
        raise ProtocolError(f"{what}: nested more than {MAX_DEPTH} levels deep")
    return value


def validate(msg: Any) -> dict[str, Any]:
    """A parsed message checked against ``MESSAGES``: a new dict with defaults filled in."""
    if not isinstance(msg, dict):
        raise ProtocolError(f'message: expected a JSON object with a "type", got {_kind(msg)}')
    kind = msg.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(f'message: "type" must be a string, got {_kind(kind)} {_show(kind)}')
    out: dict[str, Any] = {"type": kind}
    try:
        if kind not in MESSAGES:
            raise ProtocolError(f"message: unknown type {_show(kind)}; types are {', '.join(MESSAGES)}")
        if "id" in msg:
            out["id"] = _opt_id(f"{kind}.id", msg["id"])
        fields = MESSAGES[kind]
        for name in msg:
            if name not in ("type", "id") and name not in fields:
                allowed = ", ".join(fields) or "no fields"
                raise ProtocolError(f"{kind}: unknown field {name!r} ({kind} takes {allowed})")
        for name, (check, required, default) in fields.items():
            if name in msg:
                out[name] = check(f"{kind}.{name}", msg[name])
            elif required:
                raise ProtocolError(f"{kind}: missing field {name!r}")
            elif default is not None:
                out[name] = default
        if kind == "config" and len(out) == 1 + ("id" in out):
            raise ProtocolError("config: give at least one field to change")
    except ProtocolError as err:
        err.for_type = kind
        ident = msg.get("id")
        if isinstance(ident, int) and not isinstance(ident, bool) and 0 <= ident <= MAX_ID:
            err.reply_to = ident
        raise
    return out


def decode(raw: str | bytes) -> dict[str, Any]:
    """One client message (text) -> a validated dict; ``ProtocolError`` otherwise."""
    return validate(parse_json(raw))


def message_type(raw: Any) -> str | None:
    """The ``type`` of a message that could be parsed as far as that, for error replies."""
    return raw.get("type") if isinstance(raw, dict) and isinstance(raw.get("type"), str) else None


__all__ = ["DEFAULT_CONFIG", "MESSAGES", "ProtocolError", "check_config", "decode", "parse_json", "validate"]
