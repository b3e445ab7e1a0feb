"""Fixtures and hooks every suite shares; the helpers behind them live in tests/support/.

* ``server_factory`` (any test) / ``module_server_factory`` (module scope) - start servers that
  are stopped at the end of the test / module. Give them ``(script, *args, **kw)`` for a
  :class:`~tests.support.processes.ServerProcess`, or a server already made (a
  :class:`~tests.support.processes.ProductServer`, say)::

      @pytest.fixture(scope="module")
      def server(module_server_factory):
          return module_server_factory(INTEROP_SERVER, "--asgi-only")  # a ServerProcess

      def test_x(server):
          server.url        # "http://127.0.0.1:PORT"

* When a test fails, the stderr of every server running (or dead) at that moment is attached to
  its report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import STARTED, ServerProcess, built, server_pool


@pytest.fixture
def server_factory() -> Iterator[Callable[..., ServerProcess]]:
    """``server_factory(script, *args, **kw)`` or ``server_factory(server)`` -> a started
    server, stopped after the test."""
    with server_pool(built) as start:
        yield start


@pytest.fixture(scope="module")
def module_server_factory() -> Iterator[Callable[..., ServerProcess]]:
    """Like ``server_factory``, stopped at the end of the module (for shared servers)."""
    with server_pool(built) as start:
        yield start


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """When a test fails, attach the stderr of every server running (or dead) at that moment."""
    report = yield
    if report.failed and STARTED:
        for server in STARTED:
            report.sections.append((f"server {Path(server.script).name}", server.report()))
    return report
