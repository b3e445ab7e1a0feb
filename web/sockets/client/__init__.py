"""The stock Socket.IO browser client, served beside the Engine.IO endpoint (Node's serveClient).

Pinned copies of socket.io-client's bundles (``web/vendor/package.json``; refreshed with
``make vendor``) with their licence, so a page can load ``/socket.io/socket.io.min.js`` from
the server it talks to.
"""

from __future__ import annotations

from pathlib import Path

CLIENT_DIR = Path(__file__).resolve().parent
BUNDLES = ("socket.io.min.js", "socket.io.esm.min.js", "socket.io.msgpack.min.js")
