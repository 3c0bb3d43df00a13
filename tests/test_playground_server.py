"""The playground's session logic without the web: presets, config, training, steps, scenes, validation."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from chainrule.autograd.tensor import Tensor
from chainrule.playground import network as net
from chainrule.playground.protocol import MAX_MESSAGE_BYTES, ProtocolError, decode
from chainrule.playground.scenes import PRESETS, make_preset
from chainrule.playground.session import Session
from chainrule.playground.steps import backward_numbers

torch = pytest.importorskip("torch")


def send(session: Session, **msg) -> list[dict]:
    return session.handle(decode(json.dumps(msg)))


def state(session: Session, **msg) -> dict:
    replies = send(session, **msg)
    assert replies[-1]["type"] == "state"
    return replies[-1]


# ------------------------------------------------------------------ presets and data
@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_give_points_of_their_task(name):
    s = Session()
    st = state(s, type="preset", name=name)
    preset = PRESETS[name]
    points = st["data"]["points"]
    assert st["config"]["task"] == preset.task and st["data"]["task"] == preset.task
    assert len(points) == max(preset.n - preset.n % 4 if preset.minimum == 4 else preset.n, preset.minimum)
    assert all(len(p) == (3 if preset.task == "classification" else 2) for p in points)
    assert len(st["data"]["split"]) == len(points)
    assert st["view"]["sizes"][-1] == (3 if name == "three_class" else 1)
    assert st["data"]["domain"] == list(map(float, preset.domain))
    if preset.task == "regression":
        assert st["view"]["curve"] is not None and st["view"]["grid"] is None
        assert st["config"]["features"] == ["x1"]


def test_xor_default_is_the_four_point_truth_table():
    st = state(Session(), type="hello")
    assert st["data"]["points"] == [[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 0]]
    assert st["data"]["split"] == [0, 0, 0, 0]  # fewer than 10 points: all training
    assert st["view"]["sizes"] == [2, 4, 1] and st["view"]["iteration"] == 0


def test_split_is_stable_when_points_are_added():
    s = Session()
    before = state(s, type="preset", name="circle", n=100)["data"]["split"]
    after = state(s, type="add_point", point=[0.1, 0.2, 1])["data"]["split"]
    assert after[:100] == before and 0 < sum(before) < 100


def test_blue_point_makes_three_classes_and_rebuilds():
    s = Session()
    state(s, type="train", steps=5)
    st = state(s, type="add_point", point=[0.5, 0.5, 2])
    assert st["data"]["classes"] == 3 and st["view"]["sizes"] == [2, 4, 3] and st["view"]["iteration"] == 0
    assert len(st["view"]["grid"]["probs"]) == 3
    st = state(s, type="remove_point", index=4)
    assert st["data"]["classes"] == 2 and st["view"]["sizes"] == [2, 4, 1]


# ------------------------------------------------------------------ config
def test_config_rebuilds_or_keeps_weights():
    s = Session()
    state(s, type="train", steps=3)
    w = s.model.layers[0].weight.data.copy()
    st = state(s, type="config", lr=0.1, optimizer="adam", l2=0.01)
    assert st["view"]["iteration"] == 3 and np.array_equal(s.model.layers[0].weight.data, w)
    st = state(s, type="config", hidden=[3, 5], activation="relu")
    assert st["view"]["iteration"] == 0 and st["view"]["sizes"] == [2, 3, 5, 1]
    assert [len(layer["weight"]) for layer in st["view"]["layers"]] == [3, 5, 1]
    st = state(s, type="config", features=["x1", "x2", "x1x2", "sin_x1"])
    assert st["view"]["sizes"][0] == 4


def test_config_task_switch_loads_that_tasks_data():
    s = Session()
    st = state(s, type="config", task="regression")
    assert st["data"]["task"] == "regression" and st["config"]["features"] == ["x1"] and st["config"]["loss"] == "mse"
    with pytest.raises(ProtocolError, match="regression allows only 'mse'"):
        send(s, type="config", loss="hinge")
    with pytest.raises(ProtocolError, match="x2 not allowed"):
        send(s, type="config", features=["x1", "x2"])
    assert s.config["loss"] == "mse"  # refused: unchanged


def test_reset_gives_new_weights_from_the_next_seed():
    s = Session()
    w0 = s.model.layers[0].weight.data.copy()
    st = state(s, type="reset")
    assert st["config"]["seed"] == 1 and not np.array_equal(s.model.layers[0].weight.data, w0)
    state(s, type="config", seed=0)
    assert np.array_equal(s.model.layers[0].weight.data, w0)  # same seed, same weights


# ------------------------------------------------------------------ training
def test_xor_trains_to_four_of_four():
    s = Session()
    state(s, type="config", activation="tanh")
    st = state(s, type="train", steps=600)
    assert st["view"]["correct"]["train"] == [4, 4]
    assert st["view"]["loss"]["train"] < 0.05
    history = st["view"]["history"]
    assert history[0][0] == 0 and history[-1][0] == 600 and history[-1][1] < history[0][1]


def test_history_is_thinned_to_500_entries():
    s = Session()
    state(s, type="train", steps=1200)
    h = s.history
    assert len(h) <= 500 and h[-1][0] == 1200 and s.stride == 4
    assert all(b[0] - a[0] == s.stride for a, b in itertools.pairwise(h))


def test_sine_regression_reaches_a_low_loss():
    s = Session()
    state(s, type="preset", name="sine")
    st = state(s, type="config", hidden=[16], activation="tanh", optimizer="adam", lr=0.02)
    first = st["view"]["loss"]["train"]
    st = state(s, type="train", steps=1500)
    assert st["view"]["loss"]["train"] < 0.01 < first
    curve = st["view"]["curve"]
    assert len(curve["x"]) == 64 and curve["x"][0] == -3.5 and curve["x"][-1] == 3.5
    assert (
        np.max(
            np.abs(np.array(curve["y"])[np.abs(curve["x"]) < 3] - np.sin(np.array(curve["x"]))[np.abs(curve["x"]) < 3])
        )
        < 0.15
    )


def test_minibatches_and_momentum_train():
    s = Session()
    state(s, type="preset", name="circle", n=200)
    state(
        s,
        type="config",
        hidden=[8],
        activation="relu",
        optimizer="momentum",
        lr=0.05,
        batch_size=16,
        loss="cross_entropy",
    )
    st = state(s, type="train", steps=800)
    k, n = st["view"]["correct"]["train"]
    assert k / n > 0.9 and st["view"]["iteration"] == 800


def test_divergence_stops_and_restores_finite_weights():
    s = Session()
    state(s, type="preset", name="line")
    state(s, type="config", hidden=[8, 8], activation="linear", lr=10.0)
    replies = send(s, type="train", steps=1000)
    assert [r["type"] for r in replies] == ["diverged", "state"]
    assert "diverged" in replies[0]["message"] and replies[1]["view"]["diverged"] is True
    assert replies[0]["iteration"] < 1000
    json.dumps(replies, allow_nan=False)  # what the page gets is valid JSON (overflowed display values are null)
    assert all(np.isfinite(p.data).all() for p in s.model.parameters())


# ------------------------------------------------------------------ views
def test_grids_hold_the_engines_values():
    s = Session()
    state(s, type="config", hidden=[3], activation="tanh", grid=16)
    view = state(s, type="train", steps=50)["view"]
    cells = net.grid_cells(s.domain, 16, 16)
    hidden, z = net.hidden_forward(s.model, net.features(cells, s.config["features"]))
    p = 1 / (1 + np.exp(-z[:, 0]))
    got = net.decode_grid(view["grid"]["probs"][1]).ravel()
    assert np.max(np.abs(got - p)) <= 0.5 / 255 + 1e-6
    for j, g in enumerate(view["neurons"][0]):
        lo, hi = hidden[0][:, j].min(), hidden[0][:, j].max()
        assert np.max(np.abs(net.decode_grid(g).ravel() - hidden[0][:, j])) <= 0.5 * (hi - lo) / 255 + 1e-4
    # row 0 is the top of the plane: its first cell is (x_min, y_max) shifted by half a cell
    assert np.allclose(cells[0], [-0.5 + 1 / 16, 1.5 - 1 / 16])


def test_forward_step_matches_the_model():
    s = Session()
    state(s, type="config", hidden=[3, 2], activation="elu")
    state(s, type="train", steps=20)
    rec = send(s, type="forward", index=2)[0]
    x = net.features(s.X[2:3], s.config["features"])
    assert rec["features"]["values"] == x[0].tolist()
    inputs = x[0].astype(np.float64)
    for layer_rec, layer in zip(rec["layers"], s.model.layers):
        outs = []
        for j, neuron in enumerate(layer_rec["neurons"]):
            z = float(layer.weight.data[j].astype(np.float64) @ inputs + layer.bias.data[j])
            assert neuron["z"] == pytest.approx(z, rel=1e-4, abs=1e-6)
            outs.append(neuron["a"])
        inputs = np.array(outs)
    z_out = s.model(Tensor(x)).data[0, 0]
    assert rec["output"]["z"][0] == pytest.approx(float(z_out), rel=1e-4)
    assert rec["output"]["p"][1] == pytest.approx(1 / (1 + np.exp(-z_out)), rel=1e-4)
    assert rec["output"]["target"] == 1 and rec["layers"][-1]["activation"] == "sigmoid"


CASES = [
    ("classification", 2, "mse", "sigmoid"),
    ("classification", 2, "cross_entropy", "tanh"),
    ("classification", 2, "hinge", "relu"),
    ("classification", 3, "mse", "leaky_relu"),
    ("classification", 3, "cross_entropy", "elu"),
    ("classification", 3, "hinge", "linear"),
    ("regression", 1, "mse", "tanh"),
]


def _torch_loss(z, t, loss, task, classes, labels):
    F = torch.nn.functional
    if task == "regression":
        return F.mse_loss(z, t)
    if classes == 2:
        if loss == "mse":
            return F.mse_loss(torch.sigmoid(z), t)
        if loss == "cross_entropy":
            return F.binary_cross_entropy_with_logits(z, t)
        return torch.clamp(1 - (2 * t - 1) * z, min=0).mean()
    if loss == "mse":
        return F.mse_loss(torch.softmax(z, 1), t)
    if loss == "cross_entropy":
        return F.cross_entropy(z, labels)
    return F.multi_margin_loss(z, labels) * 3  # PyTorch divides by the number of classes


def _scene_for(task, classes, loss, activation) -> Session:
    s = Session()
    preset = {("classification", 2): "moons", ("classification", 3): "three_class"}.get((task, classes), "sine")
    state(s, type="preset", name=preset, n=30)
    state(s, type="config", hidden=[3, 4], activation=activation, loss=loss, features=s.config["features"])
    state(s, type="train", steps=15)
    return s


@pytest.mark.parametrize(("task", "classes", "loss", "activation"), CASES)
def test_data_loss_equals_pytorch(task, classes, loss, activation):
    rng = np.random.default_rng(1)
    out = 1 if classes != 3 else 3
    z = rng.normal(size=(7, out)).astype(np.float64)
    labels = rng.integers(0, classes if task == "classification" else 2, 7)
    y = rng.normal(size=7) if task == "regression" else labels
    t = net.targets(task, classes, y).astype(np.float64)
    zc = Tensor(z, requires_grad=True)
    mine = net.data_loss(zc, Tensor(t), loss, task, classes)
    mine.backward()
    zt = torch.tensor(z, requires_grad=True)
    ref = _torch_loss(zt, torch.tensor(t), loss, task, classes, torch.tensor(labels))
    ref.backward()
    assert float(mine.data) == pytest.approx(float(ref.detach()), rel=1e-10)
    np.testing.assert_allclose(zc.grad, zt.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(("task", "classes", "loss", "activation"), CASES)
def test_backward_step_equals_engine_and_pytorch(task, classes, loss, activation):
    s = _scene_for(task, classes, loss, activation)
    i = 3
    rec = backward_numbers(s, i)
    # the engine: a plain backward of the same point's loss
    x = net.features(s.X[i : i + 1], s.config["features"])
    t = net.targets(s.task, s.classes, s.y[i : i + 1])
    s.model.zero_grad()
    net.data_loss(s.model(Tensor(x)), Tensor(t), loss, s.task, s.classes).backward()
    for layer, numbers in zip(s.model.layers, rec["layers"]):
        np.testing.assert_array_equal(numbers["weight_grad"], layer.weight.grad)
        np.testing.assert_array_equal(numbers["bias_grad"], layer.bias.grad)
        # gradient = upstream (delta) x local (the input)
        np.testing.assert_allclose(
            numbers["weight_grad"], np.outer(numbers["delta"], numbers["inputs"]), rtol=1e-6, atol=1e-9
        )
        if numbers["local"] is not None:
            np.testing.assert_allclose(numbers["delta"], numbers["da"] * numbers["local"], rtol=1e-5, atol=1e-9)
    s.model.zero_grad()
    # PyTorch, same weights, float64
    acts = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu, "linear": lambda v: v,
            "leaky_relu": torch.nn.functional.leaky_relu, "elu": torch.nn.functional.elu}  # fmt: skip
    params = [(torch.tensor(m.weight.data.astype(np.float64), requires_grad=True),
               torch.tensor(m.bias.data.astype(np.float64), requires_grad=True)) for m in s.model.layers]  # fmt: skip
    a = torch.tensor(x.astype(np.float64))
    zs, hs = [], []
    for k, (w, b) in enumerate(params):
        z = a @ w.T + b
        z.retain_grad()
        zs.append(z)
        if k < len(params) - 1:
            a = acts[activation](z)
            a.retain_grad()
            hs.append(a)
    ref = _torch_loss(zs[-1], torch.tensor(t.astype(np.float64)), loss, s.task, s.classes, torch.tensor(s.y[i : i + 1]))
    ref.backward()
    assert rec["loss"] == pytest.approx(float(ref.detach()), rel=1e-5)
    for k, ((w, b), numbers) in enumerate(zip(params, rec["layers"])):
        np.testing.assert_allclose(numbers["weight_grad"], w.grad.numpy(), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(numbers["bias_grad"], b.grad.numpy(), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(numbers["delta"], zs[k].grad.numpy()[0], rtol=1e-4, atol=1e-6)
        if k < len(hs):
            np.testing.assert_allclose(numbers["da"], hs[k].grad.numpy()[0], rtol=1e-4, atol=1e-6)


def test_backward_step_message_shape():
    s = Session()
    rec = send(s, type="backward", index=0)[0]
    assert rec["type"] == "backward_step" and [len(layer["neurons"]) for layer in rec["layers"]] == [4, 1]
    out = rec["layers"][-1]["neurons"][0]
    assert out["da"] is not None and out["local"] is not None  # mse on a sigmoid output
    assert all(p.grad is None for p in s.model.parameters())  # training state left clean


# ------------------------------------------------------------------ scenes
def test_export_import_round_trip_gives_identical_weights():
    s = Session()
    state(s, type="preset", name="spiral", n=60)
    state(s, type="config", hidden=[5, 3], activation="tanh", optimizer="adam", lr=0.01)
    state(s, type="train", steps=40)
    scene = json.loads(json.dumps(send(s, type="export")[0]["scene"]))
    t = Session()
    st = state(t, type="import", scene=scene)
    for a, b in zip(s.model.parameters(), t.model.parameters()):
        assert np.array_equal(a.data, b.data)
    assert st["view"]["iteration"] == 40 and t.history == s.history and t.points == s.points
    assert t.export() == s.export()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda sc: sc.update(format="other"), "scene.format"),
        (lambda sc: sc.update(version=2), "scene.version"),
        (lambda sc: sc["model"]["layers"][0]["weight"][0].__setitem__(0, "1"), r"weight\[0\]\[0\]: expected a number"),
        (lambda sc: sc["model"].update(sizes=[2, 5, 1]), "scene.model"),
        (lambda sc: sc["config"].pop("lr"), "missing field"),
        (lambda sc: sc["data"]["points"].append([0, 0, 7]), "label"),
        (lambda sc: sc.update(extra=1), "unknown field"),
    ],
)
def test_import_refuses_bad_scenes_and_keeps_the_session(change, match):
    s = Session()
    scene = s.export()
    before = s.export()
    change(scene)
    with pytest.raises(ProtocolError, match=match):
        send(s, type="import", scene=scene)
    assert s.export() == before


def test_preset_function_validates():
    with pytest.raises(ProtocolError, match="unknown preset"):
        make_preset("nope")


# ------------------------------------------------------------------ validation
BAD = [
    ('{"type": "config", "hidden": [1, 2, 3, 4, 5, 6, 7, 8, 9]}', "config.hidden: expected 0..8 entries"),
    ('{"type": "config", "hidden": [65]}', r"config.hidden\[0\]: must be 1..64"),
    ('{"type": "config", "hidden": [2.0]}', "expected an integer"),
    ('{"type": "config", "hidden": "4"}', "expected a list"),
    ('{"type": "config", "activation": "swish"}', "unknown name"),
    ('{"type": "config", "loss": 3}', "expected a string"),
    ('{"type": "config", "optimizer": "lbfgs"}', "config.optimizer: unknown name"),
    ('{"type": "config", "lr": 0}', "config.lr: must be > 0"),
    ('{"type": "config", "lr": 11}', "config.lr"),
    ('{"type": "config", "lr": true}', "expected a number"),
    ('{"type": "config", "batch_size": 0}', "config.batch_size: must be 1..10000"),
    ('{"type": "config", "l2": -1}', "config.l2"),
    ('{"type": "config", "seed": -1}', "config.seed"),
    ('{"type": "config", "features": []}', "config.features"),
    ('{"type": "config", "features": ["x1", "x1"]}', "listed twice"),
    ('{"type": "config", "features": ["cos_x1"]}', "unknown name"),
    ('{"type": "config", "test_fraction": 0.95}', "config.test_fraction"),
    ('{"type": "config", "grid": 4}', "config.grid"),
    ('{"type": "config", "discretize": 1}', "expected true or false"),
    ('{"type": "config", "task": "clustering"}', "config.task"),
    ('{"type": "config"}', "at least one field"),
    ('{"type": "config", "speed": 1}', "unknown field 'speed'"),
    ('{"type": "config", "lr": NaN}', "NaN is not a number JSON allows"),
    ('{"type": "config", "lr": Infinity}', "Infinity"),
    ('{"type": "config", "lr": 1e999}', "finite"),
    ('{"type": "teleport"}', "unknown type"),
    ('{"kind": "hello"}', '"type" must be a string'),
    ("[1, 2]", "expected a JSON object"),
    ("not json", "not valid JSON"),
    ('{"type": "train", "steps": 100001}', "train.steps"),
    ('{"type": "animate"}', "missing field 'running'"),
    ('{"type": "animate", "running": true, "steps_per_frame": 0}', "steps_per_frame"),
    ('{"type": "preset", "name": "xor", "noise": 3}', "preset.noise"),
    ('{"type": "hello", "id": "a"}', "hello.id"),
    ('{"type": "data", "points": 5}', "data.points: expected a list"),
    ('{"type": "hello", "x": [[[[[[[[[[1]]]]]]]]]]}', "nested more than 8"),
]


@pytest.mark.parametrize(("raw", "match"), BAD)
def test_bad_messages_are_refused_in_one_line(raw, match):
    with pytest.raises(ProtocolError, match=match) as info:
        decode(raw)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("msg", "match"),
    [
        ({"type": "data", "points": [[0, 0]]}, r"data.points\[0\]: a classification point is \[x1, x2, label\]"),
        ({"type": "data", "points": [[0, 0, 3]]}, "label"),
        ({"type": "data", "points": [[0, 1e4, 1]]}, r"data.points\[0\]\[1\]"),
        ({"type": "data", "points": [[0, 0, 1]] * 10_001}, "expected 0..10000 entries"),
        ({"type": "add_point", "point": [0, "1", 0]}, "expected a number"),
        ({"type": "remove_point", "index": 4}, "no point 4"),
        ({"type": "forward", "index": 9}, "no point 9"),
    ],
)
def test_session_refuses_bad_data_and_stays_unchanged(msg, match):
    s = Session()
    before = s.export()
    with pytest.raises(ProtocolError, match=match) as info:
        send(s, **msg)
    assert info.value.for_type == msg["type"]
    assert s.export() == before


def test_oversize_message_is_refused_before_parsing():
    with pytest.raises(ProtocolError, match="over the limit"):
        decode('{"type": "hello", "pad": "' + "x" * MAX_MESSAGE_BYTES + '"}')


def test_deeply_nested_message_is_refused():
    with pytest.raises(ProtocolError, match="nested"):
        decode("[" * 100_000 + "]" * 100_000)


def test_training_with_no_points_is_refused():
    s = Session()
    st = state(s, type="data", points=[])
    assert st["view"]["loss"]["train"] is None and st["view"]["correct"]["train"] == [0, 0]
    with pytest.raises(ProtocolError, match="no training points"):
        send(s, type="train", steps=1)


def test_domain_and_same_class_data_keep_the_model():
    s = Session()
    state(s, type="train", steps=7)
    w = s.model.layers[0].weight.data.copy()
    st = state(s, type="domain", domain=[-1, 2, -1, 2])
    assert st["data"]["domain"] == [-1, 2, -1, 2] and st["view"]["iteration"] == 7
    st = state(s, type="data", points=[[0, 0, 0], [1, 1, 1]])
    assert st["view"]["iteration"] == 7 and np.array_equal(s.model.layers[0].weight.data, w)
    with pytest.raises(ProtocolError, match="x_min < x_max"):
        send(s, type="domain", domain=[1, 0, 0, 1])
