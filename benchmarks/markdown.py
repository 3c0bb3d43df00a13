"""docs/benchmarks.md, written from one run's results (``python -m benchmarks --write PATH``).

Every number in the page, the interpretation included, comes from the results dict.
"""

from __future__ import annotations

import math
import os
import re
import shlex
from typing import Any

from benchmarks import report
from benchmarks.harness import IMPLS, MAX_CHUNK_S, display

#: microseconds per XOR step on the project's reference machine (from the benchmark brief), for context
REFERENCE_XOR_US = {"torch": 570, "numpy": 57}
#: the project's compile-mode target: the XOR net within 1.5x of the hand-written floor's time per step,
#: i.e. compiled speed / NumPy speed at least 1 / 1.5
XOR_COMPILED_TARGET = 1.5
#: the project's XOR target: at least this many times PyTorch's steps per second
XOR_TORCH_TARGET = 5
#: the project's memory target: an MLP epoch's peak at most this many times the NumPy floor's
MEMORY_TARGET = 1.2

#: how the MLP workloads are written, per ``--api``: both libraries, for the method section
WRITTEN_WITH = {
    "core": "core ops only (`chainrule.linear`, `relu`/`tanh`, the fused\n  `softmax_cross_entropy` or `sigmoid` "
    "and a squared error, `.mean()`, `backward()`, SGD as\n  `p.data -= lr * p.grad.data` on the arrays), so the "
    "benchmark does not depend on\n  `chainrule.nn`/`optim`. The PyTorch side mirrors it op for op\n  (`F.linear`, "
    "`F.log_softmax` + `F.nll_loss`, `p.sub_(lr * p.grad)` under `torch.no_grad`)",
    "nn": "each library's user API (`--api nn`): `chainrule.nn.MLP`, `nn.CrossEntropyLoss`/`nn.MSELoss`\n  and "
    "`optim.SGD` against `torch.nn.Sequential` of `nn.Linear` and activations, the same `torch.nn`\n  loss "
    "module and `torch.optim.SGD` (the per-op chain still uses core ops)",
}

REPRODUCE = (
    "The benchmarks need PyTorch (the reference) and threadpoolctl, which the `dev` extra installs: "
    "`make bench` and `make test` install it, `make run` does not (or run "
    "`.venv/bin/python -m pip install -e '.[dev]'`). Run the commands from the repository root "
    "with the virtual environment active (`source .venv/bin/activate`), or with `.venv/bin/python` "
    "in place of `python`:"
)

METHOD = """\
## How it is measured

* **Same math, three ways (four for training).** For every workload, chainrule, PyTorch
  (eager, CPU) and a hand-written NumPy version (explicit forward and backward, no autodiff)
  start from the same float32 weights and see the same arrays. Before timing, each trains a
  couple of steps from those weights and the losses must agree (rtol {rtol:g}, atol {atol:g}):
  the *agree* column.
* **How the MLPs are written**: {written_with}.
* **chainrule (compiled)**, on the training rows (XOR, MNIST MLP, deep narrow net, digits):
  the same chainrule step with the forward and the loss wrapped once per model in
  `chainrule.compile` (`loss = step_fn(x, y)` with the batch and the targets as arguments;
  zeroing the gradients, `loss.backward()` and the SGD update are the eager code). The first
  call with a batch shape traces the ops (the warm-up pays it; the digits run builds its model
  in every repetition, so there each repetition pays its traces); later calls replay forward
  and backward without building graph objects. Compile mode promises eager mode's numbers bit
  for bit, so its check losses must *equal* eager chainrule's, not just agree within rtol.
  The per-op chain and inference rows have no compiled variant ("-").
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
  other's microseconds per op over chainrule's. *compiled/torch speed* and *compiled/numpy
  speed* are the same for compiled chainrule against PyTorch and the NumPy floor. Only
  ratios measured in the same run mean anything here; absolute numbers swing with the
  machine's load.
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
  it is the one measure comparable across all of them (for compiled chainrule the first of
  those steps is its trace, an eager step plus the tape, as in a real run). glibc's mmap
  threshold is fixed at 128 KiB in every probe, so each large array maps and unmaps its own
  pages and the peak counts the arrays alive together, not holes the set-up left in the
  heap. The *tracemalloc*
  column repeats the work under `tracemalloc` for the NumPy-based implementations (NumPy
  reports its buffers to it); PyTorch's allocations are invisible to it. For compiled
  chainrule that column traces first and then counts the work, so it shows what the replay
  holds (except the digits run, which builds its model inside the work). Small workloads sit at the
  page/allocator granularity (a fraction of a MiB) and read as noise.
"""


def _geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def _ratio(case: dict[str, Any], threads: str, other: str) -> float:
    return case["threads"][threads]["speed_ratio"][other]["median"]


def _value(case: dict[str, Any], threads: str, impl: str) -> float:
    return case["threads"][threads]["impls"][impl]["value"]


COMPILED = "chainrule_compiled"


def _impls(case: dict[str, Any], threads: str) -> list[str]:
    """The implementations a case ran, in table order."""
    return [i for i in IMPLS if i in case["threads"][threads]["impls"]]


def _has_compiled(case: dict[str, Any], threads: str) -> bool:
    return "compiled_speed_ratio" in case["threads"][threads]


def _compiled_ratio(case: dict[str, Any], threads: str, other: str) -> float:
    """Compiled chainrule's speed / ``other``'s (median of the paired ratios)."""
    return case["threads"][threads]["compiled_speed_ratio"][other]["median"]


def interpretation(results: dict[str, Any]) -> list[str]:
    """Short findings, each computed from the results."""
    cases = {c["name"]: c for c in results["cases"]}
    settings = results["threads"]
    main = "1" if "1" in settings else settings[0]
    lines = [f"Read from the *{report.setting_title(main, results['meta']).split(': ', 1)[1]}* table unless said."]
    if "per_op" in cases:
        c = cases["per_op"]
        cr, th, np_ = (_value(c, main, i) for i in ("chainrule", "torch", "numpy"))
        r = _ratio(c, main, "torch")
        lines.append(
            f"* **Per-op overhead**: chainrule {cr:.1f} us per op (forward + backward), PyTorch {th:.1f} us, "
            f"NumPy by hand {np_:.1f} us. Target 1, chainrule's per-op time at most PyTorch's (speed ratio >= 1): "
            f"{'met' if r >= 1 else 'not met'} ({r:.2f}x). Target 2, at most half of PyTorch's (ratio >= 2): "
            f"{'met' if r >= 2 else 'not met'}. The NumPy floor ({np_:.1f} us) is what NumPy alone spends "
            + (
                f"per tiny op, so chainrule's own overhead is about {cr - np_:.1f} us per op."
                if cr >= np_
                else "per tiny op: chainrule is below it because its C kernels do the work of several NumPy "
                "calls in one (the sigmoid forward, the fused local gradients; docs/architecture.md)."
            )
        )
    if "xor" in cases:
        c = cases["xor"]
        us = {i: 1e6 / _value(c, main, i) for i in _impls(c, main)}
        text = (
            f"* **XOR** (4 samples, all overhead): chainrule {us['chainrule']:.0f} us per step, PyTorch "
            f"{us['torch']:.0f} us, NumPy by hand {us['numpy']:.0f} us (the project's reference machine "
            f"measured PyTorch ~{REFERENCE_XOR_US['torch']} us and NumPy ~{REFERENCE_XOR_US['numpy']} us)."
        )
        eager_torch = _ratio(c, main, "torch")
        text += f" Target, at least {XOR_TORCH_TARGET:g}x PyTorch's steps per second: eager chainrule " + (
            f"{'meets' if eager_torch >= XOR_TORCH_TARGET else 'does not meet'} it ({eager_torch:.2f}x)"
        )
        if COMPILED in us:
            compiled_torch = _compiled_ratio(c, main, "torch")
            text += (
                f", compiled chainrule {'meets' if compiled_torch >= XOR_TORCH_TARGET else 'does not meet'} it "
                f"({compiled_torch:.2f}x)"
            )
        text += "."
        if COMPILED in us:
            r = _compiled_ratio(c, main, "numpy")
            bound = 1 / XOR_COMPILED_TARGET
            text += (
                f" Compiled chainrule: {us[COMPILED]:.0f} us per step, {_compiled_ratio(c, main, 'chainrule'):.2f}x "
                f"eager chainrule's speed. Target, compiled within {XOR_COMPILED_TARGET:g}x of the NumPy floor "
                f"(compiled/numpy speed >= {bound:.2f}): {'met' if r >= bound else 'not met'} ({r:.2f}x, "
                f"i.e. {1 / r:.2f}x the floor's time per step)."
            )
        lines.append(text)
    mnist = [cases[n] for n in ("mnist_mlp_b32", "mnist_mlp_b128", "mnist_mlp_b1024") if n in cases]
    if mnist:
        parts = ", ".join(f"batch {c['name'].split('_b')[1]}: {_ratio(c, main, 'numpy'):.2f}x" for c in mnist)
        torch_parts = ", ".join(f"{_ratio(c, main, 'torch'):.2f}x" for c in mnist)
        compiled = ", ".join(f"{_compiled_ratio(c, main, 'numpy'):.2f}x" for c in mnist if _has_compiled(c, main))
        lines.append(
            f"* **MNIST-shaped MLP**: chainrule/NumPy-by-hand speed {parts}; chainrule/PyTorch {torch_parts}"
            + (f"; compiled chainrule/NumPy {compiled}" if compiled else "")
            + ". As the batch grows the matrix products dominate and every implementation converges on the "
            "BLAS; at small batches the gap is per-op overhead."
        )
    if "deep_narrow" in cases:
        c = cases["deep_narrow"]
        text = (
            f"* **Deep narrow net** (20 layers of 32: {2 * 20 - 1 + 1} recorded ops per forward and loss): "
            f"chainrule {_value(c, main, 'chainrule'):.0f} steps/s, {_ratio(c, main, 'torch'):.2f}x PyTorch's "
            f"speed and {_ratio(c, main, 'numpy'):.2f}x the NumPy floor's."
        )
        if _has_compiled(c, main):
            text += (
                f" Compiled: {_value(c, main, COMPILED):.0f} steps/s, {_compiled_ratio(c, main, 'numpy'):.2f}x "
                "the floor's."
            )
        lines.append(text)
    training = [c for c in results["cases"] if c["workload"] in ("xor", "mnist_mlp", "deep_narrow", "digits")]
    if training:
        g_torch = _geomean([_ratio(c, main, "torch") for c in training])
        g_numpy = _geomean([_ratio(c, main, "numpy") for c in training])
        text = (
            f"* **Overall** (geometric mean over the {len(training)} training rows): chainrule runs at "
            f"{g_torch:.2f}x PyTorch's speed and {g_numpy:.2f}x the hand-written NumPy floor's."
        )
        compiled_rows = [c for c in training if _has_compiled(c, main)]
        if compiled_rows:
            g_eager = _geomean([_compiled_ratio(c, main, "chainrule") for c in compiled_rows])
            g_cnumpy = _geomean([_compiled_ratio(c, main, "numpy") for c in compiled_rows])
            text += (
                f" Compiled chainrule: {g_eager:.2f}x eager chainrule's speed and {g_cnumpy:.2f}x the floor's "
                f"(over {len(compiled_rows)} rows)."
            )
        lines.append(text)
    # how library-default threading compared with pinned threads, per row and implementation, in this run
    speedups = [
        (_value(c, "default", i) / _value(c, main, i), c["title"], i)
        for c in results["cases"]
        if c["unit"] != "us/op" and "default" in settings and main != "default"
        for i in _impls(c, main)
    ]
    if speedups:
        worst, best = min(speedups), max(speedups)
        text = (
            f"* **Threads**: library-default threads against pinned, in this run: from {worst[0]:.2f}x "
            f"({display(worst[2])}, {worst[1]}) to {best[0]:.2f}x ({display(best[2])}, {best[1]})."
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
            f"* **Memory** (MNIST batch 128, peak RSS above start): chainrule {mem['chainrule']['rss_mib']:.1f} MiB"
            + (f", compiled chainrule {mem[COMPILED]['rss_mib']:.1f} MiB" if COMPILED in mem else "")
            + f", PyTorch {mem['torch']['rss_mib']:.1f} MiB, NumPy by hand {mem['numpy']['rss_mib']:.1f} MiB."
        )
    probed = [c for c in mnist if c.get("memory")]
    if probed:
        parts = []
        for c in probed:
            m = c["memory"]
            traced = [m[i].get("tracemalloc_mib") for i in ("chainrule", "numpy")]
            part = f"batch {c['name'].split('_b')[1]}: {m['chainrule']['rss_mib'] / m['numpy']['rss_mib']:.2f}x"
            if all(traced):
                part += f" ({traced[0] / traced[1]:.2f}x by tracemalloc)"
            parts.append(part)
        lines.append(
            f"* **Memory of an MLP epoch**, chainrule's peak over the NumPy floor's (target at most "
            f"{MEMORY_TARGET:g}x): {', '.join(parts)}. Peak RSS moves in whole pages and allocator arenas, "
            "so where the peaks are a few MiB a difference under one MiB reads as a large ratio; tracemalloc "
            "counts the arrays and Python objects themselves."
        )
    worst = max(c["max_rel_diff"] for c in results["cases"])
    agree = all(c["agree"] for c in results["cases"])
    exact = [c.get("compiled_exact") for c in results["cases"] if c.get("compiled_exact") is not None]
    text = (
        f"* **Agreement**: losses after a few steps {'agree' if agree else 'DO NOT agree'} across "
        f"chainrule, PyTorch and NumPy by hand on every workload (largest relative difference {worst:.1e})."
    )
    if exact:
        text += (
            f" Compiled chainrule's losses {'equal' if all(exact) else 'DO NOT equal'} eager chainrule's "
            f"bit for bit on {sum(exact)} of the {len(exact)} training rows."
        )
    lines.append(text)
    return lines


def render(results: dict[str, Any]) -> str:
    from benchmarks.cli import ATOL, RTOL

    info = results["meta"]
    options = "".join(f"{shlex.quote(o)} " for o in results.get("options", ()))
    out = [
        "# Benchmarks",
        "",
        "chainrule (eager, and compiled with `chainrule.compile` on the training rows) against PyTorch "
        "(eager, CPU) and against a hand-written NumPy floor, on the same math.",
        f"Written by `python -m benchmarks {options}--write {results.get('path', 'docs/benchmarks.md')}` "
        f"({results['mode']} run, {results['elapsed_s']:.0f} s); "
        + (
            "`make bench` runs the same command without `--write`, which prints the tables instead of "
            "writing this page."
            if not options
            else "the same command without `--write` prints the tables instead of writing this page."
        )
        + " Every number on this page comes from that run.",
        "",
        "## Machine",
        "",
        "```text",
        *report.system_lines(info),
        "```",
        "",
        "## Results",
        "",
        "Speed ratio = chainrule's speed / the other's (median over repetitions, smallest-largest in "
        "brackets); above 1 chainrule is faster. *chainrule (compiled)*: the same training step captured "
        "by `chainrule.compile` (training rows only); *compiled/torch speed* and *compiled/numpy speed* are "
        f"its speed over PyTorch's (the project's performance target for XOR: at least {XOR_TORCH_TARGET:g}x) "
        f"and over the NumPy floor's (target for XOR: within {XOR_COMPILED_TARGET:g}x of the floor, i.e. at least "
        f"{1 / XOR_COMPILED_TARGET:.2f}x). *agree*: the losses of the first steps match (compiled: exactly "
        "eager chainrule's).",
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
        f"* {c['title']}: {label} " + ", ".join(f"{display(i)} {per_impl[i]:.4f}" for i in IMPLS if i in per_impl)
        for c in results["cases"]
        for label, per_impl in c.get("notes", {}).items()
        if per_impl
    ]
    out += ["", "## What the numbers say", "", *interpretation(results), *notes]
    out += ["", "## Workloads", ""]
    out += [f"* **{c['title']}** (`{c['name']}`, {c['reps']} repetitions): {c['detail']}." for c in results["cases"]]
    written_with = WRITTEN_WITH[info.get("chainrule_api", "core")]
    out += ["", METHOD.format(rtol=RTOL, atol=ATOL, cap=MAX_CHUNK_S, written_with=written_with)]
    out += [
        "## Reproduce",
        "",
        REPRODUCE,
        "",
        "```sh",
        "python -m benchmarks                       # full run, both thread settings, memory probes",
        "python -m benchmarks --smoke               # seconds; what tests/test_benchmarks.py runs",
        "python -m benchmarks --only per_op --only xor --reps 9 --threads 1",
        "python -m benchmarks --write docs/benchmarks.md --json results.json",
        "python -m benchmarks.memory mnist_mlp_b128 chainrule   # one peak-memory probe",
        "```",
        "",
    ]
    return "\n".join(out)


_SECTION = re.compile(r"<!-- section: (?P<name>[\w-]+) -->\n.*?<!-- /section: (?P=name) -->\n", re.S)


def sections(text: str) -> dict[str, str]:
    """The marked sections of a page (what the tool benchmarks wrote), by name, markers included."""
    return {m.group("name"): m.group(0) for m in _SECTION.finditer(text)}


def _replace_file(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_section(path: str, name: str, body: str) -> None:
    """Put ``body`` into the page as the section ``name`` (replacing its earlier text, or at the end).

    The playground and sweep benchmarks (``python -m benchmarks.playground --write``, ...) write
    their measurements so; ``write_markdown`` keeps these sections when it rewrites the page.
    """
    block = f"<!-- section: {name} -->\n{body.rstrip()}\n<!-- /section: {name} -->\n"
    text = open(path).read() if os.path.exists(path) else ""
    old = sections(text).get(name)
    text = text.replace(old, block) if old else text.rstrip("\n") + "\n\n" + block
    _replace_file(path, text)


def write_markdown(path: str, results: dict[str, Any]) -> None:
    text = render({**results, "path": os.path.relpath(path)})
    kept = sections(open(path).read()) if os.path.exists(path) else {}
    if kept:
        text = text.rstrip("\n") + "\n\n" + "\n".join(kept.values())
    _replace_file(path, text)
