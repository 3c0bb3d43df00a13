"""The Tensor API: construction and dtypes, attributes, conversions, repr, comparisons,
indexing, factories, axis aliases and axis movement."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr

F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)


# --------------------------------------------------------------------- construction and dtype rules
@pytest.mark.parametrize(
    "data",
    [2.5, 3, [1, 2, 3], [1.5, 2.5], [[1, 2], [3, 4]], (1.0, 2.0), [[0.5], [1]]],
)
def test_python_numbers_and_lists_become_float32(data):
    t = cr.tensor(data)
    assert t.dtype == F32
    np.testing.assert_array_equal(t.data, np.asarray(data, dtype=np.float32))


def test_bool_lists_stay_bool():
    t = cr.tensor([True, False, True])
    assert t.dtype == np.bool_
    assert t.tolist() == [True, False, True]


def test_ndarrays_keep_their_dtype():
    assert cr.tensor(np.array([1.0, 2.0])).dtype == F64
    assert cr.tensor(np.float64(1.5)).dtype == F64
    assert cr.tensor(np.array([1, 2], dtype=np.int64)).dtype == np.int64
    assert cr.tensor(np.array([1, 2], dtype=np.int32)).dtype == np.int32
    assert cr.tensor(np.array([1.0], dtype=np.float32)).dtype == F32


def test_dtype_argument_overrides():
    assert cr.tensor([1, 2], dtype=np.float64).dtype == F64
    assert cr.tensor(np.ones(2), dtype="float32").dtype == F32
    t = cr.tensor([1.7, 2.2], dtype="int64")
    assert t.dtype == np.int64
    assert t.tolist() == [1, 2]


def test_data_is_copied():
    source = np.array([1.0, 2.0, 3.0])
    t = cr.tensor(source)
    source[0] = 100.0
    assert t.data[0] == 1.0
    assert not np.shares_memory(t.data, source)
    t2 = cr.tensor(source, dtype=np.float64)
    source[1] = -5.0
    assert t2.data[1] == 2.0
    # a tensor built from a tensor copies too
    t3 = cr.tensor(t)
    t3.data[2] = 42.0
    assert t.data[2] == 3.0


def test_unconvertible_data_raises_type_error():
    with pytest.raises(TypeError, match="cannot make a tensor"):
        cr.tensor("abc")
    with pytest.raises(TypeError):
        cr.tensor({"a": 1})
    with pytest.raises(TypeError, match="dtype <U1"):
        cr.tensor(np.array(["a", "b"]))
    with pytest.raises(TypeError, match="dtype object"):
        cr.tensor(np.array([1.0, None]))


@pytest.mark.parametrize(
    "expr",
    [
        lambda x: x * 2.5,
        lambda x: 2.5 * x,
        lambda x: 2.5 - x,
        lambda x: x - 1,
        lambda x: x + 0.1,
        lambda x: x**2,
        lambda x: x**0.5,
        lambda x: x / 3,
        lambda x: 3 / x,
        lambda x: 2.0**x,
    ],
    ids=["mul", "rmul", "rsub", "sub", "add", "pow2", "pow_half", "div", "rdiv", "rpow"],
)
def test_python_scalars_never_upcast_float32(expr):
    x = cr.tensor([1.0, 2.0, 4.0], requires_grad=True)
    h = x * 1.0  # an intermediate: its retained gradient shows what the backward computed in
    h.retain_grad()
    y = expr(h)
    assert y.dtype == F32
    y.retain_grad()
    (y * 1.5).sum().backward()
    assert y.grad.dtype == F32
    assert h.grad.dtype == F32  # no float64 crept into the backward of the op
    assert x.grad.dtype == F32


def test_python_scalars_keep_float64_tensors_float64():
    x = cr.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = 2.5 - x * 3 / 4.0
    assert y.dtype == F64
    y.sum().backward()
    assert x.grad.dtype == F64


# --------------------------------------------------------------------- attributes
def test_attributes():
    t = cr.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, name="w")
    assert t.shape == (2, 3)
    assert t.ndim == 2
    assert t.size == 6
    assert t.dtype == F64
    assert t.requires_grad is True
    assert t.is_leaf is True
    assert t.grad is None
    assert t.name == "w"
    assert isinstance(t.data, np.ndarray)
    y = t * 2
    assert y.is_leaf is False
    assert y.requires_grad is True
    assert y.name is None
    assert y.grad_fn is y.op
    assert y.op.name == "mul"
    c = cr.tensor([1.0])
    assert c.requires_grad is False and c.is_leaf is True


def test_numpy_shares_data():
    t = cr.tensor([1.0, 2.0])
    a = t.numpy()
    assert isinstance(a, np.ndarray)
    a[0] = 9.0
    assert t.data[0] == 9.0
    np.testing.assert_array_equal(np.asarray(t), [9.0, 2.0])
    assert np.shares_memory(np.asarray(t), t.data)  # asarray: no copy, like .numpy()


def test_np_array_of_a_tensor_is_a_copy():
    t = cr.tensor([1.0, 2.0], requires_grad=True)
    a = np.array(t)
    assert a.dtype == F32
    a[0] = 100.0  # must not write into the tensor (or into what its graph saved)
    assert t.data.tolist() == [1.0, 2.0]
    b = np.array(t, dtype=np.float64)
    assert b.dtype == F64 and b.tolist() == [1.0, 2.0]
    with pytest.raises(ValueError):
        np.asarray(t, dtype=np.float64, copy=False)


def test_item():
    assert cr.tensor(3.5).item() == 3.5
    assert isinstance(cr.tensor(3.5).item(), float)
    assert cr.tensor([[2.0]]).item() == 2.0
    assert cr.tensor(np.array([4])).item() == 4
    with pytest.raises(ValueError, match=r"one-element.*\(2,\)"):
        cr.tensor([1.0, 2.0]).item()


def test_detach_cuts_graph_and_shares_data():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    d = y.detach()
    assert d.requires_grad is False
    assert d.is_leaf
    assert np.shares_memory(d.data, y.data)
    # a detached branch contributes no gradient
    (d * x).sum().backward()
    np.testing.assert_allclose(x.grad, [3.0, 6.0])


def test_retain_grad_keeps_non_leaf_grad():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    kept = h.retain_grad()
    assert kept is h
    assert h.retains_grad
    other = x * 2
    (h * h + other).sum().backward()
    np.testing.assert_allclose(h.grad, 2 * h.data)  # d(sum h^2 + ...)/dh = 2h
    assert other.grad is None  # a non-leaf without retain_grad keeps nothing
    np.testing.assert_allclose(x.grad, 18 * x.data + 2)


def test_retain_grad_on_leaf_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        cr.tensor([1.0]).retain_grad()


def test_tolist_and_python_conversions():
    t = cr.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert t.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert cr.tensor(2.0).tolist() == 2.0
    assert float(cr.tensor([2.5])) == 2.5
    assert int(cr.tensor(3.7)) == 3
    assert bool(cr.tensor(1.0)) is True
    assert bool(cr.tensor(0.0)) is False
    with pytest.raises(ValueError, match="ambiguous"):
        bool(t)
    with pytest.raises(ValueError):
        float(t)


def test_len_and_iteration():
    x = cr.tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    assert len(x) == 3
    rows = list(x)
    assert len(rows) == 3
    for i, row in enumerate(rows):
        assert isinstance(row, cr.Tensor)
        np.testing.assert_array_equal(row.data, x.data[i])
    # iterating is differentiable: each row is an indexing op
    total = rows[0] * 1 + rows[2] * 5
    total.sum().backward()
    np.testing.assert_allclose(x.grad, [[1, 1], [0, 0], [5, 5]])
    with pytest.raises(TypeError, match="0-d"):
        len(cr.tensor(1.0))


# --------------------------------------------------------------------- repr
def test_repr_shows_values_dtype_op_and_name():
    x = cr.tensor([1.5, -2.0], requires_grad=True, name="weight")
    r = repr(x)
    assert r.startswith("tensor(")
    assert "1.5" in r and "-2." in r
    assert "dtype=float32" in r
    assert "requires_grad=True" in r
    assert "name='weight'" in r
    y = x * 2
    ry = repr(y)
    assert "op=mul" in ry
    assert "3." in ry and "-4." in ry
    assert "requires_grad=True" not in ry  # the op says it already
    plain = repr(cr.tensor(np.array([1, 2])))
    assert "dtype=int64" in plain
    assert "op=" not in plain and "requires_grad" not in plain and "name=" not in plain
    assert "op=exp" in repr(cr.exp(x))
    assert "op=sum" in repr(x.sum())


# --------------------------------------------------------------------- comparisons
COMPARISONS = [
    ("lt", lambda a, b: a < b, np.less),
    ("le", lambda a, b: a <= b, np.less_equal),
    ("gt", lambda a, b: a > b, np.greater),
    ("ge", lambda a, b: a >= b, np.greater_equal),
    ("eq", lambda a, b: a == b, np.equal),
    ("ne", lambda a, b: a != b, np.not_equal),
]


@pytest.mark.parametrize("name,cmp,ref", COMPARISONS, ids=[c[0] for c in COMPARISONS])
@pytest.mark.parametrize("other_kind", ["tensor", "scalar", "array", "tensor_requires_grad"])
def test_comparisons_return_bool_tensors_outside_the_graph(name, cmp, ref, other_kind):
    x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    values = np.array([2.0, 2.0, 2.0], dtype=np.float32)
    other = {
        "tensor": cr.tensor(values),
        "tensor_requires_grad": cr.tensor(values, requires_grad=True),
        "scalar": 2.0,
        "array": values,
    }[other_kind]
    out = cmp(x, other)
    assert isinstance(out, cr.Tensor)
    assert out.dtype == np.bool_
    assert out.requires_grad is False
    assert out.is_leaf and out.op is None
    np.testing.assert_array_equal(out.data, ref(x.data, values))


@pytest.mark.parametrize("name,cmp,ref", COMPARISONS, ids=[c[0] for c in COMPARISONS])
def test_reflected_comparisons(name, cmp, ref):
    x = cr.tensor([1.0, 2.0, 3.0])
    a = np.array([3.0, 2.0, 1.0])
    for left, right in [(2.0, x), (a, x)]:
        out = cmp(left, right)
        assert isinstance(out, cr.Tensor)
        assert out.dtype == np.bool_
        np.testing.assert_array_equal(out.data, ref(np.asarray(left), x.data))


def test_comparison_is_usable_as_a_mask_without_gradient():
    x = cr.tensor([-1.0, 2.0, -3.0, 4.0], requires_grad=True)
    y = cr.where(x > 0, x, 0.0)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [0, 1, 0, 1])


# --------------------------------------------------------------------- indexing
def test_indexing_slices_and_ints():
    data = np.arange(12.0).reshape(3, 4)
    x = cr.tensor(data, requires_grad=True)
    y = x[1:, ::2]
    np.testing.assert_array_equal(y.data, data[1:, ::2])
    y.sum().backward()
    expected = np.zeros_like(data)
    expected[1:, ::2] = 1
    np.testing.assert_array_equal(x.grad, expected)

    x.grad = None
    z = x[2, 1]
    assert z.shape == ()
    assert z.item() == data[2, 1]
    (z * 7).backward()
    expected = np.zeros_like(data)
    expected[2, 1] = 7
    np.testing.assert_array_equal(x.grad, expected)

    x.grad = None
    x[-1].sum().backward()
    np.testing.assert_array_equal(x.grad, [[0] * 4, [0] * 4, [1] * 4])


@pytest.mark.parametrize("as_type", ["array", "list", "tensor"])
def test_integer_array_indexing_accumulates_repeated_indices(as_type):
    x = cr.tensor([10.0, 20.0, 30.0, 40.0], requires_grad=True)
    idx = [0, 2, 2, 2, 0, 3]
    index = {"array": np.array(idx), "list": idx, "tensor": cr.tensor(np.array(idx))}[as_type]
    y = x[index]
    np.testing.assert_array_equal(y.data, [10, 30, 30, 30, 10, 40])
    weights = np.arange(1.0, 7.0, dtype=np.float32)
    (y * weights).sum().backward()
    # element 0 is picked with weights 1 and 5, element 2 with 2+3+4, element 3 with 6
    np.testing.assert_array_equal(x.grad, [6.0, 0.0, 9.0, 6.0])


def test_boolean_mask_indexing():
    data = np.array([[1.0, -2.0], [-3.0, 4.0]])
    x = cr.tensor(data, requires_grad=True)
    for mask in (x > 0, (x > 0).data):
        x.grad = None
        y = x[mask]
        np.testing.assert_array_equal(y.data, [1.0, 4.0])
        (y * 3).sum().backward()
        np.testing.assert_array_equal(x.grad, [[3, 0], [0, 3]])


def test_tensor_valued_indices_in_a_tuple():
    data = np.arange(12.0).reshape(3, 4)
    x = cr.tensor(data, requires_grad=True)
    rows = cr.tensor(np.array([0, 2, 0]))
    cols = cr.tensor(np.array([1, 3, 1]))
    y = x[rows, cols]
    np.testing.assert_array_equal(y.data, data[[0, 2, 0], [1, 3, 1]])
    y.sum().backward()
    expected = np.zeros_like(data)
    expected[0, 1] = 2
    expected[2, 3] = 1
    np.testing.assert_array_equal(x.grad, expected)
    # a tensor index mixed with a slice
    x.grad = None
    x[:, cr.tensor(np.array([3, 3]))].sum().backward()
    expected = np.zeros_like(data)
    expected[:, 3] = 2
    np.testing.assert_array_equal(x.grad, expected)


def test_setitem_on_tensor_without_grad():
    t = cr.zeros(2, 3)
    t[0, 1] = 5.0
    t[1] = cr.tensor([1.0, 2.0, 3.0])
    t[t > 2.5] = -1.0
    np.testing.assert_array_equal(t.data, [[0, -1, 0], [1, 2, -1]])


def test_setitem_on_tensor_requiring_grad_raises():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="requires grad"):
        x[0] = 3.0
    assert x.data.tolist() == [1.0, 2.0]
    y = x * 2
    with pytest.raises(RuntimeError):
        y[1] = 0.0


# --------------------------------------------------------------------- integer tensors and requires_grad
def test_requires_grad_on_integer_tensors_raises():
    with pytest.raises(TypeError, match="floating-point"):
        cr.tensor(np.array([1, 2]), requires_grad=True)
    with pytest.raises(TypeError, match="int64"):
        cr.tensor([1, 2], dtype="int64", requires_grad=True)
    t = cr.tensor(np.arange(3))
    with pytest.raises(TypeError):
        t.requires_grad = True
    with pytest.raises(TypeError):
        t.requires_grad_()
    assert t.requires_grad is False
    with pytest.raises(TypeError):
        cr.tensor([True, False], requires_grad=True)
    with pytest.raises(TypeError):
        cr.zeros(3, dtype=np.int32, requires_grad=True)


def test_requires_grad_setter_and_requires_grad_():
    t = cr.tensor([1.0, 2.0])
    assert t.requires_grad_() is t
    assert t.requires_grad
    t.requires_grad = False
    assert not t.requires_grad
    t.requires_grad = True
    y = t * 2
    with pytest.raises(RuntimeError, match="detach"):
        y.requires_grad = False


# --------------------------------------------------------------------- factories
def test_zeros_ones_full_eye():
    z = cr.zeros(2, 3)
    assert z.shape == (2, 3) and z.dtype == F32 and not z.data.any()
    assert cr.zeros((2, 3)).shape == (2, 3)
    o = cr.ones(4, dtype=np.float64, requires_grad=True)
    assert o.dtype == F64 and o.requires_grad and o.is_leaf
    np.testing.assert_array_equal(o.data, np.ones(4))
    f = cr.full((2, 2), 7.5)
    assert f.dtype == F32
    np.testing.assert_array_equal(f.data, np.full((2, 2), 7.5))
    assert cr.full(3, 1.0).shape == (3,)
    e = cr.eye(3)
    assert e.dtype == F32
    np.testing.assert_array_equal(e.data, np.eye(3))


def test_arange():
    a = cr.arange(5)
    assert a.tolist() == [0, 1, 2, 3, 4]
    assert a.dtype.kind == "i"
    b = cr.arange(1, 10, 3)
    assert b.tolist() == [1, 4, 7]
    c = cr.arange(0.0, 1.0, 0.25)
    assert c.dtype == F32  # Python floats make float32, as everywhere else
    np.testing.assert_array_equal(c.data, [0.0, 0.25, 0.5, 0.75])
    assert cr.arange(3, dtype=np.float64).dtype == F64
    assert cr.arange(0, 1, 0.5).dtype == F32
    assert cr.arange(6, step=2).tolist() == [0, 2, 4]
    assert not a.requires_grad


def test_randn_and_rand_seeding():
    a = cr.randn(3, 4, seed=1)
    assert a.shape == (3, 4) and a.dtype == F32
    np.testing.assert_array_equal(a.data, cr.randn(3, 4, seed=1).data)
    assert not np.array_equal(a.data, cr.randn(3, 4, seed=2).data)
    r = cr.rand(1000, seed=0)
    assert r.dtype == F32
    assert r.data.min() >= 0.0 and r.data.max() < 1.0
    np.testing.assert_array_equal(r.data, cr.rand(1000, seed=0).data)
    assert not np.array_equal(r.data, cr.rand(1000, seed=1).data)
    # a Generator may be passed and is advanced
    gen = np.random.default_rng(5)
    g1, g2 = cr.randn(3, seed=gen), cr.randn(3, seed=gen)
    assert not np.array_equal(g1.data, g2.data)
    np.testing.assert_array_equal(g1.data, cr.randn(3, seed=5).data)
    assert cr.randn(2, seed=0, dtype=np.float64, requires_grad=True).requires_grad


def test_zeros_like_ones_like():
    t = cr.tensor(np.ones((2, 3)), requires_grad=True)
    z = cr.zeros_like(t)
    assert z.shape == (2, 3) and z.dtype == F64 and not z.requires_grad
    assert not z.data.any()
    assert not np.shares_memory(z.data, t.data)
    o = cr.ones_like(cr.tensor([1.0, 2.0]), requires_grad=True)
    assert o.requires_grad and o.dtype == F32
    np.testing.assert_array_equal(o.data, [1, 1])


# --------------------------------------------------------------------- dim / keepdim aliases
DATA = np.array([[1.0, 5.0, 2.0], [4.0, 0.0, 6.0]])


@pytest.mark.parametrize(
    "name,ref",
    [
        ("sum", lambda a, axis, keep: a.sum(axis=axis, keepdims=keep)),
        ("mean", lambda a, axis, keep: a.mean(axis=axis, keepdims=keep)),
        ("max", lambda a, axis, keep: a.max(axis=axis, keepdims=keep)),
        ("min", lambda a, axis, keep: a.min(axis=axis, keepdims=keep)),
        ("logsumexp", lambda a, axis, keep: np.log(np.exp(a).sum(axis=axis, keepdims=keep))),
        ("argmax", lambda a, axis, keep: a.argmax(axis=axis, keepdims=keep)),
        ("argmin", lambda a, axis, keep: a.argmin(axis=axis, keepdims=keep)),
    ],
)
def test_dim_keepdim_aliases_for_reductions(name, ref):
    x = cr.tensor(DATA)
    method = getattr(x, name)
    function = getattr(cr, name)
    for axis in (0, 1, -1):
        for keep in (False, True):
            expected = ref(DATA, axis, keep)
            by_numpy_names = method(axis=axis, keepdims=keep)
            by_torch_names = method(dim=axis, keepdim=keep)
            by_function = function(x, dim=axis, keepdim=keep)
            for out in (by_numpy_names, by_torch_names, by_function):
                assert out.shape == expected.shape
                np.testing.assert_allclose(out.data, expected)
    with pytest.raises(TypeError, match="either axis or dim"):
        method(axis=0, dim=1)
    with pytest.raises(TypeError, match="either axis or dim"):
        function(x, 0, dim=0)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_dim_alias_for_softmax_family(name):
    x = cr.tensor(DATA)
    shifted = np.exp(DATA - DATA.max(axis=0, keepdims=True))
    expected = shifted / shifted.sum(axis=0, keepdims=True)
    if name == "log_softmax":
        expected = np.log(expected)
    for out in (getattr(x, name)(dim=0), getattr(x, name)(axis=0), getattr(cr, name)(x, dim=0)):
        np.testing.assert_allclose(out.data, expected, rtol=1e-12)
    # the default is the last axis
    last = getattr(x, name)()
    np.testing.assert_allclose(last.data, getattr(x, name)(dim=1).data)
    assert not np.allclose(last.data, expected)
    with pytest.raises(TypeError, match="either axis or dim"):
        getattr(x, name)(axis=0, dim=1)


def test_argmax_argmin_return_integer_tensors_without_grad():
    x = cr.tensor(DATA, requires_grad=True)
    for out in (x.argmax(), x.argmin(), x.argmax(dim=1), cr.argmin(x, axis=0)):
        assert out.dtype.kind == "i"
        assert out.requires_grad is False
        assert out.is_leaf
    assert x.argmax().item() == 5  # flat index of 6.0
    assert x.argmin().item() == 4  # flat index of 0.0
    assert x.argmax(dim=1).tolist() == [1, 2]
    assert x.argmax(dim=1, keepdim=True).shape == (2, 1)


# --------------------------------------------------------------------- dtype conversion
def test_astype_float_double_and_gradient_dtype():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    assert x.float() is x  # already float32: no op
    d = x.double()
    assert d.dtype == F64
    assert d.op is not None and d.op.name == "cast"
    (d * d).sum().backward()
    assert x.grad.dtype == F32  # the gradient comes back in the leaf's dtype
    np.testing.assert_allclose(x.grad, [2.0, 4.0])

    w = cr.tensor(np.array([0.5, 1.5]), requires_grad=True)
    s = w.float()
    assert s.dtype == F32
    (s * 3).sum().backward()
    assert w.grad.dtype == F64
    np.testing.assert_allclose(w.grad, [3.0, 3.0])

    w.grad = None
    a = w.astype("float32")
    assert a.dtype == F32
    cr.astype(w, np.float32).sum().backward()
    assert w.grad.dtype == F64
    i = cr.tensor(np.array([1, 2])).astype(np.float32)
    assert i.dtype == F32 and not i.requires_grad
    # converting to an integer dtype gives a tensor outside the graph-able dtypes but keeps values
    assert cr.tensor([1.7, 2.2]).astype("int32").tolist() == [1, 2]


# --------------------------------------------------------------------- transpose semantics
def test_transpose_semantics():
    data = np.arange(24.0).reshape(2, 3, 4)
    x = cr.tensor(data, requires_grad=True)
    # no arguments: all axes reversed (NumPy)
    np.testing.assert_array_equal(x.transpose().data, data.transpose())
    np.testing.assert_array_equal(x.T.data, data.T)
    # a full permutation permutes (NumPy), as separate ints or one tuple
    np.testing.assert_array_equal(x.transpose(1, 2, 0).data, data.transpose(1, 2, 0))
    np.testing.assert_array_equal(x.transpose((2, 0, 1)).data, data.transpose(2, 0, 1))
    # two ints on a >2-d tensor swap those axes (PyTorch)
    np.testing.assert_array_equal(x.transpose(0, 2).data, np.swapaxes(data, 0, 2))
    np.testing.assert_array_equal(x.transpose(-1, 1).data, np.swapaxes(data, -1, 1))
    np.testing.assert_array_equal(cr.transpose(x, 0, 1).data, np.swapaxes(data, 0, 1))
    # permute (PyTorch's name) needs one entry per axis
    np.testing.assert_array_equal(x.permute(2, 0, 1).data, data.transpose(2, 0, 1))
    np.testing.assert_array_equal(cr.permute(x, (1, 0, 2)).data, data.transpose(1, 0, 2))
    with pytest.raises(RuntimeError):  # PyTorch's exception type
        x.permute(0, 1)
    with pytest.raises(ValueError, match="permutation"):
        x.transpose(0, 0, 1)
    # on a matrix every spelling of the swap agrees
    m = cr.tensor(np.arange(6.0).reshape(2, 3))
    for t in (m.T, m.transpose(), m.transpose(1, 0), m.permute(1, 0)):
        np.testing.assert_array_equal(t.data, m.data.T)


def test_transpose_gradient_is_permuted_back():
    data = np.arange(24.0).reshape(2, 3, 4)
    x = cr.tensor(data, requires_grad=True)
    weights = np.arange(24.0).reshape(4, 2, 3)
    (x.permute(2, 0, 1) * weights).sum().backward()
    np.testing.assert_array_equal(x.grad, weights.transpose(1, 2, 0))
    x.grad = None
    w2 = np.arange(24.0).reshape(4, 3, 2)
    (x.transpose(0, 2) * w2).sum().backward()
    np.testing.assert_array_equal(x.grad, np.swapaxes(w2, 0, 2))


def test_two_ints_always_swap_even_on_a_matrix():
    m = cr.tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(m.transpose(0, 1).data, m.data.T)  # PyTorch's w.transpose(0, 1)


def test_softmax_rejects_both_axis_and_dim():
    x = cr.tensor(np.ones((2, 3)))
    with pytest.raises(TypeError, match="either axis or dim"):
        x.softmax(axis=-1, dim=0)
    with pytest.raises(TypeError, match="either axis or dim"):
        cr.log_softmax(x, axis=1, dim=1)
    np.testing.assert_allclose(x.softmax(dim=0).data, np.full((2, 3), 0.5))


def test_cast_node_describes_both_dtypes():
    d = cr.tensor([1.0], requires_grad=True).double()
    assert "float32 -> float64" in repr(d.op)


def test_setitem_refuses_a_value_that_requires_grad():
    target = cr.zeros(3)
    with pytest.raises(RuntimeError, match="graph"):
        target[0] = cr.tensor(1.0, requires_grad=True)


def test_cached_constants_keep_the_sign_of_zero():
    from chainrule.backend import const

    x = cr.tensor(np.array([1.0, 2.0]))
    assert not np.signbit((x * 0.0).data).any()
    assert np.signbit((x * -0.0).data).all()  # not the cached +0.0
    assert np.signbit(const(-0.0, np.dtype(np.float32))) and not np.signbit(const(0.0, np.dtype(np.float32)))


# --------------------------------------------------------------------- PyTorch parity where the names are PyTorch's
ZERO_D_CALLS = {
    "sum(-1)": (lambda t: t.sum(-1), lambda t: t.sum(-1)),
    "sum(0)": (lambda t: t.sum(0), lambda t: t.sum(0)),
    "mean(dim=-1)": (lambda t: t.mean(dim=-1), lambda t: t.mean(dim=-1)),
    "logsumexp(-1)": (lambda t: t.logsumexp(-1), lambda t: t.logsumexp(-1)),
    "softmax(dim=-1)": (lambda t: t.softmax(dim=-1), lambda t: t.softmax(dim=-1)),
    "log_softmax(dim=0)": (lambda t: t.log_softmax(dim=0), lambda t: t.log_softmax(dim=0)),
    "max(-1)": (lambda t: t.max(-1), lambda t: t.amax(-1)),
    "squeeze(-1)": (lambda t: t.squeeze(-1), lambda t: t.squeeze(-1)),
    "squeeze(0)": (lambda t: t.squeeze(0), lambda t: t.squeeze(0)),
    "unsqueeze(-1)": (lambda t: t.unsqueeze(-1), lambda t: t.unsqueeze(-1)),
    "flatten()": (lambda t: t.flatten(), lambda t: t.flatten()),
    "var(0, correction=0)": (lambda t: t.var(0, correction=0), lambda t: t.var(0, correction=0)),
}


@pytest.mark.parametrize("label", sorted(ZERO_D_CALLS))
def test_zero_d_tensors_take_axis_0_and_minus_1_as_in_torch(label):
    import torch

    ours, theirs = ZERO_D_CALLS[label]
    t = cr.tensor(np.float64(0.75), requires_grad=True)
    tt = torch.tensor(0.75, dtype=torch.float64, requires_grad=True)
    out, tout = ours(t), theirs(tt)
    assert out.shape == tuple(tout.shape)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-15)
    out.sum().backward()
    tout.sum().backward()
    np.testing.assert_allclose(t.grad, tt.grad.numpy(), rtol=1e-15)


@pytest.mark.parametrize(
    "call",
    [
        lambda t: t.sum(1),
        lambda t: t.softmax(dim=2),
        lambda t: t.squeeze(-2),
        lambda t: t.flatten(0, 1),
    ],
)
def test_zero_d_axis_out_of_range_is_an_index_error(call):
    import torch

    with pytest.raises(IndexError):
        call(torch.tensor(1.0))
    with pytest.raises(IndexError, match="out of range"):
        call(cr.tensor(1.0))


@pytest.mark.parametrize("axis", [0, 1, -1, (0, 2), (1, 2), None], ids=lambda a: f"axis={a}")
def test_squeeze_leaves_axes_whose_length_is_not_1(axis):
    import torch

    data = np.arange(6.0).reshape(1, 6, 1)
    ours = cr.tensor(data).squeeze(axis) if axis is not None else cr.tensor(data).squeeze()
    theirs = torch.tensor(data).squeeze(axis) if axis is not None else torch.tensor(data).squeeze()
    assert ours.shape == tuple(theirs.shape)


@pytest.mark.parametrize(
    "shape,start,end",
    [
        ((2, 3, 4), 0, -1),
        ((2, 3, 4), 1, 2),
        ((2, 3, 4), 0, 1),
        ((2, 3, 4), -2, -1),
        ((2, 3, 4), 1, 1),
        ((5,), 0, 0),
        ((2, 0, 3), 0, 1),
    ],
)
def test_flatten_start_and_end_dim_match_torch(shape, start, end):
    import torch

    data = np.random.default_rng(0).normal(size=shape)
    t = cr.tensor(data, requires_grad=True)
    out = cr.flatten(t, start, end)
    assert out.shape == tuple(torch.flatten(torch.tensor(data), start, end).shape)
    assert t.flatten(start_dim=start, end_dim=end).shape == out.shape
    np.testing.assert_array_equal(out.data.ravel(), data.ravel())
    out.sum().backward()
    assert t.grad.shape == shape
    with pytest.raises(RuntimeError, match="comes after"):
        cr.flatten(cr.tensor(np.ones((2, 3, 4))), 2, 1)


def test_axis_errors_have_torchs_exception_types():
    import torch

    x, tx = cr.tensor(np.ones((2, 3))), torch.ones(2, 3)
    for ours, theirs in [
        (lambda: x.sum(5), lambda: tx.sum(5)),
        (lambda: x.softmax(dim=-3), lambda: tx.softmax(dim=-3)),
        (lambda: x.transpose(0, 5), lambda: tx.transpose(0, 5)),
        (lambda: x.unsqueeze(4), lambda: tx.unsqueeze(4)),
        (lambda: x[5], lambda: tx[5]),
        (lambda: x.argmax(2), lambda: tx.argmax(2)),
    ]:
        with pytest.raises(Exception) as theirs_raised:
            theirs()
        with pytest.raises(Exception) as ours_raised:
            ours()
        assert type(ours_raised.value) is type(theirs_raised.value) is IndexError
    for ours, theirs in [
        (lambda: x.permute(0, 0), lambda: tx.permute(0, 0)),
        (lambda: x.sum((0, 0)), lambda: tx.sum((0, 0))),
    ]:
        with pytest.raises(RuntimeError):
            theirs()
        with pytest.raises(RuntimeError):
            ours()


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div"])
def test_arithmetic_methods_match_the_operators_and_torch(name):
    import torch

    a, b = np.array([1.5, -2.0, 3.0]), np.array([0.5, 4.0, -1.0])
    t = cr.tensor(a, requires_grad=True)
    out = getattr(t, name)(cr.tensor(b))
    tt = torch.tensor(a, requires_grad=True)
    tout = getattr(tt, name)(torch.tensor(b))
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-15)
    out.sum().backward()
    tout.sum().backward()
    np.testing.assert_allclose(t.grad, tt.grad.numpy(), rtol=1e-15)
    assert np.array_equal(getattr(cr.tensor(a), name)(2.0).data, getattr(torch.tensor(a), name)(2.0).numpy())
    neg = cr.tensor(a).neg()
    assert neg.op is not None or not neg.requires_grad
    np.testing.assert_array_equal(neg.data, -a)
