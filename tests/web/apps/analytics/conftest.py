"""Fixtures for the analytics end-to-end tests: real ``switchboard serve`` processes on free
ports (:class:`tests.support.clients.analytics.Switchboard`), each with a data folder of its own
under the test's (or the module's) temporary folder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.clients.analytics import Switchboard
from tests.support.processes import data_dir_pool


@pytest.fixture
def switchboard(tmp_path: Path) -> Iterator[Callable[..., Switchboard]]:
    """``switchboard(*flags, data_dir=None)`` -> a started server, stopped after the test."""
    with data_dir_pool(Switchboard, tmp_path) as start:
        yield start


@pytest.fixture(scope="module")
def module_switchboard(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., Switchboard]]:
    """Like ``switchboard``, for servers shared by a module's tests."""
    with data_dir_pool(Switchboard, tmp_path_factory.mktemp("analytics")) as start:
        yield start
