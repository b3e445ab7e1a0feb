"""The broker of a cluster node: every broadcast and every operation on sockets, on every node.

A broadcast is delivered here at once (encoded once for this node's members) and published in
the adapter's format; each other node decodes it and encodes it once for its own members. An
operation on sockets (fetch, join, leave, disconnect, server-side emit, broadcast with acks) acts
here and asks the other nodes. A request waits for the nodes alive in the registry (plus the
Node servers that subscribe beside them, counted from the request channel's subscribers), never
longer than ``request_timeout_seconds``, and leaves nothing behind when it ends.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import msgspec
import trio

from actors.cluster.answers import Answerer
from actors.cluster.config import ClusterConfig
from actors.cluster.link import REDIS_ERRORS, RedisLink, client_for
from actors.cluster.registry import NodeInfo, NodeRegistry
from actors.sockets.broker import AckResults, Broadcast, LocalBroker, Selector, SocketInfo
from protocol.errors import ProtocolError
from protocol.redis_adapter import (
    Channels,
    Flags,
    Opts,
    Packet,
    Request,
    RequestType,
    broadcast_channel,
    decode_broadcast,
    decode_request,
    encode_broadcast,
    encode_request,
)

log = logging.getLogger("switchboard.cluster")

Hook = Callable[[], Awaitable[None]]
REFRESH_ON_MISS_SECONDS = 0.25


@dataclass
class ClusterStats:
    broadcasts_received: int = 0
    bad_messages: int = 0  # undecodable or foreign messages on our channels, dropped
    requests_answered: int = 0
    answers_refused_busy: int = 0  # requests not answered: too many in flight
    requests_sent: int = 0
    requests_incomplete: int = 0  # requests that ended on their timeout
    forwarded_polling: int = 0  # polling requests relayed to the node that owns the session
    forwarded_upgrades: int = 0  # WebSocket upgrades handed to the node that owns the session
    owner_unreachable: int = 0  # forwards that failed: the session was answered as lost


class ClusterBroker:
    def __init__(
        self, config: ClusterConfig, local: LocalBroker, namespaces: Iterable[str]
    ) -> None:
        self.config = config
        self.local = local
        self.tag = config.tag
        self.channels = {ns: Channels(config.prefix, ns) for ns in namespaces}
        self._requests = {c.request: ns for ns, c in self.channels.items()}
        self._responses = {c.response: ns for ns, c in self.channels.items()}
        self._responses |= {c.specific_response(self.tag): ns for ns, c in self.channels.items()}
        me = NodeInfo(config.tag, config.node_id, config.advertise_url, time.time(), os.getpid())
        self.registry = NodeRegistry(config.prefix, me, config.lease_seconds)
        self.link = RedisLink(
            config,
            channels=[*self._requests, *self._responses],
            patterns=[c.pattern for c in self.channels.values()],
            probe_channel=f"{config.prefix}-probe#{self.tag}#",
            on_message=self._on_message,
            on_connected=self._on_connected,
        )
        self.answerer = Answerer(local, self.tag, self._respond)
        self.stats = ClusterStats()
        self.on_reconnect: list[Hook] = []  # resynchronise what is durable after a gap
        self._pending: dict[str, trio.MemorySendChannel[Request]] = {}
        self._answering = 0
        self._client: Any = None
        self._nursery: trio.Nursery | None = None

    # --- life ------------------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Join the cluster; ready once subscribed (or, with Redis away, after waiting one
        request timeout: local clients are served meanwhile and it joins when Redis is back)."""
        client = client_for(self.config.redis_url)
        async with client, trio.open_nursery() as nursery:
            self._client, self._nursery = client, nursery
            nursery.start_soon(self.link.run_publisher, client)
            nursery.start_soon(self.link.run_subscriber)
            nursery.start_soon(self._keep_lease, client)
            with trio.move_on_after(self.config.request_timeout_seconds):
                await self.link.subscribed.wait()
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                with trio.move_on_after(1.0) as cleanup:
                    cleanup.shield = True
                    await self._withdraw(client)

    async def _keep_lease(self, client: Any) -> None:
        while True:
            try:
                await self.registry.renew(client)
                await self.registry.refresh(client)
            except REDIS_ERRORS as err:
                log.warning("cluster: registry not renewed: %r", err)
            await trio.sleep(self.config.lease_seconds / 3)

    async def find_node(self, tag: str) -> NodeInfo | None:
        """The live node of ``tag``; a tag we have not heard of yet (a node that just started)
        makes us look at the registry again, at most once per ``REFRESH_ON_MISS_SECONDS``."""
        node = self.registry.alive(tag)
        if node is not None or self._client is None:
            return node
        if time.monotonic() - self.registry.refreshed_at >= REFRESH_ON_MISS_SECONDS:
            with trio.move_on_after(self.config.request_timeout_seconds):
                try:
                    await self.registry.refresh(self._client)
                except REDIS_ERRORS as err:
                    log.warning("cluster: registry not read: %r", err)
        return self.registry.alive(tag)

    async def _withdraw(self, client: Any) -> None:
        try:
            await self.registry.withdraw(client)
        except REDIS_ERRORS:
            pass

    async def _on_connected(self) -> None:
        for hook in self.on_reconnect:
            try:
                await hook()
            except Exception:
                log.exception("cluster: a resynchronisation after reconnecting failed")

    # --- broadcasts ------------------------------------------------------------------------------
    async def publish(self, b: Broadcast) -> None:
        await self.local.deliver(b)
        channels = self.channels.get(b.namespace)
        if channels is None:
            return
        rooms = b.rooms or ()
        payload = encode_broadcast(
            self.tag,
            b.namespace,
            [b.event, *b.args],
            rooms,
            b.exclude,
            Flags(volatile=True) if b.volatile else Flags(),
        )
        self.link.publish(broadcast_channel(channels, rooms), payload)

    async def deliver(self, b: Broadcast) -> int:
        return await self.local.deliver(b)

    async def _on_message(self, channel: str, data: bytes) -> None:
        try:
            if channel in self._requests:
                self._answer(self._requests[channel], decode_request(data))
            elif channel in self._responses:
                self._on_response(decode_request(data))
            else:
                await self._on_broadcast(channel, data)
        except ProtocolError as err:
            self.stats.bad_messages += 1
            log.info("cluster: dropped a message on %s: %s", channel, err)

    async def _on_broadcast(self, channel: str, data: bytes) -> None:
        namespace = next(
            (ns for ns, c in self.channels.items() if c.room_of(channel) is not None), None
        )
        if namespace is None:
            raise ProtocolError("a message on a channel of no namespace of ours")
        b = decode_broadcast(data)
        if b.uid == self.tag:
            return
        if b.namespace != namespace:
            raise ProtocolError(f"a broadcast for {b.namespace!r} on {namespace!r}'s channel")
        self.stats.broadcasts_received += 1
        event, *args = b.data
        await self.local.deliver(
            Broadcast(namespace, event, tuple(args), b.rooms or None, b.except_rooms, b.volatile)
        )

    # --- answering the other nodes ---------------------------------------------------------------
    def _answer(self, namespace: str, request: Request) -> None:
        """Answer in a task of its own (a server-side handler or client acks take time)."""
        if request.uid == self.tag or self._nursery is None:
            return
        if self._answering >= self.config.requests_in_flight_max:
            self.stats.answers_refused_busy += 1
            return
        self._answering += 1
        self._nursery.start_soon(self._answer_one, namespace, request)

    async def _answer_one(self, namespace: str, request: Request) -> None:
        try:
            await self.answerer.answer(namespace, request)
            self.stats.requests_answered += 1
        except Exception:
            log.exception("cluster: answering a %r request failed", request.type)
        finally:
            self._answering -= 1

    def _respond(self, namespace: str, response: Request) -> None:
        self.link.publish(self.channels[namespace].response, encode_request(response))

    def _on_response(self, response: Request) -> None:
        if response.requestId is None:
            return
        waiting = self._pending.get(response.requestId)
        if waiting is not None:
            try:
                waiting.send_nowait(response)
            except trio.WouldBlock:
                pass  # more answers than anyone should send: the extra ones are dropped

    # --- asking the other nodes ------------------------------------------------------------------
    async def expected_responders(self, namespace: str) -> int:
        """The other nodes to wait for: Switchboard nodes from the registry, and Node servers
        (the request channel's subscribers that are not registered nodes)."""
        others = len(self.registry.others())
        try:
            counts = await self._client.pubsub_numsub(self.channels[namespace].request)
            subscribers = int(next(iter(counts.values()), 0))
        except (*REDIS_ERRORS, AttributeError):
            return others
        foreign = max(0, subscribers - 1 - others)
        return others + foreign

    async def _ask(
        self,
        namespace: str,
        request: Request,
        done: Callable[[list[Request]], bool],
        timeout: float | None = None,
    ) -> list[Request]:
        """Publish ``request`` and gather responses until ``done(responses)`` or the timeout."""
        request_id = secrets.token_urlsafe(9)
        send, receive = trio.open_memory_channel[Request](10_000)
        self._pending[request_id] = send
        responses: list[Request] = []
        self.stats.requests_sent += 1
        try:
            request = msgspec.structs.replace(request, uid=self.tag, requestId=request_id)
            self.link.publish(self.channels[namespace].request, encode_request(request))
            with trio.move_on_after(timeout or self.config.request_timeout_seconds) as scope:
                while not done(responses):
                    responses.append(await receive.receive())
            if scope.cancelled_caught:
                self.stats.requests_incomplete += 1
        finally:
            del self._pending[request_id]
            send.close()
        return responses

    async def _ask_nodes(self, namespace: str, request: Request) -> list[Request]:
        expected = await self.expected_responders(namespace)
        if expected == 0:
            return []
        return await self._ask(namespace, request, lambda got: len(got) >= expected)

    # --- operations on sockets -------------------------------------------------------------------
    async def fetch_sockets(self, namespace: str, selector: Selector) -> list[SocketInfo]:
        found = await self.local.fetch_sockets(namespace, selector)
        request = Request(type=RequestType.REMOTE_FETCH, opts=_opts(selector))
        for response in await self._ask_nodes(namespace, request):
            for item in response.sockets or ():
                try:
                    found.append(msgspec.convert(item, SocketInfo, strict=False))
                except msgspec.ValidationError:
                    self.stats.bad_messages += 1
        return found

    async def all_rooms(self, namespace: str) -> set[str]:
        rooms = await self.local.all_rooms(namespace)
        for response in await self._ask_nodes(namespace, Request(type=RequestType.ALL_ROOMS)):
            rooms |= {str(room) for room in response.rooms or ()}
        return rooms

    async def join(self, namespace: str, selector: Selector, rooms: Iterable[str]) -> None:
        names = list(rooms)
        await self.local.join(namespace, selector, names)
        request = Request(type=RequestType.REMOTE_JOIN, opts=_opts(selector), rooms=list(names))
        self._tell(namespace, request)

    async def leave(self, namespace: str, selector: Selector, rooms: Iterable[str]) -> None:
        names = list(rooms)
        await self.local.leave(namespace, selector, names)
        request = Request(type=RequestType.REMOTE_LEAVE, opts=_opts(selector), rooms=list(names))
        self._tell(namespace, request)

    async def disconnect(self, namespace: str, selector: Selector, close: bool) -> None:
        await self.local.disconnect(namespace, selector, close)
        request = Request(type=RequestType.REMOTE_DISCONNECT, opts=_opts(selector), close=close)
        self._tell(namespace, request)

    def _tell(self, namespace: str, request: Request) -> None:
        request = msgspec.structs.replace(request, uid=self.tag)
        self.link.publish(self.channels[namespace].request, encode_request(request))

    async def server_side_emit(
        self, namespace: str, data: list[object], *, ack: bool, timeout: float
    ) -> list[object]:
        request = Request(type=RequestType.SERVER_SIDE_EMIT, data=data)
        if not ack:
            self._tell(namespace, request)
            return []
        expected = await self.expected_responders(namespace)
        if expected == 0:
            return []
        answers = await self._ask(namespace, request, lambda got: len(got) >= expected, timeout)
        return [a.data for a in answers]

    async def broadcast_with_ack(self, b: Broadcast, timeout: float) -> AckResults:
        results = AckResults()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._remote_acks, b, timeout, results)
            await self.local.ask_local(b, timeout, _add_to(results), results.answers.append)
        return results

    async def _remote_acks(self, b: Broadcast, timeout: float, results: AckResults) -> None:
        expected_nodes = await self.expected_responders(b.namespace)
        if expected_nodes == 0:
            return
        selector = Selector(frozenset(b.rooms or ()), b.exclude)
        opts = _opts(selector)
        opts.flags = Flags(timeout=timeout * 1000.0)
        packet = Packet(2, [b.event, *b.args], b.namespace)
        request = Request(type=RequestType.BROADCAST, packet=packet, opts=opts)
        gather = _AckGather(expected_nodes, results)
        await self._ask(b.namespace, request, gather.done, timeout)
        results.nodes_silent = max(0, expected_nodes - gather.nodes_counted)


class _AckGather:
    """Responses of a broadcast with acks: per node a client count, then each client's ack."""

    def __init__(self, nodes: int, results: AckResults) -> None:
        self.nodes = nodes
        self.results = results
        self.seen = 0
        self.nodes_counted = 0
        self.clients = 0
        self.answers = 0

    def done(self, got: list[Request]) -> bool:
        for response in got[self.seen :]:
            if response.type == RequestType.BROADCAST_CLIENT_COUNT:
                self.nodes_counted += 1
                self.clients += response.clientCount or 0
                self.results.expected += response.clientCount or 0
            elif response.type == RequestType.BROADCAST_ACK:
                self.answers += 1
                self.results.answers.append(response.packet)
        self.seen = len(got)
        return self.nodes_counted >= self.nodes and self.answers >= self.clients


def _add_to(results: AckResults) -> Callable[[int], None]:
    def count(n: int) -> None:
        results.expected += n

    return count


def _opts(selector: Selector) -> Opts:
    return Opts(rooms=sorted(selector.rooms), except_=sorted(selector.except_rooms))
