"""/chat end to end with python-socketio clients: connecting, rooms, messages, receipts, typing,
history over REST, and the error answers (one shared server; each test its own users/chats)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.support.clients.chat import NS, Client, barrier, connected, create_chat, rest, token
from tests.support.clients.scenarios import close_all, run

NOT_FOUND = "Chat not found or access denied"
INVALID = "Invalid request data"


def test_connect_needs_a_valid_token(server: Any) -> None:
    async def scenario() -> None:
        for tok, expected in [
            ("", "Authentication failed: no token provided"),
            ("not-a-jwt", "Authentication failed: invalid token"),
            (token("zed", ttl=-10), "Authentication failed: token expired"),
        ]:
            client = Client(server, "zed", tok=tok)
            try:
                await client.connect()
            except Exception:
                pass
            error = await asyncio.wait_for(client.connect_errors.get(), 5)
            assert error == {"message": expected}
            assert not client.sio.connected
            await client.close()

    run(scenario)


def test_rest_chats_need_a_token_and_validate(server: Any) -> None:
    anonymous = httpx.get(f"{server.url}/api/chats")
    assert anonymous.status_code == 401
    assert anonymous.json() == {"success": False, "message": "User not authenticated"}
    expired = httpx.get(
        f"{server.url}/api/chats", headers={"Authorization": f"Bearer {token('rita', ttl=-5)}"}
    )
    assert expired.status_code == 401
    with rest(server, "rita") as http:
        bad = http.post("/api/chats", json={"name": 5})
        assert bad.status_code == 400 and bad.json()["message"] == INVALID
        made = http.post("/api/chats", json={"name": "Team", "participants": ["sam"]})
        assert made.status_code == 201
        chat = made.json()["chat"]
        assert chat["participants"] == ["rita", "sam"] and chat["createdBy"] == "rita"
        listed = http.get("/api/chats").json()["chats"]
        assert [c["chatId"] for c in listed] == [chat["chatId"]]
    with rest(server, "outsider") as http:
        assert http.get("/api/chats").json()["chats"] == []
        denied = http.get(f"/api/chats/{chat['chatId']}/messages")
        assert denied.status_code == 404 and denied.json()["message"] == NOT_FOUND


def test_join_leave_info_list_online(server: Any) -> None:
    chat = create_chat(server, "alice", "bob", name="Alpha")

    async def scenario() -> None:
        alice, bob, carol = await connected(server, "alice", "bob", "carol")
        admin = await Client(server, "root", role="admin").connect()
        try:
            joined = await alice.ok("join:chat", {"chatId": chat})
            assert joined["message"] == "Joined chat successfully"
            info = joined["roomInfo"]
            assert info["chatId"] == chat and info["participantCount"] == 2
            assert info["isActive"] is True and info["lastActivity"].endswith("Z")
            assert (await alice.next("room:joined"))["chatId"] == chat
            update = await alice.next("room:online-update")
            assert [u["userId"] for u in update["onlineUsers"]] == ["alice"]

            await bob.ok("join:chat", {"chatId": chat})
            seen = await alice.next("user:joined")
            assert seen["userId"] == "bob" and seen["username"] == "Bob" and seen["chatId"] == chat
            update = await alice.next("room:online-update")
            assert sorted(u["userId"] for u in update["onlineUsers"]) == ["alice", "bob"]
            assert (await bob.next("room:online-update"))["onlineCount"] == 2
            assert bob.pending("user:joined") == []  # not told about itself

            # not a participant: the same answer as a chat that does not exist
            for who, chat_id in [(carol, chat), (alice, "no-such-chat")]:
                for event in ["join:chat", "leave:chat", "room:info", "room:online"]:
                    answer = await who.call(event, {"chatId": chat_id})
                    assert answer == {"success": False, "message": NOT_FOUND}, event
            # an admin may join any chat
            assert (await admin.ok("join:chat", {"chatId": chat}))["roomInfo"]["chatId"] == chat

            info = (await bob.ok("room:info", {"chatId": chat}))["roomInfo"]
            assert info["name"] == "Alpha" and info["description"] == "about"
            assert info["onlineCount"] == 3 and info["participantCount"] == 2
            online = (await bob.ok("room:online", {"chatId": chat}))["onlineUsers"]
            assert sorted(u["userId"] for u in online) == ["alice", "bob", "root"]
            assert all(u["status"] == "online" and u["connectedAt"] for u in online)
            rooms = (await bob.ok("room:list"))["rooms"]
            assert [(r["chatId"], r["name"], r["participantCount"]) for r in rooms] == [
                (chat, "Alpha", 2)
            ]
            assert (await carol.ok("room:list", {}))["rooms"] == []

            left = await bob.ok("leave:chat", {"chatId": chat})
            assert left["message"] == "Left chat successfully"
            assert (await bob.next("room:left"))["chatId"] == chat
            gone = await alice.next_where("user:left", lambda e: e["userId"] == "bob")
            assert gone["chatId"] == chat
            update = await alice.next_where("room:online-update", lambda e: e["onlineCount"] == 2)
            assert sorted(u["userId"] for u in update["onlineUsers"]) == ["alice", "root"]
            # bob is out of the room: no more broadcasts for him
            await alice.ok("message:send", {"chatId": chat, "content": "after bob left"})
            await alice.next("message:new")
            await barrier(bob)
            assert bob.pending("message:new") == []
        finally:
            await close_all(alice, bob, carol, admin)

    run(scenario)


def test_messages_receipts_stats_and_history(server: Any) -> None:
    chat = create_chat(server, "mia", "ned")

    async def scenario() -> None:
        mia, ned = await connected(server, "mia", "ned")
        try:
            await mia.ok("join:chat", {"chatId": chat})
            await ned.ok("join:chat", {"chatId": chat})
            sent = await mia.ok(
                "message:send", {"chatId": chat, "content": "Hello, world!", "type": "text"}
            )
            assert sent["message"] == "Message sent successfully"
            message = sent["sentMessage"]
            assert message["content"] == "Hello, world!" and message["type"] == "text"
            assert message["userId"] == "mia" and message["chatId"] == chat
            assert message["user"] == {"id": "mia", "username": "Mia"}
            assert await ned.next("message:new") == message
            assert await mia.next("message:new") == message
            confirmation = await mia.next("message:sent")
            assert confirmation["messageId"] == message["id"]
            assert confirmation["message"] == message
            assert ned.pending("message:sent") == []

            for kind in ["image", "file", "system"]:
                await mia.ok("message:send", {"chatId": chat, "content": f"a {kind}", "type": kind})

            mid = message["id"]
            answer = await ned.ok("message:delivered", {"messageId": mid, "chatId": chat})
            assert answer["message"] == "Delivery confirmed"
            for who in (mia, ned):
                event = await who.next("message:delivered")
                assert event["messageId"] == mid and event["userId"] == "ned"
                assert event["chatId"] == chat and event["deliveredAt"].endswith("Z")
            answer = await ned.ok("message:read", {"messageId": mid, "chatId": chat})
            assert answer["message"] == "Read confirmation recorded"
            event = await mia.next("message:read")
            assert event["messageId"] == mid and event["userId"] == "ned"
            # repeating a confirmation is fine and not broadcast again
            await ned.ok("message:read", {"messageId": mid, "chatId": chat})
            status = (await mia.ok("message:delivery-status", {"messageId": mid}))["status"]
            assert status["messageId"] == mid and status["deliveredTo"] == ["ned"]
            assert status["readBy"] == ["ned"] and status["sentAt"] == message["createdAt"]
            assert status["lastUpdate"] >= status["sentAt"]
            await barrier(mia)
            assert mia.pending("message:read") == []

            stats = (await mia.ok("message:stats"))["stats"]
            assert stats["trackedMessages"] >= 4 and stats["totalDelivered"] >= 1
            assert stats["totalRead"] >= 1 and "activeTypingUsers" in stats

            # errors: to the sender only
            for bad in [
                {"content": "no chat"},
                {"chatId": chat},
                {"chatId": chat, "content": 5},
                {"chatId": chat, "content": "x", "type": "video"},
                {"chatId": chat, "content": "   "},
                {"chatId": chat, "content": "x" * 4001},
                "just a string",
                None,
            ]:
                answer = await mia.call("message:send", bad)
                assert answer["success"] is False and answer["message"] == INVALID, bad
                assert answer["error"]
            assert await mia.ok("message:send", {"chatId": chat, "content": "y" * 4000})
            unknown = await ned.call("message:read", {"messageId": "nope", "chatId": chat})
            assert unknown == {"success": False, "message": "Message not found"}
            missing = await ned.call("message:delivery-status", {"messageId": "nope"})
            assert missing == {"success": False, "message": "Message not found or access denied"}
            outsider = await Client(server, "ozzy").connect()
            try:
                denied = await outsider.call("message:delivery-status", {"messageId": mid})
                assert denied["success"] is False
                answer = await outsider.call("message:send", {"chatId": chat, "content": "hi"})
                assert answer == {"success": False, "message": NOT_FOUND}
            finally:
                await outsider.close()
            await barrier(ned)
            assert [m["content"] for m in ned.pending("message:new")] == [
                "a image",
                "a file",
                "a system",
                "y" * 4000,
            ]
        finally:
            await close_all(mia, ned)

    run(scenario)

    # history over REST: newest first, paginated with before/limit
    with rest(server, "ned") as http:
        first = http.get(f"/api/chats/{chat}/messages", params={"limit": 2}).json()
        assert [m["content"] for m in first["messages"]] == ["y" * 4000, "a system"]
        assert first["hasMore"] is True
        second = http.get(
            f"/api/chats/{chat}/messages", params={"limit": 2, "before": first["nextBefore"]}
        ).json()
        assert [m["content"] for m in second["messages"]] == ["a file", "a image"]
        third = http.get(
            f"/api/chats/{chat}/messages", params={"limit": 2, "before": second["nextBefore"]}
        ).json()
        assert [m["content"] for m in third["messages"]] == ["Hello, world!"]
        assert third["hasMore"] is False and third["nextBefore"] is None
        assert http.get(f"/api/chats/{chat}/messages", params={"limit": 0}).status_code == 400


def test_typing_broadcast_expiry_and_clearing(server: Any) -> None:
    chat = create_chat(server, "tara", "uma")

    async def scenario() -> None:
        tara, uma = await connected(server, "tara", "uma")
        try:
            for c in (tara, uma):
                await c.ok("join:chat", {"chatId": chat})
            answer = await tara.ok("message:typing", {"chatId": chat, "isTyping": True})
            assert answer["message"] == "Typing status updated"
            event = await uma.next("user:typing")
            assert event["userId"] == "tara" and event["isTyping"] is True
            assert event["chatId"] == chat and event["username"] == "Tara"
            typing = (await uma.ok("message:typing-users", {"chatId": chat}))["typingUsers"]
            assert [(t["userId"], t["chatId"]) for t in typing] == [("tara", chat)]
            assert (await uma.ok("message:stats"))["stats"]["activeTypingUsers"] >= 1

            # expires on its own (service clock)
            server.advance(6)
            stopped = await uma.next("user:typing")
            assert stopped["userId"] == "tara" and stopped["isTyping"] is False
            assert (await uma.ok("message:typing-users", {"chatId": chat}))["typingUsers"] == []

            # cleared when the user sends
            await tara.ok("message:typing", {"chatId": chat, "isTyping": True})
            assert (await uma.next("user:typing"))["isTyping"] is True
            await tara.ok("message:send", {"chatId": chat, "content": "done typing"})
            assert (await uma.next("user:typing"))["isTyping"] is False
            # cleared when the user stops, and when the user leaves
            await barrier(tara)  # the stops went to her own socket too
            assert [e["isTyping"] for e in tara.pending("user:typing")] == [False, False]
            await uma.ok("message:typing", {"chatId": chat, "isTyping": True})
            assert (await tara.next("user:typing"))["userId"] == "uma"
            await uma.ok("message:typing", {"chatId": chat, "isTyping": False})
            assert (await tara.next("user:typing"))["isTyping"] is False
            await uma.ok("message:typing", {"chatId": chat, "isTyping": True})
            assert (await tara.next("user:typing"))["isTyping"] is True
            await uma.ok("leave:chat", {"chatId": chat})
            stopped = await tara.next("user:typing")
            assert stopped["userId"] == "uma" and stopped["isTyping"] is False
            assert (await tara.ok("message:typing-users", {"chatId": chat}))["typingUsers"] == []
            # a typing event without an ack is fine too (the seed's client does that)
            await tara.emit("message:typing", {"chatId": chat, "isTyping": True})
            await uma.ok("join:chat", {"chatId": chat})
            typing = (await uma.ok("message:typing-users", {"chatId": chat}))["typingUsers"]
            assert [t["userId"] for t in typing] == ["tara"]
            bad = await tara.call("message:typing", {"chatId": chat, "isTyping": "yes"})
            assert bad["message"] == INVALID
        finally:
            await close_all(tara, uma)

    run(scenario)


def test_message_and_typing_rate_limits(server: Any) -> None:
    chat = create_chat(server, "rex")

    async def scenario() -> None:
        (rex,) = await connected(server, "rex")
        try:
            answers = await asyncio.gather(
                *(
                    rex.call("message:send", {"chatId": chat, "content": f"m{i}"})
                    for i in range(101)
                )
            )
            assert sum(a["success"] for a in answers) == 100
            refused = [a for a in answers if not a["success"]]
            assert refused == [
                {"success": False, "message": "Message rate limit exceeded. Please slow down."}
            ]
            for _ in range(10):
                await rex.ok("message:typing", {"chatId": chat, "isTyping": True})
            over = await rex.call("message:typing", {"chatId": chat, "isTyping": True})
            assert over == {
                "success": False,
                "message": "Typing rate limit exceeded. Please slow down.",
            }
            # per user: another user is not affected
            (sue,) = await connected(server, "sue")
            other = create_chat(server, "sue")
            await sue.ok("message:send", {"chatId": other, "content": "fine"})
            await sue.close()
            # the window slides on the service clock
            server.advance(61)
            await rex.ok("message:send", {"chatId": chat, "content": "later"})
            await rex.ok("message:typing", {"chatId": chat, "isTyping": False})
            events = (await rex.ok("monitoring:events", {"type": "rate_limit", "userId": "rex"}))[
                "events"
            ]
            assert {e["details"]["limit"] for e in events} == {"message", "typing"}
        finally:
            await rex.close()

    run(scenario, timeout=60)


def test_expired_token_ends_the_session(server: Any) -> None:
    """The core ends a session when its token expires (service clock); the others see the user
    go offline. (An event racing with that end is answered "User not authenticated"; REST
    answers 401 with that message, see test_rest_chats_need_a_token_and_validate.)"""

    async def scenario() -> None:
        (watcher,) = await connected(server, "sentry")
        short = await Client(server, "brief", tok=token("brief", ttl=100)).connect()
        try:
            await short.ok("room:list")
            assert await watcher.next_where("user:online", lambda e: e["userId"] == "brief")
            server.advance(200)
            offline = await watcher.next_where("user:offline", lambda e: e["userId"] == "brief")
            assert offline["username"] == "Brief"
            assert NS not in short.sio.namespaces
        finally:
            await close_all(short, watcher)

    run(scenario)


def test_two_tabs_in_a_room_count_as_one_user(server: Any) -> None:
    chat = create_chat(server, "pia", "quinn")

    async def scenario() -> None:
        (quinn,) = await connected(server, "quinn")
        tab1 = await Client(server, "pia").connect()
        tab2 = await Client(server, "pia").connect()
        try:
            await quinn.ok("join:chat", {"chatId": chat})
            await tab1.ok("join:chat", {"chatId": chat})
            assert (await quinn.next("user:joined"))["userId"] == "pia"
            await tab2.ok("join:chat", {"chatId": chat})
            assert (await tab2.next("room:joined"))["chatId"] == chat
            online = (await quinn.ok("room:online", {"chatId": chat}))["onlineUsers"]
            assert sorted(u["userId"] for u in online) == ["pia", "quinn"]
            sent = await quinn.ok("message:send", {"chatId": chat, "content": "both tabs"})
            for tab in (tab1, tab2):
                assert (await tab.next("message:new"))["id"] == sent["sentMessage"]["id"]
            await tab1.ok("leave:chat", {"chatId": chat})
            await barrier(quinn)
            assert quinn.pending("user:joined") == [] and quinn.pending("user:left") == []
            await tab2.close()  # the user's last socket in the room goes away
            left = await quinn.next("user:left")
            assert left["userId"] == "pia" and left["chatId"] == chat
            assert (await quinn.ok("room:info", {"chatId": chat}))["roomInfo"]["onlineCount"] == 1
        finally:
            await close_all(quinn, tab1, tab2)

    run(scenario)
