"""The browser suite's fixture: a page in headless Chromium from the OS package manager, driven
by Playwright's Python package with ``executable_path`` (no browser download).

Nothing here is skipped: without Chromium (``make test`` installs it) the tests fail and say
why."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from tests.browser.helpers import CHROMIUM, CHROMIUM_ARGS, WAIT_MS


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
