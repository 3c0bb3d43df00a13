"""``draw``: the computational graph as Graphviz DOT, each node with its value and gradient.

One node per op application and per leaf (input, parameter, constant), edges in the direction
the data flows. Each node shows its op, its label (``chainrule.viz.labels``: a parameter's name,
the ``name=`` given, else a stable id such as ``mul_1``), its forward value in green and, once
known, its gradient in red below it, as lecture slides draw them. The DOT text is produced here
(``Graph.source``, no dependency); only ``Graph.render`` to an image runs Graphviz's ``dot``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.autograd.tensor import Tensor
from chainrule.viz.labels import Entry, GraphIndex, build_index, value_lines

VALUE_COLOUR = "#1a7f37"  # dark green: forward values
GRAD_COLOUR = "#b31d28"  # dark red: gradients
HIGHLIGHT_COLOUR = "#e8590c"
_HEADER = {"op": "#dbe9f6", "param": "#fde7c7", "leaf": "#fff5b1", "const": "#eeeeee", "module": "#e5dbff"}
_KIND_TEXT = {"param": "parameter", "leaf": "input", "const": "constant"}
# Ops whose inputs can be swapped: their edges need no argument names.
_COMMUTATIVE = {"add", "mul", "maximum", "minimum"}
_ARG_NAMES = {"linear": ("x", "weight", "bias"), "where": ("a", "b")}
FORMATS = ("svg", "png", "pdf", "dot", "gv", "jpg", "jpeg")

_NO_DOT = (
    "Graphviz's 'dot' program was not found on PATH, so {target} was not drawn; the DOT text was written to "
    "{dot_path}. Install Graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz; "
    "conda: conda install graphviz) and run: dot -T{fmt} {dot_path} -o {target}"
)


def html(text: str) -> str:
    """Escape user text for a Graphviz HTML-like label."""
    out = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    out = out.replace("'", "&#39;")
    # NOTE: control characters are not allowed in DOT's XML-like labels: shown as U+FFFD.
    return "".join(ch if ch >= " " or ch == "\n" else "\ufffd" for ch in out).replace("\n", "<BR/>")


def quote(text: str) -> str:
    """A DOT double-quoted string (attribute values such as tooltips)."""
    text = "".join(ch if ch >= " " else " " for ch in text)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Graph:
    """A drawn graph: ``.source`` is the DOT text; ``.render(path)`` writes .svg/.png/.pdf/.dot."""

    def __init__(self, source: str, nodes: int, edges: int) -> None:
        self.source = source
        self.nodes = nodes
        self.edges = edges

    def __repr__(self) -> str:
        return f"<chainrule.viz.Graph: {self.nodes} nodes, {self.edges} edges; .source is the DOT text>"

    def __str__(self) -> str:
        return self.source

    def pipe(self, format: str = "svg", timeout: float | None = None) -> bytes:
        """The graph rendered by ``dot`` in ``format``, as bytes (RuntimeError when dot is missing)."""
        format = _check_format(format)
        if format in ("dot", "gv"):
            return self.source.encode("utf-8")
        dot = shutil.which("dot")
        if dot is None:
            raise RuntimeError(
                "Graphviz's 'dot' program was not found on PATH: install Graphviz (apt-get install graphviz, "
                "brew install graphviz or conda install graphviz), or use Graph.source (the DOT text)"
            )
        return _run_dot(dot, format, self.source, timeout)

    def render(self, path: str | os.PathLike[str], *, timeout: float | None = None) -> Path:
        """Write the graph to ``path``; the format is the suffix (.svg, .png, .pdf, or .dot for the text).

        The file appears complete or not at all (written to a temporary file beside it, then
        renamed). Without Graphviz's ``dot``, the DOT text is written next to ``path``
        (``g.svg`` -> ``g.dot``) and a RuntimeError says how to install Graphviz.
        """
        target = Path(path)
        if not target.suffix:
            raise ValueError(f"Graph.render(): {target} has no suffix to tell the format: use .svg, .png, .pdf or .dot")
        format = _check_format(target.suffix.lstrip("."), path=target)
        if format in ("dot", "gv"):
            _write_atomic(target, self.source.encode("utf-8"))
            return target
        dot = shutil.which("dot")
        if dot is None:
            dot_path = target.with_suffix(".dot")
            _write_atomic(dot_path, self.source.encode("utf-8"))
            raise RuntimeError(_NO_DOT.format(target=target, dot_path=dot_path, fmt=format))
        _write_atomic(target, _run_dot(dot, format, self.source, timeout))
        return target

    def _repr_svg_(self) -> str | None:
        if shutil.which("dot") is None:
            warnings.warn(
                "chainrule.viz: Graphviz's 'dot' is not installed (apt-get install graphviz), so the graph "
                "cannot be shown as SVG; Graph.source holds the DOT text",
                RuntimeWarning,
                stacklevel=2,
            )
            return None
        return self.pipe("svg").decode("utf-8")


def _check_format(format: str, path: Path | None = None) -> str:
    fmt = format.lower()
    if fmt not in FORMATS:
        where = f" (from the suffix of {path})" if path is not None else ""
        raise ValueError(f"Graph: cannot write format {format!r}{where}: choose one of {', '.join(FORMATS)}")
    return "jpg" if fmt == "jpeg" else fmt


def _run_dot(dot: str, format: str, source: str, timeout: float | None) -> bytes:
    try:
        done = subprocess.run(
            [dot, f"-T{format}"], input=source.encode("utf-8"), capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as err:
        raise RuntimeError(f"Graphviz's dot did not finish drawing the graph within {timeout} s") from err
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError(f"Graphviz's dot failed (exit status {done.returncode}) drawing -T{format}: {message}")
    return done.stdout


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory (never half-written)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# --------------------------------------------------------------------- drawing
def draw(
    tensor: Any,
    *,
    collapse_modules: bool = False,
    rankdir: str = "LR",
    precision: int = 4,
    highlight: Tensor | Iterable[Tensor] | None = None,
    model: Any = None,
    names: Any = None,
) -> Graph:
    """Draw the computational graph that made ``tensor`` (or the one an ``Explanation`` recorded).

    * each op and each leaf is a node showing its op, its label, its value (green) and,
      once backward has run, its gradient (red): leaves show ``.grad``, non-leaves their
      ``.grad`` if ``retain_grad()`` was called. Draw ``chainrule.explain(t)`` instead of
      ``t`` to see every node's gradient from one backward pass;
    * ``collapse_modules=True``: one box per ``nn.Module`` call (Linear, ReLU, ...);
    * ``highlight=x``: the paths from ``x`` (a tensor of the graph, or several) to the output;
    * ``model=`` (an ``nn.Module``) or ``names=`` (a mapping of name -> tensor) name the
      parameters (``0.weight``) and module calls.
    """
    if rankdir not in ("LR", "RL", "TB", "BT"):
        raise ValueError(f"draw(): rankdir must be 'LR', 'RL', 'TB' or 'BT', got {rankdir!r}")
    record = getattr(tensor, "graph_record", None)
    if record is not None and not isinstance(tensor, Tensor):
        if model is not None or names is not None:
            raise ValueError("draw(): an explanation already has its names: pass names=/model= to explain()")
        index, grads, values = record()
    else:
        index = build_index(tensor, names, model, who="draw()")
        grads, values = _known_grads(index), {}
    return _draw(index, grads, values, collapse_modules, rankdir, precision, highlight)


def _known_grads(index: GraphIndex) -> dict[int, np.ndarray]:
    grads: dict[int, np.ndarray] = {}
    for e in index.entries:
        g = e.tensor.grad
        if g is not None and (e.node is None or e.node.retained is e.tensor):
            grads[e.index] = g.data
    return grads


def _highlighted(index: GraphIndex, highlight: Any) -> set[int]:
    """The entries on a path from the highlighted tensor(s) to the output."""
    if highlight is None:
        return set()
    starts = [highlight] if isinstance(highlight, Tensor) else list(highlight)
    consumers: list[list[int]] = [[] for _ in index.entries]
    for e in index.entries:
        for i in e.inputs:
            consumers[i].append(e.index)
    marked: set[int] = set()
    stack = []
    for t in starts:
        entry = index.find(t) if isinstance(t, Tensor) else None
        if entry is None:
            raise ValueError("draw(): highlight= must be a tensor that is part of the drawn graph")
        stack.append(entry.index)
    while stack:
        i = stack.pop()
        if i not in marked:
            marked.add(i)
            stack.extend(consumers[i])
    return marked


def _boxes(index: GraphIndex) -> tuple[dict[int, int], list[Entry]]:
    """entry index -> box number for ops inside a module call, and each box's output entry.

    A box is claimed from its output node back to the nodes of the call's inputs; outer calls
    are claimed first (the walk runs from the output), so a module inside another is absorbed.
    """
    owner: dict[int, int] = {}
    outputs: list[Entry] = []
    entries = index.entries
    for e in reversed(entries):
        scope = e.scope
        if scope is None or e.index in owner:
            continue
        box = len(outputs)
        outputs.append(e)
        # the nodes that made the call's tensor inputs (leaves end the walk anyway)
        stop = {id(a._grad_fn) for a in scope[1] if isinstance(a, Tensor) and a._grad_fn is not None}
        stack = [e.index]
        while stack:
            i = stack.pop()
            if i in owner:
                continue
            owner[i] = box
            for j in entries[i].inputs:
                inner = entries[j]
                if inner.node is not None and id(inner.node) not in stop and j not in owner:
                    stack.append(j)
    return owner, outputs


def _table(
    header: str,
    detail: str,
    value: np.ndarray,
    grad: np.ndarray | None,
    colour: str,
    precision: int,
    *,
    bold_border: bool,
    highlighted: bool,
) -> str:
    border = HIGHLIGHT_COLOUR if highlighted else "#444444"
    width = 3 if highlighted else (2 if bold_border else 1)
    rows = [f'<TR><TD BGCOLOR="{colour}">{header}</TD></TR>']
    if detail:
        rows.append(f'<TR><TD><FONT POINT-SIZE="9" COLOR="#555555">{html(detail)}</FONT></TD></TR>')
    lines = value_lines(value, precision)
    rows.append(f'<TR><TD><FONT COLOR="{VALUE_COLOUR}">{html("value " + chr(10).join(lines))}</FONT></TD></TR>')
    if grad is not None:
        lines = value_lines(np.asarray(grad), precision)
        rows.append(f'<TR><TD><FONT COLOR="{GRAD_COLOUR}">{html("grad " + chr(10).join(lines))}</FONT></TD></TR>')
    return (
        f'<<TABLE BORDER="{width}" CELLBORDER="0" CELLSPACING="0" CELLPADDING="3" STYLE="ROUNDED" '
        f'COLOR="{border}" BGCOLOR="white">{"".join(rows)}</TABLE>>'
    )


def _draw(
    index: GraphIndex,
    grads: dict[int, np.ndarray],
    values: dict[int, np.ndarray],
    collapse: bool,
    rankdir: str,
    precision: int,
    highlight: Any,
) -> Graph:
    entries = index.entries
    marked = _highlighted(index, highlight)
    owner, box_outputs = _boxes(index) if collapse else ({}, [])
    root = index.root.index
    out = [
        "digraph chainrule {",
        f'  graph [rankdir={rankdir}, fontname="Helvetica", nodesep=0.3, ranksep=0.45];',
        '  node [shape=plain, fontname="Helvetica", fontsize=11];',
        '  edge [color="#666666", arrowsize=0.7, fontname="Helvetica", fontsize=9];',
    ]
    add = out.append
    nodes = 0
    # NOTE: a constant (a literal such as the 2 in ``2 * x``, often one cached tensor shared by many
    # ops) is drawn once per use, next to its op: one node with edges all over the graph is unreadable.
    constants: dict[int, str] = {}
    for e in entries:
        if e.index in owner:
            continue
        if e.kind == "op":
            header = f"<B>{html(e.op)}</B> {html(e.label)}"
            tooltip = f"{e.op} {e.label}" + (f" ({e.detail})" if e.detail else "")
        else:
            header = f'<B>{html(e.label)}</B> <FONT POINT-SIZE="9">{_KIND_TEXT[e.kind]}</FONT>'
            tooltip = f"{_KIND_TEXT[e.kind]} {e.label}"
        label = _table(
            header,
            e.detail,
            values.get(e.index, e.tensor.data),
            grads.get(e.index),
            _HEADER[e.kind],
            precision,
            bold_border=e.index == root,
            highlighted=e.index in marked,
        )
        attrs = f"label={label}, tooltip={quote(tooltip)}"
        if e.kind == "const" and e.index != root:
            constants[e.index] = attrs
            continue
        add(f"  n{e.index} [{attrs}];")
        nodes += 1
    marked_boxes = {owner[i] for i in marked if i in owner}
    for box, e in enumerate(box_outputs):
        module = e.scope[0]
        name = index.module_label(module)
        cls = type(module).__name__
        given = index.module_label.given.get(id(module))  # "" for the model itself
        header = f"<B>{html(name if given is None else cls)}</B>" + (f" {html(given)}" if given else "")
        extra = module.extra_repr() if hasattr(module, "extra_repr") else ""
        lit = box in marked_boxes
        label = _table(
            header,
            extra,
            values.get(e.index, e.tensor.data),
            grads.get(e.index),
            _HEADER["module"],
            precision,
            bold_border=e.index == root,
            highlighted=lit,
        )
        add(f"  m{box} [label={label}, tooltip={quote(f'{cls} {name}')}];")
        nodes += 1
    edges = 0
    seen_edges: set[tuple[str, str]] = set()
    for e in entries:
        if e.kind != "op":
            continue
        dst_box = owner.get(e.index)
        dst = f"m{dst_box}" if dst_box is not None else f"n{e.index}"
        many = len(e.inputs) > 1 and e.op not in _COMMUTATIVE and dst_box is None
        arg_names = _ARG_NAMES.get(e.op)
        for position, i in enumerate(e.inputs):
            src_box = owner.get(i)
            if src_box is not None and src_box == dst_box:
                continue
            src = f"m{src_box}" if src_box is not None else f"n{i}"
            if collapse:
                if (src, dst) in seen_edges:
                    continue
                seen_edges.add((src, dst))
            if i in constants:
                src = f"c{i}_{edges}"
                add(f"  {src} [{constants[i]}];")
                nodes += 1
            attrs = []
            if many:
                name = arg_names[position] if arg_names and position < len(arg_names) else "abcdefgh"[position % 8]
                attrs.append(f"label={quote(name)}")
            if i in marked and e.index in marked:
                attrs.append(f'color="{HIGHLIGHT_COLOUR}", penwidth=2.5')
            add(f"  {src} -> {dst}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
            edges += 1
    add("}")
    return Graph("\n".join(out) + "\n", nodes, edges)


__all__ = ["FORMATS", "GRAD_COLOUR", "VALUE_COLOUR", "Graph", "draw"]
