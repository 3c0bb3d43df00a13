"""``chainrule plot``: (re)draw a training run's plots from its folder, and the plots ``train`` writes.

    chainrule plot runs/digits                # history.png, weights.png, first_layer.png, confusion.png, ...
    chainrule plot runs/moons --format svg

What is drawn (``write_run_plots``), next to the model in the run folder:

* ``history``: loss and accuracy (or mse) per epoch, training and validation, from metrics.json;
* ``diagnostics``: when the run was trained with ``--diagnostics``;
* with the model file: ``weights`` (every weight matrix as a heatmap), ``first_layer`` (image
  data sets: each first-layer unit's weights as an image), ``decision_regions`` (2-D
  classification, the training points), ``regression`` (1-D regression, the training points)
  and ``confusion`` (classification, the test part, as ``chainrule predict`` computes it).

The data is rebuilt from the run's record (data set, options, split, standardizer), exactly as
``predict`` does. Each file is written to a temporary file and renamed into place. A missing
folder, a missing or unreadable metrics.json is one line on stderr and exit status 2; a missing
matplotlib is one line naming ``pip install 'chainrule[viz]'`` and exit status 1.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chainrule.cli.commands import UsageError

FORMATS = ("png", "svg")
INSTALL_HINT = "pip install 'chainrule[viz]'"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``plot`` on the subparsers object ``sub``; its handler is ``plot_command``."""
    from chainrule.cli.parser import _Formatter

    command = sub.add_parser(
        "plot",
        help="redraw a training run's plots (history, weights, confusion matrix, ...) from its folder",
        description="Redraw the plots of a run folder written by 'chainrule train' from its metrics.json\n"
        "(and its model file, for the plots of the model): history, diagnostics, weights, first-layer\n"
        "images, decision regions, regression fit and confusion matrix, as applicable.",
        formatter_class=_Formatter,
    )
    command.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a folder written by chainrule train")
    command.add_argument("--format", choices=FORMATS, default="png", help="image format")
    command.set_defaults(handler=plot_command)
    return command


# --------------------------------------------------------------------- reading a run
def read_metrics(run_dir: Path) -> dict[str, Any]:
    """The run's metrics.json as a dict; a missing folder or file or bad JSON is a ``UsageError``."""
    if not run_dir.is_dir():
        raise UsageError(f"run folder not found: {run_dir}")
    path = run_dir / "metrics.json"
    if not path.is_file():
        raise UsageError(f"{path} not found (is {run_dir} a folder written by 'chainrule train'?)")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UsageError(f"{path} is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"cannot read {path}: {err}") from None
    if not isinstance(report, dict) or not isinstance(report.get("history"), dict):
        raise UsageError(f"{path} has no training history (is it a metrics file written by 'chainrule train'?)")
    return report


def _run_data(run: dict[str, Any]) -> tuple[Any, tuple[Any, Any], tuple[Any, Any], Any]:
    """(dataset, train part, test part, transform) rebuilt from a run record, as ``predict`` does."""
    from chainrule.data import Standardizer, get_dataset
    from chainrule.train.recipe import split_data

    dataset = get_dataset(run["data"], **run.get("data_options", {}))
    train, _, test = split_data(
        dataset, run["test_size"], run["split_seed"], run.get("stratify", False), run.get("val_size")
    )
    transform = Standardizer.from_dict(run["standardizer"]).transform if run.get("standardizer") else None
    return dataset, train, test, transform


# --------------------------------------------------------------------- drawing
def write_run_plots(run_dir: Path, report: dict[str, Any], model: Any = None, fmt: str = "png") -> list[Path]:
    """Draw every plot that applies to the run into ``run_dir``; returns the files written, in order."""
    from chainrule.cli.commands import confusion_matrix
    from chainrule.train import predict
    from chainrule.train.objectives import resolve_loss
    from chainrule.viz import plots

    jobs: list[tuple[str, Callable[[Path], Any]]] = [
        ("history", lambda path: plots.plot_history(report["history"], path=path))
    ]
    if report.get("diagnostics"):
        jobs.append(("diagnostics", lambda path: plots.plot_diagnostics(report["diagnostics"], path=path)))
    run = report.get("run")
    if model is not None:
        jobs.append(("weights", lambda path: plots.plot_weights(model, path=path)))
    if model is not None and isinstance(run, dict):
        dataset, (X_train, y_train), (X_test, y_test), transform = _run_data(run)
        threshold = resolve_loss(run.get("loss", "cross_entropy"))[2]
        sizes = getattr(model, "sizes", None)
        if dataset.image_shape is not None and sizes and sizes[0] == dataset.n_features:
            shape = dataset.image_shape
            jobs.append(("first_layer", lambda path: plots.plot_first_layer_images(model, shape, path=path)))
        if dataset.task == "classification" and dataset.n_features == 2:
            jobs.append(
                (
                    "decision_regions",
                    lambda path: plots.plot_decision_regions(model, X_train, y_train, threshold, transform, path=path),
                )
            )
        if dataset.task == "regression" and dataset.n_features == 1:
            jobs.append(
                ("regression", lambda path: plots.plot_regression_fit(model, X_train, y_train, transform, path=path))
            )
        if dataset.task == "classification":
            outputs = predict(model, transform(X_test) if transform else X_test)
            counts = confusion_matrix(y_test, plots.predicted_labels(outputs, threshold), dataset.n_classes)
            jobs.append(("confusion", lambda path: plots.plot_confusion_matrix(counts, path=path)))
    written = []
    for name, draw in jobs:
        path = run_dir / f"{name}.{fmt}"
        try:
            draw(path)
        except OSError as err:
            raise UsageError(f"cannot write {path}: {err.strerror or err}") from None
        written.append(path)
    return written


def plots_after_training(out_dir: Path, report: dict[str, Any], model: Any) -> list[Path]:
    """What ``chainrule train`` calls once the model and metrics are saved: draw, or say why not."""
    if importlib.util.find_spec("matplotlib") is None:
        print(f"plots skipped: matplotlib is not installed ({INSTALL_HINT})")
        return []
    written = write_run_plots(out_dir, report, model)
    print(f"plots {', '.join(p.name for p in written)} in {out_dir}")
    return written


# --------------------------------------------------------------------- the command
def plot_command(args: argparse.Namespace) -> int:
    import chainrule
    from chainrule.io import ModelFileError

    report = read_metrics(args.run_dir)
    model_path = args.run_dir / "model.safetensors"
    model = None
    if model_path.is_file():
        try:
            model = chainrule.load(model_path)
        except ModelFileError as err:
            raise UsageError(str(err)) from None
    else:
        print(f"no model file in {args.run_dir}: drawing only what metrics.json holds")
    try:
        written = write_run_plots(args.run_dir, report, model, args.format)
    except (KeyError, TypeError, ValueError) as err:
        # a metrics.json edited by hand, or a model file that does not belong to the run
        detail = f"missing entry {err}" if isinstance(err, KeyError) else str(err)
        raise UsageError(f"cannot draw the plots of {args.run_dir}: {detail}") from None
    print(f"wrote {', '.join(p.name for p in written)} in {args.run_dir}")
    return 0


__all__ = ["add_parser", "plot_command", "plots_after_training", "read_metrics", "write_run_plots"]
