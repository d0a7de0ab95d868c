"""A hikari bot on shardrunner: the bot is plain hikari, only its last line changes.

Run a cluster that keeps events for the bot's group and the state a restarted bot fetches:

    shardrunner start --sim --groups hikari-example --state-cache

then `python examples/hikari_bot.py`. Under `--sim` the token is the simulator's and REST goes to
the simulator (`SHARDRUNNER_SIM_URL`, e.g. `http://127.0.0.1:PORT`, from the cluster's log line
"running against the built-in Discord simulator at ..."); against Discord, set `DISCORD_TOKEN` and
leave `SHARDRUNNER_SIM_URL` unset. It prints each guild it has, counts guild messages, and answers
"!ping" by setting its presence on the shard of that guild. Stop it with Ctrl-C and start it again:
its cache is back at once (the cluster's state) and no message of the meantime is missed (its
group kept them).
"""

from __future__ import annotations

import collections
import os

import hikari

import shardrunner.adapters.hikari
from shardrunner.sim.discord.world import DEFAULT_BOT_ID, make_token

sim_url = os.environ.get("SHARDRUNNER_SIM_URL")
token = os.environ.get("DISCORD_TOKEN") or make_token(DEFAULT_BOT_ID)
bot = hikari.GatewayBot(token, rest_url=f"{sim_url}/api/v10" if sim_url else None, banner=None)
messages: collections.Counter[int] = collections.Counter()


@bot.listen()
async def on_started(event: hikari.StartedEvent) -> None:
    guilds = len(bot.cache.get_guilds_view())
    print(f"started on {bot.shard_count} shards, {guilds} guilds cached", flush=True)


@bot.listen()
async def on_guild(event: hikari.GuildAvailableEvent) -> None:
    print(f"guild {event.guild_id} ({event.guild.name}) on shard {event.shard.id}", flush=True)


@bot.listen()
async def on_message(event: hikari.GuildMessageCreateEvent) -> None:
    messages[int(event.guild_id)] += 1
    if sum(messages.values()) % 100 == 0:
        latency = bot.heartbeat_latency * 1000
        print(f"{sum(messages.values())} guild messages; heartbeat latency {latency:.0f} ms", flush=True)
    if event.content and event.content.startswith("!ping"):
        shard = bot.shards[event.shard.id]
        await shard.update_presence(activity=hikari.Activity(name="pong", type=hikari.ActivityType.PLAYING))


# Instead of bot.run(): the cluster holds the gateway connections, the bot reads its stream.
shardrunner.adapters.hikari.run(bot, group="hikari-example")
