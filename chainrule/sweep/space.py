"""The search space of a sweep: ``--grid NAME=VALUES`` entries, parsed by a small whitelist (nothing is eval'd).

    lr=0.01,0.1,0.5            a grid axis: values separated by ","
    hidden=64;64,32;128,64     a list-valued option: entries separated by ";" (here 3 architectures)
    lr=log(1e-3,1)             random search (--samples K): log-uniform between the two bounds
    l2=uniform(0,1e-3)         uniform between the two bounds
    hidden=choice(64;64,32)    one of the listed values (a plain list means the same in random search)

Every name is one of the training options ``chainrule train`` takes (``batch-size`` and
``batch_size`` both work), and every value is checked as ``chainrule train`` checks it, with
the names of activations, losses and optimizers read from their registries. Errors are one
``SpaceError`` line that names the entry and what was wrong.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

LIST_VALUED = ("hidden",)
RANGE = re.compile(r"^(log|uniform|choice)\((.*)\)$", re.DOTALL)
SWEEP_VAL_SIZE = 0.2  # a sweep ranks trials on a validation part, so unlike `chainrule train` it always has one


class SpaceError(ValueError):
    """A malformed or unknown ``--grid`` entry (one line, naming it)."""


# --------------------------------------------------------------------- one value of one option
def _number(kind: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"{text!r} is not a finite number")
        if kind == "positive" and value <= 0:
            raise ValueError(f"{text} must be > 0")
        if kind == "non-negative" and value < 0:
            raise ValueError(f"{text} must be >= 0")
        if kind == "fraction" and not 0 < value < 1:
            raise ValueError(f"{text} must lie strictly between 0 and 1")
        return value

    return parse


def _integer(minimum: int | None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an integer") from None
        if minimum is not None and value < minimum:
            raise ValueError(f"{text} must be >= {minimum}")
        return value

    return parse


def _hidden(text: str) -> list[int]:
    if text.strip().lower() in ("", "none", "0"):
        return []
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"{text!r} is not a comma-separated list of layer sizes (e.g. 64,32)") from None
    if any(s < 1 for s in sizes):
        raise ValueError(f"{text!r}: every hidden layer needs at least 1 unit")
    return sizes


def _batch_size(text: str) -> int | None:
    return None if text.strip().lower() in ("full", "all", "0") else _integer(1)(text)


def _switch(text: str) -> bool:
    word = text.strip().lower()
    if word in ("true", "yes", "on", "1"):
        return True
    if word in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"{text!r} is not true or false")


def _one_of(names: Callable[[], Sequence[str]]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        allowed = list(names())
        if text not in allowed:
            raise ValueError(f"{text!r} is not one of {', '.join(allowed)}")
        return text

    return parse


def _activations() -> list[str]:
    from chainrule.nn.activation import ACTIVATIONS

    return list(ACTIVATIONS)


def _output_activations() -> list[str]:
    from chainrule.nn.activation import OUTPUT_ACTIVATIONS

    return ["none", *OUTPUT_ACTIVATIONS]


def _losses() -> list[str]:
    from chainrule.train.objectives import LOSSES

    return list(LOSSES)


def _optimizers() -> list[str]:
    from chainrule.optim import OPTIMIZERS

    return list(OPTIMIZERS)


@dataclass(frozen=True)
class Option:
    """A training option a sweep may vary: how one value is read, its default, whether ranges apply."""

    parse: Callable[[str], Any]
    default: Any
    numeric: str | None = None  # "float" or "int" when uniform()/log() ranges make sense


# The options of `chainrule train` a sweep may vary, with its defaults (tests/test_sweep.py checks them
# against the train parser). `data` is the sweep's own --data; `seed` comes from --seeds.
OPTIONS: dict[str, Option] = {
    "n": Option(_integer(1), None, "int"),
    "noise": Option(_number("non-negative"), None, "float"),
    "test_size": Option(_number("fraction"), 0.2, "float"),
    "val_size": Option(_number("fraction"), SWEEP_VAL_SIZE, "float"),
    "split_seed": Option(_integer(None), 0),
    "stratify": Option(_switch, False),
    "standardize": Option(_switch, False),
    "hidden": Option(_hidden, [64, 32]),
    "activation": Option(_one_of(_activations), "relu"),
    "output_activation": Option(_one_of(_output_activations), None),
    "dtype": Option(_one_of(lambda: ("float32", "float64")), "float32"),
    "loss": Option(_one_of(_losses), "cross_entropy"),
    "optimizer": Option(_one_of(_optimizers), "sgd"),
    "lr": Option(_number("positive"), None, "float"),
    "momentum": Option(_number("non-negative"), 0.0, "float"),
    "nesterov": Option(_switch, False),
    "l2": Option(_number("non-negative"), 0.0, "float"),
    "batch_size": Option(_batch_size, 64, "int"),
    "epochs": Option(_integer(1), 30, "int"),
    "schedule": Option(_one_of(lambda: ("none", "step", "cosine")), "none"),
    "patience": Option(_integer(1), None, "int"),
    "compile": Option(_switch, False),
}
NOT_IN_GRID = {
    "data": "the data set is the sweep's own option: use --data",
    "seed": "seeds come from --seeds",
}


# --------------------------------------------------------------------- one --grid entry
@dataclass(frozen=True)
class Axis:
    """One ``--grid`` entry: a name and either its values or a range to sample from."""

    name: str
    text: str
    values: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False

    @property
    def is_range(self) -> bool:
        return not self.values

    def sample(self, rng: random.Random) -> Any:
        """One random value: a uniform pick from the values, or a (log-)uniform draw in the range."""
        if self.values:
            return self.values[rng.randrange(len(self.values))]
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        if OPTIONS[self.name].numeric == "int":
            return round(value)
        return float(f"{value:.4g}")  # 4 significant digits: readable tables, no false precision


def _split_values(name: str, body: str) -> list[str]:
    if name in LIST_VALUED:
        return body.split(";")
    return [part for chunk in body.split(";") for part in chunk.split(",")]


def parse_axis(text: str) -> Axis:
    """``"lr=0.01,0.1"`` -> ``Axis("lr", values=(0.01, 0.1))``; raises ``SpaceError`` naming what was wrong."""
    where = f"--grid {text!r}"
    name, sep, body = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not name:
        raise SpaceError(f"{where}: expected NAME=VALUES, e.g. lr=0.01,0.1")
    if name in NOT_IN_GRID:
        raise SpaceError(f"{where}: {name} cannot be swept here; {NOT_IN_GRID[name]}")
    if name not in OPTIONS:
        raise SpaceError(f"{where}: unknown option {name!r}; choose from {', '.join(OPTIONS)}")
    option, body = OPTIONS[name], body.strip()
    if not body:
        raise SpaceError(f"{where}: no values after '='")
    match = RANGE.match(body)
    if match and match.group(1) != "choice":
        kind, inside = match.groups()
        if option.numeric is None:
            raise SpaceError(f"{where}: {kind}() needs a numeric option; {name} takes a list of values")
        bounds = [part.strip() for part in inside.split(",")]
        if len(bounds) != 2:
            raise SpaceError(f"{where}: {kind}() takes two bounds, e.g. {kind}(1e-3,1)")
        try:
            low, high = (option.parse(b) for b in bounds)
            low, high = float(low), float(high)
        except (ValueError, TypeError) as err:
            raise SpaceError(f"{where}: {err}") from None
        if not low < high:
            raise SpaceError(f"{where}: the lower bound must be below the upper bound")
        if kind == "log" and low <= 0:
            raise SpaceError(f"{where}: log() needs bounds > 0")
        return Axis(name, text, low=low, high=high, log=kind == "log")
    raw = _split_values(name, match.group(2) if match else body)
    values = []
    for part in raw:
        try:
            values.append(option.parse(part.strip()))
        except ValueError as err:
            raise SpaceError(f"{where}: {err}") from None
    if any(a == b for a, b in itertools.combinations(values, 2)):
        raise SpaceError(f"{where}: a value is listed twice")
    return Axis(name, text, values=tuple(values))


def parse_grid(entries: Sequence[str]) -> list[Axis]:
    """Every ``--grid`` entry parsed; a name may appear once."""
    axes = [parse_axis(entry) for entry in entries]
    seen: set[str] = set()
    for axis in axes:
        if axis.name in seen:
            raise SpaceError(f"--grid {axis.text!r}: {axis.name} is given twice")
        seen.add(axis.name)
    return axes


# --------------------------------------------------------------------- the configurations
def configurations(axes: Sequence[Axis], samples: int | None = None, search_seed: int = 0) -> list[dict[str, Any]]:
    """The parameter sets to train (without the seed): the grid's every combination, or ``samples`` random draws."""
    if samples is None:
        ranges = [a.text for a in axes if a.is_range]
        if ranges:
            raise SpaceError(f"--grid {ranges[0]!r} is a range: add --samples K for a random search")
        return [dict(zip([a.name for a in axes], combo)) for combo in itertools.product(*(a.values for a in axes))]
    if samples < 1:
        raise SpaceError(f"--samples must be >= 1, got {samples}")
    rng = random.Random(search_seed)
    return [{a.name: a.sample(rng) for a in axes} for _ in range(samples)]


def full_params(config: dict[str, Any], data: str, seed: int) -> dict[str, Any]:
    """Every training option of one trial: the defaults, overridden by the configuration."""
    params = {"data": data, **{name: option.default for name, option in OPTIONS.items()}, "seed": seed}
    params.update(config)
    return params


def describe(value: Any) -> str:
    """A value as a ``--grid`` entry would write it (``[64, 32]`` -> ``64,32``)."""
    if isinstance(value, list):
        return ",".join(map(str, value)) or "none"
    if isinstance(value, float):
        return f"{value:g}"
    return "full" if value is None else str(value)


__all__ = ["OPTIONS", "Axis", "Option", "SpaceError", "configurations", "describe", "full_params", "parse_grid"]
