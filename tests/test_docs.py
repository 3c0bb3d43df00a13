"""The docs cannot go stale: every Python example in README.md and docs/*.md runs, and prints what it says.

Each page's ```python blocks run in order in one fresh namespace, in a temporary working
directory (examples may write files), with chainrule's registries (ops, nn modules, optimizers)
put back afterwards, since docs/architecture.md registers examples of each. Output listings are
fenced ```text and never run. A block that truly cannot run starts with the line
``# doc-test: skip (the reason)``; there is none today.

Where a page states what a block prints, the test below checks it. Other checks keep the prose
honest: the names and files the pages mention exist, README's training result is the one
docs/cli.md shows (which tests/test_acceptance.py ties to a real run), the numbers
docs/compile.md quotes are the benchmark pages' own, and docs/architecture.md's picture of the
layers and its kernels' size bounds are the code's.

The tutorials (docs/tutorials/NN-*.md) are held to more: each python block's printed output must
be exactly the ```text block that follows it (a block followed by no text block prints nothing),
and the images a page shows are exactly the ones its code writes, into the folder named by the
environment variable CHAINRULE_TUTORIAL_IMAGES (a temporary folder here). After changing a
tutorial, write its outputs into its text blocks and its images into docs/tutorials/images with:

    CHAINRULE_WRITE_DOCS=1 .venv/bin/python -m pytest -q tests/test_docs.py -k tutorial
"""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib
import io
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL_DIR = ROOT / "docs" / "tutorials"
TUTORIALS = sorted(TUTORIAL_DIR.glob("[0-9][0-9]-*.md"))
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted(TUTORIAL_DIR.glob("*.md"))]
# a fenced block: the language after the opening fence, then the body up to a closing fence line
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
LANGUAGES = {"python", "text", "sh"}
SKIP = "# doc-test: skip"


def blocks(page: Path, language: str | None = None) -> list[str]:
    """The fenced code blocks of ``page`` (of one language, if given), in order."""
    found = FENCE.findall(page.read_text(encoding="utf-8"))
    return [body for lang, body in found if language is None or lang.strip() == language]


def run_page(page: Path) -> dict[str, Any]:
    """Run the page's python blocks in order in one fresh namespace; skip only marked blocks."""
    namespace: dict[str, Any] = {"__name__": f"doc_{page.stem}"}
    for i, block in enumerate(blocks(page, "python")):
        if block.startswith(SKIP):
            reason = block.splitlines()[0].removeprefix(SKIP).strip(" :()")
            assert reason, f"{page.name} block {i}: a skipped block must say why"
            continue
        exec(compile(block, f"{page.name}[python block {i}]", "exec"), namespace)
    return namespace


@pytest.fixture
def registries():
    """Put chainrule's registries back as they were: a page may register an example op, layer or optimizer."""
    from chainrule import optim
    from chainrule.nn import module
    from chainrule.ops import OPS

    saved = [(r, dict(r)) for r in (OPS, module._REGISTRY, optim.OPTIMIZERS)]
    yield
    for registry, content in saved:
        registry.clear()
        registry.update(content)


# What a page says its blocks print: fragments that must appear in the printed output (and, so
# that the test checks the page's own words, in the page too).
STATED_OUTPUT = {
    "README.md": ["<mul> <add>", "-12.0 -4.0 -4.0 3.0"],
    "engine.md": [
        "backward(): trying to backward through op 'sum' a second time, ",
        " retain_graph=True ",
        "backward(): the output has shape (2,), so it needs an upstream gradient of that shape: ",
        "requires_grad=True needs a floating-point tensor, got dtype int64: ",
        "add: cannot apply to inputs of shapes (2, 3) and (4,) (dtypes float64, float64): ",
        "unsupported operand type(s) for +: 'Tensor' and 'str'",
        "detect_anomaly: forward output of op 'mul' is not finite (shape (2,), 1 non-finite values)",
        "  created at File ",
    ],
    "architecture.md": [
        "sum: upstream of shape () -> downstream [(2, 2)]",
        "mul: upstream of shape (2, 2) -> downstream [(2, 2), (2, 2)]",
    ],
    "training.md": ["{'accuracy': "],
}


#: pages whose text blocks after code are not its printed output (the checks above look at them)
FREE_TEXT: set[str] = set()


def _page_id(page: Path) -> str:
    return page.relative_to(ROOT / "docs").as_posix() if page.is_relative_to(TUTORIAL_DIR) else page.name


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p, "python") and p not in TUTORIALS], ids=_page_id)
def test_page_examples_run_and_print_what_the_page_says(page, tmp_path, monkeypatch, registries) -> None:
    monkeypatch.chdir(tmp_path)  # examples may write files (README saves a model)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        namespace = run_page(page)
    out, text = printed.getvalue(), page.read_text(encoding="utf-8")
    # a ```text block right after a ```python block shows what that code prints: it must be printed
    for _, shown in blocks_with_output(page):
        if shown is not None and page.name not in FREE_TEXT:
            assert shown.group(2).strip() in out, f"{page.name}: the page shows output its code does not print"
    for fragment in STATED_OUTPUT.get(page.name, []):
        assert fragment in out, f"{page.name}: the examples did not print {fragment!r}"
        assert fragment in text, f"{page.name} does not state {fragment!r}"
    check = PAGE_CHECKS.get(page.name)
    if check is not None:
        check(namespace, out, text, tmp_path)


def _readme(namespace: dict[str, Any], out: str, text: str, tmp_path: Path) -> None:
    assert namespace["f"].grad_fn.inputs == ()  # freed by backward(), as the README says
    assert (tmp_path / "digits.safetensors").exists()
    assert namespace["history"].accuracy[-1] > 0.97


def _compile(namespace: dict[str, Any], out: str, text: str, tmp_path: Path) -> None:
    # the generated code shown on the page is the source the example prints, line for line
    source = out.splitlines()
    shown = blocks(ROOT / "docs" / "compile.md", "text")
    assert len(shown) == 2
    for listing in shown:
        lines = listing.splitlines()
        starts = [i for i, line in enumerate(source) if line == lines[0]]
        assert any(source[i : i + len(lines)] == lines for i in starts), f"not in source():\n{listing}"


def _nn(namespace: dict[str, Any], out: str, text: str, tmp_path: Path) -> None:
    # print(net) and the listing in the comments below it
    shown = re.search(r"print\(net\)\n((?:# .*\n)+)", text).group(1)
    assert "\n".join(line.removeprefix("# ") for line in shown.splitlines()) in out


def _training(namespace: dict[str, Any], out: str, text: str, tmp_path: Path) -> None:
    losses = ast.literal_eval(out.splitlines()[0])  # print(history.loss): one entry per epoch, falling
    epochs = int(re.search(r"epochs=(\d+)", text).group(1))
    assert len(losses) == epochs and losses == sorted(losses, reverse=True)


PAGE_CHECKS = {"README.md": _readme, "compile.md": _compile, "nn.md": _nn, "training.md": _training}


# ------------------------------------------------------------------ the tutorials
IMAGE_LINK = re.compile(r"!\[[^\]]*\]\((images/[^)\s]+)\)")


def blocks_with_output(page: Path) -> list[tuple[re.Match[str], re.Match[str] | None]]:
    """Each python block with the ```text block right after it (only blank lines between), or None."""
    text = page.read_text(encoding="utf-8")
    found = list(FENCE.finditer(text))
    pairs = []
    for i, block in enumerate(found):
        if block.group(1).strip() != "python":
            continue
        after = found[i + 1] if i + 1 < len(found) else None
        if after is not None and (after.group(1).strip() != "text" or text[block.end() : after.start()].strip()):
            after = None
        pairs.append((block, after))
    return pairs


def write_outputs(page: Path, outputs: list[str]) -> None:
    """CHAINRULE_WRITE_DOCS=1: put each block's printed output into the text block after it (adding one)."""
    text = page.read_text(encoding="utf-8")
    pieces, position = [], 0
    for (block, shown), printed in zip(blocks_with_output(page), outputs):
        if shown is not None:
            pieces += [text[position : shown.start(2)], printed]
            position = shown.end(2)
        elif printed:
            pieces += [text[position : block.end()], "\n\n```text\n" + printed + "```"]
            position = block.end()
    page.write_text("".join(pieces) + text[position:], encoding="utf-8")


@pytest.mark.parametrize("page", TUTORIALS, ids=_page_id)
def test_tutorial_prints_what_it_shows_and_draws_its_images(page, tmp_path, monkeypatch, registries) -> None:
    writing = bool(os.environ.get("CHAINRULE_WRITE_DOCS"))
    images = tmp_path / "images"
    images.mkdir()
    monkeypatch.setenv("CHAINRULE_TUTORIAL_IMAGES", str(images))
    work = tmp_path / "work"  # anything else a page writes lands here
    work.mkdir()
    monkeypatch.chdir(work)
    namespace: dict[str, Any] = {"__name__": f"tutorial_{page.stem.replace('-', '_')}"}
    outputs = []
    for i, (block, shown) in enumerate(blocks_with_output(page)):
        code = block.group(2)
        assert not code.startswith(SKIP), f"{page.name} block {i}: every tutorial block runs"
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(code, f"{page.name}[python block {i}]", "exec"), namespace)
        outputs.append(printed.getvalue())
        if not writing:
            expected = "" if shown is None else shown.group(2)
            assert outputs[-1] == expected, f"{page.name} python block {i}: what it prints differs from the page"
    if writing:
        write_outputs(page, outputs)
        (TUTORIAL_DIR / "images").mkdir(exist_ok=True)
        for f in images.iterdir():
            (TUTORIAL_DIR / "images" / f.name).write_bytes(f.read_bytes())
    written = {f"images/{f.name}" for f in images.iterdir()}
    shown_images = set(IMAGE_LINK.findall(page.read_text(encoding="utf-8")))
    assert shown_images <= written, f"{page.name} shows images its code did not write: {shown_images - written}"
    assert written <= shown_images, f"{page.name} writes images it does not show: {written - shown_images}"
    for name in shown_images:
        assert (TUTORIAL_DIR / name).is_file(), f"{page.name} shows {name}: not committed (CHAINRULE_WRITE_DOCS=1)"


def test_tutorial_index_lists_every_tutorial_in_order() -> None:
    index = (TUTORIAL_DIR / "index.md").read_text(encoding="utf-8")
    listed = re.findall(r"^\d+\. \[[^\]]+\]\(([\w-]+\.md)\)", index, flags=re.MULTILINE)
    assert listed == [p.name for p in TUTORIALS]
    committed = {f"images/{f.name}" for f in (TUTORIAL_DIR / "images").iterdir()}
    shown = {name for page in TUTORIALS for name in IMAGE_LINK.findall(page.read_text(encoding="utf-8"))}
    assert committed == shown, f"images no tutorial shows: {committed - shown}"


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_code_blocks_name_their_language(page) -> None:
    # python blocks run; output listings are text; shell commands are sh
    for lang, body in FENCE.findall(page.read_text(encoding="utf-8")):
        assert lang.strip() in LANGUAGES, f"{page.name}: a block fenced as {lang!r}: {body[:60]!r}"


@functools.cache
def repository_files() -> tuple[str, ...]:
    """Every file's path relative to the repository root (without the virtualenv, git's and build folders)."""
    found = []
    for folder, subfolders, names in os.walk(ROOT):
        subfolders[:] = [d for d in subfolders if not d.startswith(".") and d not in ("build", "__pycache__", "runs")]
        found += [os.path.relpath(os.path.join(folder, n), ROOT) for n in names]
    return tuple(found)


def _resolves(dotted: str) -> bool:
    """Whether ``chainrule.a.b`` names a module or an attribute (a C extension counts if its source exists)."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        name = ".".join(parts[:n])
        try:
            obj: Any = importlib.import_module(name)
        except ImportError:
            if list(ROOT.joinpath(*parts[:n]).parent.glob(parts[n - 1] + ".*")):
                return n == len(parts)  # an extension module not built here, named by its source
            continue
        for attr in parts[n:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_pages_name_modules_and_files_that_exist(page) -> None:
    text = page.read_text(encoding="utf-8")
    for dotted in sorted(set(re.findall(r"\bchainrule(?:\.[A-Za-z_]\w*)+", text))):
        assert _resolves(dotted), f"{page.name} names {dotted}, which does not exist"
    files = repository_files()
    for name in sorted(set(re.findall(r"(?<![\w.])[\w/]*\w\.(?:py|c)\b", text))):
        assert any(f == name or f.endswith("/" + name) for f in files), f"{page.name} names {name}: no such file"
    for link in re.findall(r"\]\(([\w./-]+\.md)\)", text):
        assert (page.parent / link).exists(), f"{page.name} links to {link}, which does not exist"


def test_readme_training_result_is_the_one_docs_cli_shows() -> None:
    # docs/cli.md's sample output is checked against a real run by tests/test_acceptance.py
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    cli = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    final = re.search(r"^(final train accuracy [\d.]+ +test accuracy [\d.]+)", cli, flags=re.MULTILINE).group(1)
    assert " ".join(final.split()) in readme
    shown = re.search(r"data digits: (\d+) train, (\d+) test samples", cli)
    assert f"on {int(shown.group(1)):,} training images" in readme and f"the {shown.group(2)} held-out" in readme


def test_compile_page_quotes_the_benchmark_pages() -> None:
    compile_page = " ".join((ROOT / "docs" / "compile.md").read_text(encoding="utf-8").split())
    core = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    nn_page = (ROOT / "docs" / "benchmarks-nn.md").read_text(encoding="utf-8")
    eager = re.search(r"Compiled chainrule: ([\d.]+x) eager chainrule's speed and .*?\(over (\d) rows\)", core)
    assert f"compiled chainrule at {eager.group(1)} eager chainrule's speed over the six" in compile_page
    assert eager.group(2) == "6"
    xor = re.search(
        r"compiled chainrule meets it \(([\d.]+x)\)\. Compiled chainrule: \d+ us per step, ([\d.]+x)", nn_page
    )
    overall = re.search(r"Compiled chainrule: ([\d.]+x) eager chainrule's speed and .*?\(over (\d) rows\)", nn_page)
    assert f"{xor.group(2)} eager's speed on XOR, {xor.group(1)} PyTorch's `nn` step" in compile_page
    words = {"5": "five", "6": "six", "7": "seven"}
    assert f"and {overall.group(1)} eager's speed over its {words[overall.group(2)]} training rows" in compile_page


def test_architecture_kernel_bounds_are_the_c_sources() -> None:
    source = (ROOT / "chainrule" / "backend" / "_speedups.c").read_text(encoding="utf-8")
    defines = {
        name: eval(value, {"__builtins__": {}}) for name, value in re.findall(r"#define (\w+_MAX_SIZE) (.+)", source)
    }
    bound = {
        "fused_grad": "FUSED_MAX_SIZE",
        "small_sum": "FUSED_MAX_SIZE",
        "small_spread": "FUSED_MAX_SIZE",
        "small_sigmoid": "SIGMOID_MAX_SIZE",
        "small_add_row": "ADD_ROW_MAX_SIZE",
        "small_cross_entropy": "CE_MAX_SIZE",
        "small_cross_entropy_grad": "CE_MAX_SIZE",
    }
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\|.*\| `(\w+)` \| ([\d,]+) \|$", page, flags=re.MULTILINE)
    assert {kernel for kernel, _ in rows} == set(bound)
    for kernel, size in rows:
        assert int(size.replace(",", "")) == defines[bound[kernel]], f"{kernel}: the page says {size}"
        assert f'"{kernel}"' in source, f"_speedups.c defines no kernel {kernel}"


def _picture_rows() -> list[list[str]]:
    """The modules on each line of docs/architecture.md's picture of the layers, bottom line first."""
    picture = blocks(ROOT / "docs" / "architecture.md", "text")[0]
    rows = []
    for line in picture.splitlines():
        paths = []
        for token in line.split():
            if not re.fullmatch(r"\w+(?:/\w+)*(?:\.py|/)", token):
                break  # the description starts
            paths.append(token.removesuffix("/").removesuffix(".py").replace("/", "."))
        if paths:
            rows.append(paths)
    return rows[::-1]


def _row_of(module: str, row: dict[str, int]) -> int:
    """The picture line of chainrule.<module>: its own, or that of the package or module it is in."""
    while module not in row:
        module = module.rpartition(".")[0] or "__init__"
    return row[module]


def test_architecture_picture_is_the_import_order() -> None:
    # every module imports, at module level, only from its own line of the picture or the lines below
    rows = _picture_rows()
    row = {module: i for i, modules in enumerate(rows) for module in modules}
    assert {"backend", "autograd.tensor", "ops", "autograd.engine", "functional", "nn", "train", "cli"} <= set(row)
    row.setdefault("__main__", row["cli"])  # python -m chainrule: the command line
    package = ROOT / "chainrule"
    wrong = []
    for path in sorted(package.rglob("*.py")):
        module = ".".join(path.relative_to(package).with_suffix("").parts)
        for statement in ast.parse(path.read_text(encoding="utf-8")).body:  # imports inside functions are lazy
            if isinstance(statement, ast.Import):
                targets = [alias.name for alias in statement.names]
            elif isinstance(statement, ast.ImportFrom) and statement.level == 0 and statement.module:
                targets = [f"{statement.module}.{alias.name}" for alias in statement.names]
            else:
                continue
            for target in targets:
                if target.startswith("chainrule.") and _row_of(target[10:], row) > _row_of(module, row):
                    wrong.append(f"{module} imports {target}")
    assert wrong == [], "docs/architecture.md's picture puts these imports upward"


def test_architecture_pure_python_switch_does_what_the_page_says() -> None:
    command = next(
        line for line in blocks(ROOT / "docs" / "architecture.md", "sh")[0].splitlines() if "accelerated()" in line
    )
    words = shlex.split(command.split("  #")[0])
    assert words[0] == "CHAINRULE_PURE_PYTHON=1" and words[1] == ".venv/bin/python"
    env = {**os.environ, "CHAINRULE_PURE_PYTHON": "1"}
    run = subprocess.run([sys.executable, *words[2:]], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == command.rsplit("# ", 1)[1] == "False"
