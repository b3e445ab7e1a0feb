"""Operations: graceful shutdown under load, and /metrics after scripted traffic.

SIGTERM while clients are connected and events are being posted: the process exits 0 within
``shutdown_timeout_seconds``, every event answered 2xx is in the store afterwards, and the clients
saw a close (a WebSocket close frame with code 1000; a pending long-poll answered with the
Engine.IO CLOSE packet ``1``), not a reset.
"""

from __future__ import annotations

import itertools
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from tests.support.processes import ProductServer
from tests.support.tokens import OPERATIONS_SECRET, Tokens

tokens = Tokens(OPERATIONS_SECRET)
SHUTDOWN_BOUND_SECONDS = 10.0


def start(server_factory: Callable[..., Any], data_dir: Path, *flags: str) -> Any:
    return server_factory(
        ProductServer(
            "--ingest-rate-per-ip-per-minute",
            "0",
            "--chat-message-rate-per-minute",
            "0",
            *flags,
            secret=OPERATIONS_SECRET,
            data_dir=data_dir,
        )
    )


async def test_sigterm_under_load_exits_cleanly_and_loses_nothing_acknowledged(
    server_factory: Callable[..., Any], tmp_path: Path
) -> None:
    server = start(server_factory, tmp_path)
    token = tokens("ops", "admin", ttl=86400)
    acked: set[str] = set()
    ids = itertools.count()
    ws_close_codes: list[int | None] = []
    poll_answers: list[str] = []
    enough_traffic = trio.Event()
    stop = trio.Event()

    async def post_batches(worker: int) -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=5) as http:
            while not stop.is_set():
                batch = [
                    {
                        "id": f"w{worker}-{next(ids)}",
                        "type": "pageview",
                        "page": "/p",
                        "session_id": f"s{worker}",
                    }
                    for _ in range(20)
                ]
                try:
                    answer = await http.post("/api/events/batch", json=batch)
                except httpx.HTTPError:
                    return  # the server is gone: whatever was not answered 2xx may be lost
                if 200 <= answer.status_code < 300:
                    acked.update(event["id"] for event in batch)
                    if len(acked) >= 400:
                        enough_traffic.set()

    async def websocket_client(task_status: Any) -> None:
        url = f"{server.ws_url}/socket.io/?EIO=4&transport=websocket&token={token}"
        async with open_websocket_url(url) as ws:
            assert (await ws.get_message()).startswith("0{")
            await ws.send_message("40")
            assert (await ws.get_message()).startswith('40{"sid"')
            task_status.started()
            try:
                while True:
                    message = await ws.get_message()
                    if message == "2":
                        await ws.send_message("3")
            except ConnectionClosed as closed:
                ws_close_codes.append(closed.reason.code)

    chat_acked: set[str] = set()
    chat_enough = trio.Event()

    async def chat_client(task_status: Any) -> None:
        """Sends message:send with acks back to back; an ack means committed."""
        with httpx.Client(base_url=server.url) as http:
            made = http.post(
                "/api/chats",
                json={"name": "ops", "participants": ["ops"]},
                headers={"Authorization": f"Bearer {token}"},
            )
        chat_id = made.json()["chat"]["chatId"]
        url = f"{server.ws_url}/socket.io/?EIO=4&transport=websocket"
        async with open_websocket_url(url) as ws:
            assert (await ws.get_message()).startswith("0{")
            await ws.send_message('40/chat,{"token":"' + token + '"}')
            assert (await ws.get_message()).startswith('40/chat,{"sid"')
            await ws.send_message('42/chat,0["join:chat",{"chatId":"' + chat_id + '"}]')
            task_status.started()
            ack_id = 1
            try:
                await ws.send_message(_send(ack_id, chat_id))
                while True:
                    message = await ws.get_message()
                    if message == "2":
                        await ws.send_message("3")
                    elif message.startswith(f"43/chat,{ack_id}["):
                        answer = json.loads(message[len(f"43/chat,{ack_id}") :])[0]
                        if answer.get("success"):
                            chat_acked.add(answer["sentMessage"]["id"])
                            if len(chat_acked) >= 50:
                                chat_enough.set()
                        ack_id += 1
                        await ws.send_message(_send(ack_id, chat_id))
            except ConnectionClosed as closed:
                ws_close_codes.append(closed.reason.code)

    async def polling_client(task_status: Any) -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            opened = await http.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
            sid = json.loads(opened.text[1:])["sid"]
            params = {"EIO": "4", "transport": "polling", "sid": sid}
            task_status.started()
            answer = await http.get("/socket.io/", params=params)  # pending until the shutdown
            poll_answers.append(answer.text)

    async with trio.open_nursery() as nursery:
        await nursery.start(websocket_client)
        await nursery.start(polling_client)
        await nursery.start(chat_client)
        for worker in range(3):
            nursery.start_soon(post_batches, worker)
        with trio.fail_after(30):
            await enough_traffic.wait()
            await chat_enough.wait()
        began = time.monotonic()
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        code = await trio.to_thread.run_sync(server.proc.wait, SHUTDOWN_BOUND_SECONDS + 5)
        took = time.monotonic() - began
        stop.set()
    assert code == 0
    assert took < SHUTDOWN_BOUND_SECONDS
    assert ws_close_codes == [1000, 1000]  # close frames, not resets
    assert poll_answers == ["1"]  # the pending poll got Engine.IO CLOSE
    stored = {row[0] for row in server.query("SELECT id FROM analytics_events")}
    messages = {row[0] for row in server.query("SELECT id FROM chat_messages")}
    missing = acked - stored
    assert len(acked) >= 400
    assert not missing, f"{len(missing)} acknowledged events lost"
    assert len(chat_acked) >= 50
    assert chat_acked <= messages, f"{len(chat_acked - messages)} acknowledged messages lost"


def _send(ack_id: int, chat_id: str) -> str:
    body = json.dumps(
        ["message:send", {"chatId": chat_id, "content": f"m{ack_id}", "type": "text"}]
    )
    return f"42/chat,{ack_id}{body}"


def test_metrics_count_scripted_traffic_exactly(
    server_factory: Callable[..., Any], tmp_path: Path
) -> None:
    server = start(server_factory, tmp_path)
    admin = tokens("ops", "admin", ttl=86400)
    user = tokens("u", ttl=86400)

    async def scenario() -> None:
        url = f"{server.ws_url}/socket.io/?EIO=4&transport=websocket"
        # two accepted connections, one refused CONNECT (no token), one unknown namespace
        for _ in range(2):
            async with open_websocket_url(f"{url}&token={user}") as ws:
                await ws.get_message()
                await ws.send_message("40")
                assert (await ws.get_message()).startswith('40{"sid"')
        async with open_websocket_url(url) as ws:
            await ws.get_message()
            await ws.send_message("40")
            assert (await ws.get_message()).startswith("44{")
            await ws.send_message("40/nowhere,")
            assert (await ws.get_message()) == '44/nowhere,{"message":"Invalid namespace"}'

    trio.run(scenario)
    with httpx.Client(base_url=server.url) as http:
        http.post("/api/events/batch", json=[{"type": "signup", "session_id": "a"}] * 3)
        assert http.get("/metrics").status_code == 401  # protection is on by default
        assert http.get("/metrics", headers={"Authorization": f"Bearer {user}"}).status_code == 401
        text = http.get("/metrics", headers={"Authorization": f"Bearer {admin}"}).text

    def value(sample: str) -> float:
        for line in text.splitlines():
            if line.startswith(sample + " "):
                return float(line.split()[-1])
        raise AssertionError(f"{sample} not in /metrics:\n{text}")

    assert value("switchboard_handshakes_total") == 3
    assert value('switchboard_namespace_connects_total{namespace="/"}') == 2
    assert (
        value(
            'switchboard_connect_refusals_total{reason="Authentication failed: no token provided"}'
        )
        == 1
    )
    assert value('switchboard_connect_refusals_total{reason="invalid namespace"}') == 1
    assert value('switchboard_packets_in_total{type="connect"}') == 4
    assert value("switchboard_store_writes_total") >= 1
    assert value("switchboard_store_batch_size_count") >= 1
    assert value('switchboard_connections{transport="websocket"}') == 0


@pytest.mark.parametrize("visibility", ["token", "public"])
def test_metrics_token_and_public_modes(
    server_factory: Callable[..., Any], tmp_path: Path, visibility: str
) -> None:
    flags = (
        ("--metrics-token", "scrape-me") if visibility == "token" else ("--metrics-public", "true")
    )
    server = start(server_factory, tmp_path, *flags)
    with httpx.Client(base_url=server.url) as http:
        anonymous = http.get("/metrics").status_code
        with_token = http.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert anonymous == (200 if visibility == "public" else 401)
    assert with_token.status_code == 200
    assert "switchboard_handshakes_total" in with_token.text
