// The Node socket.io peer: the identical tiny benchmark app on socket.io's own HTTP server.
//
//   node benchmarks/peers/node/server.js --port N [--redis URL] [--parser msgpack]
//   (npm ci here first; make bench does)
//
// With --redis: one node of a cluster, on @socket.io/redis-adapter (as typical Node deployments).
// With --parser msgpack: socket.io-msgpack-parser for the whole server (Node has one parser per
// server, so its MessagePack figures come from a server of their own).
//
// join (room) acks {ok: true}; echo acks its arguments; bcast {room, payload} emits msg to the
// room; rss acks the process's resident set size in bytes. Same events and answers as
// benchmarks/server.py and benchmarks/peers/python_socketio_server.py.
"use strict";

const http = require("node:http");
const { Server } = require("socket.io");

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  return at >= 0 && at + 1 < process.argv.length ? process.argv[at + 1] : fallback;
}

const host = option("--host", "127.0.0.1");
const port = Number(option("--port", "8002"));
const redisUrl = option("--redis", "");
const parser = option("--parser", "json");
const httpServer = http.createServer();
const io = new Server(httpServer, {
  cors: { origin: "*" },
  ...(parser === "msgpack" ? { parser: require("socket.io-msgpack-parser") } : {}),
});

function lastIsAck(args) {
  return args.length > 0 && typeof args[args.length - 1] === "function" ? args.pop() : null;
}

io.on("connection", (socket) => {
  socket.on("join", (room, ack) => {
    socket.join(room);
    if (typeof ack === "function") ack({ ok: true });
  });
  socket.on("echo", (...args) => {
    const ack = lastIsAck(args);
    if (ack) ack(...args);
  });
  socket.on("bcast", (message, ack) => {
    io.to(message.room).emit("msg", message.payload);
    if (typeof ack === "function") ack();
  });
  socket.on("rss", (...args) => {
    const ack = lastIsAck(args);
    if (ack) ack(process.memoryUsage().rss);
  });
});

async function start() {
  if (redisUrl) {
    const { createAdapter } = require("@socket.io/redis-adapter");
    const { createClient } = require("redis");
    const pub = createClient({ url: redisUrl });
    const sub = pub.duplicate();
    await Promise.all([pub.connect(), sub.connect()]);
    io.adapter(createAdapter(pub, sub));
  }
  httpServer.listen({ host, port, backlog: 4096 }, () => {
    console.log(`ready on ${port}`);
  });
}

start().catch((err) => { console.error(err); process.exit(1); });
