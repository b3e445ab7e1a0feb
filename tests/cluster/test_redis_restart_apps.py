"""Redis restarted (its data gone) while chat members on every node send and events are posted
through the balancer: no acknowledged chat message is lost to any member (what Redis dropped is
filled in from PostgreSQL, in order, once), and every node's dashboard converges on the same
numbers, those of the database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.cluster.helpers import LoadBalancer, ProductCluster, RedisServer
from tests.support.clients.chat import Client, create_chat
from tests.support.clients.scenarios import close_all, run
from tests.support.tokens import CHAT_SECRET, Tokens
from tests.support.waiting import wait_until_asyncio, wait_until_blocking
from tests.web.apps.analytics.test_dashboard import without_performance

FLAGS = (
    "--chat-connect-attempts-per-ip", "0",
    "--chat-message-rate-per-minute", "0",
    "--ingest-rate-per-ip-per-minute", "0",
    "--chat-resync-interval-seconds", "1",
)  # fmt: skip
WAIT = 20.0
LOAD_MESSAGES = 60  # acknowledged before the restart, and again after it


def test_redis_restarted_under_chat_and_ingest_load(
    redis: RedisServer,
    balancer: Callable[[list[int]], LoadBalancer],
    database_url: str,
    server_factory: Callable[..., Any],
) -> None:
    # one secret for both applications' tokens: the chat's
    nodes = ProductCluster(
        redis, database_url, balancer, server_factory, *FLAGS, secret=CHAT_SECRET
    )
    users = ["s0", "s1", "s2", "w0", "w1", "w2"]
    chat = create_chat(nodes.nodes[0], *users)
    acked: list[str] = []
    events_acked = 0

    async def scenario() -> None:
        nonlocal events_acked
        senders = [await Client(n, f"s{i}").connect() for i, n in enumerate(nodes.nodes)]
        watchers = [await Client(n, f"w{i}").connect() for i, n in enumerate(nodes.nodes)]
        stop = asyncio.Event()
        try:
            for member in senders + watchers:
                await member.ok("join:chat", {"chatId": chat})

            async def keep_sending(sender: Client, index: int) -> None:
                k = 0
                while not stop.is_set():
                    answer = await sender.call(
                        "message:send", {"chatId": chat, "content": f"{index}:{k}"}
                    )
                    if answer.get("success"):
                        acked.append(answer["sentMessage"]["id"])
                    k += 1
                    await asyncio.sleep(0.01)  # pacing a steady load, not a wait

            async def keep_posting() -> None:
                nonlocal events_acked
                headers = {"Authorization": f"Bearer {analytics_token}"}
                async with httpx.AsyncClient(base_url=nodes.url, timeout=WAIT) as http:
                    b = 0
                    while not stop.is_set():
                        batch = [
                            {"eventName": "order", "userId": f"u{b}-{i}", "session_id": f"s{b}"}
                            for i in range(20)
                        ]
                        try:
                            answer = await http.post(
                                "/api/events/batch", json=batch, headers=headers
                            )
                        except httpx.HTTPError:
                            answer = None
                        if answer is not None and answer.status_code == 200:
                            events_acked += int(answer.json()["data"]["stored"])
                        b += 1
                        await asyncio.sleep(0.02)  # pacing a steady load, not a wait

            tasks = [asyncio.create_task(keep_sending(s, i)) for i, s in enumerate(senders)]
            tasks.append(asyncio.create_task(keep_posting()))
            await wait_until_asyncio(lambda: len(acked) >= LOAD_MESSAGES, WAIT)  # load running
            before = len(acked)
            await asyncio.to_thread(redis.restart)  # its data is gone: nothing on disk
            # the chat goes on after it: as many again acknowledged on the far side
            await wait_until_asyncio(lambda: len(acked) >= before + LOAD_MESSAGES, WAIT)
            stop.set()
            await asyncio.gather(*tasks)
            stored = nodes.nodes[0].query(
                "SELECT id FROM chat_messages WHERE chat_id = ? ORDER BY chat_seq", chat
            )
            stored_ids = [mid for (mid,) in stored]
            assert set(acked) <= set(stored_ids)
            for watcher in watchers:  # each member: every stored message, once, in order
                got = [m["id"] for m in watcher.pending("message:new")]
                while len(got) < len(stored_ids):
                    got.append((await watcher.next("message:new", timeout=WAIT))["id"])
                assert got == stored_ids
        finally:
            stop.set()
            await close_all(*senders, *watchers)

    analytics_token = Tokens(CHAT_SECRET)("ops", "admin")
    run(scenario, timeout=120)
    assert events_acked > 0
    total = int(nodes.nodes[0].query("SELECT count(*) FROM analytics_events")[0][0])
    assert total >= events_acked

    def dashboard(url: str) -> dict[str, Any]:
        answer = httpx.get(
            url + "/api/metrics/dashboard",
            headers={"Authorization": f"Bearer {analytics_token}"},
            timeout=WAIT,
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    started = time.monotonic()
    wait_until_blocking(
        lambda: all(dashboard(n.url)["totalEvents"] == total for n in nodes.nodes),
        WAIT,
        message="the nodes' dashboards did not converge on the database's count",
    )
    views = [without_performance(dashboard(n.url)) for n in nodes.nodes]
    assert views[1:] == views[:-1], "every node shows the same numbers"
    assert time.monotonic() - started < WAIT
