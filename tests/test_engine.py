"""The graph walk: worked examples, deep chains, accumulation, retain_graph, no_grad."""

from __future__ import annotations

import gc
import math
import weakref

import numpy as np
import pytest

import chainrule as cr
from chainrule.autograd import engine


def leaf(value: float) -> cr.Tensor:
    return cr.tensor(value, requires_grad=True, dtype=np.float64)


def test_worked_example_add_then_multiply():
    # f = (x + y) z at x=-2, y=5, z=-4: add distributes, mul swaps.
    x, y, z = leaf(-2.0), leaf(5.0), leaf(-4.0)
    q = x + y
    f = q * z
    f.backward()
    assert f.item() == -12.0
    assert x.grad == -4.0 and y.grad == -4.0
    assert z.grad == 3.0


def test_worked_example_sigmoid_neuron():
    # f = sigma(w0 x0 + w1 x1 + w2) at w=(2,-3,-3), x=(-1,-2).
    w = cr.tensor([2.0, -3.0, -3.0], requires_grad=True, dtype=np.float64)
    x = cr.tensor([-1.0, -2.0], requires_grad=True, dtype=np.float64)
    f = cr.sigmoid(w[0] * x[0] + w[1] * x[1] + w[2])
    f.backward()
    s = 1 / (1 + math.exp(-1.0))  # the dot product is 1
    ds = s * (1 - s)
    assert f.item() == pytest.approx(s, abs=1e-15)
    assert round(f.item(), 4) == 0.7311
    np.testing.assert_allclose(w.grad, [-1 * ds, -2 * ds, ds], rtol=1e-14)
    np.testing.assert_allclose(np.round(w.grad, 4), [-0.1966, -0.3932, 0.1966])
    np.testing.assert_allclose(np.round(x.grad, 4), [0.3932, -0.5898])


def test_worked_example_max_gate_routes():
    # y = (x1 + x2) * max(x2, x3) at (1, 2, 0): y = 6, gradients (2, 5, 0).
    x1, x2, x3 = leaf(1.0), leaf(2.0), leaf(0.0)
    y = (x1 + x2) * cr.maximum(x2, x3)
    y.backward()
    assert y.item() == 6.0
    assert (x1.grad, x2.grad, x3.grad) == (2.0, 5.0, 0.0)


def test_gradients_add_at_branches():
    x = leaf(3.0)
    y = x * x + x  # x feeds three uses
    y.backward()
    assert x.grad == 2 * 3.0 + 1


def test_square_shares_one_product_between_its_two_inputs():
    # x * x: the rule returns the same array for both inputs; the walk adds it to itself,
    # bit for bit the two separate products upstream * x + upstream * x of the general rule.
    rng = np.random.default_rng(3)
    values, upstream = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    for dtype in (np.float32, np.float64):
        x = cr.tensor(values.astype(dtype), requires_grad=True)
        g = upstream.astype(dtype)
        hidden = x * 1.0  # a non-leaf squared: the gradient goes through the walk's pending sum
        square = hidden * hidden
        first, second = square.op.backward(g)
        assert first is second
        square.backward(g)
        assert np.array_equal(x.grad, (g * hidden.data + g * hidden.data) * dtype(1.0))
        leaf_x = cr.tensor(values.astype(dtype), requires_grad=True)
        (leaf_x * leaf_x).backward(g)  # a leaf squared: the leaf's two accumulations
        assert np.array_equal(leaf_x.grad, g * leaf_x.data + g * leaf_x.data)
        other = cr.tensor(values.astype(dtype) + 1, requires_grad=True)
        a, b = (leaf_x * other).op.backward(g)  # distinct inputs keep distinct products
        assert a is not b and np.array_equal(a, g * other.data) and np.array_equal(b, g * leaf_x.data)


def test_mean_of_everything_spreads_upstream_over_n_exactly():
    for dtype in (np.float16, np.float32, np.float64):
        x = cr.tensor(np.ones((3, 7), dtype), requires_grad=True)
        g = np.asarray(0.3, dtype)
        x.mean().backward(g)
        expected = np.full((3, 7), g / np.asarray(21, dtype), dtype)
        assert x.grad.dtype == dtype and x.grad.data.flags.writeable and np.array_equal(x.grad, expected)


def test_chain_of_100000_ops_has_no_recursion_limit():
    x = leaf(1.0)
    y = x
    for _ in range(100_000):
        y = y * 1.0 + 0.0
    y.backward()
    assert x.grad == 1.0
    assert y.op is not None


def test_backward_on_non_scalar_needs_grad():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"shape \(2,\)"):
        y.backward()
    y.backward(np.array([1.0, 10.0], dtype=np.float32))
    np.testing.assert_array_equal(x.grad, [2.0, 20.0])


def test_backward_upstream_shape_is_checked():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"\(3,\)"):
        (x * 2).backward(np.ones(3))


def test_backward_without_graph_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        cr.tensor(1.0).backward()


def test_leaf_gradients_accumulate_across_backward_calls():
    x = leaf(2.0)
    (x * x).backward()
    (x * x).backward()
    assert x.grad == 8.0  # 4 + 4: accumulated, as in PyTorch
    x.grad = None
    (x * 3).backward()
    assert x.grad == 3.0


def test_second_backward_through_freed_graph_raises():
    x = leaf(2.0)
    y = cr.exp(x) * x
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_retain_graph_allows_second_backward():
    x = leaf(2.0)
    y = cr.exp(x) * x
    y.backward(retain_graph=True)
    first = float(x.grad)
    y.backward()
    assert x.grad == pytest.approx(2 * first)
    assert first == pytest.approx(math.exp(2) * 3)


def test_backward_releases_saved_intermediates():
    x = cr.tensor(np.ones(3), requires_grad=True)
    y = cr.tanh(x * 2).sum()
    node = y.op.inputs[0].op  # the tanh node
    assert node.saved is not None
    y.backward()
    assert node.saved is engine.RELEASED
    assert node.inputs == ()


def _loss_holding_only_the_graph() -> tuple[cr.Tensor, cr.Tensor, weakref.ref]:
    """x, loss = tanh(2x).sum(), and a weak reference to the activation's array (nothing else holds it)."""
    x = cr.tensor(np.ones(3), requires_grad=True)
    hidden = cr.tanh(x * 2)
    return x, hidden.sum(), weakref.ref(hidden.data)


def test_a_loss_kept_after_backward_does_not_keep_activations_alive():
    _, loss, activation = _loss_holding_only_the_graph()
    loss.backward()
    gc.collect()
    assert activation() is None  # freed, although loss (and its graph node) is still alive
    assert loss.op is not None


def test_retain_graph_keeps_the_activations():
    x, loss, activation = _loss_holding_only_the_graph()
    loss.backward(retain_graph=True)
    gc.collect()
    assert activation() is not None
    loss.backward()
    assert x.grad == pytest.approx(2 * 2 * (1 - np.tanh(2.0) ** 2))


def test_no_grad_records_nothing_and_works_as_decorator():
    x = leaf(2.0)
    with cr.no_grad():
        y = x * 3
        assert not cr.is_grad_enabled()
    assert cr.is_grad_enabled()
    assert y.op is None and not y.requires_grad and y.is_leaf

    @cr.no_grad()
    def f(t):
        return t * t

    z = f(x)
    assert z.op is None and not z.requires_grad
    with cr.no_grad(), cr.enable_grad():
        assert (x * 2).requires_grad


def test_retain_grad_keeps_intermediate_gradients():
    x = leaf(-2.0)
    y = leaf(5.0)
    q = (x + y).retain_grad()
    f = q * leaf(-4.0)
    f.retain_grad()
    f.backward()
    assert q.grad == -4.0
    assert f.grad == 1.0


def test_broadcast_gradient_is_summed_to_input_shape():
    a = cr.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    b = cr.tensor(np.ones((3,)), requires_grad=True)
    c = cr.tensor(np.ones((2, 1)), requires_grad=True)
    ((a * b) + c).sum().backward()
    np.testing.assert_array_equal(b.grad, a.data.sum(axis=0))
    np.testing.assert_array_equal(c.grad, [[3.0], [3.0]])


def test_unbroadcast_helper():
    g = np.ones((4, 2, 3))
    assert cr.unbroadcast(g, (2, 3)).tolist() == (4 * np.ones((2, 3))).tolist()
    assert cr.unbroadcast(g, (2, 1)).shape == (2, 1)
    assert cr.unbroadcast(g, ()).item() == 24


def test_leaf_gradients_do_not_alias_each_other():
    a, b = leaf(1.0), leaf(2.0)
    (a + b).backward()
    a.grad += 10  # in-place edit of one gradient must not leak into the other
    assert b.grad == 1.0


def test_graph_records_ops_and_inputs():
    x = cr.tensor([1.0, 2.0], requires_grad=True, name="x")
    y = (x * 2).sum()
    assert y.op.name == "sum"
    (mul_out,) = y.op.inputs
    assert mul_out.op.name == "mul"
    assert mul_out.op.inputs[0] is x
    assert "op=sum" in repr(y)


def test_nodes_describe_their_op_and_attributes():
    x = cr.tensor(np.ones((2, 3)), requires_grad=True)
    assert repr((x * 2).op) == "<mul>"
    summed = repr(cr.sum(x, axis=1).op)
    assert summed.startswith("<sum ") and "axis=(1,)" in summed and "keepdims=False" in summed
    assert repr(cr.leaky_relu(x, 0.1).op) == "<leaky_relu negative_slope=0.1>"
    assert repr(x[::2, 1].op) == "<index index=[::2, 1]>"
    assert repr(x[1:, np.array([0, 2])].op) == "<index index=[1:, <int64 array (2,)>]>"


def test_branch_that_receives_no_gradient_is_released():
    class Blocked(cr.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 1.0

        @staticmethod
        def backward(ctx, grad_output):
            return None  # deliberately passes nothing back

    x = leaf(3.0)
    hidden = cr.exp(x)  # its only consumer sends no gradient back
    loss = Blocked.apply(hidden) + x * 2
    loss.backward()
    assert x.grad == 2.0
    assert hidden.op.saved is engine.RELEASED
