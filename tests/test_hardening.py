"""Regression tests for what was found by using chainrule as a careless or hostile user would:
each case names the mistake and checks the one clear error (or warning) it now gets."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim
from chainrule.autograd.compile import CompileError


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


def test_a_grad_of_the_wrong_shape_is_refused_or_named_at_backward():
    w = cr.tensor(np.ones(3), requires_grad=True, name="w")
    with pytest.raises(RuntimeError, match=r"gradient of shape \(4,\) to the tensor 'w' of shape \(3,\)"):
        w.grad = cr.zeros(4, dtype=np.float64)  # as in PyTorch: refused when assigned
    w.grad = cr.zeros(3, dtype=np.float64)
    w.grad.data = np.zeros(4)  # its array swapped by hand: named at backward
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


# --------------------------------------------------------------------- compile
def test_compiled_step_follows_a_replaced_parameter():
    layer = nn.Linear(3, 1, rng=0, dtype="float64")
    x = cr.tensor(np.ones((2, 3)))

    @cr.compile
    def step(inputs):
        return layer(inputs).sum()

    step(x), step(x)  # traced, then replayed
    layer.weight = nn.Parameter(np.full((1, 3), 2.0))
    loss = step(x)
    assert loss.item() == pytest.approx(2 * 2.0 * 3 + 2 * layer.bias.data[0])
    loss.backward()
    np.testing.assert_array_equal(layer.weight.grad, [[2.0, 2.0, 2.0]])  # the new parameter gets it
    again = step(x)  # and the new trace replays
    assert again.item() == loss.item()


def test_compile_refuses_what_it_cannot_capture_at_once():
    with pytest.raises(TypeError, match="expected a function"):
        cr.compile(5)
    with pytest.raises(CompileError, match="got float"):
        cr.compile(lambda t: 5.0)(cr.tensor([1.0]))
    with pytest.raises(CompileError, match="got nothing"):
        cr.compile(lambda t: ())(cr.tensor([1.0]))


# --------------------------------------------------------------------- model files
def _rewrite_metadata(path, **changes):
    """Rewrite a safetensors file's metadata (outside the checksum, as a tamperer would)."""
    import json

    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    header["__metadata__"].update(changes)
    new = json.dumps(header).encode()
    path.write_bytes(len(new).to_bytes(8, "little") + new + raw[8 + n :])


def _saved_mlp(tmp_path, sizes=(64, 20, 20, 10)):
    path = tmp_path / "model.safetensors"
    cr.save(nn.MLP(list(sizes), rng=0), path)
    return path


def test_a_config_claiming_huge_layers_is_refused_before_building(tmp_path, monkeypatch):
    import json

    path = _saved_mlp(tmp_path)
    config = cr.io.read_metadata(path)["config"]
    config["sizes"] = [64, 20000, 20000, 10]
    _rewrite_metadata(path, config=json.dumps(config))
    built = []
    monkeypatch.setattr(nn, "from_config", lambda c: built.append(c))
    with pytest.raises(cr.io.ModelFileError, match="names a size of 20000, but no stored tensor has that dimension"):
        cr.load(path)
    assert built == []  # nothing was built (or allocated)


def test_unknown_format_version_is_refused(tmp_path):
    path = _saved_mlp(tmp_path)
    _rewrite_metadata(path, format_version="99")
    with pytest.raises(cr.io.ModelFileError, match="format_version '99' is not one this chainrule reads"):
        cr.load(path)


def test_the_header_is_checked_before_the_data_is_read(tmp_path, monkeypatch):
    from pathlib import Path

    path = tmp_path / "big.safetensors"
    path.write_bytes((10**12).to_bytes(8, "little") + b"{}" + b"\0" * 100)
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("the whole file was read"))
    with pytest.raises(cr.io.ModelFileError, match="header claims 1000000000000 bytes"):
        cr.load(path)


def test_nan_weights_load_with_a_warning(tmp_path):
    model = nn.MLP([2, 3, 1], rng=0)
    model.layers[0].weight.data[0, 0] = np.nan
    path = tmp_path / "m.safetensors"
    cr.save(model, path)
    with pytest.warns(RuntimeWarning, match="NaN or infinite values"):
        loaded = cr.load(path)
    assert np.isnan(loaded.layers[0].weight.data[0, 0])


# --------------------------------------------------------------------- chainrule train keeps the previous run
def _train(out, *extra):
    from chainrule import cli

    return cli.main(["train", "--data", "xor", "--hidden", "4", "--epochs", "2", "--quiet", "--no-plots",
                     "--out", str(out), *extra])  # fmt: skip


def test_a_failed_save_leaves_the_previous_run_whole(tmp_path, monkeypatch, capsys):
    import chainrule.io as io

    out = tmp_path / "run"
    assert _train(out) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real = io._write_all
    calls = []

    def fail_on_second(f, data):  # the model's temporary is complete, then the metrics' write fails
        calls.append(len(data))
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(f, data)

    monkeypatch.setattr(io, "_write_all", fail_on_second)
    assert _train(out, "--seed", "3") == 2
    assert "No space left on device" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no temporaries, nothing replaced


def test_the_output_folder_is_checked_before_training(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert _train(blocker / "run") == 2
    captured = capsys.readouterr()
    assert "cannot write to" in captured.err and "final train" not in captured.out


def test_atomic_write_many_replaces_nothing_until_all_are_complete(tmp_path):
    import chainrule.io as io

    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_bytes(b"old a")
    with pytest.raises(FileNotFoundError):
        io.atomic_write_many({a: b"new a", tmp_path / "missing" / "b.txt": b"new b"})
    assert a.read_bytes() == b"old a" and sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
    io.atomic_write_many({a: b"new a", b: b"new b"})
    assert (a.read_bytes(), b.read_bytes()) == (b"new a", b"new b")


def test_xor_says_it_tests_on_its_training_points(tmp_path, capsys):
    assert _train(tmp_path / "run") == 0
    assert "4 train, 4 test (the same 4 points" in capsys.readouterr().out


# --------------------------------------------------------------------- predict distrusts the training record
@pytest.mark.parametrize(
    "change,message",
    [
        ({"test_size": "lots"}, "test_size = 'lots'"),
        ({"split_seed": -4}, "split_seed = '-4'"),
        ({"data": "imagenet"}, "data = 'imagenet'"),
        ({"data_options": {"n": 10**12}}, "data_options"),
        ({"loss": "telepathy"}, "loss = 'telepathy'"),
        ({"standardizer": {"mean": [1.0], "std": "x"}}, "standardizer"),
        ({"val_size": 3}, "val_size = '3'"),
    ],
)
def test_predict_refuses_a_tampered_training_record(tmp_path, capsys, change, message):
    import json

    from chainrule import cli

    out = tmp_path / "run"
    assert _train(out) == 0
    model = out / "model.safetensors"
    record = cr.io.read_metadata(model)["user"]
    _rewrite_metadata(model, user=json.dumps({**record, **change}))
    capsys.readouterr()
    assert cli.main(["predict", "--model", str(model)]) == 2
    err = capsys.readouterr().err
    assert "training record" in err and message in err and len(err.strip().splitlines()) == 1


def test_predict_refuses_data_with_other_classes(tmp_path, capsys):
    from chainrule import cli

    out = tmp_path / "run"
    assert cli.main(["train", "--data", "three_class", "--hidden", "4", "--epochs", "1", "--quiet", "--no-plots",
                     "--out", str(out)]) == 0  # fmt: skip
    capsys.readouterr()
    code = cli.main(["predict", "--model", str(out / "model.safetensors"), "--data", "moons"])
    assert code == 2 and "predicts 3 classes but the moons data set has 2" in capsys.readouterr().err
