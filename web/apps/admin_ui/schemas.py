"""The Admin UI's commands, as it sends them: positional arguments (``socket.emit("join", nsp,
room, filter)``), read as array-like Structs. ``filter`` is a room (a socket's id names its own
room); absent, the command is for the whole namespace."""

from __future__ import annotations

import msgspec


class Command(msgspec.Struct, array_like=True, frozen=True):
    nsp: str  # the namespace it acts on


class EmitCommand(Command, array_like=True, frozen=True):
    """``emit(nsp, filter, event, ...args)``; the event's arguments follow these three."""

    filter: str | None
    event: str


class RoomCommand(Command, array_like=True, frozen=True):
    """``join(nsp, room, filter?)`` and ``leave(nsp, room, filter?)``."""

    room: str
    filter: str | None = None


class DisconnectCommand(Command, array_like=True, frozen=True):
    """``_disconnect(nsp, close, filter?)``: ``close`` ends the sockets' whole connection."""

    close: bool = False
    filter: str | None = None
