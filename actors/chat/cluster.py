"""The chat's part of a cluster node: messages in sequence to every node, and the sweep of
dead nodes.

* **Messages.** After a commit the room publishes ``{chat, seq, message}`` on one Redis channel
  (``<prefix>-chat#messages#``); every node hands what it hears to its room actor of that chat,
  which delivers in ``seq`` order, once (:mod:`actors.chat.room`). The subscriber never waits on
  a room: a full mailbox drops the message and the room fills the gap from the database. After a
  reconnect (publishes may have been lost meanwhile), and every ``resync_interval_seconds``, each
  room with members here checks the database for messages it has not heard of.
* **Sweep.** Every node lists what it adds to the shared state under its tag
  (:mod:`actors.chat.redis_state`). Every ``lease/3`` seconds each node looks for tags whose
  node lease (:mod:`actors.cluster.registry`) has lapsed; one survivor per dead node wins a
  ``SET NX PX`` election, takes that node's sockets out, and announces the edges (who went
  offline, who left which chat, whose typing stopped). A dead node's users are cleaned up within
  ``lease + lease/3`` seconds of its last renewal (13.3 s with the default 10 s lease).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import coredis
import msgspec
import trio

from actors.chat.redis_state import Reaped, RedisChatState
from actors.chat.wire import ChatMessage
from actors.cluster.config import ClusterConfig
from actors.cluster.link import REDIS_ERRORS, RedisLink, client_for
from actors.cluster.registry import NodeRegistry

log = logging.getLogger("switchboard.chat")

Deliver = Callable[[str, int, ChatMessage], None]  # never waits
SWEEP_ELECTION_LEASES = 3  # a sweeper's claim on a dead node lasts this many leases


class Published(msgspec.Struct, frozen=True, array_like=True):
    """A committed message on its way to the other nodes."""

    chat_id: str
    seq: int
    message: ChatMessage


class ChatCluster:
    def __init__(
        self,
        config: ClusterConfig,
        registry: NodeRegistry,
        *,
        deliver: Deliver,
        resync: Callable[[], None],
        on_reaped: Callable[[Reaped], Awaitable[None]],
        now: Callable[[], float],
        resync_interval_seconds: float,
    ) -> None:
        self.config = config
        self.registry = registry
        self.deliver = deliver
        self.resync = resync
        self.on_reaped = on_reaped
        self.now = now
        self.resync_interval_seconds = resync_interval_seconds
        self.tag = config.tag
        self.client: coredis.Redis[bytes] = client_for(config.redis_url)
        self.state = RedisChatState(self.client, config.prefix, config.tag)
        self.channel = f"{config.prefix}-chat#messages#"
        self.link = RedisLink(
            config,
            channels=[self.channel],
            patterns=[],
            probe_channel=f"{config.prefix}-chat-probe#{config.tag}#",
            on_message=self._on_message,
            on_connected=self._on_connected,
        )
        self.received = 0
        self.bad_messages = 0
        self.sweeps = 0  # dead nodes this node swept
        self._decoder = msgspec.msgpack.Decoder(Published)
        self._encoder = msgspec.msgpack.Encoder()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with self.client, trio.open_nursery() as nursery:
            nursery.start_soon(self.link.run_publisher, self.client)
            nursery.start_soon(self.link.run_subscriber)
            nursery.start_soon(self._sweep_loop)
            nursery.start_soon(self._resync_loop)
            with trio.move_on_after(self.config.request_timeout_seconds):
                await self.link.subscribed.wait()
            task_status.started()

    # --- messages ------------------------------------------------------------------------------
    def publish(self, chat_id: str, seq: int, message: ChatMessage) -> None:
        self.link.publish(self.channel, self._encoder.encode(Published(chat_id, seq, message)))

    async def _on_message(self, channel: str, data: bytes) -> None:
        try:
            published = self._decoder.decode(data)
        except msgspec.DecodeError as err:
            self.bad_messages += 1
            log.info("chat: dropped a message on %s: %s", channel, err)
            return
        self.received += 1
        self.deliver(published.chat_id, published.seq, published.message)

    async def _on_connected(self) -> None:
        self.resync()  # publishes may have been lost while we were away

    async def _resync_loop(self) -> None:
        while True:
            await trio.sleep(self.resync_interval_seconds)
            self.resync()

    # --- dead nodes ----------------------------------------------------------------------------
    async def _sweep_loop(self) -> None:
        interval = self.config.lease_seconds / 3
        while True:
            await trio.sleep(interval)
            try:
                await self.sweep()
            except REDIS_ERRORS as err:
                log.warning("chat: sweep of dead nodes failed: %r", err)

    async def sweep(self) -> None:
        """Reap the nodes with chat state whose lease has lapsed (one survivor each)."""
        for tag in await self.state.nodes_with_state():
            if tag == self.tag or await self.client.exists([self.registry.key(tag)]):
                continue
            claim = self.state.key("sweep", tag)
            px = int(self.config.lease_seconds * 1000 * SWEEP_ELECTION_LEASES)
            won = await self.client.set(claim, self.tag, condition=coredis.PureToken.NX, px=px)
            if not won:
                continue
            reaped = await self.state.reap(tag, self.now())
            self.sweeps += 1
            log.warning(
                "chat: node %s is gone: %d user(s) offline, %d chat(s) left",
                tag, len(reaped.offline), len(reaped.left),
            )  # fmt: skip
            await self.on_reaped(reaped)
            self.resync()  # it may have committed messages it never published
