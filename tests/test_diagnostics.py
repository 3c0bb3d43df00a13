"""``Diagnostics``: the classic pathologies of deep networks, measured, and the callback's own contract.

The numbers in the comments were measured on this code (float32, seeds as given); each assertion
leaves a margin of an order of magnitude or more where the claim is about orders of magnitude.
"""

from __future__ import annotations

import gc
import itertools
import json

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim
from chainrule.data import Standardizer, get_dataset
from chainrule.nn import init
from chainrule.train import Callback, Diagnostics, fit


def _deep(activation: str, he: bool, seed: int = 0) -> nn.MLP:
    """An MLP with 8 Linear layers of width 32 (7 hidden activations), 3 classes."""
    model = nn.MLP([32] * 8 + [3], activation=activation, rng=seed)
    if he:
        gen = np.random.default_rng(seed)
        for layer in model.layers:
            init.kaiming_normal_(layer.weight, nonlinearity="relu", rng=gen)
            init.zeros_(layer.bias)
    return model


def _gaussian_problem(n: int = 256) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 32)).astype(np.float32)
    y = (X[:, :5].sum(axis=1) > 0).astype(np.int64) + (X[:, 5] > 0)
    return X, y


def _first_over_last(model: nn.MLP) -> tuple[float, list[float]]:
    X, y = _gaussian_problem()
    diag = Diagnostics()
    fit(
        model,
        "cross_entropy",
        optim.SGD(model.parameters(), lr=0.01),
        (X, y),
        epochs=1,
        batch_size=64,
        callbacks=[diag],
    )
    norms = [diag.series(f"layers.{i}.weight", "grad_norm")[0] for i in range(8)]
    return norms[0] / norms[-1], norms


# ===================================================================== vanishing gradients
def test_deep_sigmoid_gradients_vanish_but_relu_with_he_init_keeps_them():
    # measured: sigmoid (default init) first/last = 1.9e-6 (seeds 0-2: 0.8e-6 .. 1.9e-6);
    # ReLU + He = 0.34 (seeds 0-2: 0.22 .. 0.58)
    sigmoid_ratio, sigmoid_norms = _first_over_last(_deep("sigmoid", he=False))
    relu_ratio, _ = _first_over_last(_deep("relu", he=True))
    assert sigmoid_ratio < 1e-4
    assert 0.1 < relu_ratio < 10
    # the sigmoid's gradient shrinks at every layer on the way down (by 4x to 8x: f' <= 1/4)
    assert all(a < b for a, b in itertools.pairwise(sigmoid_norms))


def test_the_initialization_matters_as_much_as_the_activation():
    # measured: ReLU with the default U(±1/sqrt(fan_in)) init 0.014; sigmoid with He init 1.9e-4
    relu_default, _ = _first_over_last(_deep("relu", he=False))
    sigmoid_he, _ = _first_over_last(_deep("sigmoid", he=True))
    assert relu_default < 0.1
    assert sigmoid_he < 1e-2


# ===================================================================== dead ReLUs
def _digits() -> tuple[np.ndarray, np.ndarray]:
    ds = get_dataset("digits")
    return Standardizer().fit(ds.X).transform(ds.X).astype(np.float32), ds.y


@pytest.mark.parametrize("lr", [1.0, 4.0])
def test_a_huge_learning_rate_kills_relu_units(lr):
    X, y = _digits()
    model = nn.MLP([64, 64, 64, 10], activation="relu", rng=0)
    diag = Diagnostics()
    history = fit(
        model, "cross_entropy", optim.SGD(model.parameters(), lr=lr), (X, y), epochs=3, batch_size=64, callbacks=[diag]
    )
    last = diag.records[-1]
    dead = {name: a["dead_fraction"] for name, a in last["activations"].items()}
    if lr == 1.0:
        # measured: no dead unit, training accuracy 0.97
        assert dead == {"activations.0": 0.0, "activations.1": 0.0}
        assert history.accuracy[-1] > 0.9
    else:
        # measured: the second hidden layer is entirely dead (1.0) from the second epoch on; the first
        # (zero-centred, standardized inputs) keeps all its units; accuracy is chance (0.10)
        assert dead["activations.1"] > 0.5
        assert history.accuracy[-1] < 0.2
        if dead["activations.1"] == 1.0:
            # nothing flows back through a layer whose every unit is dead: learning below it stopped
            assert diag.series("layers.0.weight", "grad_norm")[-1] == 0.0
            assert diag.series("layers.0.weight", "update_ratio")[-1] == 0.0


# ===================================================================== zig-zag
def _one_sign_rows(activation: str) -> float:
    """The fraction of (example, unit) pairs whose per-example gradient on the unit's incoming weights has one sign."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(32, 4)), rng.integers(0, 3, 32)
    model = nn.MLP([4, 8, 3], activation=activation, dtype="float64", rng=0)
    one_sign = rows = 0
    for i in range(len(X)):
        model.zero_grad()
        hidden = model.activations[0](model.layers[0](cr.Tensor(X[i : i + 1])))
        loss = nn.functional.cross_entropy(model.layers[1](hidden), cr.Tensor(y[i : i + 1]))
        loss.backward()
        grad = model.layers[1].weight.grad  # (3, 8): row j = dL/d(incoming weights of output unit j)
        # dL/dW[j, i] = delta_j * h_i: with every h_i > 0, each row has the sign of delta_j
        delta = grad[:, 0] / hidden.data[0, 0]
        np.testing.assert_allclose(grad, np.outer(delta, hidden.data[0]), rtol=1e-12)
        rows += len(grad)
        one_sign += int(sum(np.all(row > 0) or np.all(row < 0) for row in grad))
    return one_sign / rows


def test_all_positive_inputs_give_one_sign_gradients_per_example():
    # measured: sigmoid below the neuron 96/96 rows one-signed; tanh (zero-centred) 0/96
    assert _one_sign_rows("sigmoid") == 1.0
    assert _one_sign_rows("tanh") < 0.2


# ===================================================================== the callback's contract
def _mixed_model() -> nn.Sequential:
    gen = np.random.default_rng(1)
    return nn.Sequential(
        nn.Linear(3, 6, dtype="float64", rng=gen),
        nn.ReLU(),
        nn.Linear(6, 5, dtype="float64", rng=gen),
        nn.Tanh(),
        nn.Linear(5, 1, dtype="float64", rng=gen),
        nn.Sigmoid(),
    )


def _regression_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 3))
    y = (X[:, :1] > 0).astype(np.float64)
    return X, y, 100 * rng.normal(size=(10, 3)), rng.random((10, 1))


def test_fit_gives_identical_weights_with_and_without_diagnostics():
    X, y, Xv, yv = _regression_data()
    runs = []
    for callbacks in ([], [Diagnostics()]):
        model = _mixed_model()
        opt = optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
        history = fit(model, "mse", opt, (X, y), epochs=4, batch_size=8, validation=(Xv, yv), callbacks=callbacks)
        runs.append(([p.data.copy() for p in model.parameters()], history.loss, history.val_loss))
    for a, b in zip(runs[0][0], runs[1][0]):
        assert np.array_equal(a, b)
    assert runs[0][1:] == runs[1][1:]


def test_activation_statistics_are_those_of_the_training_examples():
    # lr = 0: the weights stay put, so the epoch's statistics are one forward pass over the training
    # set; the validation inputs (100x larger) would change every number if they were counted
    X, y, Xv, yv = _regression_data()
    model = _mixed_model()
    diag = Diagnostics()
    fit(model, "mse", optim.SGD(model.parameters(), lr=0.0), (X, y), epochs=1, batch_size=8,
        validation=(Xv, yv), callbacks=[diag])  # fmt: skip
    relu = np.maximum(X @ model[0].weight.data.T + model[0].bias.data, 0)
    tanh = np.tanh(relu @ model[2].weight.data.T + model[2].bias.data)
    sig = 1 / (1 + np.exp(-(tanh @ model[4].weight.data.T + model[4].bias.data)))
    acts = diag.records[0]["activations"]
    assert acts["1"]["kind"] == "relu" and acts["3"]["kind"] == "tanh" and acts["5"]["kind"] == "sigmoid"
    for name, out in (("1", relu), ("3", tanh), ("5", sig)):
        assert acts[name]["mean"] == pytest.approx(out.mean(), rel=1e-12)
        assert acts[name]["std"] == pytest.approx(out.std(), rel=1e-9)
    assert acts["1"]["dead_fraction"] == pytest.approx(np.mean(np.all(relu == 0, axis=0)))
    assert acts["3"]["saturated_fraction"] == pytest.approx(np.mean(np.abs(tanh) > 0.99))
    assert acts["5"]["saturated_fraction"] == pytest.approx(np.mean((sig < 0.01) | (sig > 0.99)))
    assert acts["1"]["saturated_fraction"] is None and acts["3"]["dead_fraction"] is None
    assert diag.records[0]["parameters"]["0.weight"]["update_ratio"] == 0.0


def test_gradient_norm_and_update_ratio_of_a_plain_sgd_step():
    # full batch, one step: update = lr * grad, so ratio = lr * ||grad|| / ||W before||
    X, y, _, _ = _regression_data()
    model = _mixed_model()
    before = {name: p.data.copy() for name, p in model.named_parameters()}
    diag = Diagnostics()
    fit(model, "mse", optim.SGD(model.parameters(), lr=0.3), (X, y), epochs=1, batch_size=None, callbacks=[diag])
    for name, p in model.named_parameters():
        stats = diag.records[0]["parameters"][name]
        grad = p.grad
        assert stats["grad_norm"] == pytest.approx(np.linalg.norm(grad), rel=1e-12)
        assert stats["grad_mean_abs"] == pytest.approx(np.abs(grad).mean(), rel=1e-12)
        assert stats["weight_norm"] == pytest.approx(np.linalg.norm(p.data), rel=1e-12)
        expected = 0.3 * np.linalg.norm(grad) / np.linalg.norm(before[name])
        assert stats["update_ratio"] == pytest.approx(expected, rel=1e-9)


def test_every_and_the_json_round_trip():
    X, y, _, _ = _regression_data()
    model = _mixed_model()
    diag = Diagnostics(every=2)
    fit(model, "mse", optim.SGD(model.parameters(), lr=0.1), (X, y), epochs=5, batch_size=16, callbacks=[diag])
    assert [r["epoch"] for r in diag.records] == [1, 3, 5]
    assert all(r["batches"] == 3 for r in diag.records)
    data = diag.to_dict()
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert data["every"] == 2 and data["thresholds"] == {"sigmoid": [0.01, 0.99], "tanh": 0.99}
    assert len(diag.series("2.weight", "grad_norm")) == 3
    with pytest.raises(KeyError, match="known"):
        diag.series("nope", "grad_norm")
    with pytest.raises(ValueError, match="every"):
        Diagnostics(every=0)


def test_the_forward_wrappers_go_away_after_training_and_after_an_error():
    X, y, _, _ = _regression_data()
    model = _mixed_model()
    acts = [m for m in model if isinstance(m, (nn.ReLU, nn.Tanh, nn.Sigmoid))]

    class Boom(Callback):
        def on_batch_end(self, state):
            assert all("forward" in m.__dict__ for m in acts)  # observing during training
            if state.batch == 2:
                raise RuntimeError("boom")

    diag = Diagnostics()
    try:
        fit(
            model,
            "mse",
            optim.SGD(model.parameters(), lr=0.1),
            (X, y),
            epochs=2,
            batch_size=8,
            callbacks=[diag, Boom()],
        )
    except RuntimeError:
        pass
    gc.collect()
    assert not any("forward" in m.__dict__ for m in acts)
    fit(model, "mse", optim.SGD(model.parameters(), lr=0.1), (X, y), epochs=1, callbacks=[diag])
    assert not any("forward" in m.__dict__ for m in acts)
    assert len(diag.records) == 1


def test_compiled_training_records_gradients_but_not_activations():
    X, y, _, _ = _regression_data()
    weights = []
    for compile in (False, True):
        model = _mixed_model()
        diag = Diagnostics()
        opt = optim.SGD(model.parameters(), lr=0.1)
        fit(model, "mse", opt, (X, y), epochs=2, batch_size=8, callbacks=[diag], compile=compile)
        weights.append([p.data.copy() for p in model.parameters()])
        record = diag.records[-1]
        assert record["parameters"]["0.weight"]["grad_norm"] > 0
        assert (record["activations"]["1"]["mean"] is None) == compile
    for a, b in zip(*weights):
        assert np.array_equal(a, b)
