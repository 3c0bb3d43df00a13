"""The tree reads as the architecture: module-level imports point one way, layers stay in their place,
``import chainrule`` needs only NumPy, and each fact (the CLI's choices) has one home."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "chainrule"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _resolve(name: str) -> str | None:
    """The chainrule module an imported name lives in (``chainrule.nn.Linear`` -> ``chainrule.nn``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _module_level_imports(name: str, path: Path) -> set[str]:
    """The chainrule modules ``name`` imports when it is imported (not inside functions, not for typing)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    stack = list(ast.parse(path.read_text()).body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            found.update(filter(None, (_resolve(a.name) for a in node.names)))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                # ``from pkg import submodule`` depends on the submodule; ``from pkg import name`` on pkg
                target = f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                resolved = _resolve(target)
                if resolved:
                    found.add(resolved)
        else:
            stack.extend(ast.iter_child_nodes(node))
    found.discard(name)
    return found


GRAPH = {name: _module_level_imports(name, path) for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_module_level_imports_have_no_cycle():
    assert _cycles(GRAPH) == [], "module-level import cycle(s) in chainrule"


# Each layer and what it may import at module level (docs/architecture.md draws the same picture).
CORE = ("chainrule.backend", "chainrule.autograd", "chainrule.ops", "chainrule.functional")
ABOVE_CORE = ("chainrule.nn", "chainrule.optim", "chainrule.data", "chainrule.train", "chainrule.io")
TOOLS = ("chainrule.viz", "chainrule.cli", "chainrule.playground", "chainrule.interop")


def _in(module: str, layers: tuple[str, ...]) -> bool:
    return any(module == layer or module.startswith(layer + ".") for layer in layers)


@pytest.mark.parametrize(
    "lower,forbidden",
    [
        (CORE, ABOVE_CORE + TOOLS),
        (("chainrule.nn", "chainrule.optim", "chainrule.data"), ("chainrule.train", "chainrule.io", *TOOLS)),
        (("chainrule.train", "chainrule.io"), TOOLS),
    ],
    ids=["core", "nn-optim-data", "train-io"],
)
def test_lower_layers_never_import_higher_ones(lower, forbidden):
    wrong = sorted(
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        if _in(module, lower)
        for target in targets
        if _in(target, forbidden)
    )
    assert wrong == []


def test_backend_is_beneath_everything():
    wrong = sorted(
        f"{m} -> {t}"
        for m, ts in GRAPH.items()
        if _in(m, ("chainrule.backend",))
        for t in ts
        if not _in(t, ("chainrule.backend",))
    )
    assert wrong == []


def test_import_chainrule_needs_only_numpy():
    code = (
        "import sys, chainrule\n"
        "heavy = ('torch', 'matplotlib', 'starlette', 'uvicorn', 'onnx', 'ray', 'sklearn', 'safetensors', 'tqdm')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
        "print(sorted(m for m in sys.modules if m.startswith(('chainrule.nn', 'chainrule.optim', 'chainrule.train',"
        " 'chainrule.cli', 'chainrule.viz', 'chainrule.data', 'chainrule.io'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.splitlines() == ["[]", "[]"]


def test_the_command_line_reads_its_choices_from_the_registries(monkeypatch):
    from chainrule import cli, optim
    from chainrule.nn.activation import ACTIVATIONS, OUTPUT_ACTIVATIONS
    from chainrule.train.objectives import LOSSES

    parser = cli.build_parser()
    train = next(a for a in parser._subparsers._group_actions[0].choices.values() if a.prog.endswith("train"))
    choices = {a.dest: a.choices for a in train._actions if a.choices}
    assert list(choices["optimizer"]) == list(optim.OPTIMIZERS)
    assert list(choices["loss"]) == list(LOSSES)
    assert list(choices["activation"]) == list(ACTIVATIONS)
    assert list(choices["output_activation"]) == ["none", *OUTPUT_ACTIVATIONS]

    # the default learning rate is the registry's, in the help text and in the run
    monkeypatch.setitem(optim.OPTIMIZERS, "adam", optim.OPTIMIZERS["adam"]._replace(lr=0.0123))
    help_text = cli.build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert "0.0123 for adam" in " ".join(help_text.split())
    seen = {}
    real = optim.get_optimizer

    def spy(name, params, **options):
        seen.update(options)
        return real(name, params, **options)

    monkeypatch.setattr(optim, "get_optimizer", spy)
    argv = ["train", "--data", "xor", "--hidden", "4", "--optimizer", "adam", "--epochs", "1", "--no-save", "--quiet"]
    assert cli.main(argv) == 0
    assert seen["lr"] == 0.0123


@pytest.mark.skipif(not os.environ.get("CI"), reason="checks the CI machine (CI=true, as .ci/run sets)")
def test_ci_has_everything_the_optional_tests_need():
    # the optional tests skip themselves where a tool is missing; on CI none may be missing
    import importlib.util
    import shutil

    modules = ["torch", "onnx", "onnxruntime", "ray.tune", "starlette", "uvicorn", "httpx", "playwright",
               "matplotlib", "mkdocs", "sklearn", "safetensors", "threadpoolctl"]  # fmt: skip
    missing = [m for m in modules if importlib.util.find_spec(m.split(".")[0]) is None]
    missing += [tool for tool in ("dot", "chromium", "gcc") if shutil.which(tool) is None]
    assert missing == []
