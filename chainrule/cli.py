"""The ``chainrule`` command line: ``train``, ``predict``, ``datasets`` and the XOR ``demo``.

    chainrule train --data digits --hidden 64,32 --epochs 30 --out runs/digits
    chainrule predict --model runs/digits/model.safetensors

Bad arguments print one line, ``chainrule: error: ...``, on stderr and exit with status 2.
Heavy modules load inside the commands, so ``chainrule --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

EXIT_USAGE = 2
EXIT_FAILURE = 1
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
DEFAULT_LR = {"sgd": 0.1, "adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-3}
LOSSES = ("cross_entropy", "mse", "bce", "bce_with_logits", "hinge")
ACTIVATIONS = ("relu", "sigmoid", "tanh", "leaky_relu", "elu", "softplus", "gelu", "identity")


class UsageError(Exception):
    """A bad argument found after parsing (unknown file, inconsistent options): exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line on stderr (and still exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Append "(default: X)" to each option's help, unless the help already names its default or it is a switch."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or not action.option_strings or action.default == argparse.SUPPRESS:
            return text
        if action.nargs == 0:  # a switch such as --standardize
            return text + " (default: off)" if action.const is True and action.default is False else text
        return text if action.default is None else text + " (default: %(default)s)"


# --------------------------------------------------------------------- argument types
def _number(kind: str) -> Any:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if kind == "positive" and value <= 0:
            raise argparse.ArgumentTypeError(f"{text} must be > 0")
        if kind == "non-negative" and value < 0:
            raise argparse.ArgumentTypeError(f"{text} must be >= 0")
        if kind == "fraction" and not 0 < value < 1:
            raise argparse.ArgumentTypeError(f"{text} must lie strictly between 0 and 1")
        if kind == "fraction0" and not 0 <= value < 1:
            raise argparse.ArgumentTypeError(f"{text} must lie in [0, 1)")
        return value

    parse.__name__ = f"{kind} number"
    return parse


def _count(minimum: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text} must be >= {minimum}")
        return value

    parse.__name__ = "integer"
    return parse


def _hidden(text: str) -> list[int]:
    """'64,32' -> [64, 32]; '' or 'none' -> [] (no hidden layer: a linear model)."""
    if text.strip().lower() in ("", "none", "0"):
        return []
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of layer sizes (e.g. 64,32)"
        ) from None
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"{text!r}: every hidden layer needs at least 1 unit")
    return sizes


def _batch_size(text: str) -> int | None:
    if text.strip().lower() in ("full", "all", "0"):
        return None
    value = _count(1)(text)
    return value


def _dataset_name(text: str) -> str:
    from chainrule.data.registry import _entry

    try:
        return _entry(text)[0]
    except KeyError as err:
        raise argparse.ArgumentTypeError(str(err.args[0])) from None


_dataset_name.__name__ = "dataset"


# --------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="chainrule",
        description="chainrule: backpropagation made real, correct, fast and visible.",
        formatter_class=_Formatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    demo = sub.add_parser(
        "demo",
        help="train a 2-4-1 network on XOR with the engine and show the loss falling",
        formatter_class=_Formatter,
    )
    demo.add_argument("--steps", type=_count(1), default=2000, help="gradient-descent steps")
    demo.add_argument("--lr", type=_number("positive"), default=0.5, help="learning rate")
    demo.add_argument("--seed", type=int, default=0, help="random seed for the initial weights")
    demo.set_defaults(handler=_demo)

    train = sub.add_parser(
        "train",
        help="train an MLP on a data set, report accuracy, save the model and a metrics JSON",
        formatter_class=_Formatter,
        description="Train a multilayer perceptron with minibatch gradient descent.\n\n"
        "The data is split into train and test parts (--test-size, --split-seed); the test part is\n"
        "used only for the final report. Writes OUT/model.safetensors and OUT/metrics.json.",
    )
    g = train.add_argument_group("data")
    g.add_argument(
        "--data",
        type=_dataset_name,
        default="digits",
        metavar="NAME",
        help="data set: digits, mnist5k, xor, and, or, circle, spiral, moons, blobs, "
        "xor_quadrants, three_class, sine, square_pulse (see: chainrule datasets)",
    )
    g.add_argument(
        "--n",
        type=_count(1),
        default=None,
        help="number of generated points (toy sets; for xor/and/or: copies of the truth table; default: the set's own)",
    )
    g.add_argument(
        "--noise", type=_number("non-negative"), default=None, help="noise level (toy sets; default: the set's own)"
    )
    g.add_argument("--test-size", type=_number("fraction"), default=0.2, help="held-out test fraction")
    g.add_argument(
        "--val-size",
        type=_number("fraction0"),
        default=0.0,
        help="fraction of the training part held out for per-epoch validation (0 = none)",
    )
    g.add_argument("--split-seed", type=int, default=0, help="seed of the train/test split (and toy-set generation)")
    g.add_argument(
        "--stratify",
        action="store_true",
        help="keep each class's share equal in the train and test parts (default: a plain random split)",
    )
    g.add_argument(
        "--standardize",
        action="store_true",
        help="scale features to zero mean, unit variance (fitted on the training part)",
    )
    g = train.add_argument_group("model")
    g.add_argument(
        "--hidden",
        type=_hidden,
        default="64,32",
        metavar="SIZES",
        help="hidden layer sizes, comma-separated ('none' for a linear model)",
    )
    g.add_argument("--activation", choices=ACTIVATIONS, default="relu", help="hidden-layer activation")
    g.add_argument(
        "--output-activation",
        choices=("none", "sigmoid", "softmax", "tanh"),
        default=None,
        help="activation after the last layer (default: sigmoid for --loss bce, else none)",
    )
    g.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="parameter dtype")
    g = train.add_argument_group("training")
    g.add_argument(
        "--loss",
        choices=LOSSES,
        default="cross_entropy",
        help="loss; bce puts one sigmoid output unit on a two-class set (regression sets always use mse)",
    )
    g.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd", help="optimizer")
    g.add_argument(
        "--lr",
        type=_number("positive"),
        default=None,
        help="learning rate (default: 0.1 for sgd, 0.001 for adam, adamw, rmsprop)",
    )
    g.add_argument("--momentum", type=_number("non-negative"), default=0.0, help="momentum (sgd, rmsprop)")
    g.add_argument("--nesterov", action="store_true", help="Nesterov momentum (sgd; needs --momentum > 0)")
    g.add_argument(
        "--l2",
        type=_number("non-negative"),
        default=0.0,
        help="L2 weight decay on weight matrices, the gradient of (l2/2)·sum W² "
        "(the lecture's lambda/(2m) convention is --l2 lambda/m)",
    )
    g.add_argument(
        "--batch-size", type=_batch_size, default=64, help="minibatch size ('full' for full-batch gradient descent)"
    )
    g.add_argument("--epochs", type=_count(1), default=30, help="passes over the training data")
    g.add_argument(
        "--schedule",
        choices=("none", "step", "cosine"),
        default="none",
        help="learning-rate schedule: step (x0.1 every epochs/3) or cosine (to 0 at the last epoch)",
    )
    g.add_argument(
        "--patience",
        type=_count(1),
        default=None,
        help="early stopping: stop after this many epochs without val_loss improvement "
        "(needs --val-size; default: off)",
    )
    g.add_argument("--seed", type=int, default=0, help="seed of the weight initialization and the shuffling")
    g = train.add_argument_group("output")
    g.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder for model.safetensors and metrics.json (default: runs/DATA)",
    )
    g.add_argument("--no-save", action="store_true", help="do not write the model and metrics files")
    g.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="always show the progress bar (default: only on a terminal, never when CI is set)",
    )
    g.add_argument("--no-progress", dest="progress", action="store_false", help="never show the progress bar")
    g.add_argument("--quiet", action="store_true", help="no line per epoch")
    train.set_defaults(handler=_train)

    predict = sub.add_parser(
        "predict",
        help="evaluate a saved model on its data set's test split: accuracy and confusion matrix",
        formatter_class=_Formatter,
        description="Load a model saved by 'chainrule train' and evaluate it on the test part of the same\n"
        "deterministic split used in training (read from the model file's metadata).",
    )
    predict.add_argument("--model", type=Path, required=True, help="model file written by chainrule train (required)")
    predict.add_argument(
        "--data",
        type=_dataset_name,
        default=None,
        metavar="NAME",
        help="data set (default: the one the model was trained on)",
    )
    predict.add_argument(
        "--split", choices=("test", "train", "all"), default="test", help="which part of the data to evaluate on"
    )
    predict.set_defaults(handler=_predict)

    datasets = sub.add_parser("datasets", help="list the data sets", formatter_class=_Formatter)
    datasets.set_defaults(handler=_datasets)
    return parser


# --------------------------------------------------------------------- commands
def _demo(args: argparse.Namespace) -> int:
    from chainrule.demo import train_xor

    train_xor(steps=args.steps, lr=args.lr, seed=args.seed)
    return 0


def _datasets(args: argparse.Namespace) -> int:
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


def _split(dataset: Any, test_size: float, seed: int, stratify: bool) -> tuple[Any, Any, Any, Any]:
    from chainrule.data import train_test_split

    stratify = stratify and dataset.task == "classification"
    if len(dataset) < 2:
        raise UsageError(f"the {dataset.name} data set has too few samples to split")
    if dataset.name in ("xor", "and", "or") and len(dataset) == 4:
        # NOTE: a truth table has no samples to spare: train and "test" on the 4 points.
        return dataset.X, dataset.X, dataset.y, dataset.y
    try:
        return train_test_split(dataset.X, dataset.y, test_size=test_size, seed=seed, stratify=stratify)
    except ValueError as err:
        raise UsageError(str(err)) from None


def _head(args: argparse.Namespace, dataset: Any) -> tuple[str, int, str | None]:
    """(loss, output units, output activation) for the data set and the chosen loss."""
    loss = args.loss
    if dataset.task == "regression":
        loss = "mse"
        return loss, dataset.output_size, None if args.output_activation in (None, "none") else args.output_activation
    binary_single = loss in ("bce", "bce_with_logits")
    if binary_single and dataset.n_classes != 2:
        raise UsageError(f"--loss {loss} needs a two-class data set; {dataset.name} has {dataset.n_classes} classes")
    units = 1 if binary_single else dataset.n_classes
    default_act = "sigmoid" if loss == "bce" else None
    act = args.output_activation if args.output_activation is not None else default_act
    return loss, units, None if act in (None, "none") else act


def _train(args: argparse.Namespace) -> int:
    import chainrule
    from chainrule import nn, optim
    from chainrule.data import Standardizer, train_test_split
    from chainrule.train import EarlyStopping, evaluate, fit, param_groups

    if args.patience is not None and args.val_size == 0:
        raise UsageError("--patience needs a validation set: add --val-size (e.g. 0.1)")
    if args.nesterov and (args.optimizer != "sgd" or args.momentum <= 0):
        raise UsageError("--nesterov needs --optimizer sgd and --momentum > 0")
    if args.momentum and args.optimizer not in ("sgd", "rmsprop"):
        raise UsageError(f"--momentum applies to sgd and rmsprop, not {args.optimizer}")
    out_dir = args.out if args.out is not None else Path("runs") / args.data
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]

    start = time.perf_counter()
    dataset = _load_data(args.data, args.n, args.noise, args.split_seed)
    X_train, X_test, y_train, y_test = _split(dataset, args.test_size, args.split_seed, args.stratify)
    validation = None
    if args.val_size > 0:
        try:
            X_train, X_val, y_train, y_val = train_test_split(
                X_train, y_train, test_size=args.val_size, seed=args.split_seed + 1
            )
        except ValueError as err:
            raise UsageError(f"--val-size: {err}") from None
    scaler = None
    if args.standardize:
        scaler = Standardizer().fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    if args.val_size > 0:
        validation = (scaler.transform(X_val) if scaler else X_val, y_val)

    loss, units, out_act = _head(args, dataset)
    sizes = [dataset.n_features, *args.hidden, units]
    model = nn.MLP(sizes, activation=args.activation, output_activation=out_act, dtype=args.dtype, rng=args.seed)
    options: dict[str, Any] = {"lr": lr}
    if args.optimizer in ("sgd", "rmsprop"):
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
            }
            metrics_path.write_text(json.dumps(report, indent=2, default=_json_default) + "\n")
        except OSError as err:
            raise UsageError(f"cannot write to {out_dir}: {err.strerror or err}") from None
        print(f"saved {model_path} and {metrics_path}")
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


def _predict(args: argparse.Namespace) -> int:
    import numpy as np

    import chainrule
    from chainrule.data import Standardizer
    from chainrule.io import ModelFileError
    from chainrule.train import accuracy, predict

    if not args.model.is_file():
        raise UsageError(f"model file not found: {args.model}")
    try:
        model = chainrule.load(args.model)
        info = _run_info(args.model)
    except ModelFileError as err:
        raise UsageError(str(err)) from None
    name = args.data or info["data"]
    options = info.get("data_options", {}) if name == info["data"] else {}
    from chainrule.data import get_dataset

    dataset = get_dataset(name, **options)
    sizes = getattr(model, "sizes", None)
    if sizes is not None and dataset.n_features != sizes[0]:
        raise UsageError(f"the model takes {sizes[0]} features but the {name} data set has {dataset.n_features}")
    X_train, X_test, y_train, y_test = _split(
        dataset, info["test_size"], info["split_seed"], info.get("stratify", False)
    )
    if info.get("val_size"):
        from chainrule.data import train_test_split

        X_train, _, y_train, _ = train_test_split(
            X_train, y_train, test_size=info["val_size"], seed=info["split_seed"] + 1
        )
    X, y = {"test": (X_test, y_test), "train": (X_train, y_train), "all": (dataset.X, dataset.y)}[args.split]
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
    print(format_confusion(confusion_matrix(y, pred, dataset.n_classes)))
    return 0


# --------------------------------------------------------------------- entry point
def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args.handler(args))
    except UsageError as err:
        print(f"chainrule {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except (ImportError, FloatingPointError) as err:
        print(f"chainrule {args.command}: error: {err}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
