"""The renderings of an ``Explanation``: a plain-text table, Markdown, HTML and a JSON-ready dict.

Every form shows the same rows: per backward step the node, its op, its value, the upstream
gradient, and per input the input's value, the local gradient and the downstream gradient
(local x upstream) with a marker where it was added to contributions from other branches.
For tensors the local gradient is named as the vector-Jacobian product the engine computes,
with its shapes (``vjp (2,) -> (2, 3)``), plus the Jacobian itself when it is small.
"""

from __future__ import annotations

import html as _html
from typing import TYPE_CHECKING, Any

import numpy as np

from chainrule.viz.labels import fmt, nested, shape_text, to_json, value_text

if TYPE_CHECKING:
    from chainrule.viz.explain import Explanation, Step, StepInput

VALUE_COLOUR = "#1a7f37"
GRAD_COLOUR = "#b31d28"
#: in the terminal table, tensors with at most this many elements show their numbers
_INLINE = 4


def _short(a: Any, p: int) -> str:
    """A value in a terminal cell: numbers if tiny, else shape, dtype and norm."""
    if not isinstance(a, np.ndarray):
        return fmt(a, p)
    if a.ndim == 0:
        return fmt(a.item(), p)
    if a.size == 0:
        return f"empty {shape_text(a.shape)}"
    if a.size <= _INLINE:
        return nested(a, p)
    with np.errstate(all="ignore"):
        norm = float(np.sqrt(np.sum(np.abs(a.astype(np.float64)) ** 2)))
    return f"{shape_text(a.shape)} {a.dtype} norm {fmt(norm, p)}"


def _scalar_step(step: Step, item: StepInput) -> bool:
    return step.upstream.size == 1 and item.value.size == 1


def local_text(step: Step, item: StepInput, p: int, *, jacobian: bool) -> str:
    """The local gradient cell: a number for scalars, else the VJP with its shapes (and J if small)."""
    if item.downstream is None and not isinstance(item.local, (float, np.ndarray)):
        return ""
    if _scalar_step(step, item) and item.local is not None:
        return fmt(item.local, p)
    text = f"vjp {shape_text(step.upstream.shape)} -> {shape_text(item.value.shape)}"
    if item.rule_shape is not None and item.rule_shape != item.value.shape:
        text += f" (rule gave {shape_text(item.rule_shape)}, summed over broadcast axes)"
    if jacobian and isinstance(item.local, np.ndarray):
        text += f"; J {shape_text(item.local.shape)} = {nested(item.local, p)}"
    return text


def _downstream(item: StepInput, show: Any) -> str:
    if item.downstream is None:
        return ""
    text = show(item.downstream)
    if item.summed:
        text += f" [branch sum: total {show(item.total)}]"
    return text


def _upstream(step: Step, show: Any) -> str:
    text = show(step.upstream)
    if step.branches > 1:
        text += f" [sum of {step.branches} branches]"
    return text


_HEADERS = ("step", "node", "op", "output", "upstream", "input", "value", "local", "downstream", "notes")


def _lines(ex: Explanation, show: Any, jacobian: bool) -> list[list[str]]:
    """One list of cells per table line (a step takes one line per input)."""
    p = ex.precision
    lines = []
    for step in ex.rows:
        op = step.op + (f" ({step.detail})" if step.detail else "")
        head = [str(step.index), step.node, op, show(step.output), _upstream(step, show)]
        inputs = step.inputs or [None]
        for k, item in enumerate(inputs):
            first = head if k == 0 else [""] * 5
            notes = "; ".join(step.notes) if k == 0 else ""
            if item is None:
                lines.append([*first, "", "", "", "", notes])
                continue
            local = local_text(step, item, p, jacobian=jacobian) if item.requires_grad else ""
            name = item.name if item.requires_grad else f"{item.name} (no grad)"
            lines.append([*first, name, show(item.value), local, _downstream(item, show), notes])
    return lines


def _title(ex: Explanation, show: Any) -> str:
    n = len(ex.rows)
    return f"backward from {ex.output} = {show(ex.values[ex.index.root.index])}: {n} step{'s' * (n != 1)}"


def _grads_line(ex: Explanation, show: Any) -> str:
    return "gradients: " + (", ".join(f"{k} = {show(v)}" for k, v in ex.grads.items()) or "none")


def to_text(ex: Explanation) -> str:
    p = ex.precision

    def show(a: Any) -> str:
        return _short(a, p)

    rows = [list(_HEADERS), *_lines(ex, show, jacobian=False)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_HEADERS))]
    out = [_title(ex, show)]
    for j, r in enumerate(rows):
        out.append("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
        if j == 0:
            out.append("  ".join("-" * w for w in widths))
    out.append(_grads_line(ex, show))
    return "\n".join(out)


def _md(cell: str) -> str:
    return cell.replace("\\", "\\\\").replace("|", "\\|").replace("\n", "<br>")


def to_markdown(ex: Explanation) -> str:
    p = ex.precision

    def show(a: Any) -> str:
        return value_text(a, p) if isinstance(a, np.ndarray) else fmt(a, p)

    headers = list(_HEADERS)
    headers[8] = "downstream = local × upstream"
    out = [f"**{_md(_title(ex, show))}**", "", "| " + " | ".join(headers) + " |"]
    out.append("|" + "|".join("---" for _ in headers) + "|")
    for line in _lines(ex, show, jacobian=True):
        out.append("| " + " | ".join(_md(c) for c in line) + " |")
    out += ["", _md(_grads_line(ex, show))]
    return "\n".join(out) + "\n"


def to_html(ex: Explanation) -> str:
    p = ex.precision
    esc = _html.escape

    def show(a: Any) -> str:
        return value_text(a, p) if isinstance(a, np.ndarray) else fmt(a, p)

    def value(a: Any) -> str:
        return f'<span style="color:{VALUE_COLOUR}">{esc(show(a))}</span>'

    def grad(text: str) -> str:
        return f'<span style="color:{GRAD_COLOUR}">{esc(text)}</span>' if text else ""

    cell = 'style="border:1px solid #ccc;padding:2px 6px;vertical-align:top;text-align:left"'
    headers = list(_HEADERS)
    headers[8] = "downstream = local × upstream"
    out = [
        '<div class="chainrule-explain">',
        f"<p><b>{esc(_title(ex, show))}</b></p>",
        '<table style="border-collapse:collapse;font-family:monospace;font-size:12px">',
        "<tr>" + "".join(f"<th {cell}>{esc(h)}</th>" for h in headers) + "</tr>",
    ]
    for step in ex.rows:
        inputs = step.inputs or [None]
        span = f' rowspan="{len(inputs)}"' if len(inputs) > 1 else ""
        op = step.op + (f" ({step.detail})" if step.detail else "")
        for k, item in enumerate(inputs):
            tds = []
            if k == 0:
                tds += [
                    f"<td {cell}{span}>{step.index}</td>",
                    f"<td {cell}{span}>{esc(step.node)}</td>",
                    f"<td {cell}{span}>{esc(op)}</td>",
                    f"<td {cell}{span}>{value(step.output)}</td>",
                    f"<td {cell}{span}>{grad(_upstream(step, show))}</td>",
                ]
            if item is None:
                tds += [f"<td {cell}></td>"] * 4
            else:
                name = item.name if item.requires_grad else f"{item.name} (no grad)"
                local = local_text(step, item, p, jacobian=True) if item.requires_grad else ""
                tds += [
                    f"<td {cell}>{esc(name)}</td>",
                    f"<td {cell}>{value(item.value)}</td>",
                    f"<td {cell}>{esc(local)}</td>",
                    f"<td {cell}>{grad(_downstream(item, show))}</td>",
                ]
            if k == 0:
                tds.append(f"<td {cell}{span}>{'<br>'.join(esc(n) for n in step.notes)}</td>")
            out.append("<tr>" + "".join(tds) + "</tr>")
    out += ["</table>", f"<p>{grad(_grads_line(ex, show))}</p>", "</div>"]
    return "\n".join(out)


def _local_json(step: Step, item: StepInput) -> dict[str, Any]:
    if item.local is None:
        if item.downstream is None:
            return {"kind": None}
        return {"kind": "vjp", "upstream_shape": list(step.upstream.shape), "input_shape": list(item.value.shape)}
    if not isinstance(item.local, np.ndarray):
        return {"kind": "number", "value": to_json(item.local)}
    return {
        "kind": "jacobian",
        "upstream_shape": list(step.upstream.shape),
        "input_shape": list(item.value.shape),
        "value": to_json(item.local),
    }


def to_dict(ex: Explanation) -> dict[str, Any]:
    root = ex.values[ex.index.root.index]
    steps = []
    for step in ex.rows:
        steps.append(
            {
                "step": step.index,
                "node": step.node,
                "op": step.op,
                "detail": step.detail,
                "output": to_json(step.output),
                "output_shape": list(step.output.shape),
                "upstream": to_json(step.upstream),
                "branches": step.branches,
                "inputs": [
                    {
                        "name": item.name,
                        "position": item.position,
                        "value": to_json(item.value),
                        "shape": list(item.value.shape),
                        "requires_grad": item.requires_grad,
                        "local": _local_json(step, item),
                        "downstream": to_json(item.downstream),
                        "rule_shape": None if item.rule_shape is None else list(item.rule_shape),
                        "summed": item.summed,
                        "total": to_json(item.total),
                    }
                    for item in step.inputs
                ],
                "notes": list(step.notes),
            }
        )
    return {
        "output": ex.output,
        "value": to_json(ex.value),
        "shape": list(root.shape),
        "dtype": str(root.dtype),
        "grads": {k: to_json(v) for k, v in ex.grads.items()},
        "steps": steps,
    }


__all__ = ["local_text", "to_dict", "to_html", "to_markdown", "to_text"]
