"""Fixtures of the cluster tests: a private Redis per module and HAProxy balancers in front of
the nodes a test starts (tests/cluster/helpers.py); the nodes themselves are started with
``server_factory`` / ``module_server_factory``."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cluster.helpers import LoadBalancer, RedisServer
from tests.support import postgres


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def balancer() -> Iterator[Callable[[list[int]], LoadBalancer]]:
    made: list[LoadBalancer] = []
    folder = Path(tempfile.mkdtemp(prefix="haproxy-"))

    def make(backends: list[int]) -> LoadBalancer:
        sub = folder / str(len(made))
        sub.mkdir()
        lb = LoadBalancer(backends, sub)
        made.append(lb)
        return lb

    yield make
    for lb in made:
        lb.close()


@pytest.fixture
def database_url() -> str:
    """A fresh database on the run's private PostgreSQL (the nodes of one test share it)."""
    return postgres.shared_server().create_database()
