"""Unit tests of the guild event model, the analytics window and multi-client tracking, plus the
aggregator actor in-process (real Store, settable clock, a recording publisher)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio

from actors.clock import Clock
from actors.guild import persist
from actors.guild.aggregator import GetSnapshot, GuildAggregator, GuildConfig, Guilds
from actors.guild.analytics import Diversity, Ghost, Lurker, MultiClient, Window
from actors.guild.model import GuildEvent, GuildEventError, Limits, parse_events
from actors.runtime import supervise
from actors.store import Store
from tests.support.waiting import wait_until

LIMITS = Limits(max_batch_events=10, max_string_chars=20, max_future_seconds=60)
NOW = 1_800_000_000.0


def ev(kind: str, user: str, at: float, seq: int, **kw: Any) -> GuildEvent:
    return GuildEvent(
        guild_id="g", kind=kind, user_id=user, username=kw.pop("name", user), at=at, seq=seq, **kw
    )


def test_parse_one_event_a_list_or_an_envelope() -> None:
    raw = {
        "kind": "presence",
        "userId": "u",
        "username": "n",
        "status": "offline",
        "platforms": ["web"],
        "timestamp": "2027-01-15T07:00:00",
    }
    (event,) = parse_events(raw, "g", NOW, LIMITS)
    assert event.platforms == ()  # offline: no platforms
    assert event.at == NOW - 3600  # no offset means UTC
    assert parse_events([raw, raw], "g", NOW, LIMITS) == [event, event]
    assert parse_events({"events": [raw]}, "g", NOW, LIMITS) == [event]
    (stamped,) = parse_events({**raw, "timestamp": None}, "g", NOW, LIMITS)
    assert stamped.at == NOW


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"kind": "typing", "userId": "u", "username": "n"},
            "Invalid guild event: Object missing required field `channelId`",
        ),
        (
            {"kind": "role", "userId": "u", "username": "n", "addedRoles": []},
            "Invalid guild event: Expected `array` of length >= 1 - at `$.addedRoles`",
        ),
        (
            {"kind": "presence", "userId": "u", "username": "n", "status": "away"},
            "Invalid guild event: Invalid enum value 'away' - at `$.status`",
        ),
        (
            {
                "kind": "presence",
                "userId": "u",
                "username": "n",
                "status": "online",
                "platforms": ["Desk Top"],
            },
            "Invalid guild event: Expected `str` matching regex '^[a-z][a-z0-9_-]{0,31}$' - at "
            "`$.platforms[0]`",
        ),
        (
            [{"kind": "join", "userId": "u", "username": "n", "accountAgeDays": 1.5}],
            "Invalid guild event: Expected `int`, got `float` - at `$[0].accountAgeDays`",
        ),
        (
            {
                "kind": "join",
                "userId": "u",
                "username": "n",
                "accountAgeDays": 1,
                "timestamp": "yesterday",
            },
            "Invalid guild event: Invalid RFC3339 encoded datetime - at `$.timestamp`",
        ),
        (
            [{"kind": "role", "userId": "u", "username": "n", "addedRoles": ["r" * 21]}],
            "Invalid guild event: $[0].addedRoles is longer than 20 characters",
        ),
        ("message", "Invalid guild event: Expected `object | array`, got `str`"),
    ],
)
def test_invalid_events_say_what_and_where(raw: Any, message: str) -> None:
    with pytest.raises(GuildEventError) as err:
        parse_events(raw, "g", NOW, LIMITS)
    assert str(err.value) == message


def test_window_counts_and_ranks_exactly() -> None:
    w = Window(100.0, top_n=2, ghost_min_typing=2)
    seq = iter(range(1, 1000))
    for user, typing_events, messages in (("a", 4, 1), ("b", 2, 0), ("c", 1, 0), ("d", 3, 0)):
        for i in range(typing_events):
            w.add(ev("typing", user, NOW - 50 + i, next(seq), channel_id="t"), NOW)
        for i in range(messages):
            w.add(
                ev("message", user, NOW - 40, next(seq), channel_id=f"m{i}", channel_name="x"), NOW
            )
    w.add(ev("presence", "e", NOW - 30, next(seq), status="online", channel_id="v"), NOW)
    w.add(ev("reaction", "e", NOW - 29, next(seq), channel_id="t"), NOW)
    w.add(ev("join", "a", NOW - 1, next(seq), name="A2", account_age_days=1), NOW)
    snap = w.snapshot()
    # d 3/1 = 3.0, a 4/2 = 2.0, b 2/1 = 2.0 (tie: a before b; cut to 2); c has too few
    assert snap.ghosts == (Ghost("d", "d", 3.0), Ghost("a", "A2", 2.0))
    assert snap.lurkers == (Lurker("e", "e", 2.0, 2),)
    assert snap.channel_diversity == (Diversity("a", "A2", 1),)
    assert w.next_expiry() == NOW - 50 + 100


def test_window_expiry_equals_a_rebuild() -> None:
    rng = random.Random(7)
    kinds = ("message", "typing", "presence", "reaction", "role", "join")
    events = [
        ev(
            rng.choice(kinds),
            f"u{rng.randrange(12)}",
            NOW + rng.uniform(0, 500),
            i,
            channel_id=rng.choice([None, "c1", "c2", "c3"]),
            name=f"n{i}",
        )
        for i in range(1, 800)
    ]
    live = Window(200.0, top_n=5, ghost_min_typing=3)
    for step, event in enumerate(sorted(events, key=lambda e: e.seq)):
        now = NOW + step * 0.7
        live.expire(now)
        live.add(event, now)
    for now in (NOW + 560.0, NOW + 640.0, NOW + 720.0):
        live.expire(now)
        rebuilt = Window(200.0, top_n=5, ghost_min_typing=3)
        for event in sorted(events, key=lambda e: (e.at, e.seq)):
            rebuilt.add(event, now)
        assert live.snapshot() == rebuilt.snapshot()
        assert len(live) == len(rebuilt)


def test_multi_client_alerts_once_per_change_of_the_set() -> None:
    mc = MultiClient()

    def seen(status: str, *platforms: str) -> bool:
        plat = () if status == "offline" else tuple(sorted(platforms))
        return mc.observe(ev("presence", "u", NOW, 1, status=status, platforms=plat))

    assert [
        seen("online", "desktop"),
        seen("online", "desktop", "mobile"),
        seen("idle", "mobile", "desktop"),
        seen("online", "desktop", "mobile", "web"),
        seen("offline"),
        seen("online", "web", "mobile"),
    ] == [False, True, False, True, False, True]


class Recorder:
    """A publisher that keeps what it was given, as the JSON a client would decode."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Any]] = []

    async def emit(self, event: str, *args: Any, to: str) -> None:
        self.sent.append((to, event, msgspec.to_builtins(args[0])))


async def test_aggregator_throttles_on_the_clock_and_rebuilds(tmp_path: Path) -> None:
    clock = Clock()
    store = Store(tmp_path / "db.sqlite3", schema=list(persist.SCHEMA))
    publisher = Recorder()
    config = GuildConfig(window_seconds=1000.0, interval_seconds=30.0, ghost_min_typing=1)

    def updates() -> list[Any]:
        return [p["data"]["ghosts"] for to, e, p in publisher.sent if e == "analytics:update"]

    async with trio.open_nursery() as nursery:
        nursery.start_soon(supervise, store)
        guilds = Guilds(
            lambda g: GuildAggregator(
                g, store=store, clock=clock, publisher=publisher, config=config
            )
        )
        guilds.start(nursery)
        now = clock.now()

        def typing(user: str) -> GuildEvent:
            return GuildEvent(
                guild_id="g", kind="typing", user_id=user, username=user, at=now, channel_id="c"
            )

        result = await guilds.ingest("g", [typing("a")])
        assert (result.accepted, result.stored) == (1, 1)
        await wait_until(lambda: len(updates()) == 1)
        await guilds.ingest("g", [typing("b")])
        clock.advance(29.0)
        assert len((await guilds.snapshot("g")).ghosts) == 2
        assert len(updates()) == 1  # held back by the throttle
        clock.advance(1.0)
        await wait_until(lambda: len(updates()) == 2)
        assert [g["userId"] for g in updates()[1]] == ["a", "b"]
        clock.advance(1000.0)  # both leave the window
        await wait_until(lambda: len(updates()) == 3)
        assert list(updates()[2]) == []
        # a fresh aggregator on the same store rebuilds the same state
        clock.offset_seconds -= 1000.0
        fresh = GuildAggregator("g", store=store, clock=clock, publisher=Recorder(), config=config)
        nursery.start_soon(supervise, fresh)
        snapshot = await fresh.ask(GetSnapshot)
        assert [g.user_id for g in snapshot.ghosts] == ["a", "b"]
        nursery.cancel_scope.cancel()
