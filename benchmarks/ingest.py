"""Ingest benchmark: events per second committed through ``POST /api/events/batch``.

Every answered request is a committed batch (the servers answer only after the commit), so
committed events/s = accepted events / elapsed time. ``--concurrency`` clients each post batches
of ``--batch`` events back to back on one keep-alive connection for ``--seconds``; the figure
comes with request latencies and is checked against the server's own count (``totalEvents`` of
``GET /api/metrics/dashboard``).

The requests are prebuilt bytes, written and read from one epoll loop (no HTTP client library in
the measured phase), so the generator's cost per request is a few system calls.

Without ``--url``/``--port`` it starts the server itself (``--server switchboard``: ``switchboard
serve``; ``--server node-app``: the Node application peer) with a fresh data folder and stops it
afterwards. Against a running server (Switchboard: start it with
``--ingest-rate-per-ip-per-minute 0``, since every request comes from one address)::

    python -m benchmarks.ingest [--server node-app] [--batch 1000] [--concurrency 4]
    python -m benchmarks.ingest --url http://127.0.0.1:8000 --token <JWT> [--server-pid PID]
"""

from __future__ import annotations

import argparse
import select
import socket
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec

from benchmarks.cpu import Meter

COUNTRIES = ("US", "EG", "IN", "FR", "DE", "BR", "JP", "GB")
DEVICES = ("mobile", "web", "tablet")
NAMES = ("pageview", "login", "click", "purchase", "signup")
ACCEPTED = b'"accepted":'


def make_batch(client: int, n: int, size: int) -> bytes:
    events: list[dict[str, Any]] = []
    for i in range(size):
        k = client * 7919 + n * 104729 + i
        if k % 2:
            events.append(
                {
                    "type": "pageview",
                    "page": f"/page/{k % 40}",
                    "session_id": f"s{client}-{k % 500}",
                    "country": COUNTRIES[k % len(COUNTRIES)],
                    "metadata": {"device": DEVICES[k % 3], "referrer": "google.com"},
                }
            )
        else:
            events.append(
                {
                    "eventName": NAMES[k % len(NAMES)],
                    "userId": f"u{k % 5000}",
                    "country": COUNTRIES[k % len(COUNTRIES)],
                    "device": DEVICES[k % 3],
                    "properties": {"n": k},
                }
            )
    return msgspec.json.encode(events)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100.0 * len(ordered)))]


def total_events(url: str, token: str) -> int:
    answer = httpx.get(
        url + "/api/metrics/dashboard", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    answer.raise_for_status()
    return int(answer.json()["totalEvents"])


class Connection:
    """One keep-alive HTTP/1.1 connection posting prebuilt requests."""

    __slots__ = ("inbox", "n", "out", "requests", "sent_at", "sock")

    def __init__(self, host: str, port: int, requests: list[bytes]) -> None:
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.requests = requests
        self.n = 0
        self.out = memoryview(b"")
        self.inbox = b""
        self.sent_at = 0.0

    def next_request(self, now: float) -> None:
        self.out = memoryview(self.requests[self.n % len(self.requests)])
        self.n += 1
        self.sent_at = now

    def write(self) -> bool:
        """Send what the socket takes; True once the request is all out."""
        try:
            sent = self.sock.send(self.out)
        except BlockingIOError:
            return False
        self.out = self.out[sent:]
        return not self.out

    def response(self) -> tuple[int, bytes] | None:
        """The status and body of a complete response in the inbox, removed from it."""
        head_end = self.inbox.find(b"\r\n\r\n")
        if head_end < 0:
            return None
        head = self.inbox[:head_end].lower()
        at = head.find(b"content-length:")
        if at < 0:
            raise ConnectionError("a response without Content-Length")
        line_end = head.find(b"\r\n", at)
        length = int(head[at + 15 : line_end if line_end >= 0 else len(head)])
        end = head_end + 4 + length
        if len(self.inbox) < end:
            return None
        status = int(self.inbox[9:12])
        body, self.inbox = self.inbox[head_end + 4 : end], self.inbox[end:]
        return status, body


def ingest_phase(connections: list[Connection], seconds: float) -> dict[str, Any]:
    """Each connection posts, waits for the answer, posts again; until ``seconds`` have passed
    and every answer is in."""
    poller = select.epoll()
    by_fd = {c.sock.fileno(): c for c in connections}
    latencies: list[float] = []
    committed = refused = 0
    perf = time.perf_counter
    started = perf()
    deadline = started + seconds
    waiting = len(connections)
    for c in connections:
        c.next_request(started)
        flags = select.EPOLLIN if c.write() else select.EPOLLIN | select.EPOLLOUT
        poller.register(c.sock.fileno(), flags)
    try:
        while waiting and perf() < deadline + 60:
            for fd, events in poller.poll(0.2):
                c = by_fd[fd]
                if events & select.EPOLLOUT and c.write():
                    poller.modify(fd, select.EPOLLIN)
                if not events & select.EPOLLIN:
                    continue
                try:
                    data = c.sock.recv(262144)
                except BlockingIOError:
                    continue
                if not data:
                    raise ConnectionError("the server closed a connection")
                c.inbox += data
                answer = c.response()
                if answer is None:
                    continue
                now = perf()
                latencies.append((now - c.sent_at) * 1000.0)
                status, body = answer
                at = body.find(ACCEPTED)
                if status == 200 and at >= 0:
                    at += len(ACCEPTED)
                    committed += int(body[at : body.index(b",", at)])
                else:
                    refused += 1
                if now >= deadline:
                    waiting -= 1
                    continue
                c.next_request(now)
                if not c.write():
                    poller.modify(fd, select.EPOLLIN | select.EPOLLOUT)
    finally:
        poller.close()
    elapsed = perf() - started
    return {"committed": committed, "refused": refused, "latencies": latencies, "elapsed": elapsed}


def request_bytes(host: str, port: int, body: bytes) -> bytes:
    head = (
        f"POST /api/events/batch HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def bench(
    url: str,
    token: str,
    batch: int,
    seconds: float,
    concurrency: int,
    server_pid: int = 0,
    other_ports: tuple[int, ...] = (),
) -> dict[str, Any]:
    """``other_ports``: the other nodes of a cluster on the same host (the connections take
    turns); the count is read back from ``url``'s node."""
    parts = urlsplit(url)
    host, first = parts.hostname or "127.0.0.1", parts.port or 80
    ports = [first, *other_ports]
    requests = [
        [request_bytes(host, ports[c % len(ports)], make_batch(c, n, batch)) for n in range(8)]
        for c in range(concurrency)
    ]
    start_count = total_events(url, token)
    connections = [Connection(host, ports[c % len(ports)], r) for c, r in enumerate(requests)]
    warm = ingest_phase(connections, 0.0)  # one request per connection, not measured
    meter = Meter(server_pid)
    meter.start()
    run = ingest_phase(connections, seconds)
    shares = meter.stop()
    for c in connections:
        c.sock.close()
    counted = total_events(url, token) - start_count - warm["committed"]
    latencies, committed = run["latencies"], run["committed"]
    rate = committed / run["elapsed"]
    print(f"ingest: {committed} events in {len(latencies)} batches of {batch}", file=sys.stderr)
    print(f"ingest: the server counts {counted} new events (expected {committed})", file=sys.stderr)
    return {
        "events_per_s": rate,
        "batch_p50_ms": percentile(latencies, 50),
        "batch_p99_ms": percentile(latencies, 99),
        "refused": float(run["refused"]),
        "server_count_matches": counted == committed,
        **shares,
    }


def main() -> None:
    from benchmarks.apps import token
    from benchmarks.run import APP_SERVERS, RunningServer

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", default="switchboard", choices=list(APP_SERVERS))
    parser.add_argument("--url", help="a running server (default: start one)")
    parser.add_argument("--port", type=int, default=0, help="a running server on 127.0.0.1")
    parser.add_argument("--token", help="JWT for reading the dashboard (default: the bench one)")
    parser.add_argument("--server-pid", type=int, default=0, help="with --url/--port: its CPU")
    parser.add_argument("--batch", type=int, default=1000, help="events per request")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    figures = (args.batch, args.seconds, args.concurrency)
    jwt = args.token or token("bench", role="admin")
    url = args.url.rstrip("/") if args.url else f"http://127.0.0.1:{args.port}" if args.port else ""
    if url:
        result = bench(url, jwt, *figures, server_pid=args.server_pid)
    else:
        server = RunningServer(APP_SERVERS[args.server])
        try:
            result = bench(f"http://127.0.0.1:{server.port}", jwt, *figures, server.proc.pid)
        finally:
            server.stop()
    print(msgspec.json.encode(result).decode(), flush=True)  # last line: for benchmarks.run


if __name__ == "__main__":
    main()
