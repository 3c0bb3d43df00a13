"""docs/benchmarks.md, written from one run's results (``python -m benchmarks --write PATH``).

Every number in the page, the interpretation included, comes from the results dict.
"""

from __future__ import annotations

import math
import os
from typing import Any

from benchmarks import report
from benchmarks.harness import IMPLS, MAX_CHUNK_S

#: microseconds per XOR step on the project's reference machine (from the benchmark brief), for context
REFERENCE_XOR_US = {"torch": 570, "numpy": 57}

CHAINRULE_SIDE = {
    "core": "core ops only (`chainrule.linear`, `relu`/`tanh`, `log_softmax`,\n  indexing, `.mean()`, "
    "`backward()`, SGD as `p.data -= lr * p.grad` under `no_grad`), so the\n  benchmark does not depend on "
    "`chainrule.nn`/`optim`",
    "nn": "`chainrule.nn.MLP`, `nn.CrossEntropyLoss`/`nn.MSELoss` and `optim.SGD`\n  (`--api nn`; the per-op "
    "chain still uses core ops)",
}

METHOD = """\
## How it is measured

* **Same math, three ways.** For every workload, chainrule, PyTorch (eager, CPU) and a
  hand-written NumPy version (explicit forward and backward, no autodiff) start from the
  same float32 weights and see the same arrays. Before timing, each trains a couple of steps
  from those weights and the losses must agree (rtol {rtol:g}, atol {atol:g}): the *agree* column.
* **chainrule side**: {chainrule_side}. The PyTorch side mirrors the core-ops version op for op
  (`F.linear`, `F.log_softmax` + `F.nll_loss`, `p.sub_(lr * p.grad)` under `torch.no_grad`).
* **Interleaved repetitions.** All implementations run in one process; each repetition runs
  every implementation once, in an order that rotates, so the machine's drift (it is shared
  and noisy) hits them alike. An epoch (or step budget) is cut into as many slices as there
  are repetitions and every implementation trains the same slice in turn. A repetition stops
  early after {cap:g} s (the work done is counted), so a stalled thread setting cannot stretch
  the run. Everything is warmed up first; the garbage collector stays on but is emptied
  before each repetition.
* **Medians and paired ratios.** Values are medians over repetitions. *Speed ratio* =
  chainrule's speed / the other's speed, computed within each repetition and reported as the
  median (smallest-largest): above 1 chainrule is faster; for the per-op row it is the
  other's microseconds per op over chainrule's. Only ratios measured in the same run mean
  anything here; absolute numbers swing with the machine's load.
* **Threads.** *library defaults* leaves `torch.set_num_threads` and NumPy's BLAS alone;
  *1* pins both to one thread (threadpoolctl for NumPy's BLAS). Both settings are interleaved
  in the same repetitions. With default threads, two thread pools (OpenBLAS's, whose workers
  busy-wait for a while after each NumPy matrix product, and PyTorch's OpenMP pool) share the
  2 cores of this process, and when the machine has other load a parallel region stalls
  whenever its worker is descheduled: then the default-thread rows that use matrix products
  turn erratic, by far more than the machine's usual drift, and penalise whichever library
  runs next. When the machine is quiet, two threads help the large matrix products. The
  pinned table is the one to compare runs with.
* **Peak memory** (separate processes, one per implementation and workload): NumPy, PyTorch
  and chainrule are all imported, the workload is set up (data, weights), the kernel's
  peak-RSS mark is reset (`/proc/self/clear_refs`), a short representative piece of work runs
  from cold (a few training steps; one forward + backward of the chain) and the reported
  number is the peak RSS (`VmHWM`) minus the RSS before the work: everything the work
  touched, arrays, graph objects, allocator caches and PyTorch's buffers alike, which is why
  it is the one measure comparable across all three. The *tracemalloc* column repeats the
  work under `tracemalloc` for the two NumPy-based implementations (NumPy reports its
  buffers to it); PyTorch's allocations are invisible to it. Small workloads sit at the
  page/allocator granularity (a fraction of a MiB) and read as noise.
"""


def _geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def _ratio(case: dict[str, Any], threads: str, other: str) -> float:
    return case["threads"][threads]["speed_ratio"][other]["median"]


def _value(case: dict[str, Any], threads: str, impl: str) -> float:
    return case["threads"][threads]["impls"][impl]["value"]


def interpretation(results: dict[str, Any]) -> list[str]:
    """Short findings, each computed from the results."""
    cases = {c["name"]: c for c in results["cases"]}
    settings = results["threads"]
    main = "1" if "1" in settings else settings[0]
    lines = [f"Read from the *{report.setting_title(main, results['meta']).split(': ', 1)[1]}* table unless said."]
    if "per_op" in cases:
        c = cases["per_op"]
        cr, th, np_ = (_value(c, main, i) for i in IMPLS)
        r = _ratio(c, main, "torch")
        lines.append(
            f"* **Per-op overhead**: chainrule {cr:.1f} us per op (forward + backward), PyTorch {th:.1f} us, "
            f"NumPy by hand {np_:.1f} us. Target 1, chainrule's per-op time at most PyTorch's (speed ratio >= 1): "
            f"{'met' if r >= 1 else 'not met'} ({r:.2f}x). Target 2, at most half of PyTorch's (ratio >= 2): "
            f"{'met' if r >= 2 else 'not met'}. The floor a Python engine on NumPy cannot beat is about "
            f"{np_:.1f} us (what NumPy alone spends per tiny op), so chainrule's own overhead is about "
            f"{max(cr - np_, 0):.1f} us per op."
        )
    if "xor" in cases:
        c = cases["xor"]
        us = {i: 1e6 / _value(c, main, i) for i in IMPLS}
        lines.append(
            f"* **XOR** (4 samples, all overhead): chainrule {us['chainrule']:.0f} us per step, PyTorch "
            f"{us['torch']:.0f} us, NumPy by hand {us['numpy']:.0f} us (the project's reference machine "
            f"measured PyTorch ~{REFERENCE_XOR_US['torch']} us and NumPy ~{REFERENCE_XOR_US['numpy']} us)."
        )
    mnist = [cases[n] for n in ("mnist_mlp_b32", "mnist_mlp_b128", "mnist_mlp_b1024") if n in cases]
    if mnist:
        parts = ", ".join(f"batch {c['name'].split('_b')[1]}: {_ratio(c, main, 'numpy'):.2f}x" for c in mnist)
        torch_parts = ", ".join(f"{_ratio(c, main, 'torch'):.2f}x" for c in mnist)
        lines.append(
            f"* **MNIST-shaped MLP**: chainrule/NumPy-by-hand speed {parts}; chainrule/PyTorch {torch_parts}. "
            "As the batch grows the matrix products dominate and every implementation converges on the "
            "BLAS; at small batches the gap is per-op overhead."
        )
    if "deep_narrow" in cases:
        c = cases["deep_narrow"]
        lines.append(
            f"* **Deep narrow net** (20 layers of 32: {2 * 20 - 1 + 4} recorded ops per forward): chainrule "
            f"{_value(c, main, 'chainrule'):.0f} steps/s, {_ratio(c, main, 'torch'):.2f}x PyTorch's speed and "
            f"{_ratio(c, main, 'numpy'):.2f}x the NumPy floor's."
        )
    training = [c for c in results["cases"] if c["workload"] in ("xor", "mnist_mlp", "deep_narrow", "digits")]
    if training:
        g_torch = _geomean([_ratio(c, main, "torch") for c in training])
        g_numpy = _geomean([_ratio(c, main, "numpy") for c in training])
        lines.append(
            f"* **Overall** (geometric mean over the {len(training)} training rows): chainrule runs at "
            f"{g_torch:.2f}x PyTorch's speed and {g_numpy:.2f}x the hand-written NumPy floor's."
        )
    # how library-default threading compared with pinned threads, per row and implementation, in this run
    speedups = [
        (_value(c, "default", i) / _value(c, main, i), c["title"], i)
        for c in results["cases"]
        if c["unit"] != "us/op" and "default" in settings and main != "default"
        for i in IMPLS
    ]
    if speedups:
        worst, best = min(speedups), max(speedups)
        text = (
            f"* **Threads**: library-default threads against pinned, in this run: from {worst[0]:.2f}x "
            f"({worst[2]}, {worst[1]}) to {best[0]:.2f}x ({best[2]}, {best[1]})."
        )
        if worst[0] < 0.5:
            text += (
                " The slow end is thread-pool interference, not the library: NumPy's OpenBLAS workers "
                "busy-wait after each NumPy matrix product and share the 2 cores with PyTorch's OpenMP "
                "workers and with the machine's other load, and each parallel region waits for a "
                "descheduled worker. The pinned table is the comparison to use."
            )
        lines.append(text)
    mem = cases.get("mnist_mlp_b128", {}).get("memory")
    if mem:
        lines.append(
            f"* **Memory** (MNIST batch 128, peak RSS above start): chainrule {mem['chainrule']['rss_mib']:.1f} MiB, "
            f"PyTorch {mem['torch']['rss_mib']:.1f} MiB, NumPy by hand {mem['numpy']['rss_mib']:.1f} MiB."
        )
    worst = max(c["max_rel_diff"] for c in results["cases"])
    agree = all(c["agree"] for c in results["cases"])
    lines.append(
        f"* **Agreement**: losses after a few steps {'agree' if agree else 'DO NOT agree'} across all three "
        f"implementations on every workload (largest relative difference {worst:.1e})."
    )
    return lines


def render(results: dict[str, Any]) -> str:
    from benchmarks.cli import ATOL, RTOL

    info = results["meta"]
    out = [
        "# Benchmarks",
        "",
        "chainrule against PyTorch (eager, CPU) and against a hand-written NumPy floor, on the same math.",
        f"Written by `python -m benchmarks --write {results.get('path', 'docs/benchmarks.md')}` "
        f"({results['mode']} run, {results['elapsed_s']:.0f} s); `make bench` runs the same command without "
        "`--write`. Every number on this page comes from that run.",
        "",
        "## Machine",
        "",
        "```",
        *report.system_lines(info),
        "```",
        "",
        "## Results",
        "",
        "Speed ratio = chainrule's speed / the other's (median over repetitions, smallest-largest in "
        "brackets); above 1 chainrule is faster. *agree*: the losses of the first steps match.",
    ]
    for threads in results["threads"]:
        title = report.setting_title(threads, info)
        out += ["", f"### {title[0].upper()}{title[1:]}", ""]
        out += report.results_table(results["cases"], threads, markdown=True)
    memory = report.memory_table(results["cases"], markdown=True)
    if memory:
        out += ["", "## Peak memory", "", "Peak resident memory above the start of the work, in MiB (see below).", ""]
        out += memory
    notes = [
        f"* {c['title']}: {label} " + ", ".join(f"{i} {per_impl[i]:.4f}" for i in IMPLS if i in per_impl)
        for c in results["cases"]
        for label, per_impl in c.get("notes", {}).items()
        if per_impl
    ]
    out += ["", "## What the numbers say", "", *interpretation(results), *notes]
    out += ["", "## Workloads", ""]
    out += [f"* **{c['title']}** (`{c['name']}`, {c['reps']} repetitions): {c['detail']}." for c in results["cases"]]
    side = CHAINRULE_SIDE[info.get("chainrule_api", "core")]
    out += ["", METHOD.format(rtol=RTOL, atol=ATOL, cap=MAX_CHUNK_S, chainrule_side=side)]
    out += [
        "## Reproduce",
        "",
        "```",
        "python -m benchmarks                       # full run, both thread settings, memory probes",
        "python -m benchmarks --smoke               # seconds; what tests/test_benchmarks.py runs",
        "python -m benchmarks --only per_op --only xor --reps 9 --threads 1",
        "python -m benchmarks --write docs/benchmarks.md --json results.json",
        "python -m benchmarks.memory mnist_mlp_b128 chainrule   # one peak-memory probe",
        "```",
        "",
    ]
    return "\n".join(out)


def write_markdown(path: str, results: dict[str, Any]) -> None:
    text = render({**results, "path": os.path.relpath(path)})
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
