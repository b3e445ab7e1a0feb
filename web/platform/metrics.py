"""GET /metrics: Prometheus text format, built with prometheus-client.

Nothing on the hot path talks to the metrics library: the server keeps plain counters in its stats
objects, and :class:`SwitchboardCollector` reads them when Prometheus scrapes. Histograms (store
batch sizes and commit latency) are observed once per committed batch. Applications register
their own collectors or metrics on ``runtime.metrics_registry``; rate limiters they name with
``runtime.add_rate_limiter`` show up as ``switchboard_rate_limited_total{limit=...}``.

Access: with ``metrics_public`` anyone may scrape; otherwise the scraper sends
``Authorization: Bearer <metrics_token>`` or, when no metrics token is set, an admin JWT.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from actors.sockets import outbox
from protocol.socketio import PacketType

if TYPE_CHECKING:
    from web.platform.runtime import Runtime

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_ENGINE_TYPES = {
    b"0": "open",
    b"1": "close",
    b"2": "ping",
    b"3": "pong",
    b"5": "upgrade",
    b"6": "noop",
}
_SOCKETIO_TYPES = {
    b"40": "connect",
    b"41": "disconnect",
    b"42": "event",
    b"43": "ack",
    b"44": "connect_error",
    b"45": "binary_event",
    b"46": "binary_ack",
}


class SwitchboardCollector(Collector):
    """Reads the server's plain counters at scrape time, one family of figures per method."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        yield from self._connections()
        yield from self._packets()
        yield from self._actors()
        yield from self._backpressure()
        yield from self._store()
        yield from self._upkeep()
        yield from self._cluster()

    def _connections(self) -> Iterator[Metric]:
        rt = self.runtime
        engine = rt.engine.stats
        sio = rt.sio.stats
        transports = GaugeMetricFamily(
            "switchboard_connections", "Open Engine.IO connections.", labels=["transport"]
        )
        counts = {"polling": 0, "websocket": 0, **rt.engine.by_transport()}
        for name, count in counts.items():
            transports.add_metric([name], count)
        yield transports
        sessions = GaugeMetricFamily(
            "switchboard_namespace_sessions", "Connected Socket.IO sessions.", labels=["namespace"]
        )
        for name, count in rt.sio.connected_count().items():
            sessions.add_metric([name], count)
        yield sessions
        yield _counter("switchboard_handshakes", "Engine.IO sessions opened.", engine.handshakes)
        yield _labelled(
            "switchboard_handshake_failures",
            "Engine.IO handshakes refused, by reason.",
            "reason",
            engine.handshake_failures,
        )
        yield _labelled(
            "switchboard_connect_refusals",
            "Socket.IO CONNECTs refused (CONNECT_ERROR), by message.",
            "reason",
            sio.connect_errors,
        )
        yield _labelled(
            "switchboard_namespace_connects",
            "Socket.IO namespace connections accepted.",
            "namespace",
            sio.connects,
        )
        yield _labelled(
            "switchboard_disconnects",
            "Engine.IO sessions closed, by reason.",
            "reason",
            engine.closes,
        )

    def _packets(self) -> Iterator[Metric]:
        rt = self.runtime
        yield _labelled(
            "switchboard_packets_in",
            "Socket.IO packets received, by type.",
            "type",
            {t.name.lower(): n for t, n in zip(PacketType, rt.sio.stats.packets_in, strict=True)},
        )
        out = CounterMetricFamily(
            "switchboard_packets_out",
            "Packets encoded for sending, by type (a broadcast counts once).",
            labels=["type"],
        )
        for kind, count in outbox.ENCODED.items():
            out.add_metric([_SOCKETIO_TYPES.get(kind) or _ENGINE_TYPES.get(kind, "other")], count)
        yield out
        engine = rt.engine.stats
        yield _counter(
            "switchboard_engine_packets_in", "Engine.IO packets received.", engine.packets_in
        )
        yield _counter(
            "switchboard_engine_packets_out",
            "Engine.IO packets queued for clients (a broadcast counts once per member).",
            engine.packets_out,
        )
        yield _counter(
            "switchboard_engine_bytes_in", "Bytes of Engine.IO packets received.", engine.bytes_in
        )
        yield _counter(
            "switchboard_engine_bytes_out",
            "Bytes of Engine.IO packets queued for clients.",
            engine.bytes_out,
        )
        broadcasts = CounterMetricFamily(
            "switchboard_broadcasts", "Broadcasts fanned out, by namespace.", labels=["namespace"]
        )
        deliveries = CounterMetricFamily(
            "switchboard_deliveries",
            "Frames offered to room members, by namespace.",
            labels=["namespace"],
        )
        for name, ns in rt.namespaces.items():
            broadcasts.add_metric([name], ns.rooms.stats.broadcasts)
            deliveries.add_metric([name], ns.rooms.stats.deliveries)
        yield broadcasts
        yield deliveries

    def _actors(self) -> Iterator[Metric]:
        rt = self.runtime
        depth = GaugeMetricFamily(
            "switchboard_mailbox_depth", "Messages waiting in actor mailboxes.", labels=["kind"]
        )
        restarts = CounterMetricFamily(
            "switchboard_actor_restarts", "Crashed actors restarted.", labels=["kind"]
        )
        actors = GaugeMetricFamily(
            "switchboard_actors", "Running actors, by kind.", labels=["kind"]
        )
        dropped = CounterMetricFamily(
            "switchboard_actor_dropped_messages",
            "Messages an actor let go rather than make its sender wait (e.g. Admin UI events).",
            labels=["kind"],
        )
        registries = [ns.rooms.registry for ns in rt.namespaces.values()]
        rooms = [actor for registry in registries for actor in registry.actors.values()]
        depth.add_metric(["room"], sum(actor.mailbox_depth for actor in rooms))
        depth.add_metric(["store"], rt.store.mailbox_depth)
        restarts.add_metric(["room"], sum(registry.restarts for registry in registries))
        restarts.add_metric(["store"], rt.store.stats.restarts)
        actors.add_metric(["room"], len(rooms))
        for actor_kind, actor in rt.named_actors.items():
            depth.add_metric([actor_kind], actor.mailbox_depth)
            restarts.add_metric([actor_kind], actor.stats.restarts)
            dropped.add_metric([actor_kind], actor.stats.dropped)
        yield depth
        yield restarts
        yield actors
        yield dropped

    def _backpressure(self) -> Iterator[Metric]:
        engine = self.runtime.engine.stats
        yield _counter(
            "switchboard_outbox_drops",
            "Volatile packets dropped for backed-up clients.",
            engine.dropped_volatile,
        )
        yield _counter(
            "switchboard_slow_consumer_disconnects",
            "Clients cut off because their outbox passed max_outbox_bytes.",
            engine.slow_consumers,
        )
        yield _counter(
            "switchboard_upgrades", "Polling sessions upgraded to WebSocket.", engine.upgrades
        )

    def _store(self) -> Iterator[Metric]:
        stats = self.runtime.store.store_stats
        yield _counter("switchboard_store_batches", "Store transactions committed.", stats.batches)
        yield _counter("switchboard_store_writes", "Writes committed by the store.", stats.writes)
        yield _counter(
            "switchboard_store_retries",
            "Store batches retried (database busy or locked).",
            stats.retries,
        )
        health = self.runtime.store.health
        state = GaugeMetricFamily(
            "switchboard_storage_state",
            "1 for the database's current state (ok, degraded, failed), 0 for the others.",
            labels=["state", "fault"],
        )
        for name in ("ok", "degraded", "failed"):
            fault = health.fault or "" if name == health.state else ""
            state.add_metric([name, fault], 1 if name == health.state else 0)
        yield state
        yield _counter(
            "switchboard_store_write_failures",
            "Writes answered as not stored or outcome unknown (disk full, read-only, locked...).",
            health.write_failures,
        )
        yield _counter(
            "switchboard_store_read_failures",
            "Reads that failed for a storage fault (a corrupt page, an unreadable file).",
            health.read_failures,
        )
        yield GaugeMetricFamily(
            "switchboard_store_write_failures_last_minute",
            "Writes that failed in the last 60 seconds.",
            value=health.failures_last_minute(),
        )

    def _upkeep(self) -> Iterator[Metric]:
        rt = self.runtime
        limited = CounterMetricFamily(
            "switchboard_rate_limited", "Attempts refused by a rate limit.", labels=["limit"]
        )
        for name, limiter in rt.rate_limiters.items():
            limited.add_metric([name], limiter.refused)
        yield limited
        yield _counter(
            "switchboard_housekeeping_runs", "Housekeeping sweeps run.", rt.housekeeping.runs
        )
        yield _counter(
            "switchboard_housekeeping_removed",
            "Expired entries removed by housekeeping (rate-limit keys and the like).",
            rt.housekeeping.removed,
        )

    def _cluster(self) -> Iterator[Metric]:
        cluster = self.runtime.cluster
        if cluster is None:
            return
        link = cluster.link.stats
        yield GaugeMetricFamily(
            "switchboard_cluster_redis_connected",
            "1 while this node's Redis subscription is up.",
            value=1 if link.connected else 0,
        )
        yield GaugeMetricFamily(
            "switchboard_cluster_nodes",
            "Nodes alive in the registry.",
            value=len(cluster.registry.nodes),
        )
        since = link.seconds_since_last_message()
        yield GaugeMetricFamily(
            "switchboard_cluster_seconds_since_last_message",
            "Seconds since the last message from Redis (-1: none yet).",
            value=-1 if since is None else since,
        )
        yield _counter(
            "switchboard_cluster_reconnects",
            "Redis subscriptions lost and restarted (wedged ones included).",
            link.disconnects,
        )
        yield _counter(
            "switchboard_cluster_wedged_restarts",
            "Subscriptions restarted because the probe to itself stopped arriving.",
            link.wedged_restarts,
        )
        yield _counter(
            "switchboard_cluster_subscriber_crashes",
            "Subscriber failures that were not Redis going away.",
            link.subscriber_crashes,
        )
        yield _counter(
            "switchboard_cluster_published", "Messages published to Redis.", link.published
        )
        yield _counter(
            "switchboard_cluster_received", "Messages received from Redis.", link.received
        )
        yield _counter(
            "switchboard_cluster_dropped",
            "Messages not published: Redis unreachable or the queue full.",
            link.dropped_while_disconnected + link.dropped_queue_full,
        )
        yield _counter(
            "switchboard_cluster_bad_messages",
            "Undecodable or foreign messages dropped.",
            cluster.stats.bad_messages,
        )


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _labelled(name: str, doc: str, label: str, values: dict[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for key, count in values.items():
        family.add_metric([key], count)
    return family


class Metrics:
    """The runtime's registry: the collector plus the store histograms."""

    def __init__(self, runtime: Runtime) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(SwitchboardCollector(runtime))
        self.batch_size = Histogram(
            "switchboard_store_batch_size",
            "Writes per committed store transaction.",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000),
            registry=self.registry,
        )
        self.commit_seconds = Histogram(
            "switchboard_store_commit_seconds",
            "Time to run and commit one store transaction.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=self.registry,
        )
        runtime.store.on_commit = self.observe_commit

    def observe_commit(self, writes: int, seconds: float) -> None:
        self.batch_size.observe(writes)
        self.commit_seconds.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def allowed(runtime: Runtime, authorization: str | None) -> bool:
    settings = runtime.settings
    if settings.metrics_public:
        return True
    if not authorization or not authorization[:7].lower() == "bearer ":
        return False
    token = authorization[7:].strip()
    if settings.metrics_token:
        import hmac

        return hmac.compare_digest(token, settings.metrics_token)
    try:
        return runtime.authenticator.verify(token).is_admin
    except Exception:
        return False
