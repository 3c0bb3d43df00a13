"""Acceptance: real learning problems solved end to end with fixed seeds (no timing is asserted).

* XOR: a 2-2-1 and a 2-4-1 sigmoid MLP classify all four points.
* Digits: the README's ``chainrule train`` command reaches >= 97% test accuracy on a held-out 20%.
* MNIST-5k: a 784-25-10 sigmoid network with cross-entropy and an L2 penalty of lambda = 1 in the
  lecture's lambda/(2m) convention reaches >= 95% training accuracy (the classic exercise: ~95.3%).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from chainrule import cli, data, nn, optim
from chainrule.nn import functional as F
from chainrule.train import evaluate, fit, predict

pytestmark = pytest.mark.slow

README_TRAIN = (
    "train --data digits --hidden 64,32 --activation relu --loss cross_entropy --optimizer sgd --lr 0.1 "
    "--momentum 0.9 --batch-size 64 --epochs 30 --l2 1e-4 --seed 0"
)


@pytest.mark.parametrize("hidden", [2, 4])
def test_xor_sigmoid_mlp_gets_all_four_points(hidden: int) -> None:
    X, y = data.xor()
    model = nn.MLP([2, hidden, 1], activation="sigmoid", output_activation="sigmoid", rng=0)
    opt = optim.SGD(model.parameters(), lr=1.0, momentum=0.9)
    history = fit(model, "bce", opt, (X, y), epochs=1000, batch_size=None, progress=False)
    probs = predict(model, X).ravel()
    assert ((probs > 0.5) == (y == 1)).sum() == 4
    assert history.loss[-1] < 0.01


def test_digits_mlp_reaches_97_percent_on_held_out_20_percent(tmp_path, capsys) -> None:
    out_dir = tmp_path / "digits"
    assert cli.main([*README_TRAIN.split(), "--out", str(out_dir)]) == 0
    printed = capsys.readouterr().out.splitlines()
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["run"]["test_size"] == 0.2
    assert metrics["test"]["accuracy"] >= 0.97
    _check_cli_doc_sample(printed, metrics)
    # the saved model, reloaded by `chainrule predict`, scores the same on the same split
    assert cli.main(["predict", "--model", str(out_dir / "model.safetensors")]) == 0
    assert f"accuracy {metrics['test_accuracy']:.4f} (" in capsys.readouterr().out


def test_mnist5k_784_25_10_sigmoid_reaches_95_percent_training_accuracy() -> None:
    X, y = data.load_mnist5k()
    m = len(X)
    model = nn.MLP([784, 25, 10], activation="sigmoid", rng=0)

    def loss(logits, targets):
        # J = cross-entropy + lambda / (2 m) * sum of squared weights (biases excluded), lambda = 1
        return F.cross_entropy(logits, targets) + F.l2_penalty(model, 1.0, m=m)

    opt = optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    fit(model, loss, opt, (X, y), epochs=15, batch_size=64, seed=0, progress=False)
    assert evaluate(model, X, y)["accuracy"] >= 0.95


def _check_cli_doc_sample(printed: list[str], metrics: dict) -> None:
    """docs/cli.md shows this run's output: its numbers must be this run's (to rounding, timings aside)."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    assert README_TRAIN in doc
    sample = re.search(r"```text\n(data digits.*?)```", doc, flags=re.DOTALL).group(1).splitlines()
    assert sample[:2] == printed[:2]
    epoch1 = re.findall(r"[\d.]+", sample[2])
    loss, acc = float(epoch1[2]), float(epoch1[3])
    assert abs(loss - metrics["history"]["loss"][0]) < 1e-3 and abs(acc - metrics["history"]["accuracy"][0]) < 1e-3
    shown = float(re.search(r"test accuracy ([\d.]+)", sample[-2]).group(1))
    assert abs(shown - metrics["test_accuracy"]) <= 1 / 360 + 1e-9
