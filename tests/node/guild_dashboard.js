// Guild monitor with Node's socket.io-client: a dashboard, an outsider, a tokenless client and a
// bot (socket ingest with an ack). Prints ONE JSON result line.
//
//   node tests/node/guild_dashboard.js '{"url": "http://127.0.0.1:N", "guild": "...",
//        "dashboardToken": "...", "outsiderToken": "...", "botToken": "...",
//        "events": [...], "expectLive": 5, "transports": ["websocket"], "timeoutMs": 15000}'
//
// Steps: a client without a token gets connect_error; the dashboard subscribes to the guild and
// its analytics (acks) and waits for the snapshot; the outsider subscribes and gets `error`; the
// bot posts `events` with `guild:event` and an ack; the script waits until the dashboard has
// `expectLive` guild events and a second `analytics:update`. Exits 2 on timeout, 1 on error.
"use strict";

const path = require("path");
const { io } = require(path.join(__dirname, "..", "node_modules", "socket.io-client"));

const cfg = JSON.parse(process.argv[2] || "{}");
const TIMEOUT = cfg.timeoutMs || 15000;
const transports = cfg.transports || ["websocket"];
const GUILD_EVENTS = ["message:new", "presence:update", "role:change", "user:join",
  "alert:multiClient"];
const sockets = [];
const result = { ok: false, stage: "start", noToken: null, dashboard: [], outsider: [],
  subscribeAcks: [], ingestAck: null };

function finish(code) {
  for (const s of sockets) {
    try { s.disconnect(); } catch (e) { /* ignore */ }
  }
  process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(code));
}

const timer = setTimeout(() => { result.error = "timeout"; finish(2); }, TIMEOUT);

function connect(token) {
  const socket = io(cfg.url, { auth: token === null ? undefined : { token }, transports,
    reconnection: false, forceNew: true });
  sockets.push(socket);
  return socket;
}

function waitFor(predicate) {
  return new Promise((resolve) => {
    const check = () => (predicate() ? resolve() : setTimeout(check, 5));
    check();
  });
}

async function main() {
  result.stage = "no token";
  const anonymous = connect(null);
  result.noToken = await new Promise((resolve) => {
    anonymous.on("connect_error", (err) => resolve(err.message));
    anonymous.on("connect", () => resolve("connected?!"));
  });

  result.stage = "dashboard";
  const dashboard = connect(cfg.dashboardToken);
  dashboard.onAny((event, payload) => result.dashboard.push([event, payload]));
  await new Promise((resolve) => dashboard.on("connect", resolve));
  result.subscribeAcks.push(await dashboard.timeout(5000).emitWithAck("subscribe:guild",
    cfg.guild));
  result.subscribeAcks.push(await dashboard.timeout(5000).emitWithAck("subscribe:analytics",
    cfg.guild));
  const updates = () => result.dashboard.filter(([e]) => e === "analytics:update").length;
  await waitFor(() => updates() >= 1);

  result.stage = "outsider";
  const outsider = connect(cfg.outsiderToken);
  outsider.onAny((event, payload) => result.outsider.push([event, payload]));
  await new Promise((resolve) => outsider.on("connect", resolve));
  outsider.emit("subscribe:guild", cfg.guild);
  outsider.emit("subscribe:analytics", cfg.guild);
  await waitFor(() => result.outsider.length >= 2);

  result.stage = "bot";
  const bot = connect(cfg.botToken);
  await new Promise((resolve) => bot.on("connect", resolve));
  result.ingestAck = await bot.timeout(5000).emitWithAck("guild:event", cfg.guild, cfg.events);

  result.stage = "live";
  const live = () => result.dashboard.filter(([e]) => GUILD_EVENTS.includes(e)).length;
  await waitFor(() => live() >= cfg.expectLive && updates() >= 2);
  // a round trip on the outsider's connection: anything sent to it before has arrived
  await outsider.timeout(5000).emitWithAck("unsubscribe:guild", cfg.guild);
  result.ok = true;
  clearTimeout(timer);
  finish(0);
}

main().catch((err) => { result.error = String(err && err.stack || err); finish(1); });
