"""``python -m benchmarks``: chainrule (eager and compiled) vs PyTorch vs NumPy by hand, per workload, in one table.

python -m benchmarks                      # full run (a few minutes), timing + peak memory
python -m benchmarks --smoke              # tiny sizes, one repetition, no memory probes (CI)
python -m benchmarks --only xor --only per_op --reps 9
python -m benchmarks --write docs/benchmarks.md --json results.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmarks import harness, report
from benchmarks.harness import Case
from benchmarks.workloads import WORKLOADS, select
from benchmarks.workloads.common import CHAINRULE_API

#: losses after a couple of steps must agree this closely across implementations (float32)
RTOL, ATOL = 1e-4, 1e-5
#: compile mode's implementation key
COMPILED = "chainrule_compiled"


def agreement(values: dict[str, list[float]]) -> tuple[bool, float]:
    """Whether chainrule's check values match every other implementation's, and the largest relative
    difference. PyTorch and NumPy must match within (RTOL, ATOL); compile mode promises eager
    chainrule's numbers bit for bit, so ``chainrule_compiled`` must match exactly."""
    ref = np.asarray(values["chainrule"], dtype=np.float64)
    ok, worst = True, 0.0
    for impl, vals in values.items():
        if impl == "chainrule":
            continue
        other = np.asarray(vals, dtype=np.float64)
        if other.shape != ref.shape or not np.all(np.isfinite(other)) or not np.all(np.isfinite(ref)):
            return False, float("inf")
        if impl == "chainrule_compiled":
            ok &= bool(np.array_equal(ref, other))
        else:
            ok &= bool(np.allclose(ref, other, rtol=RTOL, atol=ATOL))
        worst = max(worst, float(np.max(np.abs(ref - other) / np.maximum(np.abs(other), ATOL))))
    return ok, worst


def run_case(case: Case, settings: tuple[str, ...], reps: int | None = None) -> dict[str, Any]:
    """Check agreement, then time the case under every thread setting; returns the case's JSON record.

    ``speed_ratio``: eager chainrule's speed over torch's and numpy's; ``compiled_speed_ratio``
    (cases that run compile mode): ``chainrule_compiled``'s speed over each other implementation's.
    """
    impls = case.impls
    checks = {impl: [float(v) for v in case.check(impl)] for impl in impls}
    agree, worst = agreement(checks)
    timing = harness.time_case(case, impls, settings, reps)
    by_setting = {}
    for threads in settings:
        key = {impl: harness.variant(impl, threads) for impl in impls}
        by_setting[threads] = {
            "impls": {
                impl: {
                    "value": harness.display_value(case.unit, timing.median(key[impl])),
                    "throughput": timing.median(key[impl]),
                    "throughput_per_rep": timing.throughput[key[impl]],
                    "seconds_per_rep": timing.elapsed[key[impl]],
                }
                for impl in impls
            },
            "speed_ratio": {
                other: harness.summary(timing.ratios(key["chainrule"], key[other])) for other in ("torch", "numpy")
            },
        }
        if COMPILED in impls:
            by_setting[threads]["compiled_speed_ratio"] = {
                other: harness.summary(timing.ratios(key[COMPILED], key[other])) for other in impls if other != COMPILED
            }
    return {
        "name": case.name,
        "workload": case.workload,
        "title": case.title,
        "unit": case.unit,
        "detail": case.detail,
        "impls": list(impls),
        "reps": len(timing.throughput[harness.variant("chainrule", settings[0])]),
        "seconds": timing.seconds,
        "threads": by_setting,
        "check": checks,
        "agree": agree,
        "compiled_exact": checks["chainrule"] == checks[COMPILED] if COMPILED in checks else None,
        "max_rel_diff": worst,
        "notes": {k: dict(v) for k, v in case.notes.items()},
    }


def _settings(text: str) -> tuple[str, ...]:
    items = tuple(t.strip() for t in text.split(",") if t.strip())
    for t in items:
        if t != "default" and not (t.isdigit() and int(t) > 0):
            raise argparse.ArgumentTypeError(f"thread setting {t!r}: use 'default' or a positive count")
    if not items:
        raise argparse.ArgumentTypeError("give at least one thread setting")
    return items


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="chainrule vs PyTorch (eager, CPU) vs a hand-written NumPy floor, on the same math.",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, 1 repetition, no memory probes (seconds)")
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help=f"run only this workload or case (repeatable; workloads: {', '.join(WORKLOADS)})",
    )
    parser.add_argument("--reps", type=int, help="repetitions per case (default: per case, 4 to 7)")
    parser.add_argument(
        "--threads",
        type=_settings,
        metavar="LIST",
        help="thread settings to time, interleaved: 'default' (libraries left alone) and/or a count pinned for "
        "NumPy's BLAS and PyTorch (default: default,1; with --smoke: 1)",
    )
    parser.add_argument(
        "--api",
        choices=["core", "nn"],
        default="core",
        help="how the MLP workloads are written: core ops + manual SGD in both libraries (default), or each "
        "library's user API (nn layers, an nn loss module, optim.SGD)",
    )
    parser.add_argument("--memory", dest="memory", action="store_true", default=None, help="probe peak memory")
    parser.add_argument("--no-memory", dest="memory", action="store_false", help="skip the peak-memory probes")
    parser.add_argument("--write", metavar="PATH", help="write the results as Markdown (e.g. docs/benchmarks.md)")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    return parser


def _options(argv: Sequence[str]) -> list[str]:
    """The command's options that shape the results (without --write/--json and their paths)."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--write", "--json"):
            skip = True
        elif not arg.startswith(("--write=", "--json=")):
            kept.append(arg)
    return kept


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.reps is not None and args.reps < 1:
        raise SystemExit("--reps must be at least 1")
    if args.threads is None:
        args.threads = ("1",) if args.smoke else harness.THREAD_SETTINGS
    CHAINRULE_API["api"] = args.api
    started = time.perf_counter()
    cases = select(args.only, args.smoke, args.reps)
    info = report.system_info()
    info["chainrule_api"] = args.api
    for line in report.system_lines(info):
        print(line)
    mode = "smoke" if args.smoke else "full"
    print(f"mode            {mode}")
    print("speed ratio     chainrule speed / other speed, median over repetitions (min-max); >1: chainrule faster")
    print("threads         " + ", ".join(args.threads) + " (see benchmarks/harness.py)")

    records = []
    for k, case in enumerate(cases, 1):
        record = run_case(case, args.threads, args.reps)
        records.append(record)
        timing = record["threads"][args.threads[-1]]
        compiled = timing.get("compiled_speed_ratio")
        print(
            f"[{k}/{len(cases)}] {case.name}: {record['seconds']:.1f} s, "
            f"cr/torch speed {timing['speed_ratio']['torch']['median']:.2f}x"
            + (f", compiled/numpy speed {compiled['numpy']['median']:.2f}x" if compiled else "")
            + f" ({args.threads[-1]} threads)",
            file=sys.stderr,
            flush=True,
        )
    for threads in args.threads:
        print(f"\n{report.setting_title(threads, info)}")
        print("\n".join(report.results_table(records, threads)))

    memory = args.memory if args.memory is not None else not args.smoke
    if memory:
        from benchmarks.memory import measure_all

        print("\npeak memory above the starting RSS, one fresh process per implementation ...", flush=True)
        probes = measure_all([c.name for c in cases], {c.name: c.impls for c in cases}, args.smoke, api=args.api)
        for record in records:
            record["memory"] = probes[record["name"]]
        print("\n".join(report.memory_table(records)))

    for record in records:
        for label, per_impl in record["notes"].items():
            if per_impl:
                print(
                    f"{record['title']}: {label} "
                    + ", ".join(f"{harness.display(i)} {v:.4f}" for i, v in per_impl.items())
                )

    elapsed = time.perf_counter() - started
    print(f"\ntotal {elapsed:.1f} s")
    results = {
        "meta": info,
        "mode": mode,
        "threads": list(args.threads),
        "elapsed_s": elapsed,
        "cases": records,
        "options": _options(argv),
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if args.write:
        from benchmarks.markdown import write_markdown

        write_markdown(args.write, results)
        print(f"wrote {args.write}")
    if not all(r["agree"] for r in records):
        bad = ", ".join(r["name"] for r in records if not r["agree"])
        print(f"error: implementations disagree on: {bad}", file=sys.stderr)
        return 1
    return 0
