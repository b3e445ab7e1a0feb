"""Run the product server (``switchboard serve``) for tests: ``python tests/product_server.py
--port N [serve flags]``. Readiness line: ``Switchboard listening on``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from web.cli import main

READY = "Switchboard listening on"

if __name__ == "__main__":
    main(["serve", *sys.argv[1:]])
