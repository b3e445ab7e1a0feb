"""What the OpenAPI document says of answers quart-schema cannot describe: non-JSON bodies.

Routes mark them with :func:`text_response`; the document's builder
(:class:`web.platform.openapi.SwitchboardOpenAPI`) reads the marks. The mark lives down here
because the Engine.IO endpoint, the lowest layer's route, needs it too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

TEXT_RESPONSES = "_switchboard_text_responses"


def text_response(status: int, content_type: str, description: str) -> Callable[[F], F]:
    """Document an answer whose body is not JSON (``content_type`` with a text schema)."""

    def decorate(func: F) -> F:
        answers: dict[int, tuple[str, str]] = getattr(func, TEXT_RESPONSES, {})
        answers[status] = (content_type, description)
        setattr(func, TEXT_RESPONSES, answers)
        return func

    return decorate


def text_responses(func: Callable[..., Any]) -> dict[int, tuple[str, str]]:
    answers: dict[int, tuple[str, str]] = getattr(func, TEXT_RESPONSES, {})
    return answers
