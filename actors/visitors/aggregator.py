"""The session aggregator: one actor owning the visitor sessions and the feed's dashboards.

It follows the event log (:class:`Ingest`, told by the ingest path after each commit), answers the
REST views (:class:`GetStats`, :class:`GetSummary`, :class:`GetSessions`, :class:`GetDetailed`),
and fans the feed out to every connected :class:`Dashboard` (both listeners: the ``/ws/visitors``
route and the optional separate port). Each feed message is encoded once and offered to every
dashboard's bounded outbox; a dashboard whose outbox is full is closed as a slow consumer (the
others never wait for it).

Feed messages (server -> dashboard), ``{"type": ..., "data": ...}``:

* ``user_connected`` ``{total_dashboards, connected_at}`` to all, when a dashboard connects (it
  gets its own); ``user_disconnected`` ``{total_dashboards, disconnected_at}`` when one leaves;
* per committed event: ``visitor_update`` ``{event, stats}`` (``stats`` = ``current_stats`` after
  that event) then, for an event with a ``session_id``, ``session_activity`` (the session, as in
  ``GET /api/analytics/sessions``);
* ``sessions_expired`` ``{session_ids, stats}`` when sessions end for lack of activity;
* ``alert`` ``{level: "info", message: "High visitor activity detected!", details:
  {visitors_last_minute, threshold}}`` when visitors in the last minute exceed the threshold, at
  most once per 60 seconds of the service clock;
* ``detailed_stats`` (the detailed stats for the filter asked) to the asking dashboard only.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import trio

from actors.eventlog.events import Event, iso
from actors.eventlog.log import EventLog
from actors.eventlog.views import CurrentStats
from actors.runtime import Actor, Reply
from actors.visitors.model import (
    DAY,
    NO_FILTER,
    Detailed,
    Filter,
    SessionView,
    VisitorBook,
    visitor_event,
)

log = logging.getLogger("switchboard.visitors")

ALERT_MESSAGE = "High visitor activity detected!"
ALERT_COOLDOWN_SECONDS = 60.0
SLOW_CONSUMER = "slow consumer: too many messages queued"


class FeedMessage(msgspec.Struct):
    type: str
    data: Any


_encode = msgspec.json.encode
_ids = itertools.count(1)


def feed_text(kind: str, data: Any) -> str:
    """A feed message as the text of one WebSocket frame."""
    return _encode(FeedMessage(kind, data)).decode()


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


# --- messages ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Ingest:
    events: tuple[Event, ...]


@dataclass(frozen=True, slots=True)
class GetStats:
    reply: Reply[CurrentStats]


@dataclass(frozen=True, slots=True)
class GetSummary:
    filter: Filter
    reply: Reply[CurrentStats]


@dataclass(frozen=True, slots=True)
class GetSessions:
    filter: Filter
    limit: int | None
    reply: Reply[tuple[list[SessionView], int]]


@dataclass(frozen=True, slots=True)
class GetDetailed:
    filter: Filter
    reply: Reply[Detailed]


@dataclass(frozen=True, slots=True)
class Join:
    dashboard: Dashboard


@dataclass(frozen=True, slots=True)
class Leave:
    dashboard: Dashboard


@dataclass(frozen=True, slots=True)
class RequestDetailed:
    dashboard: Dashboard
    filter: Filter


@dataclass(frozen=True, slots=True)
class Cleanup:
    """The cleanup task's tick: end expired sessions (and announce them)."""


@dataclass(frozen=True, slots=True)
class CloseAll:
    """Close every dashboard (a graceful stop); the reply lists them, to wait for their close."""

    code: int
    reason: str
    reply: Reply[list[Dashboard]] | None = None


@dataclass(frozen=True, slots=True)
class FeedStatus:
    dashboards: dict[str, int]
    active_sessions: int
    alerts: int
    slow_consumers: int


@dataclass(frozen=True, slots=True)
class GetFeedStatus:
    reply: Reply[FeedStatus]


class VisitorAggregator(Actor):
    kind = "visitor-aggregator"

    def __init__(
        self,
        now: Callable[[], float],
        *,
        session_timeout_minutes: float = 30.0,
        alert_threshold: int = 10,
        journey_max_pages: int = 100,
        feeds: tuple[str, ...] = ("/ws/visitors",),
        mailbox_size: int = 1024,
    ) -> None:
        super().__init__(mailbox_size=mailbox_size)
        self.now = now
        self.book = VisitorBook(
            timeout_seconds=session_timeout_minutes * 60.0, journey_max_pages=journey_max_pages
        )
        self.alert_threshold = alert_threshold
        self.feeds = feeds
        self.dashboards: dict[int, Dashboard] = {}
        self.loaded_seq = 0
        self.next_alert_at = float("-inf")
        self.alerts = 0
        self.slow_consumers = 0
        self.expired = 0

    # --- start: rebuild from the log ---------------------------------------------------------
    async def load(self, log: EventLog, *, page: int = 10_000) -> int:
        """Rebuild the sessions and today's counters from the log (call before :meth:`run`):
        the events stamped since midnight UTC yesterday, in log order."""
        now = self.now()
        since = (int(now // DAY) - 1) * DAY
        after = total = 0
        book = self.book
        while True:
            events = await log.since(since, after_seq=after, limit=page)
            for e in events:
                book.apply(e, e.received_at)
            total += len(events)
            if events:
                after = self.loaded_seq = max(self.loaded_seq, events[-1].seq)
            if len(events) < page:
                break
        self.expired += len(book.expire(self.now()))
        return total

    # --- messages ------------------------------------------------------------------------------
    async def handle(self, message: Any) -> None:
        now = self.now()
        ended = self.book.expire(now)
        if ended:
            self.expired += len(ended)
            self._broadcast_expired([s.session_id for s in ended])
        kind = type(message)
        if kind is Ingest:
            self._ingest(message.events, now)
        elif kind is GetStats:
            message.reply.send(self.book.stats())
        elif kind is GetSummary:
            message.reply.send(self.book.stats(message.filter))
        elif kind is GetSessions:
            message.reply.send(self.book.sessions(message.filter, message.limit))
        elif kind is GetDetailed:
            message.reply.send(self.book.detailed(now, message.filter))
        elif kind is RequestDetailed:
            detailed = self.book.detailed(now, message.filter)
            self._offer(message.dashboard, feed_text("detailed_stats", detailed))
        elif kind is Join:
            d = message.dashboard
            self.dashboards[d.id] = d
            self.broadcast(
                "user_connected",
                {"total_dashboards": len(self.dashboards), "connected_at": iso(now)},
            )
        elif kind is Leave:
            if self.dashboards.pop(message.dashboard.id, None) is not None:
                self._announce_leave(now)
        elif kind is Cleanup:
            pass  # expire() above did the work
        elif kind is CloseAll:
            closing = list(self.dashboards.values())
            for d in closing:
                d.close(message.code, message.reason)
            self.dashboards.clear()
            if message.reply is not None:
                message.reply.send(closing)
        elif kind is GetFeedStatus:
            counts = dict.fromkeys(self.feeds, 0)
            for d in self.dashboards.values():
                counts[d.feed] = counts.get(d.feed, 0) + 1
            message.reply.send(
                FeedStatus(counts, len(self.book.active), self.alerts, self.slow_consumers)
            )
        else:
            raise TypeError(f"visitor aggregator got an unknown message {message!r}")

    def _ingest(self, events: tuple[Event, ...], now: float) -> None:
        book = self.book
        loaded = self.loaded_seq
        live = bool(self.dashboards)
        for e in events:
            if e.seq and e.seq <= loaded:  # already read from the log at start
                continue
            session = book.apply(e, now)
            if live:
                self.broadcast("visitor_update", {"event": visitor_event(e), "stats": book.stats()})
                if session is not None:
                    self.broadcast("session_activity", session.view())
        if now >= self.next_alert_at:
            visitors = book.visitors_last_minute(now)
            if visitors > self.alert_threshold:
                self.next_alert_at = now + ALERT_COOLDOWN_SECONDS
                self.alerts += 1
                log.info("visitors: %d visitors in the last minute", visitors)
                self.broadcast(
                    "alert",
                    {
                        "level": "info",
                        "message": ALERT_MESSAGE,
                        "details": {
                            "visitors_last_minute": visitors,
                            "threshold": self.alert_threshold,
                        },
                    },
                )

    # --- fan-out -------------------------------------------------------------------------------
    def broadcast(self, kind: str, data: Any) -> None:
        if not self.dashboards:
            return
        text = feed_text(kind, data)
        gone = [d for d in self.dashboards.values() if not self._offer(d, text)]
        if gone:
            for d in gone:
                self.dashboards.pop(d.id, None)
            self._announce_leave(self.now())

    def _offer(self, d: Dashboard, text: str) -> bool:
        if d.offer(text):
            return True
        if d.close_reason == SLOW_CONSUMER:
            self.slow_consumers += 1
            log.info("visitors: dashboard %d closed as a slow consumer", d.id)
        return False

    def _announce_leave(self, now: float) -> None:
        self.broadcast(
            "user_disconnected",
            {"total_dashboards": len(self.dashboards), "disconnected_at": iso(now)},
        )

    def _broadcast_expired(self, session_ids: list[str]) -> None:
        self.broadcast(
            "sessions_expired", {"session_ids": sorted(session_ids), "stats": self.book.stats()}
        )


__all__ = [
    "NO_FILTER",
    "Cleanup",
    "CloseAll",
    "Dashboard",
    "FeedStatus",
    "GetDetailed",
    "GetFeedStatus",
    "GetSessions",
    "GetStats",
    "GetSummary",
    "Ingest",
    "Join",
    "Leave",
    "RequestDetailed",
    "VisitorAggregator",
    "feed_text",
]
