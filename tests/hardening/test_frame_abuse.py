"""WebSocket frame abuse over raw TCP, on both WebSocket paths (native: the connection's first
request; ASGI: an upgrade after a keep-alive request, served by Hypercorn + the ASGI route).

Already covered in tests/web/sockets/test_raw_frames.py (not repeated): unmasked frames, RSV
bits, unknown opcodes, oversize messages and oversize fragmented messages.

Expected outcome: the offending connection gets a Close frame with the RFC 6455 code (1002
protocol error, 1007 invalid data) and is hung up at once; on the ASGI path Hypercorn's wsproto
parses the frames, so there the test checks the close and not the exact code. The bystander
keeps its echo.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.clients.raw import client_frame, raw_ws, sio_ws
from tests.support.processes import interop

MAX_PAYLOAD = 10_000


@pytest.fixture(scope="module")
def server(module_server_factory: Callable[..., Any]) -> Any:
    return interop(module_server_factory, max_payload=MAX_PAYLOAD)


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


VIOLATIONS: dict[str, tuple[Callable[[], bytes], int]] = {
    "ping-126-bytes": (lambda: client_frame(0x9, b"p" * 126), 1002),
    "ping-64k-length": (lambda: client_frame(0x9, b"p" * 70_000), 1002),
    "pong-126-bytes": (lambda: client_frame(0xA, b"p" * 126), 1002),
    "close-126-bytes": (lambda: client_frame(0x8, close_payload(1000, b"r" * 124)), 1002),
    "ping-fragmented": (lambda: client_frame(0x9, b"p", fin=False), 1002),
    "close-fragmented": (lambda: client_frame(0x8, close_payload(1000), fin=False), 1002),
    "continuation-without-start": (lambda: client_frame(0x0, b'42["echo","x"]'), 1002),
    "text-inside-fragmented-text": (
        lambda: client_frame(0x1, b'42["echo",', fin=False) + client_frame(0x1, b'"x"]'),
        1002,
    ),
    "binary-inside-fragmented-text": (
        lambda: client_frame(0x1, b'42["echo",', fin=False) + client_frame(0x2, b"x"),
        1002,
    ),
    "invalid-utf8-text": (lambda: client_frame(0x1, b'42["echo","\xff\xfe"]'), 1007),
    "overlong-utf8-text": (lambda: client_frame(0x1, b'42["echo","\xc0\xaf"]'), 1007),
    "surrogate-utf8-text": (lambda: client_frame(0x1, b'42["echo","\xed\xa0\x80"]'), 1007),
    "invalid-utf8-across-fragments": (
        lambda: client_frame(0x1, b'42["echo","\xe2\x82', fin=False) + client_frame(0x0, b'\xff"]'),
        1007,
    ),
    "close-code-1005": (lambda: client_frame(0x8, close_payload(1005)), 1002),
    "close-code-1006": (lambda: client_frame(0x8, close_payload(1006)), 1002),
    "close-code-999": (lambda: client_frame(0x8, close_payload(999)), 1002),
    "close-code-2000": (lambda: client_frame(0x8, close_payload(2000)), 1002),
    "close-code-5000": (lambda: client_frame(0x8, close_payload(5000)), 1002),
    "close-one-byte": (lambda: client_frame(0x8, b"\x03"), 1002),
    "close-reason-invalid-utf8": (lambda: client_frame(0x8, close_payload(1000, b"\xff")), 1007),
    "length-msb-set": (lambda: client_frame(0x2, b"", length=1 << 63), 1002),
    "opcode-reserved-control": (lambda: client_frame(0xB, b""), 1002),
}


@pytest.mark.parametrize("path", ["native", "asgi"])
@pytest.mark.parametrize("violation", list(VIOLATIONS), ids=list(VIOLATIONS))
async def test_frame_violation_closes_only_the_offender(
    server: Any, path: str, violation: str
) -> None:
    """Attack: one malformed frame (see the id) after a normal connect. Expected: a Close frame
    (1002, or 1007 for invalid UTF-8; RFC 6455 §5.5, §7.4, §8.1) and the connection closed; on
    the ASGI path at least a close; the bystander unaffected."""
    build, expected = VIOLATIONS[violation]
    async with sio_ws(server) as bystander:
        async with raw_ws(server, path) as ws:
            await ws.send(build())
            code = await ws.close_code()
            if path == "native":
                assert code == expected, code
            await ws.wait_eof()
        await bystander.echo(1, "after")


@pytest.mark.parametrize("path", ["native", "asgi"])
@pytest.mark.parametrize("code", [1000, 1001, 1011, 3000, 4999])
async def test_valid_close_codes_are_answered(server: Any, path: str, code: int) -> None:
    """Control: a Close with a valid code (and a UTF-8 reason) is answered with a Close and
    the session ends cleanly."""
    async with raw_ws(server, path) as ws:
        await ws.send(client_frame(0x8, close_payload(code, "bye \u00e9".encode())))
        assert await ws.close_code() is not None
        await ws.wait_eof()


@pytest.mark.parametrize("path", ["native", "asgi"])
async def test_dribbled_and_pipelined_frames_still_work(server: Any, path: str) -> None:
    """Attack on the parser's buffering: frames written one byte at a time, a message split
    into 200 one-byte fragments with PINGs and unsolicited PONGs interleaved, and 200 frames in
    one write. Expected: every message handled exactly once, in order."""
    async with raw_ws(server, path) as ws:
        for byte in client_frame(0x1, b'421["echo","dribble"]'):
            await ws.send(bytes([byte]))
        assert await ws.text() == '431["dribble"]'

        body = b'422["echo","' + b"f" * 190 + b'"]'
        frames = b""
        for i, byte in enumerate(body):
            op = 0x1 if i == 0 else 0x0
            frames += client_frame(op, bytes([byte]), fin=i == len(body) - 1)
            if i % 50 == 0:
                frames += client_frame(0xA, b"unsolicited") + client_frame(0x9, b"%d" % i)
        await ws.send(frames)
        while True:
            opcode, payload = await ws.frame()
            if opcode == 0xA:
                continue
            assert opcode == 0x1
            if payload == b"2":
                continue
            assert payload == b'432["' + b"f" * 190 + b'"]'
            break

        await ws.send(b"".join(client_frame(0x1, b'42%d["echo",%d]' % (i, i)) for i in range(200)))
        for i in range(200):
            assert await ws.text() == f"43{i}[{i}]"


@pytest.mark.parametrize("path", ["native", "asgi"])
async def test_empty_text_frame_closes(server: Any, path: str) -> None:
    """Attack: an empty text message (no Engine.IO packet type). Expected: closed at once."""
    async with sio_ws(server) as bystander:
        async with raw_ws(server, path) as ws:
            await ws.send(client_frame(0x1, b""))
            assert await ws.close_code() in (1000, 1002, None)
        await bystander.echo(1, "after")
