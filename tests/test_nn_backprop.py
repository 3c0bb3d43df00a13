"""Acceptance: the classic 2-2-2 worked example to 1e-8, and a 3-5-3 network with L2 under gradient checking."""

from __future__ import annotations

import math

import numpy as np

import chainrule as cr
from chainrule import nn
from chainrule.nn import functional as F


def sigma(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def hand_backprop_step(w: list[float], b1: float, b2: float, i1: float, i2: float, t1: float, t2: float, lr: float):
    """One SGD step of the 2-2-2 sigmoid net by the four backprop equations, in plain Python floats.

    w = [w1..w8]: w1: i1->h1, w2: i2->h1, w3: i1->h2, w4: i2->h2, w5: h1->o1, w6: h2->o1,
    w7: h1->o2, w8: h2->o2. Returns (total error before the step, the eight updated weights).
    """
    w1, w2, w3, w4, w5, w6, w7, w8 = w
    # forward pass
    h1 = sigma(w1 * i1 + w2 * i2 + b1)
    h2 = sigma(w3 * i1 + w4 * i2 + b1)
    o1 = sigma(w5 * h1 + w6 * h2 + b2)
    o2 = sigma(w7 * h1 + w8 * h2 + b2)
    error = 0.5 * (t1 - o1) ** 2 + 0.5 * (t2 - o2) ** 2
    # (BP1) output deltas: dE/dnet_o = (o - t) * o (1 - o)
    d_o1 = (o1 - t1) * o1 * (1 - o1)
    d_o2 = (o2 - t2) * o2 * (1 - o2)
    # (BP2) hidden deltas: (W^T delta_out) * h (1 - h), using the weights BEFORE the update
    d_h1 = (d_o1 * w5 + d_o2 * w7) * h1 * (1 - h1)
    d_h2 = (d_o1 * w6 + d_o2 * w8) * h2 * (1 - h2)
    # (BP4) dE/dw = delta of the receiving unit * activation of the sending unit
    grads = [d_h1 * i1, d_h1 * i2, d_h2 * i1, d_h2 * i2, d_o1 * h1, d_o1 * h2, d_o2 * h1, d_o2 * h2]
    return error, [wi - lr * g for wi, g in zip(w, grads)]


def test_classic_2_2_2_worked_example():
    i1, i2, t1, t2 = 0.05, 0.10, 0.01, 0.99
    w = [0.15, 0.20, 0.25, 0.30, 0.40, 0.45, 0.50, 0.55]
    b1, b2, lr = 0.35, 0.60, 0.5

    model = nn.Sequential(nn.Linear(2, 2), nn.Sigmoid(), nn.Linear(2, 2), nn.Sigmoid()).double()
    hidden, output = model[0], model[2]
    # weight row j = incoming weights of unit j: [[w1, w2], [w3, w4]] feeds h1, h2
    hidden.weight.data[...] = [[w[0], w[1]], [w[2], w[3]]]
    output.weight.data[...] = [[w[4], w[5]], [w[6], w[7]]]
    hidden.bias.data[...] = b1  # one shared bias per layer, not trained
    output.bias.data[...] = b2
    hidden.bias.requires_grad = False
    output.bias.requires_grad = False

    x = cr.tensor(np.array([[i1, i2]]))
    target = np.array([[t1, t2]])
    loss = nn.MSELoss(reduction="half_sum")(model(x), target)  # E = 1/2 sum (t - o)^2
    loss.backward()
    with cr.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.data -= lr * p.grad

    expected_error, expected_w = hand_backprop_step(w, b1, b2, i1, i2, t1, t2, lr)
    got_w = [*hidden.weight.data.ravel(), *output.weight.data.ravel()]
    # required: 1e-8; the engine and the hand formulas agree to rounding
    assert abs(loss.item() - expected_error) < 1e-12
    np.testing.assert_allclose(got_w, expected_w, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(hidden.bias.data, [b1, b1])
    # The published numbers of this example, rounded to the digits it prints.
    assert abs(loss.item() - 0.298371109) < 1e-8
    published = [0.149780716, 0.19956143, 0.24975114, 0.29950229, 0.35891648, 0.408666186, 0.511301270, 0.561370121]
    np.testing.assert_allclose(got_w, published, rtol=0, atol=1e-8)


def test_3_5_3_network_with_l2_passes_gradient_check():
    rng = np.random.default_rng(0)
    m, lam = 5, 3.0
    model = nn.MLP([3, 5, 3], activation="sigmoid", output_activation="sigmoid", rng=1).double()
    x = cr.tensor(rng.standard_normal((m, 3)))
    y = np.eye(3)[rng.integers(0, 3, m)]
    params = list(model.parameters())

    def cost(*_):
        # the lecture cost: -(1/m) sum [y ln h + (1 - y) ln(1 - h)] + lam/(2m) sum theta^2 (no biases)
        return F.binary_cross_entropy(model(x), y, reduction="sum") / m + F.l2_penalty(model, lam, m=m)

    model.zero_grad()
    cost().backward()
    analytic = np.concatenate([p.grad.data.ravel() for p in params])
    numeric = np.concatenate([g.ravel() for g in cr.numerical_grad(cost, params, eps=1e-5)])
    relative = np.linalg.norm(numeric - analytic) / np.linalg.norm(numeric + analytic)
    assert relative < 1e-9, relative
    assert cr.gradcheck(cost, params)
