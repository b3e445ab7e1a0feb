// socket.io-client 4.8.1 against the /chat namespace; prints ONE JSON result line.
//
//   node tests/node/chat_client.js '{"url": "http://127.0.0.1:N", "tokens": {"a": "...",
//        "b": "..."}, "badToken": "...", "chatId": "...", "transports": ["websocket"]}'
//
// Two users (a, b) go through the whole chat flow: join, typing, send (ack, message:new,
// message:sent), receipts, status, recovery with queued messages, an invalid payload and a
// refused connection. Exits 2 on timeout, 1 on any other error.
"use strict";

const path = require("path");
const { io } = require(path.join(__dirname, "..", "node_modules", "socket.io-client"));

const cfg = JSON.parse(process.argv[2] || "{}");
const TIMEOUT = cfg.timeoutMs || 20000;
let stage = "start";
const sockets = [];

function finish(result, code) {
  for (const s of sockets) {
    try { s.disconnect(); } catch (e) { /* ignore */ }
  }
  process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(code));
}

setTimeout(() => finish({ ok: false, error: "timeout", stage }, 2), TIMEOUT);

function connect(token) {
  const socket = io(cfg.url + "/chat", {
    transports: cfg.transports || ["websocket"],
    reconnection: false,
    forceNew: true,
    auth: { token },
  });
  sockets.push(socket);
  return socket;
}

function connected(socket) {
  return new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
}

function call(socket, event, data) {
  return socket.timeout(5000).emitWithAck(event, data);
}

function next(socket, event, predicate = () => true) {
  return new Promise((resolve) => {
    const handler = (payload) => {
      if (predicate(payload)) {
        socket.off(event, handler);
        resolve(payload);
      }
    };
    socket.on(event, handler);
  });
}

async function main() {
  const out = {};
  const chatId = cfg.chatId;
  stage = "connect";
  const a = connect(cfg.tokens.a);
  const b = connect(cfg.tokens.b);
  await Promise.all([connected(a), connected(b)]);

  stage = "join";
  const roomJoined = next(a, "room:joined");
  out.joinA = await call(a, "join:chat", { chatId });
  out.roomJoined = await roomJoined;
  const userJoined = next(a, "user:joined");
  const onlineUpdate = next(a, "room:online-update", (u) => u.onlineCount === 2);
  out.joinB = await call(b, "join:chat", { chatId });
  out.userJoined = await userJoined;
  out.onlineUpdate = await onlineUpdate;

  stage = "typing";
  const typing = next(a, "user:typing");
  out.typingAck = await call(b, "message:typing", { chatId, isTyping: true });
  out.typing = await typing;
  out.typingUsers = await call(a, "message:typing-users", { chatId });

  stage = "send";
  const newAtB = next(b, "message:new");
  const sent = next(a, "message:sent");
  const stopTyping = next(a, "user:typing", (t) => t.isTyping === false);
  out.sendAck = await call(a, "message:send", { chatId, content: "héllo from node ✓", type: "text" });
  out.messageNew = await newAtB;
  out.messageSent = await sent;
  const bSends = next(a, "message:new", (m) => m.userId === cfg.users.b);
  await call(b, "message:send", { chatId, content: "typing done" });
  await bSends;
  out.typingStopped = await stopTyping;

  stage = "receipts";
  const messageId = out.sendAck.sentMessage.id;
  const delivered = next(a, "message:delivered");
  out.deliveredAck = await call(b, "message:delivered", { messageId, chatId });
  out.delivered = await delivered;
  const read = next(a, "message:read");
  out.readAck = await call(b, "message:read", { messageId, chatId });
  out.read = await read;
  out.deliveryStatus = await call(a, "message:delivery-status", { messageId });

  stage = "presence";
  const statusChanged = next(a, "user:status-changed");
  out.statusAck = await call(b, "presence:update-status", { status: "busy" });
  out.statusChanged = await statusChanged;
  out.onlineUsers = await call(a, "presence:online-users", {});

  stage = "invalid";
  out.invalid = await call(a, "message:send", { chatId, content: 42 });
  out.notFound = await call(a, "join:chat", { chatId: "not-a-chat" });

  stage = "recovery";
  const tokenEvent = next(a, "connection:recovery-token");
  out.createSession = await call(a, "connection:create-session", {});
  out.recoveryToken = await tokenEvent;
  const offline = next(b, "user:offline", (u) => u.userId === cfg.users.a);
  a.disconnect();
  out.offline = await offline;
  out.queuedIds = [];
  for (const text of ["one", "two", "three"]) {
    const ack = await call(b, "message:send", { chatId, content: text });
    out.queuedIds.push(ack.sentMessage.id);
  }
  const a2 = connect(cfg.tokens.a);
  const recovered = next(a2, "connection:recovered");
  const queued = next(a2, "connection:queued-messages");
  await connected(a2);
  out.recoverAck = await call(a2, "connection:recover", { recoveryToken: out.createSession.recoveryToken });
  out.recovered = await recovered;
  out.queued = await queued;

  stage = "refused";
  const bad = connect(cfg.badToken);
  try {
    await connected(bad);
    out.badConnect = "connected";
  } catch (err) {
    out.badConnect = err.message;
  }
  finish({ ok: true, ...out }, 0);
}

main().catch((err) => finish({ ok: false, error: String(err && err.stack || err), stage }, 1));
