"""The session aggregator: one actor owning the visitor sessions and the feed's dashboards.

It follows the event log (:class:`Ingest`, told by the ingest path after each commit), answers the
REST views (:class:`GetStats`, :class:`GetSummary`, :class:`GetSessions`, :class:`GetDetailed`),
and fans the feed out to every connected :class:`Dashboard` (both listeners: the ``/ws/visitors``
route and the optional separate port). Each feed message is encoded once and offered to every
dashboard's bounded outbox; a dashboard whose outbox is full is closed as a slow consumer (the
others never wait for it).

Feed messages (server -> dashboard), ``{"type": ..., "data": ...}`` (one Struct each, in
:mod:`actors.visitors.feed`):

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

import logging
from collections.abc import Callable
from dataclasses import dataclass

from actors.eventlog.events import Event, iso
from actors.eventlog.log import EventLog
from actors.eventlog.views import CurrentStats, by_request
from actors.runtime import Actor, Reply, handles
from actors.visitors.feed import (
    ALERT_MESSAGE,
    SLOW_CONSUMER,
    Alert,
    AlertDetails,
    Dashboard,
    FeedData,
    FeedKind,
    SessionsExpired,
    UserConnected,
    UserDisconnected,
    VisitorUpdate,
    feed_text,
)
from actors.visitors.model import (
    DAY,
    Detailed,
    Filter,
    SessionView,
    VisitorBook,
    visitor_event,
)

log = logging.getLogger("switchboard.visitors")

ALERT_COOLDOWN_SECONDS = 60.0



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
        self.at = now()  # the service clock when the message being handled arrived

    # --- start: rebuild from the log ---------------------------------------------------------
    async def load(self, log: EventLog, *, page: int = 10_000, upto: int | None = None) -> int:
        """Rebuild the sessions and today's counters from the log up to ``seq`` ``upto``
        (default: its last event) (call before :meth:`run`): the events stamped since midnight
        UTC yesterday, in log order. The alert's cooldown is replayed too (each request's
        events share their ``received_at``), so a restarted node keeps the others' rhythm."""
        if upto is None:
            upto = await log.last_seq()
        now = self.now()
        since = (int(now // DAY) - 1) * DAY
        after = total = 0
        book = self.book
        while True:
            events = await log.since(since, after_seq=after, limit=page, upto=upto)
            for batch in by_request(events):
                at = batch[0].received_at
                for e in batch:
                    book.apply(e, at)
                self._check_alert(at, announce=False)
            total += len(events)
            if events:
                after = events[-1].seq
            if len(events) < page:
                break
        self.loaded_seq = max(self.loaded_seq, upto)
        self.expired += len(book.expire(self.now()))
        return total

    # --- messages ------------------------------------------------------------------------------
    async def handle(self, message: object) -> None:
        """Sessions idle past the timeout end first, whatever the message (the feed hears of
        it, and every answer is exact); then the message's handler runs."""
        now = self.at = self.now()
        ended = self.book.expire(now)
        if ended:
            self.expired += len(ended)
            self._broadcast_expired([s.session_id for s in ended])
        await super().handle(message)

    @handles(Ingest)
    async def _ingest(self, message: Ingest) -> None:
        """One request's events, counted at the time the server received them: every node of a
        cluster, following the same log, counts and alerts at the same points of it."""
        book = self.book
        loaded = self.loaded_seq
        events = [e for e in message.events if not e.seq or e.seq > loaded]  # not loaded at start
        if not events:
            return
        now = events[0].received_at
        live = bool(self.dashboards)
        for e in events:
            session = book.apply(e, now)
            if live:
                self.broadcast("visitor_update", VisitorUpdate(visitor_event(e), book.stats()))
                if session is not None:
                    self.broadcast("session_activity", session.view())
        self._check_alert(now)

    def _check_alert(self, now: float, *, announce: bool = True) -> None:
        """The alert, at most once per cooldown, when visitors in the last minute exceed the
        threshold (``announce`` False: replaying the log at start, only the cooldown moves)."""
        if now < self.next_alert_at:
            return
        visitors = self.book.visitors_last_minute(now)
        if visitors <= self.alert_threshold:
            return
        self.next_alert_at = now + ALERT_COOLDOWN_SECONDS
        if not announce:
            return
        self.alerts += 1
        log.info("visitors: %d visitors in the last minute", visitors)
        details = AlertDetails(visitors_last_minute=visitors, threshold=self.alert_threshold)
        self.broadcast("alert", Alert("info", ALERT_MESSAGE, details))

    @handles(GetStats)
    async def _get_stats(self, message: GetStats) -> None:
        message.reply.send(self.book.stats())

    @handles(GetSummary)
    async def _get_summary(self, message: GetSummary) -> None:
        message.reply.send(self.book.stats(message.filter))

    @handles(GetSessions)
    async def _get_sessions(self, message: GetSessions) -> None:
        message.reply.send(self.book.sessions(message.filter, message.limit))

    @handles(GetDetailed)
    async def _get_detailed(self, message: GetDetailed) -> None:
        message.reply.send(self.book.detailed(self.at, message.filter))

    @handles(RequestDetailed)
    async def _request_detailed(self, message: RequestDetailed) -> None:
        detailed = self.book.detailed(self.at, message.filter)
        self._offer(message.dashboard, feed_text("detailed_stats", detailed))

    @handles(Join)
    async def _join(self, message: Join) -> None:
        d = message.dashboard
        self.dashboards[d.id] = d
        self.broadcast("user_connected", UserConnected(len(self.dashboards), iso(self.at)))

    @handles(Leave)
    async def _leave(self, message: Leave) -> None:
        if self.dashboards.pop(message.dashboard.id, None) is not None:
            self._announce_leave(self.at)

    @handles(Cleanup)
    async def _cleanup(self, message: Cleanup) -> None:
        """Nothing more to do: :meth:`handle` has ended the expired sessions."""

    @handles(CloseAll)
    async def _close_all(self, message: CloseAll) -> None:
        closing = list(self.dashboards.values())
        for d in closing:
            d.close(message.code, message.reason)
        self.dashboards.clear()
        if message.reply is not None:
            message.reply.send(closing)

    @handles(GetFeedStatus)
    async def _feed_status(self, message: GetFeedStatus) -> None:
        counts = dict.fromkeys(self.feeds, 0)
        for d in self.dashboards.values():
            counts[d.feed] = counts.get(d.feed, 0) + 1
        message.reply.send(
            FeedStatus(counts, len(self.book.active), self.alerts, self.slow_consumers)
        )

    # --- fan-out -------------------------------------------------------------------------------
    def broadcast(self, kind: FeedKind, data: FeedData) -> None:
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
        self.broadcast("user_disconnected", UserDisconnected(len(self.dashboards), iso(now)))

    def _broadcast_expired(self, session_ids: list[str]) -> None:
        self.broadcast("sessions_expired", SessionsExpired(sorted(session_ids), self.book.stats()))
