"""The ``chainrule`` command line: train, predict, datasets, demo, help and error handling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chainrule import cli

ROOT = Path(__file__).resolve().parents[1]


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exit_:  # argparse exits on its own errors and on --help
        code = exit_.code
    out = capsys.readouterr()
    return code, out.out, out.err


# ------------------------------------------------------------------ help
def test_help_documents_every_train_flag_with_its_default(capsys) -> None:
    code, out, _ = _run(capsys, "train", "--help")
    assert code == 0
    parser = cli.build_parser()
    train = next(a for a in parser._actions if a.dest == "command").choices["train"]
    flags = [s for a in train._actions for s in a.option_strings if s.startswith("--") and s != "--help"]
    assert len(flags) >= 25
    for flag in flags:
        assert flag in out, flag
    text = " ".join(out.split())
    for shown in (
        "(default: digits)",
        "(default: 64,32)",
        "(default: relu)",
        "(default: cross_entropy)",
        "(default: sgd)",
        "default: 0.1 for sgd",
        "(default: 64)",
        "(default: 30)",
        "(default: 0.2)",
        "(default: 0.0)",
        "(default: 0)",
        "default: runs/DATA",
        "(default: float32)",
    ):
        assert shown in text, shown


def test_top_level_help_lists_the_commands(capsys) -> None:
    code, out, _ = _run(capsys)
    assert code == 0
    for command in ("train", "predict", "datasets", "demo"):
        assert command in out
    code, out, _ = _run(capsys, "predict", "--help")
    assert code == 0 and "--model" in out and "--split" in out


def test_datasets_command(capsys) -> None:
    code, out, _ = _run(capsys, "datasets")
    assert code == 0
    for name in ("digits", "mnist5k", "xor", "circle", "spiral", "moons", "blobs", "sine"):
        assert name in out


def test_demo_still_works(capsys) -> None:
    code, out, _ = _run(capsys, "demo", "--steps", "3")
    assert code == 0 and "step" in out and "/4 correct" in out


# ------------------------------------------------------------------ train + predict
def test_train_then_predict_on_digits(capsys, tmp_path) -> None:
    out_dir = tmp_path / "digits"
    code, out, err = _run(
        capsys,
        "train",
        "--data",
        "digits",
        "--hidden",
        "32",
        "--epochs",
        "3",
        "--lr",
        "0.1",
        "--momentum",
        "0.9",
        "--l2",
        "1e-4",
        "--seed",
        "0",
        "--out",
        str(out_dir),
    )
    assert code == 0, err
    assert err == ""  # no progress bar: stderr is not a terminal
    lines = out.splitlines()
    assert sum(line.startswith("epoch ") for line in lines) == 3
    assert any(line.startswith("final train accuracy") and "test accuracy" in line for line in lines)
    assert (out_dir / "model.safetensors").is_file()
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["args"]["hidden"] == [32] and metrics["args"]["lr"] == 0.1
    assert len(metrics["history"]["loss"]) == 3 and len(metrics["history"]["accuracy"]) == 3
    assert metrics["run"]["split_seed"] == 0 and metrics["run"]["test_size"] == 0.2
    assert 0.8 < metrics["test_accuracy"] <= 1 and 0.8 < metrics["train_accuracy"] <= 1

    code, out, err = _run(capsys, "predict", "--model", str(out_dir / "model.safetensors"))
    assert code == 0, err
    assert "360 samples" in out
    assert f"accuracy {metrics['test_accuracy']:.4f}" in out  # the same split as training
    assert "confusion matrix" in out
    rows = out.splitlines()[-10:]
    assert out.splitlines()[-11].split() == [str(c) for c in range(10)]
    assert sum(sum(map(int, r.split()[1:])) for r in rows) == 360

    code, out, _ = _run(capsys, "predict", "--model", str(out_dir / "model.safetensors"), "--split", "train")
    assert code == 0 and f"accuracy {metrics['train_accuracy']:.4f}" in out


def test_train_options_binary_regression_standardize_validation(capsys, tmp_path) -> None:
    code, out, err = _run(
        capsys,
        "train",
        "--data",
        "xor",
        "--hidden",
        "4",
        "--activation",
        "tanh",
        "--loss",
        "bce",
        "--lr",
        "0.5",
        "--momentum",
        "0.9",
        "--batch-size",
        "full",
        "--epochs",
        "300",
        "--quiet",
        "--out",
        str(tmp_path / "xor"),
    )
    assert code == 0, err
    assert "MLP 2-4-1" in out and "epoch " not in out and "test accuracy 1.0000" in out
    code, out, err = _run(capsys, "predict", "--model", str(tmp_path / "xor" / "model.safetensors"))
    assert code == 0 and "accuracy 1.0000 (4/4)" in out

    code, out, err = _run(
        capsys,
        "train",
        "--data",
        "sine",
        "--hidden",
        "16",
        "--activation",
        "tanh",
        "--optimizer",
        "adam",
        "--lr",
        "0.01",
        "--epochs",
        "20",
        "--quiet",
        "--standardize",
        "--out",
        str(tmp_path / "sine"),
    )
    assert code == 0, err
    assert "test mse" in out
    code, out, err = _run(capsys, "predict", "--model", str(tmp_path / "sine" / "model.safetensors"))
    assert code == 0 and out.splitlines()[-1].startswith("mse ")

    code, out, err = _run(
        capsys,
        "train",
        "--data",
        "blobs",
        "--n",
        "150",
        "--noise",
        "0.1",
        "--hidden",
        "8",
        "--optimizer",
        "rmsprop",
        "--epochs",
        "50",
        "--val-size",
        "0.2",
        "--patience",
        "2",
        "--schedule",
        "cosine",
        "--stratify",
        "--no-save",
    )
    assert code == 0, err
    assert "val_loss" in out and "24 validation" in out


def test_no_save_writes_nothing(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(capsys, "train", "--data", "moons", "--hidden", "8", "--epochs", "2", "--no-save", "--quiet")
    assert code == 0, err
    assert list(tmp_path.iterdir()) == []
    code, _, err = _run(capsys, "train", "--data", "moons", "--hidden", "8", "--epochs", "2", "--quiet")
    assert code == 0 and (tmp_path / "runs" / "moons" / "model.safetensors").is_file()


# ------------------------------------------------------------------ errors: one line on stderr, exit 2
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--data", "imagenet"], "unknown dataset 'imagenet'"),
        (["train", "--hidden", "64,x"], "comma-separated list of layer sizes"),
        (["train", "--hidden", "0,5"], "at least 1 unit"),
        (["train", "--lr", "-0.1"], "argument --lr: -0.1 must be > 0"),
        (["train", "--lr", "fast"], "'fast' is not a number"),
        (["train", "--lr", "nan"], "not a finite number"),
        (["train", "--epochs", "0"], "argument --epochs"),
        (["train", "--batch-size", "-5"], "argument --batch-size"),
        (["train", "--test-size", "1"], "strictly between 0 and 1"),
        (["train", "--momentum", "-1"], "must be >= 0"),
        (["train", "--optimizer", "lbfgs"], "invalid choice: 'lbfgs'"),
        (["train", "--activation", "swish"], "invalid choice: 'swish'"),
        (["train", "--patience", "3"], "--patience needs a validation set"),
        (["train", "--nesterov"], "--nesterov needs"),
        (["train", "--optimizer", "adam", "--momentum", "0.9"], "--momentum applies to sgd and rmsprop"),
        (["train", "--data", "digits", "--noise", "0.3"], "--noise does not apply to the digits data set"),
        (["train", "--data", "blobs", "--loss", "bce"], "needs a two-class data set"),
        (["train", "--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["predict", "--model", "no/such/model.safetensors"], "model file not found: no/such/model.safetensors"),
        (["predict"], "the following arguments are required: --model"),
        (["explode"], "invalid choice: 'explode'"),
        # found by trying to break it: each once a traceback or a silent surprise
        (["train", "--seed", "-1"], "argument --seed: -1 must be >= 0"),
        (["train", "--split-seed", "-3"], "argument --split-seed: -3 must be >= 0"),
        (["train", "--data", "moons", "--n", "1"], "--data moons: moons: n must be an integer >= 2"),
        (["train", "--hidden", "100000000"], "a hidden layer of 100000000 units is over 100,000"),
        (["train", "--hidden", "0"], "use 'none' for a linear model"),
        (["train", "--out", ""], "argument --out: an empty folder name"),
        (["demo", "--seed", "-1"], "argument --seed: -1 must be >= 0"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(capsys, argv: list[str], message: str) -> None:
    code, _, err = _run(capsys, *argv, *(["--no-save"] if argv[0] == "train" else []))
    assert code == 2
    assert message in err
    assert err.count("\n") == 1 and err.startswith("chainrule")
    assert "Traceback" not in err


def test_corrupt_model_file_is_a_usage_error(capsys, tmp_path) -> None:
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"this is not a model")
    code, _, err = _run(capsys, "predict", "--model", str(bad))
    assert code == 2 and "model.safetensors" in err and err.count("\n") == 1


def test_unwritable_output_folder_is_a_usage_error(capsys, tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = _run(
        capsys, "train", "--data", "xor", "--hidden", "2", "--epochs", "1", "--quiet", "--out", str(blocker / "sub")
    )
    assert code == 2 and "cannot write" in err


# ------------------------------------------------------------------ python -m chainrule
def test_python_dash_m_chainrule_train(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CI": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "chainrule",
            "train",
            "--data",
            "xor",
            "--hidden",
            "4",
            "--activation",
            "sigmoid",
            "--loss",
            "bce",
            "--lr",
            "1",
            "--momentum",
            "0.9",
            "--batch-size",
            "full",
            "--epochs",
            "5",
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "epoch 5/5" in result.stdout and "final train accuracy" in result.stdout
    assert (tmp_path / "run" / "metrics.json").is_file()
    bad = subprocess.run(
        [sys.executable, "-m", "chainrule", "train", "--lr", "-1"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


# ------------------------------------------------------------------ docs/cli.md stays in sync
def test_docs_cli_documents_every_flag_and_its_examples_parse() -> None:
    import re

    doc = (ROOT / "docs" / "cli.md").read_text()
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for name in ("train", "predict"):
        for action in commands[name]._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    assert f"`{flag}" in doc, f"docs/cli.md does not document {name} {flag}"
    examples = re.findall(
        r"^chainrule (.+)$", "\n".join(re.findall(r"```sh\n(.*?)```", doc, flags=re.DOTALL)), flags=re.MULTILINE
    )
    assert len(examples) >= 5
    for line in examples:
        parser.parse_args(line.split())


def test_train_compile_flag_gives_the_same_model(capsys, tmp_path) -> None:
    import numpy as np

    import chainrule as cr

    common = ("train", "--data", "digits", "--epochs", "2", "--quiet")
    assert _run(capsys, *common, "--out", str(tmp_path / "eager"))[0] == 0
    assert _run(capsys, *common, "--compile", "--out", str(tmp_path / "compiled"))[0] == 0
    eager = cr.load(tmp_path / "eager" / "model.safetensors")
    compiled = cr.load(tmp_path / "compiled" / "model.safetensors")
    for a, b in zip(eager.parameters(), compiled.parameters()):
        assert np.array_equal(a.data, b.data)


def test_predict_into_a_closed_pipe_stops_quietly(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "run"
    assert cli.main(["train", "--data", "digits", "--hidden", "8", "--epochs", "1", "--quiet", "--no-plots",
                     "--out", str(out)]) == 0  # fmt: skip
    command = f"{sys.executable} -m chainrule predict --model {out / 'model.safetensors'} | head -1"
    run = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert run.stdout.startswith("model ") and run.stderr == ""  # no BrokenPipeError traceback


def test_demo_says_when_training_diverged(capsys):
    from chainrule.cli.demo import train_xor

    train_xor(steps=3, lr=float("inf"))
    printed = capsys.readouterr().out
    assert "training diverged" in printed and "correct" not in printed


def test_training_uses_one_blas_thread_for_small_networks():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from chainrule import nn
    from chainrule.cli.commands import blas_threads

    def blas() -> set[int]:
        return {p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"}

    before = blas()
    with blas_threads(None, nn.MLP([784, 64, 10], rng=0)):
        assert blas() == {1}
    assert blas() == before
    with blas_threads(3, nn.MLP([2, 2], rng=0)):
        assert blas() == {3}
    with blas_threads(None, nn.Linear(1001, 1000, rng=0)):  # a layer over 1,000,000 weights: left alone
        assert blas() == before
