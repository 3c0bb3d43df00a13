"""One playground session: the scene (config, points, split, model, optimizer, history) and its messages.

``Session.handle(msg)`` takes a message validated by ``protocol.decode`` and returns the replies
(dicts, PROTOCOL.md). Pure Python and NumPy: the web server (``app.py``) only moves messages.
Every method that changes the scene runs under ``self.lock``, so a server may call it from a
worker thread.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

import numpy as np

from chainrule.autograd.grad_mode import no_grad
from chainrule.autograd.tensor import Tensor
from chainrule.playground import network as net
from chainrule.playground import protocol as P
from chainrule.playground.protocol import ProtocolError
from chainrule.playground.scenes import MAX_HISTORY, SCENE_FORMAT, SCENE_VERSION, check_scene, make_preset

#: config fields whose change rebuilds the model (fresh weights); the others keep it
REBUILD = {"task", "hidden", "activation", "loss", "features", "seed"}
#: fixed stream for the train/test split, the same for every scene, so adding a point moves no other point
_SPLIT_U = np.random.default_rng(20240611).random(P.MAX_POINTS)


class Session:
    """A scene and its network; ``handle`` maps client messages to server messages."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.config: dict[str, Any] = copy.deepcopy(P.DEFAULT_CONFIG)
        self.steps_per_frame = 10
        self.animating = False
        task, points, domain = make_preset("xor")
        self._set_data(task, points, domain)
        self._build()

    # ---------------------------------------------------------------- data
    def _set_data(self, task: str, points: list[Any], domain: list[float]) -> None:
        self.task = task
        self.points = [list(p) for p in points]
        self.domain = list(domain)
        n = len(points)
        if task == "classification":
            arr = np.asarray(points, dtype=np.float64).reshape(n, 3)
            self.X, self.y = arr[:, :2], arr[:, 2].astype(np.int64)
        else:
            arr = np.asarray(points, dtype=np.float64).reshape(n, 2)
            self.X, self.y = arr[:, :1], arr[:, 1]
        self._split()

    @property
    def classes(self) -> int:
        return 3 if self.task == "classification" and bool((self.y == 2).any()) else 2

    def _split(self) -> None:
        n = len(self.points)
        f = self.config["test_fraction"]
        test = _SPLIT_U[:n] < f if n >= 10 else np.zeros(n, dtype=bool)
        if n and test.all():
            test[0] = False
        self.split = test.astype(np.int64)
        self.train_idx = np.flatnonzero(~test)
        self.test_idx = np.flatnonzero(test)
        self._order = np.zeros(0, dtype=np.int64)  # minibatch order restarts
        self._tensors: dict[str, tuple[Tensor, Tensor]] = {}

    def _subset(self, which: str) -> tuple[Tensor, Tensor]:
        """The features and float targets of the training or test points, as tensors (cached)."""
        if which not in self._tensors:
            idx = self.train_idx if which == "train" else self.test_idx
            x = net.features(self.X[idx], self.config["features"])
            t = net.targets(self.task, self.classes, self.y[idx])
            self._tensors[which] = (Tensor(x), Tensor(t))
        return self._tensors[which]

    # ---------------------------------------------------------------- model
    @property
    def sizes(self) -> list[int]:
        outputs = 3 if self.classes == 3 else 1
        return [len(self.config["features"]), *self.config["hidden"], outputs]

    def _build(self) -> None:
        """A fresh model from ``seed`` (iteration 0, history cleared) and its optimizer."""
        self.model = net.make_model(self.sizes, self.config["activation"], self.config["seed"])
        self._built_classes = self.classes
        self.iteration = 0
        self.history: list[list[Any]] = []
        self.stride = 1
        self.diverged = False
        self._new_optimizer()
        self._record()

    def _new_optimizer(self) -> None:
        c = self.config
        self.optimizer = net.make_optimizer(self.model, c["optimizer"], c["lr"])
        self._rng = np.random.default_rng([c["seed"], 7])
        self._order = np.zeros(0, dtype=np.int64)

    def _objective(self, x: Tensor, t: Tensor) -> Tensor:
        c = self.config
        loss = net.data_loss(self.model(x), t, c["loss"], self.task, self.classes)
        if c["l2"]:
            penalty = None
            for layer in self.model.layers:
                term = (layer.weight * layer.weight).sum()
                penalty = term if penalty is None else penalty + term
            loss = loss + penalty * (0.5 * c["l2"])
        return loss

    def _batch(self) -> tuple[Tensor, Tensor]:
        bs = self.config["batch_size"]
        n = len(self.train_idx)
        if bs is None or bs >= n:
            return self._subset("train")
        if len(self._order) < bs:
            self._order = self._rng.permutation(n)
        pick, self._order = self._order[:bs], self._order[bs:]
        idx = self.train_idx[pick]
        x = net.features(self.X[idx], self.config["features"])
        return Tensor(x), Tensor(net.targets(self.task, self.classes, self.y[idx]))

    def train_steps(self, steps: int) -> bool:
        """``steps`` optimizer steps; False (and the last finite weights restored) if a step diverged."""
        if len(self.train_idx) == 0:
            raise ProtocolError("train: there are no training points; add points first")
        params = list(self.model.parameters())
        with np.errstate(all="ignore"):  # NOTE: overflow is detected below and reported as divergence
            return self._steps(steps, params)

    def _steps(self, steps: int, params: list[Any]) -> bool:
        for _ in range(steps):
            saved = [p.data.copy() for p in params]
            x, t = self._batch()
            self.optimizer.zero_grad()
            loss = self._objective(x, t)
            loss.backward()
            self.optimizer.step()
            if not (np.isfinite(loss.data).all() and all(np.isfinite(p.data).all() for p in params)):
                for p, s in zip(params, saved):
                    p.data[...] = s
                self.diverged = True
                return False
            self.iteration += 1
            if self.iteration % self.stride == 0:
                self._record()
        self.diverged = False
        return True

    def _losses(self) -> tuple[float | None, float | None]:
        out: list[float | None] = []
        with no_grad(), np.errstate(all="ignore"):
            for which, idx in (("train", self.train_idx), ("test", self.test_idx)):
                if len(idx) == 0:
                    out.append(None)
                    continue
                x, t = self._subset(which)
                value = float(net.data_loss(self.model(x), t, self.config["loss"], self.task, self.classes).data)
                out.append(value if np.isfinite(value) else None)
        return out[0], out[1]

    def _record(self) -> None:
        train, test = self._losses()
        self.history.append([self.iteration, train, test])
        if len(self.history) > MAX_HISTORY:
            self.stride *= 2
            self.history = [h for h in self.history if h[0] % self.stride == 0]

    # ---------------------------------------------------------------- views
    def view(self) -> dict[str, Any]:
        """Everything the page draws that training changes (the body of ``state.view`` and ``frame``)."""
        c = self.config
        train_loss, test_loss = self._losses()
        correct = None
        if self.task == "classification":
            _, z = net.hidden_forward(self.model, net.features(self.X, c["features"]))
            right = net.predicted_class(z, self.classes) == self.y
            correct = {
                "train": [int(right[self.train_idx].sum()), len(self.train_idx)],
                "test": [int(right[self.test_idx].sum()), len(self.test_idx)],
            }
        layers = [{"weight": net.sig(m.weight.data), "bias": net.sig(m.bias.data)} for m in self.model.layers]
        g = c["grid"]
        rows = g if self.task == "classification" else 1
        cells = net.grid_cells(self.domain, rows, g)
        hidden, z = net.hidden_forward(self.model, net.features(cells if rows > 1 else cells[:, :1], c["features"]))
        neurons = [[net.encode_grid(h[:, j], rows, g) for j in range(h.shape[1])] for h in hidden]
        grid = curve = None
        if self.task == "classification":
            probs = net.shown_output(z, self.task, c["loss"], self.classes)
            grid = {"probs": [net.encode_grid(probs[:, k], g, g, 0.0, 1.0) for k in range(probs.shape[1])]}
        else:
            xs = np.linspace(self.domain[0], self.domain[1], g)
            _, zc = net.hidden_forward(self.model, net.features(xs[:, None], c["features"]))
            curve = {"x": net.sig(xs), "y": net.sig(zc[:, 0])}
        return {
            "iteration": self.iteration,
            "loss": {"train": _opt_sig(train_loss), "test": _opt_sig(test_loss)},
            "correct": correct,
            "history": [[h[0], _opt_sig(h[1]), _opt_sig(h[2])] for h in self.history],
            "sizes": self.sizes,
            "layers": layers,
            "grid": grid,
            "neurons": neurons,
            "curve": curve,
            "diverged": self.diverged,
        }

    def state(self) -> dict[str, Any]:
        data = {"task": self.task, "points": self.points, "split": self.split.tolist(), "domain": self.domain}
        data["classes"] = self.classes if self.task == "classification" else None
        return {
            "type": "state",
            "config": copy.deepcopy(self.config),
            "data": data,
            "view": self.view(),
            "animating": self.animating,
            "steps_per_frame": self.steps_per_frame,
        }

    def frame(self) -> dict[str, Any]:
        """One animation frame: ``steps_per_frame`` steps, then the view; a ``diverged`` message if it diverged."""
        with self.lock:
            if not self.train_steps(self.steps_per_frame):
                return self._diverged_message()
            return {"type": "frame", **self.view()}

    def _diverged_message(self) -> dict[str, Any]:
        self.animating = False
        return {
            "type": "diverged",
            "iteration": self.iteration,
            "message": f"training diverged at iteration {self.iteration + 1} (NaN or inf): "
            "the weights are back at their last finite values; lower the learning rate or reset",
        }

    # ---------------------------------------------------------------- messages
    def handle(self, msg: dict[str, Any]) -> list[dict[str, Any]]:
        """A validated message -> the replies; ``ProtocolError`` (session unchanged) if refused."""
        kind = msg["type"]
        with self.lock:
            try:
                return getattr(self, f"_on_{kind}")(msg)
            except ProtocolError as err:
                err.for_type = kind
                raise

    def _on_hello(self, msg: dict) -> list[dict]:
        return [self.state()]

    def _on_presets(self, msg: dict) -> list[dict]:
        from chainrule.playground.scenes import preset_list

        return [{"type": "presets", "presets": preset_list()}]

    def _on_config(self, msg: dict) -> list[dict]:
        change = {k: v for k, v in msg.items() if k not in ("type", "id")}
        new = {**self.config, **change}
        task_changed = new["task"] != self.task
        if task_changed:  # the other task's defaults for what the message did not set
            if "features" not in change:
                new["features"] = list(P.DEFAULT_FEATURES[new["task"]])
            if "loss" not in change and new["task"] == "regression":
                new["loss"] = "mse"
        P.check_config_consistent(new)
        old = self.config
        self.config = new
        if task_changed:
            preset = "sine" if new["task"] == "regression" else "xor"
            self._set_data(*make_preset(preset))
        elif new["test_fraction"] != old["test_fraction"]:
            self._split()
        if task_changed or any(new[k] != old[k] for k in REBUILD):
            self._tensors = {}
            self._build()
        elif any(new[k] != old[k] for k in ("optimizer", "lr", "batch_size", "l2")):
            self._new_optimizer()
        return [self.state()]

    def _replace_data(self, task: str, points: list[Any], domain: list[float]) -> None:
        """New points (and maybe task): the split, and the model if the task or the class count changed."""
        old_classes, old_task = self._built_classes, self.task
        if task != self.config["task"]:
            self.config["task"] = task
            self.config["features"] = list(P.DEFAULT_FEATURES[task])
            if task == "regression":
                self.config["loss"] = "mse"
        self._set_data(task, points, domain)
        if task != old_task or self.classes != old_classes:
            self._build()

    def _on_data(self, msg: dict) -> list[dict]:
        task = msg.get("task", self.task)
        points = P.check_points("data.points", msg["points"], task)
        domain = msg.get("domain") or (self.domain if task == self.task else list(P.DEFAULT_DOMAIN[task]))
        self._replace_data(task, points, domain)
        return [self.state()]

    def _on_domain(self, msg: dict) -> list[dict]:
        self.domain = list(msg["domain"])  # only the views change: model, points and split stay
        return [self.state()]

    def _on_preset(self, msg: dict) -> list[dict]:
        task, points, domain = make_preset(msg["name"], msg.get("n"), msg.get("noise"), msg.get("seed"))
        self._replace_data(task, points, domain)
        self._build()
        return [self.state()]

    def _on_add_point(self, msg: dict) -> list[dict]:
        if len(self.points) >= P.MAX_POINTS:
            raise ProtocolError(f"add_point: the scene already has the maximum of {P.MAX_POINTS} points")
        point = P.check_point("add_point.point", msg["point"], self.task)
        self._replace_data(self.task, [*self.points, list(point)], self.domain)
        return [self.state()]

    def _on_remove_point(self, msg: dict) -> list[dict]:
        i = self._index("remove_point", msg["index"])
        self._replace_data(self.task, self.points[:i] + self.points[i + 1 :], self.domain)
        return [self.state()]

    def _index(self, kind: str, i: int) -> int:
        if not 0 <= i < len(self.points):
            raise ProtocolError(f"{kind}.index: no point {i}; the scene has {len(self.points)} points")
        return i

    def _on_train(self, msg: dict) -> list[dict]:
        if not self.train_steps(msg["steps"]):
            return [self._diverged_message(), self.state()]
        return [self.state()]

    def _on_step(self, msg: dict) -> list[dict]:
        return self._on_train({"steps": 1})

    def _on_animate(self, msg: dict) -> list[dict]:
        if "steps_per_frame" in msg:
            self.steps_per_frame = msg["steps_per_frame"]
        if msg["running"] and len(self.train_idx) == 0:
            raise ProtocolError("animate: there are no training points; add points first")
        was = self.animating
        self.animating = msg["running"]
        return [self.state()] if was and not self.animating else []

    def _on_reset(self, msg: dict) -> list[dict]:
        self.config["seed"] = (self.config["seed"] + 1) % (P.MAX_SEED + 1)
        self._build()
        return [self.state()]

    def _on_forward(self, msg: dict) -> list[dict]:
        from chainrule.playground.steps import forward_record

        return [forward_record(self, self._index("forward", msg["index"]))]

    def _on_backward(self, msg: dict) -> list[dict]:
        from chainrule.playground.steps import backward_record

        return [backward_record(self, self._index("backward", msg["index"]))]

    def _on_export(self, msg: dict) -> list[dict]:
        return [{"type": "scene", "scene": self.export()}]

    def _on_import(self, msg: dict) -> list[dict]:
        self.load(msg["scene"])
        return [self.state()]

    # ---------------------------------------------------------------- scenes
    def export(self) -> dict[str, Any]:
        """The whole scene as JSON-ready data, weights exact (float32 values as JSON numbers)."""
        layers = [
            {"weight": m.weight.data.astype(np.float64).tolist(), "bias": m.bias.data.astype(np.float64).tolist()}
            for m in self.model.layers
        ]
        return {
            "format": SCENE_FORMAT,
            "version": SCENE_VERSION,
            "config": copy.deepcopy(self.config),
            "data": {"task": self.task, "points": copy.deepcopy(self.points), "domain": list(self.domain)},
            "model": {"sizes": self.sizes, "iteration": self.iteration, "layers": layers},
            "history": copy.deepcopy(self.history),
        }

    def load(self, scene: Any) -> None:
        """Replace the scene by a validated one (``ProtocolError`` and nothing changed if it is not valid)."""
        s = check_scene(scene)
        with self.lock:
            old = (self.config, self.task, self.points, self.domain)
            self.config = s["config"]
            self._set_data(self.config["task"], s["data"]["points"], s["data"]["domain"])
            model = s["model"]
            if model is not None and model["sizes"] != self.sizes:
                wanted = self.sizes
                self.config, task, points, domain = old
                self._set_data(task, points, domain)
                raise ProtocolError(f"scene.model.sizes: config and data give {wanted}, got {model['sizes']}")
            self._build()
            if model is not None:
                for layer, (w, b) in zip(self.model.layers, model["layers"]):
                    layer.weight.data[...] = w
                    layer.bias.data[...] = b
                self.iteration = model["iteration"]
                self.history = s["history"]
                if len(self.history) >= 2:
                    self.stride = max(1, self.history[1][0] - self.history[0][0])
                if not self.history:
                    self._record()


def _opt_sig(x: float | None) -> float | None:
    return None if x is None else net.sig1(x)


__all__ = ["Session"]
