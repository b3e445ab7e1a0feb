"""Who may connect, subscribe and post, what a refusal says, and the limits (subscriptions per
socket, events per bot per second, batch and body size)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import socketio

from tests.support.clients.guild import Client, connected, message, post_events, start_server, token
from tests.support.clients.scenarios import close_all, run

GUILD = "400000000000000004"
OTHER = "500000000000000005"
BAD_ID = "Invalid guild id: a guild id is 1-64 letters, digits, '_' or '-'"


@pytest.fixture(scope="module")
def server(module_server_factory: Callable[..., Any]) -> Any:
    return start_server(
        module_server_factory,
        "--guild-max-subscriptions-per-socket",
        "3",
        "--guild-events-per-bot-per-second",
        "50",
        "--guild-max-batch-events",
        "40",
        "--guild-max-body-bytes",
        "20000",
    )


def one(user: str = "u1", **extra: Any) -> dict[str, Any]:
    event = message(user, user, "c1", "general", 0)
    del event["timestamp"]
    return {**event, **extra}


def test_connection_needs_a_valid_token(server: Any) -> None:
    async def scenario() -> None:
        for tok, reason in [
            (None, "Authentication failed: no token provided"),
            ("not-a-jwt", "Authentication failed: invalid token"),
            (token("old", guilds=[GUILD], ttl=-10), "Authentication failed: token expired"),
        ]:
            client = Client(server, tok)
            with pytest.raises(socketio.exceptions.ConnectionError):
                await client.connect()
            assert client.connect_errors == [{"message": reason}], tok

    run(scenario)


def test_malformed_and_refused_subscriptions_get_error_only(server: Any) -> None:
    async def scenario() -> None:
        (user,) = await connected(server, token("ursula", guilds=[GUILD]))
        for event in ("subscribe:guild", "subscribe:analytics"):
            for bad in (123, "", "has space", "x" * 65, None, {"guildId": GUILD}):
                answer = await user.call(event, bad)
                assert answer == {"success": False, "message": BAD_ID}, (event, bad)
            answer = await user.call(event, OTHER)
            assert answer == {"success": False, "message": f"Not authorised for guild {OTHER}"}
        assert user.log == [("error", {"message": BAD_ID})] * 6 + [
            ("error", {"message": f"Not authorised for guild {OTHER}"})
        ] + [("error", {"message": BAD_ID})] * 6 + [
            ("error", {"message": f"Not authorised for guild {OTHER}"})
        ]
        # nothing was joined: the guild's events do not reach this user
        bot = token("bot-a", role="bot", guilds=[OTHER])
        assert post_events(server, OTHER, one(), bot).status_code == 200
        assert (await user.call("unsubscribe:guild", "bad id")) == {
            "success": False,
            "message": BAD_ID,
        }
        assert [name for name, _ in user.log].count("message:new") == 0
        await close_all(user)

    run(scenario)


def test_admin_watches_any_guild_up_to_the_subscription_limit(server: Any) -> None:
    async def scenario() -> None:
        (admin,) = await connected(server, token("root", role="admin"))
        for guild in ("a1", "a2"):
            assert (await admin.call("subscribe:guild", guild))["success"]
        # the analytics of a guild already watched do not count again
        assert (await admin.call("subscribe:analytics", "a2"))["success"]
        assert (await admin.call("subscribe:analytics", "a3"))["success"]
        limit = "Subscription limit reached: at most 3 guilds per connection"
        assert await admin.call("subscribe:guild", "a4") == {"success": False, "message": limit}
        assert admin.payloads("error") == [{"message": limit}]
        # subscribing again to a watched guild is fine; leaving one makes room
        assert (await admin.call("subscribe:guild", "a1"))["success"]
        assert (await admin.call("unsubscribe:guild", "a1"))["success"]
        assert (await admin.call("subscribe:guild", "a4"))["success"]
        await close_all(admin)

    run(scenario)


def test_rest_ingest_refusals(server: Any) -> None:
    bot = token("bot-b", role="bot", guilds=[GUILD])
    url = f"{server.url}/api/guilds/{GUILD}/events"

    def refused(answer: httpx.Response, status: int, message: str) -> None:
        assert answer.status_code == status, answer.text
        assert answer.json() == {"success": False, "message": message}

    refused(
        post_events(server, GUILD, one(), None), 401, "Authentication failed: no token provided"
    )
    refused(
        post_events(server, GUILD, one(), "garbage"), 401, "Authentication failed: invalid token"
    )
    refused(
        post_events(server, GUILD, one(), token("ursula", guilds=[GUILD])),
        403,
        "Only bots may post guild events",
    )
    refused(post_events(server, OTHER, one(), bot), 403, f"Not authorised for guild {OTHER}")
    refused(post_events(server, "bad.id", one(), bot), 400, BAD_ID)
    answer = httpx.post(url, content=b"{nope", headers={"Authorization": f"Bearer {bot}"})
    assert answer.status_code == 400 and answer.json()["message"].startswith("Invalid JSON")
    refused(
        post_events(server, GUILD, [one(), one(channelName=7)], bot),
        400,
        "Invalid guild event: Expected `str`, got `int` - at `$[1].channelName`",
    )
    refused(
        post_events(server, GUILD, {"kind": "shout", "userId": "u", "username": "u"}, bot),
        400,
        "Invalid guild event: Invalid value 'shout' - at `$.kind` "
        "(kind is one of message, typing, presence, reaction, role, join)",
    )
    refused(
        post_events(server, GUILD, one(timestamp="2999-01-01T00:00:00Z"), bot),
        400,
        "Invalid guild event: $.timestamp is more than 300 seconds in the future",
    )
    refused(
        post_events(server, GUILD, one(username="n" * 257), bot),
        400,
        "Invalid guild event: $.username is longer than 256 characters",
    )
    refused(
        post_events(server, GUILD, [one()] * 41, bot),
        400,
        "Too many events: at most 40 in one request",
    )
    refused(post_events(server, GUILD, [], bot), 400, "Invalid guild event: no events given")
    refused(
        post_events(server, GUILD, [one(username="n" * 600)] * 39, bot),
        413,
        "Request body too large: at most 20000 bytes",
    )
    # an admin may post to any guild
    answer = post_events(server, OTHER, one(), token("root", role="admin"))
    assert answer.status_code == 200 and answer.json()["stored"] == 1


def test_socket_ingest_refusals(server: Any) -> None:
    async def scenario() -> None:
        user, bot = await connected(
            server, token("ursula", guilds=[GUILD]), token("bot-c", role="bot", guilds=[GUILD])
        )
        assert await user.call("guild:event", GUILD, one()) == {
            "success": False,
            "message": "Only bots may post guild events",
        }
        assert await bot.call("guild:event", OTHER, one()) == {
            "success": False,
            "message": f"Not authorised for guild {OTHER}",
        }
        assert await bot.call(
            "guild:event", GUILD, {"kind": "join", "userId": "u", "username": "u"}
        ) == {
            "success": False,
            "message": "Invalid guild event: Object missing required field `accountAgeDays`",
        }
        # without an ack, a refusal comes as `error`
        await bot.emit("guild:event", "bad id", one())
        ((_, payload),) = await bot.wait_count(1, "error")
        assert payload == {"message": BAD_ID}
        await close_all(user, bot)

    run(scenario)


def test_events_per_bot_per_second(server: Any) -> None:
    # The window is one second of real time (the test clock only moves forward), so the posts
    # that fill it must land within it: on a machine too slow for that, try a fresh bot.
    for attempt in range(3):
        bot = token(f"bot-d{attempt}", role="bot", guilds=[GUILD])
        started = time.monotonic()
        assert post_events(server, GUILD, [one()] * 40, bot).status_code == 200
        assert post_events(server, GUILD, [one()] * 10, bot).status_code == 200
        over = post_events(server, GUILD, [one()], bot)
        if time.monotonic() - started < 0.9:
            break
    assert over.status_code == 429
    assert over.json() == {
        "success": False,
        "message": "Rate limit exceeded: at most 50 guild events per second per bot",
    }
    assert over.headers["Retry-After"] == "1"
    # another bot has its own budget
    other = token("bot-e", role="bot", guilds=[GUILD])
    assert post_events(server, GUILD, [one()], other).status_code == 200
    server.advance(1.0)
    assert post_events(server, GUILD, [one()] * 40, bot).status_code == 200
