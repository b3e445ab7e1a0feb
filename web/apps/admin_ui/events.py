"""The admin namespace's table: what a signed-in UI is sent, and its commands.

On connect the UI gets its ``session`` id (after a form sign-in), ``config`` (the features this
server supports) and, in development mode, ``all_sockets``: every socket of every namespace, on
every node. Its commands act on any namespace, on every node (the broker's operations on
sockets, as Node's ``socketsJoin``/``socketsLeave``/``disconnectSockets``). A command that does
not fit its arguments, or names a namespace this server does not have, is ignored and logged:
the UI sends no ack and expects none.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import msgspec

from actors.admin_ui.wire import AdminConfig, AdminSocket, admin_socket
from actors.sockets.session import Session
from web.apps.admin_ui.login import SignedIn
from web.apps.admin_ui.schemas import Command, DisconnectCommand, EmitCommand, RoomCommand
from web.sockets.namespace import Ack, Namespace

log = logging.getLogger("switchboard.admin_ui")
C = TypeVar("C", bound=Command)


def register(
    admin: Namespace,
    namespaces: Mapping[str, Namespace],
    *,
    features: list[str],
    development: bool,
    readonly: bool,
) -> None:
    async def welcome(session: Session) -> None:
        state = session.state
        if isinstance(state, SignedIn) and state.new_session_id is not None:
            session.emit("session", state.new_session_id)
        session.emit("config", AdminConfig(features))
        if development:
            session.emit("all_sockets", await all_sockets(namespaces))

    admin.connect(welcome)
    if readonly:
        return

    def command(
        name: str, kind: type[C], run: Callable[[Namespace, C, list[object]], Awaitable[None]]
    ) -> None:
        async def handler(session: Session, args: list[object], ack: Ack | None) -> None:
            try:
                parsed = msgspec.convert(args, kind)
            except msgspec.ValidationError as err:
                log.info("admin command %s ignored: %s", name, err)
                return
            ns = namespaces.get(parsed.nsp)
            if ns is None:
                log.info("admin command %s ignored: no namespace %r", name, parsed.nsp)
                return
            await run(ns, parsed, args)

        admin.on(name)(handler)

    command("emit", EmitCommand, emit)
    command("join", RoomCommand, join)
    command("leave", RoomCommand, leave)
    command("_disconnect", DisconnectCommand, disconnect)


async def all_sockets(namespaces: Mapping[str, Namespace]) -> list[AdminSocket]:
    found: list[AdminSocket] = []
    for name, ns in namespaces.items():
        found.extend(admin_socket(info, name) for info in await ns.fetch_sockets())
    return found


def _of(room: str | None) -> tuple[str, ...]:
    return (room,) if room else ()


async def emit(ns: Namespace, c: EmitCommand, args: list[object]) -> None:
    await ns.emit(c.event, *args[3:], to=c.filter or None)


async def join(ns: Namespace, c: RoomCommand, args: list[object]) -> None:
    await ns.sockets_join([c.room], of=_of(c.filter))


async def leave(ns: Namespace, c: RoomCommand, args: list[object]) -> None:
    await ns.sockets_leave([c.room], of=_of(c.filter))


async def disconnect(ns: Namespace, c: DisconnectCommand, args: list[object]) -> None:
    await ns.disconnect_sockets(of=_of(c.filter), close=c.close)
