"""chainrule.explain: the backward steps with the engine's own numbers, and the engine's observer hook."""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule import nn
from chainrule.autograd import engine
from chainrule.viz import Explanation, explain


def leaf(value, name=None):
    return cr.tensor(value, requires_grad=True, dtype=np.float64, name=name)


def tleaf(value):
    return torch.tensor(value, dtype=torch.float64, requires_grad=True)


class Keep:
    """Names the intermediates of a computation: ``.name`` for chainrule, ``retain_grad()`` for torch."""

    def __init__(self):
        self.tensors = {}

    def __call__(self, name, t):
        if isinstance(t, torch.Tensor):
            t.retain_grad()
        else:
            t.name = name
        self.tensors[name] = t
        return t


# The engine's worked examples, written once for both libraries.
def neuron(lib, keep, w0, x0, w1, x1, w2):
    """f = 1 / (1 + exp(-(w0 x0 + w1 x1 + w2)))"""
    dot = keep("dot", keep("a", keep("p0", w0 * x0) + keep("p1", w1 * x1)) + w2)
    e = keep("e", lib.exp(keep("neg", -dot)))
    return keep("f", 1 / keep("den", 1 + e))


def max_gate(lib, keep, x1, x2, x3):
    """f = (x1 + x2) max(x2, x3)"""
    return keep("f", keep("s", x1 + x2) * keep("m", lib.maximum(x2, x3)))


def squared_norm(lib, keep, W, x):
    """f = ||W x||^2"""
    q = keep("q", W @ x)
    return keep("f", keep("sq", q**2).sum())


NEURON = {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0}
MAX_GATE = {"x1": 1.0, "x2": 2.0, "x3": 0.0}
NORM = {"W": [[0.1, 0.5], [-0.3, 0.8]], "x": [0.2, 0.4]}


def both(build, values):
    """Run ``build`` explained in chainrule and in torch: (explanation, cr leaves, torch keep, torch leaves)."""
    cr_leaves = {k: leaf(v, k) for k, v in values.items()}
    keep = Keep()
    f = build(cr, keep, **cr_leaves)
    ex = explain(f)
    t_leaves = {k: tleaf(v) for k, v in values.items()}
    t_keep = Keep()
    build(torch, t_keep, **t_leaves).backward(retain_graph=True)
    return ex, cr_leaves, t_keep, t_leaves


def check_against_torch(ex, t_keep, t_leaves):
    """Every upstream, local and downstream number of the table against PyTorch (float64)."""
    torch_of = {**t_keep.tensors, **t_leaves}
    # NOTE: read the gradients first: torch's retain_grad() hooks also fire in autograd.grad below.
    grads = {name: t.grad.clone() for name, t in torch_of.items()}
    for row in ex.rows:
        out = torch_of[row.node]
        np.testing.assert_allclose(row.upstream, grads[row.node].numpy(), rtol=1e-12, atol=1e-15)
        for item in row.inputs:
            if not item.requires_grad:
                continue
            inp = torch_of[item.name]
            np.testing.assert_allclose(item.value, inp.detach().numpy(), rtol=1e-12)
            local = torch_local(out, inp)
            np.testing.assert_allclose(np.asarray(item.local), local.numpy(), rtol=1e-12, atol=1e-15)
            # downstream = local x upstream, contracted over the output's axes
            vjp = np.tensordot(row.upstream, np.asarray(item.local), axes=row.upstream.ndim)
            np.testing.assert_allclose(item.downstream, vjp, rtol=1e-12, atol=1e-15)
    for name in t_leaves:
        np.testing.assert_allclose(ex.grads[name], grads[name].numpy(), rtol=1e-12, atol=1e-15)


def torch_local(out, inp):
    """d out / d inp in torch (shape out.shape + inp.shape): one VJP per unit vector of the output."""
    rows = []
    for k in range(out.numel()):
        unit = torch.zeros_like(out)
        unit.view(-1)[k] = 1
        (g,) = torch.autograd.grad(out, inp, unit, retain_graph=True, allow_unused=True)
        rows.append(torch.zeros_like(inp) if g is None else g)
    return torch.stack(rows).reshape(out.shape + inp.shape)


# ------------------------------------------------------------------ the worked examples
def test_add_mul_table():
    x, y, z = leaf(-2.0, "x"), leaf(5.0, "y"), leaf(-4.0, "z")
    q = x + y
    f = q * z
    ex = explain(f)
    assert isinstance(ex, Explanation) and ex.value == -12.0 and ex.output == "mul_1"
    assert [(r.node, r.op, float(r.output), float(r.upstream)) for r in ex.rows] == [
        ("mul_1", "mul", -12.0, 1.0),
        ("add_1", "add", 3.0, -4.0),
    ]
    mul, add = ex.rows
    assert [(i.name, float(i.value), i.local, float(i.downstream)) for i in mul.inputs] == [
        ("add_1", 3.0, -4.0, -4.0),
        ("z", -4.0, 3.0, 3.0),
    ]
    assert [(i.name, i.local, float(i.downstream)) for i in add.inputs] == [("x", 1.0, -4.0), ("y", 1.0, -4.0)]
    assert {k: float(v) for k, v in ex.grads.items()} == {"x": -4.0, "y": -4.0, "z": 3.0}
    assert (x.grad, y.grad, z.grad) == (-4.0, -4.0, 3.0)
    text = str(ex)
    assert text.splitlines()[0] == "backward from mul_1 = -12: 2 steps"
    assert text.splitlines()[-1] == "gradients: x = -4, y = -4, z = 3"
    assert repr(ex) == text and len(ex) == 2 and list(ex) == ex.rows == ex.steps


def test_sigmoid_neuron_reproduces_and_matches_torch():
    ex, _, t_keep, t_leaves = both(neuron, NEURON)
    assert [r.op for r in ex.rows] == ["div", "add", "exp", "neg", "add", "add", "mul", "mul"]
    assert round(ex.value, 4) == 0.7311
    rounded = {k: round(float(v), 2) for k, v in ex.grads.items()}
    assert rounded == {"w0": -0.2, "x0": 0.39, "w1": -0.39, "x1": -0.59, "w2": 0.2}
    check_against_torch(ex, t_keep, t_leaves)
    # the lecture's numbers, row by row: 1/x -> -0.53, +1 -> -0.53, exp -> -0.2, *-1 -> 0.2
    assert [round(float(r.upstream), 2) for r in ex.rows[:5]] == [1.0, -0.53, -0.53, -0.2, 0.2]


def test_max_gate_routes_and_marks_the_branch_sum():
    ex, _, t_keep, t_leaves = both(max_gate, MAX_GATE)
    check_against_torch(ex, t_keep, t_leaves)
    assert {k: float(v) for k, v in ex.grads.items()} == {"x1": 2.0, "x2": 5.0, "x3": 0.0}
    by_node = {r.node: r for r in ex.rows}
    assert [r.node for r in ex.rows] == ["f", "m", "s"]
    m = by_node["m"]
    assert [(i.name, i.local, float(i.downstream), i.summed) for i in m.inputs] == [
        ("x2", 1.0, 3.0, False),
        ("x3", 0.0, 0.0, False),
    ]
    s = by_node["s"]
    x2 = s.inputs[1]
    assert x2.name == "x2" and x2.summed and float(x2.downstream) == 2.0 and float(x2.total) == 5.0
    assert not s.inputs[0].summed
    assert "2 [branch sum: total 5]" in str(ex)
    assert "2 [branch sum: total 5]" in ex.to_markdown()
    assert ex.to_dict()["steps"][2]["inputs"][1]["summed"] is True


def test_squared_norm_shows_vjps_with_shapes_and_jacobians():
    ex, _, t_keep, t_leaves = both(squared_norm, NORM)
    check_against_torch(ex, t_keep, t_leaves)
    assert math.isclose(ex.value, 0.116, rel_tol=1e-12)
    np.testing.assert_allclose(ex.grads["W"], [[0.088, 0.176], [0.104, 0.208]], rtol=1e-12)
    np.testing.assert_allclose(ex.grads["x"], [-0.112, 0.636], rtol=1e-12)
    total, square, matmul = ex.rows
    assert (total.op, square.op, matmul.op) == ("sum", "pow_scalar", "matmul")
    np.testing.assert_allclose(square.upstream, [1.0, 1.0])
    np.testing.assert_allclose(matmul.upstream, [0.44, 0.52], rtol=1e-12)  # 2q
    W, x = matmul.inputs
    assert W.local.shape == (2, 2, 2) and x.local.shape == (2, 2)  # output shape + input shape
    np.testing.assert_allclose(x.local, NORM["W"])  # d(Wx)/dx = W
    text = str(ex)
    assert "vjp () -> (2,)" in text and "vjp (2,) -> (2, 2)" in text and "vjp (2,) -> (2,)" in text
    markdown = ex.to_markdown()
    assert "vjp (2,) -> (2, 2); J (2, 2, 2) = [[[0.2, 0.4], [0, 0]], [[0, 0], [0.2, 0.4]]]" in markdown
    step = ex.to_dict()["steps"][2]
    assert step["inputs"][0]["local"]["kind"] == "jacobian"
    assert step["inputs"][0]["local"]["upstream_shape"] == [2] and step["inputs"][0]["local"]["input_shape"] == [2, 2]


# ------------------------------------------------------------------ the engine's numbers, not a copy
def twin(build, values):
    """The same computation, every intermediate kept with retain_grad(), then a plain backward()."""
    leaves = {k: leaf(v, k) for k, v in values.items()}
    keep = Keep()
    f = build(cr, keep, **leaves)
    for t in keep.tensors.values():
        t.retain_grad()
    order = []

    class Order:
        def step(self, node, upstream, downstream):
            order.append(node)

        def arrive(self, node, target, contribution, total):
            pass

    names = {id(t._grad_fn): name for name, t in keep.tensors.items()}
    engine.backward(f, retain_graph=True, observer=Order())
    walk = [names[id(node)] for node in order]
    for t in keep.tensors.values():
        t.grad = None
    for t in leaves.values():
        t.grad = None
    f.backward()  # the plain backward (the C walk where it is built)
    return leaves, keep.tensors, walk


@pytest.mark.parametrize("build, values", [(neuron, NEURON), (max_gate, MAX_GATE), (squared_norm, NORM)])
def test_every_number_is_the_engines_own_and_rows_follow_the_walk(build, values):
    ex, *_ = both(build, values)
    leaves, kept, walk = twin(build, values)
    assert [r.node for r in ex.rows] == walk
    for row in ex.rows:
        assert np.array_equal(row.upstream, kept[row.node].grad)  # bit for bit
    for name, t in leaves.items():
        assert np.array_equal(ex.grads[name], t.grad)
    for row in ex.rows:
        for item in row.inputs:
            if item.total is not None and item.name in leaves and not item.summed:
                assert np.array_equal(item.downstream, item.total)


def test_explain_accumulates_once_like_a_plain_backward():
    def run(first_pass, explained):
        x = leaf([1.0, -2.0], "x")
        if first_pass:
            (x * 3.0).sum().backward()
        f = (x * x + x).sum()
        out = explain(f) if explained else f.backward()
        return x, out

    x_plain, _ = run(True, False)
    x_explained, ex = run(True, True)
    assert np.array_equal(x_explained.grad, x_plain.grad)  # accumulated once, bit for bit
    np.testing.assert_array_equal(ex.grads["x"], [3.0, -3.0])  # the table shows this pass alone
    x_fresh, ex_fresh = run(False, True)
    assert np.array_equal(ex.grads["x"], ex_fresh.grads["x"]) and np.array_equal(x_fresh.grad, ex.grads["x"])
    # the three contributions to x in this pass are marked: two of them as branch sums
    marked = [i.summed for r in ex.rows for i in r.inputs if i.name == "x"]
    assert sorted(marked) == [False, True, True]


def test_explain_after_backward_says_what_to_do():
    x = leaf(2.0, "x")
    f = x * x
    f.backward()
    with pytest.raises(RuntimeError, match=r"call explain\(\) before backward\(\).*retain_graph=True"):
        explain(f)
    assert x.grad == 4.0  # untouched
    g = x * 3.0
    g.backward(retain_graph=True)
    ex = explain(g)  # the graph is still there: a second pass, accumulating as backward would
    assert x.grad == 4.0 + 3.0 + 3.0 and float(ex.grads["x"]) == 3.0


def test_explain_needs_a_graph():
    with pytest.raises(RuntimeError, match="does not require grad"):
        explain(cr.tensor(1.0))
    with pytest.raises(TypeError, match="Tensor"):
        explain(1.0)
    with pytest.raises(RuntimeError, match=r"shape \(2,\)"):
        explain(leaf([1.0, 2.0]) * 2.0)


# ------------------------------------------------------------------ notes
def notes(ex):
    return " | ".join(n for r in ex.rows for n in r.notes)


def test_note_relu_at_zero_and_inactive():
    x = leaf([0.0, 1.0, -1.0], "x")
    ex = explain(cr.relu(x).sum())
    assert "relu at 0 at 1 of 3 elements: relu'(0) = 0" in notes(ex)
    np.testing.assert_array_equal(ex.grads["x"], [0.0, 1.0, 0.0])
    ex = explain(cr.relu(leaf(-3.0)))
    assert "relu inactive" in notes(ex)
    ex = explain(cr.relu(leaf(0.0)))
    assert "relu at 0: relu'(0) = 0" in notes(ex)


def test_note_ties_in_max_and_maximum():
    t = leaf([3.0, 3.0, 1.0], "t")
    ex = explain(cr.max(t))
    assert "tie: 2 elements share the maximum" in notes(ex)
    np.testing.assert_array_equal(ex.grads["t"], [0.5, 0.5, 0.0])
    a, b = leaf(2.0, "a"), leaf(2.0, "b")
    ex = explain(cr.maximum(a, b))
    assert "tie: both inputs are equal; each gets half" in notes(ex)
    assert [i.local for i in ex.rows[0].inputs] == [0.5, 0.5]


def test_note_saturated_sigmoid_and_tanh():
    ex = explain(cr.sigmoid(leaf(20.0)))
    assert "sigmoid saturated" in notes(ex)
    assert 0 < ex.rows[0].inputs[0].local < 1e-8
    ex = explain(cr.tanh(leaf([0.1, 10.0])).sum())
    assert "tanh saturated at 1 of 2 elements" in notes(ex)
    assert notes(explain(cr.sigmoid(leaf(0.5)))) == ""


def test_note_nan_and_inf():
    x, y = leaf(0.0, "x"), leaf(0.0, "y")
    with np.errstate(all="ignore"):
        ex = explain(x / y)
    text = notes(ex)
    assert "the forward value holds NaN" in text
    assert "the gradient to x holds inf" in text and "the gradient to y holds NaN" in text
    data = ex.to_dict()
    json.dumps(data, allow_nan=False)  # JSON-ready: NaN and inf are strings
    assert data["value"] == "nan" and data["grads"] == {"x": "inf", "y": "nan"}
    with np.errstate(all="ignore"):
        ex = explain(cr.sqrt(leaf([0.0, 4.0], "v")).sum())
    assert "the gradient to v holds inf (1)" in notes(ex)
    assert ex.to_dict()["grads"]["v"] == ["inf", 0.25]


# ------------------------------------------------------------------ shapes
def test_a_leaf_a_zero_d_and_an_empty_tensor():
    x = leaf(3.0, "x")
    ex = explain(x)
    assert ex.rows == [] and float(ex.grads["x"]) == 1.0 and x.grad == 1.0
    assert str(ex).splitlines()[0] == "backward from x = 3: 0 steps"
    empty = cr.tensor(np.zeros((0, 3)), requires_grad=True, name="e")
    ex = explain(empty.sum())
    assert ex.value == 0.0 and ex.grads["e"].shape == (0, 3)
    (row,) = ex.rows
    assert row.inputs[0].local is None and row.inputs[0].downstream.shape == (0, 3)
    assert "vjp () -> (0, 3)" in str(ex) and "empty (0, 3)" in str(ex)
    assert ex.to_dict()["grads"] == {"e": []}
    z = cr.tensor(np.float32(2.0), requires_grad=True, name="z")
    ex = explain(z * z)
    assert ex.grads["z"].dtype == np.float32 and float(ex.grads["z"]) == 4.0


def test_non_scalar_output_with_an_upstream_gradient_and_broadcasting():
    x, b = leaf([1.0, 2.0, 3.0], "x"), leaf(10.0, "b")
    y = x * b
    ex = explain(y, grad=np.array([1.0, 0.0, 2.0]))
    assert isinstance(ex.value, np.ndarray) and ex.value.tolist() == [10.0, 20.0, 30.0]
    (row,) = ex.rows
    assert row.inputs[1].rule_shape == (3,) and row.inputs[1].downstream.shape == ()
    assert float(ex.grads["b"]) == 7.0 and b.grad == 7.0
    np.testing.assert_array_equal(row.inputs[1].local, [1.0, 2.0, 3.0])  # d y / d b, shape (3,) + ()
    assert "rule gave (3,), summed over broadcast axes" in str(ex)


def test_large_tensors_show_the_vjp_and_a_summary():
    rng = np.random.default_rng(1)
    W = cr.tensor(rng.normal(size=(20, 30)), requires_grad=True, name="W")
    x = cr.tensor(rng.normal(size=(5, 30)), name="x")
    ex = explain((x @ W.transpose()).sum())
    matmul = ex.rows[1]
    assert matmul.op == "matmul" and matmul.inputs[1].local is None and matmul.inputs[1].downstream.shape == (30, 20)
    assert "vjp (5, 20) -> (30, 20)" in str(ex)
    assert ex.to_dict()["steps"][1]["inputs"][1]["local"] == {
        "kind": "vjp",
        "upstream_shape": [5, 20],
        "input_shape": [30, 20],
    }
    big = cr.tensor(np.ones(20_000), requires_grad=True, name="big")
    grad = explain(big.sum()).to_dict()["grads"]["big"]
    assert grad == {"shape": [20000], "dtype": "float64", "min": 1.0, "mean": 1.0, "max": 1.0,
                    "norm": pytest.approx(math.sqrt(20_000))}  # fmt: skip


# ------------------------------------------------------------------ models and names
def test_linear_relu_model_with_parameter_names():
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    x = cr.tensor(rng.normal(size=(5, 3)), name="x")
    loss = (model(x) ** 2).mean()
    ex = explain(loss, model=model)
    assert [r.node for r in ex.rows] == ["mean_1", "pow_scalar_1", "linear_2", "relu_1", "linear_1"]
    assert list(ex.grads) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    for name, p in model.named_parameters():
        assert np.array_equal(ex.grads[name], p.grad)
    first = ex.rows[-1]
    assert [i.name for i in first.inputs] == ["x", "0.weight", "0.bias"]
    assert "x (no grad)" in str(ex)
    # names= as a mapping wins over the model's names
    loss = (model(x) ** 2).mean()
    ex = explain(loss, model=model, names={"W1": model[0].weight})
    assert "W1" in ex.grads and "0.bias" in ex.grads
    with pytest.raises(TypeError, match="mapping"):
        explain((model(x) ** 2).mean(), names=[1, 2])


def test_user_functions_are_explained_by_their_own_backward():
    class Cube(cr.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3 * x**2 * g

    x = leaf([1.0, 2.0], "x")
    ex = explain(Cube.apply(x).sum())
    assert ex.rows[1].op == "Cube"
    np.testing.assert_array_equal(ex.rows[1].inputs[0].local, [[3.0, 0.0], [0.0, 12.0]])

    class Once(cr.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.calls = 0
            return x * 2

        @staticmethod
        def backward(ctx, g):
            ctx.calls += 1
            if ctx.calls > 1:
                raise ValueError("backward ran twice")
            return g * 2

    y = leaf(1.0, "y")
    ex = explain(Once.apply(y))
    assert "local gradient not available" in notes(ex) and float(ex.grads["y"]) == 2.0 and y.grad == 2.0


def test_markdown_html_and_dict_forms():
    x = leaf(2.0, "a<b|c")
    ex = explain(x * x + 1.0)
    markdown = ex.to_markdown()
    lines = markdown.splitlines()
    assert lines[2].startswith("| step | node | op |") and "downstream = local × upstream" in lines[2]
    assert "a<b\\|c" in markdown
    page = ex.to_html()
    assert "a&lt;b|c" in page and "<b|c" not in page and 'rowspan="2"' in page
    assert "#1a7f37" in page and "#b31d28" in page and ex._repr_html_() == page
    data = json.loads(json.dumps(ex.to_dict(), allow_nan=False))
    assert data["value"] == 5.0 and data["grads"] == {"a<b|c": 4.0} and data["output"] == "add_1"
    assert [s["op"] for s in data["steps"]] == ["add", "mul"]
    mul = data["steps"][1]
    assert [i["summed"] for i in mul["inputs"]] == [False, True]
    assert mul["inputs"][1]["total"] == 4.0 and mul["inputs"][0]["local"] == {"kind": "number", "value": 2.0}
    assert data["steps"][0]["inputs"][1]["requires_grad"] is False


def test_explanation_draws_every_gradient():
    x = leaf(3.0, "x")
    ex = explain(x * x)
    assert "grad 6" in ex.draw().source and "grad 1" in ex.draw().source
    with pytest.raises(ValueError, match="names"):
        cr.viz.draw(ex, model=nn.Linear(1, 1))


# ------------------------------------------------------------------ the observer hook
class Recorder:
    def __init__(self):
        self.steps, self.arrivals = [], []

    def step(self, node, upstream, downstream):
        # the node still holds what its rule needed
        assert node.saved is not engine.RELEASED and node.inputs
        self.steps.append((node, upstream, downstream))

    def arrive(self, node, target, contribution, total):
        self.arrivals.append((node, target, contribution, total, np.array(total, copy=True)))


def test_observer_sees_each_step_before_release_and_each_arrival():
    x = leaf([1.0, 2.0, 3.0], "x")
    b = leaf(0.5, "b")
    h = x * b  # b is broadcast
    y = (h * x + x).sum()
    rec = Recorder()
    engine.backward(y, observer=rec)
    assert [node.name for node, *_ in rec.steps] == ["sum", "add", "mul", "mul"]
    assert all(node.saved is engine.RELEASED and node.inputs == () for node, *_ in rec.steps)
    # downstream before unbroadcast, contributions after
    last_node, _, downstream = rec.steps[-1]
    assert downstream[1].shape == (3,)
    to_b = [a for a in rec.arrivals if a[1] is b]
    assert len(to_b) == 1 and to_b[0][2].shape == () and to_b[0][0] is last_node
    # x gets three contributions; each total is the sum so far, the last is .grad
    to_x = [a for a in rec.arrivals if a[1] is x]
    assert len(to_x) == 3
    running = np.zeros(3)
    for _, _, contribution, _, total_then in to_x:
        running = running + contribution
        np.testing.assert_array_equal(total_then, running)
    assert to_x[-1][3] is x.grad.data
    # a non-leaf's first contribution is the pending gradient itself
    to_h = [a for a in rec.arrivals if a[1] is h]
    assert len(to_h) == 1 and to_h[0][3] is to_h[0][2]


def test_observer_runs_the_python_walk_with_the_same_results(monkeypatch):
    def build():
        x = leaf([0.5, -1.0], "x")
        return x, (cr.tanh(x * x) * 3.0).sum()

    x_plain, y = build()
    y.backward()
    monkeypatch.setattr(engine, "_walk", lambda *a: pytest.fail("the C walk ran with an observer"))
    x_obs, y = build()
    rec = Recorder()
    engine.backward(y, observer=rec)
    assert np.array_equal(x_plain.grad, x_obs.grad) and len(rec.steps) == 4


def test_observer_with_retain_graph_keeps_the_graph():
    x = leaf(2.0, "x")
    y = x * 3.0
    rec = Recorder()
    engine.backward(y, retain_graph=True, observer=rec)
    assert y.op.inputs and y.op.saved is not engine.RELEASED
    y.backward()
    assert x.grad == 6.0


def test_docs_visualize_prints_what_it_shows():
    """Each ```text block of docs/visualize.md is the output of the ```python block before it."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "visualize.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```(python|text)\n(.*?)^```\n", text, flags=re.DOTALL | re.MULTILINE)
    namespace: dict = {"__name__": "docs_visualize"}
    printed = None
    checked = 0
    for i, (kind, body) in enumerate(blocks):
        if kind == "python":
            buffer = io.StringIO()
            with contextlib.redirect_stdout(buffer):
                exec(compile(body, f"visualize.md[block {i}]", "exec"), namespace)
            printed = buffer.getvalue()
        else:
            assert body == printed, f"docs/visualize.md block {i} is not what the code before it prints"
            checked += 1
    assert checked >= 8 and namespace["ex"].value == -12.0
