"""The demo's guild: a bot (``demo-bot``) reporting message, typing, presence, reaction, role and
join events for the guild ``demo-guild`` with ``POST /api/guilds/demo-guild/events``, a batch of
one to three every 1 to 2.5 s."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

import msgspec
import trio

from web.apps.demo.clients import DemoHTTPError, Server
from web.apps.demo.marks import DEMO_BOT, DEMO_GUILD

log = logging.getLogger("switchboard.demo")

GUILD_MEMBERS = [
    ("u100", "nightowl"), ("u101", "pixel"), ("u102", "quietfox"), ("u103", "marble"),
    ("u104", "tinkerer"), ("u105", "lurkr"), ("u106", "echo"), ("u107", "sprout"),
]  # fmt: skip
GUILD_CHANNELS = [("c1", "general"), ("c2", "random"), ("c3", "dev"), ("c4", "support")]
GUILD_ROLES = ["member", "helper", "moderator", "contributor"]
PLATFORMS = ["desktop", "mobile", "web"]
KINDS = ["message", "typing", "presence", "reaction", "role", "join"]
KIND_WEIGHTS = [8, 4, 4, 3, 1, 1]


# --- what the bot posts --------------------------------------------------------------------------
class _Event(msgspec.Struct, kw_only=True, rename="camel"):
    user_id: str
    username: str
    kind: str


class InChannel(_Event, kw_only=True):
    """``message`` and ``typing``."""

    channel_id: str
    channel_name: str


class Presence(_Event, kw_only=True):
    status: str
    platforms: list[str]


class Reaction(_Event, kw_only=True):
    channel_id: str
    emoji: str


class Role(_Event, kw_only=True):
    added_roles: list[str]


class Join(_Event, kw_only=True):
    account_age_days: int


BotEvent = InChannel | Presence | Reaction | Role | Join


class Batch(msgspec.Struct):
    events: list[BotEvent]


class DemoGuild:
    """The guild part of the demo."""

    def __init__(self, server: Server, token: Callable[[str], str], rng: random.Random) -> None:
        self.server = server
        self.token = token
        self.rng = rng
        self.sent = 0

    async def run(self) -> str | None:
        path = f"/api/guilds/{DEMO_GUILD}/events"
        rng = self.rng
        while True:
            batch = [self.event() for _ in range(rng.randint(1, 3))]
            status, answer = await self.server.request(
                "POST", path, Batch(batch), self.token(DEMO_BOT)
            )
            if status == 404 and self.sent == 0:
                log.info("demo: no guild application on this server; the demo guild is skipped")
                return "unavailable"
            if status >= 400:
                raise DemoHTTPError(status, answer)
            self.sent += len(batch)
            await trio.sleep(rng.uniform(1.0, 2.5))

    def event(self) -> BotEvent:
        """One event of a random kind by a random member (a newcomer for ``join``)."""
        rng = self.rng
        user_id, username = rng.choice(GUILD_MEMBERS)
        channel_id, channel_name = rng.choice(GUILD_CHANNELS)
        kind = rng.choices(KINDS, KIND_WEIGHTS)[0]
        if kind in ("message", "typing"):
            return InChannel(
                user_id=user_id,
                username=username,
                kind=kind,
                channel_id=channel_id,
                channel_name=channel_name,
            )
        if kind == "presence":
            status = rng.choice(["online", "online", "idle", "dnd", "offline"])
            platforms = [] if status == "offline" else rng.sample(PLATFORMS, rng.randint(1, 2))
            return Presence(
                user_id=user_id, username=username, kind=kind, status=status, platforms=platforms
            )
        if kind == "reaction":
            return Reaction(
                user_id=user_id, username=username, kind=kind, channel_id=channel_id, emoji="👍"
            )
        if kind == "role":
            roles = [rng.choice(GUILD_ROLES)]
            return Role(user_id=user_id, username=username, kind=kind, added_roles=roles)
        newcomer = f"u{rng.randint(200, 999)}"
        return Join(
            user_id=newcomer,
            username=f"newbie{newcomer[1:]}",
            kind="join",
            account_age_days=rng.randint(0, 2000),
        )
