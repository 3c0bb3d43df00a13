"""chainrule.sweep and ``chainrule sweep``: the grid parser, trials, the process pool, failures, Ctrl-C and resume."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import chainrule
import chainrule.sweep
from chainrule import cli
from chainrule.sweep import SweepError, SweepResults, sweep
from chainrule.sweep.space import OPTIONS, SpaceError, configurations, parse_axis, parse_grid

ROOT = Path(__file__).resolve().parents[1]
FAST = ["epochs=2", "hidden=16"]  # digits trials of a fraction of a second


# ------------------------------------------------------------------ the grid parser
def test_grid_entries_parse_values_lists_and_ranges():
    assert parse_axis("lr=0.01,0.1,0.5").values == (0.01, 0.1, 0.5)
    assert parse_axis("hidden=64;64,32;128,64").values == ([64], [64, 32], [128, 64])
    assert parse_axis("hidden=none;32").values == ([], [32])
    assert parse_axis("batch-size=32,full").values == (32, None)  # dashes as on the command line
    assert parse_axis("activation=relu,tanh").values == ("relu", "tanh")
    assert parse_axis("standardize=true,false").values == (True, False)
    log = parse_axis("lr=log(1e-3,1)")
    assert log.is_range and log.log and (log.low, log.high) == (1e-3, 1.0)
    assert parse_axis("hidden=choice(64;64,32)").values == ([64], [64, 32])


@pytest.mark.parametrize(
    "entry,message",
    [
        ("learning_rate=0.1", "unknown option 'learning_rate'"),
        ("lr", "expected NAME=VALUES"),
        ("lr=", "no values after '='"),
        ("lr=0.1,abc", "'abc' is not a number"),
        ("lr=-1", "-1 must be > 0"),
        ("activation=relu,swish", "'swish' is not one of relu"),
        ("optimizer=sgd,lbfgs", "'lbfgs' is not one of sgd"),
        ("hidden=64;x", "'x' is not a comma-separated list of layer sizes"),
        ("epochs=0", "0 must be >= 1"),
        ("l2=log(0,1)", "log() needs bounds > 0"),
        ("lr=uniform(1,0.5)", "the lower bound must be below the upper bound"),
        ("lr=log(1e-3)", "log() takes two bounds"),
        ("activation=log(1,2)", "log() needs a numeric option"),
        ("lr=0.1,0.1", "a value is listed twice"),
        ("seed=1,2", "seeds come from --seeds"),
        ("data=digits", "use --data"),
    ],
)
def test_a_bad_grid_entry_is_one_line_naming_it(entry, message):
    with pytest.raises(SpaceError) as caught:
        parse_axis(entry)
    text = str(caught.value)
    assert message in text and repr(entry) in text and "\n" not in text


def test_a_name_given_twice_and_a_range_without_samples_are_refused():
    with pytest.raises(SpaceError, match="lr is given twice"):
        parse_grid(["lr=0.1", "lr=0.2"])
    with pytest.raises(SpaceError, match=r"is a range: add --samples K"):
        configurations(parse_grid(["lr=log(1e-3,1)"]))


def test_grid_is_every_combination_and_random_search_draws_in_range():
    axes = parse_grid(["lr=0.01,0.1,0.5", "hidden=64;64,32;128,64", "activation=relu,tanh,sigmoid"])
    grid = configurations(axes)
    assert len(grid) == 27 and len({json.dumps(c) for c in grid}) == 27
    assert grid[0] == {"lr": 0.01, "hidden": [64], "activation": "relu"}

    axes = parse_grid(["lr=log(1e-3,1)", "l2=uniform(0,0.01)", "batch_size=uniform(16,128)", "hidden=choice(8;8,8)"])
    draws = configurations(axes, samples=200, search_seed=3)
    assert draws == configurations(axes, samples=200, search_seed=3)  # seeded
    assert draws != configurations(axes, samples=200, search_seed=4)
    lrs = [d["lr"] for d in draws]
    assert all(1e-3 <= lr <= 1 for lr in lrs)
    # log-uniform: about a third of the draws in each decade
    assert 40 < sum(lr < 1e-2 for lr in lrs) < 95 and 40 < sum(lr > 1e-1 for lr in lrs) < 95
    assert all(isinstance(d["batch_size"], int) and 16 <= d["batch_size"] <= 128 for d in draws)
    assert {tuple(d["hidden"]) for d in draws} == {(8,), (8, 8)}


def test_sweep_defaults_are_chainrule_train_defaults():
    parser = cli.build_parser()
    train = next(a for a in parser._actions if a.dest == "command").choices["train"]
    defaults = vars(train.parse_args([]))
    for name, option in OPTIONS.items():
        if name != "val_size":  # a sweep ranks on a validation part, so it always has one
            assert defaults[name] == option.default, name
    assert OPTIONS["val_size"].default > 0


# ------------------------------------------------------------------ sweeps
def _predict_accuracy(model: str, capsys) -> float:
    capsys.readouterr()
    assert cli.main(["predict", "--model", model]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("accuracy"))
    return float(line.split()[1])


def test_a_sweep_on_the_process_pool_ranks_configurations_and_saves_every_trial(tmp_path, capsys):
    grid = ["lr=0.02,0.3", "activation=relu,tanh", *FAST]
    seen = []
    results = sweep(grid, seeds=2, workers=2, out=tmp_path / "pool", progress=lambda r, d, t: seen.append((d, t)))
    assert isinstance(results, SweepResults) and results.metric == "val_accuracy"
    assert [d for d, _ in seen] == [1, 2, 3, 4, 5, 6, 7, 8] and {t for _, t in seen} == {8}
    assert len(results.trials) == 8 and all(t["status"] == "ok" for t in results.trials)

    rows = results.rows
    assert len(rows) == 4 and [r["rank"] for r in rows] == [1, 2, 3, 4]
    means = [r["val_accuracy_mean"] for r in rows]
    assert means == sorted(means, reverse=True)
    for row in rows:  # mean and std over the two seeds of that configuration
        mine = [
            t["val_accuracy"]
            for t in results.trials
            if t["params"]["lr"] == row["lr"] and t["params"]["activation"] == row["activation"]
        ]
        assert sorted(t for t in mine) and len(mine) == 2 and row["ok"] == 2
        assert row["val_accuracy_mean"] == pytest.approx(sum(mine) / 2)
        assert row["val_accuracy_std"] == pytest.approx(abs(mine[0] - mine[1]) / 2**0.5)
    assert rows[0]["lr"] == 0.3  # 2 epochs: the larger step learns faster

    # the files: results.csv and results.json agree with the object; every trial has its folder
    out = tmp_path / "pool"
    with open(out / "results.csv") as f:
        table = list(csv.DictReader(f))
    assert [(float(r["lr"]), r["activation"]) for r in table] == [(r["lr"], r["activation"]) for r in rows]
    saved = json.loads((out / "results.json").read_text())
    assert saved["complete"] and saved["best"] == results.best["id"] and len(saved["trials"]) == 8
    assert saved["sweep"]["grid"] == grid and saved["sweep"]["seeds"] == 2
    for trial in results.trials:
        folder = Path(trial["folder"])
        assert sorted(p.name for p in folder.iterdir()) == ["metrics.json", "model.safetensors"]
        assert json.loads((folder / "metrics.json").read_text())["val_accuracy"] == trial["val_accuracy"]
    assert not list((out / "trials").glob(".*"))  # no temporary left

    # the best trial's model reloads, and `chainrule predict` gets the test accuracy the sweep recorded
    best = results.best
    assert best["val_accuracy"] == max(t["val_accuracy"] for t in results.trials)
    model = chainrule.load(best["model"])
    assert model.sizes == [64, 16, 10]
    assert _predict_accuracy(best["model"], capsys) == pytest.approx(best["test_accuracy"], abs=5e-5)

    # the pool changes where trials run, not what they compute
    inline = sweep(grid, seeds=2, workers=1, out=tmp_path / "inline")
    assert [t["val_accuracy"] for t in inline.trials] == [t["val_accuracy"] for t in results.trials]


def test_chainrule_sweep_is_callable_and_takes_a_mapping(tmp_path):
    results = chainrule.sweep({"hidden": [[8], [16, 8]], "epochs": 1}, data="blobs", workers=1, out=tmp_path / "s")
    assert [r["hidden"] for r in sorted(results.rows, key=lambda r: len(r["hidden"]))] == [[8], [16, 8]]
    assert results.to_dict()["names"] == ["hidden", "epochs"]


def test_regression_sweeps_rank_by_lowest_validation_mse(tmp_path):
    results = sweep(["lr=0.001,0.05", "epochs=3", "hidden=8"], data="sine", workers=1, out=tmp_path / "s")
    assert results.metric == "val_mse"
    assert results.rows[0]["val_mse_mean"] < results.rows[1]["val_mse_mean"]
    assert results.best["val_mse"] == min(t["val_mse"] for t in results.trials)


def test_random_search_trains_the_sampled_configurations(tmp_path):
    results = sweep(["lr=log(0.01,0.5)", *FAST], samples=3, search_seed=1, workers=1, out=tmp_path / "r")
    drawn = configurations(parse_grid(["lr=log(0.01,0.5)", *FAST]), samples=3, search_seed=1)
    assert [t["params"]["lr"] for t in results.trials] == [d["lr"] for d in drawn]
    assert len(results.rows) == 3


def test_failed_and_diverging_trials_are_recorded_and_the_sweep_goes_on(tmp_path):
    results = sweep(["lr=0.1,1e30", "optimizer=sgd,adam", "momentum=0.5", *FAST], workers=2, out=tmp_path / "f")
    by = {(t["params"]["lr"], t["params"]["optimizer"]): t for t in results.trials}
    assert by[(0.1, "sgd")]["status"] == "ok"
    diverged = by[(1e30, "sgd")]
    assert diverged["status"] == "failed" and "training diverged" in diverged["error"]
    assert diverged["error"].startswith("FloatingPointError: ")
    assert by[(0.1, "adam")]["error"] == "RunError: --momentum applies to sgd and rmsprop, not adam"
    assert diverged["model"] is None
    assert sorted(p.name for p in Path(diverged["folder"]).iterdir()) == ["metrics.json"]
    assert results.best["id"] == by[(0.1, "sgd")]["id"]
    assert [r["ok"] for r in results.rows] == [1, 0, 0, 0]  # configurations without a finished trial rank last
    assert "failed: FloatingPointError" in results.format_table()


def test_a_sweep_refuses_bad_settings_before_anything_runs(tmp_path):
    out = tmp_path / "x"
    with pytest.raises(SweepError, match="unknown option 'lrr'"):
        sweep(["lrr=0.1"], out=out)
    with pytest.raises(SweepError, match="digitz"):
        sweep(["lr=0.1"], data="digitz", out=out)
    with pytest.raises(SweepError, match="asha scheduler runs on Ray Tune"):
        sweep(["lr=0.1"], scheduler="asha", out=out)
    with pytest.raises(SweepError, match="nothing to resume"):
        sweep(["lr=0.1"], resume=True, out=out)
    assert not out.exists()


def test_the_process_pool_limits_each_workers_blas_threads():
    pytest.importorskip("threadpoolctl")
    from chainrule.sweep.runners import blas_threads, run_local, threads_per_worker

    found = []
    run_local([(), ()], 2, found.append, task=blas_threads)
    assert found == [[threads_per_worker(2)]] * 2
    assert threads_per_worker(2) == max(1, len(os.sched_getaffinity(0)) // 2)


# ------------------------------------------------------------------ the command line
def _run(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "CI": "1"}
    return subprocess.run(
        [sys.executable, "-m", "chainrule", "sweep", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        **kwargs,
    )


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--grid", "lr=0.1,x"], "--grid 'lr=0.1,x': 'x' is not a number"),
        (["--grid", "colour=red"], "--grid 'colour=red': unknown option 'colour'"),
        (["--grid", "lr=log(1e-3,1)"], "is a range: add --samples K for a random search"),
        (["--grid", "lr=0.1", "--scheduler", "asha"], "--scheduler asha needs --ray"),
        (["--grid", "lr=0.1", "--data", "nope"], "nope"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_status_2(argv, message, tmp_path, capsys):
    out = tmp_path / "never"
    assert cli.main(["sweep", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("chainrule sweep: error: ") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_cli_without_ray_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    assert cli.main(["sweep", "--grid", "lr=0.1", "--ray", "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert "pip install 'chainrule[sweep]'" in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_cli_prints_plain_progress_lines_then_the_table(tmp_path):
    run = _run("--grid", "lr=0.05,0.3", "--grid", "hidden=16;16,16", "--grid", "epochs=2", "--workers", "2",
               "--out", str(tmp_path / "c"))  # fmt: skip
    assert run.returncode == 0, run.stderr
    progress = [line for line in run.stderr.splitlines() if line.startswith("[")]
    assert len(progress) == 4 and "\r" not in run.stderr
    assert all(": ok val_accuracy 0." in line for line in progress)
    lines = run.stdout.splitlines()
    assert lines[0].split() == ["rank", "lr", "hidden", "val_accuracy", "test_accuracy", "ok"]
    assert [line.split()[0] for line in lines[1:5]] == ["1", "2", "3", "4"]
    assert lines[5] == "4 of 4 trials done" and lines[6].startswith("best: trial ")
    assert (tmp_path / "c" / "results.csv").is_file()
    again = _run("--grid", "lr=0.05", "--out", str(tmp_path / "c"))
    assert again.returncode == 2 and "already holds a sweep" in again.stderr


def test_ctrl_c_keeps_finished_trials_and_resume_skips_them(tmp_path):
    out = tmp_path / "int"
    argv = ["--grid", "lr=0.02,0.05,0.1,0.2,0.3,0.4", "--grid", "epochs=40", "--workers", "1", "--out", str(out)]
    env = {**os.environ, "CI": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "chainrule", "sweep", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env,
    )  # fmt: skip
    first = process.stderr.readline()  # the first finished trial
    assert first.startswith("[1/6]"), first
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "interrupted: " in stderr and "--resume" in stderr
    saved = json.loads((out / "results.json").read_text())
    done = {t["id"] for t in saved["trials"]}
    assert 1 <= len(done) < 6 and not saved["complete"]
    assert "of 6 trials done" in stdout and "not run" in stdout
    assert not list((out / "trials").glob(".*"))  # the interrupted trial left nothing half-written

    before = {i: (out / "trials" / i / "model.safetensors").stat().st_mtime_ns for i in done}
    time.sleep(0.01)
    resumed = _run(*argv, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    ran = [line for line in resumed.stderr.splitlines() if line.startswith("[")]
    assert len(ran) == 6 - len(done)
    assert {i: (out / "trials" / i / "model.safetensors").stat().st_mtime_ns for i in done} == before
    final = json.loads((out / "results.json").read_text())
    assert final["complete"] and len(final["trials"]) == 6

    changed = _run("--grid", "lr=0.02,0.05", "--grid", "epochs=40", "--out", str(out), "--resume")
    assert changed.returncode == 2 and "cannot resume: the sweep in" in changed.stderr


def test_docs_cli_documents_every_sweep_flag():
    doc = (ROOT / "docs" / "cli.md").read_text()
    sweep_parser = next(a for a in cli.build_parser()._actions if a.dest == "command").choices["sweep"]
    for action in sweep_parser._actions:
        for flag in action.option_strings:
            if flag.startswith("--") and flag != "--help":
                assert f"`{flag}" in doc, f"docs/cli.md does not document sweep {flag}"


def test_chainrule_sweep_module_is_the_sweep_function():
    assert callable(chainrule.sweep) and chainrule.sweep.sweep is sweep
