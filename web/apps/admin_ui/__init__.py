"""The Socket.IO Admin UI (``@socket.io/admin-ui``), served by Switchboard itself.

With ``admin_ui`` on, the UI's pinned build is at ``/admin/`` (:mod:`web.apps.admin_ui.rest`)
and its namespace (``admin_ui_namespace``, ``/admin``) speaks the UI's protocol: sign-in
(:mod:`web.apps.admin_ui.login`), the welcome and the commands
(:mod:`web.apps.admin_ui.events`), and the live feed of the monitor
(:class:`actors.admin_ui.monitor.AdminMonitor`), which watches every namespace. With it off,
neither the namespace nor the pages exist.

Decisions where the UI's protocol leaves room:

* **Every node.** The monitor publishes through the broker, so a UI signed in on any node of a
  cluster sees every node's sockets, rooms, events and ``server_stats`` (one entry per node, its
  ``serverId`` the node id); ``all_sockets`` and the commands reach every node too.
* **What is reported.** Sockets connecting and leaving, rooms joined and left, events received
  (not on the admin namespace itself), upgrades to WebSocket, and traffic per interval
  (connections, disconnections by reason, packets and bytes in and out). Events *sent* are not:
  a broadcast would cost one UI message per member, on the hot path.
* **Addresses.** A socket's ``handshake.address`` is the client address the server resolved
  (``trusted_proxies`` applied), not a client-supplied ``X-Forwarded-For``.
* **The UI never slows the server.** Its events are queued without waiting, and dropped when
  the UI falls behind (counted: ``switchboard_actor_dropped_messages_total{kind="admin-ui"}``).
"""

from __future__ import annotations

import os
import socket as stdlib_socket
import time

import trio

from actors.admin_ui.monitor import AdminMonitor
from actors.admin_ui.traffic import TrafficDeltas, TrafficTotals
from actors.admin_ui.wire import (
    AGGREGATED_EVENTS,
    ALL_EVENTS,
    COMMANDS,
    NamespaceDetails,
    ServerStats,
)
from actors.ratelimit import SlidingWindowLimiter
from actors.runtime import supervise
from web.apps.admin_ui import events, rest
from web.apps.admin_ui.login import AdminLogin
from web.platform.runtime import Runtime
from web.sockets.engineio_server import EngineSocket
from web.sockets.namespace import Namespace
from web.sockets.socketio_server import SocketIOConnection


class AdminUI:
    """The admin namespace, the pages, and the monitor that feeds the UI."""

    def __init__(self, runtime: Runtime) -> None:
        s = runtime.settings
        self.runtime = runtime
        self.development = s.admin_ui_mode == "development"
        self.namespace = Namespace(s.admin_ui_namespace)
        limiter = runtime.add_rate_limiter(
            "admin_ui_login",
            SlidingWindowLimiter(s.admin_ui_login_attempts_per_minute, 60.0, now=runtime.clock.now),
        )
        self.namespace.use(
            AdminLogin(
                runtime.authenticator,
                runtime.clock,
                limiter,
                username=s.admin_ui_username,
                password_hash=s.admin_ui_password_hash,
                session_seconds=s.admin_ui_session_seconds,
            )
        )
        features = [] if s.admin_ui_readonly else list(COMMANDS)
        features.append(AGGREGATED_EVENTS)
        if self.development:
            features.append(ALL_EVENTS)
        events.register(
            self.namespace,
            runtime.namespaces,
            features=features,
            development=self.development,
            readonly=s.admin_ui_readonly,
        )
        runtime.add_namespace(self.namespace)
        runtime.add_blueprint(rest.blueprint(s.engineio_path, s.admin_ui_namespace))
        self.monitor = AdminMonitor(
            self._publish,
            self.server_stats,
            runtime.clock,
            admin_namespace=s.admin_ui_namespace,
            development=self.development,
            mailbox_size=s.admin_ui_max_queued_events,
        )
        runtime.add_actor("admin-ui", self.monitor)
        self.traffic = TrafficDeltas()
        self.started = time.monotonic()
        runtime.on_start(self.start)

    async def start(self, nursery: trio.Nursery) -> None:
        rt = self.runtime
        nursery.start_soon(supervise, self.monitor)
        rt.sio.local.admin_fields = True
        rt.sio.watch(self.monitor)
        rt.engine.on_upgrade = self._upgraded
        interval = rt.settings.admin_ui_stats_interval_seconds
        nursery.start_soon(rt.clock.every, interval, self.monitor.tick)

    async def _publish(self, event: str, args: tuple[object, ...]) -> None:
        await self.namespace.emit(event, *args)

    def _upgraded(self, conn: EngineSocket) -> None:
        handler = conn.handler
        if isinstance(handler, SocketIOConnection):
            for session in handler.sessions.values():
                self.monitor.upgraded(session)

    def server_stats(self) -> ServerStats:
        """This node's figures for the UI's Servers screen and charts."""
        rt = self.runtime
        engine = rt.engine.stats
        totals = TrafficTotals(
            engine.handshakes,
            dict(engine.closes),
            engine.packets_in,
            engine.packets_out,
            engine.bytes_in,
            engine.bytes_out,
        )
        namespaces = [
            NamespaceDetails(name, count) for name, count in rt.sio.connected_count().items()
        ]
        cluster = rt.cluster_config
        return ServerStats(
            cluster.node_id if cluster is not None else HOSTNAME,
            HOSTNAME,
            os.getpid(),
            round(time.monotonic() - self.started, 3),
            len(rt.engine.sockets),
            rt.engine.by_transport().get("polling", 0),
            self.traffic.since_last(totals, int(rt.clock.now() * 1000)),
            namespaces,
        )


HOSTNAME = stdlib_socket.gethostname()
