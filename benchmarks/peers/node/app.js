// The Node application peer: chat on /chat and batched event ingest, written the way a typical
// Node service is: socket.io on node:http, better-sqlite3 (WAL, synchronous=NORMAL), jsonwebtoken.
//
//   node benchmarks/peers/node/app.js --port N --data-dir DIR --jwt-secret S   (npm ci here first)
//
// It speaks Switchboard's contract (docs/api/chat.md, docs/api/analytics.md) for what the `chat`
// and `ingest` benchmark scenarios use, with the same answers and key order:
//
// - POST /api/chats (Bearer JWT): 201 {success, message, chat: {chatId, name, ...}}.
// - /chat namespace, JWT in auth.token (or ?token=, or Authorization: Bearer), HS256 pinned:
//   join:chat {chatId} (room:joined to the socket; user:joined, room:online-update, room:info to
//   the room on a user's first socket), leave:chat, and message:send {chatId, content, type?}:
//   the row is inserted (with the chat's last_activity, in one transaction) BEFORE message:new
//   goes to the room, message:sent to the sender and the ack {success, message, sentMessage}.
// - POST /api/events/batch: an array or {events: [...]}, at most 1000; every event validated
//   (name, who, string lengths, timestamp window), all inserted in ONE transaction, and only then
//   the answer {success, message, data: {accepted, stored, duplicates, current_stats}}.
// - GET /api/metrics/dashboard (Bearer JWT): totalEvents, eventsPerHour, topEvents, by SQL at
//   read time.
//
// Left out, as the scenarios do not use them: presence, typing, receipts, recovery, monitoring,
// rate limits, idempotency keys. better-sqlite3 is synchronous: each insert runs on the event
// loop's thread, as in any better-sqlite3 service (no thread hop, no group commit).
"use strict";

const crypto = require("node:crypto");
const fs = require("node:fs");
const http = require("node:http");
const path = require("node:path");
const Database = require("better-sqlite3");
const jwt = require("jsonwebtoken");
const { Server } = require("socket.io");

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  return at >= 0 && at + 1 < process.argv.length ? process.argv[at + 1] : fallback;
}

const host = option("--host", "127.0.0.1");
const port = Number(option("--port", "8003"));
const dataDir = option("--data-dir", "./data/node-app");
const secret = option("--jwt-secret", "");
if (!secret) {
  console.error("--jwt-secret is required");
  process.exit(2);
}

const MAX_BODY = 1048576;
const MAX_BATCH = 1000;
const MAX_CHARS = 4000;
const MAX_STRING = 1024;
const SESSION_TIMEOUT_MS = 30 * 60 * 1000;
const MESSAGE_TYPES = new Set(["text", "image", "file", "system"]);

// --- the database ---------------------------------------------------------------------------
fs.mkdirSync(dataDir, { recursive: true });
const db = new Database(path.join(dataDir, "node-app.sqlite3"));
db.pragma("journal_mode = WAL");
db.pragma("synchronous = NORMAL");
db.pragma("foreign_keys = ON");
db.exec(`
  CREATE TABLE IF NOT EXISTS chat_chats (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
    created_by TEXT NOT NULL, created_at REAL NOT NULL, last_activity REAL NOT NULL);
  CREATE TABLE IF NOT EXISTS chat_participants (
    chat_id TEXT NOT NULL REFERENCES chat_chats(id), user_id TEXT NOT NULL,
    joined_at REAL NOT NULL, PRIMARY KEY (chat_id, user_id));
  CREATE INDEX IF NOT EXISTS chat_participants_user ON chat_participants(user_id);
  CREATE TABLE IF NOT EXISTS chat_messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    chat_id TEXT NOT NULL REFERENCES chat_chats(id), user_id TEXT NOT NULL,
    username TEXT NOT NULL, content TEXT NOT NULL, type TEXT NOT NULL, created_at REAL NOT NULL);
  CREATE INDEX IF NOT EXISTS chat_messages_chat ON chat_messages(chat_id, seq);
  CREATE TABLE IF NOT EXISTS analytics_events (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, name TEXT NOT NULL, user_id TEXT,
    session_id TEXT, page TEXT, country TEXT, device TEXT, referrer TEXT, ts REAL NOT NULL,
    received_at REAL NOT NULL, properties BLOB, metadata BLOB);
  CREATE INDEX IF NOT EXISTS analytics_events_ts ON analytics_events (ts);
`);

const insertChat = db.prepare(
  "INSERT INTO chat_chats (id, name, description, created_by, created_at, last_activity) " +
    "VALUES (?, ?, ?, ?, ?, ?)",
);
const insertParticipant = db.prepare(
  "INSERT INTO chat_participants (chat_id, user_id, joined_at) VALUES (?, ?, ?)",
);
const createChat = db.transaction((chat) => {
  insertChat.run(chat.id, chat.name, chat.description, chat.createdBy, chat.createdAt,
    chat.lastActivity);
  for (const user of chat.participants) insertParticipant.run(chat.id, user, chat.createdAt);
});
const insertMessage = db.prepare(
  "INSERT INTO chat_messages (id, chat_id, user_id, username, content, type, created_at) " +
    "VALUES (?, ?, ?, ?, ?, ?, ?)",
);
const touchChat = db.prepare("UPDATE chat_chats SET last_activity = ? WHERE id = ?");
const saveMessage = db.transaction((m) => {
  insertMessage.run(m.id, m.chatId, m.userId, m.username, m.content, m.type, m.createdAt);
  touchChat.run(m.createdAt, m.chatId);
});
const insertEvent = db.prepare(
  "INSERT OR IGNORE INTO analytics_events (id, name, user_id, session_id, page, country, " +
    "device, referrer, ts, received_at, properties, metadata) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
);
const saveEvents = db.transaction((events) => {
  let stored = 0;
  for (const e of events) {
    stored += insertEvent.run(e.id, e.name, e.userId, e.sessionId, e.page, e.country, e.device,
      e.referrer, e.ts, e.receivedAt, e.properties, e.metadata).changes;
  }
  return stored;
});
const countSince = db.prepare("SELECT COUNT(*) AS n FROM analytics_events WHERE ts >= ?");
const topEvents = db.prepare(
  "SELECT name, COUNT(*) AS count FROM analytics_events WHERE ts >= ? " +
    "GROUP BY name ORDER BY count DESC, name LIMIT 10",
);

// chats are read once and kept in memory (participants checked on every event)
const chats = new Map();
for (const row of db.prepare("SELECT * FROM chat_chats").all()) {
  const users = db.prepare("SELECT user_id FROM chat_participants WHERE chat_id = ?").all(row.id);
  chats.set(row.id, {
    id: row.id, name: row.name, description: row.description, createdBy: row.created_by,
    createdAt: row.created_at, lastActivity: row.last_activity,
    participants: new Set(users.map((u) => u.user_id)),
  });
}

// --- identity ---------------------------------------------------------------------------------
function verify(token) {
  if (!token) throw new Error("Authentication failed: no token provided");
  let claims;
  try {
    claims = jwt.verify(token, secret, { algorithms: ["HS256"] });
  } catch (err) {
    if (err.name === "TokenExpiredError") throw new Error("Authentication failed: token expired");
    throw new Error("Authentication failed: invalid token");
  }
  if (claims.sub === undefined || claims.exp === undefined) {
    throw new Error("Authentication failed: invalid token");
  }
  return { userId: String(claims.sub), username: String(claims.name || claims.sub),
    role: claims.role || "user" };
}

function bearer(headers) {
  const value = headers.authorization || "";
  return value.slice(0, 7).toLowerCase() === "bearer " ? value.slice(7).trim() : "";
}

const iso = (seconds) => new Date(seconds * 1000).toISOString();
const isId = (v) => typeof v === "string" && v.length >= 1 && v.length <= 200;

// --- HTTP -------------------------------------------------------------------------------------
const CORS = { "Access-Control-Allow-Origin": "*" };

function send(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

function failure(res, status, message, extra = {}, headers = {}) {
  send(res, status, { success: false, message, ...extra }, headers);
}

function readBody(req, limit, done) {
  const chunks = [];
  let size = 0;
  let over = false;
  req.on("data", (chunk) => {
    size += chunk.length;
    if (size > limit) over = true;
    else chunks.push(chunk);
  });
  req.on("end", () => done(over ? null : Buffer.concat(chunks)));
}

function postChat(req, res) {
  let caller;
  try {
    caller = verify(bearer(req.headers));
  } catch {
    return failure(res, 401, "User not authenticated");
  }
  readBody(req, MAX_BODY, (body) => {
    if (body === null) return failure(res, 413, `Request body too large: at most ${MAX_BODY} bytes`);
    let data;
    try {
      data = JSON.parse(body);
    } catch {
      return failure(res, 400, "Invalid request data", { error: "invalid JSON" });
    }
    const name = typeof data?.name === "string" ? data.name.trim() : "";
    const participants = data?.participants ?? [];
    if (!name || name.length > 200 || !Array.isArray(participants) ||
        participants.length > 1000 || !participants.every(isId)) {
      return failure(res, 400, "Invalid request data", { error: "invalid name or participants" });
    }
    const now = Date.now() / 1000;
    const chat = {
      id: crypto.randomUUID(), name, description: String(data.description ?? ""),
      createdBy: caller.userId, createdAt: now, lastActivity: now,
      participants: new Set([caller.userId, ...participants].sort()),
    };
    createChat({ ...chat, participants: [...chat.participants] });
    chats.set(chat.id, chat);
    send(res, 201, { success: true, message: "Chat created successfully", chat: summary(chat) });
  });
}

function summary(chat) {
  return {
    chatId: chat.id, name: chat.name, description: chat.description,
    participants: [...chat.participants], participantCount: chat.participants.size,
    createdBy: chat.createdBy, createdAt: iso(chat.createdAt), lastActivity: iso(chat.lastActivity),
  };
}

// visitor counters, as a typical tracker keeps them in memory
const sessions = new Map(); // session_id -> last activity (ms)
const pagesToday = new Map();
let totalToday = 0;
let today = new Date().toISOString().slice(0, 10);

class Invalid extends Error {
  constructor(field, problem) {
    super(`${field}: ${problem}`);
    this.field = field;
  }
}

function text(value, field) {
  if (value === undefined || value === null || value === "") return null;
  if (typeof value !== "string") throw new Invalid(field, `Expected \`str\`, got ${typeof value}`);
  if (value.length > MAX_STRING) throw new Invalid(field, `longer than ${MAX_STRING} characters`);
  return value;
}

function oneOf(a, aName, b, bName, where) {
  if (a !== null && b !== null && a !== b) {
    throw new Invalid(where + aName, `${aName} '${a}' and ${bName} '${b}' disagree`);
  }
  return a ?? b;
}

function timestamp(raw, now, field) {
  if (raw === undefined || raw === null) return now;
  if (typeof raw !== "number" && typeof raw !== "string") {
    throw new Invalid(field, "Expected `str | int | float`");
  }
  const zoned = typeof raw === "string" && /([zZ]|[+-]\d\d:?\d\d)$/.test(raw);
  const ms = typeof raw === "number" ? raw : Date.parse(zoned ? raw : raw + "Z");
  if (!Number.isFinite(ms)) throw new Invalid(field, `not an ISO 8601 date-time: '${raw}'`);
  const seconds = ms / 1000;
  if (seconds > now + 300) throw new Invalid(field, "more than 300 s in the future");
  if (seconds < now - 7 * 86400) throw new Invalid(field, "more than 604800 s in the past");
  return seconds;
}

let eventCounter = 0;
const idPrefix = crypto.randomBytes(4).toString("hex");
const newEventId = () =>
  `evt_${Date.now().toString(16).padStart(11, "0")}${idPrefix}` +
  ((eventCounter++ & 0xffffffff) >>> 0).toString(16).padStart(8, "0");

function normalise(raw, now, where) {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new Invalid(where.slice(0, -1), "Expected `object`");
  }
  const name = oneOf(text(raw.eventName, where + "eventName"), "eventName",
    text(raw.type, where + "type"), "type", where);
  if (name === null) throw new Invalid(where + "eventName", "an event needs eventName (or type)");
  let metadata = null;
  let metaDevice = null;
  let metaReferrer = null;
  if (raw.metadata && typeof raw.metadata === "object") {
    const { device, referrer, ...rest } = raw.metadata;
    metaDevice = text(device, where + "metadata.device");
    metaReferrer = text(referrer, where + "metadata.referrer");
    metadata = Object.keys(rest).length ? JSON.stringify(rest) : null;
  }
  const event = {
    id: text(raw.id, where + "id") ?? newEventId(),
    name,
    userId: text(raw.userId, where + "userId"),
    sessionId: text(raw.session_id, where + "session_id"),
    page: text(raw.page, where + "page"),
    country: text(raw.country, where + "country"),
    device: oneOf(text(raw.device, where + "device"), "device", metaDevice, "metadata.device",
      where),
    referrer: oneOf(text(raw.referrer, where + "referrer"), "referrer", metaReferrer,
      "metadata.referrer", where),
    ts: timestamp(raw.timestamp, now, where + "timestamp"),
    receivedAt: now,
    properties: raw.properties && Object.keys(raw.properties).length
      ? JSON.stringify(raw.properties) : null,
    metadata,
  };
  if (event.sessionId === null && event.userId === null) {
    throw new Invalid(where + "session_id", "an event needs a session_id or a userId");
  }
  return event;
}

function count(events, nowMs) {
  const day = new Date(nowMs).toISOString().slice(0, 10);
  if (day !== today) {
    today = day;
    totalToday = 0;
    pagesToday.clear();
  }
  const midnight = Date.parse(day + "T00:00:00Z") / 1000;
  for (const e of events) {
    if (e.sessionId !== null) sessions.set(e.sessionId, Math.max(sessions.get(e.sessionId) ?? 0, e.ts * 1000));
    if (e.ts >= midnight) {
      totalToday += 1;
      if (e.page !== null) pagesToday.set(e.page, (pagesToday.get(e.page) ?? 0) + 1);
    }
  }
}

function currentStats(nowMs) {
  let active = 0;
  for (const [id, last] of sessions) {
    if (nowMs - last <= SESSION_TIMEOUT_MS) active += 1;
    else sessions.delete(id);
  }
  const pages = [...pagesToday].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  return { total_active: active, total_today: totalToday, pages_visited: Object.fromEntries(pages) };
}

function postBatch(req, res) {
  readBody(req, MAX_BODY, (body) => {
    if (body === null) {
      return failure(res, 413, `Request body larger than ${MAX_BODY} bytes`, {}, CORS);
    }
    let raw;
    try {
      raw = JSON.parse(body);
    } catch {
      return failure(res, 400, "Invalid JSON body", {}, CORS);
    }
    const items = Array.isArray(raw) ? raw : raw?.events;
    if (!Array.isArray(items) || items.length === 0) {
      return failure(res, 400, "Invalid batch: events: at least one event is needed",
        { field: "events" }, CORS);
    }
    if (items.length > MAX_BATCH) {
      return failure(res, 400, `Invalid batch: events: at most ${MAX_BATCH} events per request`,
        { field: "events" }, CORS);
    }
    const nowMs = Date.now();
    let events;
    try {
      events = items.map((item, i) => normalise(item, nowMs / 1000, `events[${i}].`));
    } catch (err) {
      if (!(err instanceof Invalid)) throw err;
      return failure(res, 400, `Invalid event: ${err.message}`, { field: err.field }, CORS);
    }
    let stored;
    try {
      stored = saveEvents(events);
    } catch {
      return failure(res, 500, "Internal server error: the events were not stored", {}, CORS);
    }
    count(events, nowMs);
    send(res, 200, {
      success: true,
      message: `${events.length} events processed successfully`,
      data: { accepted: events.length, stored, duplicates: events.length - stored,
        current_stats: currentStats(nowMs) },
    }, CORS);
  });
}

function getDashboard(req, res) {
  try {
    verify(bearer(req.headers));
  } catch (err) {
    return failure(res, 401, err.message);
  }
  const now = Date.now() / 1000;
  send(res, 200, {
    totalEvents: countSince.get(now - 86400).n,
    eventsPerHour: countSince.get(now - 3600).n,
    topEvents: topEvents.all(now - 86400),
  });
}

function route(req, res) {
  const url = req.url.split("?", 1)[0];
  if (req.method === "POST" && url === "/api/events/batch") return postBatch(req, res);
  if (req.method === "POST" && url === "/api/chats") return postChat(req, res);
  if (req.method === "GET" && url === "/api/metrics/dashboard") return getDashboard(req, res);
  failure(res, 404, "Not found");
}

// --- /chat --------------------------------------------------------------------------------------
const httpServer = http.createServer(route);
const io = new Server(httpServer, { cors: { origin: "*" } });
const chatNs = io.of("/chat");
const online = new Map(); // room -> Map(userId -> {username, connectedAt, sockets})

chatNs.use((socket, next) => {
  const hs = socket.handshake;
  const token = (hs.auth && hs.auth.token) || hs.query.token || bearer(hs.headers);
  try {
    socket.data.user = verify(token);
    next();
  } catch (err) {
    next(err);
  }
});

function access(user, chatId) {
  const chat = chats.get(chatId);
  return chat && (chat.participants.has(user.userId) || user.role === "admin") ? chat : null;
}

const NOT_FOUND = { success: false, message: "Chat not found or access denied" };
const invalid = (error) => ({ success: false, message: "Invalid request data", error });
const roomOf = (chatId) => `chat:${chatId}`;

function onlineList(chatId) {
  const users = online.get(roomOf(chatId)) ?? new Map();
  return [...users].map(([userId, u]) => ({ userId, username: u.username,
    connectedAt: iso(u.connectedAt) }));
}

function roomInfo(chat) {
  const count = (online.get(roomOf(chat.id)) ?? new Map()).size;
  return { chatId: chat.id, name: chat.name, description: chat.description,
    participantCount: chat.participants.size, onlineCount: count, isActive: count > 0,
    lastActivity: iso(chat.lastActivity) };
}

function onlineUpdate(chat) {
  const users = onlineList(chat.id);
  chatNs.to(roomOf(chat.id)).emit("room:online-update",
    { chatId: chat.id, onlineUsers: users, onlineCount: users.length });
  chatNs.to(roomOf(chat.id)).emit("room:info", { chatId: chat.id, roomInfo: roomInfo(chat) });
}

function leaveRoom(socket, chat, disconnected) {
  const room = roomOf(chat.id);
  const users = online.get(room);
  const entry = users && users.get(socket.data.user.userId);
  if (!entry || !entry.sockets.delete(socket.id)) return;
  if (!disconnected) socket.leave(room);
  if (entry.sockets.size === 0) {
    users.delete(socket.data.user.userId);
    chatNs.to(room).emit("user:left", { chatId: chat.id, userId: socket.data.user.userId,
      username: socket.data.user.username, leftAt: iso(Date.now() / 1000) });
    onlineUpdate(chat);
  }
}

chatNs.on("connection", (socket) => {
  const user = socket.data.user;
  const answer = (ack, body) => { if (typeof ack === "function") ack(body); };

  socket.on("join:chat", (payload, ack) => {
    if (!isId(payload?.chatId)) return answer(ack, invalid("chatId: expected an id"));
    const chat = access(user, payload.chatId);
    if (!chat) return answer(ack, NOT_FOUND);
    const room = roomOf(chat.id);
    if (!online.has(room)) online.set(room, new Map());
    const users = online.get(room);
    const first = !users.has(user.userId);
    const now = Date.now() / 1000;
    if (first) users.set(user.userId, { username: user.username, connectedAt: now, sockets: new Set() });
    users.get(user.userId).sockets.add(socket.id);
    socket.join(room);
    const info = { chatId: chat.id, participantCount: chat.participants.size, isActive: true,
      lastActivity: iso(chat.lastActivity) };
    if (first) {
      socket.to(room).emit("user:joined", { chatId: chat.id, userId: user.userId,
        username: user.username, joinedAt: iso(now) });
    }
    socket.emit("room:joined", { chatId: chat.id, roomInfo: info });
    if (first) onlineUpdate(chat);
    answer(ack, { success: true, message: "Joined chat successfully", roomInfo: info });
  });

  socket.on("leave:chat", (payload, ack) => {
    if (!isId(payload?.chatId)) return answer(ack, invalid("chatId: expected an id"));
    const chat = access(user, payload.chatId);
    if (!chat) return answer(ack, NOT_FOUND);
    leaveRoom(socket, chat, false);
    socket.emit("room:left", { chatId: chat.id });
    answer(ack, { success: true, message: "Left chat successfully" });
  });

  socket.on("message:send", (payload, ack) => {
    const type = payload?.type ?? "text";
    if (!isId(payload?.chatId) || typeof payload.content !== "string" || !MESSAGE_TYPES.has(type)) {
      return answer(ack, invalid("expected {chatId, content, type?}"));
    }
    if (!payload.content.trim()) return answer(ack, invalid("content is empty"));
    if (payload.content.length > MAX_CHARS) {
      return answer(ack, invalid(`content is longer than ${MAX_CHARS} characters`));
    }
    const chat = access(user, payload.chatId);
    if (!chat) return answer(ack, NOT_FOUND);
    const now = Date.now() / 1000;
    const id = crypto.randomUUID();
    try {
      saveMessage({ id, chatId: chat.id, userId: user.userId, username: user.username,
        content: payload.content, type, createdAt: now });
    } catch (err) {
      console.error(err);
      return answer(ack, { success: false, message: "Internal server error" });
    }
    chat.lastActivity = now;
    const createdAt = iso(now);
    const message = { id, content: payload.content, type, chatId: chat.id, userId: user.userId,
      createdAt, user: { id: user.userId, username: user.username } };
    chatNs.to(roomOf(chat.id)).emit("message:new", message);
    socket.emit("message:sent", { messageId: id, chatId: chat.id, sentAt: createdAt, message });
    answer(ack, { success: true, message: "Message sent successfully", sentMessage: message });
  });

  socket.on("disconnecting", () => {
    for (const room of socket.rooms) {
      const chat = room.startsWith("chat:") ? chats.get(room.slice(5)) : null;
      if (chat) leaveRoom(socket, chat, true);
    }
  });
});

httpServer.listen({ host, port, backlog: 4096 }, () => {
  console.log(`ready on ${port}`);
});

function stop() {
  io.close();
  db.close();
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
