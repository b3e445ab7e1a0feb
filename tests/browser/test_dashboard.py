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
import os
import queue
import re
import secrets
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio
from playwright.sync_api import Page, expect, sync_playwright

from tests.conftest import REPO_ROOT, ServerProcess
from tests.product_server import READY
from web.platform.auth import Authenticator

CHROMIUM = os.environ.get("SWITCHBOARD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SECRET = "browser-test-secret-0123456789abcdef"
AUTH = Authenticator(SECRET)
ARTIFACTS = REPO_ROOT / "artifacts"
WAIT_MS = 20_000
SERVER_SCRIPT = "tests/product_server.py"


def server_flags(data_dir: Path) -> list[str]:
    return [
        "--demo",
        "--demo-events-per-second",
        "6",
        "--data-dir",
        str(data_dir),
        "--jwt-secret",
        SECRET,
        "--dashboard-push-interval-seconds",
        "1",
        "--live-metrics-interval-seconds",
        "1",
        "--events-batch-interval-ms",
        "100",
    ]


@pytest.fixture
def browser_page() -> Iterator[Page]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: `make test` installs it "
            "(apt-get install chromium); the browser test does not skip"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1400})
            page.set_default_timeout(WAIT_MS)
            yield page
        finally:
            browser.close()


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
        deadline = threading.Event()
        timer = threading.Timer(timeout, deadline.set)
        timer.start()
        try:
            while not deadline.is_set():
                with contextlib.suppress(queue.Empty):
                    message = self.messages.get(timeout=0.2)
                    if match(message):
                        return message
            raise AssertionError(f"no matching message:new within {timeout}s")
        finally:
            timer.cancel()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.run(self.client.disconnect(), timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


def card_value(page: Page, key: str) -> float:
    text = page.locator(f"#card-{key} .value").inner_text()
    digits = re.sub(r"[^0-9.]", "", text)
    return float(digits) if digits else 0.0


def test_dashboard_live_in_a_browser(
    server_factory: Callable[..., ServerProcess], browser_page: Page, tmp_path: Path
) -> None:
    server = server_factory(SERVER_SCRIPT, *server_flags(tmp_path), ready_marker=READY)
    page = browser_page
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    admin = AUTH.issue("admin", name="Admin", role="admin")

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
    observer = ChatObserver(server.url, AUTH.issue("qa-observer", name="QA", role="admin"))
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
        SERVER_SCRIPT, *server_flags(tmp_path), port=server.port, ready_marker=READY
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


def test_page_and_vendored_files_are_served(
    server_factory: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = server_factory(
        "tests/product_server.py",
        "--data-dir",
        str(tmp_path),
        "--jwt-secret",
        SECRET,
        "--engineio-path",
        "/rt/",
        ready_marker=READY,
    )
    page = httpx.get(server.url + "/", timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<meta name="switchboard-engineio-path" content="/rt/">' in page.text
    assert "cdn" not in page.text.lower()  # no CDN: every script is served by the server
    for path, kind in [
        ("/static/dashboard.js", "text/javascript"),
        ("/static/dashboard.css", "text/css"),
        ("/static/vendor/socket.io.min.js", "text/javascript"),
        ("/static/vendor/chart.umd.min.js", "text/javascript"),
    ]:
        answer = httpx.get(server.url + path, timeout=10)
        assert answer.status_code == 200, (path, answer.text[:200])
        assert answer.headers["content-type"].startswith(kind), path
    for path in ["/static/vendor/ws.js", "/static/../cli.py", "/static/vendor-src/package.json"]:
        assert httpx.get(server.url + path, timeout=10).status_code == 404, path
