"""The runtime: every service the applications share, typed, built once per app.

Applications receive a :class:`Runtime` when they are installed (see :mod:`web.apps`). Before the
server starts they extend it: event tables with :meth:`Runtime.namespace`, REST routes with
:meth:`Runtime.add_blueprint`, tables with ``runtime.store.add_schema``, actors with
:meth:`Runtime.on_start`. Once started, the Engine.IO and Socket.IO servers are
``runtime.engine`` and ``runtime.sio``.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from collections.abc import Awaitable, Callable

import trio
from quart import Blueprint

from actors.clock import Clock
from actors.cluster.broker import ClusterBroker
from actors.cluster.config import ClusterConfig, new_tag
from actors.cluster.shared_clock import SharedClock
from actors.cluster.signals import ClusterSignals
from actors.housekeeping import Housekeeping
from actors.identity import Identity
from actors.ratelimit import SlidingWindowLimiter
from actors.runtime import Actor
from actors.sockets.broker import LocalBroker
from actors.sockets.recovery import RecoveryLog
from actors.sockets.session import Session
from actors.store import Store
from actors.store.backend import Backend
from actors.store.check import StartupFailed, describe_open_failure
from actors.store.postgres import PostgresBackend
from actors.store.sqlite import SQLiteBackend
from protocol import socketio
from web.platform.auth import (
    Authenticator,
    TokenError,
    jwt_middleware,
    load_or_create_secret,
    token_of,
)
from web.platform.settings import Settings
from web.sockets.engineio_server import EngineConfig, EngineServer, EngineSocket, MessageHandler
from web.sockets.forward import PollingForwarder
from web.sockets.namespace import Namespace
from web.sockets.native_ws import NativeEndpoint
from web.sockets.origin import origin_policy
from web.sockets.proxies import TrustedProxies
from web.sockets.socketio_server import Recovery, SocketIOServer

DRAIN_POLL_SECONDS = 0.005
Starter = Callable[[trio.Nursery], Awaitable[None]]
Stopper = Callable[[], Awaitable[None]]
EngineHandler = Callable[[EngineSocket], MessageHandler]


def _no_abort(client: object) -> bool:
    return False


class Runtime:
    """Everything the server runs: built with the app, started once in the app's nursery."""

    def __init__(self, settings: Settings, engine_handler: EngineHandler | None = None) -> None:
        self.settings = settings
        self.engine_handler = engine_handler
        self.authenticator = Authenticator(
            load_or_create_secret(settings.data_path, settings.jwt_secret),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
        self.origin_allowed = origin_policy(settings.cors_origins)
        self.proxies = TrustedProxies(settings.trusted_proxies)
        self.clock = Clock()
        self.store = Store(
            store_backend(settings),
            max_batch=settings.store_max_batch,
            write_timeout_seconds=settings.store_write_timeout_seconds,
        )
        self.namespaces: dict[str, Namespace] = {}
        self.named_actors: dict[str, Actor] = {}  # singleton actors, shown in /metrics by kind
        self.rate_limiters: dict[str, SlidingWindowLimiter] = {}
        self.housekeeping = Housekeeping(self.clock, settings.housekeeping_interval_seconds)
        self.draining = False  # shutting down: no new writes are accepted
        # hangs up a Hypercorn-served connection by its ASGI client address; the front door
        # installs the real one (a plain ASGI server offers no such thing)
        self.abort_connection: Callable[[object], bool] = _no_abort
        self.blueprints: list[Blueprint] = []
        self.starters: list[Starter] = []
        self.stoppers: list[Stopper] = []
        self.started_at = time.time()
        self.start_failure: str | None = None  # why start() failed (the front door refuses)
        self.address = (settings.host, settings.port)  # where the front door listens
        self.cluster: ClusterBroker | None = None  # with redis_url: this node of the cluster
        self.forwarder: PollingForwarder | None = None  # polls for other nodes' sessions
        self.cluster_config = cluster_config(settings) if settings.redis_url else None
        # with redis_url: the applications' own channels, and the test clock every node shares
        self.signals: ClusterSignals | None = None
        self.shared_clock: SharedClock | None = None
        if self.cluster_config is not None:
            self.signals = ClusterSignals(self.cluster_config)
            self.shared_clock = SharedClock(
                self.clock,
                self.signals,
                self._live_node_tags,
                confirm_timeout_seconds=self.cluster_config.request_timeout_seconds,
            )
        self.recovery = self._recovery() if settings.connection_state_recovery else None
        # built by start()
        self.sio: SocketIOServer
        self.engine: EngineServer
        self.native: NativeEndpoint

    # --- extension, before start -----------------------------------------------------------------
    def namespace(self, name: str, *, authenticated: bool = True) -> Namespace:
        """The event table of ``name``, created on first use (with JWT auth unless told not)."""
        ns = self.namespaces.get(name)
        if ns is None:
            ns = Namespace(name)
            if authenticated:
                ns.use(jwt_middleware(self.authenticator))
            self.namespaces[name] = ns
        return ns

    def add_namespace(self, ns: Namespace) -> None:
        if ns.name in self.namespaces:
            raise ValueError(f"namespace {ns.name} is already registered")
        self.namespaces[ns.name] = ns

    def add_blueprint(self, blueprint: Blueprint) -> None:
        self.blueprints.append(blueprint)

    def on_start(self, starter: Starter) -> None:
        self.starters.append(starter)

    def on_stop(self, stopper: Stopper) -> None:
        """Run during a graceful stop, after clients are closed, before the store is flushed."""
        self.stoppers.append(stopper)

    def add_actor(self, kind: str, actor: Actor) -> None:
        """Name a long-lived actor so /metrics shows its mailbox depth and restarts."""
        self.named_actors[kind] = actor

    def use_connection_aborter(self, abort: Callable[[object], bool]) -> None:
        """The front door's way to hang up a connection it serves (see ``abort_connection``)."""
        self.abort_connection = abort

    def add_rate_limiter(self, name: str, limiter: SlidingWindowLimiter) -> SlidingWindowLimiter:
        """Name a limiter: its refusals show in /metrics, housekeeping prunes its idle keys."""
        self.rate_limiters[name] = limiter
        self.housekeeping.add(f"rate limit {name}", limiter.prune)
        return limiter

    def _recovery(self) -> Recovery:
        s = self.settings
        log = RecoveryLog(self.store, self.clock, s.recovery_max_disconnection_seconds)
        self.housekeeping.add("connection state recovery", log.prune)
        self.on_stop(log.flush)  # a graceful stop keeps every session it closed

        def identify(session: Session) -> Identity | None:
            token = token_of(session)
            try:
                return self.authenticator.verify(token) if token is not None else None
            except TokenError:
                return None

        return Recovery(log, identify, s.recovery_skip_middlewares)

    def listening_on(self, host: str, port: int) -> None:
        """Where the front door listens (the port may have been 0: chosen by the OS)."""
        self.address = (host, port)

    def _live_node_tags(self) -> list[str]:
        return list(self.cluster.registry.nodes) if self.cluster is not None else []

    async def advance_clock(self, seconds: float) -> float:
        """Move the service clock forward (on every node of a cluster); returns the offset."""
        if self.shared_clock is not None:
            return await self.shared_clock.advance(seconds)
        self.clock.advance(seconds)
        return self.clock.offset_seconds

    def _cluster_broker(self, local: LocalBroker) -> ClusterBroker:
        config = self.cluster_config
        assert config is not None
        if not config.advertise_url:
            config = dataclasses.replace(config, advertise_url=default_advertise_url(*self.address))
        self.cluster = ClusterBroker(config, local, self.namespaces)
        return self.cluster

    # --- start -----------------------------------------------------------------------------------
    async def start(self, nursery: trio.Nursery) -> None:
        s = self.settings
        try:
            await self.store.open()
        except Exception as err:
            where = self.store.backend.location
            self.start_failure = f"{where}: {describe_open_failure(err)}"
            raise StartupFailed(self.start_failure) from err
        nursery.start_soon(self.store.run)  # never restarted: a failed store stays failed
        self.sio = SocketIOServer(
            self.namespaces.values(),
            limits=socketio.Limits(max_depth=s.max_json_depth),
            room_idle_seconds=s.room_idle_seconds,
            room_mailbox_size=s.room_mailbox_size,
            clock=self.clock,
            cluster=self._cluster_broker if self.cluster_config is not None else None,
            recovery=self.recovery,
            parser=s.socketio_parser,
        )
        await self.sio.start(nursery)
        for ns in self.namespaces.values():
            ns.rooms.max_rooms_per_socket = s.max_rooms_per_socket
        if self.cluster is not None:
            await nursery.start(self.cluster.run)
            long_poll = (s.ping_interval_ms + s.ping_timeout_ms) / 1000.0
            self.forwarder = PollingForwarder(self.cluster, long_poll)
        if self.signals is not None:  # the shared clock is read before any application starts
            await nursery.start(self.signals.run)
        self.engine = EngineServer(
            EngineConfig(
                ping_interval_ms=s.ping_interval_ms,
                ping_timeout_ms=s.ping_timeout_ms,
                connect_timeout_ms=s.connect_timeout_ms,
                max_payload_bytes=s.max_http_buffer_size_bytes,
                max_packets_per_payload=s.max_packets_per_payload,
                max_outbox_bytes=s.max_outbox_bytes,
                max_connections_per_ip=s.max_connections_per_ip,
                sid_prefix=self.cluster.tag if self.cluster is not None else "",
                allow_eio3=s.allow_eio3,
            ),
            self.engine_handler or self.sio.attach,
            nursery,
        )
        self.native = NativeEndpoint(
            self.engine,
            max_message_bytes=s.max_http_buffer_size_bytes,
            origin_allowed=self.origin_allowed,
            client_address=self.proxies.client_address,
            nursery=nursery,
        )
        nursery.start_soon(self.housekeeping.run)
        for starter in self.starters:
            await starter(nursery)

    async def drain(self, timeout: float) -> None:
        """Graceful stop, step by step: refuse new writes, close every client with an Engine.IO
        close (stock clients reconnect elsewhere), let in-flight work reach the store, and wait
        until the store has committed all of it."""
        self.draining = True
        self.store.give_up_at(trio.current_time() + timeout)
        with trio.move_on_after(timeout):
            self.engine.close_all("server shutdown")
            await trio.sleep(0)  # let closing transports flush (their tasks run next)
            while any(ns.rooms.sessions for ns in self.namespaces.values()):
                await trio.sleep(DRAIN_POLL_SECONDS)  # every session's disconnect handlers ran
            for stopper in self.stoppers:
                await stopper()
            while self.store.mailbox_depth or self.store.busy:
                await trio.sleep(DRAIN_POLL_SECONDS)


def store_backend(s: Settings) -> Backend:
    """PostgreSQL when ``database_url`` is set, else SQLite in the data folder."""
    if s.database_url:
        return PostgresBackend(s.database_url, read_pool_size=s.store_read_pool_size)
    return SQLiteBackend(s.data_path / "switchboard.sqlite3", s.store_synchronous)


def cluster_config(s: Settings) -> ClusterConfig:
    return ClusterConfig(
        redis_url=s.redis_url,
        node_id=s.node_id or f"{socket.gethostname()}-{os.getpid()}",
        tag=new_tag(),
        advertise_url=s.advertise_url,
        prefix=s.redis_key_prefix,
        request_timeout_seconds=s.cluster_request_timeout_seconds,
        lease_seconds=s.cluster_node_lease_seconds,
        probe_interval_seconds=s.cluster_probe_interval_seconds,
    )


def default_advertise_url(host: str, port: int) -> str:
    """``http://host:port``; a wildcard host is replaced by an address others can reach."""
    if host in ("", "0.0.0.0", "::"):
        try:
            host = socket.gethostbyname(socket.gethostname())
        except OSError:
            host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
