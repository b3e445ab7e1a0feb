// A stock socket.io-client 2.x (Engine.IO v3, Socket.IO protocol v4) against
// tests/support/servers/interop_server.py; prints ONE JSON result line.
//
//   node tests/node/v2_client.js '{"url": "http://127.0.0.1:N", "token": "...",
//        "transports": ["polling"] | ["websocket"] | ["polling", "websocket"]}'
//
// Connects "/" and "/admin" with the JWT in the query (as v2 apps do), then: echo with an ack,
// binary both ways, an ack the server asks of the client, whoami on both namespaces, a room
// joined by a second client and a broadcast from the first; reports what came back, and the
// final transport. A client without a token reports its connection error instead.
"use strict";

const path = require("path");
const io = require(path.join(__dirname, "..", "node_modules", "socket.io-client-v2"));

const cfg = JSON.parse(process.argv[2] || "{}");
const TIMEOUT = 10000;
const sockets = [];
let stage = "start";

function finish(result, code) {
  for (const s of sockets) { try { s.close(); } catch (e) { /* ignore */ } }
  process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(code));
}
setTimeout(() => finish({ ok: false, error: "timeout", stage }, 2), TIMEOUT);

function open(nsp, query) {
  const socket = io(cfg.url + nsp, {
    transports: cfg.transports || ["websocket"],
    reconnection: false,
    forceNew: true,
    query,
  });
  sockets.push(socket);
  return socket;
}

function connected(socket) {
  return new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", (e) => reject(new Error(`error: ${JSON.stringify(e)}`)));
    socket.once("connect_error", (e) => reject(new Error(`connect_error: ${e.message || e}`)));
  });
}

function call(socket, event, ...args) {
  return new Promise((resolve) => socket.emit(event, ...args, (...answer) => resolve(answer)));
}

function hex(value) {
  return Buffer.isBuffer(value) ? value.toString("hex") : value;
}

async function refused() {
  const socket = open("/", {});
  const reason = await new Promise((resolve) => {
    socket.once("error", (e) => resolve(String(e)));
    socket.once("connect", () => resolve("connected"));
  });
  return { ok: true, refused: reason };
}

async function main() {
  if (!cfg.token) return finish(await refused(), 0);
  const query = { token: cfg.token };
  const main = open("/", query);
  stage = "connect /";
  await connected(main);
  const admin = open("/admin", query);
  stage = "connect /admin";
  await connected(admin);
  stage = "echo";
  const echo = await call(main, "echo", 1, "two", { three: [3] });
  stage = "binary";
  const back = new Promise((resolve) => main.once("binary-back", (b) => resolve(hex(b))));
  const binaryAck = await call(main, "binary-echo", Buffer.from([1, 2, 3]));
  const binaryEvent = await back;
  stage = "ask-client";
  main.on("question", (n, ack) => ack(n * 2));
  const answered = new Promise((resolve) => main.once("answer", resolve));
  await call(main, "ask-client", 21);
  const answer = await answered;
  stage = "whoami";
  const [mainWho] = await call(main, "whoami");
  const [adminWho] = await call(admin, "whoami");
  stage = "rooms";
  const other = open("/", query);
  await connected(other);
  await call(other, "join", "v2-room");
  const got = new Promise((resolve) => other.once("v2-news", resolve));
  await call(main, "bcast", { room: "v2-room", event: "v2-news", args: ["hi"] });
  const news = await got;
  const engine = main.io.engine;
  if ((cfg.transports || []).includes("websocket") && engine.transport.name !== "websocket") {
    stage = "upgrade";
    await new Promise((resolve) => engine.once("upgrade", resolve));
  }
  finish({
    ok: true,
    echo,
    binaryAck: binaryAck.map(hex),
    binaryEvent,
    answer,
    mainWho,
    adminWho,
    news,
    mainId: main.id,
    mainEngineId: main.io.engine.id,
    adminId: admin.id,
    adminEngineId: admin.io.engine.id,
    transport: main.io.engine.transport.name,
  }, 0);
}

main().catch((err) => finish({ ok: false, error: String(err.message || err), stage }, 1));
