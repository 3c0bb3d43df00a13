"""Hyper-parameter sweeps: train every configuration of a grid (or random draws from ranges), rank them.

    import chainrule
    results = chainrule.sweep({"lr": [0.05, 0.2], "hidden": [[32], [64, 32]]}, data="digits", seeds=2)
    print(results.format_table())
    results.best["model"]          # the best trial's model file

``chainrule.sweep`` is both this package and its ``sweep`` function (the module is callable).
Each trial is a ``chainrule train`` run with a validation part (``chainrule.sweep.trial``);
trials run in this process, a local process pool or on Ray Tune (``chainrule.sweep.runners``).
The out folder holds ``results.json`` (rewritten after every trial, so an interrupted sweep
keeps what finished and ``resume=True`` skips it), ``results.csv`` and ``trials/ID/`` with each
trial's ``model.safetensors`` and ``metrics.json``.
"""

from __future__ import annotations

import csv
import io
import os
import statistics
import sys
import time
import types
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from chainrule.sweep.space import LIST_VALUED, SpaceError, configurations, describe, full_params, parse_grid
from chainrule.sweep.trial import run_trial, trial_id, write_json

ENGINES = ("local", "ray")
SCHEDULERS = ("fifo", "asha")
Progress = Callable[[dict[str, Any], int, int], None]


class SweepError(ValueError):
    """A sweep that cannot start: bad grid, unknown data set, an out folder that holds another sweep."""


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep; ``.results`` holds the trials that finished (also written to the out folder)."""

    def __init__(self, results: SweepResults) -> None:
        super().__init__("sweep interrupted")
        self.results = results


# --------------------------------------------------------------------- results
class SweepResults:
    """The trials of a sweep and its table: one row per configuration, best first.

    ``trials``: every trial's record (plan order). ``rows``: per configuration, the mean and
    standard deviation over seeds of the validation and test scores of its finished ("ok")
    trials. ``best``: the record of the best "ok" trial. ``metric``: "val_accuracy"
    (higher is better) or "val_mse" (lower is better).
    """

    def __init__(self, trials: list[dict[str, Any]], names: list[str], metric: str, total: int, out: Path) -> None:
        self.trials, self.names, self.metric, self.total, self.out = trials, names, metric, total, out
        self.higher_is_better = metric == "val_accuracy"
        self.rows = self._rows()

    @property
    def best(self) -> dict[str, Any] | None:
        ok = [t for t in self.trials if t["status"] == "ok" and t.get(self.metric) is not None]
        if not ok:
            return None
        sign = -1 if self.higher_is_better else 1
        return min(ok, key=lambda t: sign * t[self.metric])

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [t for t in self.trials if t["status"] != "ok"]

    def _rows(self) -> list[dict[str, Any]]:
        groups: dict[str, list[dict[str, Any]]] = {}
        for trial in self.trials:
            config = {name: trial["params"][name] for name in self.names}
            groups.setdefault(repr(config), []).append(trial)
        test = "test_" + self.metric.removeprefix("val_")
        rows = []
        for trials in groups.values():
            ok = [t for t in trials if t["status"] == "ok"]
            row: dict[str, Any] = {name: trials[0]["params"][name] for name in self.names}
            for key in (self.metric, test):
                values = [float(t[key]) for t in ok]
                row[f"{key}_mean"] = statistics.fmean(values) if values else None
                row[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else (0.0 if values else None)
            row["ok"], row["trials"] = len(ok), len(trials)
            problems = [t for t in trials if t["status"] != "ok"]
            row["note"] = _note(problems[0]) if problems else ""
            row["best_trial"] = (
                min(ok, key=lambda t: t[self.metric] * (-1 if self.higher_is_better else 1))["id"] if ok else None
            )
            rows.append(row)
        sign = -1 if self.higher_is_better else 1
        rows.sort(key=lambda r: (r[f"{self.metric}_mean"] is None, sign * (r[f"{self.metric}_mean"] or 0.0)))
        for rank, row in enumerate(rows, 1):
            row["rank"] = rank
        return [{"rank": r.pop("rank"), **r} for r in rows]

    def format_table(self) -> str:
        """The table as aligned text: rank, the swept options, validation and test score mean ± std, ok/trials."""
        test = "test_" + self.metric.removeprefix("val_")
        # an option with one value in every row (epochs=20) is a setting, not a column
        names = [n for n in self.names if len({repr(r[n]) for r in self.rows}) > 1] or self.names
        header = ["rank", *names, self.metric, test, "ok", ""]
        lines = []
        for row in self.rows:
            cells = [str(row["rank"]), *(describe(row[n]) for n in names)]
            for key in (self.metric, test):
                mean, std = row[f"{key}_mean"], row[f"{key}_std"]
                spread = f" ± {std:.4f}" if row["ok"] > 1 else ""
                cells.append("-" if mean is None else f"{mean:.4f}{spread}")
            note = row["note"] if len(row["note"]) <= 60 else row["note"][:57] + "..."
            cells += [f"{row['ok']}/{row['trials']}", note]
            lines.append(cells)
        widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
        text = [
            "  ".join(c.rjust(w) if i == 0 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
            for r in [header, *lines]
        ]
        return "\n".join(text)

    def to_csv(self, path: str | os.PathLike[str] | None = None) -> str:
        """The table as CSV (one row per configuration, list values written like ``64,32``); written if ``path``."""
        buffer = io.StringIO()
        fields = list(self.rows[0]) if self.rows else ["rank", *self.names]
        writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: describe(v) if k in self.names else ("" if v is None else v) for k, v in row.items()})
        text = buffer.getvalue()
        if path is not None:
            path = Path(path)
            tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            tmp.write_text(text)
            os.replace(tmp, path)
        return text

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        return {
            "metric": self.metric,
            "names": self.names,
            "total": self.total,
            "complete": len(self.trials) == self.total,
            "best": best["id"] if best else None,
            "table": self.rows,
            "trials": self.trials,
        }

    def to_json(self, path: str | os.PathLike[str], sweep: Mapping[str, Any] | None = None) -> None:
        """Write ``results.json`` (the table, every trial's record and the sweep's settings) atomically."""
        write_json(Path(path), {"sweep": dict(sweep or {}), **self.to_dict()})

    def __repr__(self) -> str:
        best = self.best
        score = f", best {self.metric} {best[self.metric]:.4f}" if best else ""
        return f"SweepResults({len(self.trials)}/{self.total} trials, {len(self.failed)} not ok{score})"


def _note(record: dict[str, Any]) -> str:
    if record["status"] == "stopped":
        return f"stopped by the scheduler after epoch {record.get('epochs', '?')}"
    return f"{record['status']}: {record['error']}"


# --------------------------------------------------------------------- sweep()
def _grid_entries(grid: Sequence[str] | Mapping[str, Any]) -> list[str]:
    """``{"lr": [0.1, 0.5], "hidden": [[64], [64, 32]]}`` -> ``["lr=0.1,0.5", "hidden=64;64,32"]``; strings pass."""
    if isinstance(grid, str):
        return [grid]
    if not isinstance(grid, Mapping):
        return list(grid)
    entries = []
    for name, values in grid.items():
        if isinstance(values, str):
            entries.append(f"{name}={values}")
            continue
        if not isinstance(values, (list, tuple)) or (name in LIST_VALUED and values and isinstance(values[0], int)):
            values = [values]
        entries.append(f"{name}=" + (";" if name in LIST_VALUED else ",").join(describe(v) for v in values))
    return entries


def _data_name(data: str) -> tuple[str, str]:
    """(canonical name, task) of a data set, or ``SweepError``."""
    from chainrule.data.registry import _entry

    try:
        name, entry = _entry(data)
    except KeyError as err:
        raise SweepError(str(err.args[0])) from None
    return name, entry.task


def sweep(
    grid: Sequence[str] | Mapping[str, Any],
    *,
    data: str = "digits",
    samples: int | None = None,
    seeds: int = 1,
    search_seed: int = 0,
    workers: int | None = None,
    engine: str = "local",
    address: str | None = None,
    scheduler: str = "fifo",
    out: str | os.PathLike[str] = "runs/sweep",
    resume: bool = False,
    progress: Progress | None = None,
) -> SweepResults:
    """Train every configuration of ``grid`` (or ``samples`` random draws) for ``seeds`` seeds; rank them.

    * ``grid``: ``--grid`` entries (``["lr=0.01,0.1", "hidden=64;64,32"]``) or a mapping of option
      names to value lists, or to range strings like ``"log(1e-3,1)"`` (needs ``samples``).
    * ``workers``: trials at a time (default: the cores; 1 runs them in this process).
    * ``engine``: "local" (a process pool) or "ray" (Ray Tune at ``address``; a local Ray when
      None), where ``scheduler="asha"`` stops unpromising trials early.
    * ``out``: the folder for results.json, results.csv and trials/; ``resume=True`` continues
      the sweep already there, skipping its finished trials.
    * ``progress(record, done, total)`` is called as each trial finishes.

    Raises ``SweepError`` (a ``ValueError``) before anything runs if the grid or settings are
    bad; ``SweepInterrupted`` (a ``KeyboardInterrupt``, with ``.results``) on Ctrl-C.
    """
    if engine not in ENGINES:
        raise SweepError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if scheduler not in SCHEDULERS:
        raise SweepError(f"scheduler must be one of {', '.join(SCHEDULERS)}, got {scheduler!r}")
    if scheduler == "asha" and engine != "ray":
        raise SweepError("the asha scheduler runs on Ray Tune: use --ray (engine='ray')")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise SweepError(f"seeds must be an integer >= 1, got {seeds!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise SweepError(f"workers must be an integer >= 1, got {workers!r}")
    entries = _grid_entries(grid)
    if not entries:
        raise SweepError("give at least one --grid entry, e.g. --grid lr=0.01,0.1")
    try:
        axes = parse_grid(entries)
        configs = configurations(axes, samples, search_seed)
    except SpaceError as err:
        raise SweepError(str(err)) from None
    data, task = _data_name(data)
    metric = "val_accuracy" if task == "classification" else "val_mse"
    names = [axis.name for axis in axes]
    settings = {"data": data, "grid": entries, "samples": samples, "seeds": seeds, "search_seed": search_seed}

    if engine == "ray":
        import importlib.util

        from chainrule.sweep.runners import RAY_MISSING

        if importlib.util.find_spec("ray") is None:
            raise ImportError(RAY_MISSING)

    out = Path(out)
    plan = [full_params(config, data, seed) for config in configs for seed in range(seeds)]
    folders = [out / "trials" / trial_id(i, params) for i, params in enumerate(plan)]
    finished = _finished(out, settings, resume)
    records: dict[str, dict[str, Any]] = {f.name: finished[f.name] for f in folders if f.name in finished}
    jobs = [(params, str(folder)) for params, folder in zip(plan, folders) if folder.name not in records]
    try:
        (out / "trials").mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SweepError(f"cannot create {out}: {err.strerror or err}") from None

    order = {folder.name: i for i, folder in enumerate(folders)}
    start = time.perf_counter()

    def results() -> SweepResults:
        trials = sorted(records.values(), key=lambda r: order[r["id"]])
        return SweepResults(trials, names, metric, len(plan), out)

    def save() -> SweepResults:
        current = results()
        current.to_json(out / "results.json", {**settings, "engine": engine, "seconds": time.perf_counter() - start})
        current.to_csv(out / "results.csv")
        return current

    def on_done(record: dict[str, Any]) -> None:
        records[record["id"]] = record
        save()
        if progress is not None:
            progress(record, len(records), len(plan))

    save()
    workers = min(workers or _default_workers(), max(1, len(jobs)))
    try:
        if not jobs:
            pass
        elif engine == "ray":
            from chainrule.sweep.runners import run_ray

            run_ray(
                jobs,
                on_done,
                address=address,
                workers=workers,
                scheduler=scheduler,
                metric=metric,
                mode="max" if metric == "val_accuracy" else "min",
                storage=out / "ray",
            )
        elif workers == 1:
            from chainrule.sweep.runners import run_inline

            run_inline(jobs, on_done)
        else:
            from chainrule.sweep.runners import run_local

            run_local(jobs, workers, on_done)
    except KeyboardInterrupt:
        raise SweepInterrupted(save()) from None
    finally:
        _remove_temporaries(out / "trials")
    return save()


def _default_workers() -> int:
    from chainrule.sweep.runners import cores

    return cores()


def _finished(out: Path, settings: dict[str, Any], resume: bool) -> dict[str, dict[str, Any]]:
    """The records of the finished trials of the sweep in ``out`` when resuming; refuses to overwrite one otherwise."""
    import json

    path = out / "results.json"
    if not resume:
        if path.exists():
            raise SweepError(f"{out} already holds a sweep (results.json): resume it, or choose another out folder")
        return {}
    if not path.is_file():
        raise SweepError(f"nothing to resume: {path} does not exist")
    try:
        saved = json.loads(path.read_text())
        previous = {k: saved["sweep"].get(k) for k in settings}
        trials = saved["trials"]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise SweepError(f"{path} is not a sweep's results.json") from None
    changed = [k for k in settings if previous[k] != settings[k]]
    if changed:
        raise SweepError(
            f"cannot resume: the sweep in {out} has a different {changed[0]} ({previous[changed[0]]!r}); "
            "give the same settings, or choose another out folder"
        )

    def complete(record: dict[str, Any]) -> bool:
        folder = Path(record.get("folder", ""))
        return (folder / "metrics.json").is_file() and (not record.get("model") or Path(record["model"]).is_file())

    return {r["id"]: r for r in trials if r.get("status") in ("ok", "failed") and complete(r)}


def _remove_temporaries(folder: Path) -> None:
    import shutil

    for leftover in folder.glob(".*.tmp-*") if folder.is_dir() else ():
        shutil.rmtree(leftover, ignore_errors=True)


class _CallableModule(types.ModuleType):
    """``chainrule.sweep(...)`` calls ``chainrule.sweep.sweep(...)``: the package and the function share a name."""

    def __call__(self, *args: Any, **kwargs: Any) -> SweepResults:
        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["SweepError", "SweepInterrupted", "SweepResults", "run_trial", "sweep"]
