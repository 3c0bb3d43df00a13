"""Losses and penalties against PyTorch and closed forms, in float64."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule import nn
from chainrule.nn import functional as F

torch.set_num_threads(1)
RNG = np.random.default_rng(99)


def close(a, b, tol=1e-10):
    a = a.detach().numpy() if isinstance(a, torch.Tensor) else np.asarray(a.data if isinstance(a, cr.Tensor) else a)
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else np.asarray(b.data if isinstance(b, cr.Tensor) else b)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def both(x):
    return cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)


def check(ours, theirs, xc, xt, tol=1e-10):
    """Compare loss values and the gradient wrt the prediction."""
    close(ours, theirs, tol)
    g = RNG.standard_normal(ours.shape)
    ours.backward(g)
    theirs.backward(torch.from_numpy(np.asarray(g)))
    close(xc.grad, xt.grad, tol)


# --------------------------------------------------------------------- MSE
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_matches_torch(reduction):
    pred, target = RNG.standard_normal((4, 3)), RNG.standard_normal((4, 3))
    xc, xt = both(pred)
    check(
        F.mse_loss(xc, target, reduction),
        torch.nn.functional.mse_loss(xt, torch.tensor(target), reduction=reduction),
        xc,
        xt,
    )


def test_mse_half_sum_is_the_lecture_error():
    o, t = RNG.standard_normal(5), RNG.standard_normal(5)
    oc = cr.tensor(o, requires_grad=True)
    e = nn.MSELoss("half_sum")(oc, t)
    close(e, 0.5 * ((t - o) ** 2).sum(), 1e-14)
    e.backward()
    close(oc.grad, o - t, 1e-14)  # dE/do = o - t


def test_mse_errors():
    with pytest.raises(ValueError, match="does not match"):
        F.mse_loss(cr.tensor(np.zeros((3, 1))), np.zeros(3))
    with pytest.raises(ValueError, match="half_sum"):
        F.mse_loss(cr.tensor(np.zeros(3)), np.zeros(3), reduction="avg")


# --------------------------------------------------------------------- binary cross-entropy
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_matches_torch(reduction):
    p, t = RNG.uniform(0.05, 0.95, (6, 2)), RNG.integers(0, 2, (6, 2)).astype(float)
    w = RNG.uniform(0.5, 2, (6, 2))
    xc, xt = both(p)
    ours = F.binary_cross_entropy(xc, t, weight=w, reduction=reduction)
    theirs = torch.nn.functional.binary_cross_entropy(xt, torch.tensor(t), weight=torch.tensor(w), reduction=reduction)
    check(ours, theirs, xc, xt)


def test_bce_clamps_logs_at_minus_100_like_torch():
    p = np.array([0.0, 1.0, 0.0, 1.0, 1e-300])
    t = np.array([1.0, 0.0, 0.0, 1.0, 1.0])
    xc = cr.tensor(p, requires_grad=True)
    ours = F.binary_cross_entropy(xc, t, reduction="none")
    theirs = torch.nn.functional.binary_cross_entropy(torch.tensor(p), torch.tensor(t), reduction="none")
    close(ours, theirs, 1e-12)
    np.testing.assert_allclose(ours.data, [100.0, 100.0, 0.0, 0.0, 100.0])
    ours.sum().backward()
    assert np.isfinite(xc.grad).all()  # no 0 * inf = NaN at the clamp


def test_bce_rejects_non_probabilities():
    with pytest.raises(ValueError, match="probabilities"):
        F.binary_cross_entropy(cr.tensor([1.5]), [1.0])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits_matches_torch(reduction):
    x, t = RNG.standard_normal((5, 3)) * 4, RNG.uniform(0, 1, (5, 3))
    pw = RNG.uniform(0.5, 3, 3)
    xc, xt = both(x)
    check(
        F.binary_cross_entropy_with_logits(xc, t, reduction=reduction),
        torch.nn.functional.binary_cross_entropy_with_logits(xt, torch.tensor(t), reduction=reduction),
        xc,
        xt,
    )
    xc, xt = both(x)
    check(
        nn.BCEWithLogitsLoss(pos_weight=pw, reduction=reduction)(xc, t),
        torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pw), reduction=reduction)(xt, torch.tensor(t)),
        xc,
        xt,
    )


def test_bce_with_logits_is_stable_for_huge_logits():
    x = np.array([1e4, -1e4, 1e4, -1e4, 0.0])
    t = np.array([1.0, 0.0, 0.0, 1.0, 1.0])
    xc, xt = both(x)
    ours = F.binary_cross_entropy_with_logits(xc, t, reduction="none")
    assert np.isfinite(ours.data).all()
    np.testing.assert_allclose(ours.data, [0.0, 0.0, 1e4, 1e4, math.log(2)], rtol=1e-12, atol=1e-300)
    check(ours, torch.nn.functional.binary_cross_entropy_with_logits(xt, torch.tensor(t), reduction="none"), xc, xt)
    xc = cr.tensor(x, requires_grad=True)
    F.binary_cross_entropy_with_logits(xc, t, reduction="sum").backward()
    np.testing.assert_allclose(xc.grad, 0.5 * (1 + np.tanh(x / 2)) - t)  # sigmoid(x) - t


# --------------------------------------------------------------------- cross-entropy and NLL
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_class_indices_matches_torch(reduction):
    logits, y = RNG.standard_normal((6, 4)) * 3, RNG.integers(0, 4, 6)
    xc, xt = both(logits)
    check(
        F.cross_entropy(xc, y, reduction=reduction),
        torch.nn.functional.cross_entropy(xt, torch.tensor(y), reduction=reduction),
        xc,
        xt,
    )


def test_cross_entropy_weights_and_ignore_index_match_torch():
    logits, y = RNG.standard_normal((7, 3)), np.array([0, 2, 1, -100, 2, 2, 0])
    w = np.array([0.5, 2.0, 1.5])
    for reduction in ("mean", "sum", "none"):
        xc, xt = both(logits)
        check(
            nn.CrossEntropyLoss(weight=w, reduction=reduction)(xc, y),
            torch.nn.CrossEntropyLoss(weight=torch.tensor(w), reduction=reduction)(xt, torch.tensor(y)),
            xc,
            xt,
        )


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_probability_targets_match_torch(reduction):
    logits = RNG.standard_normal((5, 4))
    probs = RNG.dirichlet(np.ones(4), 5)
    xc, xt = both(logits)
    check(
        F.cross_entropy(xc, probs, reduction=reduction),
        torch.nn.functional.cross_entropy(xt, torch.tensor(probs), reduction=reduction),
        xc,
        xt,
    )


def test_cross_entropy_gradient_is_softmax_minus_onehot_over_n():
    n, c = 8, 5
    logits, y = RNG.standard_normal((n, c)), RNG.integers(0, c, n)
    xc = cr.tensor(logits, requires_grad=True)
    F.cross_entropy(xc, y).backward()
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    onehot = np.eye(c)[y]
    close(xc.grad, (softmax - onehot) / n, 1e-14)
    # and with probability targets: (softmax - Y) / N
    probs = RNG.dirichlet(np.ones(c), n)
    xc = cr.tensor(logits, requires_grad=True)
    F.cross_entropy(xc, probs).backward()
    close(xc.grad, (softmax - probs) / n, 1e-14)


def test_cross_entropy_target_forms_and_stability():
    logits = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]])
    expected = [0.0, math.log(3)]
    for y in ([0, 1], np.array([0, 1]), cr.tensor(np.array([0, 1]))):
        close(F.cross_entropy(cr.tensor(logits), y, reduction="none"), expected, 1e-12)
    single = F.cross_entropy(cr.tensor(np.array([0.0, 0.0])), 1, reduction="none")
    assert single.shape == () and abs(single.item() - math.log(2)) < 1e-12
    assert F.cross_entropy(cr.tensor(np.zeros((2, 3), np.float32)), [0, 1]).dtype == np.float32
    with pytest.raises(TypeError, match="integers"):
        F.cross_entropy(cr.tensor(logits), np.array([0.0, 1.0]))
    with pytest.raises(IndexError, match="out of range for 3 classes"):
        F.cross_entropy(cr.tensor(logits), [0, 3])
    with pytest.raises(ValueError, match="class indices"):
        F.cross_entropy(cr.tensor(logits), [0, 1, 2])


def test_nll_loss_matches_torch():
    lp = np.log(RNG.dirichlet(np.ones(4), 6))
    y = RNG.integers(0, 4, 6)
    w = RNG.uniform(0.5, 2, 4)
    for reduction in ("mean", "sum", "none"):
        xc, xt = both(lp)
        check(
            nn.NLLLoss(weight=w, reduction=reduction)(xc, y),
            torch.nn.NLLLoss(weight=torch.tensor(w), reduction=reduction)(xt, torch.tensor(y)),
            xc,
            xt,
        )


# --------------------------------------------------------------------- multiclass SVM hinge
def test_multi_margin_loss_cs231n_example():
    # CS231n's three examples (columns cat, car, frog of the lecture's score table), true classes 0, 1, 2.
    scores = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])
    y = np.array([0, 1, 2])
    per_example = F.multi_margin_loss(cr.tensor(scores), y, reduction="none").data
    np.testing.assert_allclose(per_example, [2.9, 0.0, 12.9], rtol=1e-12)
    assert abs(F.multi_margin_loss(cr.tensor(scores), y).item() - 15.8 / 3) < 1e-12
    assert F.hinge_loss is F.multi_margin_loss and nn.HingeLoss is nn.MultiMarginLoss


@pytest.mark.parametrize("p,margin", [(1, 1.0), (2, 1.0), (1, 0.5)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_multi_margin_loss_is_torch_times_num_classes(p, margin, reduction):
    n, c = 6, 5
    s, y = RNG.standard_normal((n, c)), RNG.integers(0, c, n)
    xc, xt = both(s)
    ours = nn.MultiMarginLoss(margin=margin, p=p, reduction=reduction)(xc, y)
    theirs = torch.nn.functional.multi_margin_loss(xt, torch.tensor(y), p=p, margin=margin, reduction=reduction) * c
    check(ours, theirs, xc, xt)


def test_multi_margin_gradient_closed_form():
    s, y = RNG.standard_normal((4, 3)), np.array([0, 2, 1, 1])
    xc = cr.tensor(s, requires_grad=True)
    F.multi_margin_loss(xc, y, reduction="sum").backward()
    margins = s - s[np.arange(4), y][:, None] + 1
    positive = (margins > 0).astype(float)
    positive[np.arange(4), y] = 0
    expected = positive.copy()
    expected[np.arange(4), y] = -positive.sum(axis=1)
    close(xc.grad, expected, 1e-14)


# --------------------------------------------------------------------- L2 penalties
def test_l2_penalty_both_conventions_exclude_biases():
    model = nn.MLP([3, 4, 2], rng=0).double()
    w1, w2 = model.layers[0].weight.data, model.layers[1].weight.data
    total = (w1**2).sum() + (w2**2).sum()
    close(F.l2_penalty(model, 0.1), 0.1 * total, 1e-14)
    close(F.l2_penalty(model, 0.1, m=50), 0.1 / (2 * 50) * total, 1e-14)
    close(F.l2_penalty(list(model.parameters()), 0.1), 0.1 * total, 1e-14)
    F.l2_penalty(model, 1.5, m=10).backward()
    close(model.layers[0].weight.grad, 1.5 / 10 * w1, 1e-14)  # d/dW lam/(2m) sum W^2 = lam/m W
    assert model.layers[0].bias.grad is None
    model.zero_grad()
    F.l2_penalty(model, 0.3).backward()
    close(model.layers[1].weight.grad, 2 * 0.3 * w2, 1e-14)
    assert F.l2_penalty([], 1.0).item() == 0
    with pytest.raises(ValueError):
        F.l2_penalty(model, 1.0, m=0)


# --------------------------------------------------------------------- modules and gradcheck
def test_loss_modules_equal_functions():
    x, t = RNG.uniform(0.1, 0.9, (4, 3)), RNG.uniform(0, 1, (4, 3))
    y = RNG.integers(0, 3, 4)
    xc = cr.tensor(x)
    assert nn.MSELoss()(xc, t).item() == F.mse_loss(xc, t).item()
    assert nn.BCELoss()(xc, t).item() == F.binary_cross_entropy(xc, t).item()
    assert nn.CrossEntropyLoss()(xc, y).item() == F.cross_entropy(xc, y).item()
    assert repr(nn.MSELoss("sum")) == "MSELoss(reduction='sum')"


@pytest.mark.parametrize(
    "fn",
    [
        lambda x, t, y: F.mse_loss(x, t),
        lambda x, t, y: F.mse_loss(x, t, "half_sum"),
        lambda x, t, y: F.binary_cross_entropy(F.sigmoid(x), t),
        lambda x, t, y: F.binary_cross_entropy_with_logits(x, t, pos_weight=np.array([2.0, 0.5, 1.0])),
        lambda x, t, y: F.cross_entropy(x, y),
        lambda x, t, y: F.cross_entropy(x, t / t.sum(axis=1, keepdims=True)),
        lambda x, t, y: F.nll_loss(F.log_softmax(x, axis=1), y),
        lambda x, t, y: F.multi_margin_loss(x, y, p=2),
    ],
)
def test_losses_gradcheck(fn):
    x = cr.tensor(RNG.standard_normal((4, 3)), requires_grad=True)
    t = RNG.uniform(0.1, 0.9, (4, 3))
    y = RNG.integers(0, 3, 4)
    assert cr.gradcheck(lambda inp: fn(inp, t, y), [x])


def test_target_gradients_flow_when_targets_require_grad():
    x = cr.tensor(RNG.standard_normal(3), requires_grad=True)
    t = cr.tensor(RNG.standard_normal(3), requires_grad=True)
    assert cr.gradcheck(lambda a, b: F.mse_loss(a, b), [x, t])


def test_cross_entropy_errors_name_cross_entropy():
    import chainrule as cr
    from chainrule import nn

    with pytest.raises(IndexError, match="cross_entropy: target 3"):
        nn.functional.cross_entropy(cr.tensor(np.ones((4, 3))), np.array([0, 1, 2, 3]))
