"""The C bookkeeping (chainrule/backend/_speedups.c) against its Python twins, bit for bit.

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
from chainrule import backend
from chainrule.autograd import engine
from chainrule.backend import accelerator
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
        assert backend.kernels is None
    else:
        assert base.apply1 is backend.speedups.apply1 and engine._walk is backend.speedups.walk
        assert backend.kernels is backend.speedups  # the import-time check against NumPy passed


class _Altered:
    """The C extension with some kernels replaced."""

    def __init__(self, **replaced):
        self.__dict__.update(replaced)

    def __getattr__(self, name):
        return getattr(backend.speedups, name)


@needs_c
def test_the_kernels_are_checked_against_this_numpy_at_import(monkeypatch):
    real = backend.speedups
    assert accelerator._kernels_agree(real)

    def rounded_up(*args):  # one sum's last bit off
        result = real.small_sum(*args)
        return np.nextafter(result, np.inf).astype(result.dtype)

    assert not accelerator._kernels_agree(_Altered(small_sum=rounded_up))
    assert not accelerator._kernels_agree(_Altered(small_cross_entropy=lambda *a: None))  # a kernel that never runs
    assert not accelerator._kernels_agree(_Altered(small_add_row=lambda out, row: False))
    monkeypatch.setattr(accelerator, "_kernels_agree", lambda k: False)
    with pytest.warns(RuntimeWarning, match="do not reproduce NumPy"):
        assert accelerator._load_kernels() is None  # the rules then run NumPy's code; the engine stays in C


# --------------------------------------------------------------------- apply
def _node_view(t: cr.Tensor) -> tuple:
    node = t._grad_fn
    if node is None:
        return (t.data.dtype, t.data.tolist(), t._requires_grad, None)
    return (
        t.data.dtype,
        t.data.tolist(),
        t._requires_grad,
        type(node),
        tuple(id(i) for i in node.inputs),
        node.needs_input_grad,
        node.retained,
        node.trace,
    )


APPLIES = [
    ("apply1", lambda f, a, b: f(E.TanhOp, a)),
    ("apply2", lambda f, a, b: f(E.MulOp, a, b)),
    ("apply", lambda f, a, b: f(R.SumOp, a, axis=(0,), keepdims=True)),
    ("apply", lambda f, a, b: f(E.SubOp, b, a)),
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
        out = backend.speedups.apply1(E.TanhOp, x)
    assert out._grad_fn.trace is not None and "test_speedups.py" in out._grad_fn.trace


@needs_c
@pytest.mark.parametrize("kind", ["apply1", "apply2", "apply"])
def test_c_apply_raises_what_python_apply_raises(kind):
    def run(fn):
        with pytest.raises(Exception) as info:
            if kind == "apply1":
                fn(E.TanhOp, "not a tensor")
            elif kind == "apply2":
                fn(E.AddOp, cr.tensor(np.ones((2, 3))), cr.tensor(np.ones((4, 5))))
            else:
                fn(R.SumOp, cr.tensor(np.ones(3)), axis=(5,), keepdims=False)
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
    assert y._grad_fn.saved is engine.RELEASED and y._grad_fn.inputs == ()


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
    before = [sys.getrefcount(o) for o in (x, w, x.data, w.data, E.TanhOp, True)]
    for _ in range(50):
        step()
    gc.collect()
    after = [sys.getrefcount(o) for o in (x, w, x.data, w.data, E.TanhOp, True)]
    assert after[:5] == before[:5]
    # True is shared by everything (objects other tests left may be freed meanwhile): no steady growth
    assert after[5] - before[5] < 50


def test_gradient_tensors_hold_no_stray_references(walk):
    """.grad's tensors, made by the walk, by compile's accumulate_leaf and by hand, then let go (and
    reused) by `p.grad = None`, clear_grads and zero_grad: every array and tensor back to its count."""
    x = cr.tensor(np.ones(3), requires_grad=True)
    arrays = [np.full(3, float(i)) for i in range(3)]
    upstream = np.ones(3)

    def step() -> None:
        (x * 2.0).sum().backward()
        x.grad = None
        engine.accumulate_leaf(x, arrays[0], upstream)  # stored as it is (no copy)
        engine.accumulate_leaf(x, arrays[1], upstream)  # added: a new tensor holding the sum
        engine.clear_grads([x])
        x.grad = cr.tensor(arrays[2])
        del x.grad

    step()
    gc.collect()
    before = [sys.getrefcount(o) for o in (x, x.data, upstream, *arrays)]
    for _ in range(50):
        step()
    gc.collect()
    assert [sys.getrefcount(o) for o in (x, x.data, upstream, *arrays)] == before
    assert x.grad is None


def test_graph_is_freed_when_the_result_goes(walk):
    x = cr.tensor(np.ones(3), requires_grad=True)
    y = cr.sigmoid(x * 2.0)
    node = weakref.ref(y._grad_fn)
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
    # above the engine: losses, layers, optimizers and training walk the same graphs
    "tests/test_losses.py",
    "tests/test_nn_layers.py",
    "tests/test_optim.py",
    "tests/test_train.py",
    "tests/test_hardening.py",
    "tests/test_inplace.py",
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


# --------------------------------------------------------------------- small-array kernels
FUSED = {
    E._TANH: lambda u, o: u * (np.asarray(1, o.dtype) - o * o),
    E._SIGMOID: lambda u, o: u * (o * (np.asarray(1, o.dtype) - o)),
    E._RELU: lambda u, o: u * (o > np.asarray(0, o.dtype)),
}
SHAPES = [(), (1,), (4, 1), (4, 4), (3, 5, 7), (1000,), (32, 32), (32, 256), (1024, 256)]
FUSED_MAX, SIGMOID_MAX, ADD_ROW_MAX = 2**18, 1024, 16384  # the size bounds in _speedups.c


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


def _wide(rng, shape, dtype):
    """Finite values over many orders of magnitude (sums of them round differently in every order),
    with a few zeros of both signs."""
    values = (rng.normal(size=shape) * np.exp(rng.normal(scale=4.0, size=shape))).astype(dtype)
    flat = values.reshape(-1)
    flat[rng.random(flat.shape) < 0.05] = -0.0
    flat[rng.random(flat.shape) < 0.05] = 0.0
    return values


def _numpy_raises(compute) -> bool:
    """Whether NumPy's evaluation raises a floating-point exception (overflow, invalid, ...)."""
    try:
        with np.errstate(all="raise"):
            compute()
    except FloatingPointError:
        return True
    return False


def _same_bits(got, want) -> None:
    want = np.asarray(want)
    assert type(got) is np.ndarray and got.dtype == want.dtype and got.shape == want.shape
    # the same bits: equal values, NaN where NaN, and the same sign on every zero
    assert np.array_equal(got, want, equal_nan=True)
    assert np.array_equal(np.signbit(got), np.signbit(want))


@needs_c
@pytest.mark.parametrize("kind", sorted(FUSED))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_fused_gradient_is_the_numpy_expression_bit_for_bit(kind, dtype, shape):
    rng = np.random.default_rng(sum(shape) + kind)
    for case in ("plain", "quiet specials", "all specials"):
        upstream, out = (
            (_awkward(rng, shape, dtype) for _ in range(2))
            if case == "all specials"
            else (rng.normal(size=shape).astype(dtype) for _ in range(2))
        )
        if case == "quiet specials":  # NaN and signed zeros raise no floating-point exception
            for a in (upstream, out):
                a.reshape(-1)[rng.random(a.size) < 0.3] = rng.choice(np.array([np.nan, 0.0, -0.0], dtype))
        if kind == E._SIGMOID:
            out = np.asarray(np.abs(out))  # a sigmoid's output lies in [0, 1]: mostly that range, a few specials
        got = backend.speedups.fused_grad(kind, upstream, out)
        with np.errstate(all="ignore"):
            want = FUSED[kind](upstream, out)
        if case != "all specials":
            assert got is not None, case  # what a network computes is handled
        if _numpy_raises(lambda u=upstream, o=out: FUSED[kind](u, o)):  # inf * 0 and the like: NumPy warns
            assert got is None  # the kernel declines, so the rule's NumPy expression runs and warns
        if got is not None:
            _same_bits(got, want)


@needs_c
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_small_sigmoid_is_the_direct_form_bit_for_bit(dtype, shape):
    rng = np.random.default_rng(sum(shape) + 3)
    x = rng.normal(scale=4.0, size=shape).astype(dtype)
    safe = E._SIGMOID_SAFE[np.dtype(dtype)]
    one = np.asarray(1, dtype)
    if x.size > SIGMOID_MAX:
        assert backend.speedups.small_sigmoid(x, safe) is None  # NumPy's wider loops win there
        return
    _same_bits(backend.speedups.small_sigmoid(x, safe), one / (one + np.exp(-x)))
    if x.size:
        for bad in (safe, np.nan, -1e4, 1e4 if dtype == np.float32 else 1e300):
            y = x.copy()
            y.reshape(-1)[-1] = bad  # at or below the safe bound, NaN: the rule picks its form
            if bad > safe:  # e^-x underflows: NumPy reports it (errstate under="raise"), the kernel declines
                assert _numpy_raises(lambda y=y: one / (one + np.exp(-y)))
            assert backend.speedups.small_sigmoid(y, safe) is None


SUM_SHAPES = (
    [(n,) for n in (*range(1, 70), 100, 127, 128, 129, 255, 256, 257, 511, 512, 513, 1000, 1024)]
    + [(n, m) for n in range(1, 41) for m in (1, 2, 3, 4, 5, 8, 16, 31) if n * m <= 1024]
    + [(512, 2), (2, 512), (1024, 1), (1, 1024), (256, 4), (4, 256), (3, 5, 7), (2, 3, 4, 5)]
    + [(n,) for n in (2000, 8191, 8192, 8193, 65536, FUSED_MAX)]  # NumPy's blocks of 8,192 and beyond
    + [(32, 256), (128, 256), (1024, 256), (4096, 64), (64, 4096), (2, 2**17), (2**17, 2), (FUSED_MAX, 1)]
)


@needs_c
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_small_sum_is_add_reduce_bit_for_bit(dtype):
    rng = np.random.default_rng(5)
    small_sum = backend.speedups.small_sum
    for shape in SUM_SHAPES:
        x = _wide(rng, shape, dtype)
        total = np.add.reduce(x, axis=None)
        _same_bits(small_sum(x, False, 1), total)
        _same_bits(small_sum(x, False, x.size), total / np.asarray(x.size, dtype))
        if x.ndim == 2:
            rows = np.add.reduce(x, axis=0)
            _same_bits(small_sum(x, True, 1), rows)
            _same_bits(small_sum(x, True, len(x)), rows / np.asarray(len(x), dtype))
        else:
            assert small_sum(x, True, 1) is None  # rows of a matrix only
    zeros = np.array([-0.0, -0.0], dtype)  # NumPy starts from add's identity: the sum is +0.0
    _same_bits(small_sum(zeros, False, 1), np.add.reduce(zeros))
    for value in (-0.0, 2.5, np.nan):  # a 0-d array: one element, added to the identity too
        scalar = np.asarray(value, dtype)
        _same_bits(small_sum(scalar, False, 1), np.add.reduce(scalar, axis=None))
    big = np.full(4, np.finfo(dtype).max, dtype)  # overflows: NumPy warns, the kernel declines
    assert _numpy_raises(lambda: np.add.reduce(big)) and small_sum(big, False, 1) is None
    assert small_sum(big.reshape(2, 2), True, 1) is None


@needs_c
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_small_spread_is_the_division_filled_in(dtype):
    spread = backend.speedups.small_spread
    for value, count, shape in ((1.0, 4, (4, 1)), (0.3, 7, (7,)), (-2.5, 12, (3, 4)), (1.0, 1, ()), (5.0, 3, (0, 3))):
        u = np.asarray(value, dtype)
        want = np.empty(shape, dtype)
        np.divide(u, np.asarray(count, dtype), out=want)
        _same_bits(spread(u, count, shape), want)
    tiny = np.asarray(np.finfo(dtype).smallest_subnormal, dtype)  # tiny / 3 underflows: declined
    assert spread(tiny, 3, (2,)) is None


@needs_c
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_small_add_row_adds_in_place_bit_for_bit(dtype):
    rng = np.random.default_rng(9)
    add_row = backend.speedups.small_add_row
    for shape in ((4, 4), (1, 7), (7, 1), (32, 32), (3, 5, 7), (6,), (32, 256), (64, 256)):
        out, row = _wide(rng, shape, dtype), _wide(rng, shape[-1:], dtype)
        want = out + row
        assert add_row(out, row) is True
        _same_bits(out, want)
    big = np.full((2, 2), np.finfo(dtype).max, dtype)
    before = big.copy()
    assert add_row(big, big[0].copy()) is False  # overflows: out untouched, NumPy does it and warns
    _same_bits(big, before)


@needs_c
def test_small_kernels_decline_what_they_do_not_handle():
    k = backend.speedups
    a = np.ones((4, 3), np.float32)
    others = [
        a.T.copy().T,  # Fortran order
        np.ones((3, 4), np.float32).T,  # a transposed view
        a.astype(np.float16),  # NumPy rounds float16 through float32 per operation
        np.ones((4, 3), ">f4"),  # byte-swapped
        np.ma.ones((4, 3), np.float32),  # a subclass
        np.ones((8, 3), np.float32)[::2],  # strided
        np.ones((4, 3), np.int64),  # not a float
        np.ones(FUSED_MAX + 1, np.float32),  # large: left to NumPy
    ]
    for other in others:
        assert k.fused_grad(E._TANH, a if other.shape == a.shape else other, other) is None
        assert k.fused_grad(E._TANH, other, other) is None
        assert k.small_sigmoid(other, -80.0) is None
        assert k.small_sum(other, False, 1) is None
        assert k.small_add_row(other, np.ones(other.shape[-1], np.float32)) is False
    assert k.small_sigmoid(np.ones(SIGMOID_MAX + 1, np.float32), -80.0) is None  # each kernel's own bound
    assert k.small_sigmoid(np.ones(SIGMOID_MAX, np.float32), -80.0) is not None
    assert k.small_add_row(np.ones((ADD_ROW_MAX // 16 + 1, 16), np.float32), np.ones(16, np.float32)) is False
    assert k.small_add_row(np.ones((ADD_ROW_MAX // 16, 16), np.float32), np.ones(16, np.float32)) is True
    for upstream, out in [(a, np.ones((4, 1), np.float32)), (a, np.ones((4, 3), np.float64))]:
        assert k.fused_grad(E._TANH, upstream, out) is None  # another shape or dtype
    assert k.small_sigmoid(np.ones(0, np.float32), -80.0) is None  # nothing to compute
    assert k.small_sum(np.ones((0, 3), np.float32), True, 1) is None
    assert k.small_sum(a, False, 0) is None
    assert k.small_spread(np.ones(1, np.float32), 1, (2,)) is None  # the value must be 0-d
    assert k.small_spread(np.asarray(1.0, np.float32), 1, (FUSED_MAX + 1,)) is None
    assert k.small_spread(np.asarray(1.0, np.float32), 1, (2, FUSED_MAX // 2 + 1)) is None
    assert k.small_spread(np.asarray(1.0, np.float16), 1, (2,)) is None
    assert k.small_spread(np.asarray(1.0, np.float32), 1, (np.int64(2),)) is None  # a shape of Python ints
    assert k.small_spread(np.asarray(1.0, np.float32), 1, (2**70,)) is None
    assert k.small_add_row(a, np.ones(4, np.float32)) is False  # the row must fit the last axis
    assert k.small_add_row(a, np.ones(3, np.float64)) is False  # one dtype
    assert k.small_add_row(a[:2], np.ones(3, np.float32)) is False  # a view: NumPy decides
    frozen = np.ones((4, 3), np.float32)
    frozen.flags.writeable = False
    assert k.small_add_row(frozen, np.ones(3, np.float32)) is False
    with pytest.raises(ValueError, match="unknown kind"):
        k.fused_grad(7, a, a)
    with pytest.raises(TypeError, match="takes 2 arguments"):
        k.small_sigmoid(a)


def _linear_node(rng, dtype):
    from chainrule.ops.linalg import LinearOp

    node = object.__new__(LinearOp)
    node.needs_input_grad = (True, True, True)
    x, w, b = (rng.normal(size=s).astype(dtype) for s in ((5, 6), (3, 6), (3,)))
    return node, (x, w, b), rng.normal(size=(5, 3)).astype(dtype)


RULES = {  # rule -> (module, kernel attribute names, make(rng, dtype) -> (node, forward args, upstream))
    "tanh": (E, ("_fused",), E.TanhOp),
    "sigmoid": (E, ("_fused", "_small_sigmoid"), E.SigmoidOp),
    "relu": (E, ("_fused",), E.ReluOp),
    "sum": (R, ("_small_sum",), R.SumOp),
    "mean": (R, ("_small_sum", "_small_spread"), R.MeanOp),
    "linear": (None, ("_small_add_row", "_small_sum"), None),
}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_rules_give_the_same_results_with_and_without_the_kernels(rule, monkeypatch):
    from chainrule.ops import linalg

    module, names, op = RULES[rule]
    module = module or linalg
    for dtype in (np.float32, np.float64, np.float16):
        used = []
        for axis in (None, (0,)) if rule in ("sum", "mean") else (None,):
            runs = []
            for with_kernels in (True, False):
                if with_kernels:
                    for name in names:
                        real = getattr(module, name)
                        if real is not None:
                            spy = lambda *a, real=real, name=name, used=used: used.append(name) or real(*a)  # noqa: E731
                            monkeypatch.setattr(module, name, spy)
                else:
                    for name in names:
                        monkeypatch.setattr(module, name, None)
                if rule == "linear":
                    node, args, upstream = _linear_node(np.random.default_rng(3), dtype)
                else:
                    node = object.__new__(op)
                    x = np.random.default_rng(3).normal(size=(5, 6)).astype(dtype)
                    args = (x, axis, False) if rule in ("sum", "mean") else (x,)
                value = node.forward(*args)
                if rule in ("sum", "mean"):
                    upstream = np.asarray(np.random.default_rng(4).normal(size=np.shape(value))).astype(dtype)
                elif rule != "linear":
                    upstream = np.random.default_rng(4).normal(size=(5, 6)).astype(dtype)
                runs.append((np.asarray(value), *node.backward(upstream)))
                monkeypatch.undo()
            for got, want in zip(*runs):
                assert got.dtype == want.dtype and np.array_equal(got, want), (rule, dtype, axis)
        if backend.kernels is not None and dtype != np.float16:
            assert set(used) == set(names), (rule, dtype, used)  # the rule asks its kernels
        else:
            assert not used or dtype == np.float16


def test_numpy_warnings_survive_the_kernels():
    """A kernel whose arithmetic overflows declines: NumPy redoes it and warns (both engines)."""
    big = np.full((2, 2), np.finfo(np.float32).max, np.float32)
    with pytest.warns(RuntimeWarning, match="overflow"):
        cr.tensor(big).sum()
    with pytest.warns(RuntimeWarning, match="overflow"):
        cr.tensor(big).mean()
    with pytest.warns(RuntimeWarning, match="overflow"):  # x W^T is finite, the bias overflows it
        cr.linear(cr.tensor(np.ones((2, 1), np.float32)), cr.tensor(big[:, :1]), cr.tensor(big[0]))
    x = cr.tensor(np.zeros(3, np.float32), requires_grad=True)
    y = x.tanh()
    with pytest.warns(RuntimeWarning, match="invalid"):  # inf * 0 in the local gradient
        y.backward(cr.tensor(np.array([np.inf, 1, 1], np.float32)) * cr.tensor(np.array([0, 1, 1], np.float32)))


CE_SHAPES = [(1, 1), (1, 10), (4, 3), (32, 10), (128, 10), (1024, 10), (6553, 10), (7, 100), (3, 1000), (64, 2)]


def _cross_entropy(logits, targets, reduction, upstream, kernels, monkeypatch):
    """The cross-entropy rule's forward and backward, with or without the C kernels."""
    from chainrule.ops import loss

    if not kernels:
        monkeypatch.setattr(loss, "_small_ce", None)
        monkeypatch.setattr(loss, "_small_ce_grad", None)
    node = object.__new__(loss.CrossEntropyOp)
    value = np.asarray(node.forward(logits, targets, reduction))
    log_probs = node.saved[0]
    grad = node.backward(upstream)[0]
    monkeypatch.undo()
    return value, log_probs, grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_is_the_same_with_and_without_the_kernels(dtype, reduction, monkeypatch):
    rng = np.random.default_rng(13)
    for (n, c), target_dtype in zip(CE_SHAPES, [np.int64, np.int32, np.uint8, np.int16] * 3):
        logits = (rng.normal(size=(n, c)) * np.exp(rng.normal(size=(n, 1)))).astype(dtype)
        targets = rng.integers(0, c, size=n).astype(target_dtype)
        upstream = rng.normal(size=n if reduction == "none" else ()).astype(dtype)
        upstream = np.asarray(upstream)
        used = []
        if backend.kernels is not None:
            from chainrule.ops import loss

            for name in ("_small_ce", "_small_ce_grad"):
                real = getattr(loss, name)
                spy = lambda *a, real=real, name=name, used=used: (used.append(name), real(*a))[1]  # noqa: E731
                monkeypatch.setattr(loss, name, spy)
        fast = _cross_entropy(logits, targets, reduction, upstream, True, monkeypatch)
        plain = _cross_entropy(logits, targets, reduction, upstream, False, monkeypatch)
        for got, want in zip(fast, plain):
            _same_bits(got, want)
        assert used == (["_small_ce", "_small_ce_grad"] if backend.kernels is not None else []), (n, c)


@needs_c
def test_cross_entropy_kernels_decline_what_they_do_not_handle():
    ce, grad = backend.speedups.small_cross_entropy, backend.speedups.small_cross_entropy_grad
    z = np.zeros((4, 3), np.float32)
    y = np.array([0, 1, 2, 1])
    assert ce(z, y, 1) is not None and grad(z, y, np.asarray(1, np.float32), 4) is not None
    for logits in (
        np.array([[0, np.inf, 1]] * 4, np.float32),  # a non-finite logit: the rule's NumPy code handles it
        np.array([[0, np.nan, 1]] * 4, np.float32),
        z.astype(np.float16),
        np.asfortranarray(np.zeros((4, 3), np.float32) + np.arange(3)),
        np.zeros((4, 6), np.float32)[:, ::2],
        np.zeros((4, 3, 1), np.float32),
        np.zeros((0, 3), np.float32),
        np.zeros((65537, 1), np.float32),  # above CE_MAX_SIZE
    ):
        assert ce(logits, y[: len(logits)] if len(logits) == 4 else np.zeros(len(logits), np.int64), 1) is None
    for targets in (
        np.array([0, 1, 3, 1]),  # out of range: the functional raises a clear error before
        np.array([0, -1, 2, 1]),
        np.array([0.0, 1.0, 2.0, 1.0]),
        np.array([[0, 1, 2, 1]]),
        np.array([0, 1, 2]),
        np.array([0, 1, 2, 1], ">i8"),
        [0, 1, 2, 1],
    ):
        assert ce(z, targets, 1) is None
        assert grad(z, targets, np.asarray(1, np.float32), 4) is None
    for upstream in (np.asarray(1.0), np.ones(3, np.float32), np.ones((4, 1), np.float32), 1.0):
        assert grad(z, y, upstream, 4) is None
    big = np.array([[3e38, -3e38, 0]] * 4, np.float32)  # z - max overflows: NumPy warns, the kernel declines
    assert _numpy_raises(lambda: big - big.max(axis=1, keepdims=True)) and ce(big, y, 1) is None
    with pytest.raises(ValueError, match="unknown reduction"):
        ce(z, y, 3)


@needs_c
def test_kernels_leak_no_references():
    """Every kernel, on a path it takes and a path it declines, leaves its arguments' reference
    counts as they were and holds no memory afterwards."""
    import tracemalloc

    k = backend.speedups
    x = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    row, zero_d = np.ones(4, np.float32), np.asarray(np.float32(2.0))
    targets, bad_targets = np.array([0, 1, 2, 3, 0, 1, 2, 3]), np.array([0, 1, 2, 9, 0, 1, 2, 3])
    big = np.full((2, 2), np.finfo(np.float32).max, np.float32)
    log_probs = k.small_cross_entropy(x, targets, 1)[1]
    calls = [
        lambda: k.fused_grad(E._TANH, x, x),
        lambda: k.fused_grad(E._TANH, x, x.astype(np.float64)),
        lambda: k.small_sigmoid(x, -80.0),
        lambda: k.small_sigmoid(x, 80.0),
        lambda: k.small_sum(x, True, 8),
        lambda: k.small_sum(big, False, 1),
        lambda: k.small_spread(zero_d, 3, (8, 4)),
        lambda: k.small_add_row(x.copy(), row),
        lambda: k.small_add_row(big.copy(), big[0].copy()),
        lambda: k.small_cross_entropy(x, targets, 0),
        lambda: k.small_cross_entropy(x, bad_targets, 1),
        lambda: k.small_cross_entropy_grad(log_probs, targets, zero_d, 8),
        lambda: k.small_cross_entropy_grad(log_probs, bad_targets, zero_d, 8),
    ]
    watched = (x, row, zero_d, targets, bad_targets, big, log_probs)
    for call in calls:
        call()
    gc.collect()
    before = [sys.getrefcount(o) for o in watched]
    tracemalloc.start()
    for _ in range(200):
        for call in calls:
            call()
    gc.collect()
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert [sys.getrefcount(o) for o in watched] == before
    assert held < 10_000  # nothing kept from 2,600 calls (each result is dropped)
