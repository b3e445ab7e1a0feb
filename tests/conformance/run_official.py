"""Run the official Socket.IO protocol test suites against the conformance server, by hand.

    python tests/conformance/run_official.py PATH [--runs N]      (make conformance SUITES=PATH)

PATH is a local checkout of socketio/socket.io; its suites live under ``docs/`` (never copied
here). Each suite gets its own conformance server on port 3000 (the port the suites expect):
the Engine.IO v3 and v4 suites against ``--mode engineio``, the Socket.IO v5 suite against
``--mode socketio``, on the native WebSocket path and then the ASGI-only one. Prints the mocha
counts of every run; exits 1 if any test failed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.processes import REPO_ROOT as REPO
from tests.support.processes import wait_for_port
from tests.support.servers import CONFORMANCE_SERVER

SUITES = [
    ("engine.io v3", "docs/engine.io-protocol/v3-test-suite", "engineio"),
    ("engine.io v4", "docs/engine.io-protocol/v4-test-suite", "engineio"),
    ("socket.io v5", "docs/socket.io-protocol/v5-test-suite", "socketio"),
]
PORT = 3000
START_TIMEOUT_SECONDS = 15.0


def run_suite(folder: Path, mode: str, asgi: bool) -> tuple[int, int, int]:
    if not (folder / "node_modules").is_dir():
        subprocess.run(["npm", "ci", "--silent", "--no-audit", "--no-fund"], cwd=folder, check=True)
    command = [sys.executable, CONFORMANCE_SERVER, "--mode", mode, "--port", str(PORT)]
    server = subprocess.Popen([*command, *(["--asgi-only"] if asgi else [])], cwd=REPO)
    try:
        wait_for_port(
            PORT,
            START_TIMEOUT_SECONDS,
            alive=lambda: server.poll() is None,
            what="the conformance server",
        )
        done = subprocess.run(
            ["npx", "mocha", "test-suite.js"], cwd=folder, capture_output=True, text=True
        )
    finally:
        server.terminate()
        server.wait(10)
    counts = [
        int(m.group(1)) if (m := re.search(rf"(\d+) {word}", done.stdout)) else 0
        for word in ("passing", "failing", "pending")
    ]
    if counts[1]:
        print(done.stdout[-4000:])
    return counts[0], counts[1], counts[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("checkout", type=Path, help="a local checkout of socketio/socket.io")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    failed = 0
    for name, relative, mode in SUITES:
        for path_name, asgi in (("native", False), ("asgi", True)):
            for run in range(args.runs):
                passing, failing, pending = run_suite(args.checkout / relative, mode, asgi)
                failed += failing
                print(
                    f"{name:<13} {path_name:<6} run {run + 1}: {passing} passing, "
                    f"{failing} failing, {pending} pending (skipped by the suite)",
                    flush=True,
                )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
