"""The Admin UI's namespace against a real server: sign-in, what the UI is sent, live updates
and its commands, with python-socketio clients (the UI's own client is socket.io-client; the
browser test drives it)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.clients.scenarios import run
from tests.support.processes import REPO_ROOT, ServerProcess
from web.apps.admin_ui.login import FORBIDDEN, INVALID, TOO_MANY

from .helpers import PASSWORD, Recorder, admin, admin_server, token, user


@pytest.fixture(scope="module")
def server(module_server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    return admin_server(module_server_factory)


def test_an_admin_token_signs_in_and_gets_config_and_every_socket(server: ServerProcess) -> None:
    async def scenario() -> None:
        alice = await user(server.url, "alice")
        bob = await user(server.url, "bob", "/chat")
        ops = await admin(server.url)
        (config,) = await ops.next("config")
        assert config == {
            "supportedFeatures": [
                "EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT",
                "AGGREGATED_EVENTS", "ALL_EVENTS",
            ]
        }  # fmt: skip
        (sockets,) = await ops.next("all_sockets")
        by_id = {s["id"]: s for s in sockets}
        assert by_id[alice.sid]["nsp"] == "/" and by_id[bob.sid]["nsp"] == "/chat"
        seen = by_id[alice.sid]
        assert seen["transport"] == "websocket" and len(seen["clientId"]) == 12
        assert seen["rooms"] == [alice.sid]
        assert seen["data"] == {"userId": "alice", "name": "alice", "role": "user"}
        handshake = seen["handshake"]
        assert handshake["address"] == "127.0.0.1"
        assert handshake["headers"]["host"] == f"127.0.0.1:{server.port}"
        assert handshake["query"]["EIO"] == "4" and handshake["query"]["transport"] == "websocket"
        assert isinstance(handshake["issued"], int) and handshake["time"]
        assert ops.queues["session"].empty()  # no form sign-in: no session id to keep
        for client in (alice, bob, ops):
            await client.close()

    run(scenario)


def test_live_updates_connect_join_event_leave_disconnect(server: ServerProcess) -> None:
    async def scenario() -> None:
        ops = await admin(server.url)
        await ops.next("all_sockets")
        carol = await user(server.url, "carol")
        (socket, stamp) = await ops.next_where("socket_connected", lambda a: a[0]["nsp"] == "/")
        assert socket["id"] == carol.sid and socket["data"]["userId"] == "carol"
        assert stamp.endswith("Z") and "T" in stamp
        await carol.emit("analytics:joinDashboard", "ops-room")
        joined = await ops.next_where("room_joined", lambda a: a[2] == carol.sid)
        assert joined[:3] == ("/", "analytics:dashboard:ops-room", carol.sid)
        event = await ops.next_where("event_received", lambda a: a[1] == carol.sid)
        assert event[:3] == ("/", carol.sid, ["analytics:joinDashboard", "ops-room"])
        await carol.emit("analytics:leaveDashboard", "ops-room")
        left = await ops.next_where("room_left", lambda a: a[2] == carol.sid)
        assert left[:3] == ("/", "analytics:dashboard:ops-room", carol.sid)
        sid = carol.sid
        await carol.close()
        gone = await ops.next_where("socket_disconnected", lambda a: a[1] == sid)
        assert gone[:2] == ("/", sid)
        assert gone[2] in ("client namespace disconnect", "transport close")  # the client's race
        await ops.close()

    run(scenario)


def test_server_stats_carry_the_figures_and_traffic(server: ServerProcess) -> None:
    async def scenario() -> None:
        ops = await admin(server.url)
        dave = await user(server.url, "dave", "/chat")

        def counted(args: tuple[Any, ...]) -> bool:
            names = {n["name"]: n["socketsCount"] for n in args[0]["namespaces"]}
            return names.get("/chat", 0) >= 1

        (stats,) = await ops.next_where("server_stats", counted)
        assert stats["serverId"] and stats["hostname"] and stats["pid"] > 0
        assert stats["uptime"] > 0 and stats["clientsCount"] >= 2
        assert stats["pollingClientsCount"] == 0
        assert {"/", "/chat", "/admin"} <= {n["name"] for n in stats["namespaces"]}
        kinds: set[str] = set()
        while not {"packetsIn", "packetsOut", "bytesIn", "bytesOut"} <= kinds:
            (stats,) = await ops.next("server_stats")
            kinds |= {e["type"] for e in stats["aggregatedEvents"]}
            for item in stats["aggregatedEvents"]:
                assert item["count"] > 0 and item["timestamp"] % 1000 == 0
            await dave.emit("room:list", {})  # traffic for the next interval
        await dave.close()
        (stats,) = await ops.next_where(
            "server_stats",
            lambda a: any(e["type"] == "rawDisconnection" for e in a[0]["aggregatedEvents"]),
        )
        assert any(e.get("subType") for e in stats["aggregatedEvents"])  # the close reason
        await ops.close()

    run(scenario)


def test_commands_join_leave_emit_and_disconnect_any_namespace(server: ServerProcess) -> None:
    async def scenario() -> None:
        ops = await admin(server.url)
        frank = await user(server.url, "frank")
        grace = await user(server.url, "grace")
        await ops.emit("join", "/", "vip", frank.sid)
        await ops.next_where("room_joined", lambda a: a[1:3] == ("vip", frank.sid))
        await ops.emit("emit", "/", "vip", "notice", {"text": "hi"}, 2)
        assert await frank.next("notice") == ({"text": "hi"}, 2)
        await ops.emit("emit", "/", None, "everyone", "x")
        assert await grace.next("everyone") == ("x",)
        assert await frank.next("everyone") == ("x",)
        assert grace.queues["notice"].empty()
        await ops.emit("leave", "/", "vip", frank.sid)
        await ops.next_where("room_left", lambda a: a[1:3] == ("vip", frank.sid))
        await ops.emit("join", "/", "all-of-them")  # no filter: the whole namespace
        for who in (frank, grace):
            await ops.next_where("room_joined", lambda a, w=who: a[1:3] == ("all-of-them", w.sid))
        # ignored: a namespace the server does not have, and arguments that do not fit
        await ops.emit("_disconnect", "/nowhere", False, frank.sid)
        await ops.emit("join", 42)
        grace_sid = grace.sid
        await ops.emit("_disconnect", "/", False, grace_sid)
        await ops.next_where("socket_disconnected", lambda a: a[1] == grace_sid)
        await grace.disconnected.wait()
        assert not frank.disconnected.is_set()
        await frank.close()
        await ops.close()

    run(scenario)


def test_the_sign_in_form_hands_out_a_session_that_survives_a_reload(
    server: ServerProcess,
) -> None:
    async def scenario() -> None:
        ops = await admin(server.url, username="ops", password=PASSWORD)
        (session_id,) = await ops.next("session")
        await ops.next("config")
        await ops.close()
        again = await admin(server.url, sessionId=session_id)  # the UI reloading
        await again.next("config")
        assert again.queues["session"].empty()
        await again.close()
        # the session id proves nothing anywhere else
        refused = await Recorder(server.url, "/chat").refused({"token": session_id})
        assert refused == {"message": "Authentication failed: invalid token"}
        # an admin token pasted into the form's password field works too
        pasted = await admin(server.url, username="anyone", password=token("root", "admin"))
        await pasted.next("session")
        await pasted.close()

    run(scenario)


def test_refusals_say_why(server: ServerProcess) -> None:
    async def scenario() -> None:
        refusals = [
            ({"token": token("mallory")}, FORBIDDEN),
            ({"username": "mallory", "password": token("mallory")}, FORBIDDEN),
            ({"username": "ops", "password": "wrong"}, INVALID),
            ({"sessionId": token("root", "admin")}, INVALID),  # a JWT is not a session id
            ({}, INVALID),
            ({"token": "garbage"}, "Authentication failed: invalid token"),
        ]
        for auth, message in refusals:
            answer = await Recorder(server.url, "/admin").refused(auth)
            assert answer == {"message": message}, auth

    run(scenario)


def test_password_attempts_are_limited_per_address(
    server_factory: Callable[..., ServerProcess],
) -> None:
    limited = admin_server(server_factory, "--admin-ui-login-attempts-per-minute", "3")

    async def scenario() -> None:
        for _ in range(3):
            answer = await Recorder(limited.url, "/admin").refused(
                {"username": "ops", "password": "no"}
            )
            assert answer == {"message": INVALID}
        answer = await Recorder(limited.url, "/admin").refused(
            {"username": "ops", "password": PASSWORD}
        )
        assert answer == {"message": TOO_MANY}
        ops = await admin(limited.url)  # a token is not a password attempt
        await ops.close()

    run(scenario)


def test_readonly_and_production_modes(server_factory: Callable[..., ServerProcess]) -> None:
    quiet = admin_server(
        server_factory, "--admin-ui-readonly", "true", "--admin-ui-mode", "production"
    )

    async def scenario() -> None:
        ops = await admin(quiet.url)
        (config,) = await ops.next("config")
        assert config == {"supportedFeatures": ["AGGREGATED_EVENTS"]}
        hank = await user(quiet.url, "hank")
        await ops.emit("_disconnect", "/", False, hank.sid)  # readonly: no such command
        await ops.emit("join", "/", "nope", hank.sid)
        (stats,) = await ops.next_where(
            "server_stats",
            lambda a: any(n["socketsCount"] for n in a[0]["namespaces"] if n["name"] == "/"),
        )
        assert stats["clientsCount"] == 2
        await hank.emit("analytics:joinDashboard", "d")
        await ops.next("server_stats")
        await ops.next("server_stats")
        assert not hank.disconnected.is_set()
        for quiet_event in ("all_sockets", "socket_connected", "room_joined", "event_received"):
            assert ops.queues[quiet_event].empty(), quiet_event
        await hank.close()
        await ops.close()

    run(scenario)


def test_off_by_default_no_namespace_and_no_pages(
    server_factory: Callable[..., ServerProcess],
) -> None:
    plain = admin_server(server_factory, "--admin-ui", "false")

    async def scenario() -> None:
        answer = await Recorder(plain.url, "/admin").refused({"token": token("root", "admin")})
        assert answer == {"message": "Invalid namespace"}

    run(scenario)
    assert httpx.get(f"{plain.url}/admin/").status_code == 404
    assert httpx.get(f"{plain.url}/admin/js/app.0d7d7845.js").status_code == 404


def test_the_pages_are_served_from_the_package_with_nothing_from_the_internet(
    server: ServerProcess,
) -> None:
    with httpx.Client(base_url=server.url) as http:
        bare = http.get("/admin")
        assert bare.status_code == 308 and bare.headers["location"].endswith("/admin/")
        page = http.get("/admin/")
        assert page.status_code == 200 and "Socket.IO Admin UI" in page.text
        assert "https://" not in page.text and "http://" not in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        for asset in (
            "switchboard.js",
            "js/app.0d7d7845.js",
            "css/app.6e3b9661.css",
            "mdi/css/materialdesignicons.min.css",
            "mdi/fonts/materialdesignicons-webfont.woff2",
            "favicon.png",
        ):
            answer = http.get(f"/admin/{asset}")
            assert answer.status_code == 200, asset
            assert asset in page.text or asset.startswith(("mdi/fonts", "js/", "css/")), asset
        assert (
            http.get("/admin/mdi/fonts/materialdesignicons-webfont.woff2").headers["content-type"]
            == "font/woff2"
        )
        assert "/admin" in http.get("/admin/switchboard.js").text
        assert http.get("/admin/../pyproject.toml").status_code == 404
        assert http.get("/admin/LICENSE").status_code == 404
        assert http.get("/admin/js").status_code == 404


def test_hash_password_makes_a_hash_the_server_accepts(tmp_path: Any) -> None:
    made = subprocess.run(
        [sys.executable, "-m", "web.cli", "hash-password", "--rounds", "4"],
        input="s3cret\n", capture_output=True, text=True, cwd=REPO_ROOT, timeout=30, check=True,
    )  # fmt: skip
    digest = made.stdout.strip()
    assert digest.startswith("$2b$04$")
    check = [sys.executable, "-m", "web.cli", "check-config", "--data-dir", str(tmp_path),
             "--admin-ui", "true", "--admin-ui-username", "ops"]  # fmt: skip
    ok = subprocess.run([*check, "--admin-ui-password-hash", digest],
                        capture_output=True, text=True, cwd=REPO_ROOT, timeout=30)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([*check, "--admin-ui-password-hash", "plaintext"],
                         capture_output=True, text=True, cwd=REPO_ROOT, timeout=30)  # fmt: skip
    assert bad.returncode != 0 and "bcrypt hash" in bad.stderr
    lonely = subprocess.run(check, capture_output=True, text=True, cwd=REPO_ROOT, timeout=30)
    assert lonely.returncode != 0 and "--admin-ui-password-hash" in lonely.stderr
