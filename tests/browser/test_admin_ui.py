"""The Socket.IO Admin UI in a real browser, served by Switchboard itself at ``/admin/``.

Headless Chromium (the OS package) opens the pinned UI build, signs in with its form, and must
see the sockets and rooms of clients this test connected (python-socketio, on a thread of their
own), live: a client connecting afterwards appears without a reload, and the UI's disconnect
button disconnects that client for real. A screenshot goes to ``artifacts/admin-ui.png``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import socketio
from playwright.sync_api import Page, expect

from tests.browser.helpers import ARTIFACTS, WAIT_MS
from tests.support.processes import ServerProcess
from tests.web.apps.admin_ui.helpers import PASSWORD, admin_server, token

WAIT_SECONDS = 15.0
SCREENSHOT = {"x": 0, "y": 0, "width": 1440, "height": 560}


class Clients:
    """python-socketio clients on one asyncio loop, on a thread of its own."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.clients: list[socketio.AsyncClient] = []

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(WAIT_SECONDS)

    def connect(self, user: str) -> tuple[socketio.AsyncClient, threading.Event]:
        client = socketio.AsyncClient(reconnection=False)
        gone = threading.Event()
        client.on("disconnect", gone.set)
        self.run(client.connect(self.url, auth={"token": token(user)}, transports=["websocket"]))
        self.clients.append(client)
        return client, gone

    def close(self) -> None:
        for client in self.clients:
            try:
                self.run(client.disconnect())
            except Exception:  # already disconnected by the test, or the server is gone
                pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


@pytest.fixture
def clients(server: ServerProcess) -> Iterator[Clients]:
    made = Clients(server.url)
    yield made
    made.close()


@pytest.fixture
def server(server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    return admin_server(server_factory)


def test_the_admin_ui_signs_in_and_sees_sockets_live(
    server: ServerProcess, clients: Clients, browser_page: Page
) -> None:
    page = browser_page
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    alice, _ = clients.connect("alice")
    clients.run(alice.emit("analytics:joinDashboard", "ops-room"))

    page.goto(f"{server.url}/admin/")
    expect(page.get_by_label("Server URL")).to_have_value(
        server.url, timeout=WAIT_MS
    )  # filled in for us
    page.get_by_label("Username").fill("ops")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Connect").click()
    expect(page.get_by_text("connected", exact=True).first).to_be_visible(timeout=WAIT_MS)

    def row(text: str) -> Any:
        return page.locator("tr", has_text=text)

    page.goto(f"{server.url}/admin/#/sockets/")
    expect(row(alice.get_sid())).to_be_visible(timeout=WAIT_MS)
    bob, bob_gone = clients.connect("bob")  # connects after the UI: it appears by itself
    bob_sid = bob.get_sid()
    expect(row(bob_sid)).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_role("dialog")).to_be_hidden(timeout=WAIT_MS)  # the sign-in form's fade
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-ui.png"), clip=SCREENSHOT)

    page.goto(f"{server.url}/admin/#/rooms/")
    expect(row("analytics:dashboard:ops-room")).to_be_visible(timeout=WAIT_MS)

    page.goto(f"{server.url}/admin/#/sockets/")
    row(bob_sid).get_by_role("button").click()  # the UI's "disconnect this socket"
    assert bob_gone.wait(WAIT_SECONDS), "the UI's disconnect did not disconnect the client"
    # the click also opened the socket's page, which shows it gone; the list no longer has it
    expect(page.get_by_text("disconnected", exact=True).first).to_be_visible(timeout=WAIT_MS)
    page.goto(f"{server.url}/admin/#/sockets/")
    expect(row(bob_sid)).to_have_count(0, timeout=WAIT_MS)
    expect(row(alice.get_sid())).to_be_visible(timeout=WAIT_MS)
    assert not errors, errors
