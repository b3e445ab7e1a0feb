"""Run the product server (``switchboard serve``) for tests:
``python tests/support/servers/product_server.py --port N [serve flags]``. Readiness line:
``Switchboard listening on`` (``tests.support.servers.PRODUCT_READY``)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from web.cli import main

if __name__ == "__main__":
    main(["serve", *sys.argv[1:]])
