"""Initializers: bounds and statistics (roughly), exact seeded repeatability, layer defaults, symmetry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule import nn
from chainrule.nn import functional as F
from chainrule.nn import init


def big(shape=(400, 600), dtype=np.float64):
    return nn.Parameter(np.empty(shape, dtype=dtype))


def test_eps_init_classic_value():
    assert init.eps_init(400, 25) == pytest.approx(math.sqrt(6) / math.sqrt(425))
    assert round(init.eps_init(400, 25), 2) == 0.12
    w = init.eps_uniform_(big((25, 401)), rng=0)
    eps = init.eps_init(401, 25)
    assert np.abs(w.data).max() <= eps and np.abs(w.data).max() > 0.95 * eps
    w = init.eps_uniform_(big((25, 401)), eps=0.12, rng=0)
    assert np.abs(w.data).max() <= 0.12


def test_uniform_and_normal_statistics():
    w = init.uniform_(big(), -0.5, 1.5, rng=0)
    assert w.data.min() >= -0.5 and w.data.max() < 1.5
    assert abs(w.data.mean() - 0.5) < 0.01
    w = init.normal_(big(), mean=2.0, std=0.3, rng=0)
    assert abs(w.data.mean() - 2.0) < 0.005 and abs(w.data.std() - 0.3) < 0.005
    w = init.normal_(big(), 1.0, 0.1, rng=0)  # PyTorch's positional order: mean, std
    assert abs(w.data.mean() - 1.0) < 0.005 and abs(w.data.std() - 0.1) < 0.005


def test_xavier_and_kaiming_statistics():
    fan_out, fan_in = 400, 600
    w = init.xavier_uniform_(big(), rng=0)
    bound = math.sqrt(6 / (fan_in + fan_out))
    assert np.abs(w.data).max() <= bound and abs(w.data.std() - bound / math.sqrt(3)) < 0.01 * bound
    w = init.xavier_normal_(big(), gain=2.0, rng=0)
    assert abs(w.data.std() - 2 * math.sqrt(2 / (fan_in + fan_out))) < 0.01 * w.data.std()
    w = init.kaiming_normal_(big(), rng=0)
    assert abs(w.data.std() - math.sqrt(2 / fan_in)) < 0.01 * math.sqrt(2 / fan_in)
    w = init.kaiming_uniform_(big(), mode="fan_out", nonlinearity="relu", rng=0)
    bound = math.sqrt(2) * math.sqrt(3 / fan_out)
    assert np.abs(w.data).max() <= bound and np.abs(w.data).max() > 0.99 * bound
    assert init.glorot_uniform_ is init.xavier_uniform_ and init.he_normal_ is init.kaiming_normal_
    with pytest.raises(ValueError):
        init.kaiming_normal_(big(), mode="fan_sideways")


def test_fans_and_gains_match_torch():
    assert init.fan_in_and_fan_out((5, 3)) == (3, 5)
    assert init.fan_in_and_fan_out((5, 3, 2, 2)) == (12, 20)
    assert init.fan_in_and_fan_out(cr.tensor(np.zeros(7))) == (7, 7)
    for name, param in [
        ("relu", None),
        ("tanh", None),
        ("sigmoid", None),
        ("linear", None),
        ("leaky_relu", 0.2),
        ("leaky_relu", None),
        ("selu", None),
    ]:
        assert init.calculate_gain(name, param) == pytest.approx(torch.nn.init.calculate_gain(name, param))


def test_constant_zeros_ones_and_in_place():
    t = nn.Parameter(np.empty((3, 2), np.float32))
    assert init.constant_(t, 0.5) is t and np.all(t.data == 0.5)
    assert np.all(init.zeros_(t).data == 0) and np.all(init.ones_(t).data == 1)
    assert t.dtype == np.float32 and t.requires_grad
    init.normal_(t, rng=0)
    assert t.dtype == np.float32
    with pytest.raises(TypeError):
        init.zeros_(np.zeros(3))


@pytest.mark.parametrize(
    "fn",
    [
        init.uniform_,
        init.normal_,
        init.xavier_uniform_,
        init.xavier_normal_,
        init.kaiming_uniform_,
        init.kaiming_normal_,
        init.eps_uniform_,
    ],
)
def test_seeded_repeatability_is_exact(fn):
    a = fn(big((20, 30)), rng=7).data
    b = fn(big((20, 30)), rng=np.random.default_rng(7)).data
    c = fn(big((20, 30)), rng=8).data
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    gen = np.random.default_rng(1)
    assert not np.array_equal(fn(big((4, 4)), rng=gen).data, fn(big((4, 4)), rng=gen).data)
    with pytest.raises(TypeError, match="rng"):
        fn(big((2, 2)), rng="seven")


def test_layer_defaults_and_manual_seed():
    lin = nn.Linear(100, 300, rng=0)
    bound = 1 / math.sqrt(100)
    for t in (lin.weight, lin.bias):
        assert np.abs(t.data).max() <= bound and np.abs(t.data).max() > 0.95 * bound
    np.testing.assert_array_equal(nn.Linear(4, 3, rng=5).weight.data, nn.Linear(4, 3, rng=5).weight.data)
    init.manual_seed(123)
    a = nn.MLP([4, 5, 2]).state_dict()
    init.manual_seed(123)
    b = nn.MLP([4, 5, 2]).state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    # one generator behind chainrule.manual_seed, nn.init.manual_seed, randn/rand and layer defaults
    assert init.manual_seed is cr.manual_seed
    cr.manual_seed(7)
    first = (cr.randn(3).data, nn.Linear(2, 2).weight.data, cr.rand(2).data)
    cr.manual_seed(7)
    again = (cr.randn(3).data, nn.Linear(2, 2).weight.data, cr.rand(2).data)
    assert all(np.array_equal(x, y) for x, y in zip(first, again))
    assert not np.array_equal(cr.randn(3).data, first[0])  # the generator moves on
    bn = nn.BatchNorm1d(3)
    assert np.all(bn.weight.data == 1) and np.all(bn.bias.data == 0)
    assert np.all(bn.running_mean.data == 0) and np.all(bn.running_var.data == 1)


def _train_hidden_weights(model, steps=30, lr=1.0):
    rng = np.random.default_rng(0)
    x = cr.tensor(rng.standard_normal((16, 3)))
    y = cr.tensor((rng.random((16, 2)) > 0.5).astype(np.float64))
    for _ in range(steps):
        model.zero_grad()
        F.mse_loss(model(x), y).backward()
        with cr.no_grad():
            for p in model.parameters():
                p.data -= lr * p.grad
    return model.layers[0].weight.data


@pytest.mark.parametrize("value", [0.0, 0.3])
def test_symmetric_init_keeps_hidden_units_identical(value):
    model = nn.MLP([3, 4, 2], activation="sigmoid", rng=0).double()
    for p in model.parameters():
        init.constant_(p, value)
    hidden = _train_hidden_weights(model)
    for row in hidden[1:]:
        np.testing.assert_allclose(row, hidden[0], rtol=0, atol=1e-15)  # every hidden unit is the same
    if value != 0.0:
        assert not np.allclose(hidden, value)  # it did learn, but all units learned the same thing


def test_random_init_breaks_the_symmetry():
    model = nn.MLP([3, 4, 2], activation="sigmoid", rng=0).double()
    for p in model.parameters():
        init.eps_uniform_(p, eps=0.12, rng=1)
    hidden = _train_hidden_weights(model)
    assert min(np.abs(hidden[i] - hidden[j]).max() for i in range(4) for j in range(i + 1, 4)) > 1e-3
