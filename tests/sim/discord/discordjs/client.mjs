// discord.js's gateway client (@discordjs/ws + @discordjs/rest) pointed at the shardrunner simulator.
//
//   node client.mjs <sim base url> <token> <shard count>
//
// e.g. `node client.mjs http://127.0.0.1:8900 <token> 2`. Prints one JSON object per line on stdout:
//   {"event":"dispatch","shard":0,"t":"MESSAGE_CREATE","s":12}     every dispatch, READY and RESUMED included
//                                                                  (GUILD_CREATE adds "guild": its id)
//   {"event":"ready","shard":0,"session_id":"...","guilds":[...]}  WebSocketShardEvents.Ready
//   {"event":"resumed","shard":0}                                  WebSocketShardEvents.Resumed
//   {"event":"closed","shard":0,"code":4200}                       the shard's socket closed
//   {"event":"error"|"socketError","shard":0,"message":"..."}
//   {"event":"connected"} once manager.connect() resolved; {"event":"destroyed"} just before exiting.
// The shards' debug messages go to stderr. Exits after manager.destroy() on SIGTERM, SIGINT or when
// stdin closes; exits 1 if connecting fails.

import process from "node:process";

import { REST } from "@discordjs/rest";
import { CompressionMethod, WebSocketManager, WebSocketShardEvents } from "@discordjs/ws";

const [base, token, shards] = process.argv.slice(2);
if (!base || !token || !shards || !(Number.parseInt(shards, 10) >= 1)) {
  process.stderr.write("usage: node client.mjs <sim base url> <token> <shard count>\n");
  process.exit(2);
}

function emit(record) {
  // stdout is a pipe: on Linux Node writes pipes synchronously, so nothing is lost on exit.
  process.stdout.write(`${JSON.stringify(record)}\n`);
}

// @discordjs/rest requests `${api}/v${version}${route}`: GET <sim>/api/v10/gateway/bot.
const rest = new REST({ api: `${base.replace(/\/+$/, "")}/api`, version: "10" }).setToken(token);

const manager = new WebSocketManager({
  token,
  intents: (1 << 0) | (1 << 9), // GUILDS | GUILD_MESSAGES
  rest,
  shardCount: Number.parseInt(shards, 10),
  // zlib-stream inflated with node:zlib (2.x: ZlibNative needs no extra package; ZlibSync needs zlib-sync).
  compression: CompressionMethod.ZlibNative,
});

// The manager re-emits every shard event with the shard id appended as the last argument.
manager.on(WebSocketShardEvents.Dispatch, (payload, shardId) => {
  const record = { event: "dispatch", shard: shardId, t: payload.t, s: payload.s };
  if (payload.t === "GUILD_CREATE") {
    record.guild = payload.d.id;
  }
  emit(record);
});
manager.on(WebSocketShardEvents.Ready, (data, shardId) => {
  emit({
    event: "ready",
    shard: shardId,
    session_id: data.session_id,
    guilds: data.guilds.map((g) => g.id),
  });
});
manager.on(WebSocketShardEvents.Resumed, (shardId) => emit({ event: "resumed", shard: shardId }));
manager.on(WebSocketShardEvents.Closed, (code, shardId) => emit({ event: "closed", shard: shardId, code }));
manager.on(WebSocketShardEvents.Error, (error, shardId) =>
  emit({ event: "error", shard: shardId, message: String(error?.stack ?? error) }),
);
manager.on(WebSocketShardEvents.SocketError, (error, shardId) =>
  emit({ event: "socketError", shard: shardId, message: String(error?.message ?? error) }),
);
manager.on(WebSocketShardEvents.Debug, (message, shardId) => {
  process.stderr.write(`[shard ${shardId}] ${message.replaceAll("\n", " ")}\n`);
});

let stopping = false;
async function stop(reason) {
  if (stopping) {
    return;
  }
  stopping = true;
  process.stderr.write(`stopping: ${reason}\n`);
  try {
    await manager.destroy({ reason });
  } catch (error) {
    process.stderr.write(`destroy failed: ${error?.stack ?? error}\n`);
  }
  emit({ event: "destroyed" });
  // REST keeps sweeper intervals alive; nothing is left to flush, so leave now.
  process.exit(0);
}

process.on("SIGTERM", () => void stop("SIGTERM"));
process.on("SIGINT", () => void stop("SIGINT"));
process.stdin.on("end", () => void stop("stdin closed"));
process.stdin.on("error", () => void stop("stdin error"));
process.stdin.resume();

try {
  await manager.connect();
  emit({ event: "connected" });
} catch (error) {
  emit({ event: "error", shard: null, message: String(error?.stack ?? error) });
  process.exitCode = 1;
  await stop("connect failed");
}
