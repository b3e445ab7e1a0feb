// Switchboard live dashboard: plain JavaScript, no build step.
// Talks to the server only through its public contracts:
//   /ws/metrics  dashboard_data (full MetricsDashboard), events (arrays of committed events)
//   /            analytics:subscribeLiveMetrics -> analytics:liveMetrics; subscribe:guild -> guild events
//   /chat        room:list, join:chat, room:online, message:send/new, message:typing/user:typing, presence
//   REST         GET /api/analytics/sessions (visitor sessions and journeys), GET /api/chats/<id>/messages
// The token comes from the URL fragment (#token=...), which the browser never sends to a server.
(function () {
  "use strict";

  const DEMO_ROOM = "Demo room";
  const DEMO_GUILD = "demo-guild";
  const FEED_MAX = 60;
  const GUILD_MAX = 40;
  const CHAT_MAX = 80;
  const TYPING_EVERY_MS = 6500; // the server allows 10 typing events per minute per user
  const COLORS = ["#4aa3ff", "#3fb950", "#d29922", "#f85149", "#a371f7", "#39c5cf", "#ff7b72",
    "#e3b341", "#8b98a5", "#56d364"];

  const $ = (id) => document.getElementById(id);

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  const state = {
    token: null,
    feedIds: new Set(),
    chatId: null,
    chatMessageIds: new Set(),
    typing: new Map(), // userId -> {username, until}
    statuses: new Map(), // userId -> status
    online: [],
    me: null,
    lastTypingSent: 0,
    sessionsTimer: null,
    sessionsPending: false,
    sessionsAvailable: true,
  };

  // --- token ----------------------------------------------------------------------------------
  function tokenFromFragment() {
    const params = new URLSearchParams(window.location.hash.replace(/^#/, ""));
    return params.get("token");
  }

  function userOfToken(token) {
    try {
      const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part)).sub || null;
    } catch (err) {
      return null;
    }
  }

  function showError(message) {
    const box = $("page-error");
    box.textContent = message;
    box.hidden = !message;
  }

  // --- formatting -----------------------------------------------------------------------------
  const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
  const decimal = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });

  function timeAgo(iso) {
    const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (seconds < 60) return seconds + "s ago";
    if (seconds < 3600) return Math.floor(seconds / 60) + "m ago";
    if (seconds < 86400) return Math.floor(seconds / 3600) + "h ago";
    return Math.floor(seconds / 86400) + "d ago";
  }

  function clockTime(iso) {
    const d = new Date(iso);
    return isNaN(d) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
  }

  function duration(seconds) {
    seconds = Math.max(0, Math.round(Number(seconds) || 0));
    if (seconds < 60) return seconds + "s";
    if (seconds < 3600) return Math.floor(seconds / 60) + "m " + (seconds % 60) + "s";
    return Math.floor(seconds / 3600) + "h " + Math.floor((seconds % 3600) / 60) + "m";
  }

  // --- connection state -----------------------------------------------------------------------
  function setConnection(kind, detail) {
    const pill = $("conn-state");
    pill.dataset.state = kind;
    pill.textContent = detail ? kind + " · " + detail : kind;
  }

  // --- cards ----------------------------------------------------------------------------------
  function setCard(key, value, change, format) {
    const card = $("card-" + key);
    card.querySelector(".value").textContent = format(value);
    const changeNode = card.querySelector(".change");
    const c = Number(change) || 0;
    changeNode.className = "change " + (c > 0 ? "up" : c < 0 ? "down" : "");
    changeNode.textContent = (c > 0 ? "▲ " : c < 0 ? "▼ " : "– ") + decimal.format(Math.abs(c)) +
      "% vs 24 h earlier";
  }

  function renderBars(container, rows, labelOf, countOf, suffixOf) {
    container.replaceChildren();
    if (!rows || rows.length === 0) {
      container.append(el("p", "empty", "nothing yet"));
      return;
    }
    const max = Math.max(...rows.map(countOf), 1);
    for (const row of rows) {
      const bar = el("div", "bar");
      const label = el("span", "label", labelOf(row) || "(none)");
      label.title = label.textContent;
      const count = el("span", "count", integer.format(countOf(row)) + (suffixOf ? suffixOf(row) : ""));
      const track = el("div", "track");
      const fill = el("div", "fill");
      fill.style.width = ((100 * countOf(row)) / max).toFixed(1) + "%";
      track.append(fill);
      bar.append(label, count, track);
      container.append(bar);
    }
  }

  // --- charts (Chart.js, served from the pinned npm package) ----------------------------------
  let volumeChart = null;
  let distributionChart = null;

  function makeCharts() {
    if (typeof window.Chart === "undefined") {
      showError("Chart library missing: this installation lacks static/vendor/chart.umd.min.js (make vendor).");
      return;
    }
    const Chart = window.Chart;
    Chart.defaults.color = "#8b98a5";
    Chart.defaults.borderColor = "#26313d";
    Chart.defaults.animation = false;
    volumeChart = new Chart($("volume-chart"), {
      type: "bar",
      data: { labels: [], datasets: [{ label: "events", data: [], backgroundColor: "#4aa3ff", borderRadius: 3 }] },
      options: {
        maintainAspectRatio: false,
        plugins: { legend: { display: false } },
        scales: {
          y: { beginAtZero: true, ticks: { precision: 0 } },
          x: { grid: { display: false }, ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 12 } },
        },
      },
    });
    distributionChart = new Chart($("distribution-chart"), {
      type: "doughnut",
      data: { labels: [], datasets: [{ data: [], backgroundColor: COLORS, borderWidth: 0 }] },
      options: { maintainAspectRatio: false, cutout: "62%", plugins: { legend: { display: false } } },
    });
  }

  function renderDashboard(d) {
    setCard("totalEvents", d.totalEvents, d.totalEventsChange, (v) => integer.format(v));
    setCard("activeUsers", d.activeUsers, d.activeUsersChange, (v) => integer.format(v));
    setCard("eventsPerHour", d.eventsPerHour, d.eventsPerHourChange, (v) => integer.format(v));
    setCard("conversionRate", d.conversionRate, d.conversionRateChange, (v) => decimal.format(v) + "%");

    if (volumeChart) {
      volumeChart.data.labels = d.eventVolumeData.map((p) => clockTime(p.time));
      volumeChart.data.datasets[0].data = d.eventVolumeData.map((p) => p.events);
      volumeChart.update("none");
    }
    renderBars($("top-events"), d.topEvents, (r) => r.name, (r) => r.count);
    renderBars($("countries"), d.geographicDistribution, (r) => r.country, (r) => r.count);
    renderBars($("devices"), d.deviceTypes, (r) => r.device, (r) => r.count);
    renderBars($("referrers"), d.topReferrers, (r) => r.referrer, (r) => r.count);

    const legend = $("distribution");
    legend.replaceChildren();
    d.eventDistribution.forEach((r, i) => {
      const item = el("span");
      const swatch = el("span", "swatch");
      swatch.style.background = COLORS[i % COLORS.length];
      item.append(swatch, document.createTextNode(r.name + " " + decimal.format(r.percentage) + "%"));
      legend.append(item);
    });
    if (distributionChart) {
      distributionChart.data.labels = d.eventDistribution.map((r) => r.name);
      distributionChart.data.datasets[0].data = d.eventDistribution.map((r) => r.value);
      distributionChart.update("none");
    }

    const p = d.performanceMetrics;
    renderMetricList($("performance"), [
      ["Avg response", decimal.format(p.avgResponseTime) + " ms"],
      ["Processed", decimal.format(p.processingRate) + "%"],
      ["Error rate", decimal.format(p.errorRate) + "%"],
      ["Uptime", decimal.format(p.uptime) + "%"],
    ]);

    // the feed starts from the snapshot's latest events; `events` pushes keep it going
    const fresh = d.liveEvents.filter((e) => !state.feedIds.has(e.id));
    addFeedEvents(fresh.reverse(), false);
  }

  function renderMetricList(container, rows) {
    container.replaceChildren();
    for (const [name, value] of rows) {
      container.append(el("dt", null, name), el("dd", null, value));
    }
  }

  const LIVE_UNITS = { "CPU Usage": " %", "Memory Usage": " MB" };

  function renderLiveMetrics(metrics) {
    if (!Array.isArray(metrics)) return;
    renderMetricList($("live-metrics"), metrics.map((m) => [m.name, decimal.format(m.value) + (LIVE_UNITS[m.name] || "")]));
  }

  // --- live event feed ------------------------------------------------------------------------
  function addFeedEvents(events, fresh) {
    const feed = $("feed");
    let sawPageview = false;
    for (const e of events) {
      if (!e || state.feedIds.has(e.id)) continue;
      state.feedIds.add(e.id);
      const li = el("li", fresh ? "fresh" : "");
      li.dataset.eventId = e.id;
      li.dataset.eventName = e.eventName;
      const left = el("div");
      left.append(el("div", "name", e.eventName));
      const who = e.userId || e.sessionId || "anonymous";
      left.append(el("div", "who", who));
      const where = [e.page, e.country, e.device].filter(Boolean).join(" · ");
      if (where) left.append(el("div", "where", where));
      const ago = el("div", "ago", timeAgo(e.timestamp));
      ago.dataset.timestamp = e.timestamp;
      li.append(left, ago);
      feed.prepend(li);
      if (e.page) sawPageview = true;
    }
    while (feed.children.length > FEED_MAX) {
      const last = feed.lastElementChild;
      state.feedIds.delete(last.dataset.eventId);
      last.remove();
    }
    $("feed-count").textContent = state.feedIds.size ? "latest " + feed.children.length : "";
    if (sawPageview && fresh) refreshSessionsSoon();
  }

  function tickTimes() {
    for (const node of document.querySelectorAll("[data-timestamp]")) {
      node.textContent = timeAgo(node.dataset.timestamp);
    }
    const now = Date.now();
    let changed = false;
    for (const [user, t] of state.typing) {
      if (t.until < now) { state.typing.delete(user); changed = true; }
    }
    if (changed) renderTyping();
    $("clock").textContent = new Date().toLocaleTimeString();
  }

  // --- visitor sessions (REST, refreshed when pageviews arrive and every few seconds) ---------
  function refreshSessionsSoon() {
    if (state.sessionsPending || !state.sessionsAvailable) return;
    state.sessionsPending = true;
    setTimeout(() => { state.sessionsPending = false; loadSessions(); }, 1200);
  }

  async function loadSessions() {
    const note = $("sessions-note");
    try {
      const response = await fetch("/api/analytics/sessions?limit=12", {
        headers: { Authorization: "Bearer " + state.token },
      });
      if (response.status === 404) {
        state.sessionsAvailable = false;
        note.textContent = "Visitor analytics (GET /api/analytics/sessions) is not available on this server.";
        note.hidden = false;
        setTimeout(() => { state.sessionsAvailable = true; loadSessions(); }, 30000);
        return;
      }
      const body = await response.json();
      if (!response.ok || !body.success) {
        note.textContent = "Sessions: " + (body.message || response.status);
        note.hidden = false;
        return;
      }
      note.hidden = true;
      renderSessions(body.data.sessions || [], body.data.total_count);
    } catch (err) {
      note.textContent = "Sessions: " + err.message;
      note.hidden = false;
    }
  }

  function renderSessions(sessions, total) {
    const list = $("sessions");
    list.replaceChildren();
    $("sessions-count").textContent = total !== undefined ? integer.format(total) + " active" : "";
    if (sessions.length === 0) {
      list.append(el("li", "empty", "no active sessions"));
      return;
    }
    for (const s of sessions) {
      const li = el("li");
      li.dataset.sessionId = s.session_id;
      const head = el("div", "head");
      head.append(el("span", "sid", s.session_id), el("span", "meta", duration(s.duration)));
      const meta = el("div", "meta", [s.country, s.device, s.last_activity ? timeAgo(s.last_activity) : ""]
        .filter(Boolean).join(" · "));
      const journey = el("div", "journey");
      const pages = s.journey || [];
      pages.forEach((page, i) => {
        if (i > 0) journey.append(document.createTextNode("→"));
        journey.append(el("span", i === pages.length - 1 ? "current" : "", page));
      });
      li.append(head, meta, journey);
      list.append(li);
    }
  }

  // --- chat -----------------------------------------------------------------------------------
  function ack(socket, event, payload, timeoutMs) {
    return new Promise((resolve, reject) => {
      socket.timeout(timeoutMs || 10000).emit(event, payload, (err, answer) => {
        if (err) reject(new Error(event + ": no answer"));
        else resolve(answer);
      });
    });
  }

  function chatError(message) {
    const node = $("chat-error");
    node.textContent = message || "";
    node.hidden = !message;
  }

  function setChatEnabled(on) {
    $("chat-input").disabled = !on;
    $("chat-send").disabled = !on;
  }

  async function joinDemoRoom(chat) {
    setChatEnabled(false);
    try {
      const listed = await ack(chat, "room:list", {});
      const rooms = (listed && listed.rooms) || [];
      const room = rooms.find((r) => r.name === DEMO_ROOM) || rooms[0];
      if (!room) {
        $("chat-room").textContent = "no room yet (start the server with --demo)";
        setTimeout(() => chat.connected && joinDemoRoom(chat), 5000);
        return;
      }
      const joined = await ack(chat, "join:chat", { chatId: room.chatId });
      if (!joined || !joined.success) throw new Error((joined && joined.message) || "join refused");
      state.chatId = room.chatId;
      $("chat").dataset.chatId = room.chatId;
      $("chat-room").textContent = room.name;
      await loadHistory(room.chatId);
      const online = await ack(chat, "room:online", { chatId: room.chatId });
      if (online && online.success) {
        for (const u of online.onlineUsers) state.statuses.set(u.userId, u.status);
        renderPresence(online.onlineUsers);
      }
      setChatEnabled(true);
      chatError("");
    } catch (err) {
      chatError(err.message);
      setTimeout(() => chat.connected && joinDemoRoom(chat), 5000);
    }
  }

  async function loadHistory(chatId) {
    const response = await fetch("/api/chats/" + encodeURIComponent(chatId) + "/messages?limit=30", {
      headers: { Authorization: "Bearer " + state.token },
    });
    if (!response.ok) return;
    const body = await response.json();
    const messages = (body.messages || []).slice().reverse();
    for (const m of messages) addChatMessage(m);
  }

  function addChatMessage(m) {
    if (!m || m.chatId !== state.chatId || state.chatMessageIds.has(m.id)) return;
    state.chatMessageIds.add(m.id);
    const list = $("chat-messages");
    const li = el("li", m.userId === state.me ? "mine" : "");
    li.dataset.messageId = m.id;
    li.append(el("span", "author", (m.user && m.user.username) || m.userId));
    li.append(el("span", "content", m.content));
    li.append(el("span", "time", clockTime(m.createdAt)));
    list.append(li);
    while (list.children.length > CHAT_MAX) {
      state.chatMessageIds.delete(list.firstElementChild.dataset.messageId);
      list.firstElementChild.remove();
    }
    list.scrollTop = list.scrollHeight;
    const typist = state.typing.get(m.userId);
    if (typist) { state.typing.delete(m.userId); renderTyping(); }
  }

  function renderPresence(users) {
    if (users) state.online = users;
    const list = $("chat-presence");
    list.replaceChildren();
    for (const u of state.online) {
      const li = el("li", null, u.username || u.userId);
      li.dataset.status = state.statuses.get(u.userId) || "online";
      li.title = li.dataset.status;
      list.append(li);
    }
  }

  function renderTyping() {
    const names = [...state.typing.values()].map((t) => t.username);
    $("chat-typing").textContent = names.length === 0 ? "" :
      names.join(", ") + (names.length === 1 ? " is typing…" : " are typing…");
  }

  function setupChat(chat) {
    chat.on("connect", () => joinDemoRoom(chat));
    chat.on("disconnect", () => setChatEnabled(false));
    chat.on("connect_error", (err) => {
      if (!chat.active) chatError("chat refused the connection: " + err.message);
    });
    chat.on("message:new", addChatMessage);
    chat.on("user:typing", (t) => {
      if (!t || t.chatId !== state.chatId || t.userId === state.me) return;
      if (t.isTyping) state.typing.set(t.userId, { username: t.username || t.userId, until: Date.now() + 7000 });
      else state.typing.delete(t.userId);
      renderTyping();
    });
    chat.on("room:online-update", (u) => {
      if (u && u.chatId === state.chatId) renderPresence(u.onlineUsers);
    });
    chat.on("user:status-changed", (u) => {
      state.statuses.set(u.userId, u.status);
      renderPresence();
    });

    const input = $("chat-input");
    input.addEventListener("input", () => {
      const now = Date.now();
      if (state.chatId && input.value.trim() && now - state.lastTypingSent > TYPING_EVERY_MS) {
        state.lastTypingSent = now;
        chat.emit("message:typing", { chatId: state.chatId, isTyping: true });
      }
    });
    $("chat-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const content = input.value.trim();
      if (!content || !state.chatId) return;
      setChatEnabled(false);
      try {
        const answer = await ack(chat, "message:send", { chatId: state.chatId, content, type: "text" });
        if (!answer || !answer.success) throw new Error((answer && answer.message) || "not sent");
        input.value = "";
        chatError("");
        addChatMessage(answer.sentMessage);
      } catch (err) {
        chatError(err.message);
      } finally {
        setChatEnabled(chat.connected && Boolean(state.chatId));
        input.focus();
      }
    });
  }

  // --- guild monitor ----------------------------------------------------------------------------
  function addGuildItem(name, who, where, timestamp, alert) {
    const feed = $("guild-feed");
    const li = el("li", "fresh" + (alert ? " alert" : ""));
    const left = el("div");
    left.append(el("div", "name", name), el("div", "who", who));
    if (where) left.append(el("div", "where", where));
    const ago = el("div", "ago", timeAgo(timestamp));
    ago.dataset.timestamp = timestamp;
    li.append(left, ago);
    feed.prepend(li);
    while (feed.children.length > GUILD_MAX) feed.lastElementChild.remove();
  }

  function setupGuild(root) {
    root.on("message:new", (m) => addGuildItem("message", m.username, "#" + m.channelName, m.timestamp));
    root.on("presence:update", (p) => addGuildItem("presence", p.username, p.status, p.timestamp));
    root.on("role:change", (r) => addGuildItem("role", r.username, "+ " + (r.addedRoles || []).join(", "), r.timestamp));
    root.on("user:join", (j) => addGuildItem("joined", j.username, "account " + j.accountAgeDays + " days old", j.timestamp));
    root.on("alert:multiClient", (a) => addGuildItem("multi-client", a.username, (a.platforms || []).join(" + "), a.timestamp, true));
    root.on("error", (e) => showError("guild: " + (e && e.message)));
  }

  // --- wiring -----------------------------------------------------------------------------------
  function start(token) {
    state.token = token;
    state.me = userOfToken(token);
    if (typeof window.io === "undefined") {
      setConnection("disconnected", "client library missing");
      showError("socket.io-client missing: the server did not serve /socket.io/socket.io.min.js (make vendor).");
      return;
    }
    makeCharts();
    // one Engine.IO connection, several namespaces; socket.io-client reconnects on its own
    const pathMeta = document.querySelector('meta[name="switchboard-engineio-path"]');
    const manager = new window.io.Manager(window.location.origin, {
      path: pathMeta ? pathMeta.content : "/socket.io/",
      reconnectionDelay: 500,
      reconnectionDelayMax: 5000,
    });
    const auth = { token };
    const metrics = manager.socket("/ws/metrics", { auth });
    const root = manager.socket("/", { auth });
    const chat = manager.socket("/chat", { auth });

    manager.on("open", () => setConnection("connected"));
    manager.on("close", () => setConnection(manager.reconnection() ? "reconnecting" : "disconnected"));
    manager.on("reconnect_attempt", (n) => setConnection("reconnecting", "attempt " + n));
    manager.on("reconnect_failed", () => setConnection("disconnected"));
    manager.on("error", () => {
      if (!metrics.connected) setConnection("reconnecting");
    });
    metrics.on("connect_error", (err) => {
      if (!metrics.active) {
        setConnection("disconnected", err.message);
        showError("The server refused this token: " + err.message);
      }
    });
    metrics.on("connect", () => { setConnection("connected"); showError(""); });
    metrics.on("dashboard_data", renderDashboard);
    metrics.on("events", (events) => addFeedEvents(Array.isArray(events) ? events : [events], true));

    root.on("connect", () => {
      root.emit("analytics:subscribeLiveMetrics");
      root.emit("subscribe:guild", DEMO_GUILD);
    });
    root.on("analytics:liveMetrics", renderLiveMetrics);
    root.on("analytics:error", (e) => showError("live metrics: " + (e && e.message)));
    setupGuild(root);
    setupChat(chat);

    loadSessions();
    state.sessionsTimer = setInterval(() => {
      if (!document.hidden && state.sessionsAvailable) loadSessions();
    }, 5000);
    window.switchboard = { manager, metrics, root, chat }; // for the console (and the browser test)
  }

  function main() {
    setInterval(tickTimes, 1000);
    tickTimes();
    const token = tokenFromFragment();
    const form = $("token-form");
    if (!token) {
      setConnection("disconnected", "no token");
      form.hidden = false;
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        const value = $("token-input").value.trim();
        if (!value) return;
        window.location.hash = "token=" + encodeURIComponent(value);
        form.hidden = true;
        start(value);
      });
      return;
    }
    start(token);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", main);
  else main();
})();
