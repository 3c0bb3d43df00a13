"""Every layer against PyTorch in float64 (forward, input and parameter gradients) and gradcheck."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule import nn
from chainrule.nn import functional as F

torch.set_num_threads(1)
RNG = np.random.default_rng(1234)


def close(a, b, tol=1e-10):
    a = a.detach().numpy() if isinstance(a, torch.Tensor) else np.asarray(a.data if isinstance(a, cr.Tensor) else a)
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else np.asarray(b.data if isinstance(b, cr.Tensor) else b)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def compare_with_torch(mod, tmod, x, name_map=None, tol=1e-10):
    """Copy mod's state into tmod, run both on x with the same upstream gradient, compare everything."""
    mod.double()
    tmod.double()
    name_map = name_map or {}
    tmod.load_state_dict({name_map.get(k, k): torch.from_numpy(v.copy()) for k, v in mod.state_dict().items()})
    xc = cr.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    out, tout = mod(xc), tmod(xt)
    close(out, tout, tol)
    upstream = RNG.standard_normal(out.shape)
    out.backward(upstream)
    tout.backward(torch.from_numpy(upstream))
    close(xc.grad, xt.grad, tol)
    tparams = dict(tmod.named_parameters())
    for name, p in mod.named_parameters():
        close(p.grad, tparams[name_map.get(name, name)].grad, tol)
    return out


def gradcheck_module(mod, x, **kwargs):
    mod.double()
    xc = cr.tensor(x, requires_grad=True)
    params = list(mod.parameters())
    assert cr.gradcheck(lambda inp, *ps: mod(inp), [xc, *params], **kwargs)


# --------------------------------------------------------------------- Linear, Maxout, MLP
def test_linear_matches_torch():
    x = RNG.standard_normal((5, 3))
    mod = nn.Linear(3, 4, rng=0)
    out = compare_with_torch(mod, torch.nn.Linear(3, 4), x)
    assert out.shape == (5, 4)
    # weight layout: row j holds the incoming weights of output j, y = W x + b per example
    np.testing.assert_allclose(out.data[0], mod.weight.data @ x[0] + mod.bias.data)


def test_linear_without_bias_and_batched_input_matches_torch():
    x = RNG.standard_normal((2, 5, 3))
    mod = nn.Linear(3, 2, bias=False, rng=1)
    assert mod.bias is None and [n for n, _ in mod.named_parameters()] == ["weight"]
    compare_with_torch(mod, torch.nn.Linear(3, 2, bias=False), x)


def test_linear_defaults_float32_and_shape_errors():
    mod = nn.Linear(3, 4)
    assert mod.weight.shape == (4, 3) and mod.bias.shape == (4,)
    assert mod.weight.dtype == np.float32 and mod.weight.requires_grad
    assert mod(cr.tensor(np.ones((2, 3), np.float32))).dtype == np.float32
    assert nn.Linear(3, 4, dtype=np.float64).weight.dtype == np.float64
    with pytest.raises(ValueError, match="in_features"):
        mod(cr.tensor(np.ones((2, 5), np.float32)))


def test_maxout_matches_torch_composition():
    x = RNG.standard_normal((6, 4))
    mod = nn.Maxout(4, 3, pieces=2, rng=2).double()
    assert mod.weight.shape == (6, 4)
    xc = cr.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    w = torch.tensor(mod.weight.data, requires_grad=True)
    b = torch.tensor(mod.bias.data, requires_grad=True)
    tout = torch.nn.functional.linear(xt, w, b).view(6, 3, 2).amax(dim=-1)
    out = mod(xc)
    close(out, tout)
    g = RNG.standard_normal(out.shape)
    out.backward(g)
    tout.backward(torch.from_numpy(g))
    close(xc.grad, xt.grad)
    close(mod.weight.grad, w.grad)
    close(mod.bias.grad, b.grad)


def test_maxout_with_one_piece_is_linear():
    mod = nn.Maxout(3, 2, pieces=1, rng=0).double()
    x = RNG.standard_normal((4, 3))
    close(mod(x), x @ mod.weight.data.T + mod.bias.data)


@pytest.mark.parametrize(
    "act,tact", [("sigmoid", torch.nn.Sigmoid()), ("relu", torch.nn.ReLU()), ("tanh", torch.nn.Tanh())]
)
def test_mlp_matches_torch_sequential(act, tact):
    mod = nn.MLP([4, 6, 5, 3], activation=act, rng=3)
    tmod = torch.nn.Sequential(torch.nn.Linear(4, 6), tact, torch.nn.Linear(6, 5), tact, torch.nn.Linear(5, 3))
    name_map = {f"layers.{i}.{kind}": f"{2 * i}.{kind}" for i in range(3) for kind in ("weight", "bias")}
    compare_with_torch(mod, tmod, RNG.standard_normal((7, 4)), name_map)


def test_mlp_structure_and_output_activation():
    mod = nn.MLP([784, 25, 10], activation="sigmoid", output_activation="softmax", rng=0)
    names = [n for n, _ in mod.named_parameters()]
    assert names == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"]
    assert mod.layers[0].weight.shape == (25, 784)
    out = mod(cr.tensor(RNG.standard_normal((2, 784)).astype(np.float32)))
    np.testing.assert_allclose(out.data.sum(axis=1), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="unknown activation"):
        nn.MLP([2, 2], activation="swishy")
    with pytest.raises(ValueError, match="at least"):
        nn.MLP([3])


def test_mlp_prelu_layers_get_their_own_slopes():
    mod = nn.MLP([3, 4, 4, 2], activation="prelu", rng=0)
    slopes = [n for n, _ in mod.named_parameters() if n.startswith("activations")]
    assert slopes == ["activations.0.weight", "activations.1.weight"]
    gradcheck_module(mod, RNG.standard_normal((3, 3)))


# --------------------------------------------------------------------- activations
ACTIVATIONS = [
    (nn.Sigmoid(), torch.nn.Sigmoid()),
    (nn.Tanh(), torch.nn.Tanh()),
    (nn.ReLU(), torch.nn.ReLU()),
    (nn.LeakyReLU(), torch.nn.LeakyReLU()),
    (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
    (nn.ELU(), torch.nn.ELU()),
    (nn.ELU(0.5), torch.nn.ELU(0.5)),
    (nn.Softplus(), torch.nn.Softplus()),
    (nn.Softplus(beta=2.0), torch.nn.Softplus(beta=2.0)),
    (nn.GELU(), torch.nn.GELU(approximate="tanh")),
    (nn.Identity(), torch.nn.Identity()),
    (nn.Softmax(axis=1), torch.nn.Softmax(dim=1)),
    (nn.LogSoftmax(axis=1), torch.nn.LogSoftmax(dim=1)),
    (nn.PReLU(), torch.nn.PReLU()),
    (nn.PReLU(4, init=0.1), torch.nn.PReLU(4, init=0.1)),
]


@pytest.mark.parametrize("mod,tmod", ACTIVATIONS, ids=lambda m: repr(m))
def test_activation_matches_torch(mod, tmod):
    x = RNG.standard_normal((5, 4)) * 3
    compare_with_torch(mod, tmod, x)


@pytest.mark.parametrize("mod,tmod", ACTIVATIONS, ids=lambda m: repr(m))
def test_activation_gradcheck(mod, tmod):
    gradcheck_module(mod, RNG.standard_normal((3, 4)) * 2)


def test_prelu_per_channel_on_3d_input_and_gradcheck():
    x = RNG.standard_normal((2, 3, 5))
    compare_with_torch(nn.PReLU(3), torch.nn.PReLU(3), x)
    gradcheck_module(nn.PReLU(3), x)
    gradcheck_module(nn.PReLU(), x)
    with pytest.raises(ValueError, match="channels"):
        nn.PReLU(4)(cr.tensor(x))


def test_prelu_init_and_functional():
    assert np.all(nn.PReLU(3).weight.data == np.float32(0.25))
    x = cr.tensor(np.array([-2.0, 0.0, 3.0]))
    w = cr.tensor(np.array([0.5]), requires_grad=True)
    np.testing.assert_allclose(F.prelu(x, w).data, [-1.0, 0.0, 3.0])


def test_gelu_is_the_tanh_approximation():
    x = np.linspace(-4, 4, 41)
    expected = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    close(F.gelu(cr.tensor(x)), expected, 1e-14)
    exact = torch.nn.functional.gelu(torch.tensor(x), approximate="none").numpy()
    assert np.abs(F.gelu(cr.tensor(x)).data - exact).max() < 1e-3  # close to, but not, the erf form
    with pytest.raises(ValueError, match="erf"):
        nn.GELU(approximate="none")


def test_activation_functions_are_exported():
    x = cr.tensor(RNG.standard_normal(5))
    for fn in (F.sigmoid, F.tanh, F.relu, F.leaky_relu, F.elu, F.softplus, F.gelu, F.identity):
        assert fn(x).shape == (5,)


def test_flatten():
    out = nn.Flatten()(cr.tensor(np.zeros((2, 3, 4))))
    assert out.shape == (2, 12)
    gradcheck_module(nn.Flatten(), RNG.standard_normal((2, 3, 2)))


def test_maxout_linear_and_mlp_gradcheck():
    x = RNG.standard_normal((4, 3))
    gradcheck_module(nn.Linear(3, 2, rng=0), x)
    gradcheck_module(nn.Maxout(3, 2, pieces=3, rng=0), x)
    gradcheck_module(nn.MLP([3, 4, 2], activation="tanh", output_activation="sigmoid", rng=0), x)


# --------------------------------------------------------------------- BatchNorm1d
@pytest.mark.parametrize("momentum", [0.1, 0.3, None])
@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5)])
def test_batchnorm_train_and_eval_match_torch_over_several_steps(momentum, shape):
    bn = nn.BatchNorm1d(3, momentum=momentum).double()
    tbn = torch.nn.BatchNorm1d(3, momentum=momentum).double()
    bn.weight.data[...] = [1.5, -0.5, 2.0]
    bn.bias.data[...] = [0.1, 0.2, -0.3]
    tbn.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in bn.state_dict().items()})
    for step in range(4):
        x = RNG.standard_normal(shape) * (step + 1) + step
        xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        out, tout = bn(xc), tbn(xt)
        close(out, tout)
        g = RNG.standard_normal(out.shape)
        out.backward(g)
        tout.backward(torch.from_numpy(g))
        close(xc.grad, xt.grad)
        close(bn.weight.grad, tbn.weight.grad)
        close(bn.bias.grad, tbn.bias.grad)
        bn.zero_grad()
        tbn.zero_grad()
        close(bn.running_mean, tbn.running_mean)
        close(bn.running_var, tbn.running_var)
        assert int(bn.num_batches_tracked.data) == int(tbn.num_batches_tracked) == step + 1
    bn.eval()
    tbn.eval()
    x = RNG.standard_normal(shape)
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, tout = bn(xc), tbn(xt)
    close(out, tout)
    out.backward(np.ones(out.shape))
    tout.backward(torch.ones(out.shape, dtype=torch.float64))
    close(xc.grad, xt.grad)
    close(bn.weight.grad, tbn.weight.grad)
    before = bn.running_mean.data.copy()
    bn(cr.tensor(x))
    np.testing.assert_array_equal(bn.running_mean.data, before)  # no update in eval mode


def test_batchnorm_uses_biased_variance_for_normalization():
    x = np.array([[1.0], [2.0], [4.0]])
    bn = nn.BatchNorm1d(1, eps=0.0).double()
    out = bn(cr.tensor(x)).data.ravel()
    expected = (x.ravel() - x.mean()) / x.std()  # np.std is the biased one
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.data, 0.9 * 1 + 0.1 * x.var(ddof=1))


def test_batchnorm_without_affine_or_running_stats_matches_torch():
    x = RNG.standard_normal((6, 2))
    compare_with_torch(nn.BatchNorm1d(2, affine=False), torch.nn.BatchNorm1d(2, affine=False), x)
    bn = nn.BatchNorm1d(2, track_running_stats=False)
    assert [n for n, _ in bn.named_buffers()] == []
    compare_with_torch(bn.eval(), torch.nn.BatchNorm1d(2, track_running_stats=False).eval(), x)


def test_batchnorm_gradcheck_and_errors():
    gradcheck_module(nn.BatchNorm1d(3), RNG.standard_normal((5, 3)))
    gradcheck_module(nn.BatchNorm1d(2), RNG.standard_normal((3, 2, 4)))
    gradcheck_module(nn.BatchNorm1d(3).eval(), RNG.standard_normal((5, 3)))
    with pytest.raises(ValueError, match="more than 1 value"):
        nn.BatchNorm1d(3)(cr.tensor(np.ones((1, 3))))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        nn.BatchNorm1d(3)(cr.tensor(np.ones((4, 2))))


# --------------------------------------------------------------------- Dropout
def test_dropout_inverted_scaling_and_rate():
    x = cr.tensor(np.ones((200, 100)), requires_grad=True)
    drop = nn.Dropout(0.3, rng=0)
    out = drop(x)
    kept = out.data != 0
    assert abs(1 - kept.mean() - 0.3) < 0.01
    np.testing.assert_allclose(out.data[kept], 1 / 0.7)
    assert abs(out.data.mean() - 1.0) < 0.02  # expectation preserved
    out.sum().backward()
    np.testing.assert_allclose(x.grad, kept / 0.7)  # gradient goes through the same mask


def test_dropout_eval_and_edge_probabilities():
    x = cr.tensor(RNG.standard_normal((4, 5)))
    drop = nn.Dropout(0.5).eval()
    assert drop(x) is x or np.array_equal(drop(x).data, x.data)
    np.testing.assert_array_equal(nn.Dropout(0.0)(x).data, x.data)
    np.testing.assert_array_equal(nn.Dropout(1.0)(x).data, np.zeros((4, 5)))
    np.testing.assert_array_equal(F.dropout(x, 0.5, training=False).data, x.data)
    with pytest.raises(ValueError, match="p must be"):
        nn.Dropout(1.5)


def test_dropout_is_seedable():
    x = cr.tensor(np.ones((10, 10)))
    a = nn.Dropout(0.5, rng=42)(x).data
    b = nn.Dropout(0.5, rng=np.random.default_rng(42))(x).data
    c = nn.Dropout(0.5, rng=43)(x).data
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    drop = nn.Dropout(0.5, rng=1)
    assert not np.array_equal(drop(x).data, drop(x).data)  # a fresh mask per call
    assert nn.Dropout(0.5)(cr.tensor(np.ones(3, np.float32))).dtype == np.float32


def test_dropout_gradcheck_with_fixed_mask():
    drop = nn.Dropout(0.4)
    x = cr.tensor(RNG.standard_normal((3, 4)), requires_grad=True)

    def fn(inp):
        drop.rng = np.random.default_rng(7)
        return drop(inp)

    assert cr.gradcheck(fn, [x])


# --------------------------------------------------------------------- pooling
@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, 2.5])
def test_lp_pool_matches_torch_and_closed_form_gradient(p):
    x = RNG.uniform(0.5, 2.0, (3, 4, 6))
    xc = cr.tensor(x, requires_grad=True)
    y = nn.LPPool(p, axis=-1)(xc)
    ty = torch.nn.functional.lp_pool1d(torch.tensor(x), p, kernel_size=6).squeeze(-1)
    close(y, ty, 1e-12)
    y.sum().backward()
    closed_form = (x / y.data[..., None]) ** (p - 1)  # dy/dx_i = (x_i / y)^(p-1)
    close(xc.grad, closed_form, 1e-12)


def test_lp_pool_other_axis_keepdims_and_limits():
    x = RNG.uniform(0.5, 2.0, (5, 3))
    y = F.lp_pool(cr.tensor(x), 2, axis=0, keepdims=True)
    assert y.shape == (1, 3)
    close(y, np.sqrt((x**2).sum(axis=0, keepdims=True)), 1e-13)
    close(F.lp_pool(cr.tensor(x), 1, axis=1), x.sum(axis=1), 1e-13)
    assert np.allclose(F.lp_pool(cr.tensor(x), 200, axis=1).data, x.max(axis=1), rtol=0.01)
    gradcheck_module(nn.LPPool(3.0, axis=1), x)


@pytest.mark.parametrize("beta", [0.5, 1.0, 4.0, -2.0])
def test_log_avg_pool_value_and_closed_form_gradient(beta):
    x = RNG.standard_normal((4, 7))
    xc = cr.tensor(x, requires_grad=True)
    y = nn.LogAvgPool(beta, axis=1)(xc)
    close(y, np.log(np.exp(beta * x).mean(axis=1)) / beta, 1e-12)
    y.sum().backward()
    e = np.exp(beta * x)
    close(xc.grad, e / e.sum(axis=1, keepdims=True), 1e-12)  # dy/dx_i = softmax(beta x)_i


def test_log_avg_pool_is_stable_and_interpolates_mean_and_max():
    x = np.array([[1000.0, 999.0, -1000.0]])
    y = F.log_avg_pool(cr.tensor(x), 1.0, axis=1)
    assert np.isfinite(y.data).all()
    close(y, 1000 + np.log((1 + np.exp(-1)) / 3), 1e-12)
    z = RNG.standard_normal((3, 5))
    close(F.log_avg_pool(cr.tensor(z), 1e-6, axis=1), z.mean(axis=1), 1e-5)
    close(F.log_avg_pool(cr.tensor(z), 1e4, axis=1), z.max(axis=1), 1e-3)
    gradcheck_module(nn.LogAvgPool(2.0, axis=0, keepdims=True), z)
    with pytest.raises(ValueError):
        nn.LogAvgPool(0.0)
