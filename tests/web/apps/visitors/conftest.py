"""Fixtures for the visitor analytics tests: real product servers
(:class:`tests.support.clients.visitors.VisitorServer`), each with a data folder of its own under
the test's (or the module's) temporary folder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.clients.visitors import VisitorServer
from tests.support.processes import data_dir_pool


@pytest.fixture
def visitor_server(tmp_path: Path) -> Iterator[Callable[..., VisitorServer]]:
    """``visitor_server(*flags, data_dir=None)`` -> a started server, stopped after the test."""
    with data_dir_pool(VisitorServer, tmp_path) as start:
        yield start


@pytest.fixture(scope="module")
def module_visitor_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., VisitorServer]]:
    with data_dir_pool(VisitorServer, tmp_path_factory.mktemp("visitors")) as start:
        yield start
