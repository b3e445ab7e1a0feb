"""The event analytics' shapes at its doors: the ingest bodies and answers, the live metrics and the
``analytics:*`` acks and errors. (The dashboard and the ``events`` push are the metrics actor's
own, in :mod:`actors.analytics.metrics`.)"""

from __future__ import annotations

import msgspec

from actors.eventlog.events import EventIn
from actors.eventlog.views import CurrentStats


# --- ingest --------------------------------------------------------------------------------------
class TrackedEvent(EventIn, kw_only=True):
    """One event, in the visitor spelling (``type``, ``page``, ``session_id``, ``timestamp``,
    ``country``, ``metadata.device``, ``metadata.referrer``) and/or the product spelling
    (``eventName``, ``userId``, ``country``, ``device``, ``referrer``, ``properties``). It needs a
    name (``eventName`` or ``type``) and an identity (``session_id`` or ``userId``)."""


class TrackedBatch(msgspec.Struct):
    """A batch as an object (an array of events is accepted too)."""

    events: list[TrackedEvent]


BatchBody = list[TrackedEvent] | TrackedBatch


class EventStored(msgspec.Struct):
    session_id: str | None
    event_id: str
    duplicate: bool  # the event id (or the Idempotency-Key) was already in the log
    current_stats: CurrentStats


class EventAccepted(msgspec.Struct):
    """The event is committed to the log (``duplicate``: it was already there)."""

    success: bool
    message: str
    data: EventStored


class BatchStored(msgspec.Struct):
    accepted: int
    stored: int
    duplicates: int  # events already in the log (all of them for a replayed Idempotency-Key)
    current_stats: CurrentStats


class BatchAccepted(msgspec.Struct):
    """The batch is committed to the log, all of it (``duplicates`` were already there)."""

    success: bool
    message: str
    data: BatchStored


# --- live metrics --------------------------------------------------------------------------------
class LiveMetric(msgspec.Struct):
    """One figure of ``analytics:liveMetrics`` (and ``GET /api/metrics/live``)."""

    name: str
    value: float
    timestamp: str


# --- analytics:* acks and errors -----------------------------------------------------------------
class LiveSubscription(msgspec.Struct):
    """The ack of ``analytics:subscribeLiveMetrics`` / ``analytics:unsubscribeLiveMetrics``."""

    success: bool
    subscribed: bool


class Answered(msgspec.Struct):
    """The ack of ``analytics:requestLiveMetrics`` (the metrics come as
    ``analytics:liveMetrics``)."""

    success: bool


class DashboardRoom(msgspec.Struct, rename="camel"):
    """The ack of ``analytics:joinDashboard`` / ``analytics:leaveDashboard``."""

    success: bool
    dashboard_id: str


class AnalyticsError(msgspec.Struct):
    """``analytics:error``: a refused ``analytics:*`` event (the ack, if asked, is a Failure)."""

    message: str
