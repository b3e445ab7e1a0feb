"""Who is in a chat and who is typing there: the :class:`Roster` seam a room actor decides its
edges by (a user's first socket joining, last socket leaving, typing started / stopped).

:class:`LocalRoster` keeps it in the room actor of a single node. On a cluster the room actors
of every node share one roster in Redis (:class:`actors.chat.redis_state.RedisChatState`), so a
user with tabs on several nodes is one member, ``user:joined`` fires once cluster-wide and the
online and typing lists are the cluster's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from actors.chat.model import User, iso
from actors.chat.wire import RoomMember, TypingUser


class Roster(Protocol):
    async def join(self, chat_id: str, sid: str, user: User, at: float) -> bool:
        """Add a socket; True when it is the user's first in the chat."""
        ...

    async def leave(self, chat_id: str, sid: str) -> bool:
        """Remove a socket; True when it was its user's last in the chat."""
        ...

    async def online(self, chat_id: str) -> list[RoomMember]:
        """The users with a socket in the chat, earliest join first."""
        ...

    async def start_typing(self, chat_id: str, user: User, at: float, token: str) -> bool:
        """Mark the user typing (``token`` names this refresh); True when it is news."""
        ...

    async def stop_typing(self, chat_id: str, user_id: str, token: str = "") -> str | None:
        """Clear the user's typing (only if still ``token``'s, when given); their username if
        they were typing."""
        ...

    async def typing(self, chat_id: str) -> list[TypingUser]: ...


@dataclass(slots=True)
class _Member:
    user: User
    joined_at: float


@dataclass(slots=True)
class _Typist:
    username: str
    started_at: float
    token: str


class LocalRoster:
    """One room actor's roster (single node): its members and typists, in memory."""

    def __init__(self) -> None:
        self.members: dict[str, _Member] = {}  # sid -> member
        self.typists: dict[str, _Typist] = {}  # user id -> typist

    def _users(self) -> dict[str, _Member]:
        users: dict[str, _Member] = {}
        for member in self.members.values():
            seen = users.get(member.user.user_id)
            if seen is None or member.joined_at < seen.joined_at:
                users[member.user.user_id] = member
        return users

    async def join(self, chat_id: str, sid: str, user: User, at: float) -> bool:
        if sid in self.members:
            return False
        first = user.user_id not in self._users()
        self.members[sid] = _Member(user, at)
        return first

    async def leave(self, chat_id: str, sid: str) -> bool:
        member = self.members.pop(sid, None)
        return member is not None and member.user.user_id not in self._users()

    async def online(self, chat_id: str) -> list[RoomMember]:
        return [
            RoomMember(m.user.user_id, m.user.username, iso(m.joined_at))
            for m in sorted(self._users().values(), key=lambda m: m.joined_at)
        ]

    async def start_typing(self, chat_id: str, user: User, at: float, token: str) -> bool:
        typist = self.typists.get(user.user_id)
        started = at if typist is None else typist.started_at
        self.typists[user.user_id] = _Typist(user.username, started, token)
        return typist is None

    async def stop_typing(self, chat_id: str, user_id: str, token: str = "") -> str | None:
        typist = self.typists.get(user_id)
        if typist is None or (token and typist.token != token):
            return None
        del self.typists[user_id]
        return typist.username

    async def typing(self, chat_id: str) -> list[TypingUser]:
        return [
            TypingUser(user_id, t.username, chat_id, iso(t.started_at))
            for user_id, t in self.typists.items()
        ]
