"""The playground's web server with Starlette's TestClient: HTTP endpoints and WebSocket flows."""

from __future__ import annotations

import json
import time

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from chainrule.playground.app import CSP, create_app
from chainrule.playground.protocol import MAX_MESSAGE_BYTES
from chainrule.playground.scenes import PRESETS

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def app(tmp_path):
    (tmp_path / "index.html").write_text("<!doctype html><title>t</title><script src='/static/app.js'></script>")
    (tmp_path / "app.js").write_text("export const x = 1;\n")
    return create_app(static_dir=tmp_path)


@pytest.fixture
def client(app):
    with TestClient(app) as c:
        yield c


def receive(ws, kind: str | None = None) -> dict:
    msg = json.loads(ws.receive_text())
    if kind is not None:
        assert msg["type"] == kind, msg
    return msg


# ------------------------------------------------------------------ HTTP
def test_page_static_and_security_headers(client):
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"] and "<title>t</title>" in r.text
    assert r.headers["content-security-policy"] == CSP
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
    assert "access-control-allow-origin" not in r.headers
    js = client.get("/static/app.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert js.headers["content-security-policy"] == CSP
    assert client.get("/static/../session.py").status_code == 404
    assert client.get("/static/missing.js").status_code == 404


def test_page_missing_says_so(tmp_path):
    with TestClient(create_app(static_dir=tmp_path)) as c:
        r = c.get("/")
    assert r.status_code == 503 and "missing" in r.text


def test_presets_endpoint(client):
    presets = client.get("/api/presets").json()["presets"]
    assert [p["name"] for p in presets] == list(PRESETS)
    assert presets[0] == {"name": "xor", "label": "XOR", "task": "classification", "n": 4, "noise": 0.0}


def test_default_scene_and_post_scene(client):
    scene = client.get("/api/scene/default").json()
    assert scene["format"] == "chainrule-playground-scene" and scene["version"] == 1
    assert scene["data"]["points"] == [[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 0]]
    scene["config"]["hidden"] = [2]
    del scene["model"]  # fresh weights for the new size
    r = client.post("/api/scene", json=scene)
    assert r.status_code == 200
    body = r.json()
    assert body["scene"]["model"]["sizes"] == [2, 2, 1] and body["state"]["view"]["sizes"] == [2, 2, 1]
    assert body["state"]["view"]["correct"]["train"][1] == 4


@pytest.mark.parametrize(
    ("body", "headers", "status", "match"),
    [
        ('{"format": "x"}', {"content-type": "application/json"}, 400, "scene.format"),
        ("{not json", {"content-type": "application/json"}, 400, "not valid JSON"),
        ('{"a": NaN}', {"content-type": "application/json"}, 400, "NaN"),
        ("{}", {"content-type": "text/plain"}, 415, "application/json"),
        ('{"p": "' + "x" * MAX_MESSAGE_BYTES + '"}', {"content-type": "application/json"}, 413, "over the limit"),
    ],
)
def test_post_scene_refuses_bad_bodies(client, body, headers, status, match):
    r = client.post("/api/scene", content=body, headers=headers)
    assert r.status_code == status and match in r.json()["error"]


# ------------------------------------------------------------------ WebSocket
def test_hello_config_train_forward_backward_export(client):
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "hello", "id": 1})
        st = receive(ws, "state")
        assert st["reply_to"] == 1 and st["view"]["iteration"] == 0 and st["animating"] is False
        ws.send_json({"type": "config", "activation": "tanh", "id": 2})
        assert receive(ws, "state")["config"]["activation"] == "tanh"
        ws.send_json({"type": "train", "steps": 600})
        assert receive(ws, "state")["view"]["correct"]["train"] == [4, 4]
        ws.send_json({"type": "forward", "index": 3})
        assert receive(ws, "forward_step")["output"]["predicted"] == 0
        ws.send_json({"type": "backward", "index": 3})
        assert len(receive(ws, "backward_step")["layers"]) == 2
        ws.send_json({"type": "export", "id": 9})
        scene = receive(ws, "scene")
        assert scene["reply_to"] == 9 and scene["scene"]["model"]["iteration"] == 600
        ws.send_json({"type": "presets"})
        assert len(receive(ws, "presets")["presets"]) == len(PRESETS)


@pytest.mark.parametrize(
    ("raw", "for_type", "match"),
    [
        ("not json at all", None, "not valid JSON"),
        ('{"type": "config", "hidden": "lots"}', "config", "config.hidden: expected a list"),
        ('{"type": "config", "lr": NaN}', None, "NaN"),
        ('{"type": "warp"}', "warp", "unknown type"),
        ('{"type": "config", "activation": "mish"}', "config", "unknown name"),
        ('{"type": "data", "points": [[0, 0, 1]]' + ", [0, 0, 1]" * 0 + "}", None, None),
        ('{"type": "forward", "index": 77, "id": 5}', "forward", "no point 77"),
        ('{"type": "hello", "pad": "' + "x" * (MAX_MESSAGE_BYTES + 1) + '"}', None, "over the limit"),
    ],
)
def test_malformed_messages_get_errors_and_the_connection_keeps_working(client, raw, for_type, match):
    with client.websocket_connect("/ws") as ws:
        ws.send_text(raw)
        reply = receive(ws)
        if match is None:  # a valid message in the table, as a control
            assert reply["type"] == "state"
        else:
            assert reply["type"] == "error" and match in reply["message"] and reply["for"] == for_type
            assert "\n" not in reply["message"]
        if '"id": 5' in raw:
            assert reply["reply_to"] == 5
        ws.send_json({"type": "step"})
        assert receive(ws, "state")["view"]["iteration"] == 1


def test_huge_point_array_and_binary_frames_are_refused(client):
    with client.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"type": "data", "points": [[0.5, 0.5, 1]] * 20_000}))
        assert "expected 0..10000 entries" in receive(ws, "error")["message"]
        ws.send_bytes(b"\x00\x01")
        assert "binary" in receive(ws, "error")["message"]
        ws.send_json({"type": "hello"})
        assert len(receive(ws, "state")["data"]["points"]) == 4


def test_animation_sends_one_frame_per_ack(client):
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "animate", "running": True, "steps_per_frame": 5})
        first = receive(ws, "frame")
        assert first["id"] == 1 and first["iteration"] == 5 and "grid" in first and "neurons" in first
        # without an ack nothing more comes: a message sent now is answered first, no frame is queued
        time.sleep(0.3)
        ws.send_json({"type": "forward", "index": 0})
        assert receive(ws, "forward_step")["index"] == 0
        ws.send_json({"type": "ack", "frame": 7})  # unknown id: ignored
        ws.send_json({"type": "ack", "frame": 1})
        second = receive(ws, "frame")
        assert second["id"] == 2 and second["iteration"] == 10
        ws.send_json({"type": "animate", "running": True, "steps_per_frame": 20})  # only changes the speed
        ws.send_json({"type": "ack", "frame": 2})
        third = receive(ws, "frame")
        assert third["id"] == 3 and third["iteration"] == 30
        ws.send_json({"type": "animate", "running": False})
        st = receive(ws, "state")
        assert st["animating"] is False and st["view"]["iteration"] == 30


def test_animation_divergence_stops_with_a_message(client):
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "preset", "name": "line"})
        receive(ws, "state")
        ws.send_json({"type": "config", "hidden": [8, 8], "activation": "linear", "lr": 10})
        receive(ws, "state")
        ws.send_json({"type": "animate", "running": True, "steps_per_frame": 50})
        seen = []
        while True:
            msg = receive(ws)
            seen.append(msg["type"])
            if msg["type"] == "frame":
                ws.send_json({"type": "ack", "frame": msg["id"]})
            if msg["type"] == "state":
                break
        assert seen[-2:] == ["diverged", "state"] and msg["view"]["diverged"] is True and msg["animating"] is False


def test_disconnect_mid_animation_frees_the_session(app, client):
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "animate", "running": True})
        receive(ws, "frame")
        assert len(app.state.sessions) == 1
    deadline = time.monotonic() + 5
    while app.state.sessions and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(app.state.sessions) == 0
    with client.websocket_connect("/ws") as ws:  # the server still works
        ws.send_json({"type": "hello"})
        assert receive(ws, "state")["view"]["iteration"] == 0


def test_two_sessions_are_independent_and_both_animate(app, client):
    with client.websocket_connect("/ws") as a, client.websocket_connect("/ws") as b:
        a.send_json({"type": "config", "hidden": [6]})
        assert receive(a, "state")["view"]["sizes"] == [2, 6, 1]
        b.send_json({"type": "hello"})
        assert receive(b, "state")["view"]["sizes"] == [2, 4, 1]
        assert len(app.state.sessions) == 2
        a.send_json({"type": "animate", "running": True, "steps_per_frame": 3})
        b.send_json({"type": "animate", "running": True, "steps_per_frame": 7})
        for k in range(1, 6):
            fa, fb = receive(a, "frame"), receive(b, "frame")
            assert (fa["id"], fa["iteration"], fb["id"], fb["iteration"]) == (k, 3 * k, k, 7 * k)
            a.send_json({"type": "ack", "frame": k})
            b.send_json({"type": "ack", "frame": k})
        b.send_json({"type": "animate", "running": False})
        msg = receive(b)
        if msg["type"] == "frame":  # frame 6 was already on its way when the stop arrived: at most one
            assert msg["id"] == 6
            msg = receive(b)
        assert msg["type"] == "state" and msg["animating"] is False
        assert receive(a, "frame")["id"] == 6  # a goes on


def test_foreign_origin_is_refused(client):
    with pytest.raises(WebSocketDisconnect) as info:
        with client.websocket_connect("/ws", headers={"origin": "http://evil.example"}):
            pass
    assert info.value.code == 1008
    with client.websocket_connect("/ws", headers={"origin": "http://testserver"}) as ws:
        ws.send_json({"type": "hello"})
        receive(ws, "state")
