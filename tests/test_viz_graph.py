"""chainrule.viz.draw: the DOT text (nodes, edges, values, gradients), rendering with Graphviz, module boxes."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import run_doc

import chainrule as cr
from chainrule import nn
from chainrule.viz import Graph, draw, explain

ROOT = Path(__file__).resolve().parents[1]
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")


def leaf(value, name=None):
    return cr.tensor(value, requires_grad=True, dtype=np.float64, name=name)


def parse(source: str) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """Node id -> the label's text (tags stripped), and (source, target, attributes) per edge."""
    nodes, edges = {}, []
    for line in source.splitlines():
        node = re.match(r"^  (\w+) \[label=<(.*)>, tooltip=\"(?:[^\"\\]|\\.)*\"\];$", line)
        if node:
            text = html.unescape(re.sub(r"<[^>]+>", " ", node.group(2)))
            nodes[node.group(1)] = " ".join(text.split())
        edge = re.match(r"^  (\w+) -> (\w+)(?: \[(.*)\])?;$", line)
        if edge:
            edges.append((edge.group(1), edge.group(2), edge.group(3) or ""))
    return nodes, edges


def node_named(nodes: dict[str, str], head: str) -> str:
    found = [k for k, text in nodes.items() if text.startswith(head + " ")]
    assert len(found) == 1, (head, nodes)
    return found[0]


def add_mul():
    x, y, z = leaf(-2.0, "x"), leaf(5.0, "y"), leaf(-4.0, "z")
    q = x + y
    q.name = "q"
    f = q * z
    f.name = "f"
    return x, y, z, q, f


# ------------------------------------------------------------------ the worked example
def test_dot_of_add_mul_has_the_nodes_edges_and_values():
    *_, f = add_mul()
    nodes, edges = parse(draw(f).source)
    assert len(nodes) == 5 and len(edges) == 4
    ids = {name: node_named(nodes, head) for name, head in [("x", "x"), ("y", "y"), ("z", "z"),
                                                             ("q", "add q"), ("f", "mul f")]}  # fmt: skip
    assert nodes[ids["x"]] == "x input value -2"
    assert nodes[ids["y"]] == "y input value 5"
    assert nodes[ids["z"]] == "z input value -4"
    assert nodes[ids["q"]] == "add q value 3"
    assert nodes[ids["f"]] == "mul f value -12"
    pairs = {(s, t) for s, t, _ in edges}
    assert pairs == {(ids["x"], ids["q"]), (ids["y"], ids["q"]), (ids["q"], ids["f"]), (ids["z"], ids["f"])}


def test_dot_of_an_explanation_shows_every_gradient_in_its_own_colour():
    x, y, z, _, f = add_mul()
    source = draw(explain(f)).source
    nodes, _ = parse(source)
    assert nodes[node_named(nodes, "x")] == "x input value -2 grad -4"
    assert nodes[node_named(nodes, "y")] == "y input value 5 grad -4"
    assert nodes[node_named(nodes, "z")] == "z input value -4 grad 3"
    assert nodes[node_named(nodes, "add q")] == "add q value 3 grad -4"
    assert nodes[node_named(nodes, "mul f")] == "mul f value -12 grad 1"
    # value above gradient, each in its colour
    assert re.search(r'<FONT COLOR="#1a7f37">value -12</FONT>.*<FONT COLOR="#b31d28">grad 1</FONT>', source)
    assert (x.grad, y.grad, z.grad) == (-4.0, -4.0, 3.0)


def test_after_backward_with_retained_graph_leaves_show_grad():
    *_, q, f = add_mul()
    q.retain_grad()
    f.backward(retain_graph=True)
    nodes, _ = parse(draw(f).source)
    assert nodes[node_named(nodes, "x")].endswith("grad -4")
    assert nodes[node_named(nodes, "add q")].endswith("grad -4")  # retain_grad() kept it
    assert "grad" not in nodes[node_named(nodes, "mul f")]  # no one kept the output's gradient


def test_a_freed_graph_is_refused_with_what_to_do():
    *_, f = add_mul()
    f.backward()
    with pytest.raises(RuntimeError, match=r"retain_graph=True.*chainrule\.explain"):
        draw(f)


def test_labels_are_stable_ids_in_walk_order_and_user_names_win():
    def build():
        a = leaf(1.0)
        b = leaf(2.0, "b")
        return ((a * b + a) * 3.0).tanh()

    first, second = draw(build()).source, draw(build()).source
    assert first == second
    nodes, _ = parse(first)
    heads = sorted(text.split(" value")[0] for text in nodes.values())
    assert heads == ["add add_1", "b input", "const_1 constant", "leaf_1 input", "mul mul_1", "mul mul_2",
                     "tanh tanh_1"]  # fmt: skip


def test_same_names_are_told_apart_and_generated_ids_avoid_user_names():
    a, b, c = leaf(1.0, "x"), leaf(2.0, "x"), leaf(3.0, "mul_1")
    nodes, _ = parse(draw(a * b * c).source)
    heads = sorted(text.split(" value")[0] for text in nodes.values())
    assert heads == ["mul mul_2", "mul mul_3", "mul_1 input", "x input", "x#2 input"]


def test_user_text_is_escaped():
    evil = "a<b>&\"c'\n\\d]"
    x = leaf(1.0, evil)
    source = draw(x * 2.0).source
    assert "a&lt;b&gt;&amp;&quot;c&#39;<BR/>\\d]" in source
    assert 'tooltip="input a<b>&\\"c\' \\\\d]"' in source
    nodes, _ = parse(source)
    assert any(text.startswith("a<b>&\"c' \\d] input") for text in nodes.values())
    if shutil.which("dot"):
        done = subprocess.run(["dot", "-Tsvg"], input=source.encode(), capture_output=True, check=False)
        assert done.returncode == 0 and not done.stderr, done.stderr


# ------------------------------------------------------------------ values of all sizes
def test_scalars_and_small_tensors_show_numbers_large_ones_statistics():
    small = cr.tensor([[1.0, 2.0], [3.0, 4.5]], requires_grad=True, dtype=np.float64, name="small")
    large = cr.tensor(np.arange(100.0).reshape(10, 10), requires_grad=True, name="large")
    empty = cr.tensor(np.zeros((0, 3)), requires_grad=True, name="empty")
    zero_d = cr.tensor(np.float32(0.5), requires_grad=True, name="zero_d")
    nodes, _ = parse(draw(small.sum() + large.sum() + empty.sum() + zero_d).source)
    assert nodes[node_named(nodes, "small")] == "small input value [1, 2] [3, 4.5] (2, 2) float64"
    a = np.arange(100.0)
    norm = f"{np.sqrt((a * a).sum()):.4g}"
    assert nodes[node_named(nodes, "large")] == (
        f"large input value (10, 10) float64 min 0 mean 49.5 max 99 norm {norm}"
    )
    assert nodes[node_named(nodes, "empty")] == "empty input value empty (0, 3) float64"
    assert nodes[node_named(nodes, "zero_d")] == "zero_d input value 0.5"


def test_precision_and_non_finite_values():
    x = leaf(np.pi, "x")
    nodes, _ = parse(draw(x * 1.0, precision=7).source)
    assert nodes[node_named(nodes, "x")] == "x input value 3.141593"
    y = cr.tensor([np.nan, np.inf, -np.inf, 1.0], requires_grad=True, name="y")
    nodes, _ = parse(draw(y * 1.0).source)
    assert nodes[node_named(nodes, "y")] == "y input value [nan, inf, -inf, 1] (4,) float32"


def test_drawing_a_leaf_or_a_constant():
    nodes, edges = parse(draw(leaf(3.0, "x")).source)
    assert list(nodes.values()) == ["x input value 3"] and edges == []
    nodes, _ = parse(draw(cr.tensor(1.0)).source)
    assert list(nodes.values()) == ["const_1 constant value 1"]


def test_argument_order_is_labelled_where_it_matters():
    a, b = leaf(1.0, "a"), leaf(2.0, "b")
    _, edges = parse(draw(a - b).source)
    assert sorted(attrs for *_, attrs in edges) == ['label="a"', 'label="b"']
    _, edges = parse(draw(a * b).source)
    assert all(attrs == "" for *_, attrs in edges)


def test_a_tensor_used_twice_has_two_edges():
    x = leaf(3.0, "x")
    nodes, edges = parse(draw(x * x).source)
    assert len(nodes) == 2 and len(edges) == 2


def test_constants_are_drawn_once_per_use():
    x = leaf(1.0, "x")
    y = x * 2.0 + x * 2.0  # the same cached constant tensor in both products
    nodes, edges = parse(draw(y).source)
    assert sum(text.startswith("const_1 ") for text in nodes.values()) == 2
    assert len(edges) == 6


# ------------------------------------------------------------------ highlight
def test_highlight_marks_the_path_from_an_input_to_the_output():
    x, *_, f = add_mul()
    source = draw(f, highlight=x).source
    nodes, edges = parse(source)
    lit = {s for s, t, attrs in edges if "penwidth" in attrs} | {t for s, t, attrs in edges if "penwidth" in attrs}
    assert lit == {node_named(nodes, "x"), node_named(nodes, "add q"), node_named(nodes, "mul f")}
    assert sum("penwidth" in attrs for *_, attrs in edges) == 2
    assert source.count('BORDER="3"') == 3
    with pytest.raises(ValueError, match="part of the drawn graph"):
        draw(f, highlight=leaf(1.0))


# ------------------------------------------------------------------ modules
def mlp():
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    x = cr.tensor(rng.normal(size=(5, 3)).astype(np.float32), name="x")
    return model, x


def test_parameter_names_come_from_the_model():
    model, x = mlp()
    loss = model(x).mean()
    nodes, _ = parse(draw(loss, model=model).source)
    for name in ("0.weight", "0.bias", "2.weight", "2.bias"):
        node_named(nodes, name)
    assert node_named(nodes, "linear linear_1") and node_named(nodes, "relu relu_1")


def test_without_a_model_parameters_are_named_by_the_module_call():
    model, x = mlp()
    nodes, _ = parse(draw(model(x).mean()).source)
    for name in ("Linear_1.weight", "Linear_1.bias", "Linear_2.weight", "Linear_2.bias"):
        node_named(nodes, name)


def test_collapse_modules_draws_one_box_per_module_call():
    model, x = mlp()
    x.requires_grad = True
    loss = model(x).mean()
    ex = explain(loss, model=model)
    nodes, edges = parse(draw(ex, collapse_modules=True).source)
    boxes = {head: node_named(nodes, head) for head in ("Linear 0", "ReLU 1", "Linear 2")}
    assert all(k.startswith("m") for k in boxes.values())
    assert not any(text.startswith(("linear ", "relu ")) for text in nodes.values())
    pairs = {(s, t) for s, t, _ in edges}
    params = {name: node_named(nodes, name) for name in ("x", "0.weight", "0.bias", "2.weight", "2.bias")}
    assert {(params["x"], boxes["Linear 0"]), (params["0.weight"], boxes["Linear 0"])} <= pairs
    assert (boxes["Linear 0"], boxes["ReLU 1"]) in pairs and (boxes["ReLU 1"], boxes["Linear 2"]) in pairs
    assert (params["2.bias"], boxes["Linear 2"]) in pairs
    mean = node_named(nodes, "mean mean_1")
    assert (boxes["Linear 2"], mean) in pairs and len(nodes) == 9 and len(edges) == 8
    # each box shows its call's output value and gradient, parameters their gradients
    assert "in_features=3, out_features=4" in nodes[boxes["Linear 0"]]
    g = model[0].weight.grad
    assert f"grad [{g[0, 0]:.4g}" in nodes[params["0.weight"]]
    assert "grad (5, 4) float32" in nodes[boxes["Linear 0"]]
    # highlight through boxes
    source = draw(ex, collapse_modules=True, highlight=model[2].weight).source
    _, edges = parse(source)
    assert {(s, t) for s, t, a in edges if "penwidth" in a} == {(params["2.weight"], boxes["Linear 2"]),
                                                                 (boxes["Linear 2"], mean)}  # fmt: skip


def test_collapse_absorbs_the_ops_of_an_outer_module_call():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)

        def forward(self, x):
            return cr.tanh(self.fc(x) * 2.0)

    block = Block()
    x = cr.tensor(np.ones((1, 2), np.float32), requires_grad=True, name="x")
    out = block(x).sum()
    nodes, edges = parse(draw(out, collapse_modules=True).source)
    assert sorted(text.split(" value")[0] for text in nodes.values()) == [
        "Block_1",
        "Linear_1.bias parameter",
        "Linear_1.weight parameter",
        "const_1 constant",  # the 2.0 inside the call: the box consumes it
        "sum sum_1 in_shape=(1, 2), keepdims=False",
        "x input",
    ]
    assert len(edges) == 5
    nodes, _ = parse(draw(out, collapse_modules=True, model=block).source)
    assert any(text.startswith("Block value") for text in nodes.values())  # the model itself: its class
    assert any(text.startswith("fc.weight parameter") for text in nodes.values())


# ------------------------------------------------------------------ rendering
@needs_dot
def test_render_svg_png_pdf(tmp_path):
    *_, f = add_mul()
    graph = draw(explain(f))
    for suffix, magic in ((".svg", b"<?xml"), (".png", b"\x89PNG"), (".pdf", b"%PDF")):
        out = graph.render(tmp_path / f"g{suffix}")
        assert out == tmp_path / f"g{suffix}" and out.read_bytes().startswith(magic)
    svg = (tmp_path / "g.svg").read_text()
    assert "grad &#45;4" in svg and "#b31d28" in svg  # dot writes the minus sign as &#45;
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.pdf", "g.png", "g.svg"]  # no temporary files left
    assert graph._repr_svg_().lstrip().startswith("<?xml")
    assert graph.pipe("svg") == (tmp_path / "g.svg").read_bytes()


def test_render_dot_text_and_unknown_formats(tmp_path):
    *_, f = add_mul()
    graph = draw(f)
    assert graph.render(tmp_path / "g.dot").read_text() == graph.source == str(graph)
    with pytest.raises(ValueError, match=r"'bmp'.*svg, png, pdf"):
        graph.render(tmp_path / "g.bmp")
    with pytest.raises(ValueError, match="no suffix"):
        graph.render(tmp_path / "g")
    assert "5 nodes, 4 edges" in repr(graph)


def test_without_dot_the_dot_text_is_written_and_the_message_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    *_, f = add_mul()
    graph = draw(f)
    with pytest.raises(RuntimeError, match=r"apt-get install graphviz") as err:
        graph.render(tmp_path / "g.svg")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "g.svg").exists()
    assert (tmp_path / "g.dot").read_text() == graph.source
    with pytest.warns(RuntimeWarning, match="apt-get install graphviz"):
        assert graph._repr_svg_() is None


@needs_dot
def test_a_failed_render_leaves_no_file(tmp_path):
    broken = Graph("digraph { this is not DOT", 0, 0)
    with pytest.raises(RuntimeError, match="dot failed"):
        broken.render(tmp_path / "g.svg")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ size, depth, laziness
def test_deep_chains_need_no_recursion():
    x = leaf(1.0, "x")
    y = x
    for _ in range(3000):  # far beyond Python's recursion limit for a recursive walk
        y = y * 1.0
    graph = draw(y)
    assert graph.nodes == 3001 + 3000 and graph.edges == 6000


def test_ten_thousand_nodes_benchmark():
    """Not a timed test (the machine is shared): prints the time for the record; see docs/visualize.md."""
    x = leaf(0.5, "x")
    y = x
    for _ in range(5000):
        y = cr.tanh(y * 1.0001)
    start = time.perf_counter()
    graph = draw(y)
    elapsed = time.perf_counter() - start
    assert graph.nodes == 10001 + 5000
    print(f"draw: {graph.nodes} nodes, {len(graph.source) / 1e6:.1f} MB of DOT in {elapsed:.3f} s")


def test_import_chainrule_does_not_load_viz():
    code = "import sys, chainrule; assert 'chainrule.viz' not in sys.modules; chainrule.explain; print('ok')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.stdout.strip() == "ok", done.stderr
    assert cr.explain is explain


def test_rankdir_is_checked():
    *_, f = add_mul()
    assert "rankdir=TB" in draw(f, rankdir="TB").source
    with pytest.raises(ValueError, match="rankdir"):
        draw(f, rankdir="sideways")
    with pytest.raises(TypeError, match="Tensor"):
        draw([1, 2])


# ------------------------------------------------------------------ the pictures in the docs
def test_docs_images_are_drawn_from_the_docs_code(capsys):
    """docs/images/*.dot are the DOT of the graphs docs/visualize.md builds; the SVGs are rendered from them.

    Regenerate them with: CHAINRULE_WRITE_DOCS=1 pytest tests/test_viz_graph.py -k docs_images
    """
    namespace = run_doc("visualize.md")
    graphs = {"add_mul": draw(namespace["ex"]), "mlp_layers": namespace["layers"]}
    images = ROOT / "docs" / "images"
    for name, graph in graphs.items():
        if os.environ.get("CHAINRULE_WRITE_DOCS"):
            images.mkdir(exist_ok=True)
            graph.render(images / f"{name}.dot")
            if shutil.which("dot"):
                graph.render(images / f"{name}.svg")
        assert (images / f"{name}.dot").read_text() == graph.source, f"docs/images/{name}.dot is out of date"
        assert (images / f"{name}.svg").read_text().lstrip().startswith("<?xml")


def test_module_calls_are_numbered_in_graph_order():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2), nn.ReLU())
    x = cr.tensor(np.ones((1, 2)), requires_grad=True)
    source = draw(model(x).sum(), collapse_modules=True).source
    boxes = [name for name in re.findall(r"<B>(\w+)</B>", source) if name[0].isupper()]
    assert sorted(boxes) == ["Linear_1", "Linear_2", "ReLU_1", "ReLU_2"]
    nodes, edges = parse(source)
    ids = {text.split(" ")[0]: k for k, text in nodes.items()}
    pairs = {(s, t) for s, t, _ in edges}
    assert (ids["Linear_1"], ids["ReLU_1"]) in pairs and (ids["ReLU_1"], ids["Linear_2"]) in pairs
