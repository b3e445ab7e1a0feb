"""The chat application: the Socket.IO namespace ``/chat`` and the REST routes ``/api/chats``.

Event table (:mod:`web.apps.chat.events`): each event name -> a msgspec schema -> one message to
one actor (:mod:`actors.chat`). Every ack is ``{success, message, ...}``; a payload that does not
fit its schema (or breaks a limit: empty or over-long content) is answered ``{success: false,
message: "Invalid request data", error: <what was wrong>}`` to the sender only. The socket's
life (the gate, presence edges, monitoring entries) is :mod:`web.apps.chat.lifecycle`, the REST
routes :mod:`web.apps.chat.rest`, every payload in and out :mod:`web.apps.chat.schemas`.

Decisions where the chat API reference (``docs/api/chat.md``) is silent:

* **Access.** A chat is a persisted record with participants (``POST /api/chats``). Every chat
  event (join, leave, info, online, send, typing, receipts) needs the caller to be a participant,
  or an ``admin``; otherwise "Chat not found or access denied" (the same answer for a chat that
  does not exist, so ids cannot be probed). Sending needs access, not a prior ``join:chat``; only
  joined sockets receive the room's broadcasts.
* **Who hears what.** ``message:new``, ``message:delivered``, ``message:read``,
  ``room:online-update`` and ``user:left`` go to every socket in the room, the sender's included
  (as ``io.to(room).emit`` in Node); ``user:joined`` and ``user:typing`` (isTyping true) skip the
  socket that caused them (as ``socket.to(room).emit``). ``user:online``/``user:offline`` go to
  every socket of the namespace except the one connecting, ``user:status-changed`` to all.
* **Several tabs are one user.** ``user:online``/``user:offline`` fire on the user's first socket
  connecting and last socket leaving; ``user:joined``/``user:left`` and ``room:online-update``
  on the user's first socket joining a room / last socket leaving it. Status is per user and
  starts as ``online`` each time the user comes online.
* **Acks after commit.** ``message:send`` is acked, and ``message:new`` broadcast, only after the
  message is committed (group commit); receipts likewise. ``message:sent`` goes to the sending
  socket with the stored message. ``message:read`` also records ``delivered``. A repeated receipt is
  acked but not re-broadcast.
* **Typing** is broadcast on changes (started / stopped), refreshed by repeated ``isTyping: true``,
  and stops on its own ``chat_typing_expiry_seconds`` after the last one, when the user sends, or
  when the user's last socket leaves the room.
* **Rate limits** (settings; 0 disables): over the message limit the answer is "Message rate
  limit exceeded. Please slow down.", over the typing limit "Typing rate limit exceeded. Please
  slow down.". Connection attempts are counted per IP on failed or refused handshakes; past the
  limit CONNECT_ERROR says "Too many connection attempts. Please try again later." for the whole
  block, valid token or not. A separate cap counts every handshake per IP per minute.
* **Expired tokens.** The core ends a session when its token expires; an event that races with
  that end is answered "User not authenticated" (as is REST without a valid token, with 401).
* **Recovery.** A token is valid while its socket is connected and for
  ``chat_recovery_token_ttl_seconds`` after it disconnects; only the same user may use it
  ("Recovery token belongs to another user"); otherwise "Invalid or expired recovery token".
  Recovering re-joins the chats the old socket was in; the messages committed in them meanwhile
  arrive once, in order, in ``connection:queued-messages`` ``{messages, count}`` (the ack's
  ``session.messageQueue`` is then empty: the queue was drained into that event, never twice).
* **Presence** ``presence:user-status`` of a user never seen answers "User not found"; ``email`` is
  null (tokens carry none).
* **Monitoring** is open to any authenticated user, as the seed says, but IP addresses are
  personal data: only an ``admin`` sees other users' (``ipAddress`` is null on their events,
  ``topIPs`` is empty, an ``ip`` filter matches only the caller's own events, and
  ``presence:user-status`` shows ``ipAddress`` null for another user). Health is
  ``warning`` or ``critical`` from real figures: connection error rate (5 % / 25 %, from 10
  attempts), slow-consumer disconnects (1 / 10) and the fullest actor mailbox (50 % / 90 %).
* **REST**: ``POST /api/chats`` ``{name, description?, participants?: [user ids]}`` -> 201
  ``{success, chat}``; ``GET /api/chats`` -> ``{success, chats}``;
  ``GET /api/chats/<id>/messages?before=<message id>&limit=<1..chat_history_page_max>`` ->
  ``{success, messages (newest first), hasMore, nextBefore}``. ``Authorization: Bearer <JWT>``;
  401 "User not authenticated", 404 "Chat not found or access denied", 400 "Invalid request data".
"""

from __future__ import annotations

import trio

from actors.chat import db
from actors.chat.cluster import ChatCluster
from actors.chat.gate import GateActor, GateConfig
from actors.chat.model import iso
from actors.chat.monitor import MonitorActor
from actors.chat.presence import PresenceActor, SharedPresenceActor
from actors.chat.recovery import RecoveryActor
from actors.chat.recovery_shared import SharedRecoveryActor
from actors.chat.redis_limits import SharedGateActor
from actors.chat.redis_state import Reaped
from actors.chat.room import (
    ChatRoomActor,
    Committed,
    FillGap,
    RoomConfig,
    RosterSwept,
    Sequenced,
)
from actors.chat.roster import Roster
from actors.chat.wire import ChatMessage
from actors.runtime import Actor, Registry, supervise
from web.apps.chat import events, lifecycle, rest
from web.apps.chat.schemas import UserOffline
from web.platform.runtime import Runtime
from web.sockets.namespace import Namespace

NAMESPACE = "/chat"


class ChatApp:
    """The ``/chat`` namespace's table and REST routes, and the actors behind them."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.clock = runtime.clock
        self.store = runtime.store
        self.ns: Namespace = runtime.namespace(NAMESPACE)
        s = self.settings
        self.presence: Actor = PresenceActor()
        self.cluster: ChatCluster | None = None  # on a cluster: the shared state, from start()
        self.roster: Roster | None = None  # None: each room keeps its own
        self.recovery: Actor = RecoveryActor(
            self.clock,
            ttl_seconds=s.chat_recovery_token_ttl_seconds,
            queue_max_messages=s.chat_recovery_queue_max_messages,
        )
        self.gate_config = GateConfig(
            message_rate_per_minute=s.chat_message_rate_per_minute,
            typing_rate_per_minute=s.chat_typing_rate_per_minute,
            connect_attempts=s.chat_connect_attempts_per_ip,
            connect_window_seconds=s.chat_connect_window_seconds,
            connect_block_seconds=s.chat_connect_block_seconds,
            handshakes_per_minute=s.chat_handshakes_per_ip_per_minute,
        )
        self.gate: GateActor = GateActor(self.clock, self.gate_config)
        self.monitor = MonitorActor(self.clock, max_events=s.chat_monitoring_events_max)
        self.room_config = RoomConfig(
            typing_expiry_seconds=s.chat_typing_expiry_seconds,
            idle_seconds=s.room_idle_seconds,
            mailbox_size=s.room_mailbox_size,
            gap_wait_seconds=s.chat_gap_wait_seconds,
        )
        self.chats: Registry[str, ChatRoomActor]  # one actor per chat, from start()
        self.store.add_schema(*db.SCHEMA)
        for migration in db.MIGRATIONS:
            self.store.add_migration(migration)
        lifecycle.install(self)
        events.register(self)
        runtime.add_blueprint(rest.blueprint(self))
        runtime.on_start(self.start)

    async def start(self, nursery: trio.Nursery) -> None:
        self.chats = Registry(self._make_room, nursery)
        node = self.runtime.cluster
        if node is not None:  # a cluster: the live state is shared in Redis
            self.cluster = ChatCluster(
                node.config,
                node.registry,
                deliver=self._heard,
                resync=self._resync,
                on_reaped=self._reaped,
                now=self.clock.now,
                resync_interval_seconds=self.settings.chat_resync_interval_seconds,
            )
            await nursery.start(self.cluster.run)
            state = self.cluster.state
            self.roster = state
            self.presence = SharedPresenceActor(state)
            self.gate = SharedGateActor(
                self.clock, self.gate_config, self.cluster.client, node.config.prefix, node.tag
            )
            self.recovery = SharedRecoveryActor(
                self.clock,
                self.store,
                self.cluster.client,
                node.config.prefix,
                node.tag,
                ttl_seconds=self.settings.chat_recovery_token_ttl_seconds,
                queue_max_messages=self.settings.chat_recovery_queue_max_messages,
            )
        for actor in (self.presence, self.recovery, self.gate, self.monitor):
            nursery.start_soon(supervise, actor)

    def _make_room(self, chat_id: str) -> ChatRoomActor:
        cluster = self.cluster
        return ChatRoomActor(
            chat_id,
            store=self.store,
            emitter=self.ns,
            clock=self.clock,
            on_commit=self._committed,
            config=self.room_config,
            roster=self.roster,
            publish=cluster.publish if cluster is not None else None,
            node=cluster.tag if cluster is not None else "",
        )

    # --- on a cluster ----------------------------------------------------------------------------
    def _heard(self, chat_id: str, seq: int, message: ChatMessage) -> None:
        """Another node committed a message: the room here delivers it, if it has a room here
        (no room: nobody here is in the chat). Never waits: a full mailbox makes a gap, which
        the room fills from the database."""
        room = self.chats.get(chat_id)
        if room is not None:
            room.tell_nowait(Sequenced(seq, message))

    def _resync(self) -> None:
        for room in list(self.chats.actors.values()):
            if room.members:
                room.tell_nowait(FillGap(check_latest=True))

    async def _reaped(self, reaped: Reaped) -> None:
        """A dead node's sockets were taken out: announce the edges they crossed."""
        now = self.clock.now()
        for user_id, username in reaped.offline:
            offline = UserOffline(user_id, username, "offline", iso(now), iso(now))
            await self.ns.emit("user:offline", offline)
        if reaped.offline:
            await lifecycle.users_online(self, now)
        for chat_id in set(reaped.left) | set(reaped.stopped_typing):
            swept = RosterSwept(
                tuple(reaped.left.get(chat_id, ())), tuple(reaped.stopped_typing.get(chat_id, ()))
            )
            await self.chats.tell(chat_id, swept)

    async def _committed(self, committed: Committed) -> None:
        """A message was committed and broadcast: recovery queues it for tokens that are away."""
        await self.recovery.tell(committed)
