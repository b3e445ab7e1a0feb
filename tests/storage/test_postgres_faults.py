"""PostgreSQL as the database (``--database-url``) when it misbehaves: a server that cannot be
reached at start is refused in one line (its password never shown); a database server that goes
down while Switchboard runs fails writes fast as not stored, health says ``unreachable``, and
once it is back the same Switchboard reconnects and a retried send is stored once."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.clients.chat import Client, create_chat, rest
from tests.support.clients.scenarios import close_all, run
from tests.support.postgres import PostgresServer
from tests.support.processes import REPO_ROOT, ProductServer, free_port, server_env
from tests.support.tokens import CHAT_SECRET

START_LIMIT = 10.0  # seconds: a refusal comes within this
WRITE_TIMEOUT = 2.0
SLACK = 3.0  # a loaded machine's scheduling, on top of the timeout under test


@pytest.fixture
def database_server() -> Iterator[PostgresServer]:
    """A PostgreSQL of this test's own, which the test stops and starts again."""
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


def switchboard(command: str, data: Path, database_url: str) -> tuple[int, str, float]:
    args = [sys.executable, "-m", "web.cli", command, "--data-dir", str(data)]
    args += ["--jwt-secret", "s" * 32, "--log-level", "warning", "--database-url", database_url]
    if command == "serve":
        args += ["--port", str(free_port())]
    started = time.monotonic()
    done = subprocess.run(
        args, cwd=REPO_ROOT, env=server_env(), capture_output=True, text=True,
        timeout=3 * START_LIMIT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return done.returncode, done.stderr.strip(), time.monotonic() - started


def test_an_unreachable_database_is_refused_at_start_without_its_password(tmp_path: Path) -> None:
    url = f"postgresql://app:hunter2@127.0.0.1:{free_port()}/switchboard"
    for command, code in (("serve", 1), ("check-config", 2)):
        returncode, stderr, seconds = switchboard(command, tmp_path, url)
        assert returncode == code, (command, returncode, stderr)
        assert seconds < START_LIMIT, (command, seconds)
        last = stderr.splitlines()[-1]
        assert last.startswith("switchboard: postgresql://app:***@127.0.0.1:"), last
        assert "cannot be reached" in last, last
        assert "hunter2" not in stderr and "Traceback" not in stderr, stderr


def health(server: Any) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{server.url}/health", timeout=5).json()
    return body


def test_a_database_server_that_goes_down_fails_writes_fast_and_is_reconnected(
    database_server: PostgresServer, server_factory: Callable[..., Any], tmp_path: Path
) -> None:
    server = server_factory(
        ProductServer(
            "--store-write-timeout-seconds", str(WRITE_TIMEOUT), "--log-level", "warning",
            secret=CHAT_SECRET, data_dir=tmp_path, test_clock=True,
            database_url=database_server.create_database(),
        )
    )  # fmt: skip
    chat = create_chat(server, "kim", "lee")
    assert health(server)["storage"]["backend"] == "postgresql"

    async def scenario() -> None:
        kim = await Client(server, "kim").connect()
        lee = await Client(server, "lee").connect()
        for client in (kim, lee):
            await client.ok("join:chat", {"chatId": chat})
        first = await kim.ok("message:send", {"chatId": chat, "content": "before"})
        database_server.halt()
        started = time.monotonic()
        answer = await kim.call(
            "message:send", {"chatId": chat, "content": "during", "clientMessageId": "d1"}
        )
        assert time.monotonic() - started < WRITE_TIMEOUT + SLACK
        assert answer["success"] is False and answer["error"] == "not_stored", answer
        assert "unreachable" in answer["message"]
        state = health(server)
        assert state["status"] == "degraded" and state["storage"]["fault"] == "unreachable"
        with rest(server, "lee") as http:  # a read needs the server too: a JSON 503, at once
            page = http.get(f"/api/chats/{chat}/messages", timeout=SLACK + 5)
            assert page.status_code == 503, page.text
            assert page.json()["success"] is False
        database_server.start()
        again = await kim.ok(
            "message:send", {"chatId": chat, "content": "during", "clientMessageId": "d1"}
        )
        new = await lee.next_where("message:new", lambda m: m["content"] == "during")
        assert new["id"] == again["sentMessage"]["id"] != first["sentMessage"]["id"]
        repeat = await kim.ok(  # the retry of a retry: still the one message
            "message:send", {"chatId": chat, "content": "during", "clientMessageId": "d1"}
        )
        assert repeat["sentMessage"]["id"] == again["sentMessage"]["id"]
        assert health(server)["status"] == "ok"
        await close_all(kim, lee)

    run(scenario)
    with rest(server, "kim") as http:
        page = http.get(f"/api/chats/{chat}/messages").json()["messages"]
    assert sorted(m["content"] for m in page) == ["before", "during"]
