"""The registry of workloads: name -> factory of its cases (rows of the table), in table order."""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.harness import Case
from benchmarks.workloads import digits, mlp, perop

#: workload name -> cases(smoke, reps) -> list of Case
WORKLOADS: dict[str, Callable[[bool, int | None], list[Case]]] = {
    "per_op": perop.cases,
    "xor": mlp.xor_cases,
    "mnist_mlp": mlp.mnist_cases,
    "deep_narrow": mlp.deep_cases,
    "mnist_infer": mlp.inference_cases,
    "digits": digits.cases,
}


def select(only: list[str] | None, smoke: bool, reps: int | None) -> list[Case]:
    """The cases of the named workloads (or single cases by name, e.g. ``mnist_mlp_b128``); all if None."""
    cases = [case for factory in WORKLOADS.values() for case in factory(smoke, reps)]
    if not only:
        return cases
    wanted = set(only)
    known = set(WORKLOADS) | {case.name for case in cases}
    unknown = wanted - known
    if unknown:
        raise SystemExit(
            f"--only: unknown workload(s) {', '.join(sorted(unknown))}; choose from {', '.join(sorted(known))}"
        )
    return [case for case in cases if case.workload in wanted or case.name in wanted]
