"""``python -m benchmarks.playground``: server-side animation frames per second of the playground.

The issue's target: a 2-8-8-1 tanh network on 200 points, a 64x64 decision grid plus every
hidden neuron's 64x64 heatmap, and 10 training steps per frame, at >= 30 frames/s. A frame is
measured as the server makes it: ``Session.frame()`` (10 steps, then the view) and its JSON
text. ``--ws`` also times whole round trips (frame sent, ack received) through the Starlette
app in process, which adds the WebSocket and the worker-thread hop.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from chainrule.playground.protocol import decode
from chainrule.playground.session import Session

SETUP = [
    {"type": "preset", "name": "circle", "n": 200},
    {"type": "config", "hidden": [8, 8], "activation": "tanh", "lr": 0.03, "grid": 64},
]


def make_session() -> Session:
    s = Session()
    for msg in SETUP:
        s.handle(decode(json.dumps(msg)))
    s.steps_per_frame = 10
    return s


def frames_per_second(frames: int = 200, repeats: int = 3) -> tuple[float, int, dict[str, float]]:
    """Median frames/s over ``repeats`` runs, the frame's JSON size, and the split of one frame's time (ms)."""
    s = make_session()
    text = json.dumps(s.frame())  # warm up
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(frames):
            text = json.dumps(s.frame(), separators=(",", ":"))
        rates.append(frames / (time.perf_counter() - start))
    n = 50
    start = time.perf_counter()
    for _ in range(n):
        s.train_steps(10)
    train = (time.perf_counter() - start) / n * 1000
    start = time.perf_counter()
    for _ in range(n):
        view = s.view()
    view_ms = (time.perf_counter() - start) / n * 1000
    start = time.perf_counter()
    for _ in range(n):
        json.dumps({"type": "frame", **view}, separators=(",", ":"))
    encode = (time.perf_counter() - start) / n * 1000
    return statistics.median(rates), len(text), {"train 10 steps": train, "view": view_ms, "json": encode}


def websocket_frames_per_second(frames: int = 200) -> float:
    """Frames/s through the app (TestClient in process): frame received, ack sent, next frame."""
    from starlette.testclient import TestClient

    from chainrule.playground.app import create_app

    with TestClient(create_app()) as client, client.websocket_connect("/ws") as ws:
        for msg in SETUP:
            ws.send_json(msg)
            ws.receive_text()
        ws.send_json({"type": "animate", "running": True, "steps_per_frame": 10})
        start = None
        for _ in range(frames + 1):
            frame = json.loads(ws.receive_text())
            assert frame["type"] == "frame", frame
            if start is None:
                start = time.perf_counter()
            ws.send_json({"type": "ack", "frame": frame["id"]})
        elapsed = time.perf_counter() - start
        ws.send_json({"type": "animate", "running": False})
    return frames / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.playground", description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200, help="frames per timed run (default: 200)")
    parser.add_argument("--ws", action="store_true", help="also time round trips through the WebSocket app")
    parser.add_argument("--write", metavar="PAGE", help="also write the result into PAGE (docs/benchmarks.md)")
    args = parser.parse_args(argv)
    rate, size, split = frames_per_second(args.frames)
    lines = [
        "playground animation, 2-8-8-1 tanh, 200 points, 64x64 grid + 16 neuron heatmaps, 10 steps/frame",
        f"  server frames/s (Session.frame + JSON): {rate:.0f}   (target >= 30)",
        f"  frame size: {size / 1024:.0f} KiB of JSON",
        "  one frame, ms: " + ", ".join(f"{k} {v:.2f}" for k, v in split.items()),
    ]
    if args.ws:
        rate_ws = websocket_frames_per_second(args.frames)
        lines.append(f"  WebSocket round trips/s (in-process TestClient, ack per frame): {rate_ws:.0f}")
    print("\n".join(lines))
    if args.write:
        from benchmarks.markdown import write_section

        body = (
            "## Playground animation\n\n"
            f"`python -m benchmarks.playground{' --ws' if args.ws else ''} --write {args.write}`, measured "
            f"{time.strftime('%Y-%m-%d')} on this machine ({os.cpu_count()} cores, load average "
            f"{os.getloadavg()[0]:.1f}). A frame is what the server sends while Animate runs: 10 training steps, "
            "the decision grid and every hidden neuron's heatmap, as JSON; the page acknowledges each frame "
            "before the next is sent (drop, don't lag). The target is 30 frames/s.\n\n```text\n"
            + "\n".join(lines)
            + "\n```\n"
        )
        write_section(args.write, "playground", body)
    return 0 if rate >= 30 else 1


if __name__ == "__main__":
    raise SystemExit(main())
