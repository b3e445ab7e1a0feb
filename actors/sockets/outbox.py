"""What actors hand to a connection: encoded frames, and the connection interface they push to.

A frame is encoded ONCE, whoever receives it: a room broadcast builds one :class:`OutFrame` and
offers the same object to every member. The WebSocket framing of it is built on first use and
cached, so a thousand native-WebSocket members share one ``bytes`` object; long-polling members
use the Engine.IO packet bytes directly.
"""

from __future__ import annotations

from typing import Protocol

from protocol import engineio, msgpack_parser
from protocol.engineio_v3 import MESSAGE_BYTE
from protocol.socketio import PacketType
from protocol.websocket import frame_binary, frame_text

# A Socket.IO packet's parts, kept by the frame that carries it: (type, namespace, data, ack id)
SioParts = tuple[PacketType, str, object, int | None]

# What queuing a frame costs beyond its bytes: the OutFrame object, the header of its packet's
# ``bytes`` and the queue's slot (measured: ~160 bytes for a tiny ack), plus a header and a slot
# per attachment. The outbox bound counts this too, so many tiny packets cost what they really
# take (a polling session that never polls is cut off at max_outbox_bytes of real memory).
FRAME_OVERHEAD_BYTES = 160
ATTACHMENT_OVERHEAD_BYTES = 48

# Frames encoded, by kind ("4" + Socket.IO type digit, or the Engine.IO type): a broadcast is
# one frame however many receive it (deliveries are counted by the rooms). Read by /metrics.
ENCODED: dict[bytes, int] = {}


class OutFrame:
    """One outgoing Engine.IO packet (plus binary attachments), shared by every recipient."""

    __slots__ = ("_msgpack", "_ws", "_ws_v3", "attachments", "packet", "sio", "size", "volatile")

    def __init__(
        self,
        packet: bytes,
        attachments: tuple[bytes, ...] = (),
        *,
        volatile: bool = False,
        sio: SioParts | None = None,
    ) -> None:
        self.packet = packet  # a full Engine.IO text packet, e.g. b'42["msg",1]'; b"" for none
        self.attachments = attachments
        self.volatile = volatile  # may be dropped, rather than the client cut off, when backed up
        self.size = (
            FRAME_OVERHEAD_BYTES
            + len(packet)
            + sum(len(a) + ATTACHMENT_OVERHEAD_BYTES for a in attachments)
        )
        self._ws: bytes | None = None
        self._ws_v3: bytes | None = None
        # the Socket.IO packet this frame carries, for clients of another parser (MessagePack)
        self.sio = sio
        self._msgpack: OutFrame | None = None
        kind = packet[:2] if packet[:1] == b"4" else packet[:1]
        ENCODED[kind] = ENCODED.get(kind, 0) + 1

    @property
    def ws(self) -> bytes:
        """The WebSocket frames for this packet, built once and shared."""
        ws = self._ws
        if ws is None:
            ws = frame_text(self.packet) if self.packet else b""
            if self.attachments:
                ws += b"".join(frame_binary(a) for a in self.attachments)
            self._ws = ws
        return ws

    @property
    def ws_v3(self) -> bytes:
        """The same for an Engine.IO v3 client: its binary messages start with the type byte."""
        ws = self._ws_v3
        if ws is None:
            ws = frame_text(self.packet) if self.packet else b""
            if self.attachments:
                ws += b"".join(frame_binary(MESSAGE_BYTE + a) for a in self.attachments)
            self._ws_v3 = ws
        return ws

    def for_msgpack(self) -> OutFrame:
        """The same packet for a socket.io-msgpack-parser client: one binary message, encoded
        once for all of them (an Engine.IO-only frame is the same for every parser)."""
        if self.sio is None:
            return self
        frame = self._msgpack
        if frame is None:
            frame = OutFrame(b"", (msgpack_parser.encode_parts(*self.sio),), volatile=self.volatile)
            self._msgpack = frame
        return frame

    def messages(self, protocol: int = 4) -> list[str | bytes]:
        """One item per WebSocket message, for transports that send messages (ASGI)."""
        binary = [MESSAGE_BYTE + a for a in self.attachments] if protocol == 3 else self.attachments
        if not self.packet:
            return list(binary)
        return [self.packet.decode(), *binary]

    def polling_items(self) -> list[bytes]:
        """Items for :func:`protocol.engineio.encode_payload`."""
        binary: list[bytes] = [engineio.BinaryMessage(a) for a in self.attachments]
        return [self.packet, *binary] if self.packet else binary

    @classmethod
    def binary(cls, data: bytes) -> OutFrame:
        """A bare binary Engine.IO message (no Socket.IO packet in front of it)."""
        return cls(b"", (data,))


def engine_frame(ptype: engineio.PacketType, data: str = "") -> OutFrame:
    return OutFrame(engineio.encode_packet(ptype, data))


# Shared control frames: sent many times, so each send is counted where it happens.
PING = engine_frame(engineio.PacketType.PING)
NOOP = engine_frame(engineio.PacketType.NOOP)
CLOSE = engine_frame(engineio.PacketType.CLOSE)
ENCODED.clear()


def count_sent(frame: OutFrame) -> None:
    """Count one send of a shared control frame."""
    kind = frame.packet[:1]
    ENCODED[kind] = ENCODED.get(kind, 0) + 1


class Connection(Protocol):
    """One Engine.IO connection, as the actors see it: a bounded outbox and a way to end it."""

    sid: str
    closed: bool

    @property
    def transport_name(self) -> str:
        """The transport it is on now: ``polling`` or ``websocket``."""

    def push(self, frame: OutFrame) -> None:
        """Queue ``frame`` without waiting. Past the outbox bound a volatile frame is dropped and
        any other frame ends the connection as a slow consumer."""

    def close(self, reason: str) -> None:
        """End the connection (sends an Engine.IO close where the transport still can)."""
