"""Hypothesis-driven fuzzing of the LIVE server: random Socket.IO/Engine.IO packets, random
WebSocket frames and random polling bodies, each on a fresh connection to one interop server.

Invariant for every example: after the fuzz, the connection either still answers an echo with
ack, or the server closes it; never silence, never a 5xx; and afterwards the server answers
/health and a fresh client's echo. Bounded: ``FUZZ_EXAMPLES`` examples per strategy (150 by
default, a few seconds); ``make fuzz`` runs 5,000.

The test-only ``crash-room`` event is kept out of the generated packets (a room that crashes 21
times a minute is a known server bug: tests/hardening/test_faults.py).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.clients.raw import PATH, TOKEN, client_frame
from tests.support.processes import interop

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
MAX_PAYLOAD = 10_000
TIMEOUT = 5.0
PROBE = b'42987654["echo","probe"]'
PROBE_ACK = b'43987654["probe"]'

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)


@pytest.fixture(scope="module")
def server(module_server_factory: Callable[..., Any]) -> Any:
    # each example opens a session from 127.0.0.1 and not all of them close: `make fuzz` runs
    # thousands, far past the per-address cap this suite is not about
    return interop(module_server_factory, "max_connections_per_ip=0", max_payload=MAX_PAYLOAD)


# --- a blocking raw WebSocket client (fast enough for thousands of examples) ---
class BlockingWS:
    def __init__(self, server: Any) -> None:
        self.sock = socket.create_connection((server.host, server.port), timeout=TIMEOUT)
        self.buf = b""
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {PATH}?EIO=4&transport=websocket&token={TOKEN} HTTP/1.1\r\n"
                f"Host: {server.host}:{server.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        while b"\r\n\r\n" not in self.buf:
            self._recv()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head
        assert self.frame()[1].startswith(b"0{")
        self.sock.sendall(client_frame(0x1, b"40"))
        assert self.frame()[1].startswith(b'40{"sid":')

    def _recv(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buf += data

    def _need(self, n: int) -> None:
        while len(self.buf) < n:
            self._recv()

    def frame(self) -> tuple[int, bytes]:
        self._need(2)
        n, pos = self.buf[1] & 0x7F, 2
        if n == 126:
            self._need(4)
            n, pos = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, pos = struct.unpack("!Q", self.buf[2:10])[0], 10
        self._need(pos + n)
        opcode = self.buf[0] & 0x0F
        payload, self.buf = self.buf[pos : pos + n], self.buf[pos + n :]
        return opcode, payload

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError:  # closed by the server already: the probe will see it
            pass

    def outcome(self) -> str:
        """Send the probe echo; "answered" or "closed" (anything else fails the example)."""
        self.send(client_frame(0x1, PROBE))
        try:
            while True:
                opcode, payload = self.frame()
                if opcode == 0x8:
                    return "closed"
                if opcode == 0x1 and payload == PROBE_ACK:
                    return "answered"
                if opcode == 0x1 and payload == b"2":
                    self.send(client_frame(0x1, b"3"))
        except (EOFError, ConnectionResetError, BrokenPipeError):
            return "closed"

    def close(self) -> None:
        self.sock.close()


@contextmanager
def blocking_ws(server: Any) -> Iterator[BlockingWS]:
    ws = BlockingWS(server)
    try:
        yield ws
    finally:
        ws.close()


# --- strategies ---
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)
EVENTS = ["echo", "join", "leave", "bcast", "bcast-others", "whoami", "binary-echo", "nope", ""]
placeholder = st.builds(
    lambda num, extra: {"_placeholder": True, "num": num, **extra},
    st.integers(-2, 12),
    st.sampled_from([{}, {"x": 1}]),
)


@st.composite
def socketio_packets(draw: st.DrawFn) -> str:
    """Mostly grammatical Socket.IO packets with broken parts, sometimes plain noise."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(max_size=60))
    eio = draw(st.sampled_from(["4", "4", "4", "4", "2", "3", "5", "6", "1", "0", "b", "9"]))
    sio = draw(st.sampled_from([*"0123456", "7", "x", ""]))
    attachments = draw(st.sampled_from(["", "", "1-", "2-", "0-", "10-", "11-", "1", "-"]))
    namespace = draw(st.sampled_from(["", "", "", "/admin,", "/,", "/nope,", "/admin", "/\x01,"]))
    ack = draw(st.sampled_from(["", "", "1", "0", "9007199254740991", "99999999999999999"]))
    args = draw(st.lists(json_values | placeholder, max_size=4))
    body = draw(st.sampled_from(["event", "event", "value", "none", "raw"]))
    if body == "event":
        payload = json.dumps([draw(st.sampled_from(EVENTS)), *args])
    elif body == "value":
        payload = json.dumps(draw(json_values))
    elif body == "raw":
        payload = draw(st.text(max_size=40))
    else:
        payload = ""
    return eio + sio + attachments + namespace + ack + payload


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    """Length-consistent client frames with random header bits and payloads."""
    opcode = draw(st.sampled_from([0x0, 0x1, 0x1, 0x1, 0x2, 0x2, 0x8, 0x9, 0xA, 0x3, 0xB, 0xF]))
    payload = draw(
        st.binary(max_size=200)
        | socketio_packets().map(lambda s: s.encode("utf-8", "surrogatepass"))
    )
    fin = draw(st.booleans()) if draw(st.integers(0, 3)) == 0 else True
    rsv = draw(st.integers(0, 7)) if draw(st.integers(0, 7)) == 0 else 0
    masked = draw(st.integers(0, 15)) != 0
    return client_frame(opcode, payload, fin=fin, rsv=rsv, masked=masked)


def allowed(text: str) -> bool:
    return "crash-room" not in text


# --- the fuzz tests ---
@FUZZ
@given(packets=st.lists(socketio_packets(), min_size=1, max_size=4))
def test_fuzz_socketio_packets(server: Any, packets: list[str]) -> None:
    """Random Socket.IO/Engine.IO text packets on a connected WebSocket. Expected: the probe
    echo is answered or the connection is closed; nothing else."""
    if not all(allowed(p) for p in packets):
        return
    with blocking_ws(server) as ws:
        for packet in packets:
            ws.send(client_frame(0x1, packet.encode("utf-8", "surrogatepass")))
        assert ws.outcome() in ("answered", "closed")


@FUZZ
@given(raw=st.lists(frames(), min_size=1, max_size=4))
def test_fuzz_websocket_frames(server: Any, raw: list[bytes]) -> None:
    """Random WebSocket frames (any opcode, fin/rsv/mask bits, payload). Expected: the probe
    echo is answered or the connection is closed."""
    if any(b"crash-room" in f for f in raw):
        return
    with blocking_ws(server) as ws:
        ws.send(b"".join(raw))
        assert ws.outcome() in ("answered", "closed")


@FUZZ
@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.lists(socketio_packets(), min_size=1, max_size=6).map(
            lambda ps: "\x1e".join(ps).encode("utf-8", "surrogatepass")
        ),
    )
)
def test_fuzz_polling_bodies(server: Any, body: bytes) -> None:
    """Random polling POST bodies on a fresh session. Expected: ``200 ok``, or 400 with a JSON
    error body (the session then closed); never a 5xx, never a hang."""
    if b"crash-room" in body:
        return
    with httpx.Client(timeout=TIMEOUT) as http:
        url = server.url + PATH
        params = {"EIO": "4", "transport": "polling", "token": TOKEN}
        r = http.get(url, params=params)
        params["sid"] = json.loads(r.text[1:])["sid"]
        r = http.post(url, params=params, content=body)
        assert r.status_code in (200, 400), (r.status_code, r.text)
        if r.status_code == 200:
            assert r.text == "ok"
        else:
            assert r.json()["code"] == 3
            assert http.get(url, params=params).status_code == 400


def test_server_survives_the_fuzzing(server: Any) -> None:
    """After every fuzz test above: /health answers and a fresh client's echo is acked."""
    with httpx.Client(timeout=TIMEOUT) as http:
        assert http.get(server.url + "/health").json()["status"] == "ok"
    with blocking_ws(server) as ws:
        assert ws.outcome() == "answered"
    assert server.alive
