"""Pages of a running server's database corrupted on purpose: the history pages that read them
answer the API's JSON error (503, ``read_failed``), never an HTML page; /health says ``failed``
with ``corrupt``; the server keeps serving everything else."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.support.clients.chat import connected, rest, start_server
from tests.support.clients.scenarios import close_all, run
from tests.support.storage import chat_database, corrupt_pages, page_count

CHAT = "chat-corrupt"


def test_corrupt_pages_answer_json_errors_and_health_says_failed(
    server_factory: Callable[..., Any], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    database = data / "switchboard.sqlite3"
    chat_database(database, CHAT, ("kim", "lee"), 3000)
    server = start_server(server_factory, data_dir=str(data))
    with rest(server, "kim") as http:
        first = http.get(f"/api/chats/{CHAT}/messages", params={"limit": 100})
        assert first.status_code == 200, first.text
        pages = page_count(database)
        corrupt_pages(database, pages // 5, pages // 2)  # the older messages' pages
        before = first.json()["nextBefore"]
        failure = None
        while before:
            page = http.get(f"/api/chats/{CHAT}/messages", params={"limit": 100, "before": before})
            assert page.headers["content-type"] == "application/json", page.text
            if page.status_code != 200:
                failure = page
                break
            before = page.json()["nextBefore"]
        assert failure is not None, "no history page read a corrupted page"
        assert failure.status_code == 503, failure.text
        body = failure.json()
        assert body["success"] is False and body["error"] == "read_failed", body
        assert "corrupt" in body["message"]
    health = httpx.get(f"{server.url}/health")
    assert health.status_code == 503
    assert health.json()["status"] == "failed"
    assert health.json()["storage"]["fault"] == "corrupt"

    async def still_serving() -> None:
        (kim,) = await connected(server, "kim")
        report = await kim.ok("monitoring:health")
        assert report["health"]["status"] == "critical"
        assert any("corrupt" in issue for issue in report["health"]["issues"]), report
        await close_all(kim)

    run(still_serving)
    assert server.alive
