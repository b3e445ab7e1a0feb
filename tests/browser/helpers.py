"""What the browser tests share: the Chromium they drive, the demo server's flags, tokens, and
reading a dashboard card."""

from __future__ import annotations

import os
import re
from pathlib import Path

from playwright.sync_api import Page

from tests.support.processes import REPO_ROOT
from tests.support.tokens import BROWSER_SECRET, Tokens

CHROMIUM = os.environ.get("SWITCHBOARD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 20_000
ARTIFACTS = REPO_ROOT / "artifacts"  # screenshots (git-ignored)

token = Tokens(BROWSER_SECRET)


def server_flags(data_dir: Path) -> list[str]:
    """``switchboard serve`` with fast demo traffic and quick pushes."""
    return [
        "--demo",
        "--demo-events-per-second",
        "6",
        "--data-dir",
        str(data_dir),
        "--jwt-secret",
        BROWSER_SECRET,
        "--dashboard-push-interval-seconds",
        "1",
        "--live-metrics-interval-seconds",
        "1",
        "--events-batch-interval-ms",
        "100",
    ]


def card_value(page: Page, key: str) -> float:
    text = page.locator(f"#card-{key} .value").inner_text()
    digits = re.sub(r"[^0-9.]", "", text)
    return float(digits) if digits else 0.0
