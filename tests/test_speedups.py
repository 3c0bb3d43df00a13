"""The C bookkeeping (chainrule/_speedups.c) against its Python twins, bit for bit.

``apply``, ``apply1``, ``apply2`` and the backward walk exist twice: in C (used when the
extension is built) and in Python (ops/base.py, engine.py). These tests run both on the
same graphs in one process and demand identical results, check that the C code leaks no
references, and run the engine's core test files again with the Python engine alone.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import weakref
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule import backend, engine
from chainrule.ops import base
from chainrule.ops import elementwise as E
from chainrule.ops import reduce as R

PURE = os.environ.get("CHAINRULE_PURE_PYTHON", "") not in ("", "0")
needs_c = pytest.mark.skipif(backend.speedups is None, reason="the C extension is not in use")
ROOT = Path(__file__).resolve().parents[1]


def test_the_engine_in_use_is_the_one_asked_for():
    # A build that silently failed to compile the extension would lose the speed without a sound.
    assert backend.accelerated() is (not PURE)
    if PURE:
        assert base.apply1 is base.apply1_python and engine._walk is None
    else:
        assert base.apply1 is backend.speedups.apply1 and engine._walk is backend.speedups.walk


# --------------------------------------------------------------------- apply
def _node_view(t: cr.Tensor) -> tuple:
    node = t._node
    if node is None:
        return (t.data.dtype, t.data.tolist(), t._rg, None)
    return (
        t.data.dtype,
        t.data.tolist(),
        t._rg,
        type(node),
        tuple(id(i) for i in node.inputs),
        node.needs_input_grad,
        node.retained,
        node.trace,
    )


APPLIES = [
    ("apply1", lambda f, a, b: f(E.Tanh, a)),
    ("apply2", lambda f, a, b: f(E.Mul, a, b)),
    ("apply", lambda f, a, b: f(R.Sum, a, axis=(0,), keepdims=True)),
    ("apply", lambda f, a, b: f(E.Sub, b, a)),
]


@needs_c
@pytest.mark.parametrize(("kind", "call"), APPLIES)
@pytest.mark.parametrize("grad_a", [True, False])
@pytest.mark.parametrize("enabled", [True, False])
def test_c_apply_builds_what_python_apply_builds(kind, call, grad_a, enabled):
    a = cr.tensor(np.array([[0.5, -1.0], [2.0, 3.0]]), requires_grad=grad_a)
    b = cr.tensor(np.array([1.5, -2.0]))
    c_fn, py_fn = getattr(backend.speedups, kind), getattr(base, kind + "_python")
    with cr.enable_grad() if enabled else cr.no_grad():
        assert _node_view(call(c_fn, a, b)) == _node_view(call(py_fn, a, b))


@needs_c
def test_c_apply_hands_watched_calls_to_python():
    x = cr.tensor([0.5, 1.0], requires_grad=True)
    with cr.detect_anomaly():
        out = backend.speedups.apply1(E.Tanh, x)
    assert out._node.trace is not None and "test_speedups.py" in out._node.trace


@needs_c
@pytest.mark.parametrize("kind", ["apply1", "apply2", "apply"])
def test_c_apply_raises_what_python_apply_raises(kind):
    def run(fn):
        with pytest.raises(Exception) as info:
            if kind == "apply1":
                fn(E.Tanh, "not a tensor")
            elif kind == "apply2":
                fn(E.Add, cr.tensor(np.ones((2, 3))), cr.tensor(np.ones((4, 5))))
            else:
                fn(R.Sum, cr.tensor(np.ones(3)), axis=(5,), keepdims=False)
        return info.value

    c_err, py_err = run(getattr(backend.speedups, kind)), run(getattr(base, kind + "_python"))
    assert type(c_err) is type(py_err) and str(c_err) == str(py_err)
    if kind == "apply2":  # the shape error names the op and both shapes, and chains the original
        assert "add: cannot apply to inputs of shapes (2, 3) and (4, 5)" in str(c_err)
        assert isinstance(c_err.__cause__, ValueError)


# --------------------------------------------------------------------- walk
@pytest.fixture(params=["c", "python"])
def walk(request, monkeypatch):
    """Run backward() through the C walk or the Python one."""
    if request.param == "c":
        if engine._walk is None:
            pytest.skip("the C extension is not in use")
    else:
        monkeypatch.setattr(engine, "_walk", None)
    return request.param


def _rich_graph() -> dict[str, np.ndarray]:
    """Branches, broadcasting, a retained non-leaf, a leaf used twice, a float32 leaf in a float64 graph."""
    rng = np.random.default_rng(0)
    x = cr.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    w = cr.tensor(rng.standard_normal((4,)), requires_grad=True)
    s = cr.tensor(np.float32(0.7), requires_grad=True)
    c = cr.tensor(rng.standard_normal((3, 1)))  # needs no gradient
    h = cr.tanh(x * w + c)
    h.retain_grad()
    y = (h * h + cr.sigmoid(h) * s.astype("float64") - x).mean(axis=1)
    z = (y * y).sum() + (w * w).sum()
    z.backward()
    return {"x": x.grad, "w": w.grad, "s": s.grad, "h": h.grad, "z": z.data}


def test_walks_agree_bit_for_bit(monkeypatch):
    if engine._walk is None:
        pytest.skip("the C extension is not in use")
    by_c = _rich_graph()
    monkeypatch.setattr(engine, "_walk", None)
    by_python = _rich_graph()
    for key in by_python:
        assert by_c[key].dtype == by_python[key].dtype, key
        np.testing.assert_array_equal(by_c[key], by_python[key], err_msg=key)


def test_walk_accumulates_retains_and_releases(walk):
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = (x * 3.0).sum()
    y.backward(retain_graph=True)
    y.backward()  # the second call accumulates
    np.testing.assert_array_equal(x.grad, [6.0, 6.0])
    with pytest.raises(RuntimeError, match="a second time"):
        y.backward()
    assert y._node.saved is engine.RELEASED and y._node.inputs == ()


def test_walk_never_stores_an_array_another_node_holds(walk):
    # add hands its upstream to both inputs: the leaves must get copies, not the same array.
    a, b = cr.tensor([1.0], requires_grad=True), cr.tensor([2.0], requires_grad=True)
    (a + b).backward(np.array([1.0]))
    assert a.grad is not b.grad
    a.grad += 1
    assert b.grad[0] == 1.0


def test_walk_reports_a_bad_rule(walk):
    class Broken(cr.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad[:1]  # the wrong shape

    x = cr.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(Exception, match="shape"):
        Broken.apply(x).sum().backward()


# --------------------------------------------------------------------- references
def test_c_engine_leaks_no_references(walk):
    x = cr.tensor(np.ones((2, 3)), requires_grad=True)
    w = cr.tensor(np.ones((3, 3)), requires_grad=True)

    def step() -> None:
        # every entry point: apply2 (@, *, -, +), apply1 (tanh, relu), apply (linear, sum with attributes)
        loss = (cr.relu(cr.tanh(x @ w) * 2.0 - 1.0) + cr.linear(x, w)).sum(axis=0).mean()
        loss.backward()
        x.grad = w.grad = None

    step()
    gc.collect()
    before = [sys.getrefcount(o) for o in (x, w, x.data, w.data, E.Tanh, True)]
    for _ in range(50):
        step()
    gc.collect()
    after = [sys.getrefcount(o) for o in (x, w, x.data, w.data, E.Tanh, True)]
    assert after[:5] == before[:5]
    assert abs(after[5] - before[5]) < 50  # True is shared by everything; no steady growth


def test_graph_is_freed_when_the_result_goes(walk):
    x = cr.tensor(np.ones(3), requires_grad=True)
    y = cr.sigmoid(x * 2.0)
    node = weakref.ref(y._node)
    y.sum().backward()
    del y
    gc.collect()
    assert node() is None


# --------------------------------------------------------------------- threads
def test_grad_mode_is_per_thread_in_the_c_apply():
    x = cr.tensor([1.0], requires_grad=True)
    inside, go = threading.Event(), threading.Event()
    seen = {}

    def worker() -> None:
        with cr.no_grad():
            inside.set()
            go.wait(5)
            seen["worker"] = (x * 2.0).requires_grad

    thread = threading.Thread(target=worker)
    thread.start()
    inside.wait(5)
    seen["main"] = (x * 2.0).requires_grad  # the worker's no_grad must not leak here
    go.set()
    thread.join()
    assert seen == {"main": True, "worker": False}


# --------------------------------------------------------------------- the Python engine alone
CORE_TESTS = [
    "tests/test_engine.py",
    "tests/test_ops.py",
    "tests/test_tensor.py",
    "tests/test_function.py",
    "tests/test_anomaly.py",
    "tests/test_compile.py",
    "tests/test_nn_backprop.py",
    "tests/test_speedups.py",
]


@pytest.mark.slow
@pytest.mark.skipif(PURE, reason="already running the Python engine")
def test_core_tests_pass_with_the_python_engine_alone():
    env = dict(os.environ, CHAINRULE_PURE_PYTHON="1")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *CORE_TESTS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "failed" not in run.stdout


# --------------------------------------------------------------------- fused local gradients
FUSED = {
    E._TANH: lambda u, o: u * (np.asarray(1, o.dtype) - o * o),
    E._SIGMOID: lambda u, o: u * (o * (np.asarray(1, o.dtype) - o)),
    E._RELU: lambda u, o: u * (o > np.asarray(0, o.dtype)),
}


def _awkward(rng, shape, dtype):
    """Random values with every special case mixed in: zeros of both signs, infinities, NaN, subnormals."""
    values = rng.normal(scale=3.0, size=shape).astype(dtype)
    flat = values.reshape(-1)
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0], dtype=dtype)
    tiny = np.finfo(dtype).smallest_subnormal
    specials = np.concatenate([specials, np.array([tiny, -tiny, 3 * tiny], dtype=dtype)])
    k = min(len(flat), len(specials))
    flat[rng.choice(len(flat), size=k, replace=False)] = specials[:k]
    return values


@needs_c
@pytest.mark.parametrize("kind", sorted(FUSED))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(), (1,), (4, 1), (4, 4), (3, 5, 7), (1000,), (32, 32)])
def test_fused_gradient_is_the_numpy_expression_bit_for_bit(kind, dtype, shape):
    rng = np.random.default_rng(sum(shape) + kind)
    upstream, out = _awkward(rng, shape, dtype), _awkward(rng, shape, dtype)
    if kind == E._SIGMOID:
        out = np.asarray(np.abs(out))  # a sigmoid's output lies in [0, 1]: mostly that range, a few specials
    got = backend.speedups.fused_grad(kind, upstream, out)
    with np.errstate(all="ignore"):  # inf * 0 and the like: NumPy warns, the loop is silent, the bits agree
        want = FUSED[kind](upstream, out)
    assert type(got) is np.ndarray and got.dtype == want.dtype and got.shape == want.shape
    # the same bits: equal values, NaN where NaN, and the same sign on every zero
    assert np.array_equal(got, want, equal_nan=True)
    assert np.array_equal(np.signbit(got), np.signbit(want))


@needs_c
def test_fused_gradient_declines_what_it_does_not_handle():
    fused = backend.speedups.fused_grad
    a = np.ones((4, 3), np.float32)
    declined = [
        (a, a.T.copy().T),  # a Fortran-ordered output
        (a, np.ones((3, 4), np.float32).T),  # a transposed view
        (a, np.ones((4, 1), np.float32)),  # a broadcast shape
        (a, np.ones((4, 3), np.float64)),  # mixed dtypes
        (a.astype(np.float16), a.astype(np.float16)),  # NumPy rounds float16 through float32 per operation
        (a, np.ones((4, 3), ">f4")),  # byte-swapped
        (np.ma.ones((4, 3), np.float32), a),  # a subclass
        (a, np.ones((8, 3), np.float32)[::2]),  # strided
        (np.ones(1025, np.float32), np.ones(1025, np.float32)),  # large: NumPy's vectorized loops are faster
    ]
    for upstream, out in declined:
        assert fused(E._TANH, upstream, out) is None
    with pytest.raises(ValueError, match="unknown kind"):
        fused(7, a, a)


def test_rules_give_the_same_gradients_with_and_without_the_fused_loops(monkeypatch):
    rng = np.random.default_rng(11)
    for op, kind in ((E.Tanh, E._TANH), (E.Sigmoid, E._SIGMOID), (E.Relu, E._RELU)):
        for dtype in (np.float32, np.float64, np.float16):
            x = rng.normal(size=(5, 6)).astype(dtype)
            upstream = rng.normal(size=(5, 6)).astype(dtype)
            node = object.__new__(op)
            node.forward(x)
            used = []
            if E._fused is not None:
                real = E._fused
                monkeypatch.setattr(E, "_fused", lambda *a, used=used, real=real: used.append(a[0]) or real(*a))
            fused = node.backward(upstream)[0]
            monkeypatch.setattr(E, "_fused", None)
            plain = node.backward(upstream)[0]
            monkeypatch.undo()
            assert fused.dtype == plain.dtype and np.array_equal(fused, plain), (op.name, dtype)
            assert used == ([kind] if backend.speedups is not None else []), op.name  # the rule asks its own loop
