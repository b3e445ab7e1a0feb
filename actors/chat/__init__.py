"""The chat application's actors (namespace ``/chat``).

* :mod:`actors.chat.room` - one :class:`ChatRoomActor` per chat: access, who is in the room,
  typing state, messages and receipts (persisted through the Store before anyone hears of them).
* :mod:`actors.chat.presence` - one actor: users and their sockets (several tabs = one user).
* :mod:`actors.chat.recovery` - one actor: recovery tokens and the messages queued for them.
* :mod:`actors.chat.gate` - one actor: the rate limits (messages, typing, connection attempts).
* :mod:`actors.chat.monitor` - one actor: connection metrics, the event log and health.
* :mod:`actors.chat.db` - the schema and the SQL, as plain functions the Store runs.
* :mod:`actors.chat.wire` - what they put on the wire (messages, rooms, presence, figures), as
  msgspec Structs.

Nothing here imports the web layer: rooms publish through an :class:`~actors.chat.model.Emitter`
(the namespace, seen through a Protocol).
"""
