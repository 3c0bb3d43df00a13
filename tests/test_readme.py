"""The README's examples run and print what it says they print."""

from __future__ import annotations

import os

from helpers import run_doc


def test_readme_examples_run(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the training example saves a model file
    namespace = run_doc(os.path.join("..", "README.md"))
    printed = capsys.readouterr().out
    assert "<mul> <add>" in printed and "-12.0 -4.0 -4.0 3.0" in printed
    assert namespace["f"].grad_fn.inputs == ()  # backward() frees the graph, as the README says
    assert (tmp_path / "digits.safetensors").exists()
    assert namespace["history"].accuracy[-1] > 0.97
