"""Plots: every function draws a non-blank image of its fixed size, in PNG and SVG; the CLI writes them.

``python tests/test_plots.py`` re-runs the "Training diagnostics" and "Plots" sections of
docs/visualize.md and copies the images they write into docs/images.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="the plots need matplotlib: pip install 'chainrule[viz]'")

from chainrule import cli, nn, optim
from chainrule.data import get_dataset
from chainrule.train import Diagnostics, fit
from chainrule.viz import plots

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "visualize.md"
DOC_SECTIONS = "## Training diagnostics"  # this section and the ones after it are this file's
DOC_IMAGES = (
    "diagnostics_sigmoid.png",
    "diagnostics_relu_he.png",
    "history.png",
    "decision_regions.png",
    "confusion.png",
    "first_layer.png",
    "activation_gallery.png",
)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def colours(path: Path) -> int:
    from matplotlib.image import imread

    pixels = imread(path)
    return len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0))


# ===================================================================== the functions
@pytest.fixture(scope="module")
def trained():
    """Small trained models: digits (with diagnostics), moons (2-D), sine (1-D regression)."""
    digits = get_dataset("digits")
    X = (digits.X / 16.0).astype(np.float32)
    model = nn.MLP([64, 16, 10], rng=0)
    diag = Diagnostics()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    validation = (X[1000:1200], digits.y[1000:1200])
    history = fit(
        model, "cross_entropy", opt, (X[:1000], digits.y[:1000]), epochs=3, validation=validation, callbacks=[diag]
    )
    moons = get_dataset("moons", n=200, seed=0)
    clf = nn.MLP([2, 8, 2], activation="tanh", rng=0)
    fit(clf, "cross_entropy", optim.SGD(clf.parameters(), lr=0.1, momentum=0.9), (moons.X, moons.y), epochs=10)
    sine = get_dataset("sine")
    reg = nn.MLP([1, 16, 1], activation="tanh", rng=0)
    fit(reg, "mse", optim.SGD(reg.parameters(), lr=0.05, momentum=0.9), (sine.X, sine.y), epochs=10, metrics=("mse",))
    counts = np.arange(1, 10).reshape(3, 3) * 7
    return {"digits": model, "history": history, "diag": diag, "moons": (clf, moons), "sine": (reg, sine),
            "counts": counts}  # fmt: skip


CASES = {
    "history": (lambda t, p: plots.plot_history(t["history"], path=p), (900, 360)),
    "decision_regions": (lambda t, p: plots.plot_decision_regions(*_model_xy(t["moons"]), path=p), (550, 500)),
    "regression": (lambda t, p: plots.plot_regression_fit(*_model_xy(t["sine"]), path=p), (600, 400)),
    "weights": (lambda t, p: plots.plot_weights(t["digits"], path=p), (760, 320)),
    "first_layer": (lambda t, p: plots.plot_first_layer_images(t["digits"], (8, 8), path=p), (640, 680)),
    "confusion": (lambda t, p: plots.plot_confusion_matrix(t["counts"], ["a", "b", "c"], path=p), (550, 500)),
    "activation_gallery": (lambda t, p: plots.plot_activation_gallery(path=p), (960, 800)),
    "diagnostics": (lambda t, p: plots.plot_diagnostics(t["diag"], path=p), (1200, 700)),
}


def _model_xy(entry):
    model, dataset = entry
    return model, dataset.X, dataset.y


@pytest.mark.parametrize("name", list(CASES))
def test_each_plot_is_a_png_of_its_size_and_not_blank(name, trained, tmp_path):
    draw, size = CASES[name]
    path = tmp_path / f"{name}.png"
    fig = draw(trained, path)
    assert fig.get_size_inches() * plots.DPI == pytest.approx(size)
    assert png_size(path) == size
    assert colours(path) > 20, f"{name}.png looks blank"
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name], "a temporary file was left behind"


def test_svg_output_and_the_same_input_gives_the_same_file(trained, tmp_path):
    for suffix in ("svg", "png"):
        a, b = tmp_path / f"a.{suffix}", tmp_path / f"b.{suffix}"
        plots.plot_history(trained["history"], path=a)
        plots.plot_history(trained["history"].to_dict(), path=b)
        assert a.read_bytes() == b.read_bytes()
    head = (tmp_path / "a.svg").read_text()[:200]
    assert head.startswith(("<?xml", "<svg")) and "<svg" in head


def test_plot_arguments_are_checked(trained, tmp_path):
    with pytest.raises(ValueError, match=r"\.png or \.svg"):
        plots.plot_history(trained["history"], path=tmp_path / "h.jpg")
    with pytest.raises(ValueError, match="shape"):
        plots.plot_first_layer_images(trained["digits"], (5, 5))
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        plots.plot_decision_regions(trained["digits"], np.zeros((3, 64)), np.zeros(3))
    with pytest.raises(ValueError, match="no records"):
        plots.plot_diagnostics([])
    assert list(tmp_path.iterdir()) == []


def test_activation_curves_are_chainrules_derivatives():
    curves = plots.activation_curves(np.array([-2.0, -0.5, 0.5, 2.0]))
    assert "linear" not in curves and {"relu", "sigmoid", "tanh", "prelu", "identity"} <= set(curves)
    x, f, df = curves["sigmoid"]
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(f, s, rtol=1e-12)
    np.testing.assert_allclose(df, s * (1 - s), rtol=1e-12)
    np.testing.assert_array_equal(curves["relu"][2], [0, 0, 1, 1])
    np.testing.assert_allclose(curves["prelu"][2], [0.25, 0.25, 1, 1])


def test_a_missing_matplotlib_names_the_install_command(monkeypatch, trained):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install 'chainrule\[viz\]'"):
        plots.plot_history(trained["history"])


# ===================================================================== the command line
def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_train_writes_the_plots_that_apply_and_no_plots_writes_none(capsys, tmp_path):
    common = ("train", "--data", "moons", "--hidden", "8", "--epochs", "2", "--quiet")
    code, out, _ = _run(capsys, *common, "--out", str(tmp_path / "moons"))
    assert code == 0
    pictures = {"history.png", "weights.png", "decision_regions.png", "confusion.png"}
    assert _files(tmp_path / "moons") == {"model.safetensors", "metrics.json", *pictures}
    assert "plots history.png, weights.png, decision_regions.png, confusion.png in" in out
    for name in pictures:
        assert colours(tmp_path / "moons" / name) > 20

    code, out, _ = _run(capsys, *common, "--no-plots", "--out", str(tmp_path / "bare"))
    assert code == 0 and not any(line.startswith("plots") for line in out.splitlines())
    assert _files(tmp_path / "bare") == {"model.safetensors", "metrics.json"}

    code, _, _ = _run(capsys, "train", "--data", "sine", "--hidden", "8", "--epochs", "2", "--quiet",
                      "--out", str(tmp_path / "sine"))  # fmt: skip
    assert code == 0
    assert _files(tmp_path / "sine") == {
        "model.safetensors",
        "metrics.json",
        "history.png",
        "weights.png",
        "regression.png",
    }


def test_train_diagnostics_goes_to_metrics_json_and_plot_redraws(capsys, tmp_path):
    run = tmp_path / "digits"
    argv = ("train", "--data", "digits", "--hidden", "16", "--epochs", "2", "--quiet", "--diagnostics")
    assert _run(capsys, *argv, "--out", str(run))[0] == 0
    metrics = json.loads((run / "metrics.json").read_text())
    records = metrics["diagnostics"]["records"]
    assert [r["epoch"] for r in records] == [1, 2]
    assert set(records[0]["parameters"]) == {"layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"}
    assert records[0]["activations"]["activations.0"]["kind"] == "relu"
    drawn = {"history", "diagnostics", "weights", "first_layer", "confusion"}
    assert _files(run) == {"model.safetensors", "metrics.json", *(f"{n}.png" for n in drawn)}

    code, out, _ = _run(capsys, "plot", str(run), "--format", "svg")
    assert code == 0
    assert out.strip() == f"wrote history.svg, diagnostics.svg, weights.svg, first_layer.svg, confusion.svg in {run}"
    assert all((run / f"{n}.svg").read_text().startswith("<?xml") for n in drawn)

    broken = dict(metrics, run={"data": "digits"})  # valid JSON, but the split is not recorded
    (run / "metrics.json").write_text(json.dumps(broken))
    code, _, err = _run(capsys, "plot", str(run))
    assert code == 2 and err == f"chainrule plot: error: cannot draw the plots of {run}: missing entry 'test_size'\n"
    (run / "metrics.json").write_text(json.dumps(metrics))

    (run / "model.safetensors").unlink()
    code, out, _ = _run(capsys, "plot", str(run))
    assert code == 0 and "no model file" in out and "wrote history.png, diagnostics.png in" in out


@pytest.mark.parametrize(
    "setup,message",
    [
        (None, "run folder not found"),
        ("", "metrics.json not found"),
        ("{not json", "is not valid JSON: Expecting property name enclosed in double quotes at line 1"),
        ("[1, 2]", "has no training history"),
    ],
)
def test_plot_of_a_bad_run_folder_is_one_line_and_status_2(capsys, tmp_path, setup, message):
    run = tmp_path / "run"
    if setup is not None:
        run.mkdir()
        if setup:
            (run / "metrics.json").write_text(setup)
    code, out, err = _run(capsys, "plot", str(run))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("chainrule plot: error: ") and message in err


def test_without_matplotlib_train_succeeds_and_says_so(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, out, _ = _run(capsys, "train", "--data", "xor", "--hidden", "2", "--epochs", "1", "--quiet",
                        "--out", str(tmp_path))  # fmt: skip
    assert code == 0
    assert "plots skipped: matplotlib is not installed (pip install 'chainrule[viz]')" in out
    assert _files(tmp_path) == {"model.safetensors", "metrics.json"}


def test_predict_draws_the_confusion_matrix(capsys, tmp_path):
    argv = ("train", "--data", "blobs", "--hidden", "8", "--epochs", "2", "--quiet", "--no-plots")
    assert _run(capsys, *argv, "--out", str(tmp_path))[0] == 0
    model = str(tmp_path / "model.safetensors")
    code, out, _ = _run(capsys, "predict", "--model", model, "--confusion", str(tmp_path / "c.png"))
    assert code == 0 and f"wrote {tmp_path / 'c.png'}" in out
    assert png_size(tmp_path / "c.png") == (550, 500)
    code, _, err = _run(capsys, "predict", "--model", model, "--confusion", str(tmp_path / "c.gif"))
    assert code == 2 and "use a .png or .svg file name" in err
    assert not (tmp_path / "c.gif").exists()


# ===================================================================== the docs
def run_doc_sections() -> tuple[dict, list[tuple[str, str | None]]]:
    """Run the python blocks of this file's sections of docs/visualize.md in one namespace.

    Returns the namespace and, per block, (what it printed, the ```text block right after it).
    """
    text = DOC.read_text(encoding="utf-8")
    assert DOC_SECTIONS in text, f"docs/visualize.md has no {DOC_SECTIONS!r} section"
    blocks = re.findall(r"^```(python|text)\n(.*?)^```", text[text.index(DOC_SECTIONS) :], flags=re.DOTALL | re.M)
    namespace: dict = {"__name__": "docs_visualize_plots"}
    printed = []
    for i, (kind, code) in enumerate(blocks):
        if kind != "python":
            continue
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            exec(compile(code, f"visualize.md[{DOC_SECTIONS[3:]} block {i}]", "exec"), namespace)
        after = blocks[i + 1][1] if i + 1 < len(blocks) and blocks[i + 1][0] == "text" else None
        printed.append((buffer.getvalue(), after))
    return namespace, printed


def test_the_docs_sections_run_print_what_they_say_and_draw_the_pictures_shown(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the blocks write their pictures into ./plots
    namespace, printed = run_doc_sections()
    assert len(printed) >= 4
    for got, shown in printed:
        if shown is not None:
            assert got == shown
    out = namespace["out"]
    text = DOC.read_text(encoding="utf-8")
    for name in DOC_IMAGES:
        assert f"](images/{name})" in text
        assert png_size(out / name) == png_size(ROOT / "docs" / "images" / name)


def test_docs_cli_documents_the_plot_command():
    doc = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    parser = cli.build_parser()
    plot = next(a for a in parser._actions if a.dest == "command").choices["plot"]
    for action in plot._actions:
        for flag in action.option_strings:
            if flag.startswith("--") and flag != "--help":
                assert f"`{flag}" in doc
    assert "## `chainrule plot`" in doc


if __name__ == "__main__":
    import os
    import tempfile

    target = ROOT / "docs" / "images"
    target.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        os.chdir(work)
        namespace, _ = run_doc_sections()
        for name in DOC_IMAGES:
            shutil.copyfile(namespace["out"] / name, target / name)
            print(f"wrote {target / name}")
        os.chdir(ROOT)
