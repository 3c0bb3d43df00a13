"""Module mechanics: registration, naming, modes, state dicts, dtype conversion, configs, repr."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from helpers import run_doc

import chainrule as cr
from chainrule import nn


class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(2, 3, rng=0)
        self.out = nn.Linear(3, 1, rng=1)
        self.scale = nn.Parameter(np.ones(1, np.float32))
        self.note = "not a parameter"

    def forward(self, x):
        return self.out(self.hidden(x).tanh()) * self.scale


# --------------------------------------------------------------------- Parameter
def test_parameter_is_a_leaf_tensor_that_requires_grad():
    p = nn.Parameter([1.0, 2.0])
    assert isinstance(p, cr.Tensor) and isinstance(p, nn.Parameter)
    assert p.requires_grad and p.is_leaf and p.dtype == np.float32
    assert nn.Parameter(np.zeros(2)).dtype == np.float64
    assert repr(p).startswith("Parameter containing:\ntensor(")


@pytest.mark.parametrize(
    "expr",
    [
        "p * 2",
        "2 * p",
        "p + 1",
        "1 + p",
        "p - 1",
        "1 - p",
        "p / 2",
        "2 / p",
        "p ** 2",
        "-p",
        "p * p",
        "p * 0.5",
        "x @ p",
        "x * p",
        "cr.tensor(np.ones(3, np.float32)) * p",
        "np.ones(3, np.float32) * p",
        "p.sum()",
        "cr.exp(p)",
        "cr.linear(x[None], p[None])",
    ],
)
def test_parameter_works_with_every_operator(expr):
    # Parameter subclasses Tensor: the engine's `type(x) is Tensor` fast paths must still take it.
    p = nn.Parameter(np.array([1.0, 2.0, 3.0], np.float32))
    x = cr.tensor(np.array([0.5, -1.0, 2.0], np.float32))
    out = eval(expr, {"cr": cr, "np": np, "p": p, "x": x})
    assert type(out) is cr.Tensor
    assert out.dtype == np.float32, f"{expr} changed the dtype to {out.dtype}"
    out.sum().backward()
    assert p.grad is not None and p.grad.shape == (3,) and p.grad.dtype == np.float32


@pytest.mark.parametrize(
    "expr",
    [
        "cr.add(p, 2)",
        "cr.mul(p, 2)",
        "cr.maximum(p, 0)",
        "cr.minimum(0.5, p)",
        "cr.where(p.data > 1, p, 0)",
        "cr.clip(p, 0, 1)",
        "cr.stack([p, p])",
    ],
)
def test_parameter_works_with_functional_forms(expr):
    p = nn.Parameter(np.array([1.0, 2.0, 3.0], np.float32))
    out = eval(expr, {"cr": cr, "p": p})
    assert type(out) is cr.Tensor and out.dtype == np.float32
    out.sum().backward()
    assert p.grad.dtype == np.float32


@pytest.mark.parametrize("expr", ["cr.mul(2, p)", "cr.sub(1, p)", "cr.div(1, p)", "cr.pow(p, 2)"])
def test_parameter_functional_forms_with_a_number_first_keep_float32(expr):
    p = nn.Parameter(np.array([1.0, 2.0, 3.0], np.float32))
    assert eval(expr, {"cr": cr, "p": p}).dtype == np.float32


def test_parameters_are_hashable_by_identity():
    a, b = nn.Parameter([1.0]), nn.Parameter([1.0])
    state = {a: "a", b: "b"}
    assert state[a] == "a" and len({a, b, a}) == 2


def test_parameter_gradient_values():
    p = nn.Parameter(np.array([1.0, 2.0]))
    (2 * p * p + 1 - p).sum().backward()
    np.testing.assert_allclose(p.grad, 4 * p.data - 1)


# --------------------------------------------------------------------- registration and traversal
def test_registration_and_dotted_names():
    m = TwoLayer()
    assert [n for n, _ in m.named_parameters()] == ["scale", "hidden.weight", "hidden.bias", "out.weight", "out.bias"]
    assert len(list(m.parameters())) == 5
    assert [n for n, _ in m.named_children()] == ["hidden", "out"]
    assert list(m.children()) == [m.hidden, m.out]
    assert [type(x).__name__ for x in m.modules()] == ["TwoLayer", "Linear", "Linear"]
    assert [n for n, _ in m.named_modules()] == ["", "hidden", "out"]
    assert m.note == "not a parameter" and "note" not in dict(m.named_parameters())
    assert m.num_parameters() == 2 * 3 + 3 + 3 + 1 + 1


def test_nested_names_and_shared_parameters_appear_once():
    shared = nn.Linear(2, 2)
    model = nn.Sequential(shared, nn.ReLU(), nn.Sequential(nn.Linear(2, 2), shared))
    names = [n for n, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "2.0.weight", "2.0.bias"]


def test_reassigning_and_deleting_attributes():
    m = TwoLayer()
    m.hidden = nn.Linear(2, 3)  # replacing a submodule keeps its slot
    m.scale = None
    assert "scale" not in dict(m.named_parameters())
    with pytest.raises(TypeError, match=r"assign an nn\.Parameter"):
        m.scale = cr.tensor([1.0])
    m.hidden = None
    assert [n for n, _ in m.named_children()] == ["out"]
    del m.out
    assert list(m.children()) == []
    with pytest.raises(AttributeError):
        _ = m.out


def test_registered_attributes_are_plain_lookups_that_follow_every_change(monkeypatch):
    # Parameters, buffers and submodules are mirrored in the instance __dict__, so reading them
    # never falls back to Module.__getattr__ (about 1 us each, on every forward); every way of
    # changing the registries keeps the mirror in step.
    def no_fallback(self, name):
        raise AssertionError(f"Module.__getattr__ was used for {name!r}")

    m = TwoLayer()
    m.register_buffer("count", np.zeros(1))
    monkeypatch.setattr(nn.Module, "__getattr__", no_fallback)
    assert m.hidden is m._modules["hidden"] and m.scale is m._parameters["scale"]
    assert m.hidden.weight is m.hidden._parameters["weight"] and m.count is m._buffers["count"]
    new_scale = nn.Parameter(np.ones(1))
    m.scale = new_scale
    assert m.scale is new_scale and m._parameters["scale"] is new_scale
    m.scale = None
    assert m.scale is None and m._parameters["scale"] is None
    m.count = np.full(1, 2.0)
    assert m.count is m._buffers["count"] and m.count.data[0] == 2.0
    m.hidden = nn.Linear(2, 3)
    assert m.hidden is m._modules["hidden"] and m.hidden.weight.shape == (3, 2)
    m.hidden = None
    assert m.hidden is None
    monkeypatch.undo()
    del m.out
    with pytest.raises(AttributeError):
        _ = m.out
    m.out = 3  # a plain attribute may reuse a deleted submodule's name
    assert m.out == 3 and "out" not in m._modules
    layers = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 1)])
    first = nn.Identity()
    layers.insert(0, first)
    assert getattr(layers, "0") is first and getattr(layers, "2") is layers[2] and len(vars(layers)["_modules"]) == 3


def test_forgetting_super_init_is_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.w = nn.Parameter([1.0])

    with pytest.raises(AttributeError, match=r"super\(\)\.__init__"):
        Broken()


def test_register_buffer_and_parameter_explicitly():
    m = nn.Module()
    m.register_parameter("w", nn.Parameter(np.ones(2)))
    m.register_buffer("count", np.array(3))
    m.register_buffer("scratch", np.zeros(2), persistent=False)
    assert [n for n, _ in m.named_buffers()] == ["count", "scratch"]
    assert list(m.state_dict()) == ["w", "count"]
    assert not m.count.requires_grad
    with pytest.raises(TypeError):
        m.register_parameter("v", cr.tensor([1.0]))
    with pytest.raises(TypeError, match="must not require grad"):
        m.register_buffer("bad", cr.tensor([1.0], requires_grad=True))


# --------------------------------------------------------------------- modes and grads
def test_train_eval_propagate():
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(0.5), nn.BatchNorm1d(2)))
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    model.train(False)
    assert not model[1][0].training


def test_zero_grad_sets_none_and_requires_grad_freezes():
    m = TwoLayer()
    m(cr.tensor(np.ones((4, 2), np.float32))).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    m.hidden.requires_grad_(False)
    m(cr.tensor(np.ones((4, 2), np.float32))).sum().backward()
    assert m.hidden.weight.grad is None and m.out.weight.grad is not None
    assert m.num_parameters(trainable_only=True) == 3 + 1 + 1


# --------------------------------------------------------------------- dtype
def test_to_double_keeps_parameter_objects():
    m = TwoLayer()
    before = [id(p) for p in m.parameters()]
    assert m.double() is m
    assert [id(p) for p in m.parameters()] == before
    assert all(p.dtype == np.float64 for p in m.parameters())
    out = m(cr.tensor(np.ones((1, 2))))
    assert out.dtype == np.float64
    bn = nn.BatchNorm1d(2).double()
    assert bn.running_mean.dtype == np.float64 and bn.num_batches_tracked.dtype == np.int64
    m.float()
    assert all(p.dtype == np.float32 for p in m.parameters())
    with pytest.raises(TypeError):
        m.to(np.int32)


# --------------------------------------------------------------------- state dict
def test_state_dict_is_a_copy_including_buffers():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    state = model.state_dict()
    assert list(state) == [
        "0.weight",
        "0.bias",
        "1.weight",
        "1.bias",
        "1.running_mean",
        "1.running_var",
        "1.num_batches_tracked",
    ]
    assert all(isinstance(v, np.ndarray) for v in state.values())
    state["0.weight"][...] = 123
    assert not np.any(model[0].weight.data == 123)


def test_state_dict_round_trip_gives_identical_outputs():
    a = nn.Sequential(nn.Linear(3, 4, rng=0), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 2, rng=1))
    a(cr.tensor(np.random.default_rng(0).standard_normal((6, 3)).astype(np.float32)))  # move running stats
    b = nn.Sequential(nn.Linear(3, 4, rng=5), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 2, rng=6))
    params_before = [id(p) for p in b.parameters()]
    result = b.load_state_dict(a.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert [id(p) for p in b.parameters()] == params_before
    a.eval()
    b.eval()
    x = cr.tensor(np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32))
    np.testing.assert_array_equal(a(x).data, b(x).data)
    np.testing.assert_array_equal(b[1].num_batches_tracked.data, 1)


def test_load_state_dict_errors_name_keys_and_shapes():
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    state = model.state_dict()
    del state["1.bias"]
    state["2.weight"] = np.zeros(3)
    with pytest.raises(nn.StateDictKeyError) as info:
        model.load_state_dict(state)
    msg = str(info.value)
    assert "missing keys: '1.bias'" in msg and "unexpected keys: '2.weight'" in msg
    assert isinstance(info.value, KeyError)
    result = model.load_state_dict(state, strict=False)
    assert result == (["1.bias"], ["2.weight"])

    bad = model.state_dict()
    bad["0.weight"] = np.zeros((2, 3), np.float32)
    original = model[0].weight.data.copy()
    with pytest.raises(ValueError, match=r"'0.weight': expected shape \(3, 2\), got shape \(2, 3\)"):
        model.load_state_dict(bad)
    np.testing.assert_array_equal(model[0].weight.data, original)  # nothing changed
    with pytest.raises(TypeError):
        model.load_state_dict([1, 2])


def test_load_state_dict_converts_to_the_parameter_dtype_and_accepts_tensors():
    model = nn.Linear(2, 2)
    state = {"weight": cr.tensor(np.ones((2, 2))), "bias": np.zeros(2)}
    model.load_state_dict(state)
    assert model.weight.dtype == np.float32
    np.testing.assert_array_equal(model.weight.data, 1)


# --------------------------------------------------------------------- containers
def test_sequential_container_behaviour():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    assert len(seq) == 2 and isinstance(seq[0], nn.Linear) and isinstance(seq[-1], nn.ReLU)
    assert isinstance(seq[:1], nn.Sequential) and len(seq[:1]) == 1
    seq.append(nn.Linear(3, 1))
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]
    assert seq(cr.tensor(np.ones((4, 2), np.float32))).shape == (4, 1)
    with pytest.raises(IndexError):
        seq[5]
    with pytest.raises(TypeError):
        nn.Sequential(nn.ReLU(), "relu")
    named = nn.Sequential({"fc": nn.Linear(2, 2), "act": nn.ReLU()})
    assert [n for n, _ in named.named_parameters()] == ["fc.weight", "fc.bias"]


def test_module_list_behaviour():
    layers = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)])
    layers.append(nn.Linear(2, 1))
    assert len(layers) == 3 and [n for n, _ in layers.named_parameters()][-1] == "2.bias"
    layers[0] = nn.Linear(2, 2, bias=False)
    assert next(n for n, _ in layers.named_parameters()) == "0.weight"
    layers.insert(0, nn.Identity())
    assert isinstance(layers[0], nn.Identity) and len(layers) == 4
    with pytest.raises(NotImplementedError):
        layers(cr.tensor([1.0]))


# --------------------------------------------------------------------- repr and config
def test_repr_reads_like_pytorch():
    model = nn.Sequential(nn.Linear(784, 25), nn.Sigmoid(), nn.Dropout(0.2), nn.BatchNorm1d(25), nn.Linear(25, 10))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=784, out_features=25, bias=True)\n"
        "  (1): Sigmoid()\n"
        "  (2): Dropout(p=0.2)\n"
        "  (3): BatchNorm1d(25, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
        "  (4): Linear(in_features=25, out_features=10, bias=True)\n"
        ")"
    )
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    text = repr(nn.MLP([4, 3, 2], activation="tanh"))
    assert text.startswith(
        "MLP(\n  sizes=[4, 3, 2], activation='tanh', output_activation=None\n  (layers): ModuleList("
    )
    assert "    (0): Linear(in_features=4, out_features=3, bias=True)" in text


BUILT_INS = [
    nn.Linear(3, 2, bias=False),
    nn.Maxout(3, 2, pieces=3),
    nn.MLP([3, 4, 2], "sigmoid", "softmax"),
    nn.Sigmoid(),
    nn.Tanh(),
    nn.ReLU(),
    nn.LeakyReLU(0.3),
    nn.PReLU(3, init=0.1),
    nn.ELU(0.7),
    nn.Softplus(2.0),
    nn.GELU(),
    nn.Identity(),
    nn.Softmax(0),
    nn.LogSoftmax(),
    nn.Flatten(),
    nn.BatchNorm1d(3, momentum=None),
    nn.Dropout(0.25),
    nn.LPPool(2.0, axis=0),
    nn.LogAvgPool(3.0),
    nn.Sequential(nn.Linear(3, 3), nn.ReLU()),
    nn.ModuleList([nn.Linear(1, 1)]),
    nn.MSELoss("half_sum"),
    nn.CrossEntropyLoss(weight=[1.0, 2.0]),
    nn.MultiMarginLoss(margin=2.0),
]


@pytest.mark.parametrize("module", BUILT_INS, ids=lambda m: type(m).__name__)
def test_config_rebuilds_every_built_in(module):
    config = module.get_config()
    assert config["type"] == type(module).__name__
    rebuilt = nn.from_config(config)
    assert type(rebuilt) is type(module)
    assert rebuilt.get_config() == config
    assert repr(rebuilt) == repr(module)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in module.state_dict().items()}


def test_custom_modules_need_get_config_and_registration():
    with pytest.raises(NotImplementedError, match="get_config"):
        TwoLayer().get_config()
    with pytest.raises(ValueError, match="unknown module type 'Nope'"):
        nn.from_config({"type": "Nope"})

    @nn.register_module
    class Scaled(nn.Module):
        def __init__(self, factor: float):
            super().__init__()
            self.factor = factor

        def forward(self, x):
            return x * self.factor

        def get_config(self):
            return {"type": "Scaled", "factor": self.factor}

    rebuilt = nn.from_config(nn.Sequential(Scaled(3.0)).get_config())
    assert rebuilt[0].factor == 3.0


def test_deepcopy_gives_an_independent_model():
    model = nn.MLP([3, 4, 2], rng=0)
    twin = copy.deepcopy(model)
    assert type(twin.layers[0].weight) is nn.Parameter and twin.layers[0].weight is not model.layers[0].weight
    twin.layers[0].weight.data[...] = 0
    assert np.any(model.layers[0].weight.data != 0)


# --------------------------------------------------------------------- the docs are executed


def test_docs_nn_code_runs(capsys):
    run_doc("nn.md")
    printed = capsys.readouterr().out
    assert "(0): Linear(in_features=2, out_features=3, bias=True)" in printed


def test_docs_io_code_runs():
    run_doc("io.md")


def test_module_calls_are_recorded_on_their_output_node_until_backward():
    import chainrule as cr

    model = nn.MLP([3, 4, 1], rng=0)
    x = cr.tensor(np.ones((2, 3)))
    out = model(x)
    module, args = out.grad_fn.scope
    assert module is model.layers[1] and args[0] is not x  # innermost call: the last Linear
    hidden = args[0]
    assert hidden.grad_fn.scope[0] is model.activations[0]
    kept = model(x)
    kept.sum().backward(retain_graph=True)
    assert kept.grad_fn.scope is not None  # a kept graph keeps it (for drawing)
    out.sum().backward()
    assert out.grad_fn.scope is None  # released with the node's inputs: no activation kept alive
