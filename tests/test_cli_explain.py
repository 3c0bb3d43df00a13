"""``chainrule explain``: value, gradients and backward steps of an expression on the command line.

Runs in-process through ``chainrule.cli.main`` once ``explain`` is wired into the parser (and
through ``chainrule.cli.explain.add_parser`` on a stand-in parser until then), plus one real
``python -m chainrule explain`` subprocess.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chainrule import cli

ROOT = Path(__file__).resolve().parents[1]
LECTURE = ["(x+y)*z", "x=-2", "y=5", "z=-4"]


def _main(argv: list[str]) -> int:
    return cli.main(argv)


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = _main(["explain", *argv])
    except SystemExit as exit_:  # argparse exits on its own errors
        code = exit_.code
    out = capsys.readouterr()
    return code, out.out, out.err


# ------------------------------------------------------------------ output
def test_json_for_the_lecture_example(capsys) -> None:
    code, out, err = _run(capsys, *LECTURE, "--format", "json")
    assert code == 0, err
    record = json.loads(out)
    assert record["value"] == -12.0
    assert record["grads"] == {"x": -4.0, "y": -4.0, "z": 3.0}
    assert isinstance(record["steps"], list) and record["steps"]


def test_text_output_starts_with_value_and_gradients(capsys) -> None:
    code, out, err = _run(capsys, *LECTURE)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[:4] == ["value = -12.0", "df/dx = -4.0", "df/dy = -4.0", "df/dz = 3.0"]
    assert len(lines) > 5  # then the table of backward steps
    assert err == ""


@pytest.mark.parametrize("fmt, marker", [("md", "|"), ("html", "<")])
def test_markdown_and_html(capsys, fmt, marker) -> None:
    code, out, err = _run(capsys, *LECTURE, "--format", fmt)
    assert code == 0, err
    assert marker in out


def test_functions_and_float32(capsys) -> None:
    code, out, err = _run(capsys, "sigmoid(w*x + b) + max(w, b)", "w=0.5", "x=2", "b=-1", "--format", "json")
    assert code == 0, err
    record = json.loads(out)
    # sigmoid(0.5*2 - 1) = sigmoid(0) = 0.5, whose slope is 0.25; max(w, b) = w
    assert record["value"] == pytest.approx(0.5 + 0.5)
    assert record["grads"] == pytest.approx({"w": 2 * 0.25 + 1, "x": 0.5 * 0.25, "b": 0.25})
    code, out, err = _run(capsys, "x * 0.1", "x=3", "--format", "json", "--dtype", "float32")
    assert code == 0, err
    record = json.loads(out)
    assert record["value"] == pytest.approx(0.3, rel=1e-6) and record["value"] != 0.3  # computed in float32
    assert record["grads"]["x"] == pytest.approx(0.1, rel=1e-6)


def test_nan_and_inf_are_shown_not_warned(capsys) -> None:
    code, out, err = _run(capsys, "log(x) + 1/y", "x=-1", "y=0", "--format", "json")
    assert code == 0, err
    assert err == ""
    record = json.loads(out)  # NaN and infinities are not JSON: strings, as in Explanation.to_dict
    assert record["value"] == "nan"
    assert record["grads"] == {"x": -1.0, "y": "-inf"}


def test_dot_file_is_written(capsys, tmp_path) -> None:
    target = tmp_path / "graph.dot"
    code, _, err = _run(capsys, *LECTURE, "--dot", str(target))
    assert code == 0, err
    assert "digraph" in target.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["graph.dot"]  # no temporary left over


def test_drawing_without_graphviz_is_one_line_and_writes_nothing(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no `dot` to be found
    code, out, err = _run(capsys, *LECTURE, "--svg", str(tmp_path / "g.svg"), "--dot", str(tmp_path / "g.dot"))
    assert code == 1
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "chainrule explain: error:" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_svg_and_png_with_graphviz(capsys, tmp_path) -> None:
    code, _, err = _run(capsys, *LECTURE, "--svg", str(tmp_path / "g.svg"), "--png", str(tmp_path / "g.png"))
    assert code == 0, err
    assert "<svg" in (tmp_path / "g.svg").read_text()
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"


# ------------------------------------------------------------------ bad input
BAD = [
    ["__import__('os').system('touch X')"],
    ["__import__('os').system('touch X')", "x=1", "--svg", "X.svg", "--dot", "X.dot"],
    ["().__class__"],
    ["x.real", "x=1"],
    ["9**9**9"],
    ["[1]*10**9"],
    ["x * w", "x=1"],  # w is not given
    ["x * y", "x=1", "y=2", "w=3"],  # w is not used
    ["x + y", "x=1", "x=2", "y=3"],  # x given twice
    ["x", "x=abc"],
    ["x", "x=inf"],
    ["x", "x"],
    ["x", "exp=1"],
    ["foo(x)", "x=1"],
    ["x +", "x=1"],
    ["", "x=1"],
    ["2 * 3"],  # nothing to differentiate
    ["x" * 20_000, "x=1"],
    ["(" * 100_000 + "x" + ")" * 100_000, "x=1"],
    ["lambda: 1"],
    ["x if y else z", "x=1", "y=1", "z=1"],
    ["x", "x=1", "--format", "yaml"],
    ["x", "x=1", "--dtype", "int8"],
    ["x", "x=1", "--svg", "missing-folder/g.svg"],
    ["x", "x=1", "--svg", "same.out", "--png", "same.out"],
    ["x", "x=1", "--svg", "."],
    ["x", "x=1", "--bogus"],
]


@pytest.mark.parametrize("argv", BAD, ids=[" ".join(argv)[:50] for argv in BAD])
def test_bad_input_is_one_line_exit_2_and_no_side_effect(capsys, tmp_path, monkeypatch, argv) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    # (an unknown option is reported by the top-level parser: "chainrule: error: unrecognized arguments")
    assert err.startswith(("chainrule explain: error:", "chainrule: error:")) and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # no X, no drawing, nothing


def test_messages_name_the_problem(capsys) -> None:
    for argv, words in (
        (["x.real", "x=1"], "attribute access is not allowed: x.real"),
        (["9**9**9"], "exponent 9**9 is too large"),
        (["x * w", "x=1"], "missing value for variable 'w'"),
        (["x", "x=1", "w=3"], "unknown variable 'w'"),
        (["x + y", "x=1", "x=2", "y=3"], "variable 'x' is given twice"),
        (["foo(x)", "x=1"], "unknown function 'foo'"),
    ):
        code, _, err = _run(capsys, *argv)
        assert code == 2 and words in err, (argv, err)


# ------------------------------------------------------------------ the real command
def _python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def test_subprocess(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ok = subprocess.run(
        [_python(), "-m", "chainrule", "explain", *LECTURE, "--format", "json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    record = json.loads(ok.stdout)
    assert (record["value"], record["grads"]) == (-12.0, {"x": -4.0, "y": -4.0, "z": 3.0})
    bad = subprocess.run(
        [_python(), "-m", "chainrule", "explain", "__import__('os').system('touch X')", "--svg", "X.svg"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert bad.returncode == 2 and bad.stdout == ""
    assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ the docs show real output
def _doc() -> str:
    return (ROOT / "docs" / "cli.md").read_text()


def test_docs_show_this_programs_output(capsys) -> None:
    blocks = re.findall(r"```(\w+)\n(.*?)```", _doc(), flags=re.S)
    checked = 0
    for (kind, command), (next_kind, shown) in itertools.pairwise(blocks):
        if kind != "sh" or next_kind != "text" or not command.startswith("chainrule explain "):
            continue
        code, out, err = _run(capsys, *shlex.split(command)[2:])
        assert code == 0, err
        if "--format json" in command:
            record = json.loads(out)
            record["steps"] = "..."
            assert record == json.loads(shown.replace("[...]", '"..."')), command
        else:
            assert out == shown, command
        checked += 1
    for command, message in re.findall(r"^\$ (chainrule explain .*)\n(.*)$", _doc(), flags=re.M):
        code, out, err = _run(capsys, *shlex.split(command)[2:])
        assert (code, out, err) == (2, "", message + "\n"), command
        checked += 1
    assert checked >= 6
