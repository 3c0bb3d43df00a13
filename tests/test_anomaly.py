"""detect_anomaly (first non-finite forward output or gradient, with the user's line) and the
grad-mode switches no_grad / enable_grad / is_grad_enabled (context managers, decorators, thread-local)."""

from __future__ import annotations

import inspect
import os
import threading

import numpy as np
import pytest

import chainrule as cr

THIS_FILE = os.path.basename(__file__)

# NumPy warns about log(-1), 1/0 and the like; these tests provoke exactly that on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def next_line() -> int:
    """The line number just after the caller's current line."""
    return inspect.currentframe().f_back.f_lineno + 1


# --------------------------------------------------------------------- detect_anomaly: forward
def test_forward_names_the_first_non_finite_op_and_the_user_line():
    x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(FloatingPointError) as info:
        with cr.detect_anomaly():
            shifted = x * 2 - 3  # finite: [-1, 1, 3]
            line = next_line()
            logged = cr.log(shifted)  # ln(-1) = nan: the first non-finite output
            cr.exp(logged).sum()  # never reached
    message = str(info.value)
    assert "forward output" in message
    assert "op 'log'" in message
    assert "'exp'" not in message and "'sum'" not in message and "'sub'" not in message
    assert THIS_FILE in message
    assert f"line {line}" in message
    assert "cr.log(shifted)" in message  # the offending source line itself
    assert "1 non-finite" in message


def test_forward_log_of_zero_is_caught():
    x = cr.tensor([0.0, 1.0], requires_grad=True)
    with cr.detect_anomaly(), pytest.raises(FloatingPointError, match=r"op 'log'"):
        cr.log(x)


def test_detect_anomaly_as_decorator():
    @cr.detect_anomaly()
    def compute(t):
        return cr.log(t)

    @cr.detect_anomaly
    def compute_bare(t):
        return cr.sqrt(t)

    x = cr.tensor([-1.0], requires_grad=True)
    with pytest.raises(FloatingPointError, match="op 'log'") as info:
        compute(x)
    assert THIS_FILE in str(info.value)
    with pytest.raises(FloatingPointError, match="op 'sqrt'"):
        compute_bare(x)
    assert compute.__name__ == "compute" and compute_bare.__name__ == "compute_bare"


def test_outside_detect_anomaly_the_same_code_runs_silently():
    x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    logged = cr.log(x * 2 - 3)
    assert np.isnan(logged.data[0])
    zero = cr.tensor([0.0, 4.0], requires_grad=True)
    (cr.sqrt(zero) * 3).sum().backward()
    assert np.isinf(zero.grad[0]) and zero.grad[1] == pytest.approx(0.75)


def test_anomaly_mode_ends_with_the_block_even_after_an_error():
    x = cr.tensor([-1.0], requires_grad=True)
    with pytest.raises(FloatingPointError):
        with cr.detect_anomaly():
            cr.log(x)
    y = cr.log(x)  # no longer checked
    assert np.isnan(y.data[0])


# --------------------------------------------------------------------- detect_anomaly: backward
def test_backward_names_the_first_op_with_a_non_finite_gradient():
    x = cr.tensor([0.0, 4.0], requires_grad=True)
    with pytest.raises(FloatingPointError) as info:
        with cr.detect_anomaly():
            line = next_line()
            root = cr.sqrt(x)  # sqrt(0) = 0 is finite; its gradient 1 / (2 sqrt(0)) is not
            loss = (root * 3).sum()
            loss.backward()
    message = str(info.value)
    assert "gradient" in message
    assert "op 'sqrt'" in message
    assert "'mul'" not in message and "'sum'" not in message
    assert THIS_FILE in message and f"line {line}" in message
    assert x.grad is None  # nothing non-finite reached the leaf


def test_backward_checked_even_if_only_backward_runs_under_detect_anomaly():
    x = cr.tensor([0.0, 1.0], requires_grad=True)
    loss = (cr.sqrt(x) * 2).sum()
    with cr.detect_anomaly(), pytest.raises(FloatingPointError, match="op 'sqrt'"):
        loss.backward()


def test_finite_graph_passes_under_detect_anomaly():
    x = cr.tensor([0.5, 1.0, 2.0], requires_grad=True)
    with cr.detect_anomaly():
        loss = (cr.log(x) * cr.sqrt(x) + cr.softmax(x)).sum()
        loss.backward()
    expected = 1 / np.sqrt(x.data) + np.log(x.data) / (2 * np.sqrt(x.data))
    np.testing.assert_allclose(x.grad, expected, rtol=1e-5, atol=1e-6)  # softmax's sum has zero gradient


def test_detect_anomaly_in_a_custom_function():
    class Reciprocal(cr.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return 1 / x

        @staticmethod
        def backward(ctx, grad_output):
            (x,) = ctx.saved_tensors
            return -grad_output / x**2

    with np.errstate(divide="ignore"):
        zero = cr.tensor([0.0, 1.0], requires_grad=True)
        with cr.detect_anomaly(), pytest.raises(FloatingPointError, match="op 'Reciprocal'") as info:
            Reciprocal.apply(zero)
        assert THIS_FILE in str(info.value)

        big = cr.tensor(np.array([1e-200, 1.0]), requires_grad=True)  # 1/x is finite, 1/x^2 overflows
        with cr.detect_anomaly(), pytest.raises(FloatingPointError, match=r"gradient.*op 'Reciprocal'"):
            Reciprocal.apply(big).sum().backward()


def test_detect_anomaly_is_thread_local():
    seen = {}

    def worker():
        seen["raised"] = False
        with np.errstate(all="ignore"):
            try:
                cr.log(cr.tensor([-1.0], requires_grad=True))
            except FloatingPointError:
                seen["raised"] = True

    with cr.detect_anomaly():
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
    assert seen["raised"] is False


# --------------------------------------------------------------------- no_grad / enable_grad
def test_no_grad_context_manager():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    assert cr.is_grad_enabled()
    with cr.no_grad():
        assert not cr.is_grad_enabled()
        y = x * 2 + 1
        assert y.requires_grad is False and y.is_leaf and y.op is None
    assert cr.is_grad_enabled()
    z = x * 2
    assert z.requires_grad and z.op is not None


def test_no_grad_restores_state_after_an_exception():
    with pytest.raises(KeyError):
        with cr.no_grad():
            raise KeyError("x")
    assert cr.is_grad_enabled()


def test_no_grad_as_decorator_with_and_without_parentheses():
    x = cr.tensor([1.0], requires_grad=True)

    @cr.no_grad()
    def evaluate(t):
        """Doc kept."""
        return t * 3, cr.is_grad_enabled()

    @cr.no_grad
    def evaluate_bare(t):
        return t * 3, cr.is_grad_enabled()

    for fn in (evaluate, evaluate_bare):
        out, enabled = fn(x)
        assert enabled is False
        assert out.requires_grad is False
        assert cr.is_grad_enabled()
    assert evaluate.__name__ == "evaluate" and evaluate.__doc__ == "Doc kept."


def test_decorated_recursion_restores_state():
    @cr.no_grad()
    def depth(n):
        assert not cr.is_grad_enabled()
        return 0 if n == 0 else 1 + depth(n - 1)

    assert depth(5) == 5
    assert cr.is_grad_enabled()


def test_enable_grad_inside_no_grad():
    x = cr.tensor([1.0, 2.0], requires_grad=True)

    @cr.enable_grad()
    def record(t):
        return t * t

    with cr.no_grad():
        with cr.enable_grad():
            assert cr.is_grad_enabled()
            y = x * 3
        assert not cr.is_grad_enabled()
        z = record(x)
        assert not cr.is_grad_enabled()
        w = x * 3
    assert y.requires_grad and z.requires_grad and not w.requires_grad
    (y.sum() + z.sum()).backward()
    np.testing.assert_allclose(x.grad, 3 + 2 * x.data)


def test_nested_no_grad():
    with cr.no_grad():
        with cr.no_grad():
            assert not cr.is_grad_enabled()
        assert not cr.is_grad_enabled()
    assert cr.is_grad_enabled()


def test_grad_mode_is_thread_local():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    seen = {}

    def worker():
        seen["enabled"] = cr.is_grad_enabled()
        seen["records"] = (x * 2).requires_grad

    with cr.no_grad():
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        assert not cr.is_grad_enabled()  # the thread did not switch this one back on
    assert seen == {"enabled": True, "records": True}


def test_no_grad_in_a_thread_does_not_leak_to_others():
    inside = threading.Event()
    release = threading.Event()
    seen = {}

    def worker():
        with cr.no_grad():
            inside.set()
            release.wait(timeout=10)
            seen["worker"] = cr.is_grad_enabled()

    thread = threading.Thread(target=worker)
    thread.start()
    assert inside.wait(timeout=10)
    seen["main"] = cr.is_grad_enabled()  # while the worker is inside no_grad
    release.set()
    thread.join()
    assert seen == {"main": True, "worker": False}


def test_anomaly_checks_ops_outside_the_graph_too():
    with cr.detect_anomaly(), np.errstate(invalid="ignore"):
        with pytest.raises(FloatingPointError, match="log"):
            cr.log(cr.tensor([-1.0]))
