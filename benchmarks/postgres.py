"""The application scenarios on PostgreSQL: durable chat messages/s and ingest events/s with
``--database-url``, on one node and on a cluster of three (one Redis, one database, the clients
taking turns over the nodes), beside the SQLite default on one node.

    python -m benchmarks.postgres [--runs 1] [--seconds 10] [--database-url URL]

Without ``--database-url`` it starts a private PostgreSQL on a free port
(:class:`tests.support.postgres.PostgresServer`: initdb as the ``postgres`` user when run as root;
``fsync=off``, as in the tests, so the figure is Switchboard's cost, not the disk's) and a private
Redis, never the machine's own. Each run gets a fresh database. Unpinned: several nodes, Redis and
PostgreSQL share the machine's cores with the generator, so the three-node figures say what the
cluster's bookkeeping costs on one machine, not what three machines would do.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from typing import Any

from benchmarks import chat, ingest
from benchmarks.apps import free_port, switchboard_command, token
from benchmarks.run import APP_SERVERS, RunningServer, ServerSpec


def node_spec(*extra: str) -> ServerSpec:
    base = APP_SERVERS["switchboard"]
    return ServerSpec(
        base.name, lambda port, data: [*switchboard_command(port, data), *extra], base.ready
    )


class Cluster:
    """``nodes`` Switchboard nodes on one database (and, for more than one, one Redis)."""

    def __init__(self, nodes: int, database_url: str) -> None:
        self.redis: subprocess.Popen[bytes] | None = None
        extra = ["--database-url", database_url]
        if nodes > 1:
            redis_port = free_port()
            self.redis = subprocess.Popen(
                ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no"],
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            extra += ["--redis-url", f"redis://127.0.0.1:{redis_port}"]
        self.servers: list[RunningServer] = []
        try:
            for i in range(nodes):
                self.servers.append(RunningServer(node_spec(*extra, "--node-id", f"bench-{i}")))
        except BaseException:
            self.stop()
            raise

    @property
    def ports(self) -> list[int]:
        return [s.port for s in self.servers]

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        if self.redis is not None:
            self.redis.kill()
            self.redis.wait()


def run_chat(nodes: Cluster, seconds: float) -> dict[str, Any]:
    first = nodes.servers[0]
    return chat.bench(nodes.ports, 10, 20, seconds, server_pid=first.proc.pid)


def run_ingest(nodes: Cluster, seconds: float) -> dict[str, Any]:
    first = nodes.servers[0]
    url = f"http://127.0.0.1:{first.port}"
    jwt = token("bench", role="admin")
    others = tuple(nodes.ports[1:])
    return ingest.bench(url, jwt, 1000, seconds, 4, first.proc.pid, other_ports=others)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--database-url", default="", help="default: a private PostgreSQL")
    args = parser.parse_args()
    private = None
    if not args.database_url:
        from tests.support.postgres import PostgresServer

        private = PostgresServer()
        private.start()
    rows: dict[tuple[str, str], list[float]] = {}
    try:
        for nodes in (1, 3):
            for run in range(args.runs):
                url = args.database_url or private.create_database("bench")  # type: ignore[union-attr]
                for scenario, runner, figure in (
                    ("chat", run_chat, "durable_messages_per_s"),
                    ("ingest", run_ingest, "events_per_s"),
                ):
                    cluster = Cluster(nodes, url)
                    try:
                        result = runner(cluster, args.seconds)
                    finally:
                        cluster.stop()
                    name = f"postgresql, {nodes} node{'s' if nodes > 1 else ''}"
                    rows.setdefault((scenario, name), []).append(result[figure])
                    print(f"  {scenario:<7} {name:<20} run {run + 1}: {figure}="
                          f"{result[figure]:,.0f} {result}", flush=True)  # fmt: skip
    finally:
        if private is not None:
            private.stop()
    print("\n| scenario | database, nodes | figure (median) |\n|---|---|---|")
    for (scenario, name), values in rows.items():
        unit = "durable messages/s" if scenario == "chat" else "events/s committed"
        print(f"| {scenario} | {name} | {statistics.median(values):,.0f} {unit} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
