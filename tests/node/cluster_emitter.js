// @socket.io/redis-emitter 5.x, one action, for the cluster tests.
//
//   node tests/node/cluster_emitter.js REDIS_URL ACTION JSON_ARGS
//
// ACTION: "emit" {room, event, args, binary?}, "join" {room, rooms}, "leave" {room, rooms},
// "disconnect" {room, close}. Prints {"ok": true} once published.
const { Emitter } = require("@socket.io/redis-emitter");
const { createClient } = require("redis");

const [redisUrl, action, json] = process.argv.slice(2);
const spec = JSON.parse(json || "{}");

async function main() {
  const client = createClient({ url: redisUrl });
  await client.connect();
  const emitter = new Emitter(client);
  const target = spec.room ? emitter.to(spec.room) : emitter;
  if (action === "emit") {
    const args = spec.args || [];
    if (spec.binary) args.push(Buffer.from(spec.binary, "hex"));
    target.emit(spec.event, ...args);
  } else if (action === "join") {
    target.socketsJoin(spec.rooms);
  } else if (action === "leave") {
    target.socketsLeave(spec.rooms);
  } else if (action === "disconnect") {
    target.disconnectSockets(Boolean(spec.close));
  } else {
    throw new Error(`unknown action ${action}`);
  }
  await client.quit();
  console.log(JSON.stringify({ ok: true }));
}

main().catch((err) => { console.error(err); process.exit(1); });
