"""The guild monitor: bots report what happens in a guild; dashboards watch it live.

The contract is the guild monitor API reference (``docs/api/guild.md``: event names and
payloads verbatim).
Everything is on the default namespace ``/`` (shared with ``analytics:*``), which requires a JWT
(``auth.token``, ``?token=`` or ``Authorization: Bearer``); without one the connection is refused
with ``connect_error`` ("Authentication failed: ...").

Dashboards
----------
* ``subscribe:guild`` / ``unsubscribe:guild`` (guild id) join/leave the guild's room:
  ``message:new``, ``presence:update``, ``role:change``, ``user:join`` (the seed's payloads, one
  per stored event of that kind) and ``alert:multiClient``.
* ``subscribe:analytics`` / ``unsubscribe:analytics`` (guild id) join/leave the guild's analytics
  room: ``analytics:update`` ``{guildId, data: {ghosts, lurkers, channelDiversity, timestamp},
  timestamp}``, once right after subscribing (the current snapshot, to that socket only), then at
  most once per ``guild_analytics_interval_seconds`` per guild and only when the analytics changed
  (leading edge: the first change after a quiet interval is published at once; later changes at the
  end of the interval).
* Authorisation: a user (or bot) may subscribe to the guilds of its token's ``guilds`` claim; an
  admin to any guild. A refused or malformed subscription gets ``error`` ``{message}`` and nothing
  else: no room is joined, no data is sent. The messages: "Invalid guild id: a guild id is 1-64
  letters, digits, '_' or '-'", "Not authorised for guild <id>", "Subscription limit reached: at
  most <n> guilds per connection", "Authentication failed: token expired".
* A socket may watch at most ``guild_max_subscriptions_per_socket`` distinct guilds (guild and
  analytics subscriptions of one guild count once). Subscribing twice is harmless (a repeated
  ``subscribe:analytics`` sends the snapshot again); unsubscribing from a guild not subscribed is a
  no-op.
* Acks are optional; when a client asks for one, subscriptions answer ``{success: true, guildId}``
  or ``{success: false, message}`` (the ``error`` event is sent too).

Bots (ingest)
-------------
* ``guild:event`` over the socket: ``emit("guild:event", guildId, eventOrEvents, ack)``; or
  ``POST /api/guilds/<guildId>/events`` with ``Authorization: Bearer <JWT>``. The body is one
  event, an array of events, or ``{"events": [...]}`` (at most ``guild_max_batch_events``);
  the event kinds and their fields are in :mod:`actors.guild.model`. A batch is all or nothing.
* Only role ``bot`` (for guilds of its ``guilds`` claim) or ``admin`` (any guild) may post.
* The answer comes after the events are committed (group commit) and broadcast: ack / 200
  ``{success: true, guildId, accepted, stored, duplicates}``. Refusals:
  ack ``{success: false, message}`` (or an ``error`` event when no ack was asked for); REST 400
  (invalid JSON, guild id or event: the message names the field, e.g. ``$[3].channelId``),
  401 (token), 403 (role or guild), 413 (body over ``guild_max_body_bytes``), 429 (over
  ``guild_events_per_bot_per_second``, counted per event, with ``Retry-After``), 503 (the store
  could not commit).
* ``typing`` and ``reaction`` events feed the analytics only (the seed has no live event for them).
* ``timestamp`` (optional, ISO 8601) is when the event happened; the live payloads carry it, and
  the window counts by it. Absent: the server's clock. An event older than the window is stored
  and broadcast but not counted; one more than ``guild_max_future_seconds`` ahead is refused.
* An event ``id`` makes it idempotent per guild: a repeated id is acknowledged (``duplicates``)
  but not stored, broadcast or counted again.
* ``alert:multiClient`` ``{userId, username, platforms, timestamp}`` goes to the guild room when a
  presence event changes that user's platform set (status ``offline`` = no platforms) to a set of
  two or more platforms, i.e. once per change of that set; ``platforms`` is sorted. The sets
  survive a restart (rebuilt from each user's latest stored presence).

Analytics (over the last ``guild_analytics_window_days``, by event time)
------------------------------------------------------------------------
* ``ghosts`` ``[{userId, username, ghostScore}]``: users with at least
  ``guild_ghost_min_typing_events`` (5) typing events; ``ghostScore = typing / (messages + 1)``.
* ``lurkers`` ``[{userId, username, lurkerScore, channelCount}]``: users with at least one presence
  update or reaction; ``lurkerScore = (presence_updates + reactions) / (messages + 1)``;
  ``channelCount`` = distinct channels the user was seen in (any event naming a channel: message,
  typing, reaction, presence with ``channelId``).
* ``channelDiversity`` ``[{userId, username, channelCount}]``: users with at least one message;
  ``channelCount`` = distinct channels they posted in.
* Each list: highest score (count) first, ties by ``userId``; top ``guild_analytics_top_n`` (20).
  Scores are rounded to 2 decimals; ``username`` is the one on the user's newest event in the
  window; timestamps are ISO 8601 UTC with milliseconds.
* Events leaving the window change the analytics too (published under the same throttle). All of
  it is rebuilt from the store when a guild is first used after a start, so analytics after a
  restart equal analytics before.
* One aggregator actor per guild (created on first use, supervised, kept while the server runs);
  its memory is a small tuple per event in the window plus counters per active user.

In a cluster (``redis_url``) every node follows the one guild log (:mod:`actors.guild.follow`):
an ingest on any node is counted by every node's aggregator of that guild, in ``seq`` order, and
each node sends the live events and ``alert:multiClient`` to its own members; the throttle of
``analytics:update`` is claimed in Redis per guild, so it holds for the cluster (one update per
interval per guild, whichever node publishes it, to every node's subscribers).

Settings: ``guild_analytics_interval_seconds`` (30), ``guild_analytics_window_days`` (7),
``guild_analytics_top_n`` (20), ``guild_ghost_min_typing_events`` (5),
``guild_max_subscriptions_per_socket`` (50), ``guild_events_per_bot_per_second`` (500, 0: off),
``guild_max_batch_events`` (500), ``guild_max_body_bytes`` (1 MiB), ``guild_max_string_chars``
(256), ``guild_max_future_seconds`` (300).
"""

from __future__ import annotations

import logging

import trio

from actors.cluster.claims import Claims
from actors.guild import persist
from actors.guild.aggregator import GuildAggregator, GuildConfig, Guilds, IngestResult
from actors.guild.follow import CHANNEL, GuildLog
from actors.guild.model import GuildEvent, GuildEventError, Limits, parse_events
from actors.identity import Identity
from actors.ratelimit import SlidingWindowLimiter
from web.apps.guild import events, rest
from web.apps.guild.schemas import IngestAnswer
from web.platform.http import ApiError
from web.platform.runtime import Runtime
from web.sockets.namespace import Namespace

log = logging.getLogger("switchboard.guild")


class GuildMonitor:
    """The guild application: built by the composition root, started with the server."""

    def __init__(self, runtime: Runtime) -> None:
        s = runtime.settings
        self.runtime = runtime
        self.settings = s
        self.clock = runtime.clock
        self.store = runtime.store
        self.limits = Limits(
            max_batch_events=s.guild_max_batch_events,
            max_string_chars=s.guild_max_string_chars,
            max_future_seconds=s.guild_max_future_seconds,
        )
        self.config = GuildConfig(
            window_seconds=s.guild_analytics_window_days * 86400.0,
            interval_seconds=s.guild_analytics_interval_seconds,
            top_n=s.guild_analytics_top_n,
            ghost_min_typing=s.guild_ghost_min_typing_events,
        )
        self.limiter = runtime.add_rate_limiter(
            "guild events per bot",
            SlidingWindowLimiter(s.guild_events_per_bot_per_second, 1.0, now=self.clock.now),
        )
        self.ns: Namespace = runtime.namespace("/")
        self.guilds = Guilds(self._make_guild)
        # a cluster: every node follows the guild log; the analytics throttle is claimed
        self.claims: Claims | None = None
        self.guild_log: GuildLog | None = None
        signals = runtime.signals
        if signals is not None:
            self.claims = Claims(signals)
            self.guild_log = GuildLog(
                self.store,
                self.guilds,
                lambda seq: signals.publish(CHANNEL, b"%d" % seq),
                poll_seconds=s.cluster_log_poll_seconds,
            )
            signals.on(CHANNEL, self._hinted)
        self.store.add_schema(*persist.SCHEMA)
        events.register(self)
        runtime.add_blueprint(rest.blueprint(self))
        runtime.on_start(self.start)
        runtime.housekeeping.add_async("guild event retention", self._expire_events)

    def _make_guild(self, guild_id: str) -> GuildAggregator:
        return GuildAggregator(
            guild_id,
            store=self.store,
            clock=self.clock,
            publisher=self.ns,
            config=self.config,
            follow_log=self.guild_log is not None,
            throttle=self.claims,
        )

    async def start(self, nursery: trio.Nursery) -> None:
        self.guilds.start(nursery)
        if self.guild_log is not None:
            await self.guild_log.start(nursery)

    async def _hinted(self, payload: bytes) -> None:
        if self.guild_log is not None:
            self.guild_log.hinted()

    async def _expire_events(self) -> int:
        """Retention: guild events older than ``event_retention_days`` (longer than the
        analytics window, so the analytics never miss them)."""
        days = self.settings.event_retention_days
        if not days:
            return 0
        removed: int = await self.store.write(persist.expire(self.clock.now() - days * 86400))
        return removed

    @staticmethod
    def may_watch(identity: Identity, guild_id: str) -> bool:
        """A user or bot watches the guilds of its token's ``guilds`` claim; an admin any."""
        return identity.is_admin or guild_id in identity.guilds

    # --- ingest (both doors: ``guild:event`` and ``POST /api/guilds/<guildId>/events``) --------
    async def ingest(self, identity: Identity, guild_id: str, body: object) -> IngestAnswer:
        """Check, count against the bot's budget, commit; the answer once committed."""
        if identity.role not in ("bot", "admin"):
            raise ApiError(403, "Only bots may post guild events")
        if not self.may_watch(identity, guild_id):
            raise ApiError(403, f"Not authorised for guild {guild_id}")
        try:
            accepted = parse_events(body, guild_id, self.clock.now(), self.limits)
        except GuildEventError as err:
            raise ApiError(400, str(err)) from None
        self._take(identity.user_id, accepted)
        try:
            if self.guild_log is not None:
                result: IngestResult = await self.guild_log.ingest(accepted)
            else:
                result = await self.guilds.ingest(guild_id, accepted)
        except Exception as exc:
            log.error("guild %s: ingest failed: %s", guild_id, exc)
            raise ApiError(503, "Events could not be stored; please retry") from None
        return IngestAnswer(
            success=True,
            guild_id=guild_id,
            accepted=result.accepted,
            stored=result.stored,
            duplicates=result.duplicates,
        )

    def _take(self, bot: str, accepted: list[GuildEvent]) -> None:
        """Count ``accepted`` against the bot's per-second budget (all or none)."""
        limiter = self.limiter
        if not limiter.enabled:
            return
        if limiter.remaining(bot) < len(accepted):
            limiter.refused += 1
            wait = limiter.retry_after(bot) if len(accepted) <= limiter.limit else 1.0
            raise ApiError(
                429,
                f"Rate limit exceeded: at most {limiter.limit} guild events per second per bot",
                headers={"Retry-After": str(max(1, round(wait)))},
            )
        for _ in accepted:
            limiter.allow(bot)
