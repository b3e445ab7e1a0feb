"""The guild monitor's events on the default namespace ``/``: dashboards subscribe, bots report.

A refusal is answered with ``error`` (and ``{success: false, message}`` when the client asked for
an ack); the arguments are taken raw, so a malformed guild id gets the guild id message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors.guild.aggregator import analytics_room, guild_room
from actors.guild.model import GUILD_ID_RULE, valid_guild_id
from actors.identity import Identity
from actors.sockets.rooms import RoomLimitReached
from actors.sockets.session import Session
from web.apps.guild.schemas import ErrorEvent, Subscribed
from web.platform.http import ApiError, Failure
from web.sockets.namespace import Ack

if TYPE_CHECKING:
    from web.apps.guild import GuildMonitor

ROOM_PREFIX = "guild:"
ANALYTICS_SUFFIX = ":analytics"


def register(monitor: GuildMonitor) -> None:
    """The event table of ``/`` for the guild monitor: one function per event."""
    ns = monitor.ns

    @ns.on("subscribe:guild")
    async def subscribe_guild(session: Session, args: list[object], ack: Ack | None) -> None:
        await subscribe(monitor, session, args, ack, analytics=False)

    @ns.on("subscribe:analytics")
    async def subscribe_analytics(session: Session, args: list[object], ack: Ack | None) -> None:
        await subscribe(monitor, session, args, ack, analytics=True)

    @ns.on("unsubscribe:guild")
    async def unsubscribe_guild(session: Session, args: list[object], ack: Ack | None) -> None:
        await unsubscribe(monitor, session, args, ack, analytics=False)

    @ns.on("unsubscribe:analytics")
    async def unsubscribe_analytics(session: Session, args: list[object], ack: Ack | None) -> None:
        await unsubscribe(monitor, session, args, ack, analytics=True)

    @ns.on("guild:event")
    async def guild_event(session: Session, args: list[object], ack: Ack | None) -> None:
        await ingest(monitor, session, args, ack)


def watched_guilds(session: Session) -> set[str]:
    """The guilds whose guild or analytics room this socket is in."""
    return {
        room[len(ROOM_PREFIX) :].removesuffix(ANALYTICS_SUFFIX)
        for room in session.rooms
        if room.startswith(ROOM_PREFIX)
    }


async def subscribe(
    monitor: GuildMonitor,
    session: Session,
    args: list[object],
    ack: Ack | None,
    *,
    analytics: bool,
) -> None:
    """``subscribe:guild`` / ``subscribe:analytics``: join the room (within the socket's limit);
    the analytics snapshot follows at once, to this socket only."""
    try:
        guild_id = _guild_id(args)
        identity = _identity(monitor, session)
        if not monitor.may_watch(identity, guild_id):
            raise ApiError(403, f"Not authorised for guild {guild_id}")
        room = analytics_room(guild_id) if analytics else guild_room(guild_id)
        if room not in session.rooms:
            watched = watched_guilds(session)
            limit = monitor.settings.guild_max_subscriptions_per_socket
            if guild_id not in watched and len(watched) >= limit:
                raise ApiError(
                    429, f"Subscription limit reached: at most {limit} guilds per connection"
                )
            await monitor.ns.rooms.join(session, room)
    except ApiError as refusal:
        _refuse(session, ack, refusal.message)
        return
    except RoomLimitReached as limit:
        _refuse(session, ack, str(limit))
        return
    if analytics:
        await monitor.guilds.send_snapshot(guild_id, session)
    if ack is not None:
        ack(Subscribed(success=True, guild_id=guild_id))


async def unsubscribe(
    monitor: GuildMonitor,
    session: Session,
    args: list[object],
    ack: Ack | None,
    *,
    analytics: bool,
) -> None:
    """``unsubscribe:guild`` / ``unsubscribe:analytics``: leave the room (a no-op if not in it)."""
    try:
        guild_id = _guild_id(args)
    except ApiError as refusal:
        _refuse(session, ack, refusal.message)
        return
    room = analytics_room(guild_id) if analytics else guild_room(guild_id)
    if room in session.rooms:
        await monitor.ns.rooms.leave(session, room)
    if ack is not None:
        ack(Subscribed(success=True, guild_id=guild_id))


async def ingest(
    monitor: GuildMonitor, session: Session, args: list[object], ack: Ack | None
) -> None:
    """``guild:event`` (guild id, event or events): answered once committed. A refusal goes
    to the ack, or as ``error`` when no ack was asked for."""
    try:
        guild_id = _guild_id(args)
        identity = _identity(monitor, session)
        body = args[1] if len(args) > 1 else None
        answer = await monitor.ingest(identity, guild_id, body)
    except ApiError as refusal:
        if ack is not None:
            ack(Failure(False, refusal.message))
        else:
            session.emit("error", ErrorEvent(refusal.message))
        return
    if ack is not None:
        ack(answer)


def _refuse(session: Session, ack: Ack | None, message: str) -> None:
    session.emit("error", ErrorEvent(message))
    if ack is not None:
        ack(Failure(False, message))


def _identity(monitor: GuildMonitor, session: Session) -> Identity:
    identity = session.identity
    if identity is None:
        raise ApiError(401, "Authentication failed: no token provided")
    if identity.expires_at is not None and identity.expires_at <= monitor.clock.now():
        raise ApiError(401, "Authentication failed: token expired")
    return identity


def _guild_id(args: list[object]) -> str:
    guild_id = args[0] if args else None
    if not isinstance(guild_id, str) or not valid_guild_id(guild_id):
        raise ApiError(400, f"Invalid guild id: {GUILD_ID_RULE}")
    return guild_id
