"""The traffic figures of the UI's dashboard charts, as counts per interval.

The Engine.IO server keeps running totals (handshakes, closes by reason, packets and bytes in
and out); each ``server_stats`` carries what changed since the previous one, which is what the
UI's ``aggregatedEvents`` are. Nothing is counted per packet for the UI's sake.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from actors.admin_ui.wire import AggregatedEvent


@dataclass(frozen=True, slots=True)
class TrafficTotals:
    """Running totals since the server started."""

    connections: int = 0
    disconnections: Mapping[str, int] = field(default_factory=dict)  # by reason
    packets_in: int = 0
    packets_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0


class TrafficDeltas:
    """Turns successive totals into the counts of each interval (kinds that did not change are
    left out, as in Node's instrumentation)."""

    def __init__(self) -> None:
        self.last = TrafficTotals()

    def since_last(self, now: TrafficTotals, at_ms: int) -> list[AggregatedEvent]:
        last, self.last = self.last, now
        stamp = at_ms - at_ms % 1000  # the UI groups by time; Node stamps whole seconds
        events: list[AggregatedEvent] = []

        def add(kind: str, count: int, sub_type: str | None = None) -> None:
            if count > 0:
                events.append(AggregatedEvent(stamp, kind, count, sub_type))

        add("rawConnection", now.connections - last.connections)
        for reason, total in sorted(now.disconnections.items()):
            add("rawDisconnection", total - last.disconnections.get(reason, 0), reason)
        add("packetsIn", now.packets_in - last.packets_in)
        add("packetsOut", now.packets_out - last.packets_out)
        add("bytesIn", now.bytes_in - last.bytes_in)
        add("bytesOut", now.bytes_out - last.bytes_out)
        return events
