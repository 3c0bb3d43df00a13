"""``chainrule explain``: the forward value, every gradient and the backward steps of an expression.

    chainrule explain "(x+y)*z" x=-2 y=5 z=-4
    chainrule explain "(x+y)*z" x=-2 y=5 z=-4 --format json
    chainrule explain "sigmoid(w*x + b)" w=0.5 x=2 b=-1 --svg graph.svg

The expression is parsed by ``chainrule.viz.expression`` (a whitelist over Python's ``ast``,
never ``eval``). The whole command line is checked before anything is computed, and the
drawings are written only after everything else succeeded: each is rendered to a temporary
file beside its target and then moved into place, so no file is ever half-written.
Bad input is one line on stderr and exit status 2; a drawing that cannot be made (Graphviz's
``dot`` missing, a file that cannot be written) is one line and exit status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from chainrule.cli.commands import UsageError

EXIT_FAILURE = 1
FORMATS = ("text", "md", "html", "json")
DTYPES = ("float32", "float64")
DRAWINGS = (("svg", ".svg"), ("png", ".png"), ("dot", ".dot"))
DOT_TIMEOUT = 120  # seconds for Graphviz on one drawing
OUTPUT_NAME = "f"  # the expression's value is called f in "df/dx"

DESCRIPTION = """\
Compute an expression's value and, by backpropagation, the gradient of every variable,
and show each backward step: the upstream gradient, the local gradient and their product.

Expressions use numbers, variables, + - * / **, unary minus, parentheses and the functions
exp, log, sqrt, abs, sigmoid, tanh, relu, max(a, b) and min(a, b). Give every variable
exactly once as NAME=VALUE. An expression that starts with '-' goes after '--', and the
options before it:
    chainrule explain --format json -- "-x*y" x=2 y=3
"""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``explain`` on the subparsers object ``sub``; its handler is ``explain_command``."""
    command = sub.add_parser(
        "explain",
        help="show an expression's value, its gradients and every backward step",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument("expression", help='the expression, e.g. "(x+y)*z" (quote it for the shell)')
    command.add_argument(
        "assignments", nargs="*", metavar="NAME=VALUE", help="the value of each variable, e.g. x=-2 y=5 z=-4"
    )
    command.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="output: a text table, Markdown, HTML or one JSON object (default: text)",
    )
    command.add_argument("--svg", type=Path, metavar="FILE", help="also draw the graph as SVG (needs Graphviz)")
    command.add_argument("--png", type=Path, metavar="FILE", help="also draw the graph as PNG (needs Graphviz)")
    command.add_argument("--dot", type=Path, metavar="FILE", help="also write the graph's Graphviz DOT source")
    command.add_argument(
        "--dtype", choices=DTYPES, default="float64", help="dtype of the variables and constants (default: float64)"
    )
    command.set_defaults(handler=explain_command)
    return command


# --------------------------------------------------------------------- checking
def _drawings(args: argparse.Namespace) -> list[tuple[Path, str]]:
    """The requested drawings as (target, suffix), checked so that writing them can only fail in the tool."""
    drawings: list[tuple[Path, str]] = []
    seen: dict[Path, str] = {}
    for flag, suffix in DRAWINGS:
        path = getattr(args, flag, None)
        if path is None:
            continue
        if not str(path) or path.name in ("", ".", ".."):
            raise UsageError(f"--{flag}: {str(path)!r} is not a file name")
        try:
            if path.is_dir():
                raise UsageError(f"--{flag}: {path} is a directory")
            if not path.parent.is_dir():
                raise UsageError(f"--{flag}: the folder {path.parent} does not exist")
            key = path.resolve()
        except OSError as err:
            raise UsageError(f"--{flag}: cannot use {str(path)[:80]!r}: {err.strerror or err}") from None
        if key in seen:
            raise UsageError(f"--{flag} and --{seen[key]} name the same file {path}")
        seen[key] = flag
        drawings.append((path, suffix))
    return drawings


def _number(value: Any, dtype: str) -> str:
    """A scalar as the shortest text that reads back to it in ``dtype`` ("-12.0", "0.1" in float32)."""
    import numpy as np

    array = np.asarray(value, dtype=dtype)
    return str(array.reshape(())[()]) if array.size == 1 else np.array2string(array, separator=", ")


# --------------------------------------------------------------------- the command
def explain_command(args: argparse.Namespace) -> int:
    from chainrule.viz.expression import ExpressionError, parse, parse_assignments

    for item in args.assignments:
        if item.startswith("-") and "=" not in item:
            raise UsageError(f"{item!r} is not NAME=VALUE (after '--', everything is; put options before it)")
    try:
        expression = parse(args.expression)
        values = parse_assignments(args.assignments, expression.variables)
    except ExpressionError as err:
        raise UsageError(str(err)) from None
    if not expression.variables:
        text = " ".join(args.expression.split())
        text = text if len(text) <= 60 else text[:57] + "..."
        raise UsageError(f"the expression {text!r} has no variables: there is nothing to differentiate")
    drawings = _drawings(args)

    import numpy as np

    import chainrule as cr
    from chainrule import viz

    dtype = np.dtype(args.dtype)
    leaves = {name: cr.tensor(value, requires_grad=True, dtype=dtype, name=name) for name, value in values.items()}
    # NOTE: log(-1) or 1/0 is a fair question here: the answer (nan, inf) is shown, not warned about.
    with np.errstate(all="ignore"):
        output = expression.evaluate(leaves, dtype=dtype)
        explanation = viz.explain(output, names=leaves)
    text = _render(explanation, expression.variables, args)
    if drawings:
        try:
            images = _draw(explanation.draw(), drawings)
            _write_all(images)
        except (RuntimeError, OSError) as err:
            message = " ".join(str(err).split()) or type(err).__name__
            if isinstance(err, RuntimeError):  # Graphviz missing or failing: the DOT text needs no Graphviz
                message += "; --dot FILE writes the DOT text without it"
            print(f"chainrule explain: error: cannot draw the graph: {message}", file=sys.stderr)
            return EXIT_FAILURE
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def _render(explanation: Any, variables: tuple[str, ...], args: argparse.Namespace) -> str:
    grads = explanation.grads
    if args.format == "json":
        record = explanation.to_dict()  # NaN and infinities are the strings "nan", "inf", "-inf"
        record = {"expression": " ".join(args.expression.split()), **record}
        record["grads"] = {name: record["grads"][name] for name in variables}
        return json.dumps(record)
    if args.format == "md":
        return explanation.to_markdown()
    if args.format == "html":
        return explanation.to_html()
    lines = [f"value = {_number(explanation.value, args.dtype)}"]
    lines += [f"d{OUTPUT_NAME}/d{name} = {_number(grads[name], args.dtype)}" for name in variables]
    return "\n".join(lines) + "\n\n" + str(explanation)


def _draw(graph: Any, drawings: list[tuple[Path, str]]) -> list[tuple[Path, bytes]]:
    """Every drawing's bytes, made before any file is touched (RuntimeError when Graphviz's dot is missing)."""
    images = []
    for target, suffix in drawings:
        data = graph.source.encode("utf-8") if suffix == ".dot" else graph.pipe(suffix[1:], timeout=DOT_TIMEOUT)
        images.append((target, data))
    return images


def _write_all(images: list[tuple[Path, bytes]]) -> None:
    """Write each file to a temporary name beside it, then rename: a file is complete or absent."""
    written: list[tuple[Path, Path]] = []
    try:
        for target, data in images:
            temporary = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
            written.append((temporary, target))
            temporary.write_bytes(data)
        for temporary, target in written:
            os.replace(temporary, target)
    finally:
        for temporary, _ in written:
            temporary.unlink(missing_ok=True)


__all__ = ["DTYPES", "FORMATS", "add_parser", "explain_command"]
