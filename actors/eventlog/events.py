"""The event model: one wire model for both spellings, one normalised record for the log.

Wire (:class:`EventIn`): the visitor spelling (``type``, ``page``, ``session_id``, ``timestamp``,
``country``, ``metadata.device``, ``metadata.referrer``) and the product spelling (``eventName``,
``userId``, ``country``, ``device``, ``referrer``, ``properties``) are fields of ONE model; an event
may mix them. :func:`normalise` turns it into an :class:`Event` (the log record) or raises
:class:`EventError` naming the field.

Rules (also in ``docs/api/analytics.md``, "The event model"):

* the event's name is ``eventName`` or ``type``; one of them is required, and when both are given
  they must agree (likewise ``device``/``metadata.device`` and ``referrer``/``metadata.referrer``);
* optional strings that are empty are treated as absent; every string field is at most
  ``max_string_chars`` characters;
* ``timestamp`` is an ISO 8601 date-time (no offset means UTC) or a number of epoch
  milliseconds (JavaScript's ``Date.now()``); absent means "when the server received it"; it may
  be at most ``max_future_seconds`` ahead of and ``max_past_seconds`` behind the server's clock;
* every event says who sent it: a ``session_id`` or a ``userId`` (or both). Without either it
  is refused, naming ``session_id``: an event nobody can attribute would still count in today's
  totals and reach the visitor feed as an update no session owns. This rule is checked after the
  others, so a malformed field is named first;
* ``id`` (optional) makes the event idempotent: an id already in the log is not stored again;
  without one the server assigns ``evt_<27 hex>`` (time-ordered);
* unknown top-level fields are ignored; ``properties`` and the rest of ``metadata`` are kept as
  given (bounded by the request's body size, and nesting at most ``max_nesting`` levels).
"""

from __future__ import annotations

import itertools
import math
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec


class EventError(ValueError):
    """An event that cannot be accepted; ``field`` is the JSON path of the culprit."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.field = field
        self.problem = problem


class EventIn(msgspec.Struct, kw_only=True):
    """One posted event, either spelling (unknown fields are ignored)."""

    id: str | None = None
    type: str | None = None
    event_name: str | None = msgspec.field(default=None, name="eventName")
    user_id: str | None = msgspec.field(default=None, name="userId")
    session_id: str | None = None
    page: str | None = None
    timestamp: str | float | None = None
    country: str | None = None
    device: str | None = None
    referrer: str | None = None
    metadata: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """A stored event (the log's record, and the message aggregators receive).

    ``timestamp`` is the event's time and ``received_at`` the server's, both epoch seconds on the
    service clock; ``seq`` is the log's order (0 until stored).
    """

    id: str
    name: str
    user_id: str | None = None
    session_id: str | None = None
    page: str | None = None
    country: str | None = None
    device: str | None = None
    referrer: str | None = None
    timestamp: float
    received_at: float
    properties: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    seq: int = 0

    @property
    def user_key(self) -> str | None:
        """Who sent it, for distinct-user counts: ``userId``, else ``session_id``."""
        return self.user_id or self.session_id


@dataclass(frozen=True, slots=True)
class EventLimits:
    max_string_chars: int = 1024
    max_future_seconds: float = 300.0
    max_past_seconds: float = 604_800.0
    max_nesting: int = 28  # of properties/metadata: the pushes that carry them stay in max depth


def _nesting(value: dict[str, Any] | list[Any]) -> int:
    """How deep arrays/objects nest in ``value`` (iterative; ``{}`` is 1). Only containers are
    stacked: the common flat ``properties`` costs one pass over its values."""
    deepest = 0
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > deepest:
            deepest = depth
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return deepest


def _text(value: object, field: str, limits: EventLimits) -> str | None:
    """A string found inside ``metadata`` (any JSON type): checked for type and length."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise EventError(field, f"expected a string, got {type(value).__name__}")
    return _string(value, field, "", limits.max_string_chars)


def _string(value: str | None, where: str, label: str, cap: int) -> str | None:
    """A top-level string field (the decoder already checked its type): its length, and empty
    as absent. The field's path is only built when there is an error to name."""
    if value is None:
        return None
    if len(value) > cap:
        raise EventError(where + label, f"longer than {cap} characters")
    return value or None


def _one_of(a: str | None, a_name: str, b: str | None, b_name: str, where: str) -> str | None:
    if a is not None and b is not None and a != b:
        raise EventError(where + a_name, f"{a_name} {a!r} and {b_name} {b!r} disagree")
    return a if a is not None else b


def parse_timestamp(raw: str | float, field: str = "timestamp") -> float:
    """Epoch seconds from an ISO 8601 string (UTC when no offset) or epoch milliseconds."""
    if isinstance(raw, str):
        text = raw.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise EventError(field, f"not an ISO 8601 date-time: {raw[:40]!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    if isinstance(raw, bool) or not math.isfinite(raw):
        raise EventError(field, "not a valid timestamp")
    return float(raw) / 1000.0


_ID_PREFIX = uuid.uuid4().hex[:8]  # this process
_id_counter = itertools.count()


def new_event_id() -> str:
    """``evt_`` + milliseconds (11 hex) + process (8 hex) + counter (8 hex): unique, and in time
    order, so the log's unique index grows at its end (random ids made inserts 4x slower)."""
    return f"evt_{time.time_ns() // 1_000_000:011x}{_ID_PREFIX}{next(_id_counter) & 0xFFFFFFFF:08x}"


def _timestamp(raw: str | float | None, now: float, limits: EventLimits, where: str) -> float:
    """The event's time: ``now`` when absent, else parsed and within the limits around now."""
    if raw is None:
        return now
    field = where + "timestamp"
    timestamp = parse_timestamp(raw, field)
    if timestamp > now + limits.max_future_seconds:
        raise EventError(field, f"more than {limits.max_future_seconds:g} s in the future")
    if timestamp < now - limits.max_past_seconds:
        raise EventError(field, f"more than {limits.max_past_seconds:g} s in the past")
    return timestamp


def normalise(raw: EventIn, *, now: float, limits: EventLimits, where: str = "") -> Event:
    """Validate one posted event and make its log record (``where`` prefixes field paths)."""
    cap = limits.max_string_chars
    name = _one_of(
        _string(raw.event_name, where, "eventName", cap),
        "eventName",
        _string(raw.type, where, "type", cap),
        "type",
        where,
    )
    if name is None:
        raise EventError(where + "eventName", "an event needs eventName (or type)")
    properties = raw.properties or None
    if properties is not None and _nesting(properties) > limits.max_nesting:
        raise EventError(where + "properties", f"nested deeper than {limits.max_nesting} levels")
    metadata = raw.metadata or None
    meta_device = meta_referrer = None
    if metadata is not None:
        if _nesting(metadata) > limits.max_nesting:
            raise EventError(where + "metadata", f"nested deeper than {limits.max_nesting} levels")
        metadata = dict(metadata)
        meta_device = _text(metadata.pop("device", None), where + "metadata.device", limits)
        meta_referrer = _text(metadata.pop("referrer", None), where + "metadata.referrer", limits)
        metadata = metadata or None
    device = _string(raw.device, where, "device", cap)
    if meta_device is not None:
        device = _one_of(device, "device", meta_device, "metadata.device", where)
    referrer = _string(raw.referrer, where, "referrer", cap)
    if meta_referrer is not None:
        referrer = _one_of(referrer, "referrer", meta_referrer, "metadata.referrer", where)
    event_id = _string(raw.id, where, "id", cap)
    user_id = _string(raw.user_id, where, "userId", cap)
    session_id = _string(raw.session_id, where, "session_id", cap)
    page = _string(raw.page, where, "page", cap)
    country = _string(raw.country, where, "country", cap)
    timestamp = _timestamp(raw.timestamp, now, limits, where)
    if session_id is None and user_id is None:
        raise EventError(where + "session_id", "an event needs a session_id or a userId")
    return Event(
        id=event_id or new_event_id(),
        name=name,
        user_id=user_id,
        session_id=session_id,
        page=page,
        country=country,
        device=device,
        referrer=referrer,
        timestamp=timestamp,
        received_at=now,
        properties=properties,
        metadata=metadata,
    )


_PATH = re.compile(r"^(?P<problem>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)


def validation_error(err: msgspec.ValidationError) -> EventError:
    """msgspec's "Expected `str`, got `int` - at `$.events[0].country`" as an EventError."""
    match = _PATH.match(str(err))
    assert match is not None
    path = (match.group("path") or "").lstrip(".")
    return EventError(path, match.group("problem"))


def iso(ts: float) -> str:
    """ISO 8601 UTC with milliseconds and ``Z`` (the wire's timestamp format)."""
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def time_ago(seconds: float) -> str:
    """ "2s ago", "5m ago", "3h ago", "2d ago" (never negative)."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s ago"
    if s < 3600:
        return f"{s // 60}m ago"
    if s < 86400:
        return f"{s // 3600}h ago"
    return f"{s // 86400}d ago"
