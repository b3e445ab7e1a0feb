"""The server programs the tests run, by path from the repository root (``python PATH --port N``).

* ``interop_server.py`` - a small JWT-protected Socket.IO app for real clients (echo, rooms,
  binary, acks both ways, test-only fault hooks); secret ``tokens.INTEROP_SECRET``.
* ``conformance_server.py`` - the conformance server of docs/protocol.md (``--mode engineio`` or
  ``socketio``), for tests/conformance and the official suites.
* ``product_server.py`` - ``switchboard serve`` itself.
"""

from __future__ import annotations

FOLDER = "tests/support/servers"
INTEROP_SERVER = f"{FOLDER}/interop_server.py"
CONFORMANCE_SERVER = f"{FOLDER}/conformance_server.py"
PRODUCT_SERVER = f"{FOLDER}/product_server.py"
#: the line ``switchboard serve`` prints once it listens
PRODUCT_READY = "Switchboard listening on"
