"""The browser playground: a local web server driving the real engine (``chainrule playground``).

``Session`` (the scene and its messages) needs only NumPy; ``create_app`` (in ``app``) needs the
``playground`` extra (Starlette, uvicorn) and is imported only when called.
"""

from __future__ import annotations

from typing import Any

from chainrule.playground.protocol import ProtocolError, decode
from chainrule.playground.session import Session


def create_app(**options: Any) -> Any:
    """The Starlette app (see ``chainrule.playground.app.create_app``)."""
    from chainrule.playground.app import create_app as make

    return make(**options)


__all__ = ["ProtocolError", "Session", "create_app", "decode"]
