"""What a node answers when another node (Switchboard or Node's adapter) asks.

Every request type of the adapter is answered, so that Node's ``fetchSockets()``,
``serverSideEmit(..., ack)`` and ``emitWithAck`` complete across a mixed cluster: a socket list
(0), the rooms (1), join/leave/disconnect by socket or by selection (2, 3, 4), the sockets with
their handshakes (5), a server-side emit with or without an ack (6), and a broadcast with acks
(7): first how many clients it reached here, then each client's answer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import msgspec

from actors.sockets.broker import Broadcast, LocalBroker, Selector
from protocol.redis_adapter import Opts, Request, RequestType, rooms_of

log = logging.getLogger("switchboard.cluster")

Respond = Callable[[str, Request], None]  # (namespace, response): publish it
MS = 1000.0


def selector_of(opts: Opts | None) -> Selector:
    if opts is None:
        return Selector()
    return Selector(frozenset(rooms_of(opts.rooms)), frozenset(rooms_of(opts.except_)))


class Answerer:
    def __init__(self, local: LocalBroker, tag: str, respond: Respond) -> None:
        self.local = local
        self.tag = tag
        self.respond = respond

    async def answer(self, namespace: str, request: Request) -> None:
        """Answer ``request`` (already decoded); requests of our own are not answered here:
        the asker counts itself."""
        if request.uid == self.tag:
            return
        handler = self._handlers.get(request.type) if request.type is not None else None
        if handler is None:
            log.debug("cluster: request type %r not understood; ignored", request.type)
            return
        await handler(self, namespace, request)

    def _reply(self, namespace: str, request: Request, **fields: object) -> None:
        if request.requestId is not None:
            self.respond(
                namespace, msgspec.structs.replace(Request(), requestId=request.requestId, **fields)
            )

    async def _sockets(self, namespace: str, request: Request) -> None:
        selector = Selector(frozenset(rooms_of(request.rooms)))
        sids = [s.sid for s in self.local.sessions(namespace, selector)]
        self._reply(namespace, request, sockets=sids)

    async def _all_rooms(self, namespace: str, request: Request) -> None:
        rooms = sorted(await self.local.all_rooms(namespace))
        self._reply(namespace, request, rooms=rooms)

    async def _join(self, namespace: str, request: Request) -> None:
        await self._membership(namespace, request, join=True)

    async def _leave(self, namespace: str, request: Request) -> None:
        await self._membership(namespace, request, join=False)

    async def _membership(self, namespace: str, request: Request, *, join: bool) -> None:
        change = self.local.join if join else self.local.leave
        if request.opts is not None:  # by selection: no answer (Node's addSockets/delSockets)
            await change(namespace, selector_of(request.opts), rooms_of(request.rooms))
            return
        if request.sid is None or request.room is None or not self._has(namespace, request.sid):
            return
        await change(namespace, Selector(frozenset({request.sid})), rooms_of([request.room]))
        self._reply(namespace, request)

    async def _disconnect(self, namespace: str, request: Request) -> None:
        close = bool(request.close)
        if request.opts is not None:
            await self.local.disconnect(namespace, selector_of(request.opts), close)
            return
        if request.sid is None or not self._has(namespace, request.sid):
            return
        await self.local.disconnect(namespace, Selector(frozenset({request.sid})), close)
        self._reply(namespace, request)

    async def _fetch(self, namespace: str, request: Request) -> None:
        sockets = await self.local.fetch_sockets(namespace, selector_of(request.opts))
        self._reply(namespace, request, sockets=sockets)

    async def _server_side_emit(self, namespace: str, request: Request) -> None:
        data = request.data if isinstance(request.data, list) else []
        result = await self.local.answer_server_side(namespace, data)
        if request.requestId is not None:
            self._reply(namespace, request, type=RequestType.SERVER_SIDE_EMIT, data=result)

    async def _broadcast_with_ack(self, namespace: str, request: Request) -> None:
        packet = request.packet if isinstance(request.packet, dict) else {}
        data = packet.get("data")
        if not isinstance(data, list) or not data or not isinstance(data[0], str):
            return
        opts = request.opts or Opts()
        selector = selector_of(opts)
        timeout_ms = opts.flags.timeout if opts.flags and opts.flags.timeout else 5 * MS
        rooms = tuple(sorted(selector.rooms)) or None
        broadcast = Broadcast(namespace, data[0], tuple(data[1:]), rooms, selector.except_rooms)

        def count(n: int) -> None:
            self._reply(namespace, request, type=RequestType.BROADCAST_CLIENT_COUNT, clientCount=n)

        def answered(value: object) -> None:
            self._reply(namespace, request, type=RequestType.BROADCAST_ACK, packet=value)

        await self.local.ask_local(broadcast, timeout_ms / MS, count, answered)

    def _has(self, namespace: str, sid: str) -> bool:
        directory = self.local.directories.get(namespace)
        return directory is not None and sid in directory.sessions

    _handlers: dict[int, Callable[[Answerer, str, Request], Awaitable[None]]] = {
        RequestType.SOCKETS: _sockets,
        RequestType.ALL_ROOMS: _all_rooms,
        RequestType.REMOTE_JOIN: _join,
        RequestType.REMOTE_LEAVE: _leave,
        RequestType.REMOTE_DISCONNECT: _disconnect,
        RequestType.REMOTE_FETCH: _fetch,
        RequestType.SERVER_SIDE_EMIT: _server_side_emit,
        RequestType.BROADCAST: _broadcast_with_ack,
    }
