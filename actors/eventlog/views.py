"""The seam between the ingest path and the views that follow the event log."""

from __future__ import annotations

from typing import Protocol

import msgspec

from actors.eventlog.events import Event


class CurrentStats(msgspec.Struct):
    """The visitor counters every ingest answer carries (``current_stats``)."""

    total_active: int
    total_today: int
    pages_visited: dict[str, int]


def by_request(events: list[Event]) -> list[list[Event]]:
    """Consecutive events with the same ``received_at``: one ingest request's (its events are
    stamped together and appended in one transaction, so they are adjacent in the log)."""
    batches: list[list[Event]] = []
    for e in events:
        if batches and batches[-1][0].received_at == e.received_at:
            batches[-1].append(e)
        else:
            batches.append([e])
    return batches


class LogFollower(Protocol):
    """A view kept in step with the log: told of each committed batch, in commit order, before
    the ingest request that committed it is answered."""

    async def committed(self, events: tuple[Event, ...]) -> None: ...


class StatsSource(Protocol):
    """Whoever answers the ingest's ``current_stats`` (the visitor sessions)."""

    async def current_stats(self) -> CurrentStats: ...
