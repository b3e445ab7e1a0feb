"""Guild analytics over a sliding window, and multi-client tracking (pure state, no I/O).

Over the events of the last ``window_seconds`` (by event time), per user:

* ``ghosts``: users with at least ``ghost_min_typing`` typing events;
  ``ghostScore = typing / (messages + 1)``.
* ``lurkers``: users with at least one presence update or reaction;
  ``lurkerScore = (presence_updates + reactions) / (messages + 1)``; ``channelCount`` = distinct
  channels the user was seen in (any event that names a channel: message, typing, reaction,
  presence with ``channelId``).
* ``channelDiversity``: users with at least one message; ``channelCount`` = distinct channels
  they posted messages in.

Each list is sorted by its score (or count) descending, then by ``userId``, and cut to ``top_n``.
Scores are rounded to 2 decimals. ``username`` is the one of the user's newest event in the window.

:class:`Window` keeps counters updated incrementally as events enter and leave the window, so a
snapshot costs one pass over the active users.
"""

from __future__ import annotations

import heapq
import sys
from collections import Counter
from dataclasses import dataclass, field

import msgspec

from actors.guild.model import GuildEvent


class Ghost(msgspec.Struct, frozen=True, rename="camel"):
    user_id: str
    username: str
    ghost_score: float


class Lurker(msgspec.Struct, frozen=True, rename="camel"):
    user_id: str
    username: str
    lurker_score: float
    channel_count: int


class Diversity(msgspec.Struct, frozen=True, rename="camel"):
    user_id: str
    username: str
    channel_count: int


class Analytics(msgspec.Struct, frozen=True, rename="camel"):
    """The three lists, without stamps (two snapshots are "the same" when these are equal)."""

    ghosts: tuple[Ghost, ...] = ()
    lurkers: tuple[Lurker, ...] = ()
    channel_diversity: tuple[Diversity, ...] = ()

    def payload(self, guild_id: str, stamp: str) -> AnalyticsUpdate:
        """The ``analytics:update`` payload."""
        data = AnalyticsData(self.ghosts, self.lurkers, self.channel_diversity, stamp)
        return AnalyticsUpdate(guild_id, data, stamp)


class AnalyticsData(msgspec.Struct, frozen=True, rename="camel"):
    """``data`` of ``analytics:update``: the lists and when they were taken."""

    ghosts: tuple[Ghost, ...]
    lurkers: tuple[Lurker, ...]
    channel_diversity: tuple[Diversity, ...]
    timestamp: str


class AnalyticsUpdate(msgspec.Struct, frozen=True, rename="camel"):
    """``analytics:update``."""

    guild_id: str
    data: AnalyticsData
    timestamp: str


@dataclass
class UserStats:
    username: str = ""
    newest: tuple[float, int] = (float("-inf"), 0)
    events: int = 0
    messages: int = 0
    typing: int = 0
    presence: int = 0
    reactions: int = 0
    seen: Counter[str] = field(default_factory=Counter)
    posted: Counter[str] = field(default_factory=Counter)


def _bump(stats: UserStats, kind: str, channel: str | None, step: int) -> None:
    stats.events += step
    if kind == "message":
        stats.messages += step
    elif kind == "typing":
        stats.typing += step
    elif kind == "presence":
        stats.presence += step
    elif kind == "reaction":
        stats.reactions += step
    if channel is not None and kind in ("message", "typing", "presence", "reaction"):
        _count(stats.seen, channel, step)
        if kind == "message":
            _count(stats.posted, channel, step)


def _count(counter: Counter[str], key: str, step: int) -> None:
    value = counter[key] + step
    if value > 0:
        counter[key] = value
    else:
        del counter[key]


class Window:
    """The events of one guild inside the window, and the per-user counters they make."""

    def __init__(self, window_seconds: float, *, top_n: int = 20, ghost_min_typing: int = 5):
        self.window_seconds = window_seconds
        self.top_n = top_n
        self.ghost_min_typing = ghost_min_typing
        self.users: dict[str, UserStats] = {}
        # (at, seq, user, kind, channel): what expiry needs, not the whole event
        self._heap: list[tuple[float, int, str, str, str | None]] = []

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, event: GuildEvent, now: float) -> bool:
        """Count ``event`` if it is inside the window; True when it was."""
        if event.at <= now - self.window_seconds:
            return False
        user = sys.intern(event.user_id)
        channel = None if event.channel_id is None else sys.intern(event.channel_id)
        entry = (event.at, event.seq, user, sys.intern(event.kind), channel)
        heapq.heappush(self._heap, entry)
        stats = self.users.get(user)
        if stats is None:
            stats = self.users[user] = UserStats()
        _bump(stats, entry[3], channel, 1)
        key = (event.at, event.seq)
        if key >= stats.newest:
            stats.newest = key
            stats.username = event.username
        return True

    def expire(self, now: float) -> int:
        """Forget the events that left the window; returns how many."""
        horizon = now - self.window_seconds
        heap = self._heap
        dropped = 0
        while heap and heap[0][0] <= horizon:
            _, _, user, kind, channel = heapq.heappop(heap)
            stats = self.users[user]
            _bump(stats, kind, channel, -1)
            if stats.events == 0:
                del self.users[user]
            dropped += 1
        return dropped

    def next_expiry(self) -> float | None:
        """When (event time + window) the oldest counted event leaves the window."""
        return self._heap[0][0] + self.window_seconds if self._heap else None

    def snapshot(self) -> Analytics:
        ghosts: list[Ghost] = []
        lurkers: list[Lurker] = []
        diversity: list[Diversity] = []
        for user_id, s in self.users.items():
            if s.typing >= self.ghost_min_typing:
                ghosts.append(Ghost(user_id, s.username, round(s.typing / (s.messages + 1), 2)))
            if s.presence + s.reactions > 0:
                score = round((s.presence + s.reactions) / (s.messages + 1), 2)
                lurkers.append(Lurker(user_id, s.username, score, len(s.seen)))
            if s.messages > 0:
                diversity.append(Diversity(user_id, s.username, len(s.posted)))
        ghosts.sort(key=lambda g: (-g.ghost_score, g.user_id))
        lurkers.sort(key=lambda u: (-u.lurker_score, u.user_id))
        diversity.sort(key=lambda d: (-d.channel_count, d.user_id))
        n = self.top_n
        return Analytics(tuple(ghosts[:n]), tuple(lurkers[:n]), tuple(diversity[:n]))


class MultiClient:
    """Each user's current platform set; says when a change makes an alert.

    An alert is due when a presence event changes a user's set of platforms and the new set has
    two or more platforms (so: once per change of that set, never for a repeat of the same set).
    """

    def __init__(self) -> None:
        self.platforms: dict[str, tuple[str, ...]] = {}

    def restore(self, event: GuildEvent) -> None:
        self._set(event)

    def observe(self, event: GuildEvent) -> bool:
        """Apply a presence event; True when it calls for ``alert:multiClient``."""
        if event.kind != "presence":
            return False
        changed = self._set(event)
        return changed and len(event.platforms) >= 2

    def _set(self, event: GuildEvent) -> bool:
        before = self.platforms.get(event.user_id, ())
        if event.platforms:
            self.platforms[event.user_id] = event.platforms
        else:
            self.platforms.pop(event.user_id, None)
        return before != event.platforms
