"""chainrule -> ONNX -> onnxruntime: the exported graph computes what the chainrule model computes."""

from __future__ import annotations

import contextlib
import io
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule import cli, nn
from chainrule.interop import UnsupportedLayerError, build_onnx, to_onnx

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parents[1]
TOL = {np.float32: 1e-5, np.float64: 1e-6}


def _architectures(dtype):
    return {
        "mlp-relu": (nn.MLP([6, 8, 5, 3], activation="relu", dtype=dtype, rng=1), (9, 6)),
        "mlp-prelu-logsoftmax": (
            nn.MLP([6, 8, 3], activation="prelu", output_activation="log_softmax", dtype=dtype, rng=2),
            (9, 6),
        ),
        "mlp-gelu-softmax-nobias": (
            nn.MLP([6, 7, 4], activation="gelu", output_activation="softmax", bias=False, dtype=dtype, rng=3),
            (9, 6),
        ),
        "sequential-every-activation": (
            nn.Sequential(
                nn.Linear(6, 10, dtype=dtype, rng=4),
                nn.BatchNorm1d(10, dtype=dtype),
                nn.ReLU(),
                nn.Dropout(0.5),
                nn.Maxout(10, 8, pieces=3, dtype=dtype, rng=5),
                nn.ELU(0.7),
                nn.Linear(8, 8, dtype=dtype, rng=6),
                nn.Softplus(2.0),
                nn.Softplus(),
                nn.PReLU(8, init=0.1, dtype=dtype),
                nn.LeakyReLU(0.2),
                nn.Linear(8, 4, dtype=dtype, rng=7),
                nn.Tanh(),
                nn.Sigmoid(),
            ),
            (9, 6),
        ),
        "flatten-batchnorm-3d": (
            nn.Sequential(
                nn.BatchNorm1d(3, affine=False, dtype=dtype),
                nn.PReLU(3, dtype=dtype),
                nn.Flatten(),
                nn.Linear(12, 5, dtype=dtype, rng=8),
                nn.Identity(),
            ),
            (9, 3, 4),
        ),
        "linear-on-3d-then-partial-flatten": (
            nn.Sequential(nn.Linear(4, 5, dtype=dtype, rng=9), nn.GELU(), nn.Flatten(1, 2), nn.LogSoftmax()),
            (9, 3, 4),
        ),
    }


ARCHS = list(_architectures(np.float32))


def _build(name, dtype):
    model, shape = _architectures(dtype)[name]
    rng = np.random.default_rng(0)
    for key, t in model.state_dict().items():
        if key.endswith(("running_mean", "running_var")):
            model.load_state_dict({key: rng.uniform(0.5, 1.5, t.shape)}, strict=False)
    x = (rng.normal(size=shape) * 3).astype(dtype)
    return model, x


def _run(model_proto_or_path, x):
    source = model_proto_or_path if isinstance(model_proto_or_path, str) else model_proto_or_path.SerializeToString()
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def _expected(model, x):
    model.eval()
    with cr.no_grad():
        return model(cr.tensor(x)).data


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("arch", ARCHS)
def test_onnxruntime_computes_the_chainrule_outputs(arch, dtype) -> None:
    model, x = _build(arch, dtype)
    proto = build_onnx(model, x)
    want = _expected(model, x)
    got = _run(proto, x)
    assert got.dtype == dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=TOL[dtype], atol=TOL[dtype])
    # the batch axis is dynamic: one row, and a batch larger than the example
    big = np.concatenate([x, x[::-1], x])
    np.testing.assert_allclose(_run(proto, big), _expected(model, big), rtol=TOL[dtype], atol=TOL[dtype])
    np.testing.assert_allclose(_run(proto, x[:1]), want[:1], rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("opset", [18, 20])
def test_opsets_18_and_20_both_run(opset) -> None:
    model, x = _build("mlp-gelu-softmax-nobias", np.float32)
    proto = build_onnx(model, x, opset=opset)
    assert proto.opset_import[0].version == opset
    ops = {n.op_type for n in proto.graph.node}
    assert ("Gelu" in ops) == (opset >= 20)
    np.testing.assert_allclose(_run(proto, x), _expected(model, x), rtol=1e-5, atol=1e-5)


def test_the_graph_has_named_input_output_a_batch_dimension_and_named_weights() -> None:
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2))
    proto = build_onnx(model, np.zeros((5, 4), np.float32))
    onnx.checker.check_model(proto, full_check=True)
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert inp.name == "input" and out.name == "output"
    dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
    assert dims(inp) == ["batch", 4] and dims(out) == ["batch", 2]
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert proto.opset_import[0].version == 20
    assert [n.op_type for n in proto.graph.node] == ["Gemm", "BatchNormalization", "Relu", "Gemm"]
    names = {t.name for t in proto.graph.initializer}
    assert names == {
        "0.weight",
        "0.bias",
        "1.weight",
        "1.bias",
        "1.running_mean",
        "1.running_var",
        "3.weight",
        "3.bias",
    }


def test_export_uses_evaluation_mode_and_leaves_the_model_as_it_was() -> None:
    model, x = _build("sequential-every-activation", np.float32)
    model.train()
    before = model.state_dict()
    proto = build_onnx(model, x)
    assert all(m.training for m in model.modules())
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)  # no running-statistics update
    np.testing.assert_allclose(_run(proto, x), _expected(model, x), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ real data: the same predictions
def _trained(name):
    from chainrule.data import load_digits, load_mnist5k, train_test_split

    X, y = load_digits() if name == "digits" else load_mnist5k()
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.2, seed=0)
    if name == "digits":
        model = nn.MLP([64, 32, 10], activation="relu", rng=0)
    else:
        model = nn.Sequential(
            nn.Linear(784, 48, rng=0), nn.BatchNorm1d(48), nn.ReLU(), nn.Dropout(0.2), nn.Maxout(48, 10, 2, rng=1)
        )
    optimizer = cr.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    cr.fit(model, "cross_entropy", optimizer, (X_train, y_train), epochs=1, batch_size=64, progress=False)
    return model, X_test


@pytest.mark.parametrize("name", ["digits", "mnist5k"])
def test_trained_models_predict_the_same_in_onnxruntime(name, tmp_path) -> None:
    model, X_test = _trained(name)
    path = to_onnx(model, X_test[:8], tmp_path / f"{name}.onnx")
    onnx.checker.check_model(str(path), full_check=True)
    got = _run(str(path), X_test)
    want = _expected(model, X_test)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(got.argmax(axis=1), want.argmax(axis=1))


# ------------------------------------------------------------------ bad input: clear errors, no file
@pytest.mark.parametrize(
    "model, message",
    [
        (nn.Sequential(nn.Linear(4, 3), nn.LPPool(2.0)), r"unsupported layer LPPool at '1'"),
        (nn.Sequential(nn.BatchNorm1d(4, track_running_stats=False)), r"track_running_stats=False"),
        (nn.Sequential(nn.Flatten(0)), r"Flatten\(start_dim=0\)"),
    ],
    ids=["lppool", "batchnorm-without-running-stats", "flatten-batch-axis"],
)
def test_unsupported_layers_are_named_and_nothing_is_written(model, message, tmp_path) -> None:
    target = tmp_path / "model.onnx"
    target.write_bytes(b"the old file")
    with pytest.raises(UnsupportedLayerError, match=message):
        to_onnx(model, np.zeros((2, 4), np.float32), target)
    assert target.read_bytes() == b"the old file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_bad_arguments_are_one_clear_error(tmp_path) -> None:
    model = nn.Linear(4, 2)
    with pytest.raises(ValueError, match=r"example_input must be a numeric batch"):
        build_onnx(model, np.zeros((0, 4)))
    with pytest.raises(ValueError, match=r"opset must be an integer >= 18"):
        build_onnx(model, np.zeros((1, 4)), opset=13)
    mixed = nn.Sequential(nn.Linear(4, 2), nn.Linear(2, 2, dtype=np.float64))
    with pytest.raises(ValueError, match=r"mixes dtypes"):
        build_onnx(mixed, np.zeros((1, 4)))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        to_onnx(model, np.zeros((1, 4)), tmp_path / "missing" / "model.onnx")


def test_a_missing_onnx_is_one_clear_import_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install 'chainrule\[interop\]'"):
        build_onnx(nn.Linear(2, 2), np.zeros((1, 2)))


# ------------------------------------------------------------------ chainrule export
def _saved(tmp_path, model=None):
    model = model if model is not None else nn.MLP([64, 16, 10], activation="tanh", rng=0)
    return cr.save(model, tmp_path / "model.safetensors"), model


def test_cli_export_writes_a_model_that_onnxruntime_runs(tmp_path, capsys) -> None:
    path, model = _saved(tmp_path)
    out = tmp_path / "model.onnx"
    assert cli.main(["export", str(path), "--onnx", str(out), "--verify"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith(f"wrote {out} (ONNX opset 20): input 'input' [batch, 64] float32")
    assert "output 'output' [batch, 10]" in printed[0]
    assert printed[1].startswith("onnxruntime ") and "max |difference| from chainrule on 64 random inputs" in printed[1]
    difference = re.search(r"random inputs: (\S+) \(largest \|output\| (\S+)\)$", printed[1])
    assert float(difference[1]) < 1e-5 * max(1.0, float(difference[2]))
    x = np.random.default_rng(1).normal(size=(5, 64)).astype(np.float32)
    np.testing.assert_allclose(_run(str(out), x), _expected(model, x), rtol=1e-5, atol=1e-5)


def _fails(capsys, *argv):
    status = cli.main(list(argv))
    err = capsys.readouterr().err
    return status, err


def test_cli_export_errors_are_one_line(tmp_path, capsys) -> None:
    path, _ = _saved(tmp_path)
    out = str(tmp_path / "out.onnx")
    status, err = _fails(capsys, "export", str(tmp_path / "nope.safetensors"), "--onnx", out)
    assert status == 2 and err == f"chainrule export: error: model file not found: {tmp_path / 'nope.safetensors'}\n"

    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(path.read_bytes()[:-10])
    status, err = _fails(capsys, "export", str(corrupt), "--onnx", out)
    assert status == 2 and err.count("\n") == 1 and "truncated" in err

    status, err = _fails(capsys, "export", str(path), "--onnx", str(tmp_path / "no" / "out.onnx"))
    assert status == 2 and err.count("\n") == 1 and "does not exist" in err

    pooled = cr.save(nn.Sequential(nn.Linear(64, 4), nn.LPPool(2.0)), tmp_path / "pooled.safetensors")
    status, err = _fails(capsys, "export", str(pooled), "--onnx", out)
    assert status == 2 and err.count("\n") == 1 and "unsupported layer LPPool at '1'" in err
    assert not Path(out).exists()

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["export", str(path), "--onnx", out, "--opset", "13"])
    assert exit_info.value.code == 2


def test_cli_export_without_onnx_names_the_extra(tmp_path, capsys, monkeypatch) -> None:
    path, _ = _saved(tmp_path)
    monkeypatch.setitem(sys.modules, "onnx", None)
    status, err = _fails(capsys, "export", str(path), "--onnx", str(tmp_path / "m.onnx"))
    assert status == 1 and err.count("\n") == 1 and "pip install 'chainrule[interop]'" in err


def test_docs_cli_documents_every_export_flag() -> None:
    doc = (ROOT / "docs" / "cli.md").read_text()
    commands = next(a for a in cli.build_parser()._actions if a.dest == "command").choices
    for action in commands["export"]._actions:
        for flag in action.option_strings:
            if flag.startswith("--") and flag != "--help":
                assert f"`{flag}" in doc, f"docs/cli.md does not document export {flag}"
    assert "## `chainrule export`" in doc


# ------------------------------------------------------------------ docs/interop.md prints what it shows
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)


def test_docs_interop_prints_what_it_shows(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    found = [(lang.strip(), body) for lang, body in FENCE.findall((ROOT / "docs" / "interop.md").read_text())]
    namespace: dict = {"__name__": "doc_interop"}
    checked = 0
    for (lang, body), following in zip(found, [*found[1:], ("", "")]):
        if lang != "python":
            continue
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(body, "interop.md", "exec"), namespace)
        if following[0] == "text":
            assert printed.getvalue() == following[1]
            checked += 1
    assert checked == 4


def test_docs_cli_export_shows_this_programs_output(tmp_path, monkeypatch, capsys) -> None:
    doc = (ROOT / "docs" / "cli.md").read_text()
    section = doc[doc.index("## `chainrule export`") :]
    command = re.search(r"```sh\nchainrule (.+)\n```", section)[1].split()
    shown = re.search(r"```text\n(.*?)```", section, flags=re.DOTALL)[1].splitlines()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "digits").mkdir(parents=True)
    # the architecture that docs/cli.md's train command builds; the first line depends only on it
    cr.save(nn.MLP([64, 64, 32, 10], activation="relu"), "runs/digits/model.safetensors")
    assert cli.main(command) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == shown[0]
    assert printed[1].split(": ")[:2] == shown[1].split(": ")[:2]
