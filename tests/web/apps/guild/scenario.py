"""The scripted guild stream the end-to-end tests post, and exactly what it must produce."""

from __future__ import annotations

from typing import Any

from tests.support.clients.guild import join, message, presence, reaction, role, typing
from tests.support.stamps import iso


def first_batch(t: float) -> list[dict[str, Any]]:
    """Alice types 6x and posts once; Bob types 5x; Carol types 4x (not a ghost); Dave is online
    and reacts in two channels; Erin posts in three channels; Frank goes online on desktop+mobile,
    repeats the same set (no second alert), then adds web (alert); Bob gains a role; Gina joins."""
    events: list[dict[str, Any]] = []
    events += [typing("u1", "alice", "c1", t + i) for i in range(6)]
    events.append(message("u1", "alice", "c1", "general", t + 10))
    events += [typing("u2", "bob", "c2", t + 11 + i) for i in range(5)]
    events += [typing("u3", "carol", "c1", t + 20 + i) for i in range(4)]
    events.append(presence("u4", "dave", "online", ["desktop"], t + 30))
    events.append(reaction("u4", "dave", "c1", t + 31))
    events.append(reaction("u4", "dave", "c2", t + 32))
    events.append(message("u5", "erin", "c1", "general", t + 40))
    events.append(message("u5", "erin", "c2", "random", t + 41))
    events.append(message("u5", "erin", "c3", "memes", t + 42))
    events.append(presence("u6", "frank", "online", ["desktop", "mobile"], t + 50))
    events.append(presence("u6", "frank", "idle", ["mobile", "desktop"], t + 51))
    events.append(presence("u6", "frank", "online", ["web", "desktop", "mobile"], t + 52))
    events.append(role("u2", "bob", ["Moderator"], t + 60))
    events.append(join("u7", "gina", 3, t + 70))
    return events


def first_live(t: float) -> list[tuple[str, Any]]:
    """The guild-room events the first batch must produce, in order, with exact payloads."""

    def msg(user: str, name: str, channel: str, channel_name: str, at: float) -> Any:
        return (
            "message:new",
            {
                "userId": user,
                "username": name,
                "channelId": channel,
                "channelName": channel_name,
                "timestamp": iso(at),
            },
        )

    def pres(user: str, name: str, status: str, at: float) -> Any:
        return (
            "presence:update",
            {"userId": user, "username": name, "status": status, "timestamp": iso(at)},
        )

    def alert(platforms: list[str], at: float) -> Any:
        return (
            "alert:multiClient",
            {"userId": "u6", "username": "frank", "platforms": platforms, "timestamp": iso(at)},
        )

    return [
        msg("u1", "alice", "c1", "general", t + 10),
        pres("u4", "dave", "online", t + 30),
        msg("u5", "erin", "c1", "general", t + 40),
        msg("u5", "erin", "c2", "random", t + 41),
        msg("u5", "erin", "c3", "memes", t + 42),
        pres("u6", "frank", "online", t + 50),
        alert(["desktop", "mobile"], t + 50),
        pres("u6", "frank", "idle", t + 51),
        pres("u6", "frank", "online", t + 52),
        alert(["desktop", "mobile", "web"], t + 52),
        (
            "role:change",
            {
                "userId": "u2",
                "username": "bob",
                "addedRoles": ["Moderator"],
                "timestamp": iso(t + 60),
            },
        ),
        (
            "user:join",
            {"userId": "u7", "username": "gina", "accountAgeDays": 3, "timestamp": iso(t + 70)},
        ),
    ]


def ghost(user: str, name: str, score: float) -> dict[str, Any]:
    return {"userId": user, "username": name, "ghostScore": score}


def lurker(user: str, name: str, score: float, channels: int) -> dict[str, Any]:
    return {"userId": user, "username": name, "lurkerScore": score, "channelCount": channels}


def diverse(user: str, name: str, channels: int) -> dict[str, Any]:
    return {"userId": user, "username": name, "channelCount": channels}


EMPTY: dict[str, Any] = {"ghosts": [], "lurkers": [], "channelDiversity": []}

# after the first batch:
#   ghosts: bob 5/(0+1) = 5.0, alice 6/(1+1) = 3.0 (carol: 4 typing events < 5)
#   lurkers: dave (1 presence + 2 reactions)/(0+1) = 3.0 seen in c1, c2; frank 3 presence = 3.0,
#            seen in no channel (tie on score: by userId)
#   channelDiversity: erin 3 channels, alice 1
AFTER_FIRST: dict[str, Any] = {
    "ghosts": [ghost("u2", "bob", 5.0), ghost("u1", "alice", 3.0)],
    "lurkers": [lurker("u4", "dave", 3.0, 2), lurker("u6", "frank", 3.0, 0)],
    "channelDiversity": [diverse("u5", "erin", 3), diverse("u1", "alice", 1)],
}


def second_batch(t: float) -> list[dict[str, Any]]:
    """Bob posts once in c2."""
    return [message("u2", "bob", "c2", "random", t + 80)]


# bob: 5/(1+1) = 2.5; bob now posted in 1 channel (tie with alice: by userId)
AFTER_SECOND: dict[str, Any] = {
    "ghosts": [ghost("u1", "alice", 3.0), ghost("u2", "bob", 2.5)],
    "lurkers": AFTER_FIRST["lurkers"],
    "channelDiversity": [
        diverse("u5", "erin", 3),
        diverse("u1", "alice", 1),
        diverse("u2", "bob", 1),
    ],
}


def third_batch(t: float) -> list[dict[str, Any]]:
    """Nothing that changes the analytics: a role and a join."""
    return [role("u5", "erin", ["Helper", "Artist"], t + 90), join("u8", "hank", 400, t + 91)]


def fourth_batch(t: float) -> list[dict[str, Any]]:
    """Carol types a fifth time: she becomes a ghost (5/(0+1) = 5.0)."""
    return [typing("u3", "carol", "c1", t + 100)]


AFTER_FOURTH: dict[str, Any] = {
    "ghosts": [ghost("u3", "carol", 5.0), ghost("u1", "alice", 3.0), ghost("u2", "bob", 2.5)],
    "lurkers": AFTER_FIRST["lurkers"],
    "channelDiversity": AFTER_SECOND["channelDiversity"],
}


def data_of(update: dict[str, Any]) -> dict[str, Any]:
    """The three lists of an ``analytics:update`` payload (stamps checked separately)."""
    data = update["data"]
    return {k: data[k] for k in ("ghosts", "lurkers", "channelDiversity")}
