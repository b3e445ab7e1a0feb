"""What the cluster tests start for themselves, on free ports: a private Redis, Switchboard
nodes, a stock Node socket.io server with the Redis adapter, and HAProxy in front (round-robin,
no stickiness); and the python-socketio client they watch them with. Nothing here touches a
Redis or a load balancer the machine already runs."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import socketio

from tests.support.processes import ProductServer, ServerProcess, free_port, wait_for_port
from tests.support.servers import INTEROP_SERVER
from tests.support.tokens import interop_token

START_TIMEOUT_SECONDS = 15.0
FAST_CLUSTER = [  # leases and probes short enough for fault tests to finish quickly
    "--set", "cluster_node_lease_seconds=1.5",
    "--set", "cluster_probe_interval_seconds=0.3",
    "--set", "cluster_request_timeout_seconds=3",
]  # fmt: skip


token = replace(interop_token, sub="u1", ttl=3600)  # the interop server's secret


class RedisServer:
    """A private redis-server (nothing on disk) that a test can stop and start again."""

    def __init__(self) -> None:
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is not installed: `make test` installs it")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        proc = self.proc
        wait_for_port(
            self.port, START_TIMEOUT_SECONDS, alive=lambda: proc.poll() is None, what="redis-server"
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def restart(self) -> None:
        self.stop()
        self.start()


class LoadBalancer:
    """HAProxy, round-robin per request, no stickiness, WebSocket tunnels passed through."""

    def __init__(self, backends: list[int], folder: Path) -> None:
        if shutil.which("haproxy") is None:
            pytest.fail("haproxy is not installed: `make test` installs it")
        self.port = free_port()
        servers = "".join(f"  server n{i} 127.0.0.1:{port}\n" for i, port in enumerate(backends))
        config = folder / "haproxy.cfg"
        config.write_text(
            "global\n  maxconn 8000\n"
            "defaults\n  mode http\n  timeout connect 2s\n  timeout client 60s\n"
            "  timeout server 60s\n  timeout tunnel 1h\n"
            f"frontend fe\n  bind 127.0.0.1:{self.port}\n  default_backend be\n"
            f"backend be\n  balance roundrobin\n{servers}"
        )
        self.proc = subprocess.Popen(["haproxy", "-f", str(config), "-db"])
        proc = self.proc
        wait_for_port(
            self.port, START_TIMEOUT_SECONDS, alive=lambda: proc.poll() is None, what="haproxy"
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=5)


def switchboard_node(redis_url: str, *extra: str) -> ServerProcess:
    return ServerProcess(INTEROP_SERVER, "--set", f"redis_url={redis_url}", *FAST_CLUSTER, *extra)


def node_server(redis_url: str) -> ServerProcess:
    return ServerProcess("tests/node/cluster_server.js", redis_url, python="node")


class Client:
    """A python-socketio AsyncClient that keeps what it receives, per event, to wait on."""

    def __init__(self, url: str, auth: dict[str, str] | None = None, **options: Any) -> None:
        self.url = url
        self.auth = auth
        self.options = options
        self.sio = socketio.AsyncClient(reconnection=False)
        self.inbox: dict[str, asyncio.Queue[tuple[Any, ...]]] = {}
        self.answers: dict[str, Any] = {}  # event -> what this client acks when asked
        self.disconnected = asyncio.Event()
        self.sio.on("*", self._record)
        self.sio.on("disconnect", self.disconnected.set)

    async def _record(self, event: str, *args: Any) -> Any:
        self.queue(event).put_nowait(args)
        return self.answers.get(event)

    def queue(self, event: str) -> asyncio.Queue[tuple[Any, ...]]:
        return self.inbox.setdefault(event, asyncio.Queue())

    async def connect(self, transports: list[str] | None = None) -> Client:
        await self.sio.connect(self.url, auth=self.auth, transports=transports, wait_timeout=10)
        return self

    async def call(self, event: str, *args: Any, timeout: float = 10.0) -> Any:
        data = args[0] if len(args) == 1 else tuple(args)  # a tuple: several arguments
        return await self.sio.call(event, data, timeout=timeout)

    async def next(self, event: str, timeout: float = 10.0) -> tuple[Any, ...]:
        return await asyncio.wait_for(self.queue(event).get(), timeout)

    @property
    def sid(self) -> str:
        sid = self.sio.get_sid()
        assert sid is not None
        return sid

    async def close(self) -> None:
        await self.sio.disconnect()


# --- a cluster of the product: the applications across nodes -----------------------------------
PRODUCT_CLUSTER = [  # leases and probes short enough for fault tests to finish quickly
    "--cluster-node-lease-seconds", "1.5",
    "--cluster-probe-interval-seconds", "0.3",
    "--cluster-request-timeout-seconds", "3",
    "--log-level", "warning",
]  # fmt: skip


class ProductCluster:
    """``switchboard serve`` nodes on one Redis and one PostgreSQL database, the test clock on,
    and a round-robin HAProxy in front (``url``): what an operator runs, on free ports."""

    def __init__(
        self,
        redis: RedisServer,
        database_url: str,
        balancer: Callable[[list[int]], LoadBalancer],
        server_factory: Callable[..., Any],
        *flags: str,
        secret: str,
        nodes: int = 3,
    ) -> None:
        self.redis = redis
        self.database_url = database_url
        self.secret = secret
        self.flags = flags
        self.server_factory = server_factory
        self.nodes: list[ProductServer] = [self.start_node(i) for i in range(nodes)]
        self.lb = balancer([node.port for node in self.nodes])

    def start_node(self, index: int, port: int | None = None) -> ProductServer:
        node = ProductServer(
            "--redis-url", self.redis.url, "--node-id", f"node-{index}", *PRODUCT_CLUSTER,
            *self.flags, secret=self.secret, test_clock=True, database_url=self.database_url,
            port=port,
        )  # fmt: skip
        started: ProductServer = self.server_factory(node)
        return started

    @property
    def url(self) -> str:
        return self.lb.url

    def restart(self, index: int) -> ProductServer:
        """Start node ``index`` again on the same port (after a kill), behind the balancer."""
        node = self.start_node(index, port=self.nodes[index].port)
        self.nodes[index] = node
        return node
