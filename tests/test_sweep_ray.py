"""chainrule.sweep on Ray Tune: a local Ray instance of 2 CPUs, the same trial code, the same results and files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'chainrule[sweep]')")
pytest.importorskip("ray.tune", reason="Ray Tune is not installed (pip install 'ray[tune]')")

import chainrule  # noqa: E402
from chainrule.sweep import sweep  # noqa: E402

GRID = ["lr=0.02,0.3", "hidden=16", "epochs=3"]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.slow
def test_a_sweep_on_ray_tune_gives_the_pool_results_and_files(local_ray, tmp_path):
    seen = []
    results = sweep(GRID, seeds=2, engine="ray", out=tmp_path / "ray", progress=lambda r, d, t: seen.append(d))
    assert sorted(seen) == [1, 2, 3, 4]
    assert len(results.trials) == 4 and all(t["status"] == "ok" for t in results.trials)
    rows = results.rows
    assert [(r["rank"], r["lr"], r["ok"]) for r in rows] == [(1, 0.3, 2), (2, 0.02, 2)]
    assert rows[0]["val_accuracy_mean"] > rows[1]["val_accuracy_mean"]

    # the same trials in this process compute the same scores: the engine changes nothing but where they ran
    inline = sweep(GRID, seeds=2, workers=1, out=tmp_path / "inline")
    assert [t["val_accuracy"] for t in results.trials] == [t["val_accuracy"] for t in inline.trials]
    assert [t["id"] for t in results.trials] == [t["id"] for t in inline.trials]

    saved = json.loads((tmp_path / "ray" / "results.json").read_text())
    assert saved["sweep"]["engine"] == "ray" and saved["complete"] and len(saved["trials"]) == 4
    best = results.best
    assert sorted(p.name for p in Path(best["folder"]).iterdir()) == ["metrics.json", "model.safetensors"]
    model = chainrule.load(best["model"])
    assert model.sizes == [64, 16, 10]


@pytest.mark.slow
def test_asha_on_ray_records_every_trial_as_finished_or_stopped(local_ray, tmp_path):
    # the good learning rates first, so that the slow learners meet ASHA's rungs with results to compare to
    grid = ["lr=0.3,0.1,0.003,0.002,0.001", "hidden=16", "epochs=6"]
    results = sweep(grid, engine="ray", scheduler="asha", out=tmp_path / "asha")
    assert len(results.trials) == 5
    statuses = [t["status"] for t in results.trials]
    # NOTE: which trials ASHA stops depends on the order in which Ray's two workers report, so the
    # test asserts what holds in every order: each trial finished or was stopped, and is recorded so
    assert set(statuses) <= {"ok", "stopped"} and "ok" in statuses
    for trial in results.trials:
        metrics = json.loads((Path(trial["folder"]) / "metrics.json").read_text())
        assert metrics["status"] == trial["status"]
        if trial["status"] == "stopped":  # ended early by ASHA: its last scores, no model
            assert trial["model"] is None and 1 <= trial["epochs"] < 6
        else:
            assert Path(trial["model"]).is_file() and trial["epochs"] == 6
    assert results.best["status"] == "ok"
