"""Preset data sets for the playground and the scene file format (export/import, validated).

A preset is made by ``chainrule.data``'s generators where one exists (``xor``, ``circle``,
``moons``, ...); ``step`` and ``line`` are two lines of NumPy here. A scene is
``{"format", "version", "config", "data", "model", "history"}`` (PROTOCOL.md, "Scene files").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from chainrule import data
from chainrule.playground.protocol import (
    MAX_POINTS,
    MAX_SEED,
    ProtocolError,
    check_config,
    check_domain,
    check_float,
    check_int,
    check_list,
    check_object,
    check_points,
)

SCENE_FORMAT = "chainrule-playground-scene"
SCENE_VERSION = 1
MAX_HISTORY = 500


@dataclass(frozen=True)
class Preset:
    name: str
    label: str
    task: str
    n: int
    noise: float
    domain: tuple[float, float, float, float]
    make: Callable[[int, float, int], tuple[np.ndarray, np.ndarray]]
    minimum: int = 2


def _gate(fn: Callable[..., tuple[np.ndarray, np.ndarray]]) -> Callable[[int, float, int], Any]:
    return lambda n, noise, seed: fn(repeat=max(1, n // 4), noise=noise, seed=seed)


def _step(n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(-2.0, 2.0, n))
    return x[:, None], ((x > 0).astype(np.float64) + rng.normal(0.0, noise, n))[:, None]


def _line(n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(-2.0, 2.0, n))
    return x[:, None], (0.5 * x + 0.2 + rng.normal(0.0, noise, n))[:, None]


_GATE_DOMAIN = (-0.5, 1.5, -0.5, 1.5)
_UNIT = (-1.5, 1.5, -1.5, 1.5)
PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset("xor", "XOR", "classification", 4, 0.0, _GATE_DOMAIN, _gate(data.xor), 4),
        Preset("xor_noisy", "XOR (noisy)", "classification", 200, 0.15, _GATE_DOMAIN, _gate(data.xor), 4),
        Preset("and", "AND", "classification", 4, 0.0, _GATE_DOMAIN, _gate(data.and_), 4),
        Preset("or", "OR", "classification", 4, 0.0, _GATE_DOMAIN, _gate(data.or_), 4),
        Preset("circle", "Circle", "classification", 200, 0.05, _UNIT, lambda n, s, r: data.circle(n, s, r)),
        Preset("spiral", "Spiral", "classification", 200, 0.05, _UNIT, lambda n, s, r: data.spiral(n, s, r)),
        Preset(
            "gaussian",
            "Gaussian",
            "classification",
            200,
            0.3,
            (-2, 2, -2, 2),
            lambda n, s, r: data.blobs(n, s, r, centers=2),
        ),
        Preset("moons", "Moons", "classification", 200, 0.1, (-1.5, 2.5, -1.5, 2), lambda n, s, r: data.moons(n, s, r)),
        Preset(
            "three_class",
            "3 classes",
            "classification",
            300,
            0.05,
            _UNIT,
            lambda n, s, r: data.three_class(n, s, r),
            3,
        ),
        Preset("sine", "Sine", "regression", 100, 0.05, (-3.5, 3.5, -1.5, 1.5), lambda n, s, r: data.sine(n, s, r)),
        Preset(
            "square_pulse",
            "Square pulse",
            "regression",
            100,
            0.02,
            (-2.5, 2.5, -0.5, 1.5),
            lambda n, s, r: data.square_pulse(n, s, r),
        ),
        Preset("step", "Step", "regression", 100, 0.02, (-2.5, 2.5, -0.5, 1.5), _step),
        Preset("line", "Line", "regression", 50, 0.1, (-2.5, 2.5, -2, 2), _line),
    ]
}


def preset_list() -> list[dict[str, Any]]:
    """What ``GET /api/presets`` and the ``presets`` message list."""
    return [{"name": p.name, "label": p.label, "task": p.task, "n": p.n, "noise": p.noise} for p in PRESETS.values()]


def make_preset(
    name: str, n: int | None = None, noise: float | None = None, seed: int | None = None
) -> tuple[str, list[Any], list[float]]:
    """``(task, points, domain)`` of a preset: points as ``[x1, x2, label]`` or ``[x, y]`` lists."""
    if name not in PRESETS:
        raise ProtocolError(f"preset.name: unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    p = PRESETS[name]
    n = p.n if n is None else check_int("preset.n", n, 1, MAX_POINTS)
    noise = p.noise if noise is None else check_float("preset.noise", noise, 0.0, 2.0)
    seed = 0 if seed is None else check_int("preset.seed", seed, 0, MAX_SEED)
    X, y = p.make(max(n, p.minimum), noise, seed)
    X = np.asarray(X, dtype=np.float64)
    if p.task == "classification":
        points = [[float(a), float(b), int(c)] for (a, b), c in zip(X.round(4), np.asarray(y).reshape(-1))]
    else:
        points = [
            [float(a), float(b)] for a, b in zip(X[:, 0].round(4), np.asarray(y, np.float64).reshape(-1).round(4))
        ]
    return p.task, points, list(map(float, p.domain))


# ------------------------------------------------------------------ scene files
def check_scene(scene: Any) -> dict[str, Any]:
    """A scene object validated and normalized: ``{"config", "data", "model" (or None), "history"}``.

    The model's sizes are checked against the config by the session (which knows the feature
    and output counts); here each weight must be a finite number in nested lists.
    """
    check_object("scene", scene)
    allowed = {"format", "version", "config", "data", "model", "history"}
    extra = sorted(set(scene) - allowed)
    if extra:
        raise ProtocolError(f"scene: unknown field(s) {', '.join(extra)}")
    if scene.get("format") != SCENE_FORMAT:
        raise ProtocolError(f"scene.format: expected {SCENE_FORMAT!r}, got {scene.get('format')!r}")
    if scene.get("version") != SCENE_VERSION:
        raise ProtocolError(f"scene.version: this server reads version {SCENE_VERSION}, got {scene.get('version')!r}")
    config = check_config(scene.get("config"), "scene.config")
    d = check_object("scene.data", scene.get("data"))
    extra = sorted(set(d) - {"task", "points", "domain"})
    if extra:
        raise ProtocolError(f"scene.data: unknown field(s) {', '.join(extra)}")
    if d.get("task") != config["task"]:
        raise ProtocolError(f"scene.data.task: must equal config.task {config['task']!r}, got {d.get('task')!r}")
    points = check_points("scene.data.points", d.get("points"), config["task"])
    domain = check_domain("scene.data.domain", d.get("domain"))
    model = None
    if scene.get("model") is not None:
        m = check_object("scene.model", scene["model"])
        extra = sorted(set(m) - {"sizes", "iteration", "layers"})
        if extra:
            raise ProtocolError(f"scene.model: unknown field(s) {', '.join(extra)}")
        sizes = [
            check_int(f"scene.model.sizes[{i}]", s, 1, 64)
            for i, s in enumerate(check_list("scene.model.sizes", m.get("sizes"), 10, 2))
        ]
        iteration = check_int("scene.model.iteration", m.get("iteration", 0), 0, 2**53)
        layers = check_list("scene.model.layers", m.get("layers"), 9, 1)
        if len(layers) != len(sizes) - 1:
            raise ProtocolError(f"scene.model.layers: {len(sizes) - 1} layers for sizes {sizes}, got {len(layers)}")
        arrays = []
        for i, (layer, n_in, n_out) in enumerate(zip(layers, sizes, sizes[1:])):
            where = f"scene.model.layers[{i}]"
            check_object(where, layer)
            w = _matrix(f"{where}.weight", layer.get("weight"), n_out, n_in)
            b = _matrix(f"{where}.bias", [layer.get("bias")], 1, n_out)[0]
            arrays.append((w, b))
        model = {"sizes": sizes, "iteration": iteration, "layers": arrays}
    history = []
    if scene.get("history") is not None:
        for i, h in enumerate(check_list("scene.history", scene["history"], MAX_HISTORY)):
            where = f"scene.history[{i}]"
            check_list(where, h, 3, 3)
            history.append(
                [
                    check_int(f"{where}[0]", h[0], 0, 2**53),
                    None if h[1] is None else check_float(f"{where}[1]", h[1], 0.0, 1e30),
                    None if h[2] is None else check_float(f"{where}[2]", h[2], 0.0, 1e30),
                ]
            )
    return {"config": config, "data": {"points": points, "domain": domain}, "model": model, "history": history}


def _matrix(where: str, rows: Any, n_rows: int, n_cols: int) -> np.ndarray:
    check_list(where, rows, n_rows, n_rows)
    out = np.empty((n_rows, n_cols), dtype=np.float32)
    for r, row in enumerate(rows):
        check_list(f"{where}[{r}]", row, n_cols, n_cols)
        for c, v in enumerate(row):
            out[r, c] = check_float(f"{where}[{r}][{c}]", v, -1e6, 1e6)
    return out


__all__ = ["PRESETS", "SCENE_FORMAT", "SCENE_VERSION", "check_scene", "make_preset", "preset_list"]
