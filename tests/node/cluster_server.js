// A stock Node socket.io 4.8 server with @socket.io/redis-adapter 8.x, for the cluster tests.
//
//   node tests/node/cluster_server.js --port PORT REDIS_URL
//
// Namespace "/" (no auth): "join" (room) acks {ok, room}; "bcast" ({room, event, args}) emits
// to the room and acks {ok}; "echo" acks its arguments; "node:fetch" (rooms) acks the sockets
// io.fetchSockets() finds on every node; "node:server-side" (args...) acks what
// io.serverSideEmitWithAck("ping", ...) got back; "node:emit-with-ack" (room, event,
// args...) acks what io.timeout(2000).to(room).emitWithAck got back ("node:server-side" uses
// io.serverSideEmitWithAck, the adapter's own timeout). A "ping" from another
// server is answered {pong: "node", args}. Prints "ready on PORT" once subscribed.
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { createClient } = require("redis");

const [, port, redisUrl] = process.argv.slice(2); // --port PORT REDIS_URL

async function main() {
  const pub = createClient({ url: redisUrl });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  const io = new Server(Number(port), { adapter: createAdapter(pub, sub), cors: { origin: "*" } });

  io.on("ping", (...args) => {
    const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
    if (ack) ack({ pong: "node", args });
  });

  io.on("connection", (socket) => {
    socket.on("join", (room, ack) => { socket.join(room); ack && ack({ ok: true, room }); });
    socket.on("bcast", ({ room, event, args }, ack) => {
      io.to(room).emit(event, ...(args || []));
      ack && ack({ ok: true });
    });
    socket.on("echo", (...args) => { const ack = args.pop(); ack(...args); });
    socket.on("node:fetch", async (rooms, ack) => {
      const found = await (rooms && rooms.length ? io.in(rooms) : io).fetchSockets();
      ack(found.map((s) => ({ id: s.id, rooms: [...s.rooms] })));
    });
    socket.on("node:server-side", async (...args) => {
      const ack = args.pop();
      try {
        ack({ error: null, responses: await io.serverSideEmitWithAck("ping", ...args) });
      } catch (err) {
        ack({ error: String(err.message || err), responses: err.responses || [] });
      }
    });
    socket.on("node:emit-with-ack", async (room, event, ...rest) => {
      const ack = rest.pop();
      try {
        const responses = await io.timeout(2000).to(room).emitWithAck(event, ...rest);
        ack({ error: null, responses });
      } catch (err) {
        ack({ error: String(err.message || err), responses: err.responses || [] });
      }
    });
  });
  // the adapter subscribes asynchronously: wait until Redis counts this server
  for (let i = 0; i < 100; i++) {
    const counts = await pub.sendCommand(["PUBSUB", "NUMSUB", "socket.io-request#/#"]);
    if (Number(counts[1]) > 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  console.log(`ready on ${port}`);
}

main().catch((err) => { console.error(err); process.exit(1); });
