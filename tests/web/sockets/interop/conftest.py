"""Fixtures of the interop suites: the interop server on the native WebSocket path and as an
ASGI-only server (one of each per module), and the targets a scenario runs against."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support.clients.interop import (
    AUTH_VARIANTS,
    TRANSPORTS,
    VARIANTS,
    Target,
    variant_id,
)
from tests.support.servers import INTEROP_SERVER


@pytest.fixture(scope="module")
def native_server(module_server_factory: Callable[..., Any]) -> Any:
    return module_server_factory(INTEROP_SERVER)


@pytest.fixture(scope="module")
def asgi_server(module_server_factory: Callable[..., Any]) -> Any:
    return module_server_factory(INTEROP_SERVER, "--asgi-only")


def _target(request: pytest.FixtureRequest) -> Target:
    server_kind, transport = request.param
    server = request.getfixturevalue(f"{server_kind}_server")
    transports, final = TRANSPORTS[transport]
    return Target(server.url, transports, final)


@pytest.fixture(params=VARIANTS, ids=[variant_id(v) for v in VARIANTS])
def target(request: pytest.FixtureRequest) -> Target:
    """Each scenario against each of :data:`VARIANTS`."""
    return _target(request)


@pytest.fixture(params=AUTH_VARIANTS, ids=[variant_id(v) for v in AUTH_VARIANTS])
def auth_target(request: pytest.FixtureRequest) -> Target:
    """Each authentication scenario against each of :data:`AUTH_VARIANTS`."""
    return _target(request)
