"""``chainrule playground``: start the browser playground's local web server and print its URL.

    chainrule playground                 # http://127.0.0.1:8000/
    chainrule playground --port 8123 --open

It binds to 127.0.0.1 unless ``--host`` says otherwise. Needs the ``playground`` extra
(Starlette, uvicorn), imported only when the command runs.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
import socket
import sys
import threading
from typing import Any

from chainrule.cli.commands import UsageError

DESCRIPTION = """\
Start the interactive neural-network playground: a local web server (Starlette + uvicorn) whose
page trains a network with chainrule itself, shows the forward and backward pass on the drawing,
and saves scenes as JSON. Stop it with Ctrl+C.

examples:
  chainrule playground
  chainrule playground --port 8123 --open
"""
#: the largest WebSocket message uvicorn accepts before it closes the socket (the app refuses > 1 MiB itself)
WS_MAX_SIZE = 4 << 20
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``playground`` on the subparsers object ``sub``; its handler is ``playground_command``."""
    command = sub.add_parser(
        "playground",
        help="start the browser playground (a local web server)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument(
        "--host", default="127.0.0.1", help="address to bind to (default: 127.0.0.1, this machine only)"
    )
    command.add_argument("--port", default="8000", help="TCP port, 1..65535 (default: 8000)")
    command.add_argument("--open", action="store_true", help="also open the page in the web browser")
    command.set_defaults(handler=playground_command)
    return command


def check_host(text: str) -> str:
    """An IP address or a host name, else ``UsageError``."""
    host = text.strip()
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    if not _HOSTNAME.match(host):
        raise UsageError(f"--host: {text!r} is not an IP address or a host name")
    return host


def check_port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise UsageError(f"--port: {text!r} is not an integer") from None
    if not 1 <= port <= 65535:
        raise UsageError(f"--port: must be 1..65535, got {port}")
    return port


def url_for(host: str, port: int) -> str:
    """The URL to open: a wildcard address is reached through the loopback address."""
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_free(host: str, port: int) -> None:
    """Fail early, in one line, when the port cannot be bound (taken, or an address not on this machine)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as err:
        raise UsageError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None


def playground_command(args: argparse.Namespace) -> int:
    host, port = check_host(args.host), check_port(args.port)
    try:
        import uvicorn

        from chainrule.playground.app import create_app
    except ImportError as err:
        raise ImportError(
            f"the playground needs Starlette and uvicorn ({err}); install them: pip install 'chainrule[playground]'"
        ) from None
    _check_free(host, port)
    url = url_for(host, port)
    print(f"chainrule playground: {url}  (Ctrl+C stops it)", flush=True)
    if not _is_loopback(host):
        print(f"note: bound to {host}, so other machines on the network can reach it", file=sys.stderr)
    if args.open:
        import webbrowser

        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    uvicorn.run(create_app(), host=host, port=port, log_level="warning", ws_max_size=WS_MAX_SIZE)
    return 0


__all__ = ["add_parser", "check_host", "check_port", "playground_command", "url_for"]
