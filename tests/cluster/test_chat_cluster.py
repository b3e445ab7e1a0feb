"""/chat across three ``switchboard serve`` nodes on one Redis and one PostgreSQL database, behind
a round-robin HAProxy: clients connect to each node's own address and through the balancer, and
the chat contract (the payloads of tests/web/apps/chat) holds as if there were one server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.cluster.helpers import LoadBalancer, ProductCluster, RedisServer
from tests.support import postgres
from tests.support.clients.chat import Client, barrier, create_chat, rest, token
from tests.support.clients.scenarios import close_all, run
from tests.support.tokens import CHAT_SECRET

NOT_FOUND = "Chat not found or access denied"
MESSAGE_RATE = "Message rate limit exceeded. Please slow down."
TYPING_RATE = "Typing rate limit exceeded. Please slow down."
FOREIGN = "Recovery token belongs to another user"
BLOCKED = "Too many connection attempts. Please try again later."
LEASE_SECONDS = 1.5  # the product cluster's lease (tests/cluster/helpers.py)
CLEANUP_BOUND_SECONDS = LEASE_SECONDS + LEASE_SECONDS / 3  # documented in the README
NO_CONNECT_LIMIT = ("--chat-connect-attempts-per-ip", "0")


@dataclass(frozen=True)
class Address:
    """Something with a ``url`` the chat client connects to (the balancer)."""

    url: str


def advance(cluster: ProductCluster, seconds: float) -> None:
    for node in cluster.nodes:
        if node.alive:
            node.advance(seconds)


@pytest.fixture(scope="module")
def cluster(
    redis: RedisServer,
    balancer: Callable[[list[int]], LoadBalancer],
    module_server_factory: Callable[..., Any],
) -> ProductCluster:
    database = postgres.shared_server().create_database()
    return ProductCluster(
        redis, database, balancer, module_server_factory, *NO_CONNECT_LIMIT, secret=CHAT_SECRET
    )


def test_rooms_messages_receipts_across_nodes(cluster: ProductCluster) -> None:
    n0, n1, n2 = cluster.nodes
    chat = create_chat(n0, "alice", "bob", name="Alpha")

    async def scenario() -> None:
        alice = await Client(n0, "alice").connect()
        bob = await Client(n1, "bob").connect()
        carol = await Client(n2, "carol").connect()
        admin = await Client(Address(cluster.url), "root", role="admin").connect()
        try:
            joined = await alice.ok("join:chat", {"chatId": chat})
            assert joined["message"] == "Joined chat successfully"
            info = joined["roomInfo"]
            assert info["chatId"] == chat and info["participantCount"] == 2
            assert info["isActive"] is True
            assert (await alice.next("room:joined"))["chatId"] == chat
            update = await alice.next("room:online-update")
            assert [u["userId"] for u in update["onlineUsers"]] == ["alice"]

            await bob.ok("join:chat", {"chatId": chat})
            seen = await alice.next("user:joined")
            assert seen["userId"] == "bob" and seen["username"] == "Bob" and seen["chatId"] == chat
            update = await alice.next("room:online-update")
            assert sorted(u["userId"] for u in update["onlineUsers"]) == ["alice", "bob"]
            assert (await bob.next("room:online-update"))["onlineCount"] == 2
            assert bob.pending("user:joined") == []
            for event in ["join:chat", "leave:chat", "room:info", "room:online"]:
                answer = await carol.call(event, {"chatId": chat})
                assert answer == {"success": False, "message": NOT_FOUND}, event
            assert (await admin.ok("join:chat", {"chatId": chat}))["roomInfo"]["chatId"] == chat
            # every node answers with the cluster's room
            for who in (alice, bob, admin):
                info = (await who.ok("room:info", {"chatId": chat}))["roomInfo"]
                assert info["name"] == "Alpha" and info["onlineCount"] == 3
                online = (await who.ok("room:online", {"chatId": chat}))["onlineUsers"]
                assert sorted(u["userId"] for u in online) == ["alice", "bob", "root"]
                assert all(u["status"] == "online" and u["connectedAt"] for u in online)
            rooms = (await bob.ok("room:list"))["rooms"]
            assert [(r["chatId"], r["name"], r["participantCount"]) for r in rooms] == [
                (chat, "Alpha", 2)
            ]
            # monitoring is per node, and says which
            health = (await bob.ok("monitoring:health"))["health"]
            assert health["figures"]["nodeId"] == "node-1"

            sent = await alice.ok("message:send", {"chatId": chat, "content": "Hello, world!"})
            message = sent["sentMessage"]
            assert message["user"] == {"id": "alice", "username": "Alice"}
            for who in (alice, bob, admin):
                assert await who.next("message:new") == message
            assert (await alice.next("message:sent"))["messageId"] == message["id"]
            mid = message["id"]
            answer = await bob.ok("message:delivered", {"messageId": mid, "chatId": chat})
            assert answer["message"] == "Delivery confirmed"
            for who in (alice, bob, admin):
                event = await who.next("message:delivered")
                assert event["messageId"] == mid and event["userId"] == "bob"
            await bob.ok("message:read", {"messageId": mid, "chatId": chat})
            await bob.ok("message:read", {"messageId": mid, "chatId": chat})  # not again
            status = (await alice.ok("message:delivery-status", {"messageId": mid}))["status"]
            assert status["deliveredTo"] == ["bob"] and status["readBy"] == ["bob"]
            for who in (alice, bob, admin):
                assert (await who.next("message:read"))["userId"] == "bob"
                await barrier(who)
                assert who.pending("message:read") == [] and who.pending("message:new") == []

            left = await bob.ok("leave:chat", {"chatId": chat})
            assert left["message"] == "Left chat successfully"
            gone = await alice.next_where("user:left", lambda e: e["userId"] == "bob")
            assert gone["chatId"] == chat
            update = await alice.next_where("room:online-update", lambda e: e["onlineCount"] == 2)
            assert sorted(u["userId"] for u in update["onlineUsers"]) == ["alice", "root"]
            await alice.ok("message:send", {"chatId": chat, "content": "after bob left"})
            await admin.next("message:new")
            await barrier(bob)
            assert bob.pending("message:new") == []
        finally:
            await close_all(alice, bob, carol, admin)

    run(scenario)
    with rest(n2, "bob") as http:
        page = http.get(f"/api/chats/{chat}/messages").json()
    assert [m["content"] for m in page["messages"]] == ["after bob left", "Hello, world!"]


def test_typing_and_two_tabs_on_two_nodes(cluster: ProductCluster) -> None:
    n0, n1, n2 = cluster.nodes
    chat = create_chat(n0, "tara", "uma")

    async def scenario() -> None:
        tara = await Client(n0, "tara").connect()
        uma1 = await Client(n1, "uma").connect()
        uma2 = await Client(n2, "uma").connect()
        try:
            await tara.ok("join:chat", {"chatId": chat})
            await uma1.ok("join:chat", {"chatId": chat})
            assert (await tara.next("user:joined"))["userId"] == "uma"
            await uma2.ok("join:chat", {"chatId": chat})  # the same user: not news
            await tara.ok("message:typing", {"chatId": chat, "isTyping": True})
            for tab in (uma1, uma2):
                event = await tab.next("user:typing")
                assert event["userId"] == "tara" and event["isTyping"] is True
            typing = (await uma2.ok("message:typing-users", {"chatId": chat}))["typingUsers"]
            assert [(t["userId"], t["chatId"]) for t in typing] == [("tara", chat)]
            # refreshed on another node: still one typist, no second start
            await tara.ok("message:typing", {"chatId": chat, "isTyping": True})
            advance(cluster, 6)
            for tab in (uma1, uma2):
                stopped = await tab.next("user:typing")
                assert stopped["userId"] == "tara" and stopped["isTyping"] is False
            assert (await uma1.ok("message:typing-users", {"chatId": chat}))["typingUsers"] == []
            assert (await tara.next("user:typing"))["isTyping"] is False  # her own, stopped
            await barrier(tara)
            assert tara.pending("user:typing") == []  # one start, one stop
            await uma1.ok("message:typing", {"chatId": chat, "isTyping": True})
            assert (await tara.next("user:typing"))["isTyping"] is True
            await uma2.ok("message:send", {"chatId": chat, "content": "done typing"})
            assert (await tara.next("user:typing"))["isTyping"] is False
            assert (await tara.next("message:new"))["content"] == "done typing"

            await uma1.ok("leave:chat", {"chatId": chat})
            await barrier(tara)
            assert tara.pending("user:joined") == [] and tara.pending("user:left") == []
            await uma2.close()  # the user's last socket in the room, on another node
            left = await tara.next("user:left")
            assert left["userId"] == "uma" and left["chatId"] == chat
            assert (await tara.ok("room:info", {"chatId": chat}))["roomInfo"]["onlineCount"] == 1
            await barrier(tara)
            assert tara.pending("user:left") == []
        finally:
            await close_all(tara, uma1, uma2)

    run(scenario)


def test_presence_several_tabs_on_several_nodes(cluster: ProductCluster) -> None:
    n0, n1, n2 = cluster.nodes

    async def scenario() -> None:
        watchers = [await Client(n, f"watcher{i}").connect() for i, n in enumerate((n0, n1))]
        tab1 = await Client(n1, "dora").connect()
        tab2 = await Client(n2, "dora").connect()
        try:
            for watcher in watchers:
                online = await watcher.next_where("user:online", lambda e: e["userId"] == "dora")
                assert online["status"] == "online" and online["username"] == "Dora"
                await barrier(watcher)
                assert [e for e in watcher.pending("user:online") if e["userId"] == "dora"] == []
                users = (await watcher.ok("presence:online-users"))["users"]
                assert [u["userId"] for u in users].count("dora") == 1
            await tab1.ok("presence:update-status", {"status": "away"})
            for who in (*watchers, tab1, tab2):
                changed = await who.next_where("user:status-changed", lambda e: True)
                assert changed["userId"] == "dora" and changed["status"] == "away"
                assert changed["previousStatus"] == "online"
            status = (await watchers[0].ok("presence:user-status", {"userId": "dora"}))["presence"]
            assert status["status"] == "away" and status["socketCount"] == 2
            assert status["socketId"] in (tab1.sid, tab2.sid) and status["ipAddress"] is None
            own = (await tab2.ok("presence:user-status", {"userId": "dora"}))["presence"]
            assert own["ipAddress"] == "127.0.0.1"
            stats = (await watchers[1].ok("presence:stats"))["stats"]
            assert stats["awayUsers"] >= 1 and stats["totalUsers"] >= 3

            await tab1.close()
            for watcher in watchers:
                await barrier(watcher)
                assert watcher.pending("user:offline") == []  # a tab is still open
            await tab2.close()
            for watcher in watchers:
                offline = await watcher.next("user:offline")
                assert offline["userId"] == "dora"
                await barrier(watcher)
                assert watcher.pending("user:offline") == []  # once, cluster-wide
            status = (await watchers[1].ok("presence:user-status", {"userId": "dora"}))["presence"]
            assert status["status"] == "offline" and status["socketId"] is None
            back = await Client(n0, "dora").connect()
            for watcher in watchers:
                assert (await watcher.next("user:online"))["userId"] == "dora"
            status = (await watchers[0].ok("presence:user-status", {"userId": "dora"}))["presence"]
            assert status["status"] == "online"
            await back.close()
        finally:
            await close_all(*watchers, tab1, tab2)

    run(scenario)


def test_concurrent_senders_on_every_node_see_one_order(cluster: ProductCluster) -> None:
    """Three senders, one per node, all at once: every member on every node (and one through
    the balancer) sees the same N messages, each once, in the chat's order (1..N)."""
    users = ["s0", "s1", "s2", "w0", "w1", "w2", "wlb"]
    chat = create_chat(cluster.nodes[0], *users)
    per_sender = 60

    async def scenario() -> None:
        senders = [await Client(n, f"s{i}").connect() for i, n in enumerate(cluster.nodes)]
        watchers = [await Client(n, f"w{i}").connect() for i, n in enumerate(cluster.nodes)]
        watchers.append(await Client(Address(cluster.url), "wlb").connect())
        members = senders + watchers
        try:
            for member in members:
                await member.ok("join:chat", {"chatId": chat})

            async def send_all(sender: Client, index: int) -> list[str]:
                ids = []
                for k in range(per_sender):
                    answer = await sender.ok(
                        "message:send", {"chatId": chat, "content": f"{index}:{k}"}
                    )
                    ids.append(answer["sentMessage"]["id"])
                return ids

            await asyncio.gather(*(send_all(s, i) for i, s in enumerate(senders)))
            total = per_sender * len(senders)
            seen = []
            for member in members:
                got = [await member.next("message:new", timeout=20) for _ in range(total)]
                await barrier(member)
                assert member.pending("message:new") == []  # each once
                seen.append([m["id"] for m in got])
                # each sender's messages in the order it sent them
                for i in range(len(senders)):
                    mine = [m["content"] for m in got if m["content"].startswith(f"{i}:")]
                    assert mine == [f"{i}:{k}" for k in range(per_sender)]
            assert all(ids == seen[0] for ids in seen)  # one order everywhere
            assert len(set(seen[0])) == total
        finally:
            await close_all(*members)

    run(scenario, timeout=120)
    order = cluster.nodes[1].query(
        "SELECT id, chat_seq FROM chat_messages WHERE chat_id = ? ORDER BY chat_seq", chat
    )
    assert [seq for _, seq in order] == list(range(1, per_sender * 3 + 1))


def test_rate_limits_count_across_nodes(cluster: ProductCluster) -> None:
    """One user's sends spread over the three nodes: the limit is the user's, not a node's."""
    chat = create_chat(cluster.nodes[0], "rex")

    async def scenario() -> None:
        tabs = [await Client(n, "rex").connect() for n in cluster.nodes]
        try:
            answers = await asyncio.gather(
                *(
                    tabs[i % 3].call("message:send", {"chatId": chat, "content": f"m{i}"})
                    for i in range(101)
                )
            )
            assert sum(a["success"] for a in answers) == 100
            refused = [a for a in answers if not a["success"]]
            assert refused == [{"success": False, "message": MESSAGE_RATE}]
            for i in range(10):
                await tabs[i % 3].ok("message:typing", {"chatId": chat, "isTyping": True})
            over = await tabs[1].call("message:typing", {"chatId": chat, "isTyping": True})
            assert over == {"success": False, "message": TYPING_RATE}
            advance(cluster, 61)
            for tab in tabs:
                await tab.ok("message:send", {"chatId": chat, "content": "later"})
        finally:
            await close_all(*tabs)

    run(scenario, timeout=60)


async def refusal(server: Any, user: str, tok: str) -> Any:
    client = Client(server, user, tok=tok)
    try:
        await client.connect()
    except Exception:
        pass
    try:
        return await asyncio.wait_for(client.connect_errors.get(), 5)
    finally:
        await client.close()


def test_connect_block_holds_across_nodes(
    redis: RedisServer,
    balancer: Callable[[list[int]], LoadBalancer],
    database_url: str,
    server_factory: Callable[..., Any],
) -> None:
    own = ProductCluster(
        redis, database_url, balancer, server_factory,
        "--redis-key-prefix", "block-test", secret=CHAT_SECRET,
    )  # fmt: skip

    async def scenario() -> None:
        for i in range(5):  # the failed attempts, spread over the nodes
            answer = await refusal(own.nodes[i % 3], "eve", "forged")
            assert answer == {"message": "Authentication failed: invalid token"}
        for node in own.nodes:  # blocked on every node, valid token or not
            assert await refusal(node, "eve", token("eve")) == {"message": BLOCKED}
        advance(own, 901)
        ok = await Client(own.nodes[2], "eve").connect()
        await ok.close()

    run(scenario)


def test_recovery_token_used_on_another_node(cluster: ProductCluster) -> None:
    n0, n1, n2 = cluster.nodes
    chat = create_chat(n0, "rory", "sven")
    other = create_chat(n0, "rory", "sven", name="Second")

    async def scenario() -> None:
        rory = await Client(n0, "rory").connect()
        sven = await Client(n2, "sven").connect()
        try:
            for c in (rory, sven):
                await c.ok("join:chat", {"chatId": chat})
                await c.ok("join:chat", {"chatId": other})
            recovery = (await rory.ok("connection:create-session", {}))["recoveryToken"]
            await sven.ok("message:send", {"chatId": chat, "content": "seen live"})
            await rory.next("message:new")
            await rory.close()
            await sven.next_where("user:left", lambda e: e["userId"] == "rory")
            sent = []
            for i in range(3):
                for chat_id in (chat, other):
                    answer = await sven.ok(
                        "message:send", {"chatId": chat_id, "content": f"while away {i}"}
                    )
                    sent.append(answer["sentMessage"]["id"])
            stats = (await sven.ok("connection:stats"))["stats"]
            assert stats["queuedMessages"] >= 6 and stats["recoveryTokens"] >= 1
            thief = await Client(n1, "sven").connect()
            refused = await thief.call("connection:recover", {"recoveryToken": recovery})
            assert refused == {"success": False, "message": FOREIGN}
            await thief.close()

            back = await Client(n1, "rory").connect()
            recovered = await back.ok("connection:recover", {"recoveryToken": recovery})
            assert recovered["message"] == "Connection recovered successfully"
            assert recovered["queuedMessages"] == 6
            session = recovered["session"]
            assert session["socketId"] == back.sid and sorted(session["rooms"]) == sorted(
                [chat, other]
            )
            queued = await back.next("connection:queued-messages")
            assert [m["id"] for m in queued["messages"]] == sent and queued["count"] == 6
            later = await sven.ok("message:send", {"chatId": other, "content": "welcome back"})
            assert (await back.next("message:new"))["id"] == later["sentMessage"]["id"]
            await barrier(back)
            assert back.pending("message:new") == []
            assert back.pending("connection:queued-messages") == []
            await back.close()
            again = await Client(n2, "rory").connect()
            answer = await again.ok("connection:recover", {"recoveryToken": recovery})
            assert answer["queuedMessages"] == 0
            await again.close()
            await sven.next_where("user:left", lambda e: e["userId"] == "rory")
            advance(cluster, 121)  # past the TTL after the disconnect, on every node
            last = await Client(n0, "rory").connect()
            expired = await last.call("connection:recover", {"recoveryToken": recovery})
            assert expired == {"success": False, "message": "Invalid or expired recovery token"}
            await last.close()
        finally:
            await close_all(rory, sven)

    run(scenario)


async def reconnect(address: Address, user: str, attempts: int = 10) -> Client:
    """Connect through the balancer, which may still hand a first try to the dead node."""
    for _ in range(attempts - 1):
        try:
            return await Client(address, user).connect()
        except Exception:
            await asyncio.sleep(0.2)
    return await Client(address, user).connect()


def test_a_node_killed_under_chat_load(
    redis: RedisServer,
    balancer: Callable[[list[int]], LoadBalancer],
    database_url: str,
    server_factory: Callable[..., Any],
) -> None:
    """SIGKILL of a node while every node's users send: every acknowledged message is stored
    and reaches the survivors' members; the dead node's users are offline, and out of the
    room, on the survivors within the documented bound."""
    own = ProductCluster(
        redis, database_url, balancer, server_factory, *NO_CONNECT_LIMIT,
        "--redis-key-prefix", "kill-test", secret=CHAT_SECRET,
    )  # fmt: skip
    users = ["k0", "k1", "k2", "v0", "v2"]
    chat = create_chat(own.nodes[0], *users)
    acked: list[str] = []

    async def scenario() -> None:
        senders = [await Client(n, f"k{i}").connect() for i, n in enumerate(own.nodes)]
        watchers = [await Client(own.nodes[i], f"v{i}").connect() for i in (0, 2)]
        try:
            for member in senders + watchers:
                await member.ok("join:chat", {"chatId": chat})
            doomed = (await senders[1].ok("connection:create-session"))["recoveryToken"]
            stop = asyncio.Event()

            async def keep_sending(sender: Client, index: int) -> None:
                k = 0
                while not stop.is_set():
                    try:
                        answer = await sender.call(
                            "message:send", {"chatId": chat, "content": f"{index}:{k}"}
                        )
                    except Exception:
                        return  # its node died: unanswered, so not acknowledged
                    if answer.get("success"):
                        acked.append(answer["sentMessage"]["id"])
                    k += 1

            tasks = [asyncio.create_task(keep_sending(s, i)) for i, s in enumerate(senders)]
            await asyncio.sleep(1.0)
            own.nodes[1].kill()
            killed_at = time.monotonic()
            for watcher in watchers:
                offline = await watcher.next_where(
                    "user:offline", lambda e: e["userId"] == "k1", timeout=10
                )
                assert offline["username"] == "K1"
                left = await watcher.next_where(
                    "user:left", lambda e: e["userId"] == "k1", timeout=10
                )
                assert left["chatId"] == chat
            cleaned = time.monotonic() - killed_at
            assert cleaned < CLEANUP_BOUND_SECONDS + 1.0, cleaned
            await asyncio.sleep(0.5)
            stop.set()
            await asyncio.gather(*tasks)
            for watcher in watchers:
                online = (await watcher.ok("room:online", {"chatId": chat}))["onlineUsers"]
                assert sorted(u["userId"] for u in online) == ["k0", "k2", "v0", "v2"]
                users_now = (await watcher.ok("presence:online-users"))["users"]
                assert "k1" not in [u["userId"] for u in users_now]
            # every acknowledged message reached the survivors' members, each once, in order
            stored = own.nodes[0].query(
                "SELECT id FROM chat_messages WHERE chat_id = ? ORDER BY chat_seq", chat
            )
            stored_ids = [mid for (mid,) in stored]
            assert set(acked) <= set(stored_ids)
            for watcher in watchers:
                got = [m["id"] for m in watcher.pending("message:new")]
                while len(got) < len(stored_ids):
                    got.append((await watcher.next("message:new", timeout=10))["id"])
                assert got == stored_ids
            # the dead node's user comes back through the balancer and recovers its chat
            back = await reconnect(Address(own.url), "k1")
            recovered = await back.ok("connection:recover", {"recoveryToken": doomed})
            assert recovered["session"]["rooms"] == [chat]
            queued = await back.next("connection:queued-messages")
            assert [m["id"] for m in queued["messages"]] == stored_ids  # all since the token
            await back.close()
        finally:
            await close_all(*senders, *watchers)

    run(scenario, timeout=90)
    assert len(acked) > 30
    with httpx.Client(base_url=own.url, timeout=10) as http:
        assert http.get("/health").status_code in (200, 503)
