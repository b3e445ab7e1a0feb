"""/chat presence across several tabs, connection recovery, and monitoring (python-socketio)."""

from __future__ import annotations

from typing import Any

from tests.support.clients.chat import Client, barrier, connected, create_chat
from tests.support.clients.scenarios import close_all, run

INVALID_TOKEN = "Invalid or expired recovery token"


def test_presence_several_tabs_is_one_user(server: Any) -> None:
    async def scenario() -> None:
        (watcher,) = await connected(server, "watcher")
        tab1 = await Client(server, "dora").connect()
        tab2 = await Client(server, "dora").connect()
        try:
            online = await watcher.next("user:online")
            assert online["userId"] == "dora" and online["status"] == "online"
            assert online["username"] == "Dora"
            await barrier(watcher)
            assert watcher.pending("user:online") == []  # the second tab is not news
            users = (await watcher.ok("presence:online-users"))["users"]
            assert [u["userId"] for u in users].count("dora") == 1

            answer = await tab1.ok("presence:update-status", {"status": "away"})
            assert answer["message"] == "Status updated successfully"
            for who in (watcher, tab1, tab2):
                changed = await who.next("user:status-changed")
                assert changed["userId"] == "dora" and changed["status"] == "away"
                assert changed["previousStatus"] == "online"
            status = (await watcher.ok("presence:user-status", {"userId": "dora"}))["presence"]
            assert status["status"] == "away" and status["socketId"] in (tab1.sid, tab2.sid)
            assert status["socketCount"] == 2
            assert status["ipAddress"] is None  # another user's IP address is not shown
            own = (await tab1.ok("presence:user-status", {"userId": "dora"}))["presence"]
            assert own["ipAddress"] == "127.0.0.1"
            assert status["userAgent"] and status["lastSeen"].endswith("Z")
            await tab2.ok("presence:update-status", {"status": "busy"})
            stats = (await watcher.ok("presence:stats"))["stats"]
            assert stats["busyUsers"] >= 1 and stats["totalUsers"] >= 2
            assert set(stats) == {
                "totalUsers",
                "onlineUsers",
                "awayUsers",
                "busyUsers",
                "offlineUsers",
            }
            bad = await tab1.call("presence:update-status", {"status": "sleeping"})
            assert bad["message"] == "Invalid request data"
            unknown = await watcher.call("presence:user-status", {"userId": "nobody-ever"})
            assert unknown == {"success": False, "message": "User not found"}

            await tab1.close()
            await barrier(watcher)
            assert watcher.pending("user:offline") == []  # one tab is still open
            await tab2.close()
            offline = await watcher.next("user:offline")
            assert offline["userId"] == "dora"
            status = (await watcher.ok("presence:user-status", {"userId": "dora"}))["presence"]
            assert status["status"] == "offline" and status["socketId"] is None
            assert "dora" not in [
                u["userId"] for u in (await watcher.ok("presence:online-users"))["users"]
            ]
            # back online: status starts as online again
            tab3 = await Client(server, "dora").connect()
            assert (await watcher.next("user:online"))["userId"] == "dora"
            status = (await watcher.ok("presence:user-status", {"userId": "dora"}))["presence"]
            assert status["status"] == "online"
            await tab3.close()
        finally:
            await close_all(watcher, tab1, tab2)

    run(scenario)


def test_recovery_queues_messages_in_order_once(server: Any) -> None:
    chat = create_chat(server, "rory", "sven")
    other = create_chat(server, "rory", "sven", name="Second")

    async def scenario() -> None:
        rory, sven = await connected(server, "rory", "sven")
        try:
            for c in (rory, sven):
                await c.ok("join:chat", {"chatId": chat})
                await c.ok("join:chat", {"chatId": other})
            created = await rory.ok("connection:create-session", {})
            token = created["recoveryToken"]
            event = await rory.next("connection:recovery-token")
            assert event["recoveryToken"] == token and event["expiresInSeconds"] == 120
            info = (await rory.ok("connection:session-info"))["sessionInfo"]
            assert info["recoveryToken"] == token and info["userId"] == "rory"
            assert sorted(info["rooms"]) == sorted([chat, other])
            assert info["socketId"] == rory.sid and info["messageQueue"] == []
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
            assert set(stats) >= {
                "activeSessions",
                "recoveryTokens",
                "queuedMessages",
                "averageSessionAge",
            }

            # the token is bound to its user
            thief = await Client(server, "sven").connect()
            refused = await thief.call("connection:recover", {"recoveryToken": token})
            assert refused == {
                "success": False,
                "message": "Recovery token belongs to another user",
            }
            await thief.close()

            back = await Client(server, "rory").connect()
            recovered = await back.ok("connection:recover", {"recoveryToken": token})
            assert recovered["message"] == "Connection recovered successfully"
            session = recovered["session"]
            assert session["socketId"] == back.sid and session["userId"] == "rory"
            assert sorted(session["rooms"]) == sorted([chat, other])
            assert session["recoveryToken"] == token and recovered["queuedMessages"] == 6
            assert (await back.next("connection:recovered"))["session"]["socketId"] == back.sid
            queued = await back.next("connection:queued-messages")
            assert [m["id"] for m in queued["messages"]] == sent and queued["count"] == 6
            # re-joined: new messages arrive live, once; nothing is queued twice
            later = await sven.ok("message:send", {"chatId": other, "content": "welcome back"})
            assert (await back.next("message:new"))["id"] == later["sentMessage"]["id"]
            await barrier(back)
            assert back.pending("message:new") == []
            assert back.pending("connection:queued-messages") == []
            assert back.pending("room:joined") == []
            await back.close()

            # claimed again later by the same user (the token moved to the new socket)
            again = await Client(server, "rory").connect()
            answer = await again.ok("connection:recover", {"recoveryToken": token})
            assert answer["queuedMessages"] == 0
            await again.close()
        finally:
            await close_all(rory, sven)

    run(scenario)


def test_recovery_token_expires_and_garbage_is_refused(server: Any) -> None:
    async def scenario() -> None:
        (first,) = await connected(server, "ursula")
        token = (await first.ok("connection:create-session"))["recoveryToken"]
        await first.close()
        (second,) = await connected(server, "ursula")
        try:
            server.advance(121)
            answer = await second.call("connection:recover", {"recoveryToken": token})
            assert answer == {"success": False, "message": INVALID_TOKEN}
            answer = await second.call("connection:recover", {"recoveryToken": "made-up"})
            assert answer == {"success": False, "message": INVALID_TOKEN}
            answer = await second.call("connection:recover", {})
            assert answer["message"] == "Invalid request data"
        finally:
            await second.close()

    run(scenario)


def test_monitoring_metrics_events_stats_health(server: Any) -> None:
    async def scenario() -> None:
        bad = Client(server, "mallory", tok="garbage")
        try:
            await bad.connect()
        except Exception:
            pass
        (ops,) = await connected(server, "ops", role="admin")
        (eve,) = await connected(server, "eve")
        try:
            metrics = (await ops.ok("monitoring:metrics"))["metrics"]
            assert metrics["activeConnections"] >= 1 and metrics["totalConnections"] >= 1
            assert metrics["failedConnections"] >= 1 and metrics["peakConnections"] >= 1
            assert metrics["connectionsPerMinute"] >= 1 and metrics["lastReset"].endswith("Z")
            assert metrics["averageConnectionDuration"] >= 0

            mine = (await ops.ok("monitoring:events", {"type": "connect", "userId": "ops"}))[
                "events"
            ]
            assert len(mine) == 1 and mine[0]["socketId"] == ops.sid
            assert mine[0]["ipAddress"] == "127.0.0.1" and mine[0]["userAgent"]
            failures = (await ops.ok("monitoring:events", {"type": "auth_failure"}))["events"]
            assert failures[0]["details"]["reason"] == "Authentication failed: invalid token"
            by_ip = (await ops.ok("monitoring:events", {"ip": "127.0.0.1", "limit": 2}))["events"]
            assert len(by_ip) == 2
            assert (await ops.ok("monitoring:events", {"ip": "10.9.9.9"}))["events"] == []
            everything = (await ops.ok("monitoring:events"))["events"]
            assert {"connect", "auth_failure"} <= {e["type"] for e in everything}
            bad_filter = await ops.call("monitoring:events", {"type": "party"})
            assert bad_filter["message"] == "Invalid request data"

            stats = (await ops.ok("monitoring:stats"))["stats"]
            assert stats["metrics"]["totalConnections"] >= 1
            assert stats["topIPs"][0]["ip"] == "127.0.0.1"
            assert stats["topUserAgents"][0]["count"] >= 1
            assert 0 < stats["errorRate"] < 1 and stats["recentEvents"]

            # a user who is not an admin sees only their own IP address
            seen = (await eve.ok("monitoring:events", {"type": "connect"}))["events"]
            ips = {e["userId"]: e["ipAddress"] for e in seen}
            assert ips["eve"] == "127.0.0.1" and ips["ops"] is None
            probed = (await eve.ok("monitoring:events", {"ip": "127.0.0.1"}))["events"]
            assert probed and {e["userId"] for e in probed} == {"eve"}
            eve_stats = (await eve.ok("monitoring:stats"))["stats"]
            assert eve_stats["topIPs"] == []
            assert {e["ipAddress"] for e in eve_stats["recentEvents"] if e["userId"] != "eve"} == {
                None
            }

            health = (await ops.ok("monitoring:health"))["health"]
            assert health["status"] in ("healthy", "warning", "critical")
            assert isinstance(health["issues"], list)
            assert isinstance(health["recommendations"], list)
            assert health["figures"]["slowConsumerDisconnects"] == 0
        finally:
            await close_all(ops, eve, bad)

    run(scenario)
