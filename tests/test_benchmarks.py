"""The benchmark suite runs end to end in smoke mode and its implementations compute the same math
(compile mode: exactly eager chainrule's numbers).

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

import chainrule as cr

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # plain `pytest` does not put the repository root on the path
    sys.path.insert(0, ROOT)

from benchmarks import cli, harness  # noqa: E402
from benchmarks.workloads import WORKLOADS, select  # noqa: E402

IMPLS = harness.IMPLS  # chainrule, torch, numpy, chainrule_compiled
BASE = harness.BASE_IMPLS  # the three every case runs
COMPILED = "chainrule_compiled"
#: the workloads whose cases also run compile mode
TRAINING = {"xor", "mnist_mlp", "deep_narrow", "digits"}


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
        compiled = case["workload"] in TRAINING
        assert case["impls"] == list(IMPLS if compiled else BASE), case["name"]
        for threads, timing in case["threads"].items():
            assert set(timing["impls"]) == set(case["impls"])
            for impl in case["impls"]:
                value = timing["impls"][impl]["value"]
                assert harness.finite_positive(value), (case["name"], threads, impl, value)
                assert all(harness.finite_positive(t) for t in timing["impls"][impl]["throughput_per_rep"])
                assert len(timing["impls"][impl]["throughput_per_rep"]) == case["reps"]
            for other in ("torch", "numpy"):
                assert harness.finite_positive(timing["speed_ratio"][other]["median"])
            if compiled:
                for other in BASE:
                    assert harness.finite_positive(timing["compiled_speed_ratio"][other]["median"])
            else:
                assert "compiled_speed_ratio" not in timing


def test_smoke_losses_agree_across_implementations(smoke: dict) -> None:
    for case in smoke["cases"]:
        ref = np.asarray(case["check"]["chainrule"])
        assert ref.size >= 2 and np.all(np.isfinite(ref)), case["name"]
        for other in ("torch", "numpy"):
            np.testing.assert_allclose(
                ref, case["check"][other], rtol=1e-4, atol=1e-5, err_msg=f"{case['name']}: chainrule vs {other}"
            )
        if case["workload"] in TRAINING:
            # compile mode replays eager mode's op rules in eager order: the same losses, bit for bit
            assert case["check"][COMPILED] == case["check"]["chainrule"], case["name"]
            assert case["compiled_exact"] is True
        else:
            assert COMPILED not in case["check"] and case["compiled_exact"] is None
        assert case["agree"] is True


def test_smoke_table_and_markdown(smoke: dict) -> None:
    for case in smoke["cases"]:
        assert case["title"] in smoke["stdout"]
        assert case["title"] in smoke["markdown"]
    for header in ("chainrule", "torch", "numpy", "chainrule (compiled)", "cr/torch speed", "cr/numpy speed"):
        assert header in smoke["stdout"]
        assert header in smoke["markdown"]
    assert "compiled/numpy speed" in smoke["stdout"] and "compiled/numpy speed" in smoke["markdown"]
    # the report says which engine ran: a table from the pure-Python engine must not pass for the C one
    engine = "C bookkeeping (chainrule.backend._speedups)" if cr.backend.accelerated() else "pure Python"
    assert f"engine: {engine}" in smoke["markdown"] and f"engine: {engine}" in smoke["stdout"]
    # rows without compile mode show "-" in its value and ratio columns (first Markdown table)
    rows = {}
    for line in smoke["markdown"].splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows.setdefault(cells[0], cells)
    columns = rows["workload"]
    assert columns[-5:] == ["cr/torch speed", "cr/numpy speed", "compiled/torch speed", "compiled/numpy speed", "agree"]
    titles = {c["name"]: c["title"] for c in smoke["cases"]}
    for name in ("per_op", "mnist_infer_b32"):
        assert rows[titles[name]][columns.index("chainrule (compiled)")] == "-"
        assert rows[titles[name]][columns.index("compiled/numpy speed")] == "-"
        assert rows[titles[name]][columns.index("compiled/torch speed")] == "-"
    assert rows[titles["xor"]][columns.index("compiled/numpy speed")].endswith(("x", ")"))
    assert rows[titles["xor"]][columns.index("compiled/torch speed")].endswith(("x", ")"))
    # the interpretation states the XOR targets: compiled within 1.5x of the NumPy floor, 5x PyTorch's speed
    assert "within 1.5x of the NumPy floor (compiled/numpy speed >= 0.67)" in smoke["markdown"]
    assert "at least 5x PyTorch's steps per second: eager chainrule" in smoke["markdown"]
    # the per-op finding says whether chainrule's time per op is above the NumPy floor's or below it
    (per_op,) = (c for c in smoke["cases"] if c["name"] == "per_op")
    times = {i: per_op["threads"]["1"]["impls"][i]["value"] for i in ("chainrule", "numpy")}  # us per op
    below = times["chainrule"] < times["numpy"]
    assert ("chainrule is below it because its C kernels" in smoke["markdown"]) == below
    assert ("so chainrule's own overhead is about" in smoke["markdown"]) == (not below)
    meta = smoke["meta"]
    assert meta["cores"] >= 1 and meta["numpy"] and meta["torch"] and meta["torch_threads"] >= 1
    for needle in ("## Machine", "## Results", "## What the numbers say", "## How it is measured", meta["cpu"]):
        assert needle in smoke["markdown"]


def test_the_implementations_really_train() -> None:
    """The check values are training losses, so a broken update would show as a flat or rising loss."""
    from benchmarks.workloads.digits import train_digits

    (xor,) = select(["xor"], True, None)
    accuracies = {}
    for impl in xor.impls:
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
    # compile mode must match eager chainrule exactly: a difference torch or numpy may have is a mismatch
    same = {"chainrule": [1.0, 2.0], "torch": [1.0, 2.00001], "numpy": [1.0, 2.0]}
    ok, _ = cli.agreement({**same, COMPILED: [1.0, 2.0]})
    assert ok
    bad, _ = cli.agreement({**same, COMPILED: [1.0, 2.00001]})
    assert not bad


def test_compiled_step_equals_eager_over_an_epoch_with_a_smaller_last_batch() -> None:
    """The digits epoch ends with a batch of 29 (a second traced signature): every loss equal to eager's."""
    from benchmarks.workloads.digits import train_digits

    eager, eager_acc, _ = train_digits("chainrule", 1)
    compiled, compiled_acc, _ = train_digits(COMPILED, 1)
    assert len(compiled) == 45 and compiled == eager
    assert compiled_acc == eager_acc


def test_compiled_step_with_the_nn_api_equals_eager() -> None:
    from benchmarks.workloads.common import CHAINRULE_API, MLPSpec, init_layers, make_mlp

    before = CHAINRULE_API["api"]
    CHAINRULE_API["api"] = "nn"
    try:
        for case in select(["xor", "mnist_mlp_b32", "deep_narrow"], True, None):
            assert case.check(COMPILED) == case.check("chainrule"), case.name
            # PyTorch through its own nn API (nn.Sequential, nn loss module, optim.SGD) agrees too
            assert type(make_mlp("torch", MLPSpec((2, 3, 1)), init_layers((2, 3, 1), 0))).__name__ == "TorchNNMLP"
            np.testing.assert_allclose(case.check("torch"), case.check("chainrule"), rtol=1e-4, atol=1e-5)
    finally:
        CHAINRULE_API["api"] = before


def test_only_training_cases_run_compile_mode() -> None:
    for case in select(None, True, None):
        assert case.impls == (IMPLS if case.workload in TRAINING else BASE), case.name


def test_rotation_puts_each_implementation_first_in_turn() -> None:
    firsts = [harness.rotation(IMPLS, rep)[0] for rep in range(len(IMPLS))]
    assert sorted(firsts) == sorted(IMPLS)


def test_only_selects_workloads_and_rejects_unknown_names() -> None:
    cases = select(["xor", "mnist_mlp_b128"], True, None)
    assert [c.name for c in cases] == ["xor", "mnist_mlp_b128"]
    with pytest.raises(SystemExit, match="unknown workload"):
        select(["no_such_workload"], True, None)


def test_memory_probe_reports_a_finite_peak_per_implementation() -> None:
    from benchmarks.memory import MMAP_THRESHOLD, measure_all

    probes = measure_all(["mnist_mlp_b128"], IMPLS, smoke=True)["mnist_mlp_b128"]
    for impl in IMPLS:
        assert math.isfinite(probes[impl]["rss_mib"]) and probes[impl]["rss_mib"] >= 0
    # the training step touches at least its activations and gradients (a few hundred KiB)
    assert probes["numpy"]["tracemalloc_mib"] > 0.1
    assert probes["chainrule"]["tracemalloc_mib"] > 0.1
    assert probes[COMPILED]["tracemalloc_mib"] > 0.1
    assert probes["torch"]["tracemalloc_mib"] is None
    # every probe runs with the same fixed mmap threshold (peaks count live arrays, not heap holes)
    assert {probes[impl]["mmap_threshold"] for impl in IMPLS} == {MMAP_THRESHOLD}


def test_memory_probes_follow_each_cases_implementations() -> None:
    from benchmarks.memory import measure_all

    probes = measure_all(["xor", "mnist_infer_b32"], {"xor": (COMPILED,), "mnist_infer_b32": ("numpy",)}, smoke=True)
    assert set(probes["xor"]) == {COMPILED} and set(probes["mnist_infer_b32"]) == {"numpy"}
    assert math.isfinite(probes["xor"][COMPILED]["rss_mib"])


def test_report_names_the_command_that_made_it(smoke: dict) -> None:
    # docs/benchmarks*.md say how to reproduce them: the options that shape the run, not the output paths
    options = ["--api", "nn", "--only", "xor", "--write", "x.md", "--json=y.json", "--smoke"]
    assert cli._options(options) == ["--api", "nn", "--only", "xor", "--smoke"]
    assert smoke["options"] == ["--smoke", "--threads", "default,1"]
    assert "Written by `python -m benchmarks --smoke --threads default,1 --write " in smoke["markdown"]


def test_tool_sections_are_written_and_survive_a_rewrite(tmp_path, smoke):
    from benchmarks.markdown import sections, write_markdown, write_section

    page = tmp_path / "benchmarks.md"
    page.write_text("# Benchmarks\n\nold tables\n")
    write_section(str(page), "sweep", "## Sweeps\n\nfirst")
    write_section(str(page), "playground", "## Playground\n\n300 frames/s")
    write_section(str(page), "sweep", "## Sweeps\n\nsecond")  # replaced in place, not appended
    text = page.read_text()
    assert text.count("## Sweeps") == 1 and "second" in text and "first" not in text
    kept = sections(text)
    assert list(kept) == ["sweep", "playground"]
    results = {k: v for k, v in smoke.items() if k not in ("stdout", "markdown")}
    write_markdown(str(page), results)  # the main run rewrites its tables and keeps the tools' sections
    rewritten = page.read_text()
    assert "old tables" not in rewritten and sections(rewritten) == kept
