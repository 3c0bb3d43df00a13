"""chainrule.gradcheck and numerical_grad: passing checks, readable failures, no side effects."""

from __future__ import annotations

import re

import numpy as np
import pytest

import chainrule as cr


def f64(shape: tuple[int, ...], seed: int = 0, low: float = -1.0, high: float = 1.0, **kwargs) -> cr.Tensor:
    data = np.random.default_rng(seed).uniform(low, high, size=shape)
    return cr.tensor(data, **kwargs)


# --------------------------------------------------------------------- correct functions pass
def test_scalar_output_passes():
    x = f64((3, 4), requires_grad=True)
    assert cr.gradcheck(lambda t: (cr.tanh(t) * t).sum(), [x]) is True
    # a single tensor may be passed without a list
    assert cr.gradcheck(lambda t: cr.logsumexp(t), x) is True


def test_non_scalar_output_passes():
    x = f64((3, 4), seed=1, requires_grad=True)
    assert cr.gradcheck(lambda t: cr.softmax(t, axis=1), [x]) is True
    assert cr.gradcheck(lambda t: t.T @ t, [x]) is True


def test_several_inputs_some_not_requiring_grad():
    a = f64((2, 3), seed=2, requires_grad=True)
    b = f64((3, 4), seed=3)  # a constant input
    bias = f64((4,), seed=4, requires_grad=True, name="bias")
    assert cr.gradcheck(lambda x, w, c: cr.sigmoid(x @ w + c), [a, b, bias]) is True
    assert cr.gradcheck(lambda x, w, c, k: (x @ w + c) * k, [a, b, bias, 2.5]) is True  # a Python number


def test_input_with_non_c_contiguous_data():
    # gradcheck must perturb every element in place whatever the memory layout
    x = cr.tensor(np.random.default_rng(5).standard_normal((3, 4)), requires_grad=True)
    x.data = np.asfortranarray(x.data)
    assert not x.data.flags.c_contiguous
    assert cr.gradcheck(lambda t: (t * t * np.arange(4.0)).sum(), [x])


def test_zero_dim_input():
    x = cr.tensor(np.float64(0.7), requires_grad=True)
    assert cr.gradcheck(lambda t: cr.exp(t) * t, [x])


# --------------------------------------------------------------------- a wrong backward is caught
BUG_AT = (1, 2)


class ScaledMul(cr.Function):
    """y = a * b with a backward that is wrong for b: 1.5x everywhere and 3x at BUG_AT."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad_output):
        a, b = ctx.saved_tensors
        factor = np.full(b.shape, 1.5)
        factor[BUG_AT] = 3.0
        return grad_output * b, grad_output * a * factor


def _parse(message: str) -> dict[str, float]:
    numbers = r"(-?[0-9.]+(?:e[-+]?\d+)?)"
    found = {key: re.search(rf"{key} {numbers}", message) for key in ("analytic", "numeric", "relative error")}
    assert all(found.values()), message
    return {key: float(m.group(1)) for key, m in found.items()}


def test_wrong_backward_raises_gradcheck_error_naming_input_and_worst_element():
    a = f64((3, 4), seed=6, low=0.5, high=1.5, requires_grad=True, name="a")
    b = f64((3, 4), seed=7, low=0.5, high=1.5, requires_grad=True, name="weights")
    with pytest.raises(cr.GradcheckError) as info:
        cr.gradcheck(lambda x, y: ScaledMul.apply(x, y).sum(), [a, b])
    message = str(info.value)
    assert "input 1" in message
    assert "'weights'" in message
    assert "'a'" not in message  # input 0 is correct and is not blamed
    assert "shape (3, 4)" in message
    assert f"index {BUG_AT}" in message
    values = _parse(message)
    true_grad = a.data[BUG_AT]  # d(sum a*b)/db = a
    np.testing.assert_allclose(values["analytic"], 3 * true_grad, rtol=1e-8)
    np.testing.assert_allclose(values["numeric"], true_grad, rtol=1e-6)
    np.testing.assert_allclose(values["relative error"], 2 / 3, rtol=1e-2)
    assert "12 of 12 elements off" in message
    assert isinstance(info.value, AssertionError)  # so a bare assert-style test reads it as a failure


def test_error_names_input_by_index_when_it_has_no_name():
    a = f64((3, 4), seed=8, low=0.5, high=1.5)  # a constant: only b is checked
    b = f64((3, 4), seed=9, low=0.5, high=1.5, requires_grad=True)
    with pytest.raises(cr.GradcheckError, match=r"input 1 of shape \(3, 4\): worst element at index \(1, 2\)"):
        cr.gradcheck(lambda x, y: ScaledMul.apply(x, y), [a, b])


def test_non_scalar_output_catches_a_bug_that_summing_hides():
    class Reversed(cr.Function):
        """y = 2x; backward wrongly reverses the upstream gradient (invisible when it is all ones)."""

        @staticmethod
        def forward(ctx, x):
            return 2 * x

        @staticmethod
        def backward(ctx, grad_output):
            return 2 * grad_output[::-1]

    x = f64((5,), seed=10, requires_grad=True)
    assert cr.gradcheck(lambda t: Reversed.apply(t).sum(), [x])
    with pytest.raises(cr.GradcheckError, match="input 0"):
        cr.gradcheck(lambda t: Reversed.apply(t), [x])


def test_tolerances_are_respected():
    class SlightlyOff(cr.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 3

        @staticmethod
        def backward(ctx, grad_output):
            return grad_output * 3 * (1 + 1e-4)

    x = f64((4,), seed=11, requires_grad=True)
    assert cr.gradcheck(lambda t: SlightlyOff.apply(t).sum(), [x])  # default rtol=1e-3
    with pytest.raises(cr.GradcheckError):
        cr.gradcheck(lambda t: SlightlyOff.apply(t).sum(), [x], rtol=1e-6, atol=1e-9)


# --------------------------------------------------------------------- numerical_grad
def test_numerical_grad_matches_analytic_gradients():
    x = f64((2, 3), seed=12, requires_grad=True)
    w = f64((3,), seed=13, requires_grad=True)
    c = f64((2, 3), seed=14)

    def fn(x, w, c):
        return (cr.exp(x * w) * c).sum()

    numeric = cr.numerical_grad(fn, [x, w, c])
    assert len(numeric) == 3
    assert numeric[2] is None
    fn(x, w, c).backward()
    assert numeric[0].shape == x.shape and numeric[1].shape == w.shape
    np.testing.assert_allclose(numeric[0], x.grad, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(numeric[1], w.grad, rtol=1e-6, atol=1e-8)
    # closed form as well: d/dx = w c e^(xw)
    np.testing.assert_allclose(numeric[0], w.data * c.data * np.exp(x.data * w.data), rtol=1e-6)


def test_numerical_grad_single_tensor_and_non_tensor_arguments():
    x = f64((4,), seed=15, requires_grad=True)
    (g,) = cr.numerical_grad(lambda t: (t**3).sum(), x)
    np.testing.assert_allclose(g, 3 * x.data**2, rtol=1e-6)
    g, none = cr.numerical_grad(lambda t, k: (t * k).sum(), [x, 4.0])
    np.testing.assert_allclose(g, np.full(4, 4.0), rtol=1e-6)
    assert none is None


# --------------------------------------------------------------------- float32 warns
def test_float32_input_warns_about_float64():
    x32 = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.warns(UserWarning, match="float64") as record:
        # a quadratic's central difference is exact even with a large eps, so the check itself passes
        assert cr.gradcheck(lambda t: (t * t).sum(), [x32], eps=1e-2, atol=1e-2, rtol=1e-2)
    assert "input 0" in str(record[0].message)
    assert record[0].filename == __file__  # the warning points at the caller
    with pytest.warns(UserWarning, match="float64"):
        cr.numerical_grad(lambda t: t.sum(), [x32], eps=1e-2)


def test_float64_inputs_do_not_warn(recwarn):
    x = f64((3,), requires_grad=True)
    cr.gradcheck(lambda t, c: (t * t * c).sum(), [x, cr.tensor([1.0])])  # the float32 constant needs no check
    assert not [w for w in recwarn if "float64" in str(w.message)]


# --------------------------------------------------------------------- no side effects
def _snapshot(t: cr.Tensor) -> tuple[bytes, object, bytes | None]:
    return t.data.tobytes(), t.grad, None if t.grad is None else t.grad.data.tobytes()


def test_gradcheck_leaves_data_and_grad_exactly_as_they_were():
    a = cr.tensor(np.array([[0.1, 0.2, 0.3], [1e-8, 1 / 3, 7.77]]), requires_grad=True)
    b = cr.tensor(np.array([0.7, -0.3, 0.11]), requires_grad=True)
    a.grad = cr.tensor(np.full((2, 3), 5.0))
    a_data, a_grad = a.data, a.grad
    before = [_snapshot(a), _snapshot(b)]

    assert cr.gradcheck(lambda x, y: (cr.sigmoid(x) * y).sum(), [a, b])
    assert a.data is a_data and a.grad is a_grad
    assert [_snapshot(a), _snapshot(b)] == before
    assert b.grad is None

    # and after a failing check too
    with pytest.raises(cr.GradcheckError):
        cr.gradcheck(lambda x, y: ScaledMul.apply(x, y.broadcast_to((2, 3))), [a, b])
    assert [_snapshot(a), _snapshot(b)] == before
    assert a.grad is a_grad


def test_inputs_are_restored_when_fn_raises_midway():
    x = cr.tensor(np.array([0.25, 0.5, 0.75]), requires_grad=True)
    before = x.data.tobytes()
    calls = {"n": 0}

    def fn(t):
        calls["n"] += 1
        if calls["n"] == 4:  # 1 analytic call, then the numeric +eps / -eps calls
            raise ArithmeticError("boom")
        return (t * t).sum()

    with pytest.raises(ArithmeticError, match="boom"):
        cr.gradcheck(fn, [x])
    assert x.data.tobytes() == before
    assert x.grad is None


def test_no_input_requiring_grad_raises_value_error():
    with pytest.raises(ValueError, match="no input requires grad"):
        cr.gradcheck(lambda t: t.sum(), [f64((3,))])
    with pytest.raises(ValueError):
        cr.gradcheck(lambda k: cr.tensor(k), [2.0])


def test_fn_must_return_a_tensor():
    with pytest.raises(TypeError, match="must return a Tensor"):
        cr.gradcheck(lambda t: t.data.sum(), [f64((3,), requires_grad=True)])


def test_gradcheck_leaves_gradients_of_other_leaves_alone():
    w = cr.tensor([2.0], requires_grad=True, dtype=np.float64)
    x = cr.tensor(np.array([1.0]), requires_grad=True)
    assert cr.gradcheck(lambda t: (t * w).sum(), [x])
    assert w.grad is None
