"""Profile one implementation on one benchmark case: where does the time go?

    python -m benchmarks.profile xor                     # cProfile, chainrule, top functions by self time
    python -m benchmarks.profile per_op mnist_mlp_b128 --top 30
    python -m benchmarks.profile xor --sampler           # pyinstrument's statistical call tree instead
    python -m benchmarks.profile xor --impl chainrule_compiled

cProfile counts every call exactly but adds a fixed cost to each, which inflates code
made of many tiny calls; the sampler (pyinstrument, if installed) does not, so use it
for proportions and cProfile for call counts. Threads are pinned to one (see harness).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from collections.abc import Sequence

from benchmarks.harness import IMPLS, NO_DEADLINE, thread_setting
from benchmarks.workloads import select


def hotspots(stats: pstats.Stats, top: int) -> list[tuple[str, float, float, int]]:
    """(function, self %, cumulative %, calls) for the ``top`` functions by self time."""
    raw = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for (_, _, tt, _, _) in raw.values()) or 1.0
    rows = []
    for (path, line, name), (_, calls, tt, ct, _) in raw.items():
        where = name if path == "~" else f"{path.split('site-packages/')[-1].split('/work/main/')[-1]}:{line} {name}"
        rows.append((where, 100 * tt / total, 100 * ct / total, calls))
    rows.sort(key=lambda r: -r[1])
    return rows[:top]


def profile_case(name: str, impl: str, reps: int, top: int, sampler: bool) -> str:
    (case,) = [c for c in select([name], False, None) if c.name == name]
    with thread_setting("1"):
        runner = case.make(impl, False)
        runner.warmup()
        if sampler:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0005)
            profiler.start()
            for rep in range(reps):
                runner.chunk(rep, NO_DEADLINE)
            profiler.stop()
            return profiler.output_text(unicode=False, color=False, show_all=False)
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.enable()
        for rep in range(reps):
            runner.chunk(rep, NO_DEADLINE)
        prof.disable()
        elapsed = time.perf_counter() - t0
    stats = pstats.Stats(prof, stream=io.StringIO())
    lines = [f"{name} / {impl}: {elapsed:.2f} s under cProfile, top {top} by self time", ""]
    lines.append(f"{'self %':>7} {'cum %':>7} {'calls':>9}  function")
    for where, self_pct, cum_pct, calls in hotspots(stats, top):
        lines.append(f"{self_pct:7.1f} {cum_pct:7.1f} {calls:9d}  {where}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="+", help="case names, e.g. per_op xor mnist_mlp_b128")
    parser.add_argument("--impl", default="chainrule", choices=list(IMPLS))
    parser.add_argument("--reps", type=int, default=2, help="repetitions (slices of the case) to profile")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sampler", action="store_true", help="use pyinstrument instead of cProfile")
    args = parser.parse_args(argv)
    for name in args.cases:
        print(profile_case(name, args.impl, args.reps, args.top, args.sampler))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
