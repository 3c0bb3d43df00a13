"""chainrule.train: the fit loop, History, callbacks, progress, evaluate and predict."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import data, nn, optim
from chainrule.nn import functional as F
from chainrule.train import (
    Callback,
    EarlyStopping,
    History,
    accuracy,
    evaluate,
    fit,
    format_logs,
    param_groups,
    predict,
    progress_enabled,
    resolve_loss,
)


def _blobs(n: int = 120, seed: int = 0):
    X, y = data.blobs(n=n, seed=seed)
    return X, y


def _mlp(sizes=(2, 8, 3), seed: int = 0, **kw):
    return nn.MLP(list(sizes), rng=seed, **kw)


def test_fit_returns_history_with_per_epoch_lists() -> None:
    X, y = _blobs()
    model = _mlp()
    h = fit(
        model,
        "cross_entropy",
        optim.SGD(model.parameters(), lr=0.1),
        (X, y),
        epochs=5,
        batch_size=16,
        validation=(X[:30], y[:30]),
        progress=False,
    )
    assert isinstance(h, History) and len(h) == 5 and h.epochs == [1, 2, 3, 4, 5]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "time", "lr"):
        assert len(h[key]) == 5 and getattr(h, key) is h[key]
    assert all(t > 0 for t in h.time) and h.lr == [0.1] * 5
    assert h.loss[-1] < h.loss[0] and h.accuracy[-1] > 0.9
    assert set(h.to_dict()) >= {"epochs", "loss", "val_accuracy", "stopped_epoch"}
    assert "epochs" in repr(h)
    with pytest.raises(AttributeError, match="no record"):
        _ = h.f1


def test_seeded_runs_are_bit_for_bit_identical() -> None:
    X, y = _blobs()

    def run(seed: int):
        model = _mlp(seed=seed)
        opt = optim.Adam(model.parameters(), lr=0.01)
        fit(model, "cross_entropy", opt, (X, y), epochs=4, batch_size=10, seed=seed, progress=False)
        return [p.data.copy() for p in model.parameters()]

    a, b, c = run(0), run(0), run(1)
    for pa, pb in zip(a, b):
        np.testing.assert_array_equal(pa, pb)
    assert any(not np.array_equal(pa, pc) for pa, pc in zip(a, c))


def test_full_batch_fit_equals_a_hand_written_gradient_descent_loop() -> None:
    X, y = _blobs(60)
    model_a, model_b = _mlp(seed=3), _mlp(seed=3)
    fit(
        model_a,
        "cross_entropy",
        optim.SGD(model_a.parameters(), lr=0.5),
        (X, y),
        epochs=7,
        batch_size=None,
        progress=False,
    )
    for _ in range(7):
        loss = F.cross_entropy(model_b(cr.tensor(X)), y)
        for p in model_b.parameters():
            p.grad = None
        loss.backward()
        for p in model_b.parameters():
            p.data -= 0.5 * p.grad
    for pa, pb in zip(model_a.parameters(), model_b.parameters()):
        np.testing.assert_array_equal(pa.data, pb.data)


@pytest.mark.parametrize(
    ("loss", "units", "out_act"),
    [
        ("cross_entropy", 2, None),
        ("mse", 2, None),
        ("mse", 1, "sigmoid"),
        ("bce", 1, "sigmoid"),
        ("bce_with_logits", 1, None),
        ("hinge", 2, None),
        ("hinge", 1, None),
        ("nll", 2, "log_softmax"),
    ],
)
def test_losses_by_name_learn_a_separable_problem(loss: str, units: int, out_act) -> None:
    X, y = data.moons(n=200, noise=0.05, seed=0)
    model = _mlp((2, 16, units), activation="tanh", output_activation=out_act)
    h = fit(model, loss, optim.Adam(model.parameters(), lr=0.02), (X, y), epochs=40, batch_size=32, progress=False)
    assert h.loss[-1] < h.loss[0]
    assert evaluate(model, X, y, loss=loss)["accuracy"] > 0.85


def test_callable_loss_with_l2_penalty_in_the_lecture_convention() -> None:
    X, y = _blobs()
    model = _mlp()

    def loss(out, t):
        return F.cross_entropy(out, t) + F.l2_penalty(model, 1.0, m=len(X))

    h = fit(model, loss, optim.SGD(model.parameters(), lr=0.2), (X, y), epochs=3, progress=False)
    assert len(h.loss) == 3 and "accuracy" in h.history


def test_unknown_loss_metric_and_bad_epochs() -> None:
    X, y = _blobs()
    model = _mlp()
    opt = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="unknown loss 'l1'"):
        fit(model, "l1", opt, (X, y))
    with pytest.raises(ValueError, match="unknown metric"):
        fit(model, "mse", opt, (X, y), metrics=("f1",))
    with pytest.raises(ValueError, match="epochs"):
        fit(model, "mse", opt, (X, y), epochs=-1)
    with pytest.raises(TypeError, match="data must be"):
        fit(model, "mse", opt, X)


def test_regression_skips_accuracy_and_reports_mse() -> None:
    X, y = data.sine(n=64)
    model = _mlp((1, 16, 1), activation="tanh")
    h = fit(
        model,
        "mse",
        optim.Adam(model.parameters(), lr=0.01),
        (X, y),
        epochs=3,
        metrics=("accuracy", "mse"),
        progress=False,
    )
    assert "accuracy" not in h.history and len(h["mse"]) == 3
    np.testing.assert_allclose(h["mse"], h.loss, rtol=1e-5)


def test_float64_data_is_fed_to_a_float32_model_as_float32() -> None:
    X, y = _blobs()
    model = _mlp()
    fit(
        model,
        "cross_entropy",
        optim.SGD(model.parameters(), lr=0.1),
        (X.astype(np.float64), y),
        epochs=1,
        progress=False,
    )
    assert all(p.dtype == np.float32 for p in model.parameters())
    assert predict(model, X.astype(np.float64)).dtype == np.float32


def test_a_dataloader_or_dataset_can_be_the_data() -> None:
    X, y = _blobs()
    model = _mlp()
    loader = data.DataLoader(X.astype(np.float64), y, batch_size=40, shuffle=True, seed=1)
    h = fit(model, "cross_entropy", optim.SGD(model.parameters(), lr=0.1), loader, epochs=2, progress=False)
    assert len(h) == 2 and loader.X.dtype == np.float64  # the caller's loader is not modified
    h = fit(
        model,
        "cross_entropy",
        optim.SGD(model.parameters(), lr=0.1),
        data.get_dataset("blobs"),
        epochs=1,
        progress=False,
    )
    assert len(h) == 1


def test_scheduler_is_stepped_after_each_epoch() -> None:
    X, y = _blobs()
    model = _mlp()
    opt = optim.SGD(model.parameters(), lr=0.1)
    h = fit(
        model,
        "cross_entropy",
        opt,
        (X, y),
        epochs=4,
        scheduler=optim.StepLR(opt, step_size=2, gamma=0.5),
        progress=False,
    )
    assert h.lr == [0.1, 0.1, 0.05, 0.05]


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_diverging_training_raises_a_clear_error() -> None:
    X, y = data.sine(n=32)
    model = _mlp((1, 8, 1))
    with pytest.raises(FloatingPointError, match="diverged"):
        fit(model, "mse", optim.SGD(model.parameters(), lr=1e12), (X * 1e3, y), epochs=5, progress=False)


# ------------------------------------------------------------------ callbacks
class _Recorder(Callback):
    def __init__(self) -> None:
        self.events: list[str] = []

    def on_train_begin(self, state):
        self.events.append("train_begin")

    def on_epoch_begin(self, state):
        self.events.append(f"epoch_begin {state.epoch}")

    def on_batch_end(self, state):
        self.events.append(f"batch {state.batch}")

    def on_epoch_end(self, state):
        self.events.append(f"epoch_end {state.epoch} {sorted(state.logs)}")

    def on_train_end(self, state):
        self.events.append("train_end")


def test_callback_hooks_run_in_order_and_functions_work_as_callbacks() -> None:
    X, y = _blobs(20)
    model = _mlp()
    rec, seen = _Recorder(), []
    fit(
        model,
        "cross_entropy",
        optim.SGD(model.parameters(), lr=0.1),
        (X, y),
        epochs=2,
        batch_size=10,
        callbacks=[rec, lambda state: seen.append(state.logs["loss"])],
        progress=False,
    )
    logs = "['accuracy', 'loss', 'lr', 'time']"
    assert rec.events == [
        "train_begin",
        "epoch_begin 1",
        "batch 1",
        "batch 2",
        f"epoch_end 1 {logs}",
        "epoch_begin 2",
        "batch 1",
        "batch 2",
        f"epoch_end 2 {logs}",
        "train_end",
    ]
    assert len(seen) == 2


def test_early_stopping_stops_and_restores_the_best_weights() -> None:
    X, y = _blobs()
    model = _mlp()
    snapshots = []

    def snap(state):
        snapshots.append((state.logs["val_loss"], [p.data.copy() for p in state.model.parameters()]))

    # Validation labels that disagree with the training labels: the better the fit, the worse val_loss gets.
    stopper = EarlyStopping("val_loss", patience=2)
    h = fit(
        model,
        "cross_entropy",
        optim.SGD(model.parameters(), lr=0.05),
        (X, y),
        epochs=200,
        validation=(X[:40], (y[:40] + 1) % 3),
        callbacks=[stopper, snap],
        progress=False,
    )
    assert h.stopped_epoch is not None and len(h) == h.stopped_epoch < 200
    assert len(h) == stopper.best_epoch + 3
    best = int(np.argmin([v for v, _ in snapshots]))
    assert best + 1 == stopper.best_epoch
    for p, saved in zip(model.parameters(), snapshots[best][1]):
        np.testing.assert_array_equal(p.data, saved)


def test_early_stopping_needs_its_monitored_value() -> None:
    X, y = _blobs()
    model = _mlp()
    with pytest.raises(KeyError, match="val_loss"):
        fit(
            model,
            "cross_entropy",
            optim.SGD(model.parameters(), lr=0.1),
            (X, y),
            epochs=2,
            callbacks=[EarlyStopping()],
            progress=False,
        )
    assert EarlyStopping("val_accuracy").mode == "max"
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=-1)


# ------------------------------------------------------------------ progress and printing
def test_progress_is_quiet_off_a_terminal_and_under_ci(monkeypatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    assert progress_enabled(None) is False  # pytest's captured stderr is not a TTY
    assert progress_enabled(False) is False and progress_enabled(True) is True

    class FakeTTY:
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stderr", FakeTTY())
    assert progress_enabled(None) is True
    monkeypatch.setenv("CI", "true")
    assert progress_enabled(None) is False


def test_progress_bar_and_verbose_lines(capsys) -> None:
    X, y = _blobs(40)
    model = _mlp()
    fit(model, "cross_entropy", optim.SGD(model.parameters(), lr=0.1), (X, y), epochs=3, progress=False)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    fit(model, "cross_entropy", optim.SGD(model.parameters(), lr=0.1), (X, y), epochs=3, progress=True, verbose=True)
    out = capsys.readouterr()
    assert "3/3" in out.err and "loss=" in out.err and "accuracy=" in out.err  # the tqdm bar
    assert "epoch 3/3" in out.out and "accuracy" in out.out


def test_format_logs() -> None:
    line = format_logs(3, 30, {"loss": 0.5, "accuracy": 0.75, "time": 0.25, "lr": 0.1})
    assert line == "epoch  3/30  loss 0.5000  accuracy 0.7500  0.25 s"


# ------------------------------------------------------------------ evaluate / predict / helpers
def test_evaluate_and_predict_use_eval_mode_without_a_graph() -> None:
    X, y = _blobs()
    model = nn.Sequential(nn.Linear(2, 16, rng=0), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3, rng=1))
    model.train()
    out1, out2 = predict(model, X), predict(model, X, batch_size=7)
    np.testing.assert_allclose(out1, out2, rtol=1e-5, atol=1e-7)  # dropout is off: deterministic
    assert model.training  # the previous mode is restored
    result = evaluate(model, X, y, loss="cross_entropy")
    assert set(result) == {"loss", "accuracy"} and 0 <= result["accuracy"] <= 1
    assert all(p.grad is None for p in model.parameters())


def test_accuracy_conventions() -> None:
    assert accuracy(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1])) == 0.5
    assert accuracy(np.array([[0.1, 0.9]]), np.array([[0.0, 1.0]])) == 1.0  # one-hot targets
    assert accuracy(np.array([[0.7], [0.2]]), np.array([1, 0])) == 1.0
    assert accuracy(np.array([0.3, -0.2]), np.array([1, 0]), threshold=0.0) == 1.0
    assert accuracy(np.array([0.3, -0.2]), np.array([1.0, -1.0]), threshold=0.0) == 1.0  # +-1 labels
    assert accuracy(np.array([[0.6]]), np.array([[1.0]])) == 1.0


def test_resolve_loss_thresholds() -> None:
    assert resolve_loss("bce")[1:] == ("bce", 0.5)
    assert resolve_loss("binary_cross_entropy_with_logits")[1:] == ("bce_with_logits", 0.0)
    assert resolve_loss("CE")[1] == "cross_entropy"
    with pytest.raises(TypeError, match="callable"):
        resolve_loss(3)


def test_param_groups_decay_only_weight_matrices() -> None:
    model = _mlp((2, 4, 3))
    groups = param_groups(model, 1e-3)
    assert [g["weight_decay"] for g in groups] == [1e-3, 0.0]
    assert all(p.ndim == 2 for p in groups[0]["params"]) and all(p.ndim == 1 for p in groups[1]["params"])
    opt = optim.SGD(groups, lr=0.1)
    for p in model.parameters():
        p.grad = cr.zeros_like(p)
    before = [p.data.copy() for p in model.parameters()]
    opt.step()
    for p, b in zip(model.parameters(), before):
        if p.ndim == 2:
            np.testing.assert_allclose(p.data, b * (1 - 0.1 * 1e-3), rtol=1e-6)
        else:
            np.testing.assert_array_equal(p.data, b)


# ------------------------------------------------------------------ the docs are executed
def test_docs_training_code_runs(capsys) -> None:
    from helpers import run_doc

    namespace = run_doc("training.md")
    assert namespace["history"].epochs
    assert "accuracy" in capsys.readouterr().out


def _digits_run(compile_step):
    from chainrule import nn, optim
    from chainrule.data import load_digits

    X, y = load_digits()
    X, y = X[:300], y[:300]
    nn.init.manual_seed(0)
    model = nn.MLP([64, 32, 10], activation="tanh")
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    history = cr.fit(model, "cross_entropy", opt, (X, y), epochs=3, batch_size=64, seed=0, compile=compile_step)
    return history, [p.data.copy() for p in model.parameters()]


def test_fit_compiled_gives_the_same_weights_as_eager():
    eager_history, eager_weights = _digits_run(False)
    compiled_history, compiled_weights = _digits_run(True)
    assert eager_history.loss == compiled_history.loss
    assert eager_history.accuracy == compiled_history.accuracy
    for a, b in zip(eager_weights, compiled_weights):
        assert np.array_equal(a, b)


def test_fit_compiled_regression_with_float64_targets():
    from chainrule import nn, optim

    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1
    nn.init.manual_seed(0)
    model = nn.MLP([3, 8, 1], activation="tanh")
    opt = optim.SGD(model.parameters(), lr=0.05)
    history = cr.fit(model, "mse", opt, (X, y[:, None]), epochs=5, batch_size=16, metrics=(), compile=True)
    assert history.loss[-1] < history.loss[0]


def test_fit_compile_refuses_dropout():
    from chainrule import nn, optim

    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Linear(4, 2))
    model.eval()
    opt = optim.SGD(model.parameters(), lr=0.1)
    X, y = np.zeros((8, 4)), np.zeros(8, dtype=np.int64)
    with pytest.raises(ValueError, match="Dropout"):
        cr.fit(model, "cross_entropy", opt, (X, y), epochs=1, compile=True)
    assert not model.training  # the check left the model's mode as it was


def test_callbacks_end_even_when_training_fails():
    import chainrule as cr
    from chainrule.train import Callback

    ended = []

    class Watch(Callback):
        def on_train_end(self, state):
            ended.append(state.epoch)

        def on_batch_end(self, state):
            raise KeyError("boom")

    model = cr.nn.MLP([2, 3, 1], rng=0)
    opt = cr.optim.SGD(model.parameters(), lr=0.1)
    X, y = np.zeros((4, 2)), np.zeros(4)
    with pytest.raises(KeyError, match="boom"):
        fit(model, "mse", opt, (X, y), epochs=2, callbacks=[Watch()], verbose=False)
    assert ended == [1]
