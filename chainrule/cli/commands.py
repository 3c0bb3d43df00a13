"""What the ``chainrule`` commands do: ``train``, ``predict``, ``datasets`` and ``demo``.

Each command is a function of the parsed arguments that returns the exit status;
``chainrule.cli`` parses the command line and calls it. A bad argument found here raises
``UsageError`` (exit status 2). Heavy modules load inside the commands, so ``chainrule
--help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any


class UsageError(Exception):
    """A bad argument found after parsing (unknown file, inconsistent options): exit status 2."""


def demo_command(args: argparse.Namespace) -> int:
    from chainrule.cli.demo import train_xor

    train_xor(steps=args.steps, lr=args.lr, seed=args.seed)
    return 0


def datasets_command(args: argparse.Namespace) -> int:
    from chainrule.data import list_datasets

    for name, description in list_datasets().items():
        print(f"{name:<14} {description}")
    return 0


def _writable_folder(out_dir: Path) -> None:
    """Make ``out_dir`` and prove it writable before training (a run that cannot be saved is refused first)."""
    import tempfile

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as err:
        raise UsageError(f"cannot write to {out_dir}: {err.strerror or err}") from None


#: layers up to this many weights train on one BLAS thread by default (see blas_threads)
SMALL_LAYER = 1_000_000


def blas_threads(threads: int | None, model: Any) -> Any:
    """A context limiting NumPy's BLAS to ``threads`` (None: 1 for small networks, else left alone).

    NOTE: on the small matrices of these networks a second BLAS thread costs more in hand-offs
    than it computes, and on a busy machine it waits for a core (measured: docs/cli.md, --threads).
    """
    import contextlib

    if threads is None:
        largest = max((p.data.size for p in model.parameters()), default=0)
        threads = 1 if largest <= SMALL_LAYER else None
    if threads is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()  # the BLAS keeps its own setting
    return threadpool_limits(limits=threads, user_api="blas")


def train_command(args: argparse.Namespace) -> int:
    import chainrule
    from chainrule.io import atomic_write_many, json_default, model_bytes
    from chainrule.train import Diagnostics
    from chainrule.train.recipe import RunError, prepare

    out_dir = args.out if args.out is not None else Path("runs") / args.data
    start = time.perf_counter()
    try:
        run = prepare(args)
    except RunError as err:
        raise UsageError(str(err)) from None
    if not args.no_save:
        _writable_folder(out_dir)
    diagnostics = Diagnostics() if args.diagnostics else None
    dataset, (X_train, _), validation, (X_test, _) = run.dataset, run.train, run.validation, run.test
    same = " (the same 4 points: a truth table has none to spare)" if X_train is X_test else ""
    print(
        f"data {dataset.name}: {len(X_train)} train, {len(X_test)} test{same}"
        + (f", {len(validation[1])} validation" if validation else "")
        + f" samples of {dataset.n_features} features"
    )
    print(
        f"model MLP {'-'.join(map(str, run.sizes))} ({args.activation}), {run.model.num_parameters()} parameters; "
        f"loss {run.loss}, optimizer {args.optimizer} lr {run.lr:g}, batch {args.batch_size or 'full'}, "
        f"{args.epochs} epochs"
    )
    with blas_threads(args.threads, run.model):
        history = run.fit(
            [diagnostics] if diagnostics is not None else [], progress=args.progress, verbose=not args.quiet
        )
    scores = run.scores()
    train_eval, test_eval = scores["train"], scores["test"]
    elapsed = time.perf_counter() - start
    key = run.metric
    if history.stopped_epoch is not None:
        print(f"early stopping at epoch {history.stopped_epoch}")
    print(f"final train {key} {train_eval[key]:.4f}   test {key} {test_eval[key]:.4f}   ({elapsed:.1f} s)")

    if not args.no_save:
        record = run.record()
        model_path, metrics_path = out_dir / "model.safetensors", out_dir / "metrics.json"
        report = {
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "handler"},
            "run": record,
            "history": history.to_dict(),
            "seconds": elapsed,
            "train": train_eval,
            "test": test_eval,
            **({f"train_{key}": train_eval[key], f"test_{key}": test_eval[key]}),
            "model": str(model_path),
            "chainrule_version": chainrule.__version__,
            **({"diagnostics": diagnostics.to_dict()} if diagnostics is not None else {}),
        }
        # NOTE: both files are complete in temporaries before either replaces the previous run's
        try:
            files = {
                model_path: model_bytes(run.model, metadata=record),
                metrics_path: (json.dumps(report, indent=2, default=json_default) + "\n").encode(),
            }
            atomic_write_many(files)
        except OSError as err:
            raise UsageError(f"cannot write to {out_dir}: {err.strerror or err}") from None
        print(f"saved {model_path} and {metrics_path}")
        if not args.no_plots:
            from chainrule.cli.plot import plots_after_training

            plots_after_training(out_dir, report, run.model)
    return 0


def _run_info(model_path: Path) -> dict[str, Any]:
    """The training record of a model file (or of the metrics.json beside it), checked field by field."""
    from chainrule.io import read_metadata

    info, where = read_metadata(model_path).get("user"), str(model_path)
    if not info:
        sidecar = model_path.with_name("metrics.json")
        if sidecar.is_file():
            where = str(sidecar)
            try:
                report = json.loads(sidecar.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
                raise UsageError(f"{sidecar} is not a readable metrics file: {err}") from None
            info = report.get("run") if isinstance(report, dict) else None
    if not info:
        raise UsageError(f"{model_path} has no record of its data split (was it saved by 'chainrule train'?)")
    problem = _record_problem(info)
    if problem:
        raise UsageError(f"the training record in {where} is not valid: {problem}")
    return info


def _record_problem(info: Any) -> str | None:
    """What is wrong with a training record (it lies outside the model file's checksum), or None."""
    from chainrule.data import dataset_options, list_datasets
    from chainrule.train.objectives import LOSSES

    def number(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value

    if not isinstance(info, dict):
        return "it is not a JSON object"
    known = isinstance(info.get("data"), str) and info.get("data") in list_datasets()
    checks = {
        "data": known,
        # bounded: n = 10**12 would make predict generate a data set larger than the memory
        "data_options": isinstance(info.get("data_options", {}), dict)
        and all(isinstance(k, str) and number(v) and abs(v) <= 10**7 for k, v in info.get("data_options", {}).items())
        and set(info.get("data_options", {})) <= set(dataset_options(info.get("data")) if known else ()),
        "loss": info.get("loss") is None or info.get("loss") in LOSSES,
        "test_size": number(info.get("test_size")) and 0 < info["test_size"] < 1,
        "split_seed": isinstance(info.get("split_seed"), int) and not isinstance(info["split_seed"], bool)
        and info["split_seed"] >= 0,
        "stratify": isinstance(info.get("stratify", False), bool),
        "val_size": info.get("val_size") is None or (number(info["val_size"]) and 0 <= info["val_size"] < 1),
    }  # fmt: skip
    bad = [name for name, ok in checks.items() if not ok]
    if bad:
        return f"{bad[0]} = {str(info.get(bad[0]))[:60]!r}"
    scaler = info.get("standardizer")
    if scaler is not None:
        ok = isinstance(scaler, dict) and all(
            isinstance(scaler.get(k), list) and all(number(v) for v in scaler[k]) for k in ("mean", "std")
        )
        if not ok or len(scaler["mean"]) != len(scaler["std"]):
            return "standardizer (needs equal-length lists of numbers 'mean' and 'std')"
    return None


def confusion_matrix(y_true: Any, y_pred: Any, n_classes: int) -> Any:
    """Counts[i, j] = number of samples of class i predicted as class j."""
    import numpy as np

    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return counts


def format_confusion(counts: Any) -> str:
    n = len(counts)
    width = max(4, len(str(int(counts.max()))) + 1)
    lines = [
        "confusion matrix (rows: true class, columns: predicted class)",
        " " * 6 + "".join(f"{j:>{width}}" for j in range(n)),
    ]
    for i in range(n):
        lines.append(f"{i:>5} " + "".join(f"{int(c):>{width}}" for c in counts[i]))
    return "\n".join(lines)


def predict_command(args: argparse.Namespace) -> int:
    import numpy as np

    import chainrule
    from chainrule.data import Standardizer, get_dataset
    from chainrule.io import ModelFileError
    from chainrule.train import accuracy, predict
    from chainrule.train.recipe import RunError, split_data

    if not args.model.is_file():
        raise UsageError(f"model file not found: {args.model}")
    if args.confusion is not None and args.confusion.suffix.lower() not in (".png", ".svg"):
        raise UsageError(f"--confusion {args.confusion}: use a .png or .svg file name")
    try:
        model = chainrule.load(args.model)
        info = _run_info(args.model)
    except ModelFileError as err:
        raise UsageError(str(err)) from None
    name = args.data or info["data"]
    options = info.get("data_options", {}) if name == info["data"] else {}
    dataset = get_dataset(name, **options)
    if args.confusion is not None and dataset.task != "classification":
        raise UsageError(f"--confusion needs a classifier; {name} is a regression data set")
    sizes = getattr(model, "sizes", None)
    if sizes is not None and dataset.n_features != sizes[0]:
        raise UsageError(f"the model takes {sizes[0]} features but the {name} data set has {dataset.n_features}")
    scaler = info.get("standardizer")
    if scaler is not None and len(scaler["mean"]) != dataset.n_features:
        raise UsageError(f"the standardizer has {len(scaler['mean'])} features but {name} has {dataset.n_features}")
    if dataset.task == "classification" and sizes is not None and sizes[-1] > 1 and sizes[-1] != dataset.n_classes:
        raise UsageError(f"the model predicts {sizes[-1]} classes but the {name} data set has {dataset.n_classes}")
    try:
        train, _, test = split_data(
            dataset, info["test_size"], info["split_seed"], info.get("stratify", False), info.get("val_size")
        )
    except RunError as err:
        raise UsageError(str(err)) from None
    X, y = {"test": test, "train": train, "all": (dataset.X, dataset.y)}[args.split]
    if info.get("standardizer"):
        X = Standardizer.from_dict(info["standardizer"]).transform(X)
    outputs = predict(model, X)
    print(f"model {args.model}: data {name}, {args.split} split, {len(X)} samples")
    if dataset.task == "regression":
        print(f"mse {float(np.mean((outputs - y.reshape(outputs.shape)) ** 2)):.6f}")
        return 0
    threshold = 0.0 if info.get("loss") in ("bce_with_logits", "hinge") else 0.5
    acc = accuracy(outputs, y, threshold)
    if outputs.ndim == 2 and outputs.shape[1] > 1:
        pred = outputs.argmax(axis=1)
    else:
        pred = (outputs.reshape(-1) > threshold).astype(np.int64)
    print(f"accuracy {acc:.4f} ({int(np.sum(pred == y.reshape(-1)))}/{len(y)})")
    counts = confusion_matrix(y, pred, dataset.n_classes)
    print(format_confusion(counts))
    if args.confusion is not None:
        from chainrule.viz.plots import plot_confusion_matrix

        try:
            plot_confusion_matrix(counts, path=args.confusion)
        except OSError as err:
            raise UsageError(f"cannot write {args.confusion}: {err.strerror or err}") from None
        print(f"wrote {args.confusion}")
    return 0


__all__ = ["UsageError", "confusion_matrix", "format_confusion"]
