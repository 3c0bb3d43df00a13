"""Safe arithmetic expressions such as ``"(x+y)*z"``, parsed into a chainrule graph.

    expr = parse("(x+y)*z")
    expr.variables                                   # ('x', 'y', 'z')
    f = expr.evaluate({"x": x, "y": y, "z": z})      # a Tensor; f.backward() fills x.grad, ...

The text is parsed with ``ast.parse(text, mode="eval")`` and then walked against a whitelist:
numbers, variables, ``+ - * / **``, unary minus and plus, parentheses and the calls
exp, log, sqrt, abs, sigmoid, tanh, relu (one argument), max, min (two arguments).
Nothing is ever executed: there is no ``eval``, ``exec`` or ``compile``, and the checked tree
is copied into plain tuples before anything is computed. Anything else is an
``ExpressionError`` with a one-line message naming the construct and where it is.

Bounds, so that no input can hang or crash the parser: at most ``MAX_TEXT`` characters,
brackets nested at most ``MAX_NESTING`` deep (checked before ``ast.parse``, whose C parser
would otherwise recurse), at most ``MAX_NODES`` nodes and ``MAX_DEPTH`` levels, number
literals with magnitude at most ``MAX_LITERAL``, and constant exponents with magnitude at
most ``MAX_EXPONENT``. Arithmetic runs on float tensors, never on Python integers, so
``9**9`` costs one multiplication.
"""

from __future__ import annotations

import ast
import keyword
import math
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

MAX_TEXT = 10_000
MAX_NESTING = 100
MAX_NODES = 2_000
MAX_DEPTH = 200
MAX_LITERAL = 1e300
MAX_EXPONENT = 1_000

# name -> number of arguments; the chainrule function of the same name, max -> maximum, min -> minimum
FUNCTIONS: dict[str, int] = {
    "exp": 1,
    "log": 1,
    "sqrt": 1,
    "abs": 1,
    "sigmoid": 1,
    "tanh": 1,
    "relu": 1,
    "max": 2,
    "min": 2,
}
_CHAINRULE_NAME = {"max": "maximum", "min": "minimum"}
_ALLOWED = ", ".join(FUNCTIONS)

_BINARY = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow"}
_FOLD = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "pow": np.power}
_SYMBOL = {
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.MatMult: "@",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.BitAnd: "&",
    ast.Not: "not",
    ast.Invert: "~",
}
# the error message for each forbidden construct
_CONSTRUCT = {
    ast.Attribute: "attribute access is not allowed",
    ast.Subscript: "subscripts are not allowed",
    ast.Slice: "slices are not allowed",
    ast.Lambda: "lambdas are not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "generator expressions are not allowed",
    ast.List: "lists are not allowed",
    ast.Tuple: "tuples are not allowed",
    ast.Set: "sets are not allowed",
    ast.Dict: "dicts are not allowed",
    ast.IfExp: "conditional expressions (a if c else b) are not allowed",
    ast.Compare: "comparisons are not allowed",
    ast.BoolOp: "boolean operators (and, or) are not allowed",
    ast.NamedExpr: "assignment expressions (:=) are not allowed",
    ast.Starred: "starred arguments are not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.FormattedValue: "f-strings are not allowed",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
}

# The checked expression as plain tuples: ("num", value), ("var", name), ("neg", node),
# (op, left, right) for op in add/sub/mul/div/pow, ("call", function, (args...)).
Node = tuple[Any, ...]


class ExpressionError(ValueError):
    """An expression or a variable assignment that is not allowed; the message is one line."""


def _one_line(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Expression:
    """A parsed, checked expression; ``evaluate`` builds its chainrule graph."""

    __slots__ = ("_root", "text", "variables")

    def __init__(self, text: str, root: Node, variables: Sequence[str]) -> None:
        self.text = text
        self._root = root
        self.variables: tuple[str, ...] = tuple(variables)  # first-appearance order

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def evaluate(self, values: Mapping[str, Any], dtype: Any = None) -> Any:
        """The expression's value as a Tensor, computed with chainrule ops on ``values``.

        ``values`` maps each variable to a Tensor (or a number). Constants take ``dtype``,
        or else the dtype of the first variable's tensor, or else float64.
        """
        import chainrule as cr

        missing = [name for name in self.variables if name not in values]
        if missing:
            raise ExpressionError(f"missing value for variable {missing[0]!r} (give it as {missing[0]}=VALUE)")
        if dtype is None:
            first = next((values[n] for n in self.variables if isinstance(values[n], cr.Tensor)), None)
            dtype = first.dtype if first is not None else np.float64
        leaves = {name: _as_tensor(cr, values[name], dtype) for name in self.variables}
        return _as_tensor(cr, _evaluate(cr, self._root, leaves, dtype), dtype)


def _as_tensor(cr: Any, value: Any, dtype: Any) -> Any:
    return value if isinstance(value, cr.Tensor) else cr.tensor(value, dtype=dtype)


def _evaluate(cr: Any, node: Node, leaves: Mapping[str, Any], dtype: Any) -> Any:
    """A Tensor, or a Python number for a literal (so ``x**2`` is the constant-power op)."""
    kind = node[0]
    if kind == "num":
        return node[1]
    if kind == "var":
        return leaves[node[1]]
    if kind == "neg":
        operand = _evaluate(cr, node[1], leaves, dtype)
        return -operand
    if kind == "call":
        args = [_evaluate(cr, arg, leaves, dtype) for arg in node[2]]
        args[0] = _as_tensor(cr, args[0], dtype)
        return getattr(cr, _CHAINRULE_NAME.get(node[1], node[1]))(*args)
    left = _evaluate(cr, node[1], leaves, dtype)
    right = _evaluate(cr, node[2], leaves, dtype)
    if not isinstance(left, cr.Tensor) and not isinstance(right, cr.Tensor):
        left = _as_tensor(cr, left, dtype)  # both constants: compute in the working dtype
    if kind == "add":
        return left + right
    if kind == "sub":
        return left - right
    if kind == "mul":
        return left * right
    if kind == "div":
        return left / right
    return left**right


# --------------------------------------------------------------------- parsing
def parse(text: str) -> Expression:
    """Parse and check ``text``; raise ExpressionError naming the first thing not allowed."""
    if not isinstance(text, str):
        raise ExpressionError(f"the expression must be a string, not {type(text).__name__}")
    if len(text) > MAX_TEXT:
        raise ExpressionError(f"expression is too long: {len(text)} characters (at most {MAX_TEXT})")
    if not text.strip():
        raise ExpressionError("empty expression")
    _check_nesting(text)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as err:
        where = f" (column {err.offset})" if err.offset else ""
        raise ExpressionError(f"malformed expression: {_one_line(str(err.msg), 120)}{where}") from None
    except (RecursionError, MemoryError):
        raise ExpressionError("malformed expression: too deeply nested to parse") from None
    except ValueError as err:
        raise ExpressionError(f"malformed expression: {_one_line(str(err), 120)}") from None
    _check_size(tree.body)
    checker = _Checker(text.strip())
    root, _ = checker.convert(tree.body)
    return Expression(text, root, checker.variables)


def _check_nesting(text: str) -> None:
    """Reject deep bracket nesting cheaply, before CPython's recursive parser sees it."""
    depth = 0
    for char in text:
        if char in "([{":
            depth += 1
            if depth > MAX_NESTING:
                raise ExpressionError(f"expression is nested too deeply: more than {MAX_NESTING} open brackets")
        elif char in ")]}":
            depth -= 1


def _check_size(root: ast.AST) -> None:
    """At most MAX_NODES expression nodes and MAX_DEPTH levels, counted without recursion."""
    count = 0
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise ExpressionError(f"expression is too large: more than {MAX_NODES} nodes")
        if depth > MAX_DEPTH:
            raise ExpressionError(f"expression is nested too deeply: more than {MAX_DEPTH} levels")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node) if isinstance(child, ast.expr))


class _Checker:
    """Walks the checked-size tree, rejects what is not whitelisted and converts the rest."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.variables: list[str] = []

    def snippet(self, node: ast.AST) -> str:
        return _one_line(ast.get_source_segment(self.text, node) or "?")

    def error(self, problem: str, node: ast.AST) -> ExpressionError:
        return ExpressionError(f"{problem}: {self.snippet(node)}")

    def convert(self, node: ast.AST) -> tuple[Node, float | None]:
        """The node as tuples, and its value when it is made of constants only (else None)."""
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.UAdd):
                return self.convert(node.operand)
            if isinstance(node.op, ast.USub):
                operand, value = self.convert(node.operand)
                if operand[0] == "num":
                    return ("num", -operand[1]), -operand[1]
                return ("neg", operand), None if value is None else -value
            raise self.error(f"the operator {_SYMBOL.get(type(node.op), '?')} is not allowed", node)
        if isinstance(node, ast.BinOp):
            return self.binary(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        raise self.error(_CONSTRUCT.get(type(node), f"{type(node).__name__} is not allowed"), node)

    def constant(self, node: ast.Constant) -> tuple[Node, float | None]:
        value = node.value
        if isinstance(value, bool) or value is None or value is Ellipsis:
            raise self.error(f"{value!r} is not a number", node)
        if isinstance(value, (str, bytes)):
            raise self.error("strings are not allowed", node)
        if isinstance(value, complex):
            raise self.error("complex numbers are not allowed", node)
        if not isinstance(value, (int, float)):
            raise self.error(f"{type(value).__name__} constants are not allowed", node)
        if not abs(value) <= MAX_LITERAL:  # also catches 1e400 (inf)
            raise self.error(f"number too large (|number| <= {MAX_LITERAL:g})", node)
        return ("num", value), float(value)

    def name(self, node: ast.Name) -> tuple[Node, None]:
        if node.id in FUNCTIONS:
            raise self.error(f"{node.id!r} is a function: call it as {node.id}(...)", node)
        if node.id not in self.variables:
            self.variables.append(node.id)
        return ("var", node.id), None

    def binary(self, node: ast.BinOp) -> tuple[Node, float | None]:
        op = _BINARY.get(type(node.op))
        if op is None:
            raise self.error(f"the operator {_SYMBOL.get(type(node.op), '?')} is not allowed", node)
        left, a = self.convert(node.left)
        right, b = self.convert(node.right)
        if op == "pow" and b is not None and not abs(b) <= MAX_EXPONENT:
            raise ExpressionError(
                f"exponent {self.snippet(node.right)} is too large (|exponent| <= {MAX_EXPONENT}): {self.snippet(node)}"
            )
        value = None
        if a is not None and b is not None:
            with np.errstate(all="ignore"):  # constant values only feed the exponent check above
                value = float(_FOLD[op](np.float64(a), np.float64(b)))
        return (op, left, right), value

    def call(self, node: ast.Call) -> tuple[Node, None]:
        func = node.func
        if not isinstance(func, ast.Name):
            if type(func) in _CONSTRUCT:
                raise self.error(_CONSTRUCT[type(func)], func)
            raise self.error(f"only the functions {_ALLOWED} can be called", node)
        if func.id not in FUNCTIONS:
            raise self.error(f"unknown function {func.id!r} (allowed: {_ALLOWED})", node)
        if node.keywords:
            raise self.error("keyword arguments are not allowed", node)
        if any(isinstance(arg, ast.Starred) for arg in node.args):
            raise self.error("starred arguments are not allowed", node)
        arity = FUNCTIONS[func.id]
        if len(node.args) != arity:
            plural = "argument" if arity == 1 else "arguments"
            raise self.error(f"{func.id} takes {arity} {plural}, got {len(node.args)}", node)
        args = tuple(self.convert(arg)[0] for arg in node.args)
        return ("call", func.id, args), None


# --------------------------------------------------------------------- NAME=VALUE arguments
def parse_assignments(items: Iterable[str], variables: Sequence[str] | None = None) -> dict[str, float]:
    """``["x=-2", "y=5"]`` -> ``{"x": -2.0, "y": 5.0}``; with ``variables``, exactly those names."""
    values: dict[str, float] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep:
            raise ExpressionError(f"expected NAME=VALUE, got {_one_line(item)!r}")
        name = unicodedata.normalize("NFKC", name)  # as Python normalizes identifiers
        if not name.isidentifier() or keyword.iskeyword(name):
            raise ExpressionError(f"{_one_line(name)!r} is not a variable name (in {_one_line(item)!r})")
        if name in FUNCTIONS:
            raise ExpressionError(f"{name!r} is a function, not a variable (in {_one_line(item)!r})")
        if name in values:
            raise ExpressionError(f"variable {name!r} is given twice")
        try:
            value = float(text)
        except ValueError:
            raise ExpressionError(f"the value of {name} is not a number: {_one_line(text)!r}") from None
        if not math.isfinite(value):
            raise ExpressionError(f"the value of {name} must be a finite number, got {_one_line(text)!r}")
        values[name] = value
    if variables is not None:
        for name in variables:
            if name not in values:
                raise ExpressionError(f"missing value for variable {name!r} (give it as {name}=VALUE)")
        for name in values:
            if name not in variables:
                used = ", ".join(variables) or "no variables"
                raise ExpressionError(f"unknown variable {name!r} (the expression uses {used})")
    return values


__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_EXPONENT",
    "MAX_LITERAL",
    "MAX_NESTING",
    "MAX_NODES",
    "MAX_TEXT",
    "Expression",
    "ExpressionError",
    "parse",
    "parse_assignments",
]
