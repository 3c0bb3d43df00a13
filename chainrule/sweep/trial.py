"""One trial of a sweep: train one configuration in this process, write its folder, return its record.

A trial is a ``chainrule train`` run: the same data loading, split (train, validation, test),
model, optimizer and schedule, built by the same helpers in ``chainrule.cli.commands``, so
``chainrule predict --model FOLDER/model.safetensors`` evaluates a trial's model like any
other. It always holds out a validation part (``val_size``), on which trials are ranked.

The folder (``model.safetensors`` and ``metrics.json``; only ``metrics.json`` for a failed trial)
is written in a temporary folder beside it and renamed into place, so a trial folder is
either complete or absent. An exception in training (divergence, an impossible option
combination) makes a record with ``status`` "failed" and the error; it never escapes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

Report = Callable[[int, dict[str, float]], None]


def trial_key(params: dict[str, Any]) -> str:
    """The identity of a trial: its every training option, as canonical JSON (what ``--resume`` matches)."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


def trial_id(index: int, params: dict[str, Any]) -> str:
    """A folder name that sorts in plan order and cannot collide: ``007-3fa2c1d9``."""
    return f"{index:03d}-{hashlib.sha1(trial_key(params).encode()).hexdigest()[:8]}"


def _args(params: dict[str, Any]) -> argparse.Namespace:
    """The namespace ``chainrule train`` would have parsed for these options."""
    return argparse.Namespace(**params)


def _train(args: argparse.Namespace, report: Report | None) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """Train as ``chainrule train`` does (``chainrule.train.recipe``); returns (model, file metadata, metrics)."""
    from chainrule.train import LambdaCallback
    from chainrule.train.recipe import prepare

    run = prepare(args)
    callbacks = (
        [] if report is None else [LambdaCallback(on_epoch_end=lambda state: report(state.epoch, dict(state.logs)))]
    )
    history = run.fit(callbacks)
    scores = run.scores()
    key = run.metric
    metrics = {
        "run": run.record(),
        "history": history.to_dict(),
        "epochs": len(history),
        "metric": key,
        **scores,
        **{f"{name}_{key}": score[key] for name, score in scores.items()},
        "sizes": run.sizes,
        "parameters": run.model.num_parameters(),
    }
    return run.model, run.record(), metrics


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (a temporary file beside ``path``, renamed into place)."""
    from chainrule.io import atomic_write_bytes, json_default

    atomic_write_bytes(path, (json.dumps(data, indent=2, default=json_default) + "\n").encode())


def run_trial(params: dict[str, Any], folder: str | os.PathLike[str], report: Report | None = None) -> dict[str, Any]:
    """Train the trial ``params`` (every training option plus ``data`` and ``seed``); write ``folder``.

    ``report(epoch, logs)`` is called after every epoch (the Ray runner passes Tune's report).
    Returns the record: ``id``, ``params``, ``status`` ("ok" or "failed"), ``error``, the train,
    validation and test scores (``val_accuracy`` or ``val_mse`` ...), ``epochs``, ``seconds``,
    ``folder`` and ``model`` (the model file, None when failed).
    """
    import chainrule

    folder = Path(folder)
    start = time.perf_counter()
    record: dict[str, Any] = {"id": folder.name, "params": params, "status": "ok", "error": None}
    model = run = None
    try:
        model, run, scores = _train(_args(params), report)
        record.update(scores)
    except Exception as err:  # a failed trial is a result, not the end of the sweep
        record.update(status="failed", error=f"{type(err).__name__}: {err}")
    record["seconds"] = round(time.perf_counter() - start, 3)
    record["folder"] = str(folder)
    record["model"] = str(folder / "model.safetensors") if model is not None else None
    record["chainrule_version"] = chainrule.__version__

    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        if model is not None:
            chainrule.save(model, tmp / "model.safetensors", metadata=run)
        write_json(tmp / "metrics.json", record)
        if folder.exists():  # a leftover of an earlier, unrecorded run of the same trial
            shutil.rmtree(folder)
        os.rename(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary(record)


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """The record without the per-epoch history (what results.json lists; metrics.json keeps it all)."""
    return {k: v for k, v in record.items() if k not in ("history", "run")}


__all__ = ["run_trial", "summary", "trial_id", "trial_key", "write_json"]
