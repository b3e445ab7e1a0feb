"""Acked means committed: SIGKILL the server while clients are sending, restart it on the same
data directory, and find every acknowledged message in the history."""

from __future__ import annotations

import asyncio
import signal
import tempfile
from collections.abc import Callable
from typing import Any

from tests.support.clients.chat import Client, connected, create_chat, rest, start_server
from tests.support.clients.scenarios import close_all, run

SENDERS = ("kim", "lee", "max")


def test_acked_messages_survive_sigkill(server_factory: Callable[..., Any]) -> None:
    data = tempfile.mkdtemp(prefix="chat-kill-")
    server = start_server(server_factory, data_dir=data)
    chat = create_chat(server, *SENDERS)
    acked: list[str] = []

    async def scenario() -> None:
        clients = await connected(server, *SENDERS)
        enough = asyncio.Event()

        async def sender(client: Client) -> None:
            for i in range(80):
                answer = await client.call(
                    "message:send", {"chatId": chat, "content": f"{client.user} {i}"}
                )
                if answer["success"]:
                    acked.append(answer["sentMessage"]["id"])
                if len(acked) >= 120:
                    enough.set()

        tasks = [asyncio.create_task(sender(c)) for c in clients]
        await asyncio.wait_for(enough.wait(), 20)
        server.proc.send_signal(signal.SIGKILL)  # sends still in flight
        server.proc.wait(5)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await close_all(*clients)

    run(scenario)
    assert server.proc.returncode == -signal.SIGKILL
    snapshot = list(acked)
    assert len(snapshot) >= 120

    again = start_server(server_factory, data_dir=data)
    stored: list[str] = []
    with rest(again, "kim") as http:
        before = None
        while True:
            params: dict[str, Any] = {"limit": 100}
            if before:
                params["before"] = before
            page = http.get(f"/api/chats/{chat}/messages", params=params).json()
            stored += [m["id"] for m in page["messages"]]
            before = page["nextBefore"]
            if not page["hasMore"]:
                break
    assert set(snapshot) <= set(stored)
    assert len(stored) == len(set(stored))
