"""chainrule's benchmarks: one command, ``python -m benchmarks``, prints chainrule against PyTorch
(eager, CPU) and against a hand-written NumPy floor on the same math, with medians and ratios.

Layout: ``harness`` (cases, interleaved timing, paired ratios), ``workloads/`` (one module per
family of workloads, each implementation side by side), ``memory`` (peak memory, one subprocess
per implementation), ``report`` (system facts, the table, docs/benchmarks.md), ``cli``.
"""
