"""A tripwire for the Hypercorn internals the front door drives (see web/front_door.py).

Hypercorn has no public API for serving a connection someone else accepted; the front door uses
its trio TCPServer, Lifespan and WorkerContext directly. If an upgrade renames or reshapes any of
them, this fails with the name of what changed, before a subtler failure elsewhere.
"""

from __future__ import annotations

import inspect
from dataclasses import fields

from hypercorn.config import Config
from hypercorn.events import Updated
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.utils import wrap_app

from web.front_door import KeepAliveTCPServer


def _parameters(func: object) -> list[str]:
    return [p for p in inspect.signature(func).parameters if p != "self"]  # type: ignore[arg-type]


def test_tcp_server_is_built_and_driven_as_the_front_door_expects() -> None:
    assert _parameters(TCPServer.__init__) == ["app", "config", "context", "state", "stream"]
    for name in ("run", "protocol_send", "_initiate_server_close"):
        assert inspect.iscoroutinefunction(getattr(TCPServer, name, None)), name
    assert "idle_task" in inspect.getsource(TCPServer.__init__)
    assert issubclass(KeepAliveTCPServer, TCPServer)


def test_the_idle_event_and_the_config_fields_exist() -> None:
    assert "idle" in [f.name for f in fields(Updated)]
    config = Config()
    for name in ("keep_alive_timeout", "websocket_max_message_size", "h11_max_incomplete_size"):
        assert hasattr(config, name), name


def test_lifespan_worker_context_and_wrap_app_keep_their_shape() -> None:
    assert _parameters(Lifespan.__init__) == ["app", "config", "state"]
    for name in ("handle_lifespan", "wait_for_startup", "wait_for_shutdown"):
        assert inspect.iscoroutinefunction(getattr(Lifespan, name, None)), name
    assert _parameters(WorkerContext.__init__) == ["max_requests"]
    assert _parameters(wrap_app)[:3] == ["app", "wsgi_max_body_size", "mode"]
