"""Regression tests for what was found by using chainrule as a careless or hostile user would:
each case names the mistake and checks the one clear error (or warning) it now gets."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_tensors_cannot_require_grad(dtype):
    # d|exp(a)|/da at a = 0.5+0.3i: PyTorch's conjugate convention gives 1.6487; real rules would not
    a = np.array(0.5 + 0.3j, dtype=dtype)
    with pytest.raises(TypeError, match=r"complex .* not supported"):
        cr.tensor(a, requires_grad=True)
    t = cr.tensor(a)
    with pytest.raises(TypeError, match="complex"):
        t.requires_grad = True
    assert np.isclose(abs(cr.exp(t).data), np.exp(0.5))  # forward on complex data still works


def test_gradcheck_failure_on_float32_says_to_use_float64():
    x = cr.tensor([0.3, -1.2, 2.5], requires_grad=True)  # float32, as lists become

    def f(t):
        return (t * t * t).exp().sum()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(cr.GradcheckError, match=r"not float64 \(0: float32\).*dtype='float64'"):
            cr.gradcheck(f, [x])
    assert cr.gradcheck(f, [cr.tensor(x.data, dtype=np.float64, requires_grad=True)])


def test_a_grad_of_the_wrong_shape_is_named_at_backward():
    w = cr.tensor(np.ones(3), requires_grad=True, name="w")
    w.grad = np.zeros(4)
    with pytest.raises(RuntimeError, match=r"leaf tensor 'w' of shape \(3,\) holds a .grad of shape \(4,\)"):
        (w * 2.0).sum().backward()
    w.grad = None
    (w * 2.0).sum().backward()
    np.testing.assert_array_equal(w.grad, [2.0, 2.0, 2.0])


def test_optimizer_warns_about_tensors_that_never_get_a_gradient():
    p = nn.Parameter(np.ones(2))
    frozen = cr.tensor(np.ones(2))
    with pytest.warns(UserWarning, match=r"1 of 2 tensors .* do not require grad"):
        optim.SGD([p, frozen], lr=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        optim.SGD([p], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p * 2.0], lr=0.1)


def test_load_state_dict_refuses_values_beyond_the_parameter_dtype():
    layer = nn.Linear(2, 2, dtype="float32")
    before = {k: v.copy() for k, v in layer.state_dict().items()}
    state = {"weight": np.full((2, 2), 1e300), "bias": np.zeros(2)}
    with pytest.raises(ValueError, match=r"'weight': values beyond float32's range"):
        layer.load_state_dict(state)
    assert all(np.array_equal(layer.state_dict()[k], before[k]) for k in before)  # nothing was copied
    # infinities that are already there are the caller's choice, and float64 holds 1e300
    layer.load_state_dict({"weight": np.full((2, 2), np.inf), "bias": np.zeros(2)})
    assert np.isinf(layer.weight.data).all()
    wide = nn.Linear(2, 2, dtype="float64")
    wide.load_state_dict(state)
    assert wide.weight.data[0, 0] == 1e300
