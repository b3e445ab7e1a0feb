"""The WebSocket opening handshake (RFC 6455 4.2), server side, for the common request only.

wsproto (on h11) handles any request, which costs a good part of a connection's set-up: a
profile of 5,000 connects put about a quarter of the server's time in its state machines. Nearly
every request is the same simple ``GET <target> HTTP/1.1`` with a few plain headers, so
:func:`parse_upgrade` reads exactly that form, on a grammar that is a subset of h11's and with
wsproto's checks (``Connection: upgrade``, ``Upgrade: websocket``, ``Sec-WebSocket-Version: 13``,
a key, one ``Host``), and gives the same target, host and headers wsproto would. Anything else
(another method or version, a folded or non-ASCII header, a body, a repeated key header, any
failed check) returns None: the caller then hands the head to wsproto, which accepts or refuses
it as before. :func:`accept_response` is wsproto's 101 answer, byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

__all__ = ["Upgrade", "accept_response", "parse_upgrade"]

_REQUEST_LINE = re.compile(rb"GET ([\x21-\x7e]+) HTTP/1\.1")
# h11's header line with its value limited to printable ASCII (h11 also takes other bytes)
_HEADER = re.compile(
    rb"([-!#$%&'*+.^_`|~0-9a-zA-Z]+):[ \t]*([\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?)?[ \t]*"
)
_ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# wsproto drops these from the request's headers; we accept no extension and no subprotocol
_DROPPED = frozenset({b"sec-websocket-extensions", b"sec-websocket-protocol"})
# wsproto reads these once each (the last wins); h11 refuses a second Host. Repeated: wsproto
_ONCE = frozenset(
    {b"host", b"connection", b"upgrade", b"sec-websocket-key", b"sec-websocket-version"}
)
# h11 gives these a meaning (a body) and checks them: wsproto decides
_FRAMING = frozenset({b"content-length", b"transfer-encoding"})


@dataclass(frozen=True, slots=True)
class Upgrade:
    """What wsproto's ``Request`` event would say about the same head."""

    target: str
    host: str
    headers: list[tuple[bytes, bytes]]  # lower-case names, Host and the dropped ones left out
    key: bytes


def parse_upgrade(head: bytes) -> Upgrade | None:
    """The upgrade request in ``head`` (ending with the blank line), or None: ask wsproto."""
    lines = head.split(b"\r\n")
    if len(lines) < 3 or lines[-1] or lines[-2]:
        return None
    request = _REQUEST_LINE.fullmatch(lines[0])
    if request is None:
        return None
    headers: list[tuple[bytes, bytes]] = []
    seen: set[bytes] = set()
    host = connection = upgrade = key = version = None
    for line in lines[1:-2]:
        match = _HEADER.fullmatch(line)
        if match is None:
            return None
        name = match.group(1).lower()
        value = match.group(2) or b""
        if name in _ONCE:
            if name in seen:
                return None
            seen.add(name)
            if name == b"host":
                host = value
                continue
            if name == b"connection":
                connection = value
            elif name == b"upgrade":
                upgrade = value
            elif name == b"sec-websocket-key":
                key = value
            else:
                version = value
        elif name in _DROPPED:
            continue
        elif name in _FRAMING:
            return None
        headers.append((name, value))
    if (
        host is None
        or key is None
        or version != b"13"
        or upgrade is None
        or upgrade.lower() != b"websocket"
        or connection is None
        or not any(token.strip().lower() == b"upgrade" for token in connection.split(b","))
    ):
        return None
    try:
        host_name = host.decode("idna")
    except UnicodeError:
        return None
    return Upgrade(request.group(1).decode("ascii"), host_name, headers, key)


def accept_response(key: bytes) -> bytes:
    """The 101 answer to a request with this ``Sec-WebSocket-Key``."""
    token = base64.b64encode(hashlib.sha1(key + _ACCEPT_GUID).digest())
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + token + b"\r\n\r\n"
    )
