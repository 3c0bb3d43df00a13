"""chainrule.compile: capture once, replay with identical numbers."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import run_doc

import chainrule as cr
from chainrule.autograd.compile import CompileError


def make_params(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    shapes = [(4, 2), (4,), (1, 4), (1,)]
    return [cr.tensor(rng.normal(size=s).astype(dtype), requires_grad=True) for s in shapes]


def xor_loss(params):
    w1, b1, w2, b2 = params

    def loss(x, y):
        hidden = cr.sigmoid(cr.linear(x, w1, b1))
        out = cr.sigmoid(cr.linear(hidden, w2, b2))
        return ((out - y) ** 2).mean()

    return loss


X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
Y = np.array([[0], [1], [1], [0]], dtype=np.float64)


def train(step, params, steps=200, lr=0.5):
    losses = []
    for _ in range(steps):
        loss = step(cr.tensor(X), cr.tensor(Y))
        for p in params:
            p.grad = None
        loss.backward()
        with cr.no_grad():
            for p in params:
                p.data -= lr * p.grad
        losses.append(loss.item())
    return losses


def test_replay_is_bit_for_bit_identical_to_eager():
    eager_params, compiled_params = make_params(), make_params()
    eager = train(xor_loss(eager_params), eager_params)
    step = cr.compile(xor_loss(compiled_params))
    compiled = train(step, compiled_params)
    assert eager == compiled
    for a, b in zip(eager_params, compiled_params):
        assert np.array_equal(a.data, b.data)
    assert len(step.programs) == 1  # traced once, replayed 199 times
    assert eager[-1] < eager[0]


def test_replayed_result_has_a_single_compiled_node():
    params = make_params()
    step = cr.compile(xor_loss(params))
    step(cr.tensor(X), cr.tensor(Y))
    loss = step(cr.tensor(X), cr.tensor(Y))
    assert loss.op.name == "compiled"
    assert set(map(id, loss.op.inputs)) == set(map(id, params))


def test_new_shapes_are_traced_again():
    params = make_params()
    step = cr.compile(xor_loss(params))
    full = step(cr.tensor(X), cr.tensor(Y))
    half = step(cr.tensor(X[:2]), cr.tensor(Y[:2]))
    again = step(cr.tensor(X[:2]), cr.tensor(Y[:2]))
    assert len(step.programs) == 2
    assert again.item() == half.item() != full.item()


def test_too_many_signatures_raise():
    step = cr.compile(lambda x: (x * 2).sum(), max_traces=2)
    step(cr.tensor(np.ones(1)))
    step(cr.tensor(np.ones(2)))
    with pytest.raises(CompileError, match="2 different"):
        step(cr.tensor(np.ones(3)))


def test_backward_after_a_later_call_raises():
    params = make_params()
    step = cr.compile(xor_loss(params))
    step(cr.tensor(X), cr.tensor(Y))
    first = step(cr.tensor(X), cr.tensor(Y))
    step(cr.tensor(X), cr.tensor(Y))
    with pytest.raises(CompileError, match="overwritten"):
        first.backward()


def test_arguments_requiring_grad_and_index_targets_are_replayed():
    def loss(logits, targets):
        logp = cr.log_softmax(logits, axis=1)
        return -logp[np.arange(3), targets].mean()

    step = cr.compile(loss)
    rng = np.random.default_rng(1)
    for _ in range(3):
        z = rng.normal(size=(3, 4))
        t = rng.integers(0, 4, size=3)
        a = cr.tensor(z, requires_grad=True)
        b = cr.tensor(z, requires_grad=True)
        step(a, cr.tensor(t)).backward()
        loss(b, cr.tensor(t)).backward()
        np.testing.assert_array_equal(a.grad, b.grad)


def test_extra_outputs_are_values():
    w = cr.tensor(np.array([1.0, 2.0]), requires_grad=True)

    def f(x):
        y = x * w
        return y.sum(), y

    step = cr.compile(f)
    step(cr.tensor(np.ones(2)))
    loss, y = step(cr.tensor(np.array([3.0, 4.0])))
    assert loss.item() == 11.0
    np.testing.assert_array_equal(y.data, [3.0, 8.0])
    assert not y.requires_grad
    loss.backward()
    np.testing.assert_array_equal(w.grad, [3.0, 4.0])


def test_tensor_from_an_outer_graph_is_refused():
    w = cr.tensor(np.ones(2), requires_grad=True)
    outer = w * 2
    step = cr.compile(lambda x: (x * outer).sum())
    with pytest.raises(CompileError, match="outside"):
        step(cr.tensor(np.ones(2)))


def test_parameter_updates_between_calls_are_seen():
    w = cr.tensor(np.array([1.0]), requires_grad=True)
    step = cr.compile(lambda x: (x * w).sum())
    step(cr.tensor(np.array([2.0])))
    w.data = np.array([5.0])  # rebinding .data works too
    assert step(cr.tensor(np.array([2.0]))).item() == 10.0


def test_docs_compile_example_runs():
    namespace = run_doc("compile.md")
    assert len(namespace["xor_loss"].programs) == 1


def test_generated_source_reads_as_the_chain_rule():
    params = make_params()
    step = cr.compile(xor_loss(params))
    with pytest.raises(CompileError, match="once"):
        step.source()
    step(cr.tensor(X), cr.tensor(Y))
    source = step.source()
    assert source.count(".forward(") == 7  # linear, sigmoid, linear, sigmoid, sub, pow, mean
    assert source.count("._vjp(g)") == 7
    assert source.count("accumulate(") == 4  # one per parameter


def test_generated_source_names_each_op_and_comments_change_no_code():
    import io
    import tokenize

    params = make_params()
    step = cr.compile(xor_loss(params))
    step(cr.tensor(X), cr.tensor(Y))
    source = step.source()
    lines = source.splitlines()
    forward = [line.split("# ")[1] for line in lines if ".forward(" in line]
    assert forward == ["linear", "sigmoid", "linear", "sigmoid", "sub", "pow_scalar", "mean"]
    # the backward runs the same ops in reverse, each rule's line naming its op
    backward = [line.split("# ")[1] for line in lines if "._vjp(g)" in line]
    assert backward == [f"{name} backward: local gradient x upstream" for name in reversed(forward)]
    routed = [line.split("# ")[1] for line in lines if line.lstrip().startswith("dg = d[")]
    assert routed[:2] == ["mean -> v5 (pow_scalar)", "pow_scalar -> v4 (sub)"]
    assert routed.count("linear -> a parameter's .grad") == 4
    # the comments are the only difference from the code without them: same bytecode, same line table
    code = [t for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type != tokenize.COMMENT]

    def compiled(text):
        module = compile(text, "<replay>", "exec")
        functions = [c for c in module.co_consts if hasattr(c, "co_code")]
        return [(c.co_name, c.co_code, c.co_names, list(c.co_lines())) for c in functions]

    assert compiled(source) == compiled(tokenize.untokenize(code))


def test_generated_source_names_arguments_that_receive_gradients():
    x = cr.tensor(np.array([1.0, 2.0]), requires_grad=True)
    step = cr.compile(lambda x: (x * x).sum())
    step(x).backward()
    assert "# mul -> argument 0 (a0)" in step.source()


def test_program_does_not_keep_the_traced_batch_alive():
    import weakref

    w = cr.tensor(np.ones((3, 2)), requires_grad=True)
    step = cr.compile(lambda x: cr.relu(cr.linear(x, w)).sum())
    first = cr.tensor(np.ones((4, 2)))
    probe = weakref.ref(first)
    step(first).backward()
    del first
    import gc

    gc.collect()
    assert probe() is None
    assert step(cr.tensor(np.ones((4, 2)))).item() == 24.0


def test_traced_result_keeps_its_own_graph_after_replays():
    w = cr.tensor(np.array([2.0]), requires_grad=True)
    step = cr.compile(lambda x: (cr.tanh(x * w)).sum())
    traced = step(cr.tensor(np.array([0.5])))
    step(cr.tensor(np.array([3.0]))).backward()  # a replay with other values
    w.grad = None
    traced.backward()
    np.testing.assert_allclose(w.grad, [0.5 * (1 - np.tanh(1.0) ** 2)])


def test_data_built_inside_the_function_is_caught_on_the_first_replay():
    rng = np.random.default_rng(0)
    step = cr.compile(lambda x: (x * cr.tensor(rng.normal(size=2))).sum())
    step(cr.tensor(np.ones(2)))
    with pytest.raises(CompileError, match="does not reproduce"):
        step(cr.tensor(np.ones(2)))


def test_dropout_in_training_mode_is_caught_and_declared_not_capturable():
    from chainrule import nn

    layer = nn.Dropout(0.5, rng=0)
    assert not layer.capturable
    assert layer.eval().capturable and layer.train().capturable is False
    step = cr.compile(lambda x: layer(x).sum())
    step(cr.tensor(np.ones(50)))
    with pytest.raises(CompileError, match="Dropout"):
        step(cr.tensor(np.ones(50)))


def test_capturable_modules():
    from chainrule import nn

    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU())
    assert not all(m.capturable for m in model.modules())
    model.eval()
    assert all(m.capturable for m in model.modules())


def test_a_tensor_wrapping_an_arguments_array_is_that_argument():
    w = cr.tensor(np.array([1.0, 2.0]), requires_grad=True)
    step = cr.compile(lambda x, t: ((x * w - cr.Tensor._wrap(t.data)) ** 2).sum())
    step(cr.tensor(np.ones(2)), cr.tensor(np.zeros(2)))
    assert step(cr.tensor(np.ones(2)), cr.tensor(np.array([1.0, 2.0]))).item() == 0.0
