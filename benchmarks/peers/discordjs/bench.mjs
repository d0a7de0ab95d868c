// discord.js's gateway client (@discordjs/ws + @discordjs/rest) counting MESSAGE_CREATEs from the
// shardrunner simulator, for benchmarks/peers.py.
//
//   node bench.mjs <sim base url> <token> <shard count> <expected MESSAGE_CREATEs>
//
// One WebSocketManager with the default SimpleShardingStrategy (every shard in this process and
// thread), zlib-stream inflated with node:zlib (CompressionMethod.ZlibNative), JSON encoding. Prints
// one JSON object per line on stdout; times are process.hrtime (CLOCK_MONOTONIC on Linux) in
// seconds, comparable with Python's time.monotonic():
//   {"event":"ready","shards":4}                          READY on every shard and connect() resolved
//   {"event":"progress","count":N,"first":t,"last":t}     every 0.5 s once MESSAGE_CREATEs arrive
//   {"event":"done","count":N,"first":t,"last":t}         the expected count reached
//   {"event":"error","shard":0,"message":"..."}
// Runs until killed, or until stdin closes.

import process from "node:process";

import { REST } from "@discordjs/rest";
import { CompressionMethod, WebSocketManager, WebSocketShardEvents } from "@discordjs/ws";

const [base, token, shardsArg, expectedArg] = process.argv.slice(2);
const shardCount = Number.parseInt(shardsArg ?? "", 10);
const expected = Number.parseInt(expectedArg ?? "", 10);
if (!base || !token || !(shardCount >= 1) || !(expected >= 1)) {
  process.stderr.write("usage: node bench.mjs <sim base url> <token> <shard count> <expected MESSAGE_CREATEs>\n");
  process.exit(2);
}

function emit(record) {
  process.stdout.write(`${JSON.stringify(record)}\n`);
}

function now() {
  return Number(process.hrtime.bigint()) / 1e9;
}

// @discordjs/rest requests `${api}/v${version}${route}`: GET <sim>/api/v10/gateway/bot.
const rest = new REST({ api: `${base.replace(/\/+$/, "")}/api`, version: "10" }).setToken(token);

const manager = new WebSocketManager({
  token,
  intents: (1 << 0) | (1 << 9), // GUILDS | GUILD_MESSAGES
  rest,
  shardCount,
  compression: CompressionMethod.ZlibNative,
});

let count = 0;
let first = 0;
let last = 0;
let done = false;
const ready = new Set();
let connected = false;

function maybeReady() {
  if (connected && ready.size === shardCount) {
    emit({ event: "ready", shards: ready.size });
  }
}

manager.on(WebSocketShardEvents.Dispatch, (payload) => {
  if (payload.t !== "MESSAGE_CREATE") {
    return;
  }
  last = now();
  if (count === 0) {
    first = last;
  }
  count += 1;
  if (count === expected && !done) {
    done = true;
    emit({ event: "done", count, first, last });
  }
});
manager.on(WebSocketShardEvents.Ready, (_data, shardId) => {
  const before = ready.size;
  ready.add(shardId);
  if (ready.size !== before) {
    maybeReady();
  }
});
manager.on(WebSocketShardEvents.Error, (error, shardId) =>
  emit({ event: "error", shard: shardId, message: String(error?.stack ?? error) }),
);
manager.on(WebSocketShardEvents.SocketError, (error, shardId) =>
  emit({ event: "error", shard: shardId, message: String(error?.message ?? error) }),
);

setInterval(() => {
  if (count > 0 && !done) {
    emit({ event: "progress", count, first, last });
  }
}, 500).unref();

process.stdin.on("end", () => process.exit(0));
process.stdin.on("error", () => process.exit(0));
process.stdin.resume();

try {
  await manager.connect();
  connected = true;
  maybeReady();
} catch (error) {
  emit({ event: "error", shard: null, message: String(error?.stack ?? error) });
  process.exit(1);
}
