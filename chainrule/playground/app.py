"""The playground's web server: a Starlette app (PROTOCOL.md, "HTTP" and the WebSocket at ``/ws``).

``create_app()`` serves the page from ``static/``, the JSON endpoints, and one WebSocket per
browser tab, each with its own ``Session``. Session work runs in worker threads (one session's
messages and frames in turn, under its lock), so several tabs animating at once keep the event
loop free. Needs the ``playground`` extra: ``pip install 'chainrule[playground]'``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from anyio import to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from chainrule.playground.protocol import MAX_MESSAGE_BYTES, ProtocolError, decode, parse_json
from chainrule.playground.scenes import preset_list
from chainrule.playground.session import Session

log = logging.getLogger("chainrule.playground")
STATIC = Path(__file__).parent / "static"

CSP = (
    "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]


class SecurityHeaders:
    """ASGI middleware: the strict headers above on every HTTP response."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in SECURITY_HEADERS if k not in names
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), allow_nan=False)


def _error(message: str, for_type: str | None, reply_to: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "error", "message": message, "for": for_type}
    if reply_to is not None:
        out["reply_to"] = reply_to
    return out


def _same_origin(ws: WebSocket) -> bool:
    """A browser's WebSocket from another site's page is refused (its Origin names another host)."""
    origin = ws.headers.get("origin")
    if origin is None:  # not a browser (a script, the tests): nothing to protect against
        return True
    return urlsplit(origin).netloc.lower() == ws.headers.get("host", "").lower()


class Connection:
    """One WebSocket and its session: the receive loop, and the animation with one frame in flight."""

    def __init__(self, ws: WebSocket, session: Session) -> None:
        self.ws = ws
        self.session = session
        self.send_lock = asyncio.Lock()
        self.acked = asyncio.Event()
        self.awaiting: int | None = None  # the frame id in flight
        self.animator: asyncio.Task | None = None
        self.frames_sent = 0

    async def send(self, message: dict[str, Any]) -> None:
        async with self.send_lock:
            await self.ws.send_text(_dumps(message))

    async def run(self) -> None:
        while True:
            event = await self.ws.receive()
            if event["type"] == "websocket.disconnect":
                return
            text = event.get("text")
            if text is None:
                await self.send(_error("message: binary frames are not accepted; send JSON text", None))
                continue
            await self.handle_text(text)

    async def handle_text(self, text: str) -> None:
        try:
            msg = decode(text)
        except ProtocolError as err:
            await self.send(_error(str(err), err.for_type, err.reply_to))
            return
        if msg["type"] == "ack":
            if msg["frame"] == self.awaiting:
                self.acked.set()
            return
        try:
            replies = await to_thread.run_sync(self.session.handle, msg)
        except ProtocolError as err:
            await self.send(_error(str(err), err.for_type, msg.get("id")))
            return
        except Exception as err:  # a bug must not end the session: say so, keep serving
            log.exception("playground: %s failed", msg["type"])
            await self.send(
                _error(f"{msg['type']}: internal error ({type(err).__name__}: {err})", msg["type"], msg.get("id"))
            )
            return
        for reply in replies:
            if "id" in msg and reply["type"] != "diverged":
                reply["reply_to"] = msg["id"]
            await self.send(reply)
        if self.session.animating and (self.animator is None or self.animator.done()):
            self.animator = asyncio.create_task(self.animate())
        elif not self.session.animating:
            self.acked.set()  # wake a waiting animator so it sees the stop

    async def animate(self) -> None:
        frame_id = 0
        try:
            while self.session.animating:
                result = await to_thread.run_sync(self.session.frame)
                if result["type"] == "diverged":
                    await self.send(result)
                    await self.send(await to_thread.run_sync(lambda: self.session.handle({"type": "hello"})[0]))
                    return
                if not self.session.animating:  # stopped while this frame was computed: drop it
                    return
                frame_id += 1
                result["id"] = frame_id
                self.acked.clear()
                self.awaiting = frame_id
                await self.send(result)
                self.frames_sent += 1
                await self.acked.wait()
        except (WebSocketDisconnect, RuntimeError, OSError):
            self.session.animating = False  # the socket is gone; the receive loop ends the session
        except Exception as err:  # a bug must not hang the page: stop animating and say why
            log.exception("playground: animation failed")
            self.session.animating = False
            try:
                await self.send(_error(f"animate: internal error ({type(err).__name__}: {err})", "animate"))
            except Exception:
                pass
        finally:
            self.awaiting = None

    async def close(self) -> None:
        self.session.animating = False
        self.acked.set()
        if self.animator is not None and not self.animator.done():
            self.animator.cancel()
            try:
                await self.animator
            except (asyncio.CancelledError, Exception):
                pass


def create_app(static_dir: str | Path | None = None) -> Starlette:
    """The playground app. ``app.state.sessions`` holds the live sessions (one per open WebSocket)."""
    static = Path(static_dir) if static_dir is not None else STATIC
    sessions: set[Session] = set()

    async def index(request: Request) -> Response:
        page = static / "index.html"
        if not page.is_file():
            return HTMLResponse("<!doctype html><title>chainrule playground</title><p>The page is missing.", 503)
        return FileResponse(page, media_type="text/html")

    async def presets(request: Request) -> Response:
        return JSONResponse({"presets": preset_list()})

    async def default_scene(request: Request) -> Response:
        return JSONResponse(Session().export())

    async def post_scene(request: Request) -> Response:
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return JSONResponse({"error": "POST /api/scene: send the scene as Content-Type application/json"}, 415)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_MESSAGE_BYTES:
                return JSONResponse({"error": f"scene: over the limit of {MAX_MESSAGE_BYTES} bytes"}, 413)
        try:
            scene = parse_json(body, "scene")

            def load() -> dict[str, Any]:
                s = Session()
                s.load(scene)
                state = s.state()
                state.pop("type")
                return {"scene": s.export(), "state": state}

            return JSONResponse(await to_thread.run_sync(load))
        except ProtocolError as err:
            return JSONResponse({"error": str(err)}, 400)

    async def websocket(ws: WebSocket) -> None:
        if not _same_origin(ws):
            await ws.close(code=1008)
            return
        await ws.accept()
        session = Session()
        sessions.add(session)
        conn = Connection(ws, session)
        try:
            await conn.run()
        except WebSocketDisconnect:
            pass
        finally:
            await conn.close()
            sessions.discard(session)

    routes = [
        Route("/", index),
        Route("/api/presets", presets),
        Route("/api/scene/default", default_scene),
        Route("/api/scene", post_scene, methods=["POST"]),
        WebSocketRoute("/ws", websocket),
        Mount("/static", StaticFiles(directory=static, check_dir=False), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.sessions = sessions
    app.add_middleware(SecurityHeaders)
    return app


__all__ = ["CSP", "create_app"]
