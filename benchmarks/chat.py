"""Chat benchmark: durable messages/s through ``message:send`` on ``/chat``, and ``message:new``
latency.

``--rooms`` chats with ``--per-room`` members each; every member sends ``message:send`` with an
ack, waits for the ack (the server acks only after the message is committed), and sends again,
for ``--seconds``. Durable messages/s = acks / elapsed. Each message's content is the sender's
``perf_counter``; every ``message:new`` received gives one delivery latency.

It starts ``switchboard serve`` on a free port with a fresh data folder (chat rate limits off,
since every client comes from one address) and stops it afterwards::

    python -m benchmarks.chat [--rooms 10] [--per-room 20] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
import trio

from benchmarks.loadgen import Client, cpu_seconds, percentile
from benchmarks.run import free_port
from web.platform.auth import Authenticator

SECRET = "chat-benchmark-secret-0123456789abcdef"
ROOT = Path(__file__).resolve().parent.parent


async def bench(port: int, rooms: int, per_room: int, seconds: float) -> dict[str, float]:
    auth = Authenticator(SECRET)
    admin = auth.issue("bench-admin", role="admin", ttl_seconds=3600)
    users = [f"bench-user-{i}" for i in range(rooms * per_room)]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        chat_ids = []
        for r in range(rooms):
            members = users[r * per_room : (r + 1) * per_room]
            answer = await http.post(
                "/api/chats",
                json={"name": f"bench-{r}", "participants": members},
                headers={"Authorization": f"Bearer {admin}"},
            )
            answer.raise_for_status()
            chat_ids.append(answer.json()["chat"]["chatId"])
    latencies: list[float] = []
    acks = 0

    def on_event(packet: bytes) -> None:
        if packet.startswith(b'42["message:new"'):
            message = msgspec.json.decode(packet[2:])[1]
            latencies.append(time.perf_counter() - float(message["content"]))

    async with trio.open_nursery() as nursery:
        clients: list[tuple[Client, str]] = []
        limiter = trio.CapacityLimiter(50)

        async def connect(index: int) -> None:
            async with limiter:
                client = await Client.connect("127.0.0.1", port, namespace="/chat")
                nursery.start_soon(client.read_loop)
                token = auth.issue(users[index], ttl_seconds=3600)
                await client.join_namespace({"token": token})
                chat_id = chat_ids[index // per_room]
                joined = await client.emit_with_ack("join:chat", {"chatId": chat_id})
                assert joined[0]["success"], joined
                client.on_event = on_event
                clients.append((client, chat_id))

        async with trio.open_nursery() as openers:
            for index in range(len(users)):
                openers.start_soon(connect, index)
        started = time.perf_counter()
        cpu_started = cpu_seconds()
        deadline = started + seconds

        async def sender(client: Client, chat_id: str) -> None:
            nonlocal acks
            while time.perf_counter() < deadline:
                answer = await client.emit_with_ack(
                    "message:send",
                    {"chatId": chat_id, "content": repr(time.perf_counter()), "type": "text"},
                )
                if answer[0].get("success"):
                    acks += 1

        async with trio.open_nursery() as senders:
            for client, chat_id in clients:
                senders.start_soon(sender, client, chat_id)
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds() - cpu_started
        nursery.cancel_scope.cancel()
    return {
        "durable_messages_per_s": acks / elapsed,
        "deliveries_per_s": len(latencies) / elapsed,
        "message_new_p50_ms": percentile(latencies, 0.5) * 1000,
        "message_new_p99_ms": percentile(latencies, 0.99) * 1000,
        "loadgen_cpu_share": cpu / elapsed,
    }


def serve(port: int, data_dir: str) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        "-m",
        "web.cli",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        data_dir,
        "--jwt-secret",
        SECRET,
        "--log-level",
        "warning",
        "--chat-message-rate-per-minute",
        "0",
        "--chat-connect-attempts-per-ip",
        "0",
        "--chat-handshakes-per-ip-per-minute",
        "0",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if "listening on" in line:
            return proc
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError("switchboard did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rooms", type=int, default=10)
    parser.add_argument("--per-room", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    port = free_port()
    proc = serve(port, tempfile.mkdtemp(prefix="chat-bench-"))
    try:
        result: Any = trio.run(bench, port, args.rooms, args.per_room, args.seconds)
    finally:
        proc.terminate()
        proc.wait(10)
    print(msgspec.json.encode(result).decode(), flush=True)


if __name__ == "__main__":
    main()
