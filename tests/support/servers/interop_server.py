"""The interop test server: a small JWT-protected Socket.IO app for real clients to talk to.

    python tests/support/servers/interop_server.py --port N [--asgi-only] [--max-payload BYTES]

Namespace ``/`` (JWT required: ``auth.token``, ``?token=`` or ``Authorization: Bearer``):

* ``echo`` acks with all its arguments;
* ``join`` / ``leave`` (room name) ack ``{"ok": true, "room": name}``;
* ``bcast`` ``{"room", "event", "args"}`` emits ``event`` with ``args`` to the room and acks
  ``{"ok": true}``; ``bcast-others`` does the same without the sender;
* ``whoami`` acks the identity ``{"user_id", "name", "role", "namespace"}``;
* ``ask-client`` emits ``question`` (with the event's arguments) WITH an ack to the sender; when
  the client answers, the server emits ``answer`` with the client's ack arguments (or
  ``answer-timeout`` when it does not answer in time). The call runs in the namespace's nursery:
  a handler must not wait on its own client;
* ``binary-echo`` acks with its arguments (bytes included) and emits ``binary-back`` with them;
* ``gc-collect`` (test-only, for tests/hardening) runs a full garbage collection and acks
  ``{"collected": N, "objects": M, "types": {...}}`` (M: objects the collector tracks
  afterwards; the 15 commonest types among them);
* ``crash-room`` (room name; test-only, for tests/hardening) sends that room's actor a message
  it does not understand, so the actor raises and its supervisor restarts it; acks ``{"ok": true}``.

* ``drop-transport`` acks, then closes the client's Engine.IO connection as a server that
  drops it would ("forced close": the Socket.IO session may be recovered);
* ``cluster:fetch`` (rooms), ``cluster:all-rooms``, ``cluster:join`` (of, rooms),
  ``cluster:disconnect`` (rooms, close?), ``cluster:server-side`` (event, args...),
  ``cluster:emit-with-ack`` (room, event, args...) call the namespace's operations on sockets of
  every node and ack what they return; another server's ``serverSideEmit("ping", ...)`` is
  answered ``{"pong": "switchboard", "args": [...]}``.

``--set NAME=VALUE`` (repeatable, test-only) overrides any setting of
``web.platform.settings.Settings`` (e.g. ``--set ping_interval_ms=300``).

Namespace ``/admin`` (JWT required): ``whoami``.

The JWT secret is ``tests.support.tokens.INTEROP_SECRET``: tests make tokens with
``tests.support.tokens.interop_token(...)``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import sys
import tempfile
import warnings
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from actors.sockets.session import AckTimeout, Session
from tests.support.tokens import INTEROP_SECRET as SECRET
from web.platform.auth import Authenticator, jwt_middleware
from web.platform.settings import Settings, _coerce
from web.server import run
from web.sockets.namespace import Ack, Namespace


class Broadcast(msgspec.Struct):
    room: str
    event: str
    args: list[Any] = []


def _identity(session: Session) -> dict[str, Any]:
    ident = session.identity
    assert ident is not None  # the JWT middleware ran
    return {
        "user_id": ident.user_id,
        "name": ident.name,
        "role": ident.role,
        "namespace": session.namespace,
    }


def interop_namespaces(authenticator: Authenticator) -> list[Namespace]:
    main = Namespace("/")
    main.use(jwt_middleware(authenticator))
    admin = Namespace("/admin")
    admin.use(jwt_middleware(authenticator))
    nurseries: list[trio.Nursery] = []

    @main.on_startup
    async def keep_nursery(nursery: trio.Nursery) -> None:
        nurseries.append(nursery)

    @main.on("echo")
    async def echo(session: Session, args: list[Any], ack: Ack | None) -> None:
        if ack is not None:
            ack(*args)

    @main.on("join", schema=str)
    async def join(session: Session, room: str, ack: Ack | None) -> None:
        await main.rooms.join(session, room)
        if ack is not None:
            ack({"ok": True, "room": room})

    @main.on("leave", schema=str)
    async def leave(session: Session, room: str, ack: Ack | None) -> None:
        await main.rooms.leave(session, room)
        if ack is not None:
            ack({"ok": True, "room": room})

    @main.on("bcast", schema=Broadcast)
    async def bcast(session: Session, message: Broadcast, ack: Ack | None) -> None:
        await main.emit(message.event, *message.args, to=message.room)
        if ack is not None:
            ack({"ok": True})

    @main.on("bcast-others", schema=Broadcast)
    async def bcast_others(session: Session, message: Broadcast, ack: Ack | None) -> None:
        await main.emit(message.event, *message.args, to=message.room, exclude=[session.sid])
        if ack is not None:
            ack({"ok": True})

    @main.on("whoami")
    async def whoami(session: Session, args: list[Any], ack: Ack | None) -> None:
        if ack is not None:
            ack(_identity(session))

    @main.on("ask-client")
    async def ask_client(session: Session, args: list[Any], ack: Ack | None) -> None:
        async def ask() -> None:
            try:
                answer = await session.call("question", *args, timeout=5.0)
            except AckTimeout as err:
                session.emit("answer-timeout", str(err))
                return
            session.emit("answer", *answer)

        nurseries[0].start_soon(ask)
        if ack is not None:
            ack({"ok": True})

    @main.on("binary-echo")
    async def binary_echo(session: Session, args: list[Any], ack: Ack | None) -> None:
        session.emit("binary-back", *args)
        if ack is not None:
            ack(*args)

    @main.on("gc-collect")
    async def gc_collect(session: Session, args: list[Any], ack: Ack | None) -> None:
        collected = gc.collect()
        objects = gc.get_objects()
        types = Counter(type(o).__qualname__ for o in objects).most_common(15)
        if ack is not None:
            ack({"collected": collected, "objects": len(objects), "types": dict(types)})

    @main.on("drop-transport")
    async def drop_transport(session: Session, args: list[Any], ack: Ack | None) -> None:
        if ack is not None:
            ack({"ok": True})
        session.conn.close("forced close")  # the server ends the connection, not the session

    @main.on("crash-room", schema=str)
    async def crash_room(session: Session, room: str, ack: Ack | None) -> None:
        await main.rooms.registry.tell(room, object())  # a RoomActor raises on unknown messages
        if ack is not None:
            ack({"ok": True})

    # --- the cluster API from a handler (run beside the reader: acks may come from this client)
    def in_background(ack: Ack | None, work: Callable[[], Awaitable[object]]) -> None:
        async def run() -> None:
            answer = await work()
            if ack is not None:
                ack(answer)

        nurseries[0].start_soon(run)

    @main.on("cluster:fetch")
    async def cluster_fetch(session: Session, args: list[Any], ack: Ack | None) -> None:
        async def fetch() -> object:
            found = await main.fetch_sockets(args[0] if args else ())
            return [{"id": s.id, "rooms": s.rooms, "node": s.node} for s in found]

        in_background(ack, fetch)

    @main.on("cluster:all-rooms")
    async def cluster_all_rooms(session: Session, args: list[Any], ack: Ack | None) -> None:
        async def rooms() -> object:
            return sorted(await main.all_rooms())

        in_background(ack, rooms)

    @main.on("cluster:join")
    async def cluster_join(session: Session, args: list[Any], ack: Ack | None) -> None:
        async def join() -> object:
            await main.sockets_join(args[1], of=args[0])
            return {"ok": True}

        in_background(ack, join)

    @main.on("cluster:disconnect")
    async def cluster_disconnect(session: Session, args: list[Any], ack: Ack | None) -> None:
        async def disconnect() -> object:
            await main.disconnect_sockets(of=args[0], close=bool(args[1:] and args[1]))
            return {"ok": True}

        in_background(ack, disconnect)

    @main.on("cluster:server-side")
    async def cluster_server_side(session: Session, args: list[Any], ack: Ack | None) -> None:
        async def emit() -> object:
            return await main.server_side_emit(*args, ack=True, timeout=3.0)

        in_background(ack, emit)

    @main.on("cluster:emit-with-ack")
    async def cluster_emit_with_ack(session: Session, args: list[Any], ack: Ack | None) -> None:
        room, event, *rest = args

        async def ask() -> object:
            got = await main.emit_with_ack(event, *rest, to=room or None, timeout=2.0)
            return {"answers": got.answers, "expected": got.expected, "timed_out": got.timed_out}

        in_background(ack, ask)

    @main.on_server_side("ping")
    async def pong(args: list[object]) -> object:
        return {"pong": "switchboard", "args": args}

    @admin.on("whoami")
    async def admin_whoami(session: Session, args: list[Any], ack: Ack | None) -> None:
        if ack is not None:
            ack(_identity(session))

    return [main, admin]


def main() -> None:
    from web.platform.app import create_app

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--asgi-only", action="store_true", help="WebSocket through Quart only")
    parser.add_argument(
        "--max-payload", type=int, default=1_000_000, help="max_http_buffer_size_bytes"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a setting (test-only; repeatable)",
    )
    args = parser.parse_args()
    overrides: dict[str, Any] = {}
    kinds = {f.name: f.type for f in dataclasses.fields(Settings)}
    for item in args.set:
        name, _, raw = item.partition("=")
        if name not in kinds:
            parser.error(f"--set: unknown setting {name!r}")
        overrides[name] = _coerce(kinds[name], raw)
    settings = Settings(
        host=args.host,
        port=args.port,
        data_dir=os.environ.get("SWITCHBOARD_DATA_DIR") or tempfile.mkdtemp(prefix="interop-"),
        native_websocket=not args.asgi_only,
        jwt_secret=SECRET,
        max_http_buffer_size_bytes=args.max_payload,
        cors_origins=["*"],
        log_level="warning",
    )
    settings = dataclasses.replace(settings, **overrides)
    # the short test secret is deliberate; keep PyJWT's key-length warning out of the logs
    warnings.filterwarnings("ignore", message="The HMAC key is")
    namespaces = interop_namespaces(Authenticator(SECRET))
    app = create_app(settings, namespaces=namespaces)
    run(app, settings, on_ready=lambda port: print(f"ready on {port}", flush=True))


if __name__ == "__main__":
    main()
