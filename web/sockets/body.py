"""Reading an HTTP request body without ever holding more than a limit."""

from __future__ import annotations

from collections.abc import AsyncIterable


async def read_limited(
    chunks: AsyncIterable[bytes], content_length: int | None, limit_bytes: int
) -> bytes | None:
    """The whole body, or None as soon as it is known to be over ``limit_bytes`` (the rest is
    left unread: the connection cannot carry another request after that)."""
    if content_length is not None and content_length > limit_bytes:
        return None
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit_bytes:
            return None
        parts.append(chunk)
    return b"".join(parts)
