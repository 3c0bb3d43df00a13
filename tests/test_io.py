"""save/load: round trips, atomic writes, and clear errors for broken or foreign files."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import safetensors.numpy

import chainrule as cr
from chainrule import io, nn

X = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)


def outputs(model, x=X):
    with cr.no_grad():
        return model(cr.tensor(x)).data


def test_mlp_round_trip_gives_identical_outputs(tmp_path):
    model = nn.MLP([4, 8, 3], activation="sigmoid", output_activation="softmax", rng=0)
    path = cr.save(model, tmp_path / "mlp.safetensors")
    assert path == tmp_path / "mlp.safetensors" and sorted(os.listdir(tmp_path)) == ["mlp.safetensors"]
    loaded = cr.load(path)
    assert type(loaded) is nn.MLP and repr(loaded) == repr(model)
    np.testing.assert_array_equal(outputs(loaded), outputs(model))
    for (name, p), (name2, q) in zip(model.named_parameters(), loaded.named_parameters()):
        assert name == name2 and p.dtype == q.dtype and np.array_equal(p.data, q.data) and q.requires_grad


def test_sequential_with_buffers_dtype_and_mode_round_trip(tmp_path):
    model = nn.Sequential(
        nn.Linear(4, 5, rng=1),
        nn.BatchNorm1d(5),
        nn.PReLU(5),
        nn.Dropout(0.1),
        nn.Maxout(5, 3, pieces=2, rng=2),
        nn.LogAvgPool(2.0, axis=1, keepdims=True),
    ).double()
    model(cr.tensor(X.astype(np.float64)))  # move BatchNorm's running statistics
    model.eval()
    loaded = io.load(io.save(model, tmp_path / "seq.safetensors"))
    assert not loaded.training
    assert loaded[1].num_batches_tracked.data == 1
    np.testing.assert_array_equal(loaded[1].running_var.data, model[1].running_var.data)
    assert all(p.dtype == np.float64 for p in loaded.parameters())
    x64 = X.astype(np.float64)
    np.testing.assert_array_equal(outputs(loaded, x64), outputs(model, x64))


def test_loading_needs_none_of_the_code_that_built_the_model(tmp_path):
    path = tmp_path / "model.safetensors"
    io.save(nn.Sequential(nn.Linear(4, 3, rng=0), nn.Tanh(), nn.Linear(3, 2, rng=1)), path)
    np.save(tmp_path / "x.npy", X)
    expected = outputs(io.load(path))
    script = textwrap.dedent(f"""
        import numpy as np, chainrule
        model = chainrule.load({str(path)!r})
        print(repr(model.get_config()["type"]))
        np.save({str(tmp_path / "y.npy")!r}, model(chainrule.tensor(np.load({str(tmp_path / "x.npy")!r}))).data)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "'Sequential'"
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), expected)


def test_metadata_records_format_and_config(tmp_path):
    model = nn.MLP([2, 3, 1], activation="tanh", rng=0)
    path = io.save(model, tmp_path / "m.safetensors", metadata={"epochs": 3, "note": "xor"})
    meta = io.read_metadata(path)
    assert meta["format"] == "chainrule" and meta["format_version"] == "1"
    assert meta["config"] == model.get_config() and meta["user"] == {"epochs": 3, "note": "xor"}
    assert meta["chainrule_version"] == cr.__version__
    # an ordinary safetensors file: any safetensors reader sees the same tensors
    plain = safetensors.numpy.load_file(str(path))
    assert set(plain) == set(model.state_dict())


# --------------------------------------------------------------------- weights only
class Custom(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(4, 2, rng=0)

    def forward(self, x):
        return self.body(x) * 2


def test_weights_only_for_custom_modules(tmp_path):
    model = Custom()
    with pytest.raises(TypeError, match="weights_only=True"):
        io.save(model, tmp_path / "c.safetensors")
    assert not (tmp_path / "c.safetensors").exists()
    path = io.save(model, tmp_path / "c.safetensors", weights_only=True)
    other = Custom()
    other.body.weight.data[...] = 0
    assert io.load_weights(other, path) == ([], [])
    np.testing.assert_array_equal(outputs(other), outputs(model))
    with pytest.raises(io.ModelFileError, match="weights only"):
        io.load(path)
    state = io.load_state_dict(path)
    assert set(state) == {"body.weight", "body.bias"} and state["body.weight"].flags.writeable


def test_save_a_state_dict_and_load_weights_strictness(tmp_path):
    model = nn.Linear(4, 2, rng=0)
    path = io.save(model.state_dict(), tmp_path / "w.safetensors")
    with pytest.raises(KeyError, match="unexpected keys: 'bias'"):
        io.load_weights(nn.Linear(4, 2, bias=False), path)
    with pytest.raises(KeyError, match=r"missing keys: '0\.weight', '0\.bias'"):
        io.load_weights(nn.Sequential(nn.Linear(4, 2)), path)
    result = io.load_weights(nn.Linear(4, 2, bias=False), path, strict=False)
    assert result.unexpected_keys == ["bias"]
    with pytest.raises(ValueError, match=r"'weight': expected shape \(3, 4\), got shape \(2, 4\)"):
        io.load_weights(nn.Linear(4, 3), path)


# --------------------------------------------------------------------- atomic writes
def test_a_crash_midway_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    io.save(nn.Linear(4, 2, rng=0), path)
    before = path.read_bytes()

    def crashing_write(fileobj, data):
        fileobj.write(data[: len(data) // 2])
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(io, "_write_all", crashing_write)
    with pytest.raises(OSError, match="simulated"):
        io.save(nn.Linear(4, 2, rng=1), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.safetensors"]  # no temp file left behind
    with pytest.raises(OSError):
        io.save(nn.Linear(4, 2), tmp_path / "new.safetensors")
    assert os.listdir(tmp_path) == ["model.safetensors"]  # and no half-written new file


def test_overwrite_replaces_the_file(tmp_path):
    path = tmp_path / "m.safetensors"
    io.save(nn.Linear(4, 2, rng=0), path)
    second = nn.Linear(4, 2, rng=1)
    io.save(second, path)
    np.testing.assert_array_equal(io.load(path).weight.data, second.weight.data)
    assert os.listdir(tmp_path) == ["m.safetensors"]


# --------------------------------------------------------------------- broken and foreign files
@pytest.fixture
def saved(tmp_path):
    path = io.save(nn.MLP([4, 3, 2], rng=0), tmp_path / "good.safetensors")
    return path, path.read_bytes()


def _expect_model_file_error(path, match):
    with pytest.raises(io.ModelFileError, match=match) as info:
        io.load(path)
    assert isinstance(info.value, ValueError)
    assert str(path) in str(info.value) and info.value.path == str(path)


@pytest.mark.parametrize("keep", [0, 5, 100, -10, -1])
def test_truncated_file(saved, keep):
    path, data = saved
    path.write_bytes(data[:keep])
    _expect_model_file_error(path, "truncated|too short|not a safetensors")


def test_random_bytes_file(tmp_path):
    path = tmp_path / "noise.safetensors"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    _expect_model_file_error(path, "not a safetensors file")


def test_corrupted_tensor_bytes_are_detected(saved):
    path, data = saved
    corrupted = bytearray(data)
    corrupted[-3] ^= 0xFF
    path.write_bytes(bytes(corrupted))
    _expect_model_file_error(path, "checksum")


def test_corrupted_header(saved):
    path, data = saved
    path.write_bytes(data[:9] + b"X" + data[10:])  # break the JSON header
    _expect_model_file_error(path, "not a safetensors file|corrupted")


def test_foreign_safetensors_file(tmp_path):
    path = tmp_path / "foreign.safetensors"
    safetensors.numpy.save_file({"weight": np.zeros((2, 2), np.float32)}, str(path))
    _expect_model_file_error(path, "without chainrule metadata")
    assert set(io.load_state_dict(path)) == {"weight"}  # its tensors are still readable


def test_bad_config_in_metadata(tmp_path):
    path = tmp_path / "odd.safetensors"
    meta = {"format": "chainrule", "format_version": "1", "config": '{"type": "Transformer"}'}
    safetensors.numpy.save_file({"w": np.zeros(2, np.float32)}, str(path), metadata=meta)
    _expect_model_file_error(path, "cannot rebuild the architecture")
    meta["config"] = '{"type": "Linear", "in_features": 3, "out_features": 1}'
    safetensors.numpy.save_file({"w": np.zeros(2, np.float32)}, str(path), metadata=meta)
    _expect_model_file_error(path, "do not fit the architecture")


def test_missing_file_or_folder_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        io.load(tmp_path / "absent.safetensors")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        io.save(nn.Linear(1, 1), tmp_path / "no" / "such" / "m.safetensors")
