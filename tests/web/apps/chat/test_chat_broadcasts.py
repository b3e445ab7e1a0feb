"""The seed's list broadcasts: ``users:online`` (the online users list, to the namespace, when a
user comes online or goes offline) and ``room:info`` (to the room, when who is in it changes)."""

from __future__ import annotations

from typing import Any

from tests.support.clients.chat import Client, connected, create_chat
from tests.support.clients.scenarios import close_all, run


def test_users_online_and_room_info_follow_changes(server: Any) -> None:
    chat_id = create_chat(server, "bc-ann", "bc-ben")

    async def scenario() -> None:
        (ann,) = await connected(server, "bc-ann")
        ben = await Client(server, "bc-ben").connect()
        listing = await ann.next_where("users:online", lambda d: "bc-ben" in _ids(d))
        assert listing["count"] == len(listing["users"])
        assert {"bc-ann", "bc-ben"} <= _ids(listing)

        await ann.ok("join:chat", {"chatId": chat_id})
        await ben.ok("join:chat", {"chatId": chat_id})
        info = await ann.next_where(
            "room:info", lambda d: d["chatId"] == chat_id and d["roomInfo"]["onlineCount"] == 2
        )
        assert info["roomInfo"]["participantCount"] == 2
        assert info["roomInfo"]["isActive"] is True

        await ben.close()
        gone = await ann.next_where("users:online", lambda d: "bc-ben" not in _ids(d))
        assert "bc-ann" in _ids(gone)
        after = await ann.next_where(
            "room:info", lambda d: d["chatId"] == chat_id and d["roomInfo"]["onlineCount"] == 1
        )
        assert after["roomInfo"]["participantCount"] == 2
        await close_all(ann)

    run(scenario)


def _ids(listing: dict[str, Any]) -> set[str]:
    return {user["userId"] for user in listing["users"]}
