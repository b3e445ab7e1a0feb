"""The stock Node socket.io-client (4.8.1) through the whole /chat flow, over WebSocket and over
long-polling (tests/node/chat_client.js)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.clients.chat import create_chat, token
from tests.support.processes import node_client


@pytest.mark.parametrize("transports", [["websocket"], ["polling"]], ids=["websocket", "polling"])
def test_node_client_full_flow(server: Any, transports: list[str]) -> None:
    a, b = f"node-a-{transports[0]}", f"node-b-{transports[0]}"
    chat = create_chat(server, a, b)
    result = node_client(
        "chat_client.js",
        {
            "url": server.url,
            "chatId": chat,
            "tokens": {"a": token(a), "b": token(b)},
            "users": {"a": a, "b": b},
            "badToken": "forged",
            "transports": transports,
        },
    )
    assert result["ok"] is True, result
    assert result["joinA"]["success"] and result["roomJoined"]["chatId"] == chat
    assert result["userJoined"]["userId"] == b and result["onlineUpdate"]["onlineCount"] == 2
    assert result["typing"] == {**result["typing"], "userId": b, "isTyping": True}
    assert [t["userId"] for t in result["typingUsers"]["typingUsers"]] == [b]
    message = result["sendAck"]["sentMessage"]
    assert message["content"] == "héllo from node ✓" and message["userId"] == a
    assert result["messageNew"] == message and result["messageSent"]["message"] == message
    assert result["typingStopped"]["userId"] == b
    assert result["deliveredAck"]["message"] == "Delivery confirmed"
    assert result["delivered"]["userId"] == b and result["read"]["userId"] == b
    assert result["readAck"]["message"] == "Read confirmation recorded"
    assert result["deliveryStatus"]["status"]["readBy"] == [b]
    assert result["statusAck"]["message"] == "Status updated successfully"
    assert result["statusChanged"]["status"] == "busy"
    assert {u["userId"] for u in result["onlineUsers"]["users"]} >= {a, b}
    assert result["invalid"]["message"] == "Invalid request data"
    assert result["notFound"] == {"success": False, "message": "Chat not found or access denied"}
    assert result["recoveryToken"]["recoveryToken"] == result["createSession"]["recoveryToken"]
    assert result["offline"]["userId"] == a
    assert result["recoverAck"]["message"] == "Connection recovered successfully"
    assert result["recovered"]["session"]["rooms"] == [chat]
    assert [m["id"] for m in result["queued"]["messages"]] == result["queuedIds"]
    assert result["badConnect"] == "Authentication failed: invalid token"
