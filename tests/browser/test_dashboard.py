"""The dashboard page in a real browser: headless Chromium from the OS package manager,
driven by Playwright's Python package with ``executable_path`` (no browser download).

One scenario against ``switchboard serve --demo``: the page connects with the token from its URL
fragment, the cards fill with non-zero numbers from ``dashboard_data``, the live feed grows with
the demo traffic, an event posted through the REST API shows up on the page, a chat message sent
from the page reaches a second client (python-socketio), and after a server restart the page
reconnects by itself. A screenshot goes to ``artifacts/dashboard.png`` (git-ignored).

Nothing here is skipped: without Chromium (``make test`` installs it) or without the chat
application the test fails and says why. Waits are Playwright's expectations with timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import re
import secrets
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio
from playwright.sync_api import Page, expect

from tests.browser.helpers import ARTIFACTS, CHROMIUM, card_value, server_flags, token
from tests.support.processes import ServerProcess
from tests.support.servers import PRODUCT_READY, PRODUCT_SERVER
from tests.support.waiting import wait_until_blocking


class ChatObserver:
    """A second chat client (python-socketio) on its own thread and asyncio loop."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.client = socketio.AsyncClient(reconnection=False)
        self.client.on("message:new", self.messages.put, namespace="/chat")

    def run(self, coro: Any, timeout: float = 15.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def join(self, chat_id: str) -> dict[str, Any]:
        self.run(
            self.client.connect(
                self.url, namespaces=["/chat"], auth={"token": self.token}, transports=["websocket"]
            )
        )
        answer: dict[str, Any] = self.run(
            self.client.call("join:chat", {"chatId": chat_id}, namespace="/chat", timeout=10)
        )
        return answer

    def wait_for(self, match: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
        found: list[dict[str, Any]] = []

        def arrived() -> bool:  # waits up to 0.2 s for the next message
            with contextlib.suppress(queue.Empty):
                message = self.messages.get(timeout=0.2)
                if match(message):
                    found.append(message)
            return bool(found)

        wait_until_blocking(
            arrived, timeout, message=f"no matching message:new within {timeout}s", interval=0
        )
        return found[0]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.run(self.client.disconnect(), timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


def test_dashboard_live_in_a_browser(
    server_factory: Callable[..., ServerProcess], browser_page: Page, tmp_path: Path
) -> None:
    server = server_factory(PRODUCT_SERVER, *server_flags(tmp_path), ready_marker=PRODUCT_READY)
    page = browser_page
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    admin = token("admin", "admin", name="Admin")

    page.goto(f"{server.url}/#token={admin}")
    expect(page.locator("#conn-state")).to_have_attribute("data-state", "connected")

    # the cards fill with non-zero numbers from dashboard_data (demo traffic, pushed every 1 s)
    for key in ("totalEvents", "activeUsers", "eventsPerHour", "conversionRate"):
        expect(page.locator(f"#card-{key} .value")).to_have_text(re.compile(r"[1-9]"))
        assert card_value(page, key) > 0, key
    expect(page.locator("#card-totalEvents .change")).to_contain_text("%")
    expect(page.locator("#live-metrics dt").first).to_be_visible()
    expect(page.locator("#countries .bar").first).to_be_visible()

    # the live feed grows by itself
    feed = page.locator("#feed li")
    expect(feed.first).to_be_visible()
    before = feed.count()
    page.wait_for_function(
        "n => document.querySelectorAll('#feed li').length >= n", arg=min(before + 5, 60)
    )

    # an event posted through the REST API arrives on the page
    name = f"browser-check-{secrets.token_hex(4)}"
    answer = httpx.post(
        f"{server.url}/api/events",
        json={"eventName": name, "userId": "qa-1", "country": "SE", "device": "web"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    expect(page.locator(f"#feed li[data-event-name='{name}']")).to_be_visible()

    # chat: the page joins the demo room; a message sent from the page reaches a second client
    chat_panel = page.locator("#chat")
    try:
        expect(chat_panel).to_have_attribute("data-chat-id", re.compile(r".+"), timeout=30_000)
    except AssertionError:
        pytest.fail(
            "the page did not join the demo chat room within 30 s: is the chat application "
            "(/chat) installed by web/apps/__init__.py? Page says: "
            f"{chat_panel.inner_text()!r}"
        )
    chat_id = chat_panel.get_attribute("data-chat-id")
    assert chat_id
    observer = ChatObserver(server.url, token("qa-observer", "admin", name="QA"))
    try:
        joined = observer.join(chat_id)
        assert joined.get("success"), joined
        text = f"hello from the browser {secrets.token_hex(3)}"
        page.locator("#chat-input").fill(text)
        page.locator("#chat-send").click()
        received = observer.wait_for(lambda m: m.get("content") == text, timeout=15)
        assert received["userId"] == "admin"
        assert received["chatId"] == chat_id
        expect(page.locator("#chat-messages")).to_contain_text(text)
    finally:
        observer.close()

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

    # visitor sessions with journeys (REST /api/analytics/sessions), or the page says it is missing
    sessions = httpx.get(
        f"{server.url}/api/analytics/sessions",
        headers={"Authorization": f"Bearer {admin}"},
        timeout=10,
    )
    if sessions.status_code == 404:
        expect(page.locator("#sessions-note")).to_contain_text("not available")
    else:
        expect(
            page.locator("#sessions li[data-session-id^='demo-'] .journey span").first
        ).to_be_visible()

    # connection state and automatic reconnection: stop the server, start it again on the port
    server.stop()
    expect(page.locator("#conn-state")).not_to_have_attribute("data-state", "connected")
    newest = page.locator("#feed li").first.get_attribute("data-event-id")
    restarted = ServerProcess(
        PRODUCT_SERVER, *server_flags(tmp_path), port=server.port, ready_marker=PRODUCT_READY
    )
    with restarted:
        expect(page.locator("#conn-state")).to_have_attribute(
            "data-state", "connected", timeout=30_000
        )
        page.wait_for_function(  # and the demo traffic flows again
            "id => document.querySelector('#feed li').dataset.eventId !== id", arg=newest
        )
    assert not errors, errors


def test_chromium_is_the_os_package() -> None:
    """`make test` installs Chromium with apt; Playwright never downloads a browser here."""
    assert shutil.which("chromium") or Path(CHROMIUM).is_file(), "chromium is not installed"
