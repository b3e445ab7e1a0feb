// socket.io-client scenarios against tests/support/servers/interop_server.py; prints ONE JSON result line.
//
//   node tests/node/interop_client.js '{"scenario": "basic", "url": "http://127.0.0.1:N",
//        "token": "...", "transports": ["websocket"], "timeoutMs": 10000}'
//
// Scenarios: basic (connect, echo with ack, binary both ways, server->client emit with ack,
// whoami), multiplex (io(url) and io(url + "/admin") on one Manager), auth (expects
// connect_error on "/" and "/admin"; reports err.message), rooms (three clients, tokens[]).
// "parser": "msgpack" makes the clients use socket.io-msgpack-parser ("parsers": [...] in the
// rooms scenario gives each client its own). Binary values are reported as {"$bin": "<hex>"}.
// Exits 2 on timeout, 1 on any other error.
"use strict";

const path = require("path");
const { io } = require(path.join(__dirname, "..", "node_modules", "socket.io-client"));

const cfg = JSON.parse(process.argv[2] || "{}");
const TIMEOUT = cfg.timeoutMs || 10000;
const ACK_TIMEOUT = Math.min(5000, TIMEOUT);
let stage = "start";
const sockets = [];

function finish(result, code) {
  for (const s of sockets) {
    try { s.disconnect(); } catch (e) { /* ignore */ }
  }
  process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(code));
}

const timer = setTimeout(() => finish({ ok: false, error: "timeout", stage }, 2), TIMEOUT);

// JSON-safe view of values: Buffers / ArrayBuffers / typed arrays as {"$bin": hex}
function plain(value) {
  if (Buffer.isBuffer(value)) return { $bin: value.toString("hex") };
  if (value instanceof ArrayBuffer) return { $bin: Buffer.from(value).toString("hex") };
  if (ArrayBuffer.isView(value)) {
    return { $bin: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("hex") };
  }
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = plain(v);
    return out;
  }
  return value;
}

function connect(url, extra = {}) {
  const opts = {
    transports: cfg.transports || ["websocket"],
    reconnection: false,
    timeout: ACK_TIMEOUT,
    ...extra,
  };
  if (cfg.query) opts.query = cfg.query;
  if (cfg.extraHeaders) opts.extraHeaders = cfg.extraHeaders;
  delete opts.parser;
  if ((extra.parser || cfg.parser) === "msgpack") {
    opts.parser = require(path.join(__dirname, "..", "node_modules", "socket.io-msgpack-parser"));
  }
  const socket = io(url, opts);
  sockets.push(socket);
  return socket;
}

function connected(socket) {
  return new Promise((resolve, reject) => {
    if (socket.connected) return resolve(socket);
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => reject(err));
  });
}

function refused(socket) {
  return new Promise((resolve, reject) => {
    socket.once("connect", () => reject(new Error("connected although it should not")));
    socket.once("connect_error", (err) => resolve(err));
  });
}

// emit with an ack; resolves with ALL the ack's arguments
function call(socket, event, ...args) {
  return new Promise((resolve, reject) => {
    socket.timeout(ACK_TIMEOUT).emit(event, ...args, (err, ...resp) => {
      if (err) reject(new Error(`no ack for ${event}: ${err.message}`));
      else resolve(resp);
    });
  });
}

// events received, per socket and name, with a wait for the next one
function recorder(socket) {
  const seen = {};
  const waiters = {};
  socket.onAny((event, ...args) => {
    if (typeof args[args.length - 1] === "function") return; // acked emits are handled apart
    if (waiters[event] && waiters[event].length) waiters[event].shift()(args);
    else (seen[event] = seen[event] || []).push(args);
  });
  return {
    next(event) {
      if (seen[event] && seen[event].length) return Promise.resolve(seen[event].shift());
      return new Promise((resolve) => (waiters[event] = waiters[event] || []).push(resolve));
    },
    count(event) {
      return (seen[event] || []).length;
    },
  };
}

async function waitTransport(socket, name) {
  const engine = socket.io.engine;
  if (engine.transport.name === name) return name;
  await new Promise((resolve) => engine.once("upgrade", resolve));
  return engine.transport.name;
}

const BLOB = Buffer.from(Array.from({ length: 300 }, (_, i) => i % 256));

const scenarios = {
  async basic() {
    const result = {};
    stage = "connect";
    const socket = connect(cfg.url, { auth: { token: cfg.token } });
    const rec = recorder(socket);
    socket.on("question", (...args) => {
      const ack = args.pop();
      ack("got", ...args);
    });
    await connected(socket);
    result.sid = socket.id;
    stage = "upgrade";
    result.transport = await waitTransport(socket, cfg.expectTransport || "websocket");
    stage = "echo";
    result.echo = await call(socket, "echo", "hello", 1, { a: [true, null, 2.5] }, "ünïcødé ✓ 🚀");
    stage = "whoami";
    result.whoami = (await call(socket, "whoami"))[0];
    stage = "binary";
    result.binaryAck = plain(await call(socket, "binary-echo", BLOB, { nested: Buffer.from([0, 255]) }));
    result.binaryBack = plain(await rec.next("binary-back"));
    stage = "ask-client";
    result.askAck = await call(socket, "ask-client", "ping?", 42);
    result.answer = await rec.next("answer");
    result.answerTimeouts = rec.count("answer-timeout");
    result.finalTransport = socket.io.engine.transport.name;
    return result;
  },

  async multiplex() {
    const result = {};
    stage = "connect";
    const root = connect(cfg.url, { auth: { token: cfg.token } });
    const admin = connect(cfg.url + "/admin", { auth: { token: cfg.token } });
    await Promise.all([connected(root), connected(admin)]);
    result.sameManager = root.io === admin.io;
    result.engineCount = new Set([root.io.engine.id, admin.io.engine.id]).size;
    result.sids = [root.id, admin.id];
    stage = "upgrade";
    result.transport = await waitTransport(root, cfg.expectTransport || "websocket");
    stage = "whoami";
    result.root = (await call(root, "whoami"))[0];
    result.admin = (await call(admin, "whoami"))[0];
    stage = "admin-disconnect";
    admin.disconnect(); // leaving one namespace keeps the other (and the connection) alive
    result.echoAfter = await call(root, "echo", "still here");
    result.engineOpen = root.io.engine.readyState;
    return result;
  },

  async auth() {
    stage = "connect";
    const extra = cfg.token === undefined ? {} : { auth: { token: cfg.token } };
    const root = connect(cfg.url, extra);
    const admin = connect(cfg.url + "/admin", extra);
    const [e1, e2] = await Promise.all([refused(root), refused(admin)]);
    return {
      root: { message: e1.message, data: e1.data === undefined ? null : e1.data },
      admin: { message: e2.message, data: e2.data === undefined ? null : e2.data },
    };
  },

  async rooms() {
    stage = "connect";
    const parsers = cfg.parsers || [];
    const [a, b, c] = cfg.tokens.map((token, i) =>
      connect(cfg.url, { auth: { token }, forceNew: true, parser: parsers[i] }),
    );
    const [ra, rb, rc] = [a, b, c].map(recorder);
    await Promise.all([a, b, c].map(connected));
    const result = { distinctEngines: new Set([a, b, c].map((s) => s.io.engine.id)).size };
    stage = "join";
    result.joins = [
      (await call(a, "join", "red"))[0],
      (await call(b, "join", "red"))[0],
      (await call(c, "join", "blue"))[0],
    ];
    stage = "bcast";
    await call(a, "bcast", { room: "red", event: "news", args: [1, "x", { y: null }] });
    result.newsA = await ra.next("news");
    result.newsB = await rb.next("news");
    await call(a, "bcast", { room: "blue", event: "marker", args: ["m1"] });
    result.markerC = await rc.next("marker");
    result.newsAtC = rc.count("news");
    stage = "bcast-others";
    await call(a, "bcast-others", { room: "red", event: "others", args: ["o"] });
    result.othersB = await rb.next("others");
    await call(a, "bcast", { room: "red", event: "marker", args: ["m2"] });
    result.markerA = await ra.next("marker");
    await rb.next("marker");
    result.othersAtA = ra.count("others");
    stage = "binary-bcast";
    await call(c, "bcast", { room: "red", event: "blob", args: [Buffer.from([1, 2, 3])] });
    result.blobA = plain(await ra.next("blob"));
    result.blobB = plain(await rb.next("blob"));
    stage = "leave";
    result.leave = (await call(b, "leave", "red"))[0];
    await call(c, "bcast", { room: "red", event: "late", args: [] });
    result.lateA = await ra.next("late");
    await call(a, "bcast", { room: b.id, event: "marker", args: ["m3"] });
    result.markerB = await rb.next("marker");
    result.lateAtB = rb.count("late");
    result.lateAtC = rc.count("late");
    return result;
  },

  // joins a room, prints {"joined": ...} and waits for cfg.waitFor events there (for tests that
  // drive a Node client from Python: two result lines, the last is the final result)
  async member() {
    stage = "connect";
    const socket = connect(cfg.url, { auth: { token: cfg.token } });
    const rec = recorder(socket);
    await connected(socket);
    const joined = (await call(socket, "join", cfg.room))[0];
    process.stdout.write(JSON.stringify({ joined, sid: socket.id }) + "\n");
    stage = "wait";
    return { ok: true, received: plain(await rec.next(cfg.waitFor)) };
  },
};

(async () => {
  const scenario = scenarios[cfg.scenario];
  if (!scenario) throw new Error(`unknown scenario ${cfg.scenario}`);
  const result = await scenario();
  clearTimeout(timer);
  finish({ ok: true, ...result }, 0);
})().catch((err) => {
  clearTimeout(timer);
  finish({ ok: false, error: String(err && err.message), stage }, 1);
});
