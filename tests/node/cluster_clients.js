// Many stock socket.io-client 4.8 clients through a load balancer, for the cluster tests.
//
//   node tests/node/cluster_clients.js URL TOKEN TRANSPORTS COUNT
//
// TRANSPORTS: "polling", "websocket" or "default" (polling, then the upgrade, which each client
// waits for). Each client connects, acks an echo, joins the room "lb"; then one of them
// broadcasts to the room and every client must receive it. Prints {connected, echoed, received, upgraded, errors}; any error
// (a refused connect, a transport error such as "Session ID unknown", a missed broadcast) is
// listed.
const { io } = require("socket.io-client");

const [url, token, transports, countText] = process.argv.slice(2);
const count = Number(countText);
const options = { auth: { token }, reconnection: false, timeout: 10000, forceNew: true };
if (transports !== "default") options.transports = [transports];

function withTimeout(promise, ms, what) {
  return Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`${what} timed out`)), ms)),
  ]);
}

async function client(i, errors) {
  const socket = io(url, options);
  socket.io.engine && socket.io.engine.on("error", (e) => errors.push(`engine ${i}: ${e}`));
  socket.on("connect_error", (e) => errors.push(`connect_error ${i}: ${e.message}`));
  socket.on("disconnect", (reason) => {
    if (reason !== "io client disconnect") errors.push(`disconnect ${i}: ${reason}`);
  });
  await withTimeout(new Promise((resolve) => socket.once("connect", resolve)), 15000, `connect ${i}`);
  const echoed = await withTimeout(socket.timeout(10000).emitWithAck("echo", i), 15000, `echo ${i}`);
  if (echoed !== i) errors.push(`echo ${i} answered ${echoed}`);
  await withTimeout(socket.timeout(10000).emitWithAck("join", "lb"), 15000, `join ${i}`);
  if (transports === "default" && socket.io.engine.transport.name !== "websocket") {
    const upgraded = new Promise((resolve) => socket.io.engine.once("upgrade", resolve));
    await withTimeout(upgraded, 15000, `upgrade ${i}`);
  }
  return socket;
}

async function main() {
  const errors = [];
  const sockets = [];
  for (let start = 0; start < count; start += 25) {
    const batch = [];
    for (let i = start; i < Math.min(count, start + 25); i++) batch.push(client(i, errors));
    for (const result of await Promise.allSettled(batch)) {
      if (result.status === "fulfilled") sockets.push(result.value);
      else errors.push(String(result.reason && result.reason.message));
    }
  }
  const received = new Set();
  const all = sockets.map((s, i) => new Promise((resolve) => {
    s.once("lb-news", (n) => { if (n === 42) received.add(i); resolve(); });
  }));
  if (sockets.length) {
    await sockets[0].timeout(10000).emitWithAck("bcast", { room: "lb", event: "lb-news", args: [42] });
    await withTimeout(Promise.all(all), 15000, "broadcast").catch((e) => errors.push(e.message));
  }
  const upgraded = sockets.filter((s) => s.io.engine.transport.name === "websocket").length;
  for (const s of sockets) s.disconnect();
  console.log(JSON.stringify({
    connected: sockets.length, echoed: sockets.length, received: received.size, upgraded, errors,
  }));
  process.exit(0);
}

main().catch((err) => { console.error(err); process.exit(1); });
