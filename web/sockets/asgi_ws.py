"""The ASGI WebSocket path: Engine.IO over Quart's websocket route.

Slower than the native path (one ASGI send per message), but complete: it serves WebSocket
upgrades that arrive on a keep-alive connection (the front door routes only a connection's first
request) and every WebSocket when the app runs under a plain ASGI server. Same Engine.IO sessions,
same rooms, same tests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import trio

from actors.sockets.outbox import OutFrame
from actors.sockets.session import Handshake
from protocol import engineio
from protocol.errors import ProtocolError
from web.sockets.engineio_server import EngineServer, EngineSocket
from web.sockets.log_context import connection_id

log = logging.getLogger("switchboard.asgi_ws")


# A closed session whose last sends are still blocked after this long (the client stopped
# reading: a slow consumer) has its TCP connection hung up.
CLOSE_GRACE_SECONDS = 1.0


class AsgiWebSocket:
    name = "websocket"
    __slots__ = (
        "_abort",
        "_spawn",
        "_wakeup",
        "closed",
        "pending",
        "protocol",
        "queued_bytes",
        "sending",
    )

    def __init__(
        self,
        spawn: Callable[..., None] | None = None,
        abort: Callable[[], bool] | None = None,
        protocol: int = 4,
    ) -> None:
        self.protocol = protocol
        self.pending: list[str | bytes] = []
        self.queued_bytes = 0
        self.closed = False
        self.sending = False  # a send is blocked until the client reads
        self._wakeup = trio.Event()
        self._spawn = spawn
        self._abort = abort

    def push(self, frame: OutFrame) -> None:
        if self.closed:
            return
        self.pending.extend(frame.messages(self.protocol))
        self.queued_bytes += frame.size
        self._wakeup.set()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._wakeup.set()
        if self.sending and self._spawn is not None:
            self._spawn(self._hang_up_if_stuck)

    async def _hang_up_if_stuck(self) -> None:
        await trio.sleep(CLOSE_GRACE_SECONDS)
        if self.sending and self._abort is not None:
            self._abort()

    async def write(self, ws: Any) -> None:
        """Send queued messages in order until closed, then close the WebSocket."""
        while True:
            if not self.pending:
                if self.closed:
                    await ws.close(1000)
                    return
                self._wakeup = trio.Event()
                await self._wakeup.wait()
                continue
            batch, self.pending = self.pending, []
            self.sending = True
            try:
                for message in batch:
                    await ws.send(message)
            finally:
                self.sending = False
            self.queued_bytes = sum(len(m) for m in self.pending)


async def serve_asgi_websocket(
    engine: EngineServer,
    ws: Any,
    hs: Handshake,
    sid: str | None,
    max_message_bytes: int,
    abort: Callable[[], bool] | None = None,
    version: int = engineio.PROTOCOL_VERSION,
) -> None:
    """Run one accepted Quart websocket as an Engine.IO WebSocket transport. ``abort`` hangs up
    the connection (when the server can) if the session ends while sends are blocked;
    ``version`` is the Engine.IO protocol of a new session (an upgrade keeps its session's)."""
    protocol = engine.protocol_of(sid) if sid is not None else version
    transport = AsgiWebSocket(abort=abort, protocol=protocol)
    esock: EngineSocket | None
    upgrading = sid is not None
    if sid is None:
        esock = engine.open(transport, hs, upgrades=[], protocol=protocol)
        connection_id.set(esock.sid)
    else:
        connection_id.set(sid)
        esock = engine.begin_upgrade(sid)
        if esock is None:  # already upgraded: accepted, then closed at once
            await ws.close(1000)
            return
    reason = "transport close"
    async with trio.open_nursery() as nursery:
        transport._spawn = nursery.start_soon
        nursery.start_soon(transport.write, ws)
        try:
            with trio.move_on_after(engine.config.upgrade_timeout_seconds if upgrading else 1e9):
                while upgrading:
                    packet = engineio.decode_packet(_message(await ws.receive()))
                    upgrading = not esock.upgrade_step(transport, packet)
            if upgrading:
                esock.upgrading = False
                transport.close()
                return
            while not esock.closed:
                message = _message(await ws.receive())
                if len(message) > max_message_bytes:  # see web.front_door.hypercorn_config
                    await ws.close(1009)
                    reason = "message too big"
                    break
                engine.stats.packets_in += 1
                engine.stats.bytes_in += len(message)
                await esock.receive(esock.decode(message))
        except ProtocolError as err:
            log.info("closing %s: %s", esock.sid, err)
            reason = "parse error"
        finally:
            if esock.transport is transport:
                esock.close(reason)
            else:
                esock.upgrading = False
                transport.close()


def _message(received: str | bytes | None) -> str | bytes:
    """Quart hands over an empty binary message as None (``bytes or text``): restore it."""
    return b"" if received is None else received
