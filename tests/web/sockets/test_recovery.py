"""Connection state recovery with stock socket.io-client 4.8: a client whose transport is cut
comes back with its id, its rooms and every broadcast it missed, exactly once, in order; again
and again; after a server restart; never with another user's token; never past the maximum
disconnection duration."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.processes import NODE_DIR, ServerProcess
from tests.support.servers import INTEROP_SERVER
from tests.support.tokens import interop_token

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

WAIT_SECONDS = 10.0
RECOVERY = ["--set", "connection_state_recovery=true", "--set", "test_clock=true"]
Line = dict[str, Any]


class Driver:
    """tests/node/driver.js: stock clients driven one command at a time."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            ["node", str(NODE_DIR / "driver.js")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=NODE_DIR.parent,
        )  # fmt: skip
        self.lines: queue.Queue[Line] = queue.Queue()
        self.numbers: dict[str, list[int]] = {}  # the "n" broadcasts each client received
        self.arrived = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for text in self.proc.stdout:
            line: Line = json.loads(text)
            if line.get("event") == "message" and line["message"][0] == "n":
                with self.arrived:
                    self.numbers.setdefault(line["name"], []).append(line["message"][1])
                    self.arrived.notify_all()
            self.lines.put(line)

    def expect(self, match: Callable[[Line], bool]) -> Line:
        while True:
            line = self.lines.get(timeout=WAIT_SECONDS)
            if match(line):
                return line

    def expect_event(self, event: str, name: str) -> Line:
        return self.expect(lambda line: line.get("event") == event and line.get("name") == name)

    def expect_number(self, name: str, n: int) -> None:
        """Wait until ``name`` has received the broadcast number ``n``."""
        with self.arrived:
            got = self.arrived.wait_for(lambda: n in self.numbers.get(name, []), WAIT_SECONDS)
        assert got, (name, n, self.numbers.get(name))

    def do(self, op: str, name: str, **fields: Any) -> Line:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, "name": name, **fields}) + "\n")
        self.proc.stdin.flush()
        done = self.expect(lambda line: line.get("done") == op and line.get("name") == name)
        assert "error" not in done, done
        return done

    def open(self, name: str, url: str, user: str) -> Line:
        self.do("open", name, url=url, token=interop_token(user, ttl=600))
        return self.expect_event("connect", name)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=5)


@pytest.fixture
def driver() -> Iterator[Driver]:
    d = Driver()
    yield d
    d.close()


def bcast(d: Driver, sender: str, n: int) -> None:
    d.do("call", sender, event="bcast", args=[{"room": "csr", "event": "n", "args": [n]}])


def start_scenario(d: Driver, url: str) -> str:
    """alice in the room "csr" (and bob beside her to broadcast), having received 1."""
    first = d.open("a", url, "alice")
    assert first["recovered"] is False
    d.open("b", url, "bob")
    d.do("call", "a", event="join", args=["csr"])
    bcast(d, "b", 1)
    d.expect_number("a", 1)
    return str(first["id"])


def reconnect(d: Driver, name: str) -> Line:
    d.do("connect", name)
    return d.expect_event("connect", name)


@pytest.mark.parametrize("cut", ["server", "killed"])
def test_a_cut_client_recovers_id_rooms_and_missed_broadcasts(
    server_factory: Callable[..., ServerProcess], driver: Driver, cut: str
) -> None:
    server = server_factory(INTEROP_SERVER, *RECOVERY)
    sid = start_scenario(driver, server.url)
    for round_ in range(3):  # recovery works any number of times
        if cut == "server":
            driver.do("emit", "a", event="drop-transport")
        else:
            driver.do("cut", "a")
        driver.expect_event("disconnect", "a")
        base = 1 + 4 * round_
        for n in (base + 1, base + 2, base + 3):
            bcast(driver, "b", n)
        back = reconnect(driver, "a")
        assert (back["id"], back["recovered"]) == (sid, True)
        bcast(driver, "b", base + 4)  # its room came back too
        driver.expect_number("a", base + 4)
    assert driver.numbers["a"] == list(range(1, 14))  # every broadcast once, in order


def test_recovery_survives_a_server_restart(
    server_factory: Callable[..., ServerProcess], driver: Driver, tmp_path: Path
) -> None:
    data = ["--set", f"data_dir={tmp_path}"]
    server = server_factory(INTEROP_SERVER, *RECOVERY, *data)
    sid = start_scenario(driver, server.url)
    server.stop()  # SIGTERM: the sessions it closes are kept, on disk
    driver.expect_event("disconnect", "a")
    with ServerProcess(INTEROP_SERVER, *RECOVERY, *data, port=server.port) as again:
        driver.open("c", again.url, "carol")
        driver.do("call", "c", event="bcast", args=[{"room": "csr", "event": "n", "args": [2]}])
        back = reconnect(driver, "a")
        assert (back["id"], back["recovered"]) == (sid, True)
        driver.expect_number("a", 2)
        assert driver.numbers["a"] == [1, 2]


def test_a_pid_with_another_users_token_recovers_nothing(
    server_factory: Callable[..., ServerProcess], driver: Driver
) -> None:
    server = server_factory(INTEROP_SERVER, *RECOVERY)
    sid = start_scenario(driver, server.url)
    pid = driver.do("state", "a")["pid"]
    driver.do("cut", "a")
    driver.expect_event("disconnect", "a")
    bcast(driver, "b", 2)
    stolen = raw_connect(server.url, interop_token("mallory", ttl=600), pid)
    assert stolen["sid"] != sid and stolen["pid"] != pid  # a fresh session, nothing replayed
    back = reconnect(driver, "a")  # the session stayed for its owner
    assert (back["id"], back["recovered"]) == (sid, True)
    driver.expect_number("a", 2)


def test_a_session_past_the_maximum_duration_is_not_recovered(
    server_factory: Callable[..., ServerProcess], driver: Driver
) -> None:
    server = server_factory(INTEROP_SERVER, *RECOVERY)
    sid = start_scenario(driver, server.url)
    driver.do("cut", "a")
    driver.expect_event("disconnect", "a")
    advanced = httpx.post(f"{server.url}/api/test/clock", json={"advance_seconds": 121})
    assert advanced.status_code == 200
    back = reconnect(driver, "a")
    assert back["recovered"] is False and back["id"] != sid


def raw_connect(url: str, token: str, pid: str) -> dict[str, str]:
    """A CONNECT with someone's pid over raw polling; returns the CONNECT reply's JSON."""
    with httpx.Client(base_url=url, timeout=5) as http:
        opened = http.get("/socket.io/", params={"EIO": "4", "transport": "polling"}).text
        params = {"EIO": "4", "transport": "polling", "sid": json.loads(opened[1:])["sid"]}
        body = "40" + json.dumps({"token": token, "pid": pid, "offset": "sb:1"})
        assert http.post("/socket.io/", params=params, content=body).text == "ok"
        reply = http.get("/socket.io/", params=params).text
    assert reply.startswith("40{"), reply
    answer: dict[str, str] = json.loads(reply.split("\x1e")[0][2:])
    return answer
