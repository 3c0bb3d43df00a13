"""The benchmark suite runs end to end in smoke mode and its implementations compute the same math.

No test here asserts a time: on a shared machine only the shape of the results is testable.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # plain `pytest` does not put the repository root on the path
    sys.path.insert(0, ROOT)

from benchmarks import cli, harness  # noqa: E402
from benchmarks.workloads import WORKLOADS, select  # noqa: E402

IMPLS = ("chainrule", "torch", "numpy")


def _run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One smoke run through the real command, both thread settings, JSON and Markdown written."""
    out = tmp_path_factory.mktemp("bench")
    done = _run("--smoke", "--threads", "default,1", "--json", str(out / "r.json"), "--write", str(out / "b.md"))
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "r.json").read_text())
    results["stdout"] = done.stdout
    results["markdown"] = (out / "b.md").read_text()
    return results


def test_smoke_covers_every_workload_and_implementation(smoke: dict) -> None:
    names = {c["name"] for c in smoke["cases"]}
    workloads = {c["workload"] for c in smoke["cases"]}
    assert workloads == set(WORKLOADS)
    assert {"per_op", "xor", "mnist_mlp_b32", "mnist_mlp_b128", "mnist_mlp_b1024", "deep_narrow"} <= names
    assert {"mnist_infer_b1024", "digits"} <= names
    for case in smoke["cases"]:
        assert set(case["threads"]) == {"default", "1"}
        for threads, timing in case["threads"].items():
            for impl in IMPLS:
                value = timing["impls"][impl]["value"]
                assert harness.finite_positive(value), (case["name"], threads, impl, value)
                assert all(harness.finite_positive(t) for t in timing["impls"][impl]["throughput_per_rep"])
            for other in ("torch", "numpy"):
                assert harness.finite_positive(timing["speed_ratio"][other]["median"])


def test_smoke_losses_agree_across_implementations(smoke: dict) -> None:
    for case in smoke["cases"]:
        ref = np.asarray(case["check"]["chainrule"])
        assert ref.size >= 2 and np.all(np.isfinite(ref)), case["name"]
        for other in ("torch", "numpy"):
            np.testing.assert_allclose(
                ref, case["check"][other], rtol=1e-4, atol=1e-5, err_msg=f"{case['name']}: chainrule vs {other}"
            )
        assert case["agree"] is True


def test_smoke_table_and_markdown(smoke: dict) -> None:
    for case in smoke["cases"]:
        assert case["title"] in smoke["stdout"]
        assert case["title"] in smoke["markdown"]
    for header in ("chainrule", "torch", "numpy", "cr/torch speed", "cr/numpy speed"):
        assert header in smoke["stdout"]
    meta = smoke["meta"]
    assert meta["cores"] >= 1 and meta["numpy"] and meta["torch"] and meta["torch_threads"] >= 1
    for needle in ("## Machine", "## Results", "## What the numbers say", "## How it is measured", meta["cpu"]):
        assert needle in smoke["markdown"]


def test_the_implementations_really_train() -> None:
    """The check values are training losses, so a broken update would show as a flat or rising loss."""
    from benchmarks.workloads.digits import train_digits

    (xor,) = select(["xor"], True, None)
    accuracies = {}
    for impl in IMPLS:
        losses = xor.check(impl)
        assert losses[-1] < losses[0], (impl, losses)
        _, accuracies[impl], seen = train_digits(impl, epochs=5)
        assert seen == 5 * 1437
    assert min(accuracies.values()) > 0.8, accuracies
    # same math, same data order: the same predictions, up to a borderline test image
    assert max(accuracies.values()) - min(accuracies.values()) <= 2 / 360, accuracies


def test_agreement_flags_a_mismatch() -> None:
    ok, _ = cli.agreement({"chainrule": [1.0, 2.0], "torch": [1.0, 2.0], "numpy": [1.0, 2.00001]})
    assert ok
    bad, worst = cli.agreement({"chainrule": [1.0, 2.0], "torch": [1.0, 2.1], "numpy": [1.0, 2.0]})
    assert not bad and worst > 0.04


def test_rotation_puts_each_implementation_first_in_turn() -> None:
    firsts = [harness.rotation(IMPLS, rep)[0] for rep in range(3)]
    assert sorted(firsts) == sorted(IMPLS)


def test_only_selects_workloads_and_rejects_unknown_names() -> None:
    cases = select(["xor", "mnist_mlp_b128"], True, None)
    assert [c.name for c in cases] == ["xor", "mnist_mlp_b128"]
    with pytest.raises(SystemExit, match="unknown workload"):
        select(["no_such_workload"], True, None)


def test_memory_probe_reports_a_finite_peak_per_implementation() -> None:
    from benchmarks.memory import measure_all

    probes = measure_all(["mnist_mlp_b128"], IMPLS, smoke=True)["mnist_mlp_b128"]
    for impl in IMPLS:
        assert math.isfinite(probes[impl]["rss_mib"]) and probes[impl]["rss_mib"] >= 0
    # the training step touches at least its activations and gradients (a few hundred KiB)
    assert probes["numpy"]["tracemalloc_mib"] > 0.1
    assert probes["chainrule"]["tracemalloc_mib"] > 0.1
    assert probes["torch"]["tracemalloc_mib"] is None
