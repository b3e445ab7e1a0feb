"""The benchmark server: Switchboard with the tiny app every compared server implements.

Namespace ``/`` (no JWT): ``join`` (room) acks ``{"ok": true}``; ``echo`` acks its arguments;
``bcast`` ``{"room", "payload"}`` emits ``msg`` with the payload to the room; ``rss`` acks the
process RSS in bytes.  ``python -m benchmarks.server --port N [--asgi-only] [--redis-url URL]``
(with ``--redis-url``: one node of a cluster).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import msgspec

from actors.sockets.session import Session
from web.platform.app import create_app
from web.platform.settings import Settings
from web.server import run
from web.sockets.namespace import Ack, Namespace

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * _PAGE_SIZE


class Bcast(msgspec.Struct):
    room: str
    payload: Any = None


def bench_namespace() -> Namespace:
    ns = Namespace("/")

    @ns.on("join", schema=str)
    async def join(session: Session, room: str, ack: Ack | None) -> None:
        await ns.rooms.join(session, room)
        if ack is not None:
            ack({"ok": True})

    @ns.on("echo")
    async def echo(session: Session, args: list[Any], ack: Ack | None) -> None:
        if ack is not None:
            ack(*args)

    @ns.on("bcast", schema=Bcast)
    async def bcast(session: Session, message: Bcast, ack: Ack | None) -> None:
        await ns.emit("msg", message.payload, to=message.room)
        if ack is not None:
            ack()

    @ns.on("rss")
    async def rss(session: Session, args: list[Any], ack: Ack | None) -> None:
        if ack is not None:
            ack(rss_bytes())

    return ns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--asgi-only", action="store_true", help="no native WebSocket path")
    parser.add_argument("--redis-url", default="", help="join a cluster through this Redis")
    args = parser.parse_args()
    settings = Settings(
        host=args.host,
        port=args.port,
        data_dir=os.environ.get("SWITCHBOARD_DATA_DIR", "./data/bench"),
        native_websocket=not args.asgi_only,
        cors_origins=["*"],
        log_level="warning",
        max_connections_per_ip=0,  # every benchmark client comes from 127.0.0.1
        redis_url=args.redis_url,
    )
    app = create_app(settings, namespaces=[bench_namespace()])
    run(app, settings, on_ready=lambda port: print(f"ready on {port}", flush=True))


if __name__ == "__main__":
    main()
