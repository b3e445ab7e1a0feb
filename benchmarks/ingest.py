"""Ingest benchmark: events per second committed through ``POST /api/events/batch``.

Every answered request is a committed batch (the server answers only after the group commit), so
committed events/s = answered events / elapsed time. ``--concurrency`` clients each post batches of
``--batch`` events back to back for ``--seconds``; the figure is printed with request latencies,
then checked against the server's own count (``totalEvents``).

Against a running server (start it with ``--ingest-rate-per-ip-per-minute 0``, since every request
comes from one address)::

    python -m benchmarks.ingest --url http://127.0.0.1:8000 --token <JWT>

Without ``--url`` it starts ``switchboard serve`` itself on a free port with a fresh data folder
and stops it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec

SECRET = "benchmark-secret-0123456789abcdef0123"
COUNTRIES = ("US", "EG", "IN", "FR", "DE", "BR", "JP", "GB")
DEVICES = ("mobile", "web", "tablet")
NAMES = ("pageview", "login", "click", "purchase", "signup")


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


async def total_events(url: str, token: str) -> int:
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.get(
            url + "/api/metrics/dashboard", headers={"Authorization": f"Bearer {token}"}
        )
        answer.raise_for_status()
        return int(answer.json()["totalEvents"])


async def bench(url: str, token: str, batch: int, seconds: float, concurrency: int) -> None:
    bodies = [[make_batch(c, n, batch) for n in range(8)] for c in range(concurrency)]
    latencies: list[float] = []
    committed = 0
    failures = 0
    start_count = await total_events(url, token)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        headers = {"Content-Type": "application/json"}
        # warm-up: one request per client
        for c in range(concurrency):
            (await http.post("/api/events/batch", content=bodies[c][0], headers=headers))
        warm = concurrency * batch
        deadline = time.perf_counter() + seconds

        async def client(c: int) -> None:
            nonlocal committed, failures
            n = 0
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                answer = await http.post(
                    "/api/events/batch", content=bodies[c][n % 8], headers=headers
                )
                latencies.append((time.perf_counter() - sent) * 1000.0)
                if answer.status_code == 200:
                    committed += int(answer.json()["data"]["accepted"])
                else:
                    failures += 1
                n += 1

        started = time.perf_counter()
        await asyncio.gather(*(client(c) for c in range(concurrency)))
        elapsed = time.perf_counter() - started
    counted = await total_events(url, token) - start_count
    rate = committed / elapsed
    print(f"ingest: {committed} events in {len(latencies)} batches of {batch} over {elapsed:.1f}s")
    print(
        f"ingest: {rate:,.0f} events/s committed ({concurrency} clients); batch latency "
        f"p50 {percentile(latencies, 50):.1f} ms, p99 {percentile(latencies, 99):.1f} ms; "
        f"{failures} refused"
    )
    print(f"ingest: the server counts {counted - warm} new events (expected {committed})")
    summary = {
        "events_per_s": rate,
        "batch_p50_ms": percentile(latencies, 50),
        "batch_p99_ms": percentile(latencies, 99),
        "refused": failures,
        "server_count_matches": counted - warm == committed,
    }
    print(msgspec.json.encode(summary).decode(), flush=True)  # last line: for benchmarks.run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="a running server (default: start one)")
    parser.add_argument("--token", help="JWT for reading the dashboard (with --url)")
    parser.add_argument("--batch", type=int, default=1000, help="events per request")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    if args.url:
        if not args.token:
            sys.exit("--token is needed with --url (switchboard token --sub bench --role admin)")
        asyncio.run(bench(args.url.rstrip("/"), args.token, args.batch, args.seconds,
                          args.concurrency))  # fmt: skip
        return
    from web.platform.auth import Authenticator

    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        command = [
            sys.executable, "-m", "web.cli", "serve", "--port", str(port),
            "--data-dir", str(Path(data) / "data"), "--jwt-secret", SECRET,
            "--ingest-rate-per-ip-per-minute", "0", "--log-level", "warning",
        ]  # fmt: skip
        root = Path(__file__).resolve().parent.parent
        env = {**os.environ, "PYTHONPATH": str(root)}
        server = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None
            for line in server.stdout:
                if "Switchboard listening on" in line:
                    break
            else:
                sys.exit("the server did not start")
            token = Authenticator(SECRET).issue("bench", role="admin")
            asyncio.run(
                bench(f"http://127.0.0.1:{port}", token, args.batch, args.seconds,
                      args.concurrency)
            )  # fmt: skip
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
