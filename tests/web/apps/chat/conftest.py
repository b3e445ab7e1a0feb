"""Fixtures for the chat tests: one shared server per module (connection limits off, so that
tests of bad tokens do not block the loopback address for the others)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support.clients.chat import start_server


@pytest.fixture(scope="module")
def server(module_server_factory: Callable[..., Any]) -> Any:
    return start_server(module_server_factory, "--chat-connect-attempts-per-ip", "0")
