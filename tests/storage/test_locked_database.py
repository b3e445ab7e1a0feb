"""The database write-locked by another process (a backup tool, a ``sqlite3`` shell left in a
transaction): writes fail fast as not stored, reads keep answering, health says ``locked``, and
SIGTERM still exits within ``shutdown_timeout_seconds``."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.support.clients.chat import Client, connected, create_chat, rest, start_server, token
from tests.support.clients.scenarios import close_all, run
from tests.support.storage import write_lock

WRITE_TIMEOUT = 2.0
SLACK = 3.0  # a loaded machine's scheduling, on top of the timeout under test


def database(server: Any) -> Path:
    return Path(server.data_dir) / "switchboard.sqlite3"


def health(server: Any) -> dict[str, Any]:
    answer = httpx.get(f"{server.url}/health", timeout=5)
    body: dict[str, Any] = answer.json()
    return body


def test_a_locked_database_fails_writes_fast_and_keeps_serving_reads(
    server_factory: Callable[..., Any],
) -> None:
    server = start_server(server_factory, "--store-write-timeout-seconds", str(WRITE_TIMEOUT))
    chat = create_chat(server, "kim", "lee")

    async def scenario() -> None:
        kim, lee = await connected(server, "kim", "lee")
        await kim.ok("join:chat", {"chatId": chat})
        first = await kim.ok("message:send", {"chatId": chat, "content": "before"})
        with write_lock(database(server)):
            started = time.monotonic()
            answer = await kim.call(
                "message:send", {"chatId": chat, "content": "during", "clientMessageId": "d1"}
            )
            assert time.monotonic() - started < WRITE_TIMEOUT + SLACK
            assert answer["success"] is False and answer["error"] == "not_stored", answer
            assert "locked" in answer["message"]
            # reads need no lock: history, room lists and joins answer at once
            with rest(server, "lee") as http:
                started = time.monotonic()
                page = http.get(f"/api/chats/{chat}/messages", timeout=5)
                assert page.status_code == 200, page.text
                assert [m["content"] for m in page.json()["messages"]] == ["before"]
                assert time.monotonic() - started < SLACK
            listed = await lee.ok("room:list")
            assert [r["chatId"] for r in listed["rooms"]] == [chat]
            await lee.ok("join:chat", {"chatId": chat})
            state = health(server)
            assert state["status"] == "degraded", state
            assert state["storage"]["fault"] == "locked"
            assert state["storage"]["write_failures"] >= 1
            report = await kim.ok("monitoring:health")
            assert any("locked" in issue for issue in report["health"]["issues"]), report
        # the lock is gone: the retry is stored (once), the room works, health is ok again
        again = await kim.ok(
            "message:send", {"chatId": chat, "content": "during", "clientMessageId": "d1"}
        )
        new = await lee.next_where("message:new", lambda m: m["content"] == "during")
        assert new["id"] == again["sentMessage"]["id"] != first["sentMessage"]["id"]
        assert health(server)["status"] == "ok"
        await close_all(kim, lee)

    run(scenario)
    with rest(server, "kim") as http:
        stored = [m["content"] for m in http.get(f"/api/chats/{chat}/messages").json()["messages"]]
    assert stored == ["during", "before"]


def test_sigterm_while_another_process_holds_the_lock_exits_within_the_shutdown_timeout(
    server_factory: Callable[..., Any],
) -> None:
    shutdown = 2.0
    server = start_server(
        server_factory,
        "--store-write-timeout-seconds",
        "60",  # longer than the shutdown timeout: the shutdown timeout is what must hold
        "--shutdown-timeout-seconds",
        str(shutdown),
    )
    chat = create_chat(server, "kim")

    async def scenario() -> None:
        client = Client(server, "kim", tok=token("kim"))
        await client.connect()
        with write_lock(database(server)):
            await client.emit("message:send", {"chatId": chat, "content": "stuck"})
            await asyncio.sleep(0)  # the send is on its way; no answer is awaited
            started = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(server.proc.wait, shutdown + 2 * SLACK)
            except subprocess.TimeoutExpired:
                raise AssertionError(
                    "the server did not exit within its shutdown timeout"
                ) from None
            elapsed = time.monotonic() - started
        assert elapsed < shutdown + SLACK, elapsed
        await close_all(client)

    run(scenario)
    assert server.proc.returncode is not None
