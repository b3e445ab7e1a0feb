"""Sans-IO Engine.IO v4 / Socket.IO v5 / WebSocket framing: bytes in, typed events out, and back.

Nothing in this package performs I/O, reads a clock or imports trio; every malformed input raises
:class:`protocol.errors.ProtocolError` (or a subclass) and nothing else.
"""
