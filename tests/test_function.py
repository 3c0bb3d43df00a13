"""User-defined ops: chainrule.Function with forward(ctx, ...) / backward(ctx, grad_output).

The worked example is Lp pooling, y = (sum_i x_i^p)^(1/p) over the last axis, whose
gradient has the closed form dy/dx_i = (x_i / y)^(p-1). The same op is documented in
docs/custom_functions.md, whose code blocks are executed here.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import run_doc

import chainrule as cr


class LpPool(cr.Function):
    """y = (sum_i x_i^p)^(1/p) over the last axis, for x > 0."""

    @staticmethod
    def forward(ctx, x, p):
        assert isinstance(x, np.ndarray), "forward receives arrays, not tensors"
        assert isinstance(p, float), "non-tensor arguments pass through unchanged"
        y = (x**p).sum(axis=-1) ** (1 / p)
        ctx.save_for_backward(x, y)
        ctx.p = p
        return y

    @staticmethod
    def backward(ctx, grad_output):
        assert isinstance(grad_output, np.ndarray)
        x, y = ctx.saved_tensors
        return grad_output[..., None] * (x / y[..., None]) ** (ctx.p - 1), None


def lp_reference(x: np.ndarray, p: float) -> np.ndarray:
    return np.sum(x**p, axis=-1) ** (1 / p)


def positive(shape: tuple[int, ...], seed: int = 0, dtype=np.float64) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.3, 2.0, size=shape).astype(dtype)


# --------------------------------------------------------------------- Lp pooling
@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, 4.5])
@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 6)])
def test_lp_pool_forward_matches_numpy(p, shape):
    data = positive(shape, seed=1)
    x = cr.tensor(data, requires_grad=True)
    y = LpPool.apply(x, p)
    assert isinstance(y, cr.Tensor)
    assert y.shape == shape[:-1]
    assert y.dtype == np.float64
    np.testing.assert_allclose(y.data, lp_reference(data, p), rtol=1e-12)
    assert y.op is not None and y.op.name == "LpPool"
    assert "op=LpPool" in repr(y)


@pytest.mark.parametrize("p", [1.5, 2.0, 3.0])
def test_lp_pool_gradient_matches_closed_form(p):
    data = positive((3, 5), seed=2)
    x = cr.tensor(data, requires_grad=True)
    y = LpPool.apply(x, p)
    upstream = np.array([1.0, -2.0, 0.5])
    y.backward(upstream)
    y_ref = lp_reference(data, p)
    expected = upstream[:, None] * (data / y_ref[:, None]) ** (p - 1)
    np.testing.assert_allclose(x.grad, expected, rtol=1e-12)


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, 7.0])
def test_lp_pool_passes_gradcheck_in_float64(p):
    x = cr.tensor(positive((3, 4), seed=3), requires_grad=True)
    assert cr.gradcheck(lambda t: LpPool.apply(t, p), [x])
    assert cr.gradcheck(lambda t: LpPool.apply(t, p).sum(), [x])


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, 5.0])
def test_lp_pool_matches_torch_vector_norm(p):
    torch = pytest.importorskip("torch")
    data = positive((4, 6), seed=4, dtype=np.float32)
    upstream = np.random.default_rng(5).standard_normal(4).astype(np.float32)

    x = cr.tensor(data, requires_grad=True)
    y = LpPool.apply(x, p)
    y.backward(upstream)

    xt = torch.tensor(data, requires_grad=True)
    yt = torch.linalg.vector_norm(xt, ord=p, dim=-1)
    yt.backward(torch.tensor(upstream))

    assert y.dtype == np.float32 and x.grad.dtype == np.float32
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(x.grad, xt.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_non_tensor_arguments_get_no_gradient_and_needs_input_grad():
    seen = {}

    class Affine(cr.Function):
        """y = a * x + b, with a Python number scale ``k``."""

        @staticmethod
        def forward(ctx, x, a, b, k):
            seen["needs"] = ctx.needs_input_grad
            ctx.save_for_backward(x, a)
            ctx.k = k
            return k * a * x + b

        @staticmethod
        def backward(ctx, grad_output):
            x, a = ctx.saved_tensors
            seen["backward_needs"] = ctx.needs_input_grad
            gx = grad_output * ctx.k * a if ctx.needs_input_grad[0] else None
            ga = grad_output * ctx.k * x if ctx.needs_input_grad[1] else None
            gb = grad_output if ctx.needs_input_grad[2] else None
            return gx, ga, gb, None

    x = cr.tensor([1.0, 2.0], requires_grad=True)
    a = cr.tensor([3.0, 4.0])  # no gradient wanted
    b = cr.tensor([0.5, 0.5], requires_grad=True)
    y = Affine.apply(x, a, b, 2.0)
    np.testing.assert_allclose(y.data, [6.5, 16.5])
    assert seen["needs"] == (True, False, True, False)
    y.sum().backward()
    assert seen["backward_needs"] == (True, False, True, False)
    np.testing.assert_allclose(x.grad, [6.0, 8.0])
    np.testing.assert_allclose(b.grad, [1.0, 1.0])
    assert a.grad is None


def test_gradient_for_an_input_not_requiring_grad_is_dropped():
    class Mul(cr.Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, grad_output):
            a, b = ctx.saved_tensors
            return grad_output * b, grad_output * a  # computes both regardless

    a = cr.tensor([2.0, 3.0], requires_grad=True)
    b = cr.tensor([5.0, 7.0])
    Mul.apply(a, b).sum().backward()
    np.testing.assert_allclose(a.grad, [5.0, 7.0])
    assert b.grad is None


# --------------------------------------------------------------------- errors from a wrong backward
class WrongCount(cr.Function):
    @staticmethod
    def forward(ctx, x, p):
        return x * p

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output  # forgot the None for p


class WrongShape(cr.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output[:2]


class TooSmall(cr.Function):
    @staticmethod
    def forward(ctx, x):
        return x.sum(axis=-1)

    @staticmethod
    def backward(ctx, grad_output):
        # wrong: (3,) for an input of shape (3, 3) broadcasts, but along the wrong axis
        return grad_output


class BroadcastGrad(cr.Function):
    """y = x + bias (bias of shape (3,) broadcast over rows); returns the bias gradient unreduced."""

    @staticmethod
    def forward(ctx, x, bias):
        return x + bias

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output, grad_output  # the engine sums the second back to (3,)


def test_backward_returning_wrong_number_of_gradients_raises():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = WrongCount.apply(x, 3.0)
    with pytest.raises(RuntimeError, match=r"WrongCount\.backward returned 1 gradient\(s\).*2 argument"):
        y.sum().backward()


def test_backward_returning_wrongly_shaped_gradient_raises():
    x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = WrongShape.apply(x)
    with pytest.raises(RuntimeError, match=r"WrongShape\.backward.*shape \(2,\).*argument 0.*shape \(3,\)"):
        y.sum().backward()


def test_backward_returning_a_gradient_smaller_than_the_input_raises():
    x = cr.tensor(np.ones((3, 3)), requires_grad=True)
    y = TooSmall.apply(x)
    with pytest.raises(RuntimeError, match=r"TooSmall\.backward.*shape \(3,\).*shape \(3, 3\)"):
        y.sum().backward()


def test_backward_may_return_a_broadcast_shaped_gradient():
    x = cr.tensor(np.ones((2, 3)), requires_grad=True)
    bias = cr.tensor([0.0, 1.0, 2.0], requires_grad=True)
    y = BroadcastGrad.apply(x, bias)
    (y * np.array([[1.0], [10.0]])).sum().backward()
    np.testing.assert_allclose(x.grad, [[1, 1, 1], [10, 10, 10]])
    np.testing.assert_allclose(bias.grad, [11.0, 11.0, 11.0])
    assert bias.grad.shape == (3,)


def test_forward_returning_several_outputs_raises():
    class TwoOutputs(cr.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, grad_output):
            return grad_output

    with pytest.raises(TypeError, match=r"TwoOutputs\.forward returned a tuple of 2 values"):
        TwoOutputs.apply(cr.tensor([1.0, 2.0], requires_grad=True))


# --------------------------------------------------------------------- inside a bigger graph
def test_function_inside_a_bigger_graph():
    torch = pytest.importorskip("torch")
    w_data = np.random.default_rng(6).standard_normal((3, 4))
    scale_data = np.array([0.5, 1.5, -1.0])

    w = cr.tensor(w_data, requires_grad=True)
    scale = cr.tensor(scale_data, requires_grad=True)
    pooled = LpPool.apply(cr.exp(w) * 2.0, 3.0)  # earlier ops feed the Function
    loss = (cr.tanh(pooled * scale) ** 2).sum()  # later ops consume it
    loss.backward()

    wt = torch.tensor(w_data, requires_grad=True)
    st = torch.tensor(scale_data, requires_grad=True)
    pt = torch.linalg.vector_norm(torch.exp(wt) * 2.0, ord=3.0, dim=-1)
    lt = (torch.tanh(pt * st) ** 2).sum()
    lt.backward()

    np.testing.assert_allclose(loss.item(), lt.item(), rtol=1e-12)
    np.testing.assert_allclose(w.grad, wt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(scale.grad, st.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert cr.gradcheck(lambda a, s: cr.tanh(LpPool.apply(cr.exp(a) * 2.0, 3.0) * s), [w, scale])


def test_function_used_twice_accumulates():
    x = cr.tensor(positive((2, 3), seed=7), requires_grad=True)
    y = LpPool.apply(x, 2.0) + LpPool.apply(x * 3.0, 2.0)
    y.sum().backward()
    # ||3x|| = 3 ||x||, so the total is 4 ||x|| and the gradient 4 x / ||x||
    expected = 4 * x.data / np.linalg.norm(x.data, axis=-1, keepdims=True)
    np.testing.assert_allclose(x.grad, expected, rtol=1e-12)


def test_function_under_no_grad_records_nothing():
    x = cr.tensor(positive((2, 3)), requires_grad=True)
    with cr.no_grad():
        y = LpPool.apply(x, 2.0)
    np.testing.assert_allclose(y.data, lp_reference(x.data, 2.0))
    assert y.requires_grad is False
    assert y.is_leaf and y.op is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()
    assert x.grad is None


def test_function_without_inputs_requiring_grad_records_nothing():
    y = LpPool.apply(cr.tensor(positive((2, 3))), 2.0)
    assert y.requires_grad is False and y.op is None


def test_saved_arrays_are_freed_after_backward():
    x = cr.tensor(positive((2, 3)), requires_grad=True)
    y = LpPool.apply(x, 2.0)
    y.sum().backward(retain_graph=True)
    first = x.grad.data.copy()
    y.sum().backward()
    np.testing.assert_allclose(x.grad, 2 * first)
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.sum().backward()


def test_function_without_forward_or_backward_raises():
    class NoBackward(cr.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

    x = cr.tensor([1.0], requires_grad=True)
    y = NoBackward.apply(x)
    with pytest.raises(NotImplementedError, match="backward"):
        y.sum().backward()

    class NoForward(cr.Function):
        pass

    with pytest.raises(NotImplementedError, match="forward"):
        NoForward.apply(x)


# --------------------------------------------------------------------- the docs are executed
def test_docs_custom_functions_code_runs_and_gradchecks():
    namespace = run_doc("custom_functions.md")
    assert len(namespace["__blocks__"]) >= 3, "docs/custom_functions.md should hold the Lp pooling example"

    DocLpPool = namespace["LpPool"]
    assert issubclass(DocLpPool, cr.Function)
    data = positive((3, 5), seed=8)
    for p in (1.0, 2.0, 3.5):
        x = cr.tensor(data, requires_grad=True)
        y = DocLpPool.apply(x, p)
        np.testing.assert_allclose(y.data, lp_reference(data, p), rtol=1e-12)
        y.sum().backward()
        np.testing.assert_allclose(x.grad, (data / lp_reference(data, p)[:, None]) ** (p - 1), rtol=1e-12)
        assert cr.gradcheck(lambda t, p=p: DocLpPool.apply(t, p), [cr.tensor(data, requires_grad=True)])
