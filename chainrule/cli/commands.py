"""What the ``chainrule`` commands do: ``train``, ``predict``, ``datasets`` and ``demo``.

Each command is a function of the parsed arguments that returns the exit status;
``chainrule.cli`` parses the command line and calls it. A bad argument found here raises
``UsageError`` (exit status 2). Heavy modules load inside the commands, so ``chainrule
--help`` stays fast.
"""

from __future__ import annotations

import argparse
import inspect
import json
import time
from pathlib import Path
from typing import Any


class UsageError(Exception):
    """A bad argument found after parsing (unknown file, inconsistent options): exit status 2."""


def optimizers_taking(option: str) -> list[str]:
    """The registered optimizers whose constructor has the keyword ``option`` (e.g. "momentum")."""
    from chainrule.optim import OPTIMIZERS

    return [name for name, entry in OPTIMIZERS.items() if option in inspect.signature(entry.cls).parameters]


def demo_command(args: argparse.Namespace) -> int:
    from chainrule.cli.demo import train_xor

    train_xor(steps=args.steps, lr=args.lr, seed=args.seed)
    return 0


def datasets_command(args: argparse.Namespace) -> int:
    from chainrule.data import list_datasets

    for name, description in list_datasets().items():
        print(f"{name:<14} {description}")
    return 0


def _load_data(name: str, n: int | None, noise: float | None, seed: int) -> Any:
    from chainrule.data import dataset_options, get_dataset

    accepted = dataset_options(name)
    options: dict[str, Any] = {}
    if n is not None:
        if "n" in accepted:
            options["n"] = n
        elif "repeat" in accepted:
            options["repeat"] = n
        else:
            raise UsageError(f"--n does not apply to the {name} data set (it has a fixed size)")
    if noise is not None:
        if "noise" not in accepted:
            raise UsageError(f"--noise does not apply to the {name} data set")
        options["noise"] = noise
    if "seed" in accepted:
        options["seed"] = seed
    return get_dataset(name, **options)


def _split(
    dataset: Any, test_size: float, seed: int, stratify: bool, val_size: float | None
) -> tuple[tuple[Any, Any], tuple[Any, Any] | None, tuple[Any, Any]]:
    """The (X, y) parts of a run: train, validation (None when ``val_size`` is 0) and test.

    ``train`` splits here and ``predict`` rebuilds the same parts from the run's record, so the
    two cannot drift apart. The validation part comes out of the training part, with ``seed + 1``.
    """
    from chainrule.data import train_test_split

    stratify = stratify and dataset.task == "classification"
    if len(dataset) < 2:
        raise UsageError(f"the {dataset.name} data set has too few samples to split")
    if dataset.name in ("xor", "and", "or") and len(dataset) == 4:
        # NOTE: a truth table has no samples to spare: train and "test" on the 4 points.
        X_train, X_test, y_train, y_test = dataset.X, dataset.X, dataset.y, dataset.y
    else:
        try:
            X_train, X_test, y_train, y_test = train_test_split(
                dataset.X, dataset.y, test_size=test_size, seed=seed, stratify=stratify
            )
        except ValueError as err:
            raise UsageError(str(err)) from None
    if not val_size:
        return (X_train, y_train), None, (X_test, y_test)
    try:
        X_train, X_val, y_train, y_val = train_test_split(X_train, y_train, test_size=val_size, seed=seed + 1)
    except ValueError as err:
        raise UsageError(f"--val-size: {err}") from None
    return (X_train, y_train), (X_val, y_val), (X_test, y_test)


def _head(args: argparse.Namespace, dataset: Any) -> tuple[str, int, str | None]:
    """(loss, output units, output activation) for the data set and the chosen loss."""
    from chainrule.train.objectives import LOSSES

    loss = args.loss
    if dataset.task == "regression":
        loss = "mse"
        return loss, dataset.output_size, None if args.output_activation in (None, "none") else args.output_activation
    entry = LOSSES[loss]
    if entry.one_output and dataset.n_classes != 2:
        raise UsageError(f"--loss {loss} needs a two-class data set; {dataset.name} has {dataset.n_classes} classes")
    units = 1 if entry.one_output else dataset.n_classes
    act = args.output_activation if args.output_activation is not None else entry.output_activation
    return loss, units, None if act in (None, "none") else act


def train_command(args: argparse.Namespace) -> int:
    import chainrule
    from chainrule import nn, optim
    from chainrule.data import Standardizer
    from chainrule.train import Diagnostics, EarlyStopping, evaluate, fit, param_groups

    if args.patience is not None and args.val_size == 0:
        raise UsageError("--patience needs a validation set: add --val-size (e.g. 0.1)")
    with_nesterov, with_momentum = optimizers_taking("nesterov"), optimizers_taking("momentum")
    if args.nesterov and (args.optimizer not in with_nesterov or args.momentum <= 0):
        raise UsageError(f"--nesterov needs --optimizer {' or '.join(with_nesterov)} and --momentum > 0")
    takes_momentum = args.optimizer in with_momentum
    if args.momentum and not takes_momentum:
        raise UsageError(f"--momentum applies to {' and '.join(with_momentum)}, not {args.optimizer}")
    out_dir = args.out if args.out is not None else Path("runs") / args.data
    lr = args.lr if args.lr is not None else optim.OPTIMIZERS[args.optimizer].lr

    start = time.perf_counter()
    dataset = _load_data(args.data, args.n, args.noise, args.split_seed)
    (X_train, y_train), validation, (X_test, y_test) = _split(
        dataset, args.test_size, args.split_seed, args.stratify, args.val_size
    )
    scaler = None
    if args.standardize:
        scaler = Standardizer().fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
        if validation is not None:
            validation = (scaler.transform(validation[0]), validation[1])

    loss, units, out_act = _head(args, dataset)
    sizes = [dataset.n_features, *args.hidden, units]
    model = nn.MLP(sizes, activation=args.activation, output_activation=out_act, dtype=args.dtype, rng=args.seed)
    options: dict[str, Any] = {"lr": lr}
    if takes_momentum:
        options["momentum"] = args.momentum
    if args.nesterov:
        options["nesterov"] = True
    # NOTE: the groups carry their own weight_decay, so AdamW's default decay (1e-2) is off unless --l2 is given.
    optimizer = optim.get_optimizer(args.optimizer, param_groups(model, args.l2), **options)
    scheduler = None
    if args.schedule == "step":
        scheduler = optim.StepLR(optimizer, step_size=max(1, args.epochs // 3), gamma=0.1)
    elif args.schedule == "cosine":
        scheduler = optim.CosineAnnealingLR(optimizer, T_max=args.epochs)
    callbacks = [EarlyStopping("val_loss", patience=args.patience)] if args.patience else []
    diagnostics = Diagnostics() if args.diagnostics else None
    if diagnostics is not None:
        callbacks.append(diagnostics)
    metrics = ("accuracy",) if dataset.task == "classification" else ("mse",)

    print(
        f"data {dataset.name}: {len(X_train)} train, {len(X_test)} test"
        + (f", {len(validation[1])} validation" if validation else "")
        + f" samples of {dataset.n_features} features"
    )
    print(
        f"model MLP {'-'.join(map(str, sizes))} ({args.activation}), {model.num_parameters()} parameters; "
        f"loss {loss}, optimizer {args.optimizer} lr {lr:g}, batch {args.batch_size or 'full'}, {args.epochs} epochs"
    )
    history = fit(
        model,
        loss,
        optimizer,
        (X_train, y_train),
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation=validation,
        metrics=metrics,
        callbacks=callbacks,
        seed=args.seed,
        scheduler=scheduler,
        progress=args.progress,
        verbose=not args.quiet,
        compile=args.compile,
    )
    train_eval = evaluate(model, X_train, y_train, loss=loss, metrics=metrics)
    test_eval = evaluate(model, X_test, y_test, loss=loss, metrics=metrics)
    elapsed = time.perf_counter() - start
    key = metrics[0]
    if history.stopped_epoch is not None:
        print(f"early stopping at epoch {history.stopped_epoch}")
    print(f"final train {key} {train_eval[key]:.4f}   test {key} {test_eval[key]:.4f}   ({elapsed:.1f} s)")

    if not args.no_save:
        run = {
            "data": dataset.name,
            "data_options": dataset.options,
            "task": dataset.task,
            "loss": loss,
            "test_size": args.test_size,
            "split_seed": args.split_seed,
            "stratify": args.stratify,
            "val_size": args.val_size,
            "standardizer": scaler.to_dict() if scaler else None,
        }
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            model_path = chainrule.save(model, out_dir / "model.safetensors", metadata=run)
            metrics_path = out_dir / "metrics.json"
            report = {
                "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "handler"},
                "run": run,
                "history": history.to_dict(),
                "seconds": elapsed,
                "train": train_eval,
                "test": test_eval,
                **({f"train_{key}": train_eval[key], f"test_{key}": test_eval[key]}),
                "model": str(model_path),
                "chainrule_version": chainrule.__version__,
                **({"diagnostics": diagnostics.to_dict()} if diagnostics is not None else {}),
            }
            metrics_path.write_text(json.dumps(report, indent=2, default=_json_default) + "\n")
        except OSError as err:
            raise UsageError(f"cannot write to {out_dir}: {err.strerror or err}") from None
        print(f"saved {model_path} and {metrics_path}")
        if not args.no_plots:
            from chainrule.cli.plot import plots_after_training

            plots_after_training(out_dir, report, model)
    return 0


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON-serializable: {type(value).__name__}")


def _run_info(model_path: Path) -> dict[str, Any]:
    from chainrule.io import read_metadata

    info = read_metadata(model_path).get("user")
    if not info:
        sidecar = model_path.with_name("metrics.json")
        if sidecar.is_file():
            info = json.loads(sidecar.read_text()).get("run")
    if not info:
        raise UsageError(f"{model_path} has no record of its data split (was it saved by 'chainrule train'?)")
    return info


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
    train, _, test = _split(
        dataset, info["test_size"], info["split_seed"], info.get("stratify", False), info.get("val_size")
    )
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
