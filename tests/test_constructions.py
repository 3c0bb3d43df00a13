"""The lecture's constructions: perceptrons, truth-table networks, pulses, regression by gradient descent."""

from __future__ import annotations

import contextlib
import io
import itertools
import re
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule import data, nn
from chainrule.train import linear_regression_gd, logistic_regression_gd

ROOT = Path(__file__).resolve().parents[1]


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def run(model, X, dtype=np.float32):
    return model(cr.tensor(np.asarray(X, dtype=dtype))).numpy()


# --------------------------------------------------------------------- threshold units
def test_step_and_sign_values_and_their_zero_gradient():
    z = cr.tensor(np.array([-2.0, -1e-7, 0.0, 1e-7, 3.0]), requires_grad=True)
    assert nn.Step()(z).numpy().tolist() == [0, 0, 1, 1, 1]
    assert nn.Sign()(z).numpy().tolist() == [-1, -1, 1, 1, 1]
    out = nn.Sign()(z)
    assert out.requires_grad and out.data.dtype == np.float64
    (out * cr.tensor(np.arange(5.0))).sum().backward()  # backward runs; the derivative is 0 everywhere
    assert np.array_equal(z.grad, np.zeros(5))


def test_threshold_modules_refuse_compiled_training():
    # their values are computed with NumPy, which a chainrule.compile replay would not repeat
    X, y = data.and_()
    for model in (nn.Perceptron(2), nn.xor_network()):
        opt = cr.optim.SGD(model.parameters(), lr=0.1)
        with pytest.raises(ValueError, match="use compile=False"):
            cr.fit(model, "mse", opt, (X, y.astype(np.float32)), epochs=1, compile=True, progress=False)


def test_a_step_network_gets_zero_gradients_and_a_sigmoid_network_does_not():
    X, y = data.xor()
    grads = {}
    for act in (nn.Step(), nn.Sigmoid()):
        net = nn.Sequential(nn.Linear(2, 3, rng=0), act, nn.Linear(3, 1, rng=1))
        ((net(cr.tensor(X))[:, 0] - cr.tensor(y.astype(np.float32))) ** 2).mean().backward()
        grads[type(act).__name__] = np.abs(net[0].weight.grad).max()
    assert grads["Step"] == 0.0 and grads["Sigmoid"] > 1e-3


# --------------------------------------------------------------------- perceptron
def separable_data(m=200, margin=0.05, seed=0):
    """Points in [-1, 1]^2 at least ``margin`` from the line u . (x, 1) = 0 (u a unit vector), +-1 labels."""
    rng = np.random.default_rng(seed)
    u = np.array([1.0, -2.0, 0.3])
    u /= np.linalg.norm(u)
    X = rng.uniform(-1, 1, (4 * m, 2))
    scores = np.c_[X, np.ones(len(X))] @ u
    keep = np.abs(scores) >= margin
    return X[keep][:m], np.sign(scores[keep][:m]), u


def reference_perceptron(X, y, lr, mode, max_epochs=1000):
    """The rule as the lecture writes it (sign unit, +-1 labels, sign(0) = +1), for update counts."""
    Xa = np.c_[X, np.ones(len(X))]
    w = np.zeros(3)
    updates = 0
    for _ in range(max_epochs):
        if mode == "online":
            mistakes = 0
            for xi, yi in zip(Xa, y):
                if (1.0 if xi @ w >= 0 else -1.0) != yi:
                    w += lr * yi * xi
                    mistakes += 1
            updates += mistakes
        else:
            wrong = np.where(Xa @ w >= 0, 1.0, -1.0) != y
            mistakes = int(wrong.sum())
            if mistakes:
                w += lr * (y[wrong] @ Xa[wrong])
                updates += 1
        if mistakes == 0:
            return w, updates
    raise AssertionError("reference perceptron did not converge")


@pytest.mark.parametrize("mode", ["online", "batch"])
def test_perceptron_converges_on_separable_data_with_the_rules_update_count(mode):
    X, y, u = separable_data()
    model = nn.Perceptron(2, threshold="sign", dtype=np.float64)
    result = nn.perceptron_train(model, X, y, mode=mode, lr=0.5, max_epochs=1000)
    w_ref, updates_ref = reference_perceptron(X, y, 0.5, mode)
    assert result.converged and result.separable is True and "converged" in result.message
    assert result.updates == updates_ref > 0
    assert result.history[-1] == 0 and result.epochs == len(result.history)
    np.testing.assert_allclose(np.r_[model.weight.data[0], model.bias.data], w_ref, rtol=1e-12, atol=1e-12)
    assert np.array_equal(model.predict(X), y)
    assert np.array_equal(run(model, X, np.float64)[:, 0], y)  # forward agrees with predict
    if mode == "online":
        assert sum(result.history) == result.updates
        # Novikoff: at most (R / gamma)^2 mistakes, for any separating unit vector u (here the generating one)
        Xa = np.c_[X, np.ones(len(X))]
        gamma = np.min(y * (Xa @ u))
        R = np.max(np.linalg.norm(Xa, axis=1))
        assert result.updates <= (R / gamma) ** 2


def test_perceptron_with_step_learns_and_and_or_with_zero_one_labels():
    for make in (data.and_, data.or_):
        X, y = make()
        model = nn.Perceptron(2)
        result = nn.perceptron_train(model, X, y)
        assert result.converged and np.array_equal(model.predict(X), y)
        assert np.array_equal(run(model, X)[:, 0], y)


@pytest.mark.parametrize("mode", ["online", "batch"])
def test_perceptron_on_xor_stops_at_max_epochs_and_says_it_is_not_separable(mode):
    X, y = data.xor()
    result = nn.perceptron_train(nn.Perceptron(2), X, y, mode=mode, max_epochs=25)
    assert not result.converged and result.epochs == 25 and len(result.history) == 25
    assert min(result.history) > 0
    assert result.separable is False
    assert "not linearly separable" in result.message and "max_epochs=25" in str(result)


def test_perceptron_without_a_cycle_reports_unknown():
    # One epoch cannot show a repeated state: not converged, reason unknown.
    X, y, _ = separable_data()
    result = nn.perceptron_train(nn.Perceptron(2, "sign"), X, y, max_epochs=1)
    assert not result.converged and result.separable is None and "probably not linearly separable" in result.message


def test_perceptron_bad_input_errors():
    X, y = data.and_()
    with pytest.raises(ValueError, match=r"needs labels in \{0, 1\}, got -1 at index 0"):
        nn.perceptron_train(nn.Perceptron(2), X, 2 * y - 1)
    with pytest.raises(ValueError, match=r"needs labels in \{-1, 1\}, got 0 at index 0"):
        nn.perceptron_train(nn.Perceptron(2, "sign"), X, y)
    with pytest.raises(ValueError, match=r"X must be a numeric array of shape \(N, 3\), got shape \(4, 2\)"):
        nn.perceptron_train(nn.Perceptron(3), X, y)
    with pytest.raises(ValueError, match=r"y must have shape \(4,\) to match X, got \(3,\)"):
        nn.perceptron_train(nn.Perceptron(2), X, y[:3])
    with pytest.raises(ValueError, match="mode must be 'online' or 'batch', got 'minibatch'"):
        nn.perceptron_train(nn.Perceptron(2), X, y, mode="minibatch")
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        nn.perceptron_train(nn.Perceptron(2), X, y, lr=0)
    with pytest.raises(ValueError, match="max_epochs must be an integer >= 1"):
        nn.perceptron_train(nn.Perceptron(2), X, y, max_epochs=0)
    with pytest.raises(TypeError, match=r"model must be an nn\.Perceptron, got Linear"):
        nn.perceptron_train(nn.Linear(2, 1), X, y)
    with pytest.raises(ValueError, match="threshold must be 'step' or 'sign', got 'relu'"):
        nn.Perceptron(2, threshold="relu")
    with pytest.raises(ValueError, match="n_inputs must be an integer >= 1"):
        nn.Perceptron(0)


# --------------------------------------------------------------------- truth tables
def all_inputs(n):
    return np.array(list(itertools.product((0, 1), repeat=n)), dtype=np.int64)


@pytest.mark.parametrize("n", range(1, 9))
def test_from_truth_table_computes_every_row_of_random_functions(n):
    rng = np.random.default_rng(n)
    inputs = all_inputs(n)
    for trial in range(3):
        outputs = rng.integers(0, 2, len(inputs))
        order = rng.permutation(len(inputs))  # rows in any order
        if trial == 0:
            table = [(tuple(inputs[i].tolist()), int(outputs[i])) for i in order]
        else:
            table = np.c_[inputs, outputs][order].astype(np.float64 if trial == 2 else np.int64)
        net = nn.from_truth_table(table)
        got = run(net, inputs)
        assert got.shape == (len(inputs), 1)
        assert np.array_equal(got[:, 0], outputs), f"n={n}, trial {trial}"
        assert net[0].out_features == max(1, int(outputs.sum()))  # one minterm detector per 1-row


@pytest.mark.parametrize("value", [0, 1])
def test_constant_functions(value):
    inputs = all_inputs(3)
    net = nn.from_truth_table(np.c_[inputs, np.full(8, value)])
    assert np.array_equal(run(net, inputs)[:, 0], np.full(8, value))


def test_truth_table_errors_name_the_rows():
    majority = [(bits, int(sum(bits) >= 2)) for bits in itertools.product((0, 1), repeat=3)]
    with pytest.raises(ValueError, match=r"needs all 8 rows, got 6; missing inputs: \(1, 1, 0\), \(1, 1, 1\)$"):
        nn.from_truth_table(majority[:6])
    with pytest.raises(ValueError, match=r"inputs \(0, 1, 1\) appear twice \(rows 3 and 8\)"):
        nn.from_truth_table([*majority, ((0, 1, 1), 0)])
    with pytest.raises(ValueError, match=r"missing inputs: .* and 2 more$"):
        nn.from_truth_table(np.c_[all_inputs(4)[:6], np.zeros(6)])  # 10 missing: 8 named
    with pytest.raises(ValueError, match=r"row 1 has 2 inputs, row 0 has 3"):
        nn.from_truth_table([((0, 0, 0), 1), ((0, 1), 0)])
    with pytest.raises(ValueError, match=r"entries must be 0 or 1, got 2 in row 1, column 0"):
        nn.from_truth_table(np.array([[0, 1], [2, 0]]))
    with pytest.raises(ValueError, match=r"row 0's output must be one 0/1 value"):
        nn.from_truth_table([((0,), (1, 0)), ((1,), 0)])
    with pytest.raises(ValueError, match=r"0/1 array of shape \(rows, n \+ 1\) .* got shape \(4,\)"):
        nn.from_truth_table(np.array([0, 1, 1, 0]))
    with pytest.raises(ValueError, match=r"got shape \(2, 1\)"):
        nn.from_truth_table([[0], [1]])
    with pytest.raises(ValueError, match=r"entries must be the numbers 0 or 1"):
        nn.from_truth_table([["a", "b"], ["c", "d"]])


def test_xor_network_two_hidden_units_or_and_and():
    X, y = data.xor()
    net = nn.xor_network()
    assert net[0].out_features == 2
    assert np.array_equal(run(net, X)[:, 0], y)
    hidden = run(nn.Sequential(net[0], net[1]), X)
    assert np.array_equal(hidden[:, 0], X.max(axis=1)) and np.array_equal(hidden[:, 1], X.min(axis=1))  # OR, AND


# --------------------------------------------------------------------- pulses
def test_pulse_is_the_difference_of_two_sigmoids():
    a, b, h = 1.0, 2.0, 3.0
    k = nn.constructions.STEEPNESS / (b - a)
    net = nn.pulse(a, b, height=h, dtype=np.float64)
    assert net.sizes == [1, 2, 1] and net.activation_name == "sigmoid"
    xs = np.linspace(-1.0, 4.0, 501)
    expected = h * (sigmoid(k * (xs - a)) - sigmoid(k * (xs - b)))
    np.testing.assert_allclose(run(net, xs[:, None], np.float64)[:, 0], expected, rtol=1e-12, atol=1e-12)
    out = run(nn.pulse(a, b, height=h), xs[:, None])[:, 0]  # float32 by default
    inside, outside = (xs > a + 0.2) & (xs < b - 0.2), (xs < a - 0.2) | (xs > b + 0.2)
    bound = h * 2 * sigmoid(-k * 0.2)  # the two tails, 0.2 from an edge
    assert np.all(np.abs(out[inside] - h) <= bound + 1e-5) and np.all(np.abs(out[outside]) <= bound + 1e-5)
    np.testing.assert_allclose(run(nn.pulse(a, b, h), [[a], [b]])[:, 0], h * (0.5 - sigmoid(-k)), atol=1e-6)
    assert np.abs(run(nn.pulse(a, b, h, steepness=2.0), [[1.5]])[0, 0] - h * (sigmoid(1.0) - sigmoid(-1.0))) < 1e-6


def max_error(f, interval, n, points=4001):
    xs = np.linspace(*interval, points)
    return np.abs(run(nn.approximate_1d(f, interval, n), xs[:, None])[:, 0] - f(xs)).max()


def test_approximate_1d_error_shrinks_as_pulses_are_added():
    interval = (0.0, 2 * np.pi)
    errors = [max_error(np.sin, interval, n) for n in (10, 50, 200)]
    # measured: 0.2776, 0.0515, 0.0126 (roughly 0.4 L w each)
    assert errors[0] > errors[1] > errors[2]
    for n, err in zip((10, 50, 200), errors):
        assert err <= 1.0 * (interval[1] - interval[0]) / (n - 1) + 1e-4  # L w, L = max |cos| = 1
    assert errors[2] < 0.02


def test_approximate_1d_holds_at_the_ends_of_the_interval_and_has_2n_units():
    # exp on [0, 1]: nonzero at both ends, slope at most e
    for n in (5, 40):
        assert max_error(np.exp, (0.0, 1.0), n) <= np.e / (n - 1) + 1e-4
    model = nn.approximate_1d(np.exp, (0.0, 1.0), 7)
    assert model.sizes == [1, 14, 1]
    one = nn.approximate_1d(lambda x: 2.0, (0.0, 1.0), 1)  # one pulse over the whole interval
    assert np.abs(run(one, [[0.5]])[0, 0] - 2.0) < 1e-6


def test_approximate_1d_and_pulse_errors():
    with pytest.raises(ValueError, match=r"interval needs lo < hi, got \(1, 0\)"):
        nn.approximate_1d(np.sin, (1.0, 0.0), 5)
    with pytest.raises(ValueError, match="interval must be a pair"):
        nn.approximate_1d(np.sin, 3.0, 5)
    with pytest.raises(ValueError, match="n_pulses must be an integer >= 1, got 0"):
        nn.approximate_1d(np.sin, (0, 1), 0)
    with pytest.raises(ValueError, match=r"f\(0\) is not finite"):
        nn.approximate_1d(lambda x: 1 / x if x else np.inf, (0, 1), 3)
    with pytest.raises(TypeError, match="f must be a function"):
        nn.approximate_1d(3, (0, 1), 3)
    with pytest.raises(ValueError, match="pulse: need a < b, got a=2, b=1"):
        nn.pulse(2, 1)
    with pytest.raises(ValueError, match="steepness must be > 0"):
        nn.pulse(0, 1, steepness=-1)
    with pytest.raises(ValueError, match="height must be a finite number"):
        nn.pulse(0, 1, height=np.nan)


# --------------------------------------------------------------------- save / load
def test_constructions_round_trip_through_save_and_load(tmp_path):
    X, y, _ = separable_data(m=50)
    trained = nn.Perceptron(2, "sign")
    assert nn.perceptron_train(trained, X, y).converged
    inputs = all_inputs(4)
    table = np.c_[inputs, np.random.default_rng(0).integers(0, 2, 16)]
    cases = [
        (trained, X),
        (nn.from_truth_table(table), inputs),
        (nn.xor_network(), data.xor()[0]),
        (nn.approximate_1d(np.sin, (0, 6.0), 20), np.linspace(0, 6, 50)[:, None]),
    ]
    for i, (model, inputs_) in enumerate(cases):
        path = cr.save(model, tmp_path / f"model{i}.safetensors")
        loaded = cr.load(path)
        assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
        assert np.array_equal(run(loaded, inputs_), run(model, inputs_))
    assert nn.from_config(nn.Step().get_config()).__class__ is nn.Step


# --------------------------------------------------------------------- regression
def regression_data(m=200, k=None, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, 3))
    W = rng.standard_normal(3 if k is None else (3, k))
    y = X @ W + 0.3 + 0.1 * rng.standard_normal((m,) if k is None else (m, k))
    return X, y


def test_linear_regression_steps_are_the_lectures_update():
    X, y = regression_data()
    m = len(X)
    Xa = np.c_[np.ones(m), X]
    W = np.random.default_rng(1).standard_normal(4)  # [bias, w]
    lr = 0.3
    for steps in (1, 5):
        fitted = linear_regression_gd(X, y, lr=lr, epochs=steps, init=(W[1:], W[0]))
        expected = W.copy()
        for _ in range(steps):
            expected = expected - lr * (1 / m) * ((Xa @ expected - y) @ Xa)  # W := W - a (1/m) sum (W x_i - y_i) x_i
        np.testing.assert_allclose(np.r_[fitted.bias, fitted.weight], expected, rtol=1e-13, atol=1e-13)
        assert fitted.epochs == steps and len(fitted.history) == steps + 1
        assert fitted.history[0] == pytest.approx(((Xa @ W - y) ** 2).sum() / (2 * m), rel=1e-13)


def test_linear_regression_reaches_the_closed_form_solution():
    X, y = regression_data()
    fitted = linear_regression_gd(X, y, lr=0.5, epochs=500)
    closed = np.linalg.lstsq(np.c_[np.ones(len(X)), X], y, rcond=None)[0]
    assert np.abs(np.r_[fitted.bias, fitted.weight] - closed).max() < 1e-6
    # J never rises (up to the rounding of the sum, once it has converged)
    assert all(b <= a * (1 + 1e-12) for a, b in itertools.pairwise(fitted.history))
    np.testing.assert_allclose(fitted.predict(X), np.c_[np.ones(len(X)), X] @ closed, atol=1e-6)
    # several targets at once: weight (k, n), bias (k,)
    X, Y = regression_data(k=2, seed=3)
    fitted = linear_regression_gd(X, Y, lr=0.5, epochs=500)
    closed = np.linalg.lstsq(np.c_[np.ones(len(X)), X], Y, rcond=None)[0]  # (4, 2)
    assert fitted.weight.shape == (2, 3) and fitted.bias.shape == (2,)
    assert np.abs(np.c_[fitted.bias, fitted.weight] - closed.T).max() < 1e-6


def logistic_data(m=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, 2))
    p = sigmoid(X @ np.array([2.0, -1.0]) + 0.5)
    return X, (rng.random(m) < p).astype(int)


def test_logistic_regression_step_is_the_lectures_update():
    X, y = logistic_data()
    m = len(X)
    Xa = np.c_[np.ones(m), X]
    W = np.array([0.1, -0.4, 0.7])
    fitted = logistic_regression_gd(X, y, lr=0.8, epochs=1, init=(W[1:], W[0]))
    expected = W - 0.8 * (1 / m) * ((sigmoid(Xa @ W) - y) @ Xa)
    np.testing.assert_allclose(np.r_[fitted.bias, fitted.weight], expected, rtol=1e-13, atol=1e-13)
    s = sigmoid(Xa @ W)
    assert fitted.history[0] == pytest.approx(-np.mean(y * np.log(s) + (1 - y) * np.log(1 - s)), rel=1e-12)


def test_logistic_regression_matches_scikit_learn():
    sklearn = pytest.importorskip("sklearn.linear_model")
    X, y = logistic_data()
    fitted = logistic_regression_gd(X, y, lr=1.0, epochs=20000, tol=1e-10)
    assert fitted.converged
    # C=inf is no penalty (penalty=None is deprecated in scikit-learn 1.8)
    reference = sklearn.LogisticRegression(C=np.inf, tol=1e-12, max_iter=10000).fit(X, y)
    # both solve the same convex problem; measured difference about 6e-9
    np.testing.assert_allclose(fitted.weight, reference.coef_[0], atol=1e-6)
    assert fitted.bias == pytest.approx(reference.intercept_[0], abs=1e-6)
    np.testing.assert_allclose(fitted.predict(X), reference.predict_proba(X)[:, 1], atol=1e-6)


def test_regression_bad_input_errors():
    X, y = regression_data()
    with pytest.raises(ValueError, match=r"y must be numeric of shape \(200,\) or \(200, k\) to match X, got shape"):
        linear_regression_gd(X, y[:10])
    with pytest.raises(ValueError, match=r"X must be a numeric array of shape \(m, n\)"):
        linear_regression_gd(X[:, 0], y)
    with pytest.raises(ValueError, match="labels must be 0 or 1, got"):
        logistic_regression_gd(X, y)
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        linear_regression_gd(X, y, lr=-1)
    with pytest.raises(ValueError, match=r"init weight must have shape \(3,\), got \(2,\)"):
        linear_regression_gd(X, y, init=(np.zeros(2), 0.0))
    with pytest.raises(ValueError, match="X and y must be finite"):
        linear_regression_gd(np.where(X > 2, np.nan, X), y)


# --------------------------------------------------------------------- the docs page
def test_docs_page_prints_what_it_shows(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    text = (ROOT / "docs" / "constructions.md").read_text(encoding="utf-8")
    fences = re.findall(r"^```(\w*)\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)
    namespace: dict = {}
    checked = 0
    for (lang, body), (next_lang, shown) in itertools.pairwise([*fences, ("", "")]):
        if lang != "python":
            continue
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(body, "constructions.md", "exec"), namespace)
        if next_lang == "text":
            assert printed.getvalue() == shown, body
            checked += 1
    assert checked == 10
