// Stock socket.io-client 4.8 sockets driven line by line, for tests that need to act between
// steps (cut a transport, restart a server, then reconnect).
//
//   node tests/node/driver.js        then JSON commands on stdin, one per line:
//   {"op": "open", "name": "a", "url": ..., "token": ..., "transports": [...]}
//   {"op": "call", "name": "a", "event": ..., "args": [...]}        -> {"reply": [...]}
//   {"op": "emit", "name": "a", "event": ..., "args": [...]}        (no ack)
//   {"op": "cut", "name": "a"}          destroy the client's TCP connection (no close frame)
//   {"op": "connect", "name": "a"}      connect again (after a disconnect; reconnection is off)
//   {"op": "state", "name": "a"}        -> {"id", "connected", "recovered", "received"}
// and prints, one JSON object per line, the answer to each command ({"done": <op>, ...}),
// every "connect" / "disconnect" of a socket and every event it receives ({"event":
// "message", "message": [event, ...args]}, binary as {"$bin": hex}). "state" also shows the
// client's private session id (pid).
"use strict";

const path = require("path");
const readline = require("readline");
const { io } = require(path.join(__dirname, "..", "node_modules", "socket.io-client"));

const sockets = {};
const received = {};

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function plain(v) {
  if (Buffer.isBuffer(v)) return { $bin: v.toString("hex") };
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

const ops = {
  open(cmd) {
    const socket = io(cmd.url, {
      auth: { token: cmd.token },
      transports: cmd.transports || ["websocket"],
      reconnection: false,
      forceNew: true,
    });
    sockets[cmd.name] = socket;
    received[cmd.name] = [];
    socket.onAny((event, ...args) => {
      received[cmd.name].push([event, ...plain(args)]);
      out({ event: "message", name: cmd.name, message: [event, ...plain(args)] });
    });
    socket.on("connect", () => out({ event: "connect", name: cmd.name, id: socket.id, recovered: socket.recovered }));
    socket.on("disconnect", (reason) => out({ event: "disconnect", name: cmd.name, reason }));
    socket.on("connect_error", (err) => out({ event: "connect_error", name: cmd.name, message: err.message }));
    return {};
  },
  async call(cmd) {
    const reply = await sockets[cmd.name].timeout(5000).emitWithAck(cmd.event, ...(cmd.args || []));
    return { reply: plain(reply) };
  },
  emit(cmd) {
    sockets[cmd.name].emit(cmd.event, ...(cmd.args || []));
    return {};
  },
  cut(cmd) {
    const transport = sockets[cmd.name].io.engine.transport;
    if (transport.ws && transport.ws._socket) transport.ws._socket.destroy();
    else throw new Error("cut needs a WebSocket transport");
    return {};
  },
  connect(cmd) {
    sockets[cmd.name].connect();
    return {};
  },
  state(cmd) {
    const s = sockets[cmd.name];
    return {
      id: s.id, connected: s.connected, recovered: s.recovered, pid: s._pid,
      received: received[cmd.name],
    };
  },
};

readline.createInterface({ input: process.stdin }).on("line", async (line) => {
  const cmd = JSON.parse(line);
  try {
    out({ done: cmd.op, name: cmd.name, ...(await ops[cmd.op](cmd)) });
  } catch (err) {
    out({ done: cmd.op, name: cmd.name, error: String(err.message || err) });
  }
});
process.stdin.on("end", () => process.exit(0));
