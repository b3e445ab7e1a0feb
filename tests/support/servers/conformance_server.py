"""The conformance server of docs/protocol.md, for protocol test tools.

    python tests/support/servers/conformance_server.py --mode socketio|engineio --port N

Both modes: HTTP and WebSocket on one port, pingInterval 300 ms, pingTimeout 200 ms, maxPayload
1000000. ``engineio``: a bare Engine.IO server at /engine.io/ echoing every message to its sender
(text as text, binary as binary). ``socketio``: at /socket.io/, namespace ``/`` emits ``auth``
with the CONNECT payload on connection, answers ``message`` with ``message-back`` (same
arguments) and ``message-with-ack`` through the ack; namespace ``/custom`` emits ``auth``.
Connect timeout 1000 ms.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from actors.sockets.outbox import OutFrame
from actors.sockets.session import Session
from web.platform.app import create_app
from web.platform.settings import Settings
from web.server import run
from web.sockets.engineio_server import EngineSocket
from web.sockets.namespace import Ack, Namespace


def socketio_namespaces() -> list[Namespace]:
    main = Namespace("/")
    custom = Namespace("/custom")

    async def send_auth(session: Session) -> None:
        session.emit("auth", session.auth)

    main.connect(send_auth)
    custom.connect(send_auth)

    @main.on("message")
    async def message(session: Session, args: list[Any], ack: Ack | None) -> None:
        session.emit("message-back", *args)

    @main.on("message-with-ack")
    async def message_with_ack(session: Session, args: list[Any], ack: Ack | None) -> None:
        if ack is not None:
            ack(*args)

    return [main, custom]


class EchoHandler:
    """A bare Engine.IO handler: every message goes back to its sender unchanged."""

    def __init__(self, sock: EngineSocket) -> None:
        self.sock = sock

    async def on_message(self, data: str | bytes) -> None:
        if isinstance(data, str):
            self.sock.push(OutFrame(b"4" + data.encode()))
        else:
            self.sock.push(OutFrame.binary(data))

    async def on_close(self, reason: str) -> None:
        pass

    def ever_connected(self) -> bool:
        return True  # no Socket.IO layer: the connect timeout does not apply


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=["socketio", "engineio"], required=True)
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--asgi-only", action="store_true", help="WebSocket through Quart only")
    args = parser.parse_args()
    settings = Settings(
        host=args.host,
        port=args.port,
        data_dir=os.environ.get("SWITCHBOARD_DATA_DIR") or tempfile.mkdtemp(prefix="conformance-"),
        engineio_path="/engine.io/" if args.mode == "engineio" else "/socket.io/",
        native_websocket=not args.asgi_only,
        ping_interval_ms=300,
        ping_timeout_ms=200,
        connect_timeout_ms=1000,
        max_http_buffer_size_bytes=1_000_000,
        cors_origins=["*"],
        log_level="warning",
    )
    if args.mode == "engineio":
        app = create_app(settings, engine_handler=EchoHandler)
    else:
        app = create_app(settings, namespaces=socketio_namespaces())
    run(app, settings, on_ready=lambda port: print(f"ready on {port}", flush=True))


if __name__ == "__main__":
    main()
