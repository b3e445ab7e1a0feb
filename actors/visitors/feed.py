"""The raw visitor feed on the trio side: a connected dashboard's outbox and every feed message.

A feed message is one JSON text frame ``{"type": ..., "data": ...}`` (:class:`FeedMessage`);
``data`` is one of the Structs below (or a view of :mod:`actors.visitors.model`). The session
aggregator sends most of them; the feed's connection tasks (in the web layer) send ``error`` and
``dashboard_action_recorded``.
"""

from __future__ import annotations

import itertools
from typing import Literal

import msgspec
import trio

from actors.eventlog.views import CurrentStats
from actors.visitors.model import Detailed, SessionView, VisitorEvent

SLOW_CONSUMER = "slow consumer: too many messages queued"
ALERT_MESSAGE = "High visitor activity detected!"


# --- the messages (server -> dashboard) ----------------------------------------------------------
class UserConnected(msgspec.Struct):
    """``user_connected``: a dashboard connected (to every dashboard, the new one included)."""

    total_dashboards: int
    connected_at: str


class UserDisconnected(msgspec.Struct):
    """``user_disconnected``: a dashboard left."""

    total_dashboards: int
    disconnected_at: str


class VisitorUpdate(msgspec.Struct):
    """``visitor_update``: one committed event and the counters after it."""

    event: VisitorEvent
    stats: CurrentStats


class SessionsExpired(msgspec.Struct):
    """``sessions_expired``: sessions that ended for lack of activity."""

    session_ids: list[str]
    stats: CurrentStats


class AlertDetails(msgspec.Struct):
    visitors_last_minute: int
    threshold: int


class Alert(msgspec.Struct):
    """``alert``: more visitors in the last minute than the threshold."""

    level: Literal["info"]
    message: str
    details: AlertDetails


class ActionRecorded(msgspec.Struct):
    """``dashboard_action_recorded``: a ``track_dashboard_action`` was stored."""

    id: int
    action: str
    recorded_at: str


class FeedError(msgspec.Struct):
    """``error``: what was wrong with a dashboard's message (or why it is refused)."""

    message: str


FeedKind = Literal[
    "user_connected",
    "user_disconnected",
    "visitor_update",
    "session_activity",
    "sessions_expired",
    "alert",
    "detailed_stats",
    "dashboard_action_recorded",
    "error",
]
FeedData = (
    UserConnected
    | UserDisconnected
    | VisitorUpdate
    | SessionView  # session_activity
    | SessionsExpired
    | Alert
    | Detailed  # detailed_stats
    | ActionRecorded
    | FeedError
)


class FeedMessage(msgspec.Struct):
    type: FeedKind
    data: FeedData


_encode = msgspec.json.encode
_ids = itertools.count(1)


def feed_text(kind: FeedKind, data: FeedData) -> str:
    """A feed message as the text of one WebSocket frame."""
    return _encode(FeedMessage(kind, data)).decode()


# --- one connected dashboard ---------------------------------------------------------------------
class Dashboard:
    """One connected feed client: a bounded outbox its writer task drains to the socket."""

    def __init__(self, feed: str, max_queued: int, user: str | None = None) -> None:
        self.id = next(_ids)
        self.feed = feed
        self.user = user
        self._send, self.outbox = trio.open_memory_channel[str](max(1, max_queued))
        self.close_code: int | None = None
        self.close_reason = ""
        self.finished = trio.Event()  # set by its writer once the socket is closed

    @property
    def closed(self) -> bool:
        return self.close_code is not None

    def offer(self, text: str) -> bool:
        """Queue a message; a full outbox closes the dashboard (slow consumer): False."""
        if self.close_code is not None:
            return False
        try:
            self._send.send_nowait(text)
        except trio.WouldBlock:
            self.close(1008, SLOW_CONSUMER)
            return False
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.close(1001, "gone")
            return False
        return True

    def close(self, code: int, reason: str) -> None:
        """Stop the outbox: the writer closes the socket with ``code`` and ``reason``."""
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
        self._send.close()
