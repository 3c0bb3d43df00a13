"""What the run prints and writes: system facts, the results table, the memory table, docs/benchmarks.md."""

from __future__ import annotations

import datetime
import math
import os
import platform
import re
import subprocess
from typing import Any

from benchmarks.harness import IMPLS, display


# --------------------------------------------------------------------- system facts
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit() -> str:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "chainrule"], cwd=root, capture_output=True, text=True)
    except OSError:
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip() + (" + uncommitted changes in chainrule/" if dirty.stdout.strip() else "")


def system_info() -> dict[str, Any]:
    """Where the numbers come from: machine, library versions, thread counts, BLAS."""
    import numpy as np
    import torch
    from threadpoolctl import threadpool_info

    import chainrule

    blas = [
        {k: info.get(k) for k in ("internal_api", "version", "num_threads", "threading_layer", "architecture")}
        | {"library": os.path.basename(info.get("filepath", ""))}
        for info in threadpool_info()
        if info.get("user_api") == "blas" and "numpy" in info.get("filepath", "")
    ]
    config = torch.__config__.show()
    torch_blas = re.search(r"BLAS_INFO=(\w+)", config)
    mkl = re.search(r"Math Kernel Library Version ([\w.\-]+)", config)
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numpy_blas": blas,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "torch_blas": (torch_blas.group(1) if torch_blas else "unknown") + (f" {mkl.group(1)}" if mkl else ""),
        "chainrule": chainrule.__version__,
        "commit": _git_commit(),
        "engine": "C bookkeeping (chainrule.backend._speedups)" if chainrule.backend.accelerated() else "pure Python",
    }


def _blas_text(info: dict[str, Any]) -> str:
    if not info["numpy_blas"]:
        return "unknown"
    b = info["numpy_blas"][0]
    return (
        f"{b['internal_api']} {b['version']} ({b['threading_layer']}, {b['architecture']}, {b['num_threads']} threads)"
    )


def system_lines(info: dict[str, Any]) -> list[str]:
    return [
        f"date            {info['date']}",
        f"CPU             {info['cpu']}, {info['cores']} cores ({info['usable_cores']} usable)",
        f"Python          {info['python']}",
        f"NumPy           {info['numpy']}, BLAS {_blas_text(info)}",
        f"PyTorch         {info['torch']} (CPU, eager), {info['torch_threads']} intra-op threads (default), "
        f"BLAS {info['torch_blas']}",
        f"chainrule       {info['chainrule']} at {info['commit']}, engine: {info.get('engine', 'unknown')}",
        "written with    "
        + (
            "each library's nn API: nn layers, an nn loss module, optim.SGD (--api nn)"
            if info.get("chainrule_api") == "nn"
            else "core ops (linear, relu/tanh, softmax_cross_entropy or sigmoid + squared error), manual SGD on .data"
        ),
        "compiled        the same step, forward + loss wrapped once in chainrule.compile (training rows only)",
    ]


# --------------------------------------------------------------------- formatting
def fmt_value(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    if x >= 1000:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def fmt_ratio(r: dict[str, float] | None, spread: bool = True) -> str:
    if not r:
        return "-"
    text = f"{r['median']:.2f}x"
    if spread and r["min"] != r["max"]:
        text += f" ({r['min']:.2f}-{r['max']:.2f})"
    return text


def _table(header: list[str], rows: list[list[str]], markdown: bool) -> list[str]:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        return lines + ["| " + " | ".join(row) + " |" for row in rows]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    align = ["<"] + [">"] * (len(header) - 1)

    def line(cells: list[str]) -> str:
        return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths)).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


RESULT_HEADER = [
    "workload",
    "unit",
    *(display(i) for i in IMPLS),
    "cr/torch speed",
    "cr/numpy speed",
    "compiled/torch speed",
    "compiled/numpy speed",
    "agree",
]


def setting_title(threads: str, info: dict[str, Any]) -> str:
    if threads == "default":
        blas = info["numpy_blas"][0]["num_threads"] if info.get("numpy_blas") else "?"
        return (
            f"threads: library defaults (PyTorch {info['torch_threads']} intra-op threads, NumPy BLAS {blas} threads)"
        )
    return f"threads: {threads} (NumPy's BLAS and PyTorch pinned)"


def result_row(case: dict[str, Any], threads: str, spread: bool = True) -> list[str]:
    timing = case["threads"][threads]
    values = [fmt_value(timing["impls"][i]["value"]) if i in timing["impls"] else "-" for i in IMPLS]
    agree = {True: "yes", False: "NO", None: "-"}[case.get("agree")]
    ratios = [fmt_ratio(timing["speed_ratio"].get(other), spread) for other in ("torch", "numpy")]
    compiled = timing.get("compiled_speed_ratio", {})
    ratios += [fmt_ratio(compiled.get(other), spread) for other in ("torch", "numpy")]
    return [case["title"], case["unit"], *values, *ratios, agree]


def results_table(cases: list[dict[str, Any]], threads: str, markdown: bool = False) -> list[str]:
    return _table(RESULT_HEADER, [result_row(c, threads) for c in cases], markdown)


MEMORY_HEADER = [
    "workload",
    *(f"{display(i)} MiB" for i in IMPLS),
    "cr/numpy",
    "tracemalloc cr / numpy / compiled (replay) MiB",
]
#: the implementations whose allocations tracemalloc sees (NumPy's buffers), in the tracemalloc column
TRACED = ("chainrule", "numpy", "chainrule_compiled")


def memory_table(cases: list[dict[str, Any]], markdown: bool = False) -> list[str]:
    rows = []
    for case in cases:
        mem = case.get("memory")
        if not mem:
            continue
        rss = {i: mem[i]["rss_mib"] for i in IMPLS if i in mem}
        ratio = rss["chainrule"] / rss["numpy"] if rss.get("numpy") else None
        traced = [mem[i].get("tracemalloc_mib") if i in mem else None for i in TRACED]
        rows.append(
            [
                case["title"],
                *(f"{rss[i]:.1f}" if i in rss else "-" for i in IMPLS),
                f"{ratio:.2f}x" if ratio else "-",
                " / ".join(f"{t:.1f}" if t is not None else "-" for t in traced),
            ]
        )
    return _table(MEMORY_HEADER, rows, markdown) if rows else []
