"""The single exception type every decoder in :mod:`protocol` raises on bad peer input."""

from __future__ import annotations

__all__ = ["ProtocolError"]


class ProtocolError(ValueError):
    """A peer sent bytes that break the protocol. str(err) is a short reason, safe to log/send.

    Subclassing ValueError lets callers that only care about "bad input" catch one familiar type;
    the reason never echoes peer data, so it cannot be used to inject into logs or replies.
    """
