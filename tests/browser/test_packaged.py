"""The package as a new user gets it: ``pip install .`` into a fresh venv, no Node.js anywhere.

The server is started from that venv's ``switchboard`` command, outside the source tree, with a
PATH that holds nothing but the venv; the browser libraries it serves must come from the
installed package. Headless Chromium then opens the dashboard and sees live numbers.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.browser.helpers import card_value, server_flags, token
from tests.support.processes import REPO_ROOT, ServerProcess
from tests.support.servers import PRODUCT_READY

INSTALL_TIMEOUT_SECONDS = 300


class InstalledServer(ServerProcess):
    """``switchboard serve`` from an installed venv: no repository on the path, no Node.js."""

    def __init__(self, venv: Path, *args: str, cwd: Path) -> None:
        super().__init__("switchboard", *args, ready_marker=PRODUCT_READY, cwd=cwd)
        self.venv = venv
        self.env = {
            "PATH": str(venv / "bin"),
            "HOME": str(cwd),
            "PYTHONUNBUFFERED": "1",
            "LANG": os.environ.get("LANG", "C.UTF-8"),
        }

    @property
    def command(self) -> list[str]:
        return [
            str(self.venv / "bin" / "switchboard"),
            "serve",
            "--port",
            str(self.port),
            *self.args,
        ]


ADMIN_UI_FILES = (
    "",
    "js/app.0d7d7845.js",
    "css/chunk-vendors.9f55d012.css",
    "mdi/css/materialdesignicons.min.css",
    "mdi/fonts/materialdesignicons-webfont.woff2",
)


def test_pip_install_gives_a_working_dashboard_without_node(
    browser_page: Page, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    installed = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(REPO_ROOT)],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_SECONDS,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    assert shutil.which("node", path=str(venv / "bin")) is None

    home = tmp_path / "home"
    home.mkdir()
    server = InstalledServer(venv, *server_flags(tmp_path / "data"), "--admin-ui", "true", cwd=home)
    with server:
        for bundle in ("/socket.io/socket.io.min.js", "/static/vendor/chart.umd.min.js"):
            answer = httpx.get(f"{server.url}{bundle}", timeout=10)
            assert answer.status_code == 200, bundle
            assert answer.headers["content-type"].startswith("text/javascript"), bundle
        for admin_file in ADMIN_UI_FILES:  # the Admin UI's build ships in the package too
            answer = httpx.get(f"{server.url}/admin/{admin_file}", timeout=10)
            assert answer.status_code == 200, admin_file
        page = browser_page
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(f"{server.url}/#token={token('admin', 'admin', name='Admin')}")
        expect(page.locator("#conn-state")).to_have_attribute("data-state", "connected")
        for key in ("totalEvents", "activeUsers"):
            expect(page.locator(f"#card-{key} .value")).to_have_text(re.compile(r"[1-9]"))
            assert card_value(page, key) > 0, key
        expect(page.locator("#feed li").first).to_be_visible()
        assert not errors, errors
