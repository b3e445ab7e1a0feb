"""The data folder on a small tmpfs, filled to the last byte: chat sends and ingest fail fast
with an answer that is true ("not stored" is not stored; "outcome unknown" is made safe by a
retry with the same id), reads keep answering, health and metrics say ``disk full``, and all is
well again once space is freed."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.support.clients.chat import connected, create_chat, rest, start_server, token
from tests.support.clients.scenarios import close_all, run
from tests.support.storage import fill, small_disk

WRITE_TIMEOUT = 2.0
SLACK = 3.0
CONTENT = "x" * 3000  # each message needs a page or so of the write-ahead log


def history(server: Any, chat: str) -> list[str]:
    contents: list[str] = []
    with rest(server, "kim") as http:
        before = None
        while True:
            params: dict[str, Any] = {"limit": 100}
            if before:
                params["before"] = before
            answer = http.get(f"/api/chats/{chat}/messages", params=params, timeout=10)
            assert answer.status_code == 200, answer.text
            page = answer.json()
            contents += [m["content"].split(" ")[0] for m in page["messages"]]
            before = page["nextBefore"]
            if not page["hasMore"]:
                return contents


def metric(server: Any, name: str) -> float:
    text = httpx.get(
        f"{server.url}/metrics", headers={"Authorization": f"Bearer {token('admin', role='admin')}"}
    ).text
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} is not in /metrics")


def test_a_full_disk_fails_fast_and_truthfully_and_reads_go_on(
    server_factory: Callable[..., Any], tmp_path: Path
) -> None:
    with small_disk(tmp_path / "disk") as disk:
        server = start_server(
            server_factory,
            "--store-write-timeout-seconds",
            str(WRITE_TIMEOUT),
            "--chat-message-rate-per-minute",
            "0",
            data_dir=str(disk / "data"),
        )
        chat = create_chat(server, "kim", "lee")
        filler = fill(disk)
        answers: dict[str, dict[str, Any]] = {}

        async def sends() -> None:
            kim, lee = await connected(server, "kim", "lee")
            await kim.ok("join:chat", {"chatId": chat})
            for i in range(200):
                label = f"m{i}"
                started = time.monotonic()
                answer = await kim.call(
                    "message:send",
                    {"chatId": chat, "content": f"{label} {CONTENT}", "clientMessageId": label},
                )
                assert time.monotonic() - started < WRITE_TIMEOUT + SLACK, answer
                answers[label] = answer
                if sum(not a["success"] for a in answers.values()) >= 5:
                    break
            failed = [a for a in answers.values() if not a["success"]]
            assert failed, "the full disk never failed a send"
            for answer in failed:
                assert answer["error"] in ("not_stored", "outcome_unknown"), answer
                assert "disk full" in answer["message"], answer
            # reading needs no free space: lists, joins and the room's information answer
            listed = await lee.ok("room:list")
            assert [r["chatId"] for r in listed["rooms"]] == [chat]
            await lee.ok("join:chat", {"chatId": chat})
            report = await kim.ok("monitoring:health")
            assert any("disk full" in issue for issue in report["health"]["issues"]), report
            await close_all(kim, lee)

        run(sends)
        started = time.monotonic()
        stored_while_full = history(server, chat)
        assert time.monotonic() - started < SLACK
        health = httpx.get(f"{server.url}/health").json()
        assert health["status"] == "degraded" and health["storage"]["fault"] == "disk full"
        assert health["storage"]["write_failures_last_minute"] >= 1
        assert metric(server, "switchboard_store_write_failures_total") >= 1
        assert metric(server, 'switchboard_storage_state{fault="disk full",state="degraded"}') == 1

        # ingest: refused as not stored / unknown, fast, never a 500
        started = time.monotonic()
        events = [{"eventName": "view", "userId": f"u{i}", "page": "p" * 900} for i in range(200)]
        refused = httpx.post(
            f"{server.url}/api/events/batch",
            json=events,
            headers={"Idempotency-Key": "full-1"},
            timeout=10,
        )
        assert time.monotonic() - started < WRITE_TIMEOUT + SLACK
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"] in ("not_stored", "outcome_unknown")

        # no false failures: what was answered "not stored" is not in the history
        acked = {label for label, a in answers.items() if a["success"]}
        not_stored = {label for label, a in answers.items() if a.get("error") == "not_stored"}
        assert acked <= set(stored_while_full)
        assert not (not_stored & set(stored_while_full))

        filler.unlink()  # space again: the same retries are stored once each

        async def retries() -> None:
            (kim,) = await connected(server, "kim")
            for label, answer in answers.items():
                if not answer["success"]:
                    await kim.ok(
                        "message:send",
                        {"chatId": chat, "content": f"{label} {CONTENT}", "clientMessageId": label},
                    )
            await close_all(kim)

        run(retries)
        stored = history(server, chat)
        assert sorted(stored) == sorted(answers), "every message is stored exactly once"
        again = httpx.post(
            f"{server.url}/api/events/batch",
            json=events,
            headers={"Idempotency-Key": "full-1"},
            timeout=10,
        )
        assert again.status_code in (200, 201), again.text
        assert httpx.get(f"{server.url}/health").json()["status"] == "ok"
        server.stop()
