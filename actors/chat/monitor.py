"""Connection monitoring: metrics, a bounded event log, statistics and health.

Everything here is a real figure: connections the namespace accepted and refused, how long they
lasted, rate-limit refusals and invalid requests as they happened. Health also weighs figures the
caller samples from the runtime (slow-consumer disconnects, the deepest actor mailbox) against
fixed thresholds, and says which ones are off and what to do about them.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

from actors.chat.model import User, iso
from actors.chat.wire import (
    AddressCount,
    AgentCount,
    ConnectionMetrics,
    EventType,
    Health,
    HealthFigures,
    HealthReport,
    LoggedEvent,
    MonitorStats,
)
from actors.clock import Clock
from actors.runtime import Actor, Reply, handles

# health thresholds (fractions / counts)
ERROR_RATE_WARNING = 0.05
ERROR_RATE_CRITICAL = 0.25
ERROR_RATE_MIN_SAMPLE = 10
BACKLOG_WARNING = 0.5
BACKLOG_CRITICAL = 0.9
SLOW_WARNING = 1
SLOW_CRITICAL = 10
LEVELS: tuple[Health, Health, Health] = ("healthy", "warning", "critical")
STORAGE_ADVICE = {
    "disk full": "Free space on the data folder's disk: messages are not stored meanwhile",
    "read-only": "Make the database file and its folder writable again",
    "locked": "Another process holds the database's write lock: end its transaction",
    "corrupt": "Restore the database from a backup (sqlite3 .recover) and restart",
}
STORAGE_DEFAULT_ADVICE = "Check the database and the server log, then restart"


@dataclass(frozen=True, slots=True)
class ConnectionEvent:
    type: EventType
    socket_id: str | None
    user_id: str | None
    ip: str
    user_agent: str
    at: float
    details: dict[str, str] = field(default_factory=dict)

    def wire(self, show_ip: bool = True) -> LoggedEvent:
        return LoggedEvent(
            type=self.type,
            socket_id=self.socket_id,
            user_id=self.user_id,
            ip_address=self.ip if show_ip else None,
            user_agent=self.user_agent,
            timestamp=iso(self.at),
            details=self.details,
        )


@dataclass(frozen=True, slots=True)
class EventFilter:
    limit: int = 50
    type: EventType | None = None
    user_id: str | None = None
    ip: str | None = None


@dataclass(frozen=True, slots=True)
class RuntimeFigures:
    """Sampled by the caller from the runtime when health is asked for."""

    slow_consumer_disconnects: int
    deepest_mailbox: str
    mailbox_depth: int
    mailbox_capacity: int
    handler_errors: int = 0
    storage_status: str = "ok"  # the Store's health: ok, degraded or failed
    storage_fault: str | None = None
    storage_last_error: str | None = None
    node_id: str = ""  # on a cluster: this node's name


@dataclass(frozen=True, slots=True)
class GetMetrics:
    reply: Reply[ConnectionMetrics]


@dataclass(frozen=True, slots=True)
class GetEvents:
    filter: EventFilter
    viewer: User  # decides whose IP addresses the answer shows
    reply: Reply[list[LoggedEvent]]


@dataclass(frozen=True, slots=True)
class GetStats:
    viewer: User
    reply: Reply[MonitorStats]


@dataclass(frozen=True, slots=True)
class GetHealth:
    figures: RuntimeFigures
    reply: Reply[HealthReport]


class MonitorActor(Actor):
    kind = "chat-monitor"
    mailbox_size = 4096

    def __init__(self, clock: Clock, *, max_events: int = 1000) -> None:
        super().__init__()
        self.clock = clock
        self.events: deque[ConnectionEvent] = deque(maxlen=max_events)
        self.active: dict[str, float] = {}  # sid -> connected at
        self.total = 0
        self.failed = 0
        self.errors = 0
        self.rate_limited = 0
        self.peak = 0
        self.closed_count = 0
        self.closed_seconds = 0.0
        self.recent_connects: deque[float] = deque()
        self.last_reset = clock.now()
        self.ips: Counter[str] = Counter()
        self.agents: Counter[str] = Counter()

    # --- figures ---------------------------------------------------------------------------------
    def metrics(self) -> ConnectionMetrics:
        now = self.clock.now()
        while self.recent_connects and self.recent_connects[0] <= now - 60:
            self.recent_connects.popleft()
        durations = self.closed_seconds + sum(now - t for t in self.active.values())
        count = self.closed_count + len(self.active)
        return ConnectionMetrics(
            total_connections=self.total,
            active_connections=len(self.active),
            failed_connections=self.failed,
            average_connection_duration=round(durations / count * 1000) if count else 0,
            peak_connections=self.peak,
            connections_per_minute=len(self.recent_connects),
            last_reset=iso(self.last_reset),
        )

    def error_rate(self) -> float:
        attempts = self.total + self.failed
        return round((self.failed + self.errors) / attempts, 4) if attempts else 0.0

    def health(self, figures: RuntimeFigures) -> HealthReport:
        issues: list[str] = []
        advice: list[str] = []
        level = 0  # 0 healthy, 1 warning, 2 critical
        rate = self.error_rate()
        if self.total + self.failed >= ERROR_RATE_MIN_SAMPLE and rate >= ERROR_RATE_WARNING:
            critical = rate >= ERROR_RATE_CRITICAL
            level = max(level, 2 if critical else 1)
            issues.append(f"Error rate is {rate:.1%} of connection attempts")
            advice.append("Check client tokens and the auth_failure/error events")
        slow = figures.slow_consumer_disconnects
        if slow >= SLOW_WARNING:
            level = max(level, 2 if slow >= SLOW_CRITICAL else 1)
            issues.append(f"{slow} client(s) disconnected as slow consumers")
            advice.append(
                "Clients cannot keep up: reduce broadcast volume or raise max_outbox_bytes"
            )
        if figures.mailbox_capacity > 0:
            fill = figures.mailbox_depth / figures.mailbox_capacity
            if fill >= BACKLOG_WARNING:
                level = max(level, 2 if fill >= BACKLOG_CRITICAL else 1)
                issues.append(
                    f"Mailbox backlog: {figures.deepest_mailbox} holds {figures.mailbox_depth} of "
                    f"{figures.mailbox_capacity} messages"
                )
                advice.append("The server is saturated: add capacity or shed load")
        if figures.storage_status != "ok":
            level = max(level, 2 if figures.storage_status == "failed" else 1)
            issues.append(
                f"Storage {figures.storage_status}: {figures.storage_fault} "
                f"({figures.storage_last_error})"
            )
            advice.append(STORAGE_ADVICE.get(figures.storage_fault or "", STORAGE_DEFAULT_ADVICE))
        return HealthReport(
            status=LEVELS[level],
            issues=issues,
            recommendations=advice,
            figures=HealthFigures(
                error_rate=rate,
                slow_consumer_disconnects=slow,
                deepest_mailbox=figures.deepest_mailbox,
                mailbox_depth=figures.mailbox_depth,
                mailbox_capacity=figures.mailbox_capacity,
                active_connections=len(self.active),
                storage_status=figures.storage_status,
                storage_fault=figures.storage_fault,
                node_id=figures.node_id,
            ),
        )

    # --- handling: one method per message type -------------------------------------------------
    @handles(ConnectionEvent)
    async def _record(self, message: ConnectionEvent) -> None:
        self.events.append(message)
        kind = message.type
        if kind == "connect" and message.socket_id is not None:
            self.total += 1
            self.active[message.socket_id] = message.at
            self.peak = max(self.peak, len(self.active))
            self.recent_connects.append(message.at)
            self.ips[message.ip] += 1
            self.agents[message.user_agent] += 1
        elif kind == "disconnect" and message.socket_id is not None:
            started = self.active.pop(message.socket_id, None)
            if started is not None:
                self.closed_count += 1
                self.closed_seconds += max(0.0, message.at - started)
        elif kind == "auth_failure" or (kind == "rate_limit" and message.socket_id is None):
            self.failed += 1
            self.ips[message.ip] += 1
        elif kind == "rate_limit":
            self.rate_limited += 1
        elif kind == "error":
            self.errors += 1

    @handles(GetMetrics)
    async def _metrics(self, message: GetMetrics) -> None:
        message.reply.send(self.metrics())

    @handles(GetEvents)
    async def _events(self, message: GetEvents) -> None:
        f, viewer = message.filter, message.viewer
        picked = [
            e
            for e in reversed(self.events)
            if (f.type is None or e.type == f.type)
            and (f.user_id is None or e.user_id == f.user_id)
            # an IP filter only matches events whose IP the viewer may see (no probing)
            and (f.ip is None or (e.ip == f.ip and viewer.sees_ip_of(e.user_id)))
        ][: max(0, f.limit)]
        message.reply.send([e.wire(viewer.sees_ip_of(e.user_id)) for e in picked])

    @handles(GetStats)
    async def _stats(self, message: GetStats) -> None:
        viewer = message.viewer
        recent = list(self.events)[-10:][::-1]
        top_ips = self.ips.most_common(5) if viewer.is_admin else []
        message.reply.send(
            MonitorStats(
                metrics=self.metrics(),
                recent_events=[e.wire(viewer.sees_ip_of(e.user_id)) for e in recent],
                top_ips=[AddressCount(ip, n) for ip, n in top_ips],
                top_user_agents=[AgentCount(ua, n) for ua, n in self.agents.most_common(5)],
                error_rate=self.error_rate(),
            )
        )

    @handles(GetHealth)
    async def _health(self, message: GetHealth) -> None:
        message.reply.send(self.health(message.figures))
