"""In-place operations with PyTorch's semantics, cross-checked against PyTorch: the manual SGD loop
of every course, recorded in-place ops on non-leaf tensors, refusals, and the version counter."""

from __future__ import annotations

import gc
import tracemalloc
import weakref

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule import nn, optim
from chainrule.autograd import engine

OPS = ["add_", "sub_", "mul_", "div_"]
OPERATORS = {"add_": "__iadd__", "sub_": "__isub__", "mul_": "__imul__", "div_": "__itruediv__"}


def test_the_manual_sgd_loop_updates_the_parameters_as_in_torch():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(16, 3)), rng.normal(size=(16, 1))
    w0 = rng.normal(size=(3, 1))
    w, tw = cr.tensor(w0, requires_grad=True), torch.tensor(w0, requires_grad=True)
    for _ in range(5):
        loss = ((cr.tensor(X) @ w - cr.tensor(y)) ** 2).mean()
        tloss = ((torch.tensor(X) @ tw - torch.tensor(y)) ** 2).mean()
        w.grad, tw.grad = None, None
        loss.backward()
        tloss.backward()
        with cr.no_grad():
            for p in [w]:
                p -= 0.1 * p.grad  # the same object, changed in place
        with torch.no_grad():
            tw -= 0.1 * tw.grad
        np.testing.assert_allclose(w.data, tw.detach().numpy(), rtol=1e-14)
    assert w._version == 5
    assert w.is_leaf and w.requires_grad


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("spelling", ["method", "operator"])
def test_in_place_without_a_graph_writes_the_array_itself(name, spelling):
    a = np.array([1.5, -2.0, 3.0])
    t = cr.tensor(a)
    buffer = t.data
    other = np.array([0.5, 4.0, -1.0])
    result = getattr(t, name if spelling == "method" else OPERATORS[name])(cr.tensor(other))
    expected = getattr(torch.tensor(a), name)(torch.tensor(other)).numpy()
    assert result is t and t.data is buffer  # the same tensor and the same memory
    np.testing.assert_array_equal(t.data, expected)
    assert t._version == 1


@pytest.mark.parametrize("name", OPS)
def test_recorded_in_place_ops_on_non_leaves_give_torchs_gradients(name):
    a, b = np.array([1.5, -2.0, 3.0]), np.array([0.5, 4.0, -1.0])
    x, w = cr.tensor(a, requires_grad=True), cr.tensor(b, requires_grad=True)
    tx, tw = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    h, th = x * 2.0, tx * 2.0
    getattr(h, name)(w)
    getattr(th, name)(tw)
    (h * h).sum().backward()
    (th * th).sum().backward()
    np.testing.assert_allclose(h.data, th.detach().numpy(), rtol=1e-15)
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-14)
    np.testing.assert_allclose(w.grad, tw.grad.numpy(), rtol=1e-14)
    assert not h.is_leaf and h.op.name == name[:-1]


def test_in_place_on_a_leaf_that_requires_grad_is_refused_while_recording():
    w = cr.tensor([1.0, 2.0], requires_grad=True, name="w")
    tw = torch.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError):
        tw += 1
    for change in (lambda: w.add_(1.0), lambda: w.__isub__(1.0), lambda: w.zero_(), lambda: w.copy_([3.0, 4.0])):
        with pytest.raises(RuntimeError, match=r"leaf tensor 'w' .* requires grad, while gradients are recorded"):
            change()
    np.testing.assert_array_equal(w.data, [1.0, 2.0])  # nothing changed
    assert w._version == 0
    with cr.no_grad():
        w.zero_()
    np.testing.assert_array_equal(w.data, [0.0, 0.0])


def test_a_tensor_changed_after_an_op_saved_it_is_refused_at_backward():
    a = np.array([1.0, 2.0, 3.0])
    x = cr.tensor(a, requires_grad=True)
    h = x * 1.0
    y = (h * h).sum()  # mul saves h
    h.mul_(3.0)
    with pytest.raises(RuntimeError, match=r"input 0 of op 'mul' .* modified by an in-place operation"):
        y.backward()
    tx = torch.tensor(a, requires_grad=True)
    th = tx * 1.0
    ty = (th * th).sum()
    th.mul_(3.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        ty.backward()


def test_a_parameter_updated_between_forward_and_backward_is_refused():
    w = cr.tensor([1.0, -1.0], requires_grad=True)
    loss = (w * cr.tensor([2.0, 3.0]) * w).sum()
    with cr.no_grad():
        w -= 0.5
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        loss.backward()
    # a new forward after the update is fine: its nodes saw the new version
    loss = (w * cr.tensor([2.0, 3.0]) * w).sum()
    loss.backward()
    np.testing.assert_array_equal(w.grad, 2 * np.array([2.0, 3.0]) * w.data)


def test_a_tensor_changed_before_it_is_used_is_fine():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    h = x * 1.0
    h += 1.0
    h += 1.0  # version 2 before anything uses it
    (h * h).sum().backward()
    np.testing.assert_array_equal(x.grad, 2 * (np.array([1.0, 2.0]) + 2))


@pytest.mark.parametrize("how", ["zero_", "fill_", "copy_"])
def test_zero_fill_copy_match_torch(how):
    a, s = np.array([1.5, -2.0, 3.0]), np.array([7.0, 8.0, 9.0])
    x, src = cr.tensor(a, requires_grad=True), cr.tensor(s, requires_grad=True)
    tx, tsrc = torch.tensor(a, requires_grad=True), torch.tensor(s, requires_grad=True)
    h, th = x * 2.0, tx * 2.0
    calls = {"zero_": ((), ()), "fill_": ((0.25,), (0.25,)), "copy_": ((src,), (tsrc,))}
    getattr(h, how)(*calls[how][0])
    getattr(th, how)(*calls[how][1])
    ((h + x) * (h + x)).sum().backward()
    ((th + tx) * (th + tx)).sum().backward()
    np.testing.assert_array_equal(h.data, th.detach().numpy())
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-15)
    if how == "copy_":
        np.testing.assert_allclose(src.grad, tsrc.grad.numpy(), rtol=1e-15)


def test_copy_broadcasts_and_converts_without_a_graph():
    t = cr.tensor(np.zeros((2, 3), dtype=np.float32))
    buffer = t.data
    t.copy_(np.array([1.0, 2.0, 3.0]))
    assert t.data is buffer and t.dtype == np.float32
    np.testing.assert_array_equal(t.data, [[1, 2, 3], [1, 2, 3]])
    t.fill_(cr.tensor(5.0))
    assert np.all(t.data == 5)


def test_in_place_errors_are_one_clear_line():
    ints = cr.tensor(np.array([1, 2, 3]))
    with pytest.raises(RuntimeError, match="cannot change a int64 tensor"):
        ints += 0.5  # PyTorch: result type Float can't be cast to Long
    small = cr.tensor(np.ones(3))
    with pytest.raises(RuntimeError, match=r"shape \(3,\) in place"):
        small += np.ones((2, 3))  # the tensor itself cannot broadcast
    h = cr.tensor(np.ones(3), requires_grad=True) * 1.0
    with pytest.raises(RuntimeError, match="cannot broadcast the tensor itself"):
        h += cr.tensor(np.ones((2, 3)))


def test_float32_tensor_keeps_its_dtype_through_in_place_ops():
    t = cr.tensor([1.0, 2.0])
    t += np.array([0.5, 0.5])  # float64 operand, float32 tensor (same kind)
    assert t.dtype == np.float32
    h = cr.tensor([1.0, 2.0], requires_grad=True) * 1.0
    h *= cr.tensor(np.array([2.0, 2.0]))  # recorded: cast back to the tensor's dtype
    assert h.dtype == np.float32


def test_compiled_steps_check_versions_too():
    w = cr.tensor([1.0, -1.0], requires_grad=True)
    x = cr.tensor([2.0, 3.0])

    @cr.compile
    def step(inputs):
        return (w * inputs * w).sum()

    for _ in range(3):  # traced, then replayed; the manual SGD update between steps is fine
        w.grad = None
        loss = step(x)
        loss.backward()
        with cr.no_grad():
            w -= 0.1 * w.grad
    expected = w.data.copy()
    loss = step(x)
    with cr.no_grad():
        w -= 0.1  # changed between forward and backward
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        loss.backward()
    np.testing.assert_allclose(w.data, expected - 0.1)


# --------------------------------------------------------------------- .grad is a tensor, as in PyTorch
def test_grad_is_a_tensor_without_history_as_in_torch():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    tx = torch.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    (tx * tx).sum().backward()
    for g, tg in ((x.grad, tx.grad),):
        assert isinstance(g, cr.Tensor) and g.is_leaf and not g.requires_grad
        assert g.dtype == x.dtype and g.shape == tuple(tg.shape)
        np.testing.assert_array_equal(g.numpy(), tg.numpy())
    first = x.grad
    (x * x).sum().backward()  # accumulates into a new tensor holding the sum
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 8.0])
    np.testing.assert_array_equal(first.numpy(), [2.0, 4.0])
    x.grad.zero_()  # PyTorch's way to clear in place
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])
    h = x * 3.0
    h.retain_grad()
    h.sum().backward()
    assert isinstance(h.grad, cr.Tensor) and h.grad.tolist() == [1.0, 1.0]
    s = cr.tensor(2.0, requires_grad=True)
    (s * s).backward()
    assert isinstance(s.grad, cr.Tensor) and s.grad.shape == () and s.grad.item() == 4.0  # 0-d grads too


def test_numpy_meets_tensors_as_it_meets_torchs():
    w = cr.tensor([1.0, -2.0], requires_grad=True)
    (w * w).sum().backward()
    array = w.data
    array -= 0.5 * w.grad  # the classic update on the arrays: in place, the same buffer
    assert w.data is array and w.data.tolist() == [0.0, 0.0]
    a = np.array([3.0, 4.0], dtype=np.float32)
    out = a * w  # ndarray <op> tensor is the tensor op, recorded in the graph
    assert isinstance(out, cr.Tensor) and out.op.name == "mul"
    assert isinstance(np.isinf(w.grad), np.ndarray)  # no grad required: NumPy on the values
    with pytest.raises(TypeError, match=r"numpy\.exp on a tensor that requires grad"):
        np.exp(w)
    assert np.all(w.grad == w.grad) and np.any(w.grad != 0)
    with pytest.raises(TypeError, match=r"expected to be a Tensor or None but got grad of type numpy\.ndarray"):
        w.grad = np.ones(2, dtype=np.float32)  # as in PyTorch: .grad holds tensors
    w.grad = cr.tensor(np.ones(2, dtype=np.float32))
    (w * w).sum().backward()
    assert isinstance(w.grad, cr.Tensor) and w.grad.tolist() == [1.0, 1.0]


def test_assigning_grad_checks_what_torch_checks():
    for make in (cr.tensor, torch.tensor):
        p = make(np.zeros((2, 3)), requires_grad=True)
        with pytest.raises(TypeError, match="assigned grad expected to be a Tensor or None"):
            p.grad = 1.0
        with pytest.raises(RuntimeError, match=r"size|shape"):
            p.grad = make(np.zeros(3))
        with pytest.raises(RuntimeError, match="dtype"):
            p.grad = make(np.zeros((2, 3), np.float32))
        with pytest.raises(RuntimeError, match="own grad"):
            p.grad = p
        p.grad = make(np.ones((2, 3)))
        del p.grad
        assert p.grad is None
        q = make(np.zeros(2))  # a tensor that does not require grad may still hold one
        q.grad = make(np.ones(2))
        assert q.grad.tolist() == [1.0, 1.0]


def test_gradient_tensors_are_new_each_backward_unless_nothing_holds_them():
    p = cr.tensor([1.0, 2.0], requires_grad=True, dtype=np.float64)
    held = []
    for step in range(3):
        (p * p * (step + 1)).sum().backward()
        held.append(p.grad)
        p.grad = None
    # each backward's gradient is its own tensor, and keeps its numbers after zero_grad
    assert len({id(g) for g in held}) == 3
    assert [g.tolist() for g in held] == [[2.0, 4.0], [4.0, 8.0], [6.0, 12.0]]
    # a gradient nothing else holds may be reused: it comes back clean whatever was done to it
    (p * p).sum().backward()
    p.grad.name = "spent"
    p.grad.requires_grad_()
    p.grad.grad = cr.ones_like(p.grad)
    with cr.no_grad():
        p.grad.add_(1.0)
    p.grad = None
    (p * p).sum().backward()
    g = p.grad
    assert (g.name, g.requires_grad, g.grad, g.grad_fn, g._version) == (None, False, None, None, 0)
    assert g.tolist() == [2.0, 4.0] and g.is_leaf
    # a gradient with a weak reference to it is freed (the reference dies), never reused
    ref = weakref.ref(g)
    p.grad = None
    del g
    (p * p * 3.0).sum().backward()
    assert ref() is None and p.grad.tolist() == [6.0, 12.0]


def test_zero_grad_clears_every_parameter_in_either_engine():
    model = nn.MLP([2, 3, 1])
    opt = optim.SGD(model.parameters(), lr=0.1)
    for clear in (opt.zero_grad, model.zero_grad):
        model(cr.ones((4, 2))).sum().backward()
        grads = [p.grad for p in model.parameters()]
        copies = [g.data.copy() for g in grads]
        assert all(isinstance(g, cr.Tensor) for g in grads)
        clear()
        assert all(p.grad is None for p in model.parameters())
        for g, copy in zip(grads, copies):  # the held ones keep their numbers
            np.testing.assert_array_equal(g.data, copy)
    with pytest.raises(TypeError, match="not a tensor"):
        engine.clear_grads([model.layers[0].weight, 3])


def test_gradient_tensors_do_not_leak():
    x = cr.tensor(np.ones((8, 2)))
    model = nn.MLP([2, 4, 1])
    opt = optim.SGD(model.parameters(), lr=0.01)

    def step():
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()

    for _ in range(50):
        step()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    objects = len(gc.get_objects())
    for _ in range(500):
        step()
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert grown < 20_000, grown
    assert len(gc.get_objects()) - objects < 50


def test_grad_has_torchs_tensor_methods():
    w0 = np.array([[1.0, -2.0], [0.5, 3.0]])
    w, tw = cr.tensor(w0, requires_grad=True), torch.tensor(w0, requires_grad=True)
    (w * w * w).sum().backward()
    (tw * tw * tw).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), tw.grad.numpy())
    assert w.grad.norm().item() == pytest.approx(tw.grad.norm().item(), rel=1e-15)
    assert w.grad.norm(1, dim=0).tolist() == pytest.approx(tw.grad.norm(1, dim=0).tolist(), rel=1e-15)
    assert w.grad.abs().max().item() == tw.grad.abs().max().item()
    w.grad.zero_()
    tw.grad.zero_()
    assert w.grad.tolist() == tw.grad.tolist() == [[0.0, 0.0], [0.0, 0.0]]
