"""Socket.IO packet abuse and JSON abuse against a live interop server (native WebSocket path;
the decoder is shared by every transport).

Already covered elsewhere (not repeated here): unknown packet type, non-array EVENT payload, bad
ack id syntax, broken JSON, events on a namespace not connected, placeholder mismatches, more
than 10 attachments, a binary frame with no binary packet, unknown namespace -> 44 (tests/
conformance/test_socketio.py, tests/web/sockets/test_raw_frames.py); the decoders' properties
(tests/protocol/).

Expected outcome throughout: a packet that breaks the protocol closes that connection at once
(close code 1000 after the Engine.IO close); a well-formed but useless packet is ignored and the
connection stays; a bystander connected before the attack keeps its echo.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio
from trio_websocket import ConnectionClosed

from tests.support.clients.raw import AT_ONCE, dumps, sio_ws
from tests.support.clients.status import health
from tests.support.processes import interop
from tests.support.waiting import wait_until

MAX_PAYLOAD = 100_000


def _nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


NESTED_31 = _nested(31)  # inside ["echo", ...]: depth 32, exactly the cap


@pytest.fixture(scope="module")
def server(module_server_factory: Callable[..., Any]) -> Any:
    return interop(module_server_factory, max_payload=MAX_PAYLOAD)


async def attack(server: Any, packets: list[str | bytes], *, closes: bool) -> None:
    async with sio_ws(server) as bystander, sio_ws(server) as attacker:
        await bystander.echo(1, "before")
        for packet in packets:
            try:
                await attacker.send(packet)
            except ConnectionClosed:  # already closed by an earlier packet
                assert closes
                break
        if closes:
            await attacker.expect_closed()
        else:
            assert await attacker.call(99, "echo", "still open") == ["still open"]
        await bystander.echo(2, "after")


CLOSING = {
    # every packet type with broken fields
    "connect-twice": "40",
    "connect-auth-string": '40/admin,"token"',
    "connect-auth-array": "40/admin,[1]",
    "connect-auth-number": "40/admin,123",
    "disconnect-not-connected": "41/admin,",
    "disconnect-with-payload": '41{"x":1}',
    "connect-error-from-client": '44{"message":"x"}',
    "ack-without-payload": "431",
    "ack-payload-not-array": '431{"a":1}',
    "ack-id-too-large": '439007199254740992["x"]',
    "ack-id-17-digits": '4212345678901234567["echo"]',
    "ack-id-negative": '42-1["echo"]',
    "ack-id-on-connect": "40/admin,5{}",
    "ack-id-on-disconnect": "415",
    "event-empty-array": "42[]",
    "event-no-payload": "42",
    # namespace syntax abuse
    "namespace-without-slash": "40admin",
    "namespace-control-char": "40/ad\x01min,",
    "namespace-too-long": "40/" + "n" * 200 + ",",
    "namespace-unregistered-event": '42/nope,["echo","x"]',
    # reserved and non-string event names
    "event-connect": '42["connect"]',
    "event-disconnect": '42["disconnect"]',
    "event-disconnecting": '42["disconnecting"]',
    "event-connect_error": '42["connect_error"]',
    "event-newListener": '42["newListener","x"]',
    "event-removeListener": '42["removeListener","x"]',
    "event-number": "42[1]",
    "event-null": "42[null]",
    "event-object": '42[{"echo":1}]',
    "event-array": '42[["echo"]]',
    "event-bool": "42[true]",
    # JSON abuse
    "json-nan": '421["echo",NaN]',
    "json-infinity": '421["echo",Infinity]',
    "json-minus-infinity": '421["echo",-Infinity]',
    "json-overflow-float": '421["echo",1e400]',
    "json-lone-high-surrogate": '421["echo","\\ud800"]',
    "json-lone-low-surrogate": '421["echo","\\udc00x"]',
    "json-trailing-garbage": '421["echo"]xyz',
    "json-single-quotes": "421['echo']",
    "json-comment": '421["echo"/*x*/]',
    "json-trailing-comma": '421["echo",]',
    "json-depth-33": '421["echo",' + "[" * 32 + "]" * 32 + "]",
    "json-depth-10000": '421["echo",' + "[" * 10_000 + "]" * 10_000 + "]",
    "json-depth-objects": '421["echo",' + '{"a":' * 40 + "1" + "}" * 40 + "]",
    # binary packets left incomplete / abused
    "binary-header-then-text": '451-["echo",{"_placeholder":true,"num":0}]',
    "binary-zero-attachments": '450-["echo"]',
    "binary-no-dash": '451["echo",{"_placeholder":true,"num":0}]',
    "binary-extra-key": '451-["echo",{"_placeholder":true,"num":0,"x":1}]',
    "binary-num-string": '451-["echo",{"_placeholder":true,"num":"0"}]',
    "binary-num-negative": '451-["echo",{"_placeholder":true,"num":-1}]',
    "binary-placeholder-false": '451-["echo",{"_placeholder":false,"num":0}]',
    "binary-attachments-huge-count": '4599999999-["echo"]',
}


@pytest.mark.parametrize("packet", list(CLOSING.values()), ids=list(CLOSING))
async def test_protocol_breaking_packet_closes_only_the_attacker(server: Any, packet: str) -> None:
    """Attack: one packet with a broken field (see the id). Expected: the attacker's connection
    closed at once; the bystander unaffected. A binary header is followed by a text packet
    (``binary-header-then-text``): the attachments never come."""
    packets: list[str | bytes] = [packet]
    if packet.startswith("45"):
        packets.append('42["echo","not an attachment"]')
    await attack(server, packets, closes=True)


HARMLESS = {
    "ack-unknown-id": '4310["nobody asked"]',
    "ack-id-max": '439007199254740991["x"]',
    "ack-twice": '437["x"]',
    "event-unknown": '42["no-such-event",1]',
    "event-empty-name": '42[""]',
    "event-empty-name-ack": '4212[""]',
    "event-unicode-name": '42["\u00e9v\u00e9nement\U0001f600"]',
    "event-huge-name": '42["' + "e" * 50_000 + '"]',
    "disconnect-other-namespace-then-reconnect": "40/admin,",
    "unknown-namespace-unicode": "40/\u00fcn\u00ef\u00e7\u00f8d\u00e9,",
    "placeholder-in-plain-event": '42["no-such-event",{"_placeholder":true,"num":0}]',
    "json-depth-32": '42["no-such-event",' + "[" * 31 + "]" * 31 + "]",
    "json-duplicate-keys": '42["no-such-event",{"a":1,"a":2}]',
    "json-big-int": '42["no-such-event",123456789012345678901234567890]',
}


@pytest.mark.parametrize("packet", list(HARMLESS.values()), ids=list(HARMLESS))
async def test_useless_but_wellformed_packet_is_ignored(server: Any, packet: str) -> None:
    """Attack: well-formed packets that ask for nothing the server has (an ack id nobody
    awaits, an event with no listener, an unknown namespace). Expected: ignored (or answered
    as the protocol says: ``44`` for an unknown namespace); the connection stays usable."""
    await attack(server, [packet], closes=False)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("x" * 90_000, None),
        (list(range(15_000)), None),
        ([{"k": i} for i in range(5_000)], None),
        ({f"key{i}": i for i in range(5_000)}, None),
        ("\u00e9\U0001f600\u0000\u001f\u2028", None),
        (NESTED_31, None),
    ],
    ids=["string-90k", "array-15k", "objects-5k", "object-5k-keys", "odd-unicode", "depth-31"],
)
async def test_large_json_under_the_caps_round_trips(
    server: Any, value: Any, expected: Any
) -> None:
    """Attack: values as large as the caps allow (payload 100,000 bytes here, depth 32).
    Expected: accepted and echoed exactly, promptly; the bystander keeps its echo."""
    async with sio_ws(server) as bystander, sio_ws(server) as client:
        started = trio.current_time()
        await client.echo(5, value if expected is None else expected)
        assert trio.current_time() - started < AT_ONCE
        await bystander.echo(1, "after")


async def test_attachment_bomb_under_the_caps_is_bounded(server: Any) -> None:
    """Attack: BINARY_EVENTs with the maximum 10 attachments, each just under the payload cap
    (about 1 MB per packet), 10 times over. Expected: handled (acked with the same bytes), the
    server's memory does not keep them, the bystander keeps its echo."""
    blob = b"\xab" * (MAX_PAYLOAD - 10)
    placeholders = ",".join(f'{{"_placeholder":true,"num":{i}}}' for i in range(10))
    async with sio_ws(server) as bystander, sio_ws(server) as client:
        for n in range(10):
            await client.send(f'4510-{n}["no-such-event",{placeholders}]')
            for _ in range(10):
                await client.send(blob)
        await client.send(f'4510-77["echo",{placeholders}]')
        for _ in range(10):
            await client.send(blob)
        ack = await client.recv()
        assert ack == f"4610-77[{placeholders}]", ack
        for _ in range(10):
            assert await client.recv() == blob
        await bystander.echo(1, "after")


async def test_binary_header_left_pending_is_bounded(server: Any) -> None:
    """Attack: a binary header announcing 10 attachments, then only 9, then nothing.
    Expected: the connection simply waits (nothing is handled, no ack); when the attacker
    hangs up the session is gone from /health; nobody else notices."""
    async with sio_ws(server) as bystander:
        base = (await health(server))["connections"]
        async with sio_ws(server) as client:
            placeholders = ",".join(f'{{"_placeholder":true,"num":{i}}}' for i in range(10))
            await client.send(f'4510-3["echo",{placeholders}]')
            for _ in range(9):
                await client.send(b"\x00" * 1000)
            with trio.move_on_after(0.3):
                got = await client.recv()
                raise AssertionError(f"an incomplete binary packet was answered: {got!r}")
            await bystander.echo(1, "during")

        async def gone() -> bool:
            return bool((await health(server))["connections"] == base)

        await wait_until(gone, 5)
        await bystander.echo(2, "after")


async def test_ack_id_reuse_and_many_pending_acks(server: Any) -> None:
    """Ack-id abuse: 500 events all with the same ack id, and ids at the top of the range.
    Expected: each answered with its own ``43<id>`` in order (ids are the client's business);
    the server keeps no state per id."""
    async with sio_ws(server) as client:
        for i in range(500):
            await client.send("427" + dumps(["echo", i]))
        for i in range(500):
            assert await client.recv() == "437" + dumps([i])
        top = 2**53 - 1
        await client.send(f"42{top}" + dumps(["echo", "top"]))
        assert await client.recv() == f"43{top}" + dumps(["top"])


async def test_events_on_a_namespace_left_are_refused(server: Any) -> None:
    """Attack: join ``/admin``, leave it (``41/admin,``), then keep sending events there.
    Expected: the first such event closes the connection (namespace not connected)."""
    async with sio_ws(server) as client:
        await client.connect("/admin")
        await client.send('42/admin,1["whoami"]')
        assert (await client.recv()).startswith("43/admin,1[")
        await client.send("41/admin,")
        await client.echo(2, "root still connected")
        await client.send('42/admin,3["whoami"]')
        await client.expect_closed()
