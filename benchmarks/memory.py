"""Peak memory of one implementation on one case, each in a fresh subprocess.

The measure, comparable across all implementations: the *peak resident set size
above the resident size just before the work starts*. In the subprocess, NumPy, PyTorch
and chainrule are all imported (so every process starts alike), the case is set up
(data, initial weights), the kernel's peak-RSS mark is reset (``/proc/self/clear_refs``),
a short representative piece of work runs from cold (a few training steps, one
forward + backward of the chain, ...) and the peak (``VmHWM``) minus the starting
resident size is reported. It counts everything the work touches: arrays, graph
objects, allocator caches, PyTorch's own buffers. Where the mark cannot be reset, the
``ru_maxrss`` increase is used instead (it can only under-report).

Every probe runs with glibc's mmap threshold fixed at its usual starting value
(``MALLOC_MMAP_THRESHOLD_``, 128 KiB): an array above it gets its own mapping and returns
it when freed, so the peak counts the arrays alive together. Left dynamic, glibc raises
the threshold after the first large free and serves later arrays from the heap, where
whatever holes the *set-up* left behind are reused for free: the peak then depends on
how the set-up happened to fragment the heap (measured at MNIST batch 32: the NumPy floor
1.6 MiB with the dynamic threshold, 2.2-2.4 MiB with the fixed one, where tracemalloc
counts 1.6 MiB of arrays at the peak; chainrule 2.4 and 2.2-2.3 MiB).

As a second view for the NumPy-based implementations, ``tracemalloc``'s peak over
the same work (NumPy reports its array buffers to tracemalloc, and Python objects are
traced too) shows how much of the peak is the graph's saved arrays and objects.
PyTorch's allocations are invisible to tracemalloc, so it has no such number.

``chainrule_compiled``: the peak-RSS work starts from cold like the others, so its first
step is the trace (an eager step plus the tape) and the number is the peak a compiled
run really reaches. Its tracemalloc view instead traces first (``Runner.prime``: one call
and its backward, no update) and then counts the same work, so it shows what the
replayed steps hold. (Tracing before the RSS mark would not do: the allocator keeps the
trace's freed pages and the replay reuses them, which reads as less than the NumPy floor.)
The digits run builds its model inside the work, so both of its views include the traces.

Run one probe by hand: ``python -m benchmarks.memory mnist_mlp_b128 chainrule [--smoke]``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gc
import json
import os
import resource
import subprocess
import sys
import tracemalloc
from collections.abc import Mapping, Sequence
from typing import Any

from benchmarks.harness import IMPLS

MIB = 1024 * 1024
#: glibc's starting mmap threshold, fixed for every probe (see the module docstring)
MMAP_THRESHOLD = "131072"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def probe(case_name: str, impl: str, smoke: bool, api: str = "core") -> dict[str, Any]:
    """Measure in *this* process (run it in a fresh one: see ``measure``)."""
    import numpy  # noqa: F401
    import torch  # noqa: F401

    import chainrule  # noqa: F401  (all libraries loaded in every probe)
    from benchmarks.harness import NO_DEADLINE
    from benchmarks.workloads import select
    from benchmarks.workloads.common import CHAINRULE_API

    CHAINRULE_API["api"] = api

    (case,) = [c for c in select([case_name], smoke, None) if c.name == case_name]
    runner = case.make(impl, True)
    gc.collect()
    if _reset_peak():
        start = _status_kib("VmRSS")
        runner.chunk(0, NO_DEADLINE)
        rss_kib, method = _status_kib("VmHWM") - start, "VmHWM - VmRSS"
    else:
        start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        runner.chunk(0, NO_DEADLINE)
        rss_kib, method = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start, "ru_maxrss delta"
    traced = None
    if impl != "torch":
        runner = case.make(impl, True)
        runner.prime()
        gc.collect()
        tracemalloc.start()
        runner.chunk(0, NO_DEADLINE)
        traced = tracemalloc.get_traced_memory()[1] / MIB
        tracemalloc.stop()
    return {
        "rss_mib": max(rss_kib, 0) / 1024,
        "tracemalloc_mib": traced,
        "method": method,
        "mmap_threshold": os.environ.get("MALLOC_MMAP_THRESHOLD_"),
    }


def measure(case_name: str, impl: str, smoke: bool, api: str = "core", timeout: float = 300) -> dict[str, Any]:
    """Run ``probe`` in a fresh Python process and return what it reports."""
    cmd = [sys.executable, "-m", "benchmarks.memory", case_name, impl, "--api", api] + (["--smoke"] if smoke else [])
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": MMAP_THRESHOLD}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"memory probe {case_name}/{impl} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_all(
    case_names: Sequence[str],
    impls: Sequence[str] | Mapping[str, Sequence[str]],
    smoke: bool,
    jobs: int = 2,
    api: str = "core",
) -> dict[str, dict[str, dict[str, Any]]]:
    """Probe every (case, implementation) pair, ``jobs`` subprocesses at a time.

    ``impls``: the implementations to probe for every case, or a mapping case -> its implementations.
    """
    per_case = impls if isinstance(impls, Mapping) else dict.fromkeys(case_names, impls)
    pairs = [(c, i) for c in case_names for i in per_case[c]]
    out: dict[str, dict[str, dict[str, Any]]] = {c: {} for c in case_names}
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(measure, c, i, smoke, api): (c, i) for c, i in pairs}
        for future in concurrent.futures.as_completed(futures):
            c, i = futures[future]
            out[c][i] = future.result()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__.splitlines()[0])
    parser.add_argument("case")
    parser.add_argument("impl", choices=list(IMPLS))
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--api", choices=["core", "nn"], default="core")
    args = parser.parse_args(argv)
    print(json.dumps(probe(args.case, args.impl, args.smoke, args.api)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
