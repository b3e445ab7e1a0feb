"""The REST API, driven by its own OpenAPI document (``/openapi.json``) with schemathesis.

Attack: schema-guided random requests (valid and invalid bodies, parameters and headers) to every
REST operation, with an admin token. Expected: no answer is a server error (5xx) — bad input gets
a 4xx naming the problem — and every answer is one the document promises: a documented status
code, the documented content type, and a body that validates against the documented schema.
Bounded for CI (``SCHEMATHESIS_EXAMPLES``, default 25 per operation).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.processes import ProductServer
from tests.support.tokens import SCHEMATHESIS_SECRET, Tokens

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "25"))
# transports and pages, not REST: covered by the protocol and browser suites
SKIP_PATHS = ("/socket.io/", "/ws/visitors", "/", "/static")


@pytest.fixture(scope="module")
def rest_api(
    module_server_factory: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    data: Path = tmp_path_factory.mktemp("schemathesis")
    server = module_server_factory(
        ProductServer(
            "--ingest-rate-per-ip-per-minute",
            "0",
            "--guild-events-per-bot-per-second",
            "0",
            secret=SCHEMATHESIS_SECRET,
            data_dir=data,
        )
    )
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    schema.config.base_url = server.url
    yield schema.exclude(path=list(SKIP_PATHS))


ADMIN = Tokens(SCHEMATHESIS_SECRET)("fuzzer", "admin", guilds=["g1"], ttl=86400)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_every_rest_operation_answers_as_its_document_says(rest_api: Any) -> None:
    failures: list[str] = []
    operations = 0
    for result in rest_api.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def answers_as_documented(case: Any) -> None:
            response = case.call(headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10)
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} -> {response.status_code}: "
                f"{response.text[:300]}"
            )
            case.validate_response(response, checks=CHECKS)

        try:
            answers_as_documented()
        except (AssertionError, BaseExceptionGroup) as error:
            failures.append(f"{operation.label}: {str(error)[:2000]}")
    assert operations >= 10  # every REST endpoint of the document was exercised
    assert not failures, "\n".join(failures)
