"""The ``chainrule`` command line: ``train``, ``predict``, ``datasets``, ``explain`` and the XOR ``demo``.

    chainrule train --data digits --hidden 64,32 --epochs 30 --out runs/digits
    chainrule predict --model runs/digits/model.safetensors

Bad arguments print one line, ``chainrule: error: ...``, on stderr and exit with status 2.
This module parses the command line; what each command does is in ``chainrule.cli.commands``,
which loads heavy modules inside the commands, so ``chainrule --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import chainrule.cli.commands as commands
from chainrule.cli import explain
from chainrule.cli import export as export_cli
from chainrule.cli import playground as playground_cli
from chainrule.cli import plot as plot_cli
from chainrule.cli import sweep as sweep_cli
from chainrule.cli.commands import UsageError, confusion_matrix, format_confusion
from chainrule.nn.activation import ACTIVATIONS, OUTPUT_ACTIVATIONS
from chainrule.optim import OPTIMIZERS
from chainrule.train.objectives import LOSSES
from chainrule.train.recipe import optimizers_taking

EXIT_USAGE = 2
EXIT_FAILURE = 1


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


#: the widest hidden layer the command line builds (a mistyped size must not exhaust the memory)
MAX_UNITS = 100_000


def _hidden(text: str) -> list[int]:
    """'64,32' -> [64, 32]; 'none' -> [] (no hidden layer: a linear model)."""
    if text.strip().lower() == "none":
        return []
    if text.strip() in ("", "0"):
        raise argparse.ArgumentTypeError(
            f"{text!r}: a hidden layer needs at least 1 unit; use 'none' for a linear model"
        )
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of layer sizes (e.g. 64,32)"
        ) from None
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"{text!r}: every hidden layer needs at least 1 unit")
    if max(sizes) > MAX_UNITS:
        raise argparse.ArgumentTypeError(f"{text!r}: a hidden layer of {max(sizes)} units is over {MAX_UNITS:,}")
    return sizes


def _folder(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty folder name (give a folder, e.g. runs/digits)")
    return Path(text)


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

    demo = _command(
        sub,
        "demo",
        commands.demo_command,
        help="train a 2-4-1 network on XOR with the engine and show the loss falling",
    )
    demo.add_argument("--steps", type=_count(1), default=2000, help="gradient-descent steps")
    demo.add_argument("--lr", type=_number("positive"), default=0.5, help="learning rate")
    demo.add_argument("--seed", type=_count(0), default=0, help="random seed for the initial weights")

    train = _command(
        sub,
        "train",
        commands.train_command,
        help="train an MLP on a data set, report accuracy, save the model and a metrics JSON",
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
    g.add_argument(
        "--split-seed", type=_count(0), default=0, help="seed of the train/test split (and toy-set generation)"
    )
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
    g.add_argument("--activation", choices=list(ACTIVATIONS), default="relu", help="hidden-layer activation")
    expects = ", ".join(f"{act} for --loss {name}" for name, (*_, act) in LOSSES.items() if act)
    g.add_argument(
        "--output-activation",
        choices=["none", *OUTPUT_ACTIVATIONS],
        default=None,
        help=f"activation after the last layer (default: {expects}, else none)",
    )
    g.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="parameter dtype")
    g = train.add_argument_group("training")
    g.add_argument(
        "--loss",
        choices=list(LOSSES),
        default="cross_entropy",
        help="loss; bce puts one sigmoid output unit on a two-class set (regression sets always use mse)",
    )
    g.add_argument("--optimizer", choices=list(OPTIMIZERS), default="sgd", help="optimizer")
    rates: dict[float, list[str]] = {}
    for name, entry in OPTIMIZERS.items():
        rates.setdefault(entry.lr, []).append(name)
    by_rate = ", ".join(f"{lr:g} for {', '.join(names)}" for lr, names in rates.items())
    g.add_argument("--lr", type=_number("positive"), default=None, help=f"learning rate (default: {by_rate})")
    momentum = ", ".join(optimizers_taking("momentum"))
    nesterov = ", ".join(optimizers_taking("nesterov"))
    g.add_argument("--momentum", type=_number("non-negative"), default=0.0, help=f"momentum ({momentum})")
    g.add_argument("--nesterov", action="store_true", help=f"Nesterov momentum ({nesterov}; needs --momentum > 0)")
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
    g.add_argument("--seed", type=_count(0), default=0, help="seed of the weight initialization and the shuffling")
    g.add_argument(
        "--compile",
        action="store_true",
        help="capture each training step once (chainrule.compile) and replay it: faster for small networks, "
        "the same weights bit for bit (default: off)",
    )
    g = train.add_argument_group("output")
    g.add_argument(
        "--out",
        type=_folder,
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
    g.add_argument(
        "--threads",
        type=_count(1),
        default=None,
        help="BLAS threads while training (default: 1 for networks whose layers have at most "
        "1,000,000 weights, where more threads only contend; else the BLAS's own choice)",
    )
    g.add_argument(
        "--diagnostics",
        action="store_true",
        help="record per-layer gradient, update and activation statistics in metrics.json (and diagnostics.png)",
    )
    g.add_argument("--no-plots", action="store_true", help="do not draw the plots (history.png, ...) next to the model")

    predict = _command(
        sub,
        "predict",
        commands.predict_command,
        help="evaluate a saved model on its data set's test split: accuracy and confusion matrix",
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
    predict.add_argument(
        "--confusion", type=Path, default=None, metavar="FILE", help="also draw the confusion matrix (.png or .svg)"
    )

    _command(sub, "datasets", commands.datasets_command, help="list the data sets")
    explain.add_parser(sub)
    plot_cli.add_parser(sub)
    sweep_cli.add_parser(sub)
    export_cli.add_parser(sub)
    playground_cli.add_parser(sub)
    return parser


def _command(
    sub: Any, name: str, handler: Callable[[argparse.Namespace], int], help: str, description: str | None = None
) -> argparse.ArgumentParser:
    """A subcommand's parser (one-line errors, defaults in the help) that runs ``handler`` on its arguments."""
    command = sub.add_parser(name, help=help, description=description, formatter_class=_Formatter)
    command.set_defaults(handler=handler)
    return command


# --------------------------------------------------------------------- entry point
def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args.handler(args))
    except BrokenPipeError:
        # NOTE: `chainrule predict ... | head` closed the pipe: stop quietly, as Unix tools do
        # (stdout goes to devnull so the interpreter's own flush at exit cannot fail again)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except MemoryError:
        print(f"chainrule {args.command}: error: not enough memory (choose smaller layers or data)", file=sys.stderr)
        return EXIT_FAILURE
    except UsageError as err:
        print(f"chainrule {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except (ImportError, FloatingPointError) as err:
        print(f"chainrule {args.command}: error: {err}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


__all__ = [
    "EXIT_FAILURE",
    "EXIT_USAGE",
    "UsageError",
    "build_parser",
    "confusion_matrix",
    "format_confusion",
    "main",
]


if __name__ == "__main__":
    sys.exit(main())
