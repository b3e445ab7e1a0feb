"""The python-socketio peer: AsyncServer on uvicorn with the identical tiny benchmark app.

``python -m benchmarks.peers.python_socketio_server --port N [--parser msgpack]`` (needs the
``bench`` extra). python-socketio has one serializer per server, so its MessagePack figures come
from a server of their own.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import socketio
import uvicorn

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * _PAGE_SIZE


def build(serializer: str = "default") -> Any:
    sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*", serializer=serializer)

    @sio.on("join")
    async def join(sid: str, room: str) -> dict[str, bool]:
        await sio.enter_room(sid, room)
        return {"ok": True}

    @sio.on("echo")
    async def echo(sid: str, *args: Any) -> Any:
        return args

    @sio.on("bcast")
    async def bcast(sid: str, message: dict[str, Any]) -> None:
        await sio.emit("msg", message.get("payload"), room=message.get("room"))

    @sio.on("rss")
    async def rss(sid: str, *args: Any) -> int:
        return rss_bytes()

    return socketio.ASGIApp(sio)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--parser", choices=["json", "msgpack"], default="json")
    args = parser.parse_args()
    print(f"ready on {args.port}", flush=True)
    serializer = "msgpack" if args.parser == "msgpack" else "default"
    app = build(serializer)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", backlog=4096)


if __name__ == "__main__":
    main()
