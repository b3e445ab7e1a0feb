"""The guild event model: what a bot reports, how it is checked, and what dashboards receive.

A bot posts events of six kinds, one JSON object each, told apart by ``kind`` (camelCase fields,
unknown fields ignored):

=============  ==========================================================================
``kind``       fields besides ``userId``, ``username`` (and the optional ``id``, ``timestamp``)
=============  ==========================================================================
``message``    ``channelId``, ``channelName``
``typing``     ``channelId`` (``channelName`` optional)
``presence``   ``status`` (online/idle/dnd/offline), ``platforms`` (e.g. ["desktop", "mobile"];
               empty or absent when offline), ``channelId`` optional
``reaction``   ``channelId`` (``messageId``, ``emoji`` optional)
``role``       ``addedRoles`` (at least one role name)
``join``       ``accountAgeDays`` (a whole number >= 0)
=============  ==========================================================================

``timestamp`` is ISO 8601 (no offset means UTC); absent means "now" on the service clock; at most
``max_future_seconds`` ahead of it. ``id`` (optional) makes an event idempotent per guild: an id
already stored is acknowledged but neither stored, broadcast nor counted again. Every string is
1..``max_string_chars`` characters; a platform name is a lowercase word.

:func:`parse_events` turns a request body (one event, an array, or ``{"events": [...]}``) into
:class:`GuildEvent` records or raises :class:`GuildEventError` saying what and where.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec

from actors.clock import iso

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
Platform = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
Status = Literal["online", "idle", "dnd", "offline"]
KINDS = ("message", "typing", "presence", "reaction", "role", "join")

GUILD_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
GUILD_ID_RULE = "a guild id is 1-64 letters, digits, '_' or '-'"


class GuildEventError(ValueError):
    """A request whose events cannot be accepted; ``str()`` is safe to show the client."""


def valid_guild_id(value: object) -> bool:
    return isinstance(value, str) and GUILD_ID.match(value) is not None


# --- wire model (what bots send) -------------------------------------------------------------
class _EventIn(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", rename="camel"):
    user_id: NonEmpty
    username: NonEmpty
    id: NonEmpty | None = None
    timestamp: datetime | None = None


class MessageIn(_EventIn, frozen=True, kw_only=True, tag="message"):
    channel_id: NonEmpty
    channel_name: NonEmpty


class TypingIn(_EventIn, frozen=True, kw_only=True, tag="typing"):
    channel_id: NonEmpty
    channel_name: NonEmpty | None = None


class PresenceIn(_EventIn, frozen=True, kw_only=True, tag="presence"):
    status: Status
    platforms: list[Platform] = []
    channel_id: NonEmpty | None = None


class ReactionIn(_EventIn, frozen=True, kw_only=True, tag="reaction"):
    channel_id: NonEmpty
    message_id: NonEmpty | None = None
    emoji: NonEmpty | None = None


class RoleIn(_EventIn, frozen=True, kw_only=True, tag="role"):
    added_roles: Annotated[list[NonEmpty], msgspec.Meta(min_length=1)]


class JoinIn(_EventIn, frozen=True, kw_only=True, tag="join"):
    account_age_days: Annotated[int, msgspec.Meta(ge=0)]


EventIn = MessageIn | TypingIn | PresenceIn | ReactionIn | RoleIn | JoinIn


class EventBatch(msgspec.Struct, frozen=True):
    """A request body of the third shape: ``{"events": [...]}``."""

    events: list[EventIn]


# --- the record (stored, and what the aggregator counts) -------------------------------------
class GuildEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One accepted event: ``at`` is its time (epoch seconds, service clock); ``seq`` its order
    in the store (0 until stored). ``platforms`` is sorted and empty when offline."""

    guild_id: str
    kind: str
    user_id: str
    username: str
    at: float
    event_id: str | None = None
    seq: int = 0
    channel_id: str | None = None
    channel_name: str | None = None
    status: str | None = None
    platforms: tuple[str, ...] = ()
    added_roles: tuple[str, ...] = ()
    account_age_days: int | None = None
    message_id: str | None = None
    emoji: str | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    max_batch_events: int = 500
    max_string_chars: int = 256
    max_future_seconds: float = 300.0


# one event or many: msgspec converts to the union (mypy has no type for a union as a value)
_ONE_OR_MANY: Any = EventIn | list[EventIn]


def _strings(event: _EventIn) -> list[tuple[str, str]]:
    fields: list[tuple[str, str]] = []
    for name in event.__struct_fields__:
        value = getattr(event, name)
        if isinstance(value, str):
            fields.append((name, value))
        elif isinstance(value, list):
            fields.extend((name, v) for v in value if isinstance(v, str))
    return fields


_CAMEL = {
    "user_id": "userId",
    "channel_id": "channelId",
    "channel_name": "channelName",
    "message_id": "messageId",
    "added_roles": "addedRoles",
    "account_age_days": "accountAgeDays",
}


def parse_events(raw: object, guild_id: str, now: float, limits: Limits) -> list[GuildEvent]:
    """Validate a body (one event, an array, or ``{"events": [...]}``) for ``guild_id``."""
    body = raw
    if isinstance(raw, dict) and "events" in raw and "kind" not in raw:
        body = raw["events"]
    if isinstance(body, list) and not body:
        raise GuildEventError("Invalid guild event: no events given")
    if isinstance(body, list) and len(body) > limits.max_batch_events:
        raise GuildEventError(f"Too many events: at most {limits.max_batch_events} in one request")
    try:
        converted: EventIn | list[EventIn] = msgspec.convert(body, _ONE_OR_MANY)
    except msgspec.ValidationError as err:
        raise GuildEventError(f"Invalid guild event: {_explain(err)}") from None
    if not isinstance(converted, list):
        return [_accepted(converted, "$", guild_id, now, limits)]
    return [
        _accepted(item, f"$[{index}]", guild_id, now, limits)
        for index, item in enumerate(converted)
    ]


def _accepted(item: EventIn, where: str, guild_id: str, now: float, limits: Limits) -> GuildEvent:
    """``item`` (at JSON path ``where``) checked against the limits, as a record."""
    for name, value in _strings(item):
        if len(value) > limits.max_string_chars:
            raise GuildEventError(
                f"Invalid guild event: {where}.{_CAMEL.get(name, name)} is longer than "
                f"{limits.max_string_chars} characters"
            )
    at = now
    if item.timestamp is not None:
        stamp = item.timestamp
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        at = stamp.timestamp()
        if at > now + limits.max_future_seconds:
            raise GuildEventError(
                f"Invalid guild event: {where}.timestamp is more than "
                f"{limits.max_future_seconds:g} seconds in the future"
            )
    return _record(item, guild_id, at)


def _explain(err: msgspec.ValidationError) -> str:
    text = str(err)
    if "`kind`" in text or "$.kind" in text or "].kind" in text:
        return f"{text} (kind is one of {', '.join(KINDS)})"
    return text


def _record(item: EventIn, guild_id: str, at: float) -> GuildEvent:
    base: dict[str, Any] = {
        "guild_id": guild_id,
        "user_id": item.user_id,
        "username": item.username,
        "at": at,
        "event_id": item.id,
    }
    if isinstance(item, MessageIn):
        return GuildEvent(
            kind="message", channel_id=item.channel_id, channel_name=item.channel_name, **base
        )
    if isinstance(item, TypingIn):
        return GuildEvent(
            kind="typing", channel_id=item.channel_id, channel_name=item.channel_name, **base
        )
    if isinstance(item, PresenceIn):
        platforms = () if item.status == "offline" else tuple(sorted(set(item.platforms)))
        return GuildEvent(
            kind="presence",
            status=item.status,
            platforms=platforms,
            channel_id=item.channel_id,
            **base,
        )
    if isinstance(item, ReactionIn):
        return GuildEvent(
            kind="reaction",
            channel_id=item.channel_id,
            message_id=item.message_id,
            emoji=item.emoji,
            **base,
        )
    if isinstance(item, RoleIn):
        return GuildEvent(kind="role", added_roles=tuple(item.added_roles), **base)
    assert isinstance(item, JoinIn)
    return GuildEvent(kind="join", account_age_days=item.account_age_days, **base)


# --- what dashboards receive (the guild room's events) --------------------------------------
class _LiveOut(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    user_id: str
    username: str


class MessageNew(_LiveOut, frozen=True, kw_only=True):
    """``message:new``."""

    channel_id: str
    channel_name: str
    timestamp: str


class PresenceUpdate(_LiveOut, frozen=True, kw_only=True):
    """``presence:update``."""

    status: str
    timestamp: str


class RoleChange(_LiveOut, frozen=True, kw_only=True):
    """``role:change``."""

    added_roles: tuple[str, ...]
    timestamp: str


class UserJoin(_LiveOut, frozen=True, kw_only=True):
    """``user:join``."""

    account_age_days: int
    timestamp: str


class MultiClientAlert(_LiveOut, frozen=True, kw_only=True):
    """``alert:multiClient``: ``platforms`` sorted."""

    platforms: tuple[str, ...]
    timestamp: str


LiveEvent = MessageNew | PresenceUpdate | RoleChange | UserJoin


def live_event(event: GuildEvent) -> tuple[str, LiveEvent] | None:
    """The guild-room event for ``event`` (the seed's payloads), or None (typing, reaction)."""
    user, name, stamp = event.user_id, event.username, iso(event.at)
    if event.kind == "message":
        return "message:new", MessageNew(
            user_id=user,
            username=name,
            channel_id=event.channel_id or "",
            channel_name=event.channel_name or "",
            timestamp=stamp,
        )
    if event.kind == "presence":
        status = event.status or ""
        return "presence:update", PresenceUpdate(
            user_id=user, username=name, status=status, timestamp=stamp
        )
    if event.kind == "role":
        roles = event.added_roles
        return "role:change", RoleChange(
            user_id=user, username=name, added_roles=roles, timestamp=stamp
        )
    if event.kind == "join":
        age = event.account_age_days or 0
        return "user:join", UserJoin(
            user_id=user, username=name, account_age_days=age, timestamp=stamp
        )
    return None


def multi_client_alert(event: GuildEvent) -> MultiClientAlert:
    return MultiClientAlert(
        user_id=event.user_id,
        username=event.username,
        platforms=event.platforms,
        timestamp=iso(event.at),
    )
