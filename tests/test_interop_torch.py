"""chainrule <-> PyTorch: the same model in both engines computes the same thing, with the same state_dict keys."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.interop import UnsupportedLayerError, from_torch, to_torch

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
TOL = {np.float32: 1e-5, np.float64: 1e-6}


def _architectures(dtype):
    """(name, model, input shape): every layer that interop supports appears at least once."""
    return {
        "mlp-prelu-logsoftmax": (
            nn.MLP([6, 8, 5, 3], activation="prelu", output_activation="log_softmax", dtype=dtype, rng=1),
            (9, 6),
        ),
        "mlp-tanh-softmax-nobias": (
            nn.MLP([6, 7, 4], activation="tanh", output_activation="softmax", bias=False, dtype=dtype, rng=2),
            (9, 6),
        ),
        "sequential-every-activation": (
            nn.Sequential(
                nn.Linear(6, 10, dtype=dtype, rng=3),
                nn.BatchNorm1d(10, dtype=dtype),
                nn.ReLU(),
                nn.Dropout(0.0),
                nn.Maxout(10, 8, pieces=3, dtype=dtype, rng=4),
                nn.ELU(0.7),
                nn.Linear(8, 8, dtype=dtype, rng=5),
                nn.Softplus(2.0),
                nn.GELU(),
                nn.PReLU(8, init=0.1, dtype=dtype),
                nn.LeakyReLU(0.2),
                nn.Linear(8, 4, dtype=dtype, rng=6),
                nn.Sigmoid(),
            ),
            (9, 6),
        ),
        "flatten-batchnorm-3d": (
            nn.Sequential(
                nn.BatchNorm1d(3, momentum=None, dtype=dtype),
                nn.PReLU(3, dtype=dtype),
                nn.Flatten(),
                nn.Linear(12, 5, dtype=dtype, rng=7),
                nn.Tanh(),
                nn.Identity(),
            ),
            (9, 3, 4),
        ),
    }


ARCHS = list(_architectures(np.float32))


def _build(name, dtype):
    model, shape = _architectures(dtype)[name]
    # non-trivial running statistics and PReLU slopes, so that copying them matters
    rng = np.random.default_rng(0)
    for key, t in model.state_dict().items():
        if key.endswith(("running_mean", "running_var")):
            model.load_state_dict({key: rng.uniform(0.5, 1.5, t.shape)}, strict=False)
    x = (rng.normal(size=shape) * 2).astype(dtype)
    return model, x


def _torch_grads(tmodel):
    return {k: p.grad.numpy() for k, p in tmodel.named_parameters()}


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("arch", ARCHS)
def test_to_torch_computes_the_same_outputs_gradients_and_state(arch, training, dtype) -> None:
    model, x = _build(arch, dtype)
    model.train(training)
    tmodel = to_torch(model)
    tol = TOL[dtype]

    assert list(tmodel.state_dict()) == list(model.state_dict())
    assert all(t.training == training for t in tmodel.modules())
    for key, value in model.state_dict().items():
        assert tmodel.state_dict()[key].numpy().dtype == value.dtype, key

    out = model(cr.tensor(x))
    ref = tmodel(torch.from_numpy(x))
    assert ref.dtype == torch.from_numpy(np.zeros(0, dtype)).dtype
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=tol, atol=tol)

    upstream = np.random.default_rng(1).normal(size=out.shape).astype(dtype)
    out.backward(upstream)
    ref.backward(torch.from_numpy(upstream))
    grads = _torch_grads(tmodel)
    for key, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, grads[key], rtol=tol, atol=tol, err_msg=f"gradient of {key}")

    # training mode updated the running statistics (and num_batches_tracked) identically
    after = {k: v.numpy() for k, v in tmodel.state_dict().items()}
    for key, value in model.state_dict().items():
        np.testing.assert_allclose(value, after[key], rtol=tol, atol=tol, err_msg=key)


@pytest.mark.parametrize("arch", ARCHS)
def test_round_trip_chainrule_torch_chainrule_is_exact(arch) -> None:
    model, x = _build(arch, np.float64)
    model.eval()
    back = from_torch(to_torch(model))
    assert type(back) is type(model)
    assert back.get_config() == model.get_config()
    state, again = model.state_dict(), back.state_dict()
    assert list(again) == list(state)
    for key in state:
        assert again[key].dtype == state[key].dtype and np.array_equal(again[key], state[key]), key
    assert not back.training
    np.testing.assert_array_equal(back(cr.tensor(x)).data, model(cr.tensor(x)).data)


def test_from_torch_reads_a_model_written_in_torch(tmp_path) -> None:
    torch.manual_seed(0)
    tmodel = torch.nn.Sequential(
        torch.nn.Linear(5, 16),
        torch.nn.BatchNorm1d(16),
        torch.nn.PReLU(),
        torch.nn.Dropout(0.3),
        torch.nn.Linear(16, 16),
        torch.nn.GELU(approximate="tanh"),
        torch.nn.Linear(16, 4),
        torch.nn.LogSoftmax(dim=1),
    )
    x = torch.randn(32, 5)
    for _ in range(3):  # move the running statistics away from their initial values
        tmodel(x)
    tmodel.eval()
    model = from_torch(tmodel)
    assert isinstance(model, nn.Sequential) and not model.training
    assert [type(m).__name__ for m in model] == [
        "Linear",
        "BatchNorm1d",
        "PReLU",
        "Dropout",
        "Linear",
        "GELU",
        "Linear",
        "LogSoftmax",
    ]
    assert model[3].p == pytest.approx(0.3)
    assert int(model[1].num_batches_tracked.data) == 3
    np.testing.assert_allclose(model(cr.tensor(x.numpy())).data, tmodel(x).detach().numpy(), rtol=1e-5, atol=1e-5)
    # and chainrule saves what came from torch, with its architecture
    again = cr.load(cr.save(model, tmp_path / "from_torch.safetensors"))
    np.testing.assert_array_equal(again(cr.tensor(x.numpy())).data, model(cr.tensor(x.numpy())).data)


def test_dropout_keeps_its_rate_and_mode_and_is_the_identity_in_eval() -> None:
    model = nn.Sequential(nn.Linear(4, 50, rng=0), nn.Dropout(0.5), nn.Linear(50, 2, rng=1))
    tmodel = to_torch(model)
    assert isinstance(tmodel[1], torch.nn.Dropout) and tmodel[1].p == 0.5 and tmodel[1].training
    x = np.random.default_rng(0).normal(size=(200, 4)).astype(np.float32)
    # training mode: each engine draws its own mask; about half the hidden units are zeroed, survivors scaled by 2
    hidden = tmodel[1](tmodel[0](torch.from_numpy(x))).detach().numpy()
    plain = tmodel[0](torch.from_numpy(x)).detach().numpy()
    kept = hidden != 0
    assert 0.45 < kept.mean() < 0.55
    np.testing.assert_allclose(hidden[kept], 2 * plain[kept], rtol=1e-6)
    model.eval()
    tmodel = to_torch(model)
    np.testing.assert_allclose(model(cr.tensor(x)).data, tmodel(torch.from_numpy(x)).detach().numpy(), atol=1e-5)


def test_frozen_parameters_stay_frozen() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    model[0].requires_grad_(False)
    tmodel = to_torch(model)
    assert {k: p.requires_grad for k, p in tmodel.named_parameters()} == {
        "0.weight": False,
        "0.bias": False,
        "2.weight": True,
        "2.bias": True,
    }
    back = from_torch(tmodel)
    assert [p.requires_grad for p in back.parameters()] == [False, False, True, True]


# ------------------------------------------------------------------ the model file loads into torch as is
def test_model_safetensors_loads_into_the_same_torch_architecture(tmp_path) -> None:
    from safetensors.torch import load_file

    model = nn.Sequential(nn.Linear(4, 8, rng=0), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3, rng=1))
    x = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    model(cr.tensor(x))  # a training-mode step: the running statistics and num_batches_tracked move
    model.eval()
    path = cr.save(model, tmp_path / "model.safetensors")

    tmodel = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    tensors = load_file(path)
    batchnorm = ["1.weight", "1.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked"]
    assert sorted(tensors) == sorted(["0.weight", "0.bias", *batchnorm, "3.weight", "3.bias"])
    result = tmodel.load_state_dict(tensors)  # strict: no key renamed, none missing
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert int(tmodel[1].num_batches_tracked) == 1
    tmodel.eval()
    np.testing.assert_allclose(model(cr.tensor(x)).data, tmodel(torch.from_numpy(x)).detach().numpy(), atol=1e-6)


def test_an_mlp_file_loads_into_its_torch_counterpart(tmp_path) -> None:
    from safetensors.torch import load_file, save_file

    model = nn.MLP([5, 6, 3], activation="prelu", output_activation="softmax", rng=0)
    model.activations[0].weight.data[...] = 0.05
    path = cr.save(model, tmp_path / "mlp.safetensors")
    tmodel = to_torch(nn.MLP([5, 6, 3], activation="prelu", output_activation="softmax", rng=99))
    tmodel.load_state_dict(load_file(path))
    x = np.random.default_rng(0).normal(size=(7, 5)).astype(np.float32)
    np.testing.assert_allclose(model(cr.tensor(x)).data, tmodel(torch.from_numpy(x)).detach().numpy(), atol=1e-6)

    # and back: a file written by torch loads into chainrule with load_weights
    save_file(tmodel.state_dict(), tmp_path / "torch.safetensors")
    fresh = nn.MLP([5, 6, 3], activation="prelu", output_activation="softmax", rng=7)
    cr.io.load_weights(fresh, tmp_path / "torch.safetensors")
    np.testing.assert_array_equal(fresh(cr.tensor(x)).data, model(cr.tensor(x)).data)


# ------------------------------------------------------------------ errors name the layer
def test_an_unsupported_chainrule_layer_is_named_with_its_position() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.Sequential(nn.ReLU(), nn.LPPool(2.0)))
    with pytest.raises(UnsupportedLayerError, match=r"to_torch: unsupported layer LPPool at '1\.1'"):
        to_torch(model)

    class Custom(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(UnsupportedLayerError, match="unsupported layer Custom"):
        to_torch(Custom())
    with pytest.raises(TypeError, match=r"expected a chainrule\.nn\.Module"):
        to_torch(torch.nn.Linear(2, 2))


def test_an_unsupported_torch_layer_is_named_with_its_position() -> None:
    with pytest.raises(UnsupportedLayerError, match=r"from_torch: unsupported layer Conv1d at '1'"):
        from_torch(torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Conv1d(1, 1, 3)))
    with pytest.raises(UnsupportedLayerError, match=r"GELU\(approximate='none'\)"):
        from_torch(torch.nn.GELU())
    with pytest.raises(UnsupportedLayerError, match="bfloat16"):
        from_torch(torch.nn.Linear(2, 2).to(torch.bfloat16))

    class Subclass(torch.nn.Linear):  # its own forward could do anything
        pass

    with pytest.raises(UnsupportedLayerError, match="unsupported layer Subclass"):
        from_torch(Subclass(2, 2))


def test_importing_chainrule_interop_imports_neither_torch_nor_onnx() -> None:
    code = (
        "import sys, chainrule, chainrule.interop\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'onnx', 'onnxruntime', 'safetensors')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_a_missing_torch_is_one_clear_import_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"pip install 'chainrule\[interop\]'"):
        to_torch(nn.Linear(2, 2))
