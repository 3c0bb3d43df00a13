"""The playground in a real browser: the page, the server and the engine together.

Controls are found by their accessible names (the names a screen reader announces), which the page
keeps equal to the visible labels. Set CHAINRULE_SCREENSHOTS=docs/images to refresh the docs'
screenshots; otherwise they are written to a temporary folder (and still taken).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import chainrule as cr

pytestmark = pytest.mark.slow

STATUS = re.compile(r"^Correct: (\d+)/(\d+) — Iteration: (\d+)$")


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = os.environ.get("CHAINRULE_SCREENSHOTS")
    return Path(folder) if folder else tmp_path


def status(page: Any) -> tuple[int, int, int]:
    text = page.get_by_role("status").text_content()
    m = STATUS.match(text)
    assert m, f"status line {text!r} is not 'Correct: k/n — Iteration: i'"
    return int(m[1]), int(m[2]), int(m[3])


def wait_status(page: Any, pattern: str, timeout: float = 10_000) -> None:
    page.get_by_role("status").filter(has_text=re.compile(pattern)).wait_for(timeout=timeout)


def set_number(page: Any, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.dispatch_event("change")


def train(page: Any, steps: int) -> None:
    """Press Train for `steps` iterations and wait for the server's reply."""
    set_number(page, "Iterations", str(steps))
    before = page.evaluate("window.playground.app.view.iteration")
    page.get_by_role("button", name="Train", exact=True).click()
    page.wait_for_function(f"() => window.playground.app.view.iteration >= {before + steps}")


def train_loss(page: Any) -> float:
    m = re.search(r"train ([-0-9.e]+)", page.locator("#loss").text_content())
    assert m
    return float(m[1])


def export_scene(page: Any) -> dict[str, Any]:
    box = page.get_by_label("Scene JSON", exact=True)
    box.fill("")
    page.get_by_role("button", name="Export scene", exact=True).click()
    page.wait_for_function("() => document.getElementById('scene-json').value.length > 0")
    return json.loads(box.input_value())


def step_values(page: Any) -> dict[str, float]:
    rows = page.evaluate(
        "Array.from(document.querySelectorAll('#step-body tr'))"
        ".map(tr => [tr.querySelector('th').textContent, tr.querySelector('td').dataset.value])"
    )
    return {name: float(v) for name, v in rows}


def canvas_point(page: Any, x: float, y: float) -> tuple[float, float]:
    """Page pixel of data point (x, y) on the plane, from the domain the page shows."""
    box = page.locator("#plane").bounding_box()
    x0, x1, y0, y1 = page.evaluate("window.playground.app.data.domain")
    return box["x"] + (x - x0) / (x1 - x0) * box["width"], box["y"] + (y1 - y) / (y1 - y0) * box["height"]


def test_controls_have_their_labels_as_names(page: Any) -> None:
    for name in ["Train", "Animate", "Step", "Forward pass step", "Backward pass step", "Reset"]:
        assert page.get_by_role("button", name=name, exact=True).count() == 1, name
    for name in ["XOR", "XOR (noisy)", "AND", "OR", "Circle", "Spiral", "Gaussian", "Moons", "3 classes"]:
        assert page.get_by_role("button", name=name, exact=True).count() == 1, name
    for name in ["Move view", "Add red", "Add green", "Add blue", "Remove"]:
        assert page.get_by_role("button", name=name, exact=True).is_visible(), name
    for label in ["Activation", "Loss function", "Optimizer", "Learning rate", "Batch size", "L2 lambda", "Seed"]:
        assert page.get_by_label(label, exact=True).count() == 1, label
    # every button's accessible name is its visible text; every field has a visible <label for>
    unlabelled = page.evaluate(
        """() => {
          const bad = [];
          for (const b of document.querySelectorAll('button')) {
            if (b.getAttribute('aria-label') || !b.textContent.trim()) bad.push(b.outerHTML);
          }
          for (const e of document.querySelectorAll('input, select, textarea')) {
            const byFor = e.id && document.querySelector(`label[for="${e.id}"]`);
            const byHeader = e.getAttribute('aria-labelledby');
            if (!byFor && !byHeader) bad.push(e.outerHTML);
          }
          return bad;
        }"""
    )
    assert unlabelled == []
    assert page.get_by_role("status").count() == 1
    assert page.locator("[role=alert]").count() == 1  # empty (and hidden) until there is an error


def test_xor_trains_until_all_four_correct(page: Any, shots: Path) -> None:
    _k, n, it = status(page)
    assert (n, it) == (4, 0)
    set_number(page, "Iterations", "500")
    train_button = page.get_by_role("button", name="Train", exact=True)
    for press in range(12):
        if press % 2:
            train_button.focus()
            page.keyboard.press("Enter")  # the keyboard works as well as the mouse
        else:
            train_button.click()
        page.wait_for_function(f"() => window.playground.app.view.iteration === {500 * (press + 1)}")
        if status(page)[0] == 4:
            break
    assert status(page)[:2] == (4, 4)
    assert train_loss(page) < 0.1
    # the drawing follows: one picture per neuron, one line per weight
    assert page.locator("#network g.neuron").count() == 2 + 4 + 1
    assert page.locator("#network line.edge").count() == 2 * 4 + 4 * 1
    page.get_by_role("button", name="Forward pass step", exact=True).click()
    page.locator("#step-body h3").wait_for()
    page.screenshot(path=str(shots / "playground.png"), full_page=True)


def test_clicking_the_plane_adds_and_removes_points(page: Any) -> None:
    assert status(page)[1] == 4
    page.get_by_role("button", name="Add green", exact=True).click()
    x, y = canvas_point(page, 0.5, 0.5)
    page.mouse.click(x, y)
    wait_status(page, r"^Correct: \d+/5 ")
    assert page.locator("#points tbody tr").count() == 5
    point = page.evaluate("window.playground.app.data.points[4]")
    assert point[2] == 1 and abs(point[0] - 0.5) < 0.02 and abs(point[1] - 0.5) < 0.02
    page.get_by_role("button", name="Remove", exact=True).click()
    page.mouse.click(x, y)
    wait_status(page, r"^Correct: \d+/4 ")


def engine_steps(scene: dict[str, Any], index: int) -> dict[str, Any]:
    """The forward and backward numbers of one XOR point, computed here with chainrule."""
    (l1, l2) = scene["model"]["layers"]
    x1, x2, label = scene["data"]["points"][index]
    W1 = cr.tensor(np.array(l1["weight"], np.float32), requires_grad=True)
    b1 = cr.tensor(np.array(l1["bias"], np.float32), requires_grad=True)
    W2 = cr.tensor(np.array(l2["weight"], np.float32), requires_grad=True)
    b2 = cr.tensor(np.array(l2["bias"], np.float32), requires_grad=True)
    x = cr.tensor(np.array([x1, x2], np.float32))
    z1 = W1 @ x + b1
    a1 = cr.sigmoid(z1)
    z2 = W2 @ a1 + b2
    p = cr.sigmoid(z2)
    loss = ((p - float(label)) ** 2).mean()
    for t in (z1, a1, z2):
        t.retain_grad()
    loss.backward()
    return {
        "z1": z1.numpy(),
        "a1": a1.numpy(),
        "z2": z2.numpy(),
        "p": p.numpy(),
        "loss": float(loss.numpy()),
        "W1": W1.grad,
        "b1": b1.grad,
        "W2": W2.grad,
        "b2": b2.grad,
        "dz1": z1.grad,
        "da1": a1.grad,
        "dz2": z2.grad,
    }


def close(shown: float, engine: float) -> bool:
    # the server rounds what it shows to 5 significant digits
    return bool(np.isclose(shown, engine, rtol=1e-4, atol=1e-9))


def test_forward_and_backward_steps_show_the_engines_numbers(page: Any, shots: Path) -> None:
    train(page, 300)
    page.get_by_role("button", name="Pick point", exact=True).click()
    page.mouse.click(*canvas_point(page, 1.0, 0.0))
    scene = export_scene(page)
    index = scene["data"]["points"].index([1.0, 0.0, 1])
    assert page.evaluate("window.playground.app.view.iteration") == 300
    ref = engine_steps(scene, index)

    forward = page.get_by_role("button", name="Forward pass step", exact=True)
    for j in range(4):  # hidden neurons h1.1 .. h1.4, then the output neuron, then the summary
        forward.click()
        page.locator("#step-body h3", has_text=f"neuron h1.{j + 1} ").wait_for()
        v = step_values(page)
        assert close(v["z"], ref["z1"][j]) and close(v["a"], ref["a1"][j]), (j, v)
        assert close(v["w (x1)"], scene["model"]["layers"][0]["weight"][j][0])
    forward.click()
    page.locator("#step-body h3", has_text="neuron out ").wait_for()
    v = step_values(page)
    assert close(v["z"], ref["z2"][0]) and close(v["a"], ref["p"][0])
    forward.click()
    page.locator("#step-body h3", has_text="output and loss").wait_for()
    v = step_values(page)
    assert close(v["p(green)"], ref["p"][0]) and close(v["loss"], ref["loss"])

    backward = page.get_by_role("button", name="Backward pass step", exact=True)
    backward.click()
    page.locator("#step-body h3", has_text="Backward: neuron out ").wait_for()
    v = step_values(page)
    assert close(v["δ = ∂L/∂z"], ref["dz2"][0])
    for k in range(4):
        assert close(v[f"∂L/∂w (h1.{k + 1})"], ref["W2"][0][k]), k
    assert close(v["∂L/∂b"], ref["b2"][0])
    page.screenshot(path=str(shots / "playground_backward.png"), full_page=True)
    for j in range(4):
        backward.click()
        page.locator("#step-body h3", has_text=f"Backward: neuron h1.{j + 1} ").wait_for()
        v = step_values(page)
        assert close(v["∂L/∂a (upstream)"], ref["da1"][j]), (j, v)
        assert close(v["δ = ∂L/∂z"], ref["dz1"][j]), (j, v)
        assert close(v["∂L/∂w (x1)"], ref["W1"][j][0]) and close(v["∂L/∂w (x2)"], ref["W1"][j][1])
        assert close(v["∂L/∂b"], ref["b1"][j])
    # the drawing shows the gradients on the current neuron's incoming weights
    assert page.locator("#network .overlay text.grad").count() == 2


def test_regression_fits_a_sine(page: Any, shots: Path) -> None:
    page.get_by_label("Regression", exact=True).check()
    page.wait_for_function("() => window.playground.app.data.task === 'regression'")
    assert page.get_by_role("button", name="Sine", exact=True).is_visible()
    assert page.get_by_role("button", name="Add point", exact=True).is_visible()
    page.get_by_label("Activation", exact=True).select_option(label="Tanh")
    page.wait_for_function("() => window.playground.app.config.activation === 'tanh'")
    page.get_by_label("Optimizer", exact=True).select_option(label="Adam")
    page.wait_for_function("() => window.playground.app.config.optimizer === 'adam'")
    set_number(page, "Learning rate", "0.05")
    page.wait_for_function("() => window.playground.app.config.lr === 0.05")
    train(page, 1500)
    loss = train_loss(page)
    assert loss < 0.01, loss
    curve = page.evaluate("window.playground.app.view.curve")
    assert len(curve["x"]) == len(curve["y"]) > 10
    page.screenshot(path=str(shots / "playground_regression.png"), full_page=True)


def test_export_then_import_gives_identical_weights(page: Any) -> None:
    train(page, 200)
    first = export_scene(page)
    page.get_by_role("button", name="Reset", exact=True).click()
    wait_status(page, r"Iteration: 0$")
    assert export_scene(page)["model"]["layers"] != first["model"]["layers"]
    page.get_by_label("Scene JSON", exact=True).fill(json.dumps(first))
    page.get_by_role("button", name="Import scene", exact=True).click()
    wait_status(page, r"Iteration: 200$")
    again = export_scene(page)
    assert again["model"]["layers"] == first["model"]["layers"]
    assert again["data"] == first["data"] and again["config"] == first["config"]


def test_bad_messages_show_an_error_and_the_page_keeps_working(page: Any) -> None:
    alert = page.get_by_role("alert")
    page.evaluate("window.playground.conn.sendRaw('{not json')")
    alert.filter(has_text="Error").wait_for()
    page.evaluate("window.playground.conn.sendRaw(JSON.stringify({type: 'config', hidden: [99]}))")
    alert.filter(has_text="hidden").wait_for()
    # a crafted import: valid JSON, not a valid scene
    page.get_by_label("Scene JSON", exact=True).fill('{"format": "chainrule-playground-scene", "version": 1}')
    page.get_by_role("button", name="Import scene", exact=True).click()
    alert.filter(has_text="import").wait_for()
    page.get_by_label("Scene JSON", exact=True).fill("{broken")
    page.get_by_role("button", name="Import scene", exact=True).click()
    alert.filter(has_text="not valid JSON").wait_for()
    # still working: a step trains one iteration, and the error is cleared by the new action
    page.get_by_role("button", name="Step", exact=True).click()
    wait_status(page, r"Iteration: 1$")
    assert page.locator("[role=alert]").text_content() == ""
    assert page.evaluate("window.playground.app.config.hidden") == [4]


def test_animate_draws_each_frame_before_acknowledging_it(page: Any) -> None:
    set_number(page, "Steps per frame", "5")
    page.get_by_role("button", name="Animate", exact=True).click()
    stop = page.get_by_role("button", name="Stop", exact=True)
    stop.wait_for()
    page.wait_for_function("() => window.playground.app.view.iteration >= 100")
    received, drawn = page.evaluate("[window.playground.conn.framesReceived, window.playground.conn.framesDrawn]")
    assert received - drawn <= 1  # at most the newest frame waits for the next paint: nothing queues
    stop.click()
    page.get_by_role("button", name="Animate", exact=True).wait_for()
    page.wait_for_function("() => window.playground.app.animating === false")
    page.wait_for_timeout(300)
    it = status(page)[2]
    page.wait_for_timeout(300)
    assert status(page)[2] == it and it % 5 == 0


def test_a_diverged_run_stops_and_says_so(page: Any) -> None:
    page.get_by_label("Activation", exact=True).select_option(label="ReLU")
    page.get_by_label("Regression", exact=True).check()
    page.wait_for_function("() => window.playground.app.data.task === 'regression'")
    page.get_by_role("button", name="Line", exact=True).click()
    page.get_by_label("Activation", exact=True).select_option(label="Linear")
    page.wait_for_function("() => window.playground.app.config.activation === 'linear'")
    set_number(page, "Learning rate", "10")
    page.wait_for_function("() => window.playground.app.config.lr === 10")
    page.get_by_role("button", name="Animate", exact=True).click()
    page.get_by_role("alert").filter(has_text=re.compile("[Dd]iverged")).wait_for()
    page.get_by_role("button", name="Animate", exact=True).wait_for()
    assert page.evaluate("window.playground.app.animating") is False


def test_the_link_keeps_configuration_and_data(page: Any) -> None:
    page.get_by_label("Activation", exact=True).select_option(label="Tanh")
    page.wait_for_function("() => location.hash.includes('activation=tanh')")
    page.get_by_role("button", name="Add blue", exact=True).click()
    page.mouse.click(*canvas_point(page, 0.25, 0.75))
    wait_status(page, r"^Correct: \d+/5 ")
    page.wait_for_function("() => location.hash.split(';').length === 5")
    points = page.evaluate("window.playground.app.data.points")
    page.reload()
    page.wait_for_function("() => window.playground.app.view && window.playground.app.data.points.length === 5")
    page.wait_for_function("() => window.playground.app.config.activation === 'tanh'")
    assert page.get_by_label("Activation", exact=True).input_value() == "tanh"
    restored = page.evaluate("window.playground.app.data.points")
    assert np.allclose(np.array(restored, float), np.array(points, float), atol=1e-4)
    assert page.evaluate("window.playground.app.data.classes") == 3


def test_table_csv_and_layer_controls_edit_the_scene(page: Any) -> None:
    csv = "x,y,class\n0,0,red\n0,1,green\n1,0,green\n1,1,red\n0.5,0.5,blue\n"
    page.get_by_label("CSV", exact=True).fill(csv)
    page.get_by_role("button", name="Import CSV", exact=True).click()
    wait_status(page, r"^Correct: \d+/5 ")
    assert page.evaluate("window.playground.app.data.classes") == 3
    # edit a row in the table: point 5 becomes red, so two classes remain
    row = page.locator("#points tbody tr").nth(4)
    row.get_by_label("class", exact=True).select_option(label="red")
    page.wait_for_function("() => window.playground.app.data.classes === 2")
    row = page.locator("#points tbody tr").nth(4)
    row.get_by_role("button", name="Delete", exact=True).click()
    wait_status(page, r"^Correct: \d+/4 ")
    # + and - for the hidden layers and for the neurons of one layer
    page.get_by_role("group", name="Hidden layers: 1").get_by_role("button", name="+", exact=True).click()
    page.wait_for_function("() => window.playground.app.config.hidden.length === 2")
    page.get_by_role("group", name="Layer 2: 4 neurons").get_by_role("button", name="-", exact=True).click()
    page.wait_for_function("() => window.playground.app.config.hidden.join() === '4,3'")
    assert page.locator("#network g.neuron").count() == 2 + 4 + 3 + 1
    page.get_by_role("checkbox", name="x1²", exact=True).check()
    page.wait_for_function("() => window.playground.app.config.features.join() === 'x1,x2,x1sq'")
    assert page.locator("#network text.feature").all_text_contents() == ["x1", "x2", "x1²"]
